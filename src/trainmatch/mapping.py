"""Mapping files: where each programme column is in an export that no layout recognises, or that a
layout cannot finish (``--mapping FILE``; ``trainmatch init`` writes ``mapping-example.toml``).

A mapping (TOML) says where each programme column is (by header, sub-header
row or position, or several columns), how each item's codes read (own codes,
missing answers, a linear rescale), what is the same for everyone, what was
not asked, how ids are made and which rows are complete. :func:`load_mapping`
checks it strictly: unknown sections, keys and targets are reported together,
each with its location and a hint, before the survey is read. Applying it to a
survey is :func:`trainmatch.layouts.convert`'s job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

from .columns import normalise
from .errors import MappingError, Problem
from .programme import Programme

MAPPING_EXAMPLE = "mapping-example.toml"


@dataclass(frozen=True)
class MultiSelect:
    """A multi-select question whose ticked options are tasks or training formats."""

    column: str
    separator: str
    target: str  # "tasks" or "formats"
    options: Mapping[str, str]  # tool option text or code -> task or format id (empty: their names)


@dataclass(frozen=True)
class Source:
    """Where a mapped column is in the export: by its header in header row ``row``, or by position."""

    header: str | None = None
    row: int = 1  # 1 = the first header row; 2 = the sub-header row under it (SurveyMonkey, Qualtrics)
    number: int | None = None  # 1-based position among the columns read (one with neither header nor value is not read)

    def __str__(self) -> str:
        if self.number is not None:
            return f"column number {self.number}"
        return repr(self.header) + (f" in header row {self.row}" if self.row > 1 else "")


@dataclass(frozen=True)
class ColumnScale:
    """How one item column's answers read on the programme's scale (the mapping file's own codes)."""

    codes: Mapping[str, float]  # normalised tool code or label -> value on the programme's scale
    missing: tuple[str, ...] = ()
    reverse: bool = False
    source_range: tuple[int, int] | None = None  # `from = [1, 7]`: rescaled linearly onto the programme's scale
    key: str = "scale"  # where in the mapping file it is set, for messages

    @property
    def active(self) -> bool:
        return bool(self.codes or self.missing or self.reverse or self.source_range)


@dataclass(frozen=True)
class Completion:
    """`[survey] complete`: only rows whose ``source`` column holds one of ``values`` are used."""

    source: Source
    values: tuple[str, ...]


@dataclass(frozen=True)
class ColumnMapping:
    """A validated column-mapping file."""

    path: str
    tool: str
    header_rows: int | None  # None: not given (1, or what a recognised layout finds)
    timestamp: str | None
    timestamp_format: str | None
    personal: tuple[str, ...]
    columns: Mapping[str, tuple[Source, ...]]  # programme column, item id or task id -> where it is in the export (one or more columns)
    scale: ColumnScale  # [scale]: for every item column without its own
    values: Mapping[str, Mapping[str, str]]  # programme column -> {tool answer -> value}
    multi: tuple[MultiSelect, ...]
    scales: Mapping[str, ColumnScale] = field(default_factory=dict)  # item id -> its column's own scale
    constants: Mapping[str, str] = field(default_factory=dict)  # programme column or task id -> the value for everyone
    not_asked: tuple[str, ...] = ()  # items (scored from the others) and tasks (counted as "no") the survey did not ask
    generate_ids: str | None = None  # prefix of ids made from the row number, when the export has none
    complete: Completion | None = None


_SCALE_KEYS = {"codes", "reverse", "missing", "from"}
_MAPPING_SCHEMA: dict[str, set[str]] = {
    "survey": {"tool", "header_rows", "timestamp", "timestamp_format", "personal", "complete", "not_asked"},
    "columns": set(),  # free keys: targets, checked against the programme
    "scale": _SCALE_KEYS,
    "values": set(),
    "multi": {"column", "separator", "options", "target"},
    "constants": set(),  # free keys: programme columns and task ids
}
_SOURCE_KEYS = {"header", "row", "column_number"}
_COLUMN_KEYS = _SOURCE_KEYS | {"scale"}
_ID_KEYS = {"generate", "prefix"}


def mapping_example() -> bytes:
    """The example mapping file shipped with the package (``trainmatch init`` writes it)."""
    return (resources.files("trainmatch") / "data" / MAPPING_EXAMPLE).read_bytes()


def load_mapping(path: str | Path, programme: Programme) -> ColumnMapping:
    """Read and validate a mapping file; raises MappingError listing every problem with its key."""
    from .programme import read_toml, suggest

    name = str(path)
    p = Path(path)
    if not p.is_file():
        raise MappingError([Problem(name, "does not exist or is not a file.", hint="Write an example with `trainmatch init DIR`.")])
    data = read_toml(p, name, MappingError)  # bounded: size, strict UTF-8, nesting
    problems: list[Problem] = []

    def add(message: str, key: str, value: Any = None, hint: str | None = None) -> None:
        problems.append(Problem(name, message, key=key, value=None if value is None else str(value), hint=hint))

    for section, value in data.items():
        if section not in _MAPPING_SCHEMA:
            add("unknown section.", section, hint=suggest(section, _MAPPING_SCHEMA))
        elif section == "multi":
            if not isinstance(value, list):
                add("must be a list of [[multi]] tables.", section)
        elif not isinstance(value, dict):
            add(f"[{section}] must be a table.", section)
        elif _MAPPING_SCHEMA[section]:
            for key in value:
                if key not in _MAPPING_SCHEMA[section]:
                    add("unknown key.", f"{section}.{key}", hint=suggest(key, _MAPPING_SCHEMA[section]))

    def table(section: str) -> dict:
        v = data.get(section, {})
        return v if isinstance(v, dict) else {}

    def text(section: str, key: str, default: str | None = None) -> str | None:
        v = table(section).get(key, default)
        if v is not None and not isinstance(v, str):
            add("must be text in quotes.", f"{section}.{key}", v)
            return default
        return v

    def text_list(section: str, key: str) -> tuple[str, ...]:
        v = table(section).get(key, [])
        if not isinstance(v, list) or not all(isinstance(x, (str, int)) and not isinstance(x, bool) for x in v):
            add("must be a list of texts, e.g. [\"99\", \"-1\"].", f"{section}.{key}", v)
            return ()
        return tuple(str(x) for x in v)

    survey = table("survey")
    tool = text("survey", "tool") or p.name  # the summary shows it: "Layout from the mapping file: …"
    header_rows = survey.get("header_rows")
    if header_rows is not None and (isinstance(header_rows, bool) or not isinstance(header_rows, int) or not 1 <= header_rows <= 10):
        add("must be a whole number from 1 to 10.", "survey.header_rows", header_rows)
        header_rows = None
    timestamp_format = text("survey", "timestamp_format")
    if timestamp_format is not None and "%" not in timestamp_format:
        add("must be a strftime pattern such as \"%d.%m.%Y %H:%M\".", "survey.timestamp_format", timestamp_format)

    def source(spec: Any, where: str) -> Source | None:
        """A column address: "Header", or { header = "…", row = 2 }, or { column_number = 7 }."""
        if isinstance(spec, str):
            if not spec.strip():
                add("must be the header text of a column in the export.", where, spec)
                return None
            return Source(spec.strip())
        if not isinstance(spec, dict):
            add("must be a header in quotes, or a table like { header = \"…\", row = 2 } or { column_number = 7 }.", where, spec)
            return None
        header, row, number = spec.get("header"), spec.get("row", 1), spec.get("column_number")
        if (header is None) == (number is None):
            add("needs exactly one of header = \"…\" or column_number = N.", where, hint="A blank header (a matrix question's sub-question) is addressed by its sub-header with row = 2, or by column_number.")
            return None
        if number is not None:
            if isinstance(number, bool) or not isinstance(number, int) or number < 1:
                add("must be a whole number from 1 (the first column of the export).", f"{where}.column_number", number)
                return None
            if "row" in spec:
                add("goes with header, not with column_number.", f"{where}.row")
                return None
            return Source(number=number)
        if not isinstance(header, str) or not header.strip():
            add("must be the header text of a column in the export.", f"{where}.header", header)
            return None
        if isinstance(row, bool) or not isinstance(row, int) or not 1 <= row <= 10:
            add("must be the header row that holds this text: 1 (the first), 2 (the sub-header row) …", f"{where}.row", row)
            return None
        if header_rows is not None and row > header_rows:
            add(f"is beyond the {header_rows} header row(s) that survey.header_rows declares.", f"{where}.row", row, hint="Raise survey.header_rows, or address the column by its first-row header or column_number.")
            return None
        return Source(header.strip(), row)

    def scale_of(spec: Any, where: str) -> ColumnScale:
        """[scale] or a column's own `scale = { … }`: codes, missing, reverse, from."""
        if not isinstance(spec, dict):
            add("must be a table like { from = [1, 7] } or { codes = { \"A1\" = 1 } }.", where, spec)
            return ColumnScale({}, key=where)
        for key in spec:
            if key not in _SCALE_KEYS:
                add("unknown key.", f"{where}.{key}", hint=suggest(key, _SCALE_KEYS))
        codes: dict[str, float] = {}
        raw_codes = spec.get("codes", {})
        lo, hi = programme.scale_min, programme.scale_max
        if not isinstance(raw_codes, dict):
            add("must be a table like { A1 = 1, A2 = 2 }.", f"{where}.codes", raw_codes)
        else:
            for code, to in raw_codes.items():
                if isinstance(to, bool) or not isinstance(to, (int, float)) or not lo <= to <= hi:
                    add(f"must be a value of the programme's scale {lo}–{hi}.", f"{where}.codes.{code}", to,
                        hint="List answers that mean \"no answer\" in missing instead.")
                else:
                    codes[normalise(str(code))] = float(to)
        reverse = spec.get("reverse", False)
        if not isinstance(reverse, bool):
            add("must be true or false.", f"{where}.reverse", reverse)
            reverse = False
        raw_missing = spec.get("missing", [])
        missing: tuple[str, ...] = ()
        if not isinstance(raw_missing, list) or not all(isinstance(x, (str, int)) and not isinstance(x, bool) for x in raw_missing):
            add("must be a list of texts, e.g. [\"99\", \"N/A\"].", f"{where}.missing", raw_missing)
        else:
            missing = tuple(str(x) for x in raw_missing)
        span = spec.get("from")
        source_range = None
        if span is not None:
            if (not isinstance(span, list) or len(span) != 2 or any(isinstance(x, bool) or not isinstance(x, int) for x in span)
                    or span[0] >= span[1]):
                add("must be the tool's lowest and highest code, e.g. [1, 7] or [0, 10].", f"{where}.from", span)
            else:
                source_range = (span[0], span[1])
        return ColumnScale(codes, missing, reverse, source_range, where)

    cols = programme.columns
    person = [cols.id, cols.role, cols.site, cols.language, cols.hours, cols.formats]
    item_ids, task_ids = [i.id for i in programme.items], [t.id for t in programme.tasks]
    targets = person + item_ids + task_ids
    columns: dict[str, tuple[Source, ...]] = {}
    scales: dict[str, ColumnScale] = {}
    generate_ids: str | None = None
    seen: dict[Source, str] = {}
    for target, spec in table("columns").items():
        where = f"columns.{target}"
        if target not in targets:
            add("is not a column, item or task of the programme.", where, hint=suggest(target, targets))
            continue
        if target == cols.id and isinstance(spec, dict) and "generate" in spec:
            for key in spec:
                if key not in _ID_KEYS:
                    add("unknown key.", f"{where}.{key}", hint=suggest(key, _ID_KEYS))
            prefix = spec.get("prefix", "")
            if spec["generate"] != "row":
                add("must be \"row\": ids are made from the row number.", f"{where}.generate", spec["generate"])
            elif not isinstance(prefix, str) or not re.fullmatch(r"[A-Za-z0-9_-]{0,20}", prefix):
                add("must be up to 20 letters, digits, - or _.", f"{where}.prefix", prefix, hint="e.g. prefix = \"GF\"")
            else:
                generate_ids = prefix
            continue
        if isinstance(spec, dict):
            for key in spec:
                if key not in _COLUMN_KEYS:
                    add("unknown key.", f"{where}.{key}", hint=suggest(key, _COLUMN_KEYS))
            if "scale" in spec:
                if target not in item_ids:
                    add("scales are for item columns only.", f"{where}.scale", hint=f"Use [values.{target}] for answers of a person column.")
                else:
                    scales[target] = scale_of(spec["scale"], f"{where}.scale")
        if isinstance(spec, list):
            # The same question in several columns (a version per language, or per branch of the
            # questionnaire): each person answers in one of them.
            if len(spec) < 2 or target == cols.id:
                add("a list needs two or more columns, each person answering in one of them (not for the person id).", where, spec)
                continue
            found = [source(one, f"{where}[{k}]") for k, one in enumerate(spec, 1)]
            if any(f is None for f in found):
                continue
            srcs = tuple(found)
        else:
            src = source(spec, where)
            if src is None:
                continue
            srcs = (src,)
        clash = [src for src in srcs if src in seen]
        if clash:
            add(f"the column is already mapped to {seen[clash[0]]!r}.", where, str(clash[0]))
            continue
        columns[target] = srcs
        seen |= {src: target for src in srcs}

    scale = scale_of(table("scale"), "scale")
    format_ids = [f.id for f in programme.formats]
    constants: dict[str, str] = {}
    roles = [r.id for r in programme.roles]
    for target, v in table("constants").items():
        where = f"constants.{target}"
        allowed = [cols.role, cols.site, cols.language, cols.hours, cols.formats] + task_ids
        if target in item_ids:
            add("is an item: items are answers, never the same for everyone.", where, v, hint="List items not asked in survey.not_asked.")
        elif target not in allowed:
            add("is not a programme column that can be the same for everyone (role, site, language, hours, formats or a task id).",
                where, hint=suggest(target, allowed))
        elif target in columns or (target == cols.id and generate_ids is not None):
            add("is also mapped in [columns]; keep one of the two.", where, v)
        elif target in task_ids:
            if not isinstance(v, bool):
                add("must be true (everyone does this task) or false (no one does).", where, v)
            else:
                constants[target] = "1" if v else "0"
        elif target == cols.hours:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= programme.max_hours:
                add(f"must be a number of hours from 0 to {programme.max_hours:g}.", where, v)
            else:
                constants[target] = str(v)
        elif not isinstance(v, str) or not v.strip():
            add("must be text in quotes.", where, v)
        elif target == cols.role and v not in roles:
            add("is not a role id of the programme.", where, v, hint=suggest(v, roles))
        elif target == cols.language and v not in programme.languages:
            add("is not a language of the programme.", where, v, hint=suggest(v, programme.languages))
        elif target == cols.formats and any(f.strip() not in format_ids for f in v.split(";")):
            wrong = next(f.strip() for f in v.split(";") if f.strip() not in format_ids)
            add("must be format ids separated by \";\".", where, wrong, hint=suggest(wrong, format_ids))
        else:
            constants[target] = v.strip()

    not_asked: list[str] = []
    for ident in text_list("survey", "not_asked"):
        where = "survey.not_asked"
        if ident not in item_ids + task_ids:
            add("is not an item or task id of the programme.", where, ident, hint=suggest(ident, item_ids + task_ids))
        elif ident in columns or ident in constants:
            add("is also mapped in [columns] or [constants]; keep one of them.", where, ident)
        else:
            not_asked.append(ident)

    complete = None
    raw_complete = survey.get("complete")
    if raw_complete is not None:
        where = "survey.complete"
        if not isinstance(raw_complete, dict):
            add("must be a table like { column = \"Status\", values = [\"Complete\"] }.", where, raw_complete)
        else:
            for key in raw_complete:
                if key not in {"column", "row", "column_number", "values"}:
                    add("unknown key.", f"{where}.{key}", hint=suggest(key, {"column", "row", "column_number", "values"}))
            spec = {("header" if k == "column" else k): v for k, v in raw_complete.items() if k != "values"}
            src = source(spec, where)
            vals = raw_complete.get("values")
            if not isinstance(vals, list) or not vals or not all(isinstance(x, (str, int)) and not isinstance(x, bool) for x in vals):
                add("must list the values that mark a complete response, e.g. [\"Complete\"] or [\"2\"].", f"{where}.values", vals)
            elif src is not None:
                complete = Completion(src, tuple(str(x) for x in vals))

    values: dict[str, dict[str, str]] = {}
    for target, entries in table("values").items():
        where = f"values.{target}"
        if target not in (cols.role, cols.language, cols.site):
            add(f"value tables are allowed for {cols.role!r}, {cols.language!r} and {cols.site!r}.", where)
        elif not isinstance(entries, dict) or not all(isinstance(v, str) for v in entries.values()):
            add("must be a table like { \"1\" = \"nurse\" }.", where)
        else:
            if target == cols.role:
                for code, v in entries.items():
                    if v not in roles:
                        add("is not a role of the programme.", f"{where}.{code}", v, hint=suggest(v, roles))
            if target == cols.language:
                for code, v in entries.items():
                    if v not in programme.languages:
                        add("is not a language of the programme.", f"{where}.{code}", v, hint=suggest(v, programme.languages))
            values[target] = {str(k): v for k, v in entries.items()}

    multi: list[MultiSelect] = []
    for n, entry in enumerate(data.get("multi", []) if isinstance(data.get("multi"), list) else [], 1):
        where = f"multi[{n}]"
        if not isinstance(entry, dict):
            add("must be a table.", where)
            continue
        for key in entry:
            if key not in _MAPPING_SCHEMA["multi"]:
                add("unknown key.", f"{where}.{key}", hint=suggest(key, _MAPPING_SCHEMA["multi"]))
        column, sep, target = entry.get("column"), entry.get("separator", ";"), entry.get("target", "tasks")
        if not isinstance(column, str) or not column.strip():
            add("needs the header of the multi-select column.", f"{where}.column")
            continue
        if not isinstance(sep, str) or not sep:
            add("must be the text between ticked options, e.g. \";\" or \", \".", f"{where}.separator", sep)
            continue
        if target not in ("tasks", "formats"):
            add("must be \"tasks\" or \"formats\".", f"{where}.target", target)
            continue
        allowed = task_ids if target == "tasks" else format_ids
        options = entry.get("options", {})
        if not isinstance(options, dict):
            add("must be a table like { \"Video visits\" = \"video_visits\" }.", f"{where}.options")
            continue
        for option, ident in options.items():
            if ident not in allowed:
                add(f"is not a {target[:-1]} id of the programme.", f"{where}.options.{option}", ident, hint=suggest(str(ident), allowed))
        multi.append(MultiSelect(column.strip(), sep, target, {str(k): str(v) for k, v in options.items()}))

    timestamp = text("survey", "timestamp")
    personal = text_list("survey", "personal")
    if problems:
        raise MappingError(problems)
    return ColumnMapping(
        path=name,
        tool=tool,
        header_rows=header_rows,
        timestamp=timestamp,
        timestamp_format=timestamp_format,
        personal=personal,
        columns=columns,
        scale=scale,
        values=values,
        multi=tuple(multi),
        scales=scales,
        constants=constants,
        not_asked=tuple(not_asked),
        generate_ids=generate_ids,
        complete=complete,
    )
