"""Survey-tool layouts: recognise how an export was made and convert it to the programme's columns.

Every survey tool writes its own kind of file: Microsoft Forms puts the
statement of each Likert row in the header and joins multi-select answers with
``;``; Google Forms writes ``Question [Row]`` grid headers and joins checkbox
answers with ``", "``; LimeSurvey writes ``Q1[SQ001]`` headers, answer codes
``A1``…``A5`` and ``Y``/empty multiple-choice columns; Qualtrics writes three
header rows; REDCap writes raw codes and one ``field___code`` column per
checkbox option. :func:`detect_layout` recognises the tool from the header row
and a few cells (a pure function), and :func:`convert` renames and reshapes the
columns into the programme's wide format, so that :func:`trainmatch.survey.import_survey`
matches and validates every export the same way, once.

For any other tool, a mapping file (TOML, ``--mapping FILE``; ``trainmatch
init`` writes an example) says which header holds which programme column and
how the tool's codes read. It is checked strictly when loaded: unknown keys
and targets are reported together with their location.

Conversion never guesses: a header is renamed only when its tool syntax names
an item, task or programme column exactly (ignoring case and spaces); a
multi-select column is split only against the declared options, longest first,
and an option that is not declared is a cell error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from .errors import MappingError, Problem
from .io import RawSurvey
from .programme import Programme

PLAIN = "plain"  # the programme's own columns, as `trainmatch synth` writes them
MS_FORMS, GOOGLE_FORMS, LIMESURVEY, QUALTRICS, REDCAP = "Microsoft Forms", "Google Forms", "LimeSurvey", "Qualtrics", "REDCap"
LAYOUTS = (MS_FORMS, GOOGLE_FORMS, LIMESURVEY, QUALTRICS, REDCAP, PLAIN)
MAPPING_EXAMPLE = "mapping-example.toml"


def _key(text: str) -> str:
    """Header key: case-folded, without spaces, underscores, hyphens, dots or non-breaking spaces."""
    from .survey import normalise

    return re.sub(r"[\s_\-.]+", "", normalise(text))


def _text_key(text: str) -> str:
    """A question or option text for comparison: normalised, trailing punctuation and spaces removed."""
    from .survey import normalise

    return normalise(text).rstrip(" .:?!*")


# --------------------------------------------------------------------------- mapping file


@dataclass(frozen=True)
class MultiSelect:
    """A multi-select question whose ticked options are tasks or training formats."""

    column: str
    separator: str
    target: str  # "tasks" or "formats"
    options: Mapping[str, str]  # tool option text or code -> task or format id (empty: their names)


@dataclass(frozen=True)
class ColumnMapping:
    """A validated column-mapping file."""

    path: str
    tool: str
    header_rows: int
    timestamp: str | None
    timestamp_format: str | None
    personal: tuple[str, ...]
    columns: Mapping[str, str]  # programme column, item id or task id -> header in the export
    scale_codes: Mapping[str, str]  # tool code -> programme scale code (as text)
    reverse: bool
    missing: tuple[str, ...]
    values: Mapping[str, Mapping[str, str]]  # programme column -> {tool answer -> value}
    multi: tuple[MultiSelect, ...]


_MAPPING_SCHEMA: dict[str, set[str]] = {
    "survey": {"tool", "header_rows", "timestamp", "timestamp_format", "personal"},
    "columns": set(),  # free keys: targets, checked against the programme
    "scale": {"codes", "reverse", "missing"},
    "values": set(),
    "multi": {"column", "separator", "options", "target"},
}


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
    tool = text("survey", "tool", "mapping file") or "mapping file"
    header_rows = survey.get("header_rows", 1)
    if isinstance(header_rows, bool) or not isinstance(header_rows, int) or not 1 <= header_rows <= 10:
        add("must be a whole number from 1 to 10.", "survey.header_rows", header_rows)
        header_rows = 1
    timestamp_format = text("survey", "timestamp_format")
    if timestamp_format is not None and "%" not in timestamp_format:
        add("must be a strftime pattern such as \"%d.%m.%Y %H:%M\".", "survey.timestamp_format", timestamp_format)

    cols = programme.columns
    person = [cols.id, cols.role, cols.site, cols.language, cols.hours, cols.formats]
    targets = person + [i.id for i in programme.items] + [t.id for t in programme.tasks]
    columns: dict[str, str] = {}
    seen_headers: dict[str, str] = {}
    for target, header in table("columns").items():
        where = f"columns.{target}"
        if target not in targets:
            add("is not a column, item or task of the programme.", where, hint=suggest(target, targets))
        elif not isinstance(header, str) or not header.strip():
            add("must be the header text of a column in the export.", where, header)
        elif header.strip() in seen_headers:
            add(f"the header is already mapped to {seen_headers[header.strip()]!r}.", where, header)
        else:
            columns[target] = header.strip()
            seen_headers[header.strip()] = target

    scale = table("scale")
    codes_raw = scale.get("codes", {})
    scale_codes: dict[str, str] = {}
    if not isinstance(codes_raw, dict):
        add("must be a table like { A1 = 1, A2 = 2 }.", "scale.codes", codes_raw)
    else:
        for code, to in codes_raw.items():
            if isinstance(to, bool) or not isinstance(to, int) or not programme.scale_min <= to <= programme.scale_max:
                add(f"must be a code of the programme's scale {programme.scale_min}–{programme.scale_max}.", f"scale.codes.{code}", to)
            else:
                scale_codes[str(code)] = str(to)
    reverse = scale.get("reverse", False)
    if not isinstance(reverse, bool):
        add("must be true or false.", "scale.reverse", reverse)
        reverse = False
    missing = text_list("scale", "missing")

    values: dict[str, dict[str, str]] = {}
    for target, entries in table("values").items():
        where = f"values.{target}"
        if target not in (cols.role, cols.language, cols.site):
            add(f"value tables are allowed for {cols.role!r}, {cols.language!r} and {cols.site!r}.", where)
        elif not isinstance(entries, dict) or not all(isinstance(v, str) for v in entries.values()):
            add("must be a table like { \"1\" = \"nurse\" }.", where)
        else:
            if target == cols.role:
                roles = [r.id for r in programme.roles]
                for code, v in entries.items():
                    if v not in roles:
                        add("is not a role of the programme.", f"{where}.{code}", v, hint=suggest(v, roles))
            if target == cols.language:
                for code, v in entries.items():
                    if v not in programme.languages:
                        add("is not a language of the programme.", f"{where}.{code}", v, hint=suggest(v, programme.languages))
            values[target] = {str(k): v for k, v in entries.items()}

    multi: list[MultiSelect] = []
    task_ids, format_ids = [t.id for t in programme.tasks], [f.id for f in programme.formats]
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

    if problems:
        raise MappingError(problems)
    return ColumnMapping(
        path=name,
        tool=tool,
        header_rows=header_rows,
        timestamp=text("survey", "timestamp"),
        timestamp_format=timestamp_format,
        personal=text_list("survey", "personal"),
        columns=columns,
        scale_codes=scale_codes,
        reverse=reverse,
        missing=missing,
        values=values,
        multi=tuple(multi),
    )


# --------------------------------------------------------------------------- detection


_MS_FORMS_HEAD = [("id", "tunnus"), ("starttime", "aloitusaika", "starttid"), ("completiontime", "valmistumisaika", "slutfört", "sluttid")]
_GOOGLE_TIMESTAMP = ("timestamp", "aikaleima", "tidstämpel", "tidsstämpel")
_LIMESURVEY = {"id", "submitdate", "lastpage", "startlanguage"}
_QUALTRICS = {"startdate", "enddate", "finished", "responseid"}
_GRID = re.compile(r"^(?P<question>.*\S)\s*\[(?P<row>[^\[\]]+)\]\s*$")


def detect_layout(headers: Sequence[str], first_rows: Sequence[Sequence[str]] = ()) -> str:
    """Which survey tool wrote this export, from its header row (and the first rows for Qualtrics).

    Returns one of :data:`LAYOUTS`; ``"plain"`` when no tool's signature is present.
    """
    keys = [_key(h) for h in headers]
    keyset = set(keys)
    if _QUALTRICS <= keyset:
        return QUALTRICS
    if len(keys) >= 3 and all(keys[j] in names for j, names in enumerate(_MS_FORMS_HEAD)):
        return MS_FORMS
    if keys and keys[0] in _GOOGLE_TIMESTAMP:
        return GOOGLE_FORMS
    if _LIMESURVEY <= keyset:
        return LIMESURVEY
    if keys and (keys[0] == "recordid" or any(h.startswith("redcap_") for h in headers)):
        return REDCAP
    if any("___" in h for h in headers) and any(h.endswith("_complete") for h in headers):
        return REDCAP
    return PLAIN


# --------------------------------------------------------------------------- conversion


@dataclass(frozen=True)
class Converted:
    """An export converted to the programme's columns, with what the conversion learnt."""

    raw: RawSurvey
    layout: str
    timestamp: str | None = None  # header (in raw.frame) of the submission time, for --duplicates keep-latest
    timestamp_format: str | None = None
    personal: tuple[str, ...] = ()  # headers the tool is known to fill with personal data
    bad: tuple[tuple[np.ndarray, str, np.ndarray, str | np.ndarray], ...] = ()  # (positions, column, values, reasons)
    excluded: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # rows rejected as a whole (unfinished)
    notes: tuple[str, ...] = ()
    consumed: tuple[str, ...] = ()  # source headers turned into programme columns (not "ignored")


class _Targets:
    """Lookup from a tool's header fragment to a programme column, item id or task id."""

    def __init__(self, programme: Programme):
        cols = programme.columns
        self.programme = programme
        self.by_key: dict[str, str] = {}
        self.by_text: dict[str, str] = {}
        for c in (cols.id, cols.role, cols.site, cols.language, cols.hours, cols.formats):
            self.by_key[_key(c)] = c
        for item in programme.items:
            self.by_key[_key(item.id)] = item.id
            for t in item.texts.values():
                if t:
                    self.by_text[_text_key(t)] = item.id
        for task in programme.tasks:
            self.by_key[_key(task.id)] = task.id
            for t in task.names.values():
                if t:
                    self.by_text[_text_key(t)] = task.id
        self.tasks = {t.id for t in programme.tasks}
        self.task_options = _options({t.id: (t.id, *t.names.values()) for t in programme.tasks})
        self.format_options = _options({f.id: (f.id, *f.names.values()) for f in programme.formats})

    def find(self, *fragments: str | None) -> str | None:
        for frag in fragments:
            if frag:
                hit = self.by_key.get(_key(frag)) or self.by_text.get(_text_key(frag))
                if hit:
                    return hit
        return None


def _options(entries: Mapping[str, Iterable[str]]) -> dict[str, str]:
    return {_text_key(alias): ident for ident, aliases in entries.items() for alias in aliases if alias}


def split_options(value: str, options: Mapping[str, str], separator: str) -> tuple[list[str], str | None]:
    """Split a multi-select answer against the declared options, longest option first.

    Options may themselves hold the separator ("Peer, super-user coaching"), so
    the answer is not split blindly: at each position the longest declared
    option followed by the separator (or the end) is taken. Returns the ids and
    the first text that is not an option (or None).
    """
    from .survey import normalise

    rest = normalise(value)
    # The separator as the answer is normalised (case-folded, typographic dashes straightened): ", " and
    # ";" alike, spaces around it ignored; a separator of spaces only is the one space left between words.
    token = normalise(separator) or " "
    ordered = sorted(options, key=len, reverse=True)
    found: list[str] = []
    while rest:
        for opt in ordered:
            if not rest.startswith(opt):
                continue
            after = rest[len(opt):]
            if token == " ":  # the option must end at a space or at the end
                ends, following = not after or after.startswith(" "), after.lstrip()
            else:
                tail = after.lstrip()
                ends, following = not tail or tail.startswith(token), tail[len(token):].lstrip()
            if ends:
                found.append(options[opt])
                rest = following
                break
        else:
            # Options hold spaces, so with a space separator the rest as a whole is what is not an option.
            return found, rest if token == " " else rest.split(token, 1)[0].strip() or rest
    return found, None


def _codes(values: pd.Series) -> tuple[np.ndarray, list[str]]:
    from .survey import _factorize

    return _factorize(values)


def _split_column(
    values: pd.Series, options: Mapping[str, str], separator: str, column: str
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
    """Per option id, a bool array of who ticked it; and the bad cells (positions, values, reasons)."""
    codes, uniques = _codes(values)
    ids = sorted(set(options.values()))
    ticks = np.zeros((len(uniques), len(ids)), dtype=bool)
    reasons = np.full(len(uniques), None, dtype=object)
    index = {ident: j for j, ident in enumerate(ids)}
    shown = sorted({o for o in options})[:6]
    for u, text in enumerate(uniques):
        found, unknown = split_options(str(text), options, separator)
        for ident in found:
            ticks[u, index[ident]] = True
        if unknown is not None:
            reasons[u] = f"{unknown!r} is not one of the declared options of this multi-select question (e.g. {', '.join(shown)}). Add it to the mapping file's [[multi]] options."
    bad_u = np.array([r is not None for r in reasons], dtype=bool)
    pos = np.flatnonzero(bad_u[codes]) if bad_u.any() else np.zeros(0, np.int64)
    out = {ident: ticks[codes, j] if len(uniques) else np.zeros(len(values), bool) for ident, j in index.items()}
    bad_values = values.iloc[pos].astype(object).to_numpy(dtype=object) if len(pos) else np.zeros(0, object)
    return out, pos, bad_values, reasons[codes[pos]] if len(pos) else np.zeros(0, object)


def _map_values(values: pd.Series, table: Mapping[str, str], keep_unknown: bool = True) -> pd.Series:
    """Replace whole cell values via ``table`` (per distinct value); others stay as written."""
    codes, uniques = _codes(values)
    if not uniques:
        return values
    out = np.asarray([table.get(str(u).strip(), str(u) if keep_unknown else "") for u in uniques], dtype=object)
    return pd.Series(out[codes], index=values.index, dtype=object)


def _all_match(values: pd.Series, pattern: re.Pattern[str], extra: Iterable[str] = ()) -> bool:
    _, uniques = _codes(values)
    allowed = {""} | {str(x) for x in extra}
    hits = [u for u in uniques if str(u).strip() not in allowed]
    return bool(hits) and all(pattern.match(str(u).strip()) for u in hits)


def _is_multi(values: pd.Series, options: Mapping[str, str], separator: str) -> bool:
    """Every answer of the column splits fully into declared options (and at least one is given)."""
    _, uniques = _codes(values)
    given = [u for u in uniques if str(u).strip()]
    if not given or len(given) > 5000:
        return False
    return all(split_options(str(u), options, separator)[1] is None for u in given)


def _with_frame(raw: RawSurvey, frame: pd.DataFrame, keep: np.ndarray | None = None) -> RawSurvey:
    if keep is None:
        return replace(raw, frame=frame)
    return replace(raw, frame=frame.iloc[keep].reset_index(drop=True), lines=raw.lines[keep])


def convert(raw: RawSurvey, programme: Programme, mapping: ColumnMapping | None = None) -> Converted:
    """Recognise the export's layout and rename/reshape its columns to the programme's."""
    headers = list(raw.frame.columns)
    head_rows = [[str(v) for v in raw.frame.iloc[i].tolist()] for i in range(min(2, len(raw.frame)))]
    layout = detect_layout(headers, head_rows)
    targets = _Targets(programme)
    conv = {
        MS_FORMS: _ms_forms,
        GOOGLE_FORMS: _google_forms,
        LIMESURVEY: _limesurvey,
        QUALTRICS: _qualtrics,
        REDCAP: _redcap,
    }.get(layout)
    result = conv(raw, targets) if conv else Converted(raw, PLAIN)
    if mapping is not None:
        result = _apply_mapping(result, mapping, programme, targets)
    return result


def _rename(frame: pd.DataFrame, renames: Mapping[int, str]) -> pd.DataFrame:
    """Rename columns by position (duplicate target names are left for match_columns to refuse)."""
    if not renames:
        return frame
    frame = frame.copy(deep=False)
    frame.columns = [renames.get(j, h) for j, h in enumerate(frame.columns)]
    return frame


def _multi_columns(
    frame: pd.DataFrame, targets: _Targets, separator: str, skip: set[str]
) -> tuple[pd.DataFrame, list[tuple[np.ndarray, str, np.ndarray, np.ndarray]], list[str], list[str]]:
    """Find multi-select columns whose every answer is a list of task (or format) names and expand them."""
    programme = targets.programme
    bad: list[tuple[np.ndarray, str, np.ndarray, np.ndarray]] = []
    notes: list[str] = []
    consumed: list[str] = []
    present = {_key(h) for h in frame.columns}
    for h in list(frame.columns):
        if h in skip or not isinstance(frame[h], pd.Series) or _key(h) in targets.by_key:
            continue
        values = frame[h]
        if not any(_key(t) in present for t in targets.tasks) and _is_multi(values, targets.task_options, separator):
            ticked, pos, vals, reasons = _split_column(values, targets.task_options, separator, h)
            for task in programme.tasks:
                frame[task.id] = np.where(ticked.get(task.id, np.zeros(len(frame), bool)), "1", "0").astype(object)
            bad.append((pos, h, vals, reasons))
            notes.append(f"the multi-select question {h!r} lists the tasks")
            consumed.append(h)
            present |= {_key(t) for t in targets.tasks}
        elif _key(programme.columns.formats) not in present and _is_multi(values, targets.format_options, separator):
            frame[programme.columns.formats] = _joined(values, targets.format_options, separator, programme)
            notes.append(f"the multi-select question {h!r} lists the preferred formats")
            consumed.append(h)
            present.add(_key(programme.columns.formats))
    return frame, bad, notes, consumed


def _joined(values: pd.Series, options: Mapping[str, str], separator: str, programme: Programme) -> pd.Series:
    """Format answers re-joined with ``;`` as ids (unknown answers are kept for the decoder to report)."""
    codes, uniques = _codes(values)
    order = {f.id: n for n, f in enumerate(programme.formats)}
    out = []
    for u in uniques:
        found, unknown = split_options(str(u), options, separator)
        out.append(str(u) if unknown is not None else ";".join(sorted(set(found), key=order.__getitem__)))
    return pd.Series(np.asarray(out, dtype=object)[codes] if len(uniques) else np.full(len(values), "", object), index=values.index)


def _timestamp(frame: pd.DataFrame, *names: str) -> str | None:
    keys = {_key(h): h for h in frame.columns}
    for n in names:
        if _key(n) in keys:
            return keys[_key(n)]
    return None


def _ms_forms(raw: RawSurvey, targets: _Targets) -> Converted:
    frame = raw.frame
    renames = {}
    for j, h in enumerate(frame.columns):
        if j >= 3:
            hit = targets.find(h)
            if hit and _key(h) != _key(hit):
                renames[j] = hit
    frame = _rename(frame, renames)
    personal = tuple(h for h in frame.columns if _key(h) in {"email", "name", "sähköposti", "nimi", "epost", "namn"})
    frame, bad, notes, consumed = _multi_columns(frame.copy(), targets, ";", set(personal) | set(frame.columns[:5]))
    ts = _timestamp(frame, "Completion time", "Valmistumisaika", "Tid för slutförande", "Sluttid")
    return Converted(_with_frame(raw, frame), MS_FORMS, ts, None, personal, tuple(bad), notes=tuple(notes), consumed=tuple(consumed))


def _rename_grid_rows(frame: pd.DataFrame, targets: _Targets) -> pd.DataFrame:
    """Rename ``Question [row]`` grid headers (and plain ones) that name a programme column."""
    renames = {}
    for j, h in enumerate(frame.columns):
        m = _GRID.match(h)
        hit = targets.find(m.group("row")) if m else targets.find(h)
        if hit and _key(h) != _key(hit):
            renames[j] = hit
    return _rename(frame, renames)


def _google_forms(raw: RawSurvey, targets: _Targets) -> Converted:
    frame = raw.frame
    frame = _rename_grid_rows(frame, targets)
    personal = tuple(h for h in frame.columns if _key(h) in {"emailaddress", "sähköpostiosoite", "epostadress", "email"})
    frame, bad, notes, consumed = _multi_columns(frame.copy(), targets, ", ", set(personal) | {frame.columns[0]})
    fmt_col = targets.programme.columns.formats
    if fmt_col in frame.columns and isinstance(frame[fmt_col], pd.Series):
        frame[fmt_col] = _joined(frame[fmt_col], targets.format_options, ", ", targets.programme)
    return Converted(
        _with_frame(raw, frame), GOOGLE_FORMS, frame.columns[0], None, personal, tuple(bad), notes=tuple(notes), consumed=tuple(consumed)
    )


_LIME_CODE = re.compile(r"^A(\d+)$")


def _limesurvey(raw: RawSurvey, targets: _Targets) -> Converted:
    programme = targets.programme
    frame = raw.frame.copy(deep=False)
    frame = _rename_grid_rows(frame, targets)
    items = {i.id for i in programme.items}
    notes = []
    for h in frame.columns:
        col = frame[h] if isinstance(frame[h], pd.Series) else None
        if col is None:
            continue
        if h in items and _all_match(col, _LIME_CODE, programme.missing_codes):
            # Answer codes A1…An are the scale's positions: A1 = the lowest answer.
            lo = programme.scale_min
            table = {f"A{k}": str(lo + k - 1) for k in range(1, programme.scale_max - lo + 2)}
            frame[h] = _map_values(col, table)
            notes.append("answer codes A1…A%d read as %d…%d" % (programme.scale_max - lo + 1, lo, programme.scale_max))
        elif h in targets.tasks:
            # Multiple choice: "Y" when ticked, empty when not.
            frame[h] = _map_values(col, {"Y": "1", "N": "0"})
    personal = tuple(h for h in frame.columns if _key(h) in {"ipaddr", "refurl", "email", "firstname", "lastname", "token"})
    ts = _timestamp(frame, "submitdate")
    excluded = np.zeros(0, np.int64)
    bad = []
    if ts is not None:
        unsubmitted = np.flatnonzero((frame[ts].astype(str).str.strip() == "").to_numpy())
        if len(unsubmitted):
            excluded = unsubmitted
            bad.append((unsubmitted, ts, np.full(len(unsubmitted), "", object),
                        "Incomplete response: LimeSurvey has no submit date for it (the person left the survey before the end). "
                        "Incomplete responses are not used; export only completed responses, or ask the person to finish."))
    return Converted(_with_frame(raw, frame), LIMESURVEY, ts, None, personal, tuple(bad), excluded, tuple(dict.fromkeys(notes)))


_QUALTRICS_META = {
    "startdate", "enddate", "status", "ipaddress", "progress", "durationinseconds", "finished", "recordeddate", "responseid",
    "recipientlastname", "recipientfirstname", "recipientemail", "externalreference", "locationlatitude", "locationlongitude",
    "distributionchannel", "userlanguage",
}


def _qualtrics(raw: RawSurvey, targets: _Targets) -> Converted:
    frame = raw.frame
    start = [h for h in frame.columns if _key(h) == "startdate"][0]
    # Header rows 2 and 3: question texts, then {"ImportId": …}. They are headers, never people.
    first = frame[start].astype(str).head(2).tolist()
    n_head = 0
    texts: list[str] = [""] * frame.shape[1]
    if first and _key(first[0]) == "startdate":
        n_head = 1
        texts = [str(v) for v in frame.iloc[0].tolist()]
        if len(first) > 1 and first[1].lstrip().startswith("{"):
            n_head = 2
    elif first and first[0].lstrip().startswith("{"):
        n_head = 1
    renames = {}
    for j, h in enumerate(frame.columns):
        if _key(h) in _QUALTRICS_META:
            continue
        statement = texts[j].rsplit(" - ", 1)[-1] if texts[j] else None
        hit = targets.find(h, statement)
        if hit and _key(h) != _key(hit):
            renames[j] = hit
    frame = _rename(frame, renames)
    keep = np.arange(n_head, len(frame))
    frame = frame.iloc[keep].reset_index(drop=True)
    raw2 = replace(raw, frame=frame, lines=raw.lines[keep], skipped_empty=raw.skipped_empty)
    personal = tuple(h for h in frame.columns if _key(h) in {"ipaddress", "recipientlastname", "recipientfirstname", "recipientemail", "locationlatitude", "locationlongitude"})
    finished = _timestamp(frame, "Finished")
    bad = []
    excluded = np.zeros(0, np.int64)
    if finished is not None:
        flag = frame[finished].astype(str).str.strip().str.casefold()
        unfinished = np.flatnonzero(flag.isin(["false", "0"]).to_numpy())
        if len(unfinished):
            progress = _timestamp(frame, "Progress")
            shown = (" (progress " + frame[progress].iloc[unfinished].astype(str) + "%)") if progress else pd.Series("", index=unfinished)
            reasons = ("Unfinished response: Qualtrics marks it Finished = False" + shown.astype(object)
                       + ". Unfinished responses are not used (stated policy); close them in Qualtrics or export finished responses only.")
            reasons = reasons.to_numpy(dtype=object)
            excluded = unfinished
            bad.append((unfinished, finished, frame[finished].iloc[unfinished].astype(object).to_numpy(dtype=object), reasons))
    ts = _timestamp(frame, "RecordedDate", "EndDate")
    return Converted(raw2, QUALTRICS, ts, None, personal, tuple(bad), excluded)


def _redcap(raw: RawSurvey, targets: _Targets) -> Converted:
    programme = targets.programme
    cols = programme.columns
    frame = raw.frame
    renames = {}
    checkbox: dict[str, list[tuple[str, str]]] = {}
    for j, h in enumerate(frame.columns):
        if "___" in h:
            field_name, code = h.rsplit("___", 1)
            checkbox.setdefault(field_name, []).append((h, code))
            hit = targets.find(code)
            if hit in targets.tasks:
                renames[j] = hit
            continue
        hit = targets.find(h)
        if hit and _key(h) != _key(hit):
            renames[j] = hit
    if frame.columns[0] == "record_id" and not any(_key(h) == _key(cols.id) for h in frame.columns):
        renames[0] = cols.id
    frame = _rename(frame, renames).copy(deep=False)
    fmt_ids = {f.id for f in programme.formats}
    notes: list[str] = []
    consumed: list[str] = []
    for field_name, parts in checkbox.items():
        codes = [(h, c) for h, c in parts if c in fmt_ids]
        if codes and len(codes) == len(parts) and cols.formats not in frame.columns:
            # formats___workshop = 1 ticks "workshop": join the ticked ids in programme order.
            order = [f.id for f in programme.formats]
            codes.sort(key=lambda hc: order.index(hc[1]))
            joined = pd.Series("", index=frame.index, dtype=object)
            for h, c in codes:
                ticked = (frame[h].astype(str).str.strip() == "1").to_numpy()
                joined = joined.where(~ticked, joined + np.where(joined == "", "", ";") + c)
            frame[cols.formats] = joined
            notes.append(f"checkbox field {field_name!r} lists the preferred formats")
            consumed += [h for h, _ in codes]
    ts = next((h for h in frame.columns if h.endswith("_timestamp")), None)
    bad = []
    excluded = np.zeros(0, np.int64)
    complete = [h for h in frame.columns if h.endswith("_complete")]
    for h in complete[:1]:
        status = frame[h].astype(str).str.strip()
        incomplete = np.flatnonzero(status.isin(["0", "1"]).to_numpy())
        if len(incomplete):
            excluded = incomplete
            bad.append((incomplete, h, status.iloc[incomplete].to_numpy(dtype=object),
                        "The instrument is not marked Complete in REDCap (0 = Incomplete, 1 = Unverified, 2 = Complete). "
                        "Only complete records are used; complete or verify the record in REDCap."))
    personal = tuple(h for h in frame.columns if _key(h) in {"redcapsurveyidentifier"})
    return Converted(_with_frame(raw, frame), REDCAP, ts, None, personal, tuple(bad), excluded, tuple(notes), tuple(consumed))


# --------------------------------------------------------------------------- mapping file


def _apply_mapping(conv: Converted, mapping: ColumnMapping, programme: Programme, targets: _Targets) -> Converted:
    from .errors import SurveyError

    raw = conv.raw
    frame = raw.frame
    headers = list(frame.columns)
    by_header = {h.strip(): j for j, h in enumerate(headers)}

    def need(header: str, key: str) -> int:
        if header not in by_header:
            from difflib import get_close_matches

            close = get_close_matches(header, [h for h in headers if h], n=1, cutoff=0.6)
            raise SurveyError(
                Problem(
                    raw.path,
                    f"has no column {header!r}, which the mapping file {mapping.path} names at {key}.",
                    column=header,
                    hint=(f"Did you mean {close[0]!r}? " if close else "") + "Fix the header in the mapping file to match the export exactly.",
                )
            )
        return by_header[header]

    keep = None
    if mapping.header_rows > 1:
        keep = np.arange(mapping.header_rows - 1, len(frame))
    renames = {need(h, f"columns.{t}"): t for t, h in mapping.columns.items()}
    # A column already named like a mapped target, but not the mapped one, would compete with it.
    frame = _rename(frame, {j: h + " (not used: mapped elsewhere)" for j, h in enumerate(headers) if h in mapping.columns and j not in renames} | renames)
    frame = frame.copy(deep=False)
    bad = list(conv.bad)
    items = {i.id for i in programme.items}
    scale = dict(mapping.scale_codes)
    lo, hi = programme.scale_min, programme.scale_max
    for h in list(frame.columns):
        if h not in items or not isinstance(frame[h], pd.Series):
            continue
        codes, uniques = _codes(frame[h])
        out = []
        for u in uniques:
            t = str(u).strip()
            if t in mapping.missing:
                out.append("")
            elif t in scale:
                out.append(scale[t])
            elif mapping.reverse and re.fullmatch(r"[+-]?\d+", t) and lo <= int(t) <= hi:
                out.append(str(lo + hi - int(t)))  # the tool's codes run from agree to disagree
            else:
                out.append(str(u))
        if uniques:
            frame[h] = pd.Series(np.asarray(out, dtype=object)[codes], index=frame.index)
    for target, table in mapping.values.items():
        if target in frame.columns:
            frame[target] = _map_values(frame[target], table)
    for multi in mapping.multi:
        j = need(multi.column, "multi.column")
        values = frame.iloc[:, j]
        target = multi.target
        options = {_text_key(k): v for k, v in multi.options.items()} or (targets.task_options if target == "tasks" else targets.format_options)
        if target == "tasks":
            ticked, pos, vals, reasons = _split_column(values, options, multi.separator, multi.column)
            for task in programme.tasks:
                frame[task.id] = np.where(ticked.get(task.id, np.zeros(len(frame), bool)), "1", "0").astype(object)
            bad.append((pos, multi.column, vals, reasons))
        else:
            frame[programme.columns.formats] = _joined(values, options, multi.separator, programme)
    ts = conv.timestamp
    if mapping.timestamp:
        ts = headers[need(mapping.timestamp, "survey.timestamp")]
    personal = tuple(conv.personal) + tuple(headers[need(h, "survey.personal")] for h in mapping.personal)
    layout = mapping.tool if conv.layout == PLAIN else f"{conv.layout}, with mapping file"
    new_raw = _with_frame(raw, frame, keep)
    excluded = conv.excluded
    if keep is not None:
        # Positions move up by the extra header rows; problems found in those rows are not about people.
        shift = mapping.header_rows - 1
        moved = []
        for p, c, v, r in bad:
            p = np.asarray(p)
            ok = p >= shift
            r = np.asarray(r, dtype=object)
            moved.append((p[ok] - shift, c, np.asarray(v, dtype=object)[ok], r[ok] if r.ndim else r))
        bad = moved
        excluded = excluded[excluded >= shift] - shift
    return Converted(
        new_raw,
        layout,
        ts,
        mapping.timestamp_format or conv.timestamp_format,
        personal,
        tuple(bad),
        excluded,
        conv.notes + (f"columns mapped by {mapping.path}",),
        conv.consumed + tuple(m.column for m in mapping.multi),
    )


# --------------------------------------------------------------------------- timestamps

_TS_FORMATS = (
    "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S.%fZ",
    "%Y/%m/%d %I:%M:%S %p", "%Y/%m/%d %H:%M:%S",
    "%d.%m.%Y %H.%M.%S", "%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H.%M", "%d.%m.%Y %H:%M", "%d.%m.%Y klo %H.%M",
    "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %I:%M:%S %p", "%m/%d/%y %H:%M:%S", "%m/%d/%y %I:%M:%S %p", "%m/%d/%Y %H:%M",
    "%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%d/%m/%y %H:%M:%S",
)
_TZ = re.compile(r"\s*(?:GMT|UTC)\s*[+-]?\d{0,2}(?::?\d{2})?\s*$", re.IGNORECASE)


def parse_timestamps(values: pd.Series, fmt: str | None = None) -> tuple[np.ndarray, str | None]:
    """Submission times as datetime64 (NaT where empty or unreadable), and why they cannot be used (or None).

    The format is chosen as the one that reads every non-empty value; when a
    day-first and a month-first format both do and disagree, the times are
    ambiguous and not used (never guessed).
    """
    codes, uniques = _codes(values)
    texts = pd.Series([_TZ.sub("", str(u).strip()) for u in uniques], dtype=object)
    texts = texts.where(~texts.str.casefold().isin(["[not completed]", "-", "n/a"]), "")
    filled = (texts != "").to_numpy()
    if not filled.any():
        return np.full(len(values), np.datetime64("NaT"), "datetime64[ns]"), "the timestamps are empty"
    candidates = (fmt,) if fmt else _TS_FORMATS
    fits = []
    for f in candidates:
        parsed = pd.to_datetime(texts, format=f, errors="coerce")
        if parsed[filled].notna().all():
            fits.append((f, parsed.to_numpy(dtype="datetime64[ns]")))
    if not fits:
        bad = texts[filled & pd.to_datetime(texts, format=candidates[0], errors="coerce").isna().to_numpy()].iloc[0]
        return np.full(len(values), np.datetime64("NaT"), "datetime64[ns]"), f"a timestamp such as {bad!r} has no known format"
    chosen, parsed = fits[0]
    for f, other in fits[1:]:
        if not np.array_equal(other[filled], parsed[filled]):
            return np.full(len(values), np.datetime64("NaT"), "datetime64[ns]"), (
                f"the timestamps read both as {chosen!r} and as {f!r} (day and month are ambiguous)"
            )
    return parsed[codes], None
