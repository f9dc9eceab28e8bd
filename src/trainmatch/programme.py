"""The programme: instrument, levels, tasks and settings of one assessment round.

A programme is a folder: ``programme.toml`` (settings, read with the standard
library's tomllib) plus spreadsheet-editable tables (``items.csv``,
``tasks.csv``; later stages add ``catalogue.csv`` and ``rules.csv``). Loading is
strict: every problem is collected with its location and a hint, and the
programme is rejected as a whole before any survey is read.

The default programme ships as package data and is read with
``importlib.resources``; ``trainmatch init DIR`` copies it out for editing.

Everything read is bounded and checked for sense, not only for syntax: a file
over :data:`MAX_FILE_BYTES`, TOML nested deeper than :data:`MAX_TOML_DEPTH`,
a number that is not finite, an id over :data:`MAX_ID` characters, a name,
title or label over :data:`MAX_NAME`, any other text over :data:`MAX_TEXT`,
or a byte that is not valid in the tables' encoding (UTF-8 unless
``[programme] encoding`` says ``cp1252``; a BOM decides) is a located problem.
"""

from __future__ import annotations

import codecs
import csv
import difflib
import hashlib
import io
import math
import re
import tomllib
from dataclasses import dataclass, field, replace
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from .columns import FORMULA_PATTERN
from .errors import Problem, ProblemsError, ProgrammeError

SETTINGS_FILE = "programme.toml"
ITEMS_FILE = "items.csv"
DONT_KNOW_RULES = ("missing", "lowest")  # how an item counts a "don't know" answer
ITEM_OPTIONAL_COLUMNS = ("attitude", "dont_know", "note")  # items.csv columns that may be left out
TASKS_FILE = "tasks.csv"
NO_REQUIREMENT = "-"
# The files that make up a programme (and its fingerprint). Anything else in
# the folder - notes, an example mapping, Excel's lock files - is not read.
CATALOGUE_FILE = "catalogue.csv"
RULES_FILE = "rules.csv"
ROLES_FILE = "roles.csv"
PROGRAMME_FILES = (SETTINGS_FILE, ITEMS_FILE, TASKS_FILE, ROLES_FILE, CATALOGUE_FILE, RULES_FILE)
# How critical a task is (tasks.csv, column ``criticality``): needs that a more critical task creates
# are planned first when the hours do not cover every need. A table without the column is all "normal".
CRITICALITY = {"low": 1, "normal": 2, "high": 3}

# Limits on what a programme (or a mapping file) may hold: far above any real programme, far below
# what would make a run slow or its letters huge (a 50 MB organisation name is copied into every letter).
MAX_FILE_BYTES = 10_000_000  # one programme table
MAX_TOML_BYTES = 1_000_000  # programme.toml or a mapping file
MAX_TOML_DEPTH = 10  # tables and arrays inside each other; a programme needs 4
# Ids reach every output unchanged (people.csv, plans.csv, the workbook, the LMS files): none may read as a formula.
FORMULA_ID = "id starts like a spreadsheet formula."
FORMULA_ID_HINT = "Start ids with a letter or digit."
MAX_ID = 100  # characters in an id (item, task, module, rule, level, domain, role, format, objective, language)
MAX_NAME = 200  # characters in a name, title or label, the organisation's name, the programme's name and version
MAX_TEXT = 1_000  # characters in any other text: questions, notes, support contact, feedback address, rule cells
MAX_LIST = 1_000  # entries in a settings list (answers, codes, personal-data columns)
TABLE_ENCODINGS = ("utf-8", "cp1252")  # the encodings [programme] encoding may declare for the tables


@dataclass(frozen=True)
class Level:
    """A proficiency band: scores at or above ``min_score`` (and below the next band)."""

    id: str
    min_score: float
    names: Mapping[str, str]


@dataclass(frozen=True)
class Domain:
    """A competence domain, scored as the mean of its items."""

    id: str
    names: Mapping[str, str]


@dataclass(frozen=True)
class Item:
    """One Likert item of the questionnaire.

    ``attitude`` items (how people feel about digital work, not what they can do) are reported in the
    item statistics but not counted in the domain's skill score. ``dont_know`` says how a "don't know"
    answer counts: ``missing`` (no answer) or ``lowest`` (the lowest skill: for a know-how item such as
    "I know whom to notify of a data breach", not knowing is the gap itself). ``note`` says why.
    """

    id: str
    domain: str
    reverse: bool
    texts: Mapping[str, str]
    attitude: bool = False
    dont_know: str = "missing"
    note: str = ""


@dataclass(frozen=True)
class Task:
    """A work task or digital service, with the level it requires per domain (1-based, 0 = none)."""

    id: str
    names: Mapping[str, str]
    requires: Mapping[str, int]
    criticality: int = CRITICALITY["normal"]


@dataclass(frozen=True)
class Role:
    """A role or profession a respondent can state, with what everyone in it needs (roles.csv).

    ``baseline``: the level per domain the role requires even of someone who ticks no task;
    ``cap``: the most any task can require of the role per domain (absent = no cap). Levels are 1-based.
    """

    id: str
    names: Mapping[str, str]
    baseline: Mapping[str, int] = field(default_factory=dict)
    cap: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Format:
    """A training format; group formats are delivered to a training group."""

    id: str
    group: bool
    names: Mapping[str, str]


@dataclass(frozen=True)
class Columns:
    """Survey column names for the person-level facts."""

    id: str
    role: str
    site: str
    language: str
    hours: str
    formats: str
    support: str = "willing_to_support"  # optional yes/no: willing to support colleagues (practice 6)


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class Schedule:
    """When group sessions can happen: ``[schedule]`` in programme.toml (see :mod:`trainmatch.calendar`)."""

    start: "date | None" = None  # the first day of the plan period; None: plans say weeks, not dates
    days: tuple[int, ...] = (0, 1, 2, 3)  # weekdays sessions may be held on, Monday = 0
    times: tuple[int, ...] = (9 * 60, 13 * 60)  # session start times, minutes after midnight
    session_minutes: Mapping[str, int] = field(default_factory=dict)  # per format; else the module's hours
    parallel_per_site: int = 2  # sessions a site can hold at the same time (trainers, rooms)
    timezone: str = "UTC"  # an IANA zone, e.g. Europe/Helsinki
    blackout: tuple["date", ...] = ()  # days without sessions (holidays)


@dataclass(frozen=True)
class Programme:
    """A validated programme. Build it with :func:`load_programme`."""

    name: str
    version: str
    languages: tuple[str, ...]
    default_language: str
    columns: Columns
    scale_min: int
    scale_max: int
    scale_labels: Mapping[str, tuple[str, ...]]
    dont_know: tuple[str, ...]
    missing_codes: tuple[str, ...]
    yes: tuple[str, ...]
    no: tuple[str, ...]
    min_answered_share: float
    alpha_warning: float
    levels: tuple[Level, ...]
    domains: tuple[Domain, ...]
    items: tuple[Item, ...]
    tasks: tuple[Task, ...]
    roles: tuple[Role, ...]
    formats: tuple[Format, ...]
    default_hours: float
    max_hours: float
    group_min_size: int
    group_max_size: int
    personal_data: tuple[str, ...]
    organisation: str
    support_contact: str
    feedback: str
    plan_weeks: int
    source: str
    files: Mapping[str, bytes] = field(repr=False)
    fingerprint: str = ""
    encoding: str = "utf-8"  # of the CSV tables (a BOM overrides it)
    # Follow-up rounds: a module rated below demote_below by at least demote_min_ratings people is planned
    # only when no other fits.
    demote_below: float = 2.5
    demote_min_ratings: int = 5
    min_attendees: int = 4  # fewest people a group session is held for ([groups] min_attendees)
    schedule: Schedule = field(default_factory=Schedule)
    # privacy.min_cell: aggregates of fewer people are suppressed in reports, effects.csv and shared copies
    min_cell: int = 5
    retain_months: int | None = None  # privacy.retain_months: `erase --expired` removes runs older than this

    @property
    def domain_ids(self) -> tuple[str, ...]:
        return tuple(d.id for d in self.domains)

    @property
    def level_ids(self) -> tuple[str, ...]:
        return tuple(lv.id for lv in self.levels)

    @property
    def task_ids(self) -> tuple[str, ...]:
        return tuple(t.id for t in self.tasks)

    @property
    def format_ids(self) -> tuple[str, ...]:
        return tuple(f.id for f in self.formats)

    def items_of(self, domain: str) -> tuple[Item, ...]:
        return tuple(i for i in self.items if i.domain == domain)

    def skill_items_of(self, domain: str) -> tuple[Item, ...]:
        """The items the domain's skill score is the mean of (attitude items left out)."""
        return tuple(i for i in self.items if i.domain == domain and not i.attitude)

    def level_name(self, index: int, lang: str = "en") -> str:
        """Name of the 1-based level ``index`` (0 = no requirement)."""
        if index <= 0:
            return {"fi": "ei vaatimusta", "sv": "inget krav"}.get(lang, "none")
        return self.levels[index - 1].names.get(lang, self.levels[index - 1].id)

    def requirement_matrix(self) -> "list[list[int]]":
        """Tasks × domains, the 1-based level each task requires (0 = none)."""
        return [[t.requires.get(d, 0) for d in self.domain_ids] for t in self.tasks]

    def role_matrices(self) -> "tuple[list[list[int]], list[list[int]]]":
        """Roles × domains: the baseline level (0 = none) and the cap (the top level where roles.csv sets none)."""
        top = len(self.levels)
        return ([[r.baseline.get(d, 0) for d in self.domain_ids] for r in self.roles],
                [[r.cap.get(d, top) for d in self.domain_ids] for r in self.roles])

    def level_thresholds(self) -> tuple[float, ...]:
        return tuple(lv.min_score for lv in self.levels)


# --------------------------------------------------------------------------- loading


def default_programme_files() -> dict[str, bytes]:
    """The built-in programme's files, read from package data."""
    root = resources.files("trainmatch") / "data" / "programme"
    return {
        entry.name: entry.read_bytes()
        for entry in root.iterdir()
        if entry.is_file() and entry.name in PROGRAMME_FILES
    }


def read_programme_folder(folder: str | Path) -> dict[str, bytes]:
    """The programme files (:data:`PROGRAMME_FILES`) of a folder, by name. Raises ProgrammeError when unusable."""
    path = Path(folder)
    if not path.is_dir():
        raise ProgrammeError(
            [Problem(str(path), "is not a folder.", hint="Pass the folder written by `trainmatch init DIR`.")]
        )
    files = {
        name: read_bounded(path / name, MAX_TOML_BYTES if name == SETTINGS_FILE else MAX_FILE_BYTES)
        for name in PROGRAMME_FILES
        if (path / name).is_file()
    }
    if SETTINGS_FILE not in files:
        raise ProgrammeError(
            [Problem(str(path), f"has no {SETTINGS_FILE}.", hint="Create one with `trainmatch init DIR`.")]
        )
    return files


def load_programme(folder: str | Path | None = None) -> Programme:
    """Load and validate a programme folder; ``None`` loads the built-in default."""
    if folder is None:
        return parse_programme(default_programme_files(), source="built-in default programme")
    files = read_programme_folder(folder)
    try:
        return parse_programme(files, source=str(folder))
    except ProgrammeError as exc:
        # Name the files by their path, so that a user with several programme folders knows which one.
        problems = [replace(p, file=str(Path(folder) / p.file)) if p.file in PROGRAMME_FILES else p for p in exc.problems]
        raise ProgrammeError(problems) from None


def fingerprint_files(files: Mapping[str, bytes]) -> str:
    """A content hash of the programme (file names and bytes), stable across machines."""
    h = hashlib.sha256()
    for name in sorted(files):
        data = files[name].replace(b"\r\n", b"\n")
        h.update(name.encode() + b"\0" + str(len(data)).encode() + b"\0" + data)
    return h.hexdigest()[:16]


def read_bounded(path: Path, limit: int, error: type[ProblemsError] = ProgrammeError) -> bytes:
    """The bytes of a file, reading no more than ``limit`` + 1; ``error`` naming the file when it is larger."""
    with open(path, "rb") as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise error([Problem(str(path), f"is larger than {limit:,} bytes, far more than such a file holds, so it is not read.",
                             hint="Check that this is the right file.")])
    return data


def decode_text(data: bytes, name: str, encoding: str = "utf-8", error: type[ProblemsError] = ProgrammeError) -> str:
    """``data`` decoded strictly: UTF-8 or UTF-16 when it starts with that BOM, else ``encoding``.

    A byte the encoding cannot have is ``error`` naming the file, the line and
    the byte offset: a stray byte is never silently read as another encoding.
    """
    if data.startswith(codecs.BOM_UTF8):
        enc, skip = "utf-8", len(codecs.BOM_UTF8)
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        enc, skip = "utf-16", 0
    else:
        enc, skip = encoding, 0
    try:
        return data[skip:].decode(enc)
    except UnicodeDecodeError as exc:
        offset = skip + exc.start
        line = data[skip:offset].decode(enc, errors="replace").count("\n") + 1
        label = {"utf-8": "UTF-8", "utf-16": "UTF-16"}.get(enc, enc)
        hint = (
            'Save it as "CSV UTF-8" in Excel (or UTF-8 in your editor), or, if the whole table is in Windows\' '
            f'cp1252, set encoding = "cp1252" under [programme] in {SETTINGS_FILE}.'
            if name.endswith(".csv") else "Save it as UTF-8."
        )
        raise error([Problem(name, f"is not valid {label}: byte 0x{data[offset]:02X} on line {line} (byte offset {offset} in the file) "
                                   f"cannot be {label}.", hint=hint)]) from None


def read_toml(data: bytes | Path, name: str, error: type[ProblemsError] = ProgrammeError) -> dict[str, Any]:
    """Parse a settings file (programme.toml, a mapping; its bytes or its path) within bounds, or raise
    ``error`` naming the file as ``name``.

    Strict UTF-8 (:func:`decode_text`), at most :data:`MAX_TOML_BYTES`, and no
    tables or arrays nested deeper than :data:`MAX_TOML_DEPTH` (a nesting bomb
    is a located problem, not a RecursionError).
    """
    if isinstance(data, Path):
        data = read_bounded(data, MAX_TOML_BYTES, error)
    if len(data) > MAX_TOML_BYTES:
        raise error([Problem(name, f"is larger than {MAX_TOML_BYTES:,} bytes, far more than a settings file holds.",
                             hint="Check that this is the right file.")])
    text = decode_text(data, name, "utf-8", error)
    deep = f"nests tables or arrays more than {MAX_TOML_DEPTH} levels deep; a settings file needs 4."
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error([Problem(name, f"is not valid TOML: {exc}.", hint="Check quotes and brackets on that line.")]) from None
    except RecursionError:
        raise error([Problem(name, deep, hint="Remove the brackets inside brackets.")]) from None
    stack: list[tuple[Any, str, int]] = [(doc, "", 1)]  # the file itself is level 1
    while stack:  # iteratively: the depth is what is being checked
        value, where, depth = stack.pop()
        children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        for key, child in children:
            if isinstance(child, (dict, list)):
                path = f"{where}.{key}".lstrip(".") if isinstance(key, str) else f"{where}[{key + 1}]"
                if depth + 1 > MAX_TOML_DEPTH:
                    raise error([Problem(name, deep, key=path[:80] + ("…" if len(path) > 80 else ""), hint="Remove the brackets inside brackets.")])
                stack.append((child, path, depth + 1))
    return doc


def shorten(text: str, width: int = 40) -> str:
    """A long text cut for a message, with its length: 'Wellbeing services coun… (52,428,800 characters)'."""
    return text if len(text) <= width else f"{text[: width - 1]}… ({len(text):,} characters)"


def programme_table(programme: "Programme", name: str, limits: Mapping[str, int] | None = None) -> tuple[list[str], list[dict[str, str]]]:
    """Header and rows of one of the programme's CSV tables (catalogue, rules); ProgrammeError if it is missing."""
    if name not in programme.files:
        raise ProgrammeError([Problem(name, "is missing from the programme folder.", hint=f"Copy {name} from `trainmatch init DIR` and edit it.")])
    return read_table(name, programme.files[name], programme.encoding, limits)


def read_table(
    name: str, data: bytes, encoding: str = "utf-8", limits: Mapping[str, int] | None = None
) -> tuple[list[str], list[dict[str, str]]]:
    """Parse a small spreadsheet-saved CSV table: strict ``encoding`` (a BOM decides), `,` `;` or tab.

    Every cell is bounded: ``limits`` by column, else :data:`MAX_NAME` for
    ``name_*`` and ``title_*`` columns and the header, :data:`MAX_TEXT` for the
    rest. ProgrammeError lists every cell over its limit, or names the line a
    CSV error is on.
    """
    text = decode_text(data, name, encoding)
    first = text.split("\n", 1)[0]
    delimiter = max([",", ";", "\t"], key=first.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        rows = [r for r in reader]
    except csv.Error as exc:  # a cell over csv's field limit (131,072 characters), a NUL …
        raise ProgrammeError([Problem(name, f"cannot be read as CSV on line {reader.line_num}: {exc}.",
                                      hint=f"Cells hold at most {MAX_TEXT:,} characters.")]) from None
    if not rows:
        return [], []
    header = [h.strip() for h in rows[0]]
    problems = [
        Problem(name, f"column name is longer than {MAX_NAME} characters.", column=shorten(h), hint="Shorten it.")
        for h in header if len(h) > MAX_NAME
    ]
    if problems:
        raise ProgrammeError(problems)
    limit = {h: (limits or {}).get(h, MAX_NAME if h.startswith(("name_", "title_")) else MAX_TEXT) for h in header}
    records = []
    for r in rows[1:]:
        if not any(c.strip() for c in r):
            continue
        r = r + [""] * (len(header) - len(r))
        record = {h: c.strip() for h, c in zip(header, r)}
        records.append(record)
        problems += [
            Problem(name, f"is longer than {limit[h]:,} characters.", row=len(records), column=h, value=shorten(v), hint="Shorten it.")
            for h, v in record.items() if len(v) > limit[h]
        ]
    if problems:
        raise ProgrammeError(problems)
    return header, records


def suggest(value: str, allowed: Iterable[str]) -> str:
    """A fix hint: the closest allowed value, or the list of allowed values."""
    allowed = list(allowed)
    close = difflib.get_close_matches(value, allowed, n=1)
    if close:
        return f"Did you mean {close[0]!r}?"
    return "Allowed: " + ", ".join(allowed) + "."


def header_problems(name: str, header: Sequence[str], required: Sequence[str], known: Sequence[str], unknown_hint: str = "") -> list[Problem]:
    """Problems with a programme table's header: required columns missing, columns nobody reads."""
    problems = [
        Problem(name, "required column is missing.", column=col, hint=suggest(col, header) if header else None)
        for col in required
        if col not in header
    ]
    problems += [
        Problem(name, "unknown column.", column=col, hint=suggest(col, known) + unknown_hint) for col in header if col not in known
    ]
    return problems


class _Collector:
    """Collects problems while the programme is parsed, so all are reported at once."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, file: str, message: str, **kw: Any) -> None:
        self.problems.append(Problem(file, message, **kw))


_SETTINGS_SCHEMA: dict[str, set[str]] = {
    "programme": {"name", "version", "languages", "default_language", "encoding"},
    "columns": {"id", "role", "site", "language", "hours", "formats", "support"},
    "scale": {"min", "max", "dont_know", "missing_codes", "labels"},
    "answers": {"yes", "no"},
    "scoring": {"min_answered_share", "alpha_warning"},
    "levels": {"id", "min_score", "name"},
    "domains": {"id", "name"},
    "roles": {"id", "name"},
    "formats": {"id", "group", "name"},
    "budget": {"default_hours", "max_hours"},
    "groups": {"min_size", "max_size", "min_attendees"},
    "schedule": {"start", "days", "times", "session_minutes", "parallel_per_site", "timezone", "blackout"},
    "personal_data": {"columns"},
    "organisation": {"name", "support_contact", "feedback", "plan_weeks"},
    "feedback": {"demote_below", "min_ratings"},
    "privacy": {"min_cell", "retain_months"},
}
_LIST_SECTIONS = {"levels", "domains", "roles", "formats"}


def parse_programme(files: Mapping[str, bytes], source: str = "programme") -> Programme:
    """Validate the programme's files and build a :class:`Programme`, or raise ProgrammeError."""
    c = _Collector()
    sf = SETTINGS_FILE
    if sf not in files:
        raise ProgrammeError([Problem(source, f"has no {sf}.", hint="Create one with `trainmatch init DIR`.")])
    settings = read_toml(files[sf], sf)

    for section, value in settings.items():
        if section not in _SETTINGS_SCHEMA:
            c.add(sf, f"unknown section [{section}].", key=section, hint=suggest(section, _SETTINGS_SCHEMA))
            continue
        entries = value if section in _LIST_SECTIONS and isinstance(value, list) else [value]
        for n, entry in enumerate(entries, 1):
            if not isinstance(entry, dict):
                c.add(sf, f"[{section}] must be a table.", key=section)
                continue
            for key in entry:
                if key not in _SETTINGS_SCHEMA[section]:
                    where = f"{section}[{n}].{key}" if section in _LIST_SECTIONS else f"{section}.{key}"
                    c.add(sf, "unknown key.", key=where, hint=suggest(key, _SETTINGS_SCHEMA[section]))

    def table(section: str) -> dict:
        """A section as a dict; a section that is not a table was reported above."""
        value = settings.get(section, {})
        return value if isinstance(value, dict) else {}

    def get(section: str, key: str, kind: type | tuple[type, ...], default: Any = None, limit: int = MAX_NAME) -> Any:
        sec = settings.get(section, {})
        if not isinstance(sec, dict) or key not in sec:
            if default is None:
                c.add(sf, "is required.", key=f"{section}.{key}")
            return default
        value = sec[key]
        if isinstance(value, bool) and kind in (int, float, (int, float)):
            c.add(sf, "must be a number.", key=f"{section}.{key}", value=str(value))
            return default
        if not isinstance(value, kind):
            names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            c.add(sf, f"must be of type {names}.", key=f"{section}.{key}", value=shorten(str(value)))
            return default
        if isinstance(value, float) and not math.isfinite(value):
            c.add(sf, "must be a finite number.", key=f"{section}.{key}", value=str(value))
            return default
        if isinstance(value, str) and len(value) > limit:
            c.add(sf, f"is longer than {limit:,} characters.", key=f"{section}.{key}", value=shorten(value), hint="Shorten it.")
            return default
        if isinstance(value, list) and len(value) > MAX_LIST:
            c.add(sf, f"lists more than {MAX_LIST:,} entries.", key=f"{section}.{key}", value=f"{len(value):,} entries")
            return default
        return value

    def text_list(section: str, key: str, default: list, limit: int = MAX_NAME) -> tuple[str, ...]:
        """A list of short texts (numbers are taken as their text)."""
        out = []
        for n, x in enumerate(get(section, key, list, default), 1):
            if isinstance(x, bool) or not isinstance(x, (str, int, float)) or (isinstance(x, float) and not math.isfinite(x)):
                c.add(sf, "must be text in quotes.", key=f"{section}.{key}[{n}]", value=shorten(str(x)))
            elif len(str(x)) > limit:
                c.add(sf, f"is longer than {limit:,} characters.", key=f"{section}.{key}[{n}]", value=shorten(str(x)), hint="Shorten it.")
            else:
                out.append(str(x))
        return tuple(out)

    languages = text_list("programme", "languages", ["en"], MAX_ID)
    default_language = get("programme", "default_language", str, "en", MAX_ID)
    encoding = get("programme", "encoding", str, "utf-8", MAX_ID).lower().replace("_", "-")
    if encoding not in TABLE_ENCODINGS:
        c.add(sf, "is not an encoding the tables may have.", key="programme.encoding", value=encoding,
              hint="Allowed: " + ", ".join(TABLE_ENCODINGS) + " (a table that starts with a BOM is read as it says).")
        encoding = "utf-8"
    if default_language not in languages:
        c.add(sf, "is not one of programme.languages.", key="programme.default_language", value=default_language)

    def names_of(entry: dict, where: str) -> dict[str, str]:
        names = entry.get("name", {})
        if isinstance(names, str):
            names = {lang: names for lang in languages}
        if not isinstance(names, dict):
            c.add(sf, "name must be a table like { fi = …, sv = …, en = … }.", key=where)
            return {}
        missing = [lang for lang in languages if lang not in names]
        if missing:
            c.add(sf, f"name lacks language(s) {', '.join(missing)}.", key=where)
        out = {}
        for lang, name in names.items():
            if not isinstance(name, str):
                c.add(sf, "must be text in quotes.", key=f"{where}.{lang}", value=shorten(str(name)))
            elif len(name) > MAX_NAME:
                c.add(sf, f"is longer than {MAX_NAME} characters.", key=f"{where}.{lang}", value=shorten(name), hint="Shorten it.")
            else:
                out[str(lang)] = name
        return out

    def id_list(section: str) -> list[dict]:
        entries = settings.get(section, [])
        if not isinstance(entries, list) or not entries:
            c.add(sf, f"needs at least one [[{section}]] entry.", key=section)
            return []
        seen: set[str] = set()
        good = []
        for n, entry in enumerate(entries, 1):
            if not isinstance(entry, dict):
                continue
            ident = entry.get("id")
            if not isinstance(ident, str) or not ident.strip():
                c.add(sf, "needs an id.", key=f"{section}[{n}].id")
                continue
            if len(ident) > MAX_ID:
                c.add(sf, f"id is longer than {MAX_ID} characters.", key=f"{section}[{n}].id", value=shorten(ident), hint="Shorten it.")
                continue
            if re.match(FORMULA_PATTERN, ident):
                c.add(sf, FORMULA_ID, key=f"{section}[{n}].id", value=ident, hint=FORMULA_ID_HINT)
                continue
            if ident in seen:
                c.add(sf, "duplicate id.", key=f"{section}[{n}].id", value=ident)
                continue
            seen.add(ident)
            good.append(entry)
        return good

    # columns
    columns = Columns(
        **{k: str(get("columns", k, str, {"id": "person_id", "support": "willing_to_support"}.get(k, k)))
           for k in ("id", "role", "site", "language", "hours", "formats", "support")}
    )

    # scale
    scale_min = get("scale", "min", int, 1)
    scale_max = get("scale", "max", int, 5)
    if scale_max <= scale_min:
        c.add(sf, "must be greater than scale.min.", key="scale.max", value=str(scale_max))
    elif scale_max - scale_min > 100:
        c.add(sf, "the answer scale may have at most 101 points.", key="scale.max", value=f"{scale_min}..{scale_max}")
        scale_min, scale_max = 1, 5
    labels_raw = table("scale").get("labels", {})
    if not isinstance(labels_raw, dict):
        c.add(sf, "must be a table like [scale.labels] with one list per language.", key="scale.labels", value=str(labels_raw))
    scale_labels: dict[str, tuple[str, ...]] = {}
    for lang, labels in (labels_raw.items() if isinstance(labels_raw, dict) else []):
        if not isinstance(labels, list) or len(labels) != scale_max - scale_min + 1:
            c.add(sf, f"must list exactly {scale_max - scale_min + 1} labels, lowest first.", key=f"scale.labels.{lang}")
            continue
        if not all(isinstance(x, str) and len(x) <= MAX_NAME for x in labels):
            c.add(sf, f"labels must be texts in quotes of at most {MAX_NAME} characters.", key=f"scale.labels.{lang}",
                  value=shorten(str(next(x for x in labels if not isinstance(x, str) or len(x) > MAX_NAME))))
            continue
        scale_labels[str(lang)] = tuple(labels)
    dont_know = text_list("scale", "dont_know", [])
    missing_codes = text_list("scale", "missing_codes", [])
    yes = text_list("answers", "yes", ["1", "yes"])
    no = text_list("answers", "no", ["0", "no"])

    share = get("scoring", "min_answered_share", (int, float), 0.5)
    if not 0 < share <= 1:
        c.add(sf, "must be above 0 and at most 1.", key="scoring.min_answered_share", value=str(share))
    alpha_warning = float(get("scoring", "alpha_warning", (int, float), 0.7))

    levels = []
    last = float("-inf")
    for n, entry in enumerate(id_list("levels"), 1):
        ms = entry.get("min_score")
        if isinstance(ms, bool) or not isinstance(ms, (int, float)):
            c.add(sf, "min_score must be a number.", key=f"levels[{n}].min_score", value=shorten(str(ms)))
            continue
        if not math.isfinite(ms):
            c.add(sf, "min_score must be a finite number.", key=f"levels[{n}].min_score", value=str(ms),
                  hint="Give the lowest score of the level, e.g. 2.5.")
            continue
        if ms <= last:
            c.add(sf, "levels must be listed lowest first with increasing min_score.", key=f"levels[{n}].min_score", value=str(ms))
        last = float(ms)
        levels.append(Level(entry["id"], float(ms), names_of(entry, f"levels[{n}].name")))
    if levels and levels[0].min_score > scale_min:
        c.add(sf, f"the lowest level must start at or below scale.min ({scale_min}), or low scores would have no level.", key="levels[1].min_score")
    level_index = {lv.id: i for i, lv in enumerate(levels, 1)}

    domains = [Domain(e["id"], names_of(e, f"domains[{n}].name")) for n, e in enumerate(id_list("domains"), 1)]
    domain_ids = [d.id for d in domains]
    roles = [Role(e["id"], names_of(e, f"roles[{n}].name")) for n, e in enumerate(id_list("roles"), 1)]
    formats = []
    for n, e in enumerate(id_list("formats"), 1):
        group = e.get("group", False)
        if not isinstance(group, bool):
            c.add(sf, "group must be true or false.", key=f"formats[{n}].group", value=str(group))
        formats.append(Format(e["id"], bool(group), names_of(e, f"formats[{n}].name")))

    default_hours = float(get("budget", "default_hours", (int, float), 12.0))
    max_hours = float(get("budget", "max_hours", (int, float), 400.0))
    if default_hours < 0 or default_hours > max_hours:
        c.add(sf, "must be between 0 and budget.max_hours.", key="budget.default_hours", value=str(default_hours))
    gmin = get("groups", "min_size", int, 6)
    gmax = get("groups", "max_size", int, 14)
    if not 1 <= gmin <= gmax:
        c.add(sf, "groups need 1 ≤ min_size ≤ max_size.", key="groups.min_size", value=f"{gmin}..{gmax}")
    min_attendees = get("groups", "min_attendees", int, 4)
    if not 1 <= min_attendees <= 1000:
        c.add(sf, "must be between 1 and 1000 people.", key="groups.min_attendees", value=str(min_attendees))
    schedule = _parse_schedule(table("schedule"), formats, c)
    personal = text_list("personal_data", "columns", [])
    organisation = table("organisation")
    plan_weeks = get("organisation", "plan_weeks", int, 12)
    if not 1 <= plan_weeks <= 104:
        c.add(sf, "must be between 1 and 104 weeks.", key="organisation.plan_weeks", value=str(plan_weeks))
    texts = {}
    for key, limit in (("name", MAX_NAME), ("support_contact", MAX_TEXT), ("feedback", MAX_TEXT)):
        value = organisation.get(key, "")
        if not isinstance(value, str):
            c.add(sf, "must be text in quotes.", key=f"organisation.{key}", value=shorten(str(value)))
            value = ""
        elif len(value) > limit:
            c.add(sf, f"is longer than {limit:,} characters.", key=f"organisation.{key}", value=shorten(value), hint="Shorten it.")
            value = ""
        texts[key] = value
    min_cell = get("privacy", "min_cell", int, 5)
    if not 1 <= min_cell <= 1000:
        c.add(sf, "must be a whole number from 1 to 1000 (1 shows every cell).", key="privacy.min_cell", value=str(min_cell))
    retain_months = get("privacy", "retain_months", int, 0)
    if not 0 <= retain_months <= 1200:
        c.add(sf, "must be a whole number of months from 1 to 1200 (0 or leaving it out: no retention limit).",
              key="privacy.retain_months", value=str(retain_months))
    version = table("programme").get("version", "")
    if isinstance(version, (dict, list)) or len(str(version)) > MAX_NAME:
        c.add(sf, f"must be a short text (at most {MAX_NAME} characters).", key="programme.version", value=shorten(str(version)))
        version = ""

    demote_below = float(get("feedback", "demote_below", (int, float), 2.5))
    if not 1 <= demote_below <= 5:
        c.add(sf, "must be between 1 and 5 (ratings are 1-5).", key="feedback.demote_below", value=str(demote_below))
    min_ratings = get("feedback", "min_ratings", int, 5)
    if not 1 <= min_ratings <= 100_000:
        c.add(sf, "must be at least 1 rating.", key="feedback.min_ratings", value=str(min_ratings))

    items = _parse_items(files, domain_ids, languages, c, encoding)
    tasks = _parse_tasks(files, domain_ids, level_index, languages, c, encoding)
    roles = _parse_roles(files, roles, domain_ids, level_index, c, encoding)

    name = str(get("programme", "name", str, "programme"))
    if c.problems:
        raise ProgrammeError(c.problems)
    prog = Programme(
        name=name,
        version=str(version),
        languages=languages,
        default_language=default_language,
        columns=columns,
        scale_min=scale_min,
        scale_max=scale_max,
        scale_labels=scale_labels,
        dont_know=dont_know,
        missing_codes=missing_codes,
        yes=yes,
        no=no,
        min_answered_share=float(share),
        alpha_warning=alpha_warning,
        levels=tuple(levels),
        domains=tuple(domains),
        items=tuple(items),
        tasks=tuple(tasks),
        roles=tuple(roles),
        formats=tuple(formats),
        default_hours=default_hours,
        max_hours=max_hours,
        group_min_size=gmin,
        group_max_size=gmax,
        personal_data=personal,
        organisation=texts["name"],
        support_contact=texts["support_contact"],
        feedback=texts["feedback"],
        plan_weeks=plan_weeks,
        source=source,
        files=dict(files),
        fingerprint=fingerprint_files(files),
        encoding=encoding,
        min_cell=min_cell,
        demote_below=demote_below,
        demote_min_ratings=min_ratings,
        min_attendees=min_attendees,
        schedule=schedule,
        retain_months=retain_months or None,
    )
    return prog


def parse_date(value: Any) -> "date":
    """A calendar date from TOML (a date) or text ``YYYY-MM-DD``; ValueError otherwise."""
    import datetime as dt

    if isinstance(value, dt.datetime):
        raise ValueError("a date without a time")
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
        return dt.date.fromisoformat(value.strip())
    raise ValueError("a date as YYYY-MM-DD")


def _parse_schedule(sec: dict, formats: list[Format], c: _Collector) -> Schedule:
    """``[schedule]``: every problem is collected with its key; defaults where a key is absent."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    sf = SETTINGS_FILE
    out: dict[str, Any] = {}
    if "start" in sec:
        try:
            out["start"] = parse_date(sec["start"])
        except ValueError:
            c.add(sf, "must be a date as YYYY-MM-DD.", key="schedule.start", value=shorten(str(sec["start"])),
                  hint='Write e.g. start = 2027-01-11.')
    if "days" in sec:
        days = sec["days"]
        good = []
        for n, d in enumerate(days if isinstance(days, list) else [days], 1):
            name = str(d).strip().lower()[:3]
            if not isinstance(d, str) or name not in WEEKDAYS or str(d).strip().lower() not in (name, _DAY_NAMES[name]):
                c.add(sf, "is not a weekday.", key=f"schedule.days[{n}]", value=shorten(str(d)),
                      hint="Use mon, tue, wed, thu, fri, sat or sun.")
            else:
                good.append(WEEKDAYS.index(name))
        if not isinstance(days, list) or not days:
            c.add(sf, "must list at least one weekday.", key="schedule.days", value=shorten(str(days)),
                  hint='Write e.g. days = ["tue", "thu"].')
        out["days"] = tuple(sorted(set(good)))
    if "times" in sec:
        times = sec["times"]
        good = []
        for n, t in enumerate(times if isinstance(times, list) else [times], 1):
            m = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", str(t).strip()) if isinstance(t, str) else None
            if m is None:
                c.add(sf, "is not a time of day.", key=f"schedule.times[{n}]", value=shorten(str(t)),
                      hint='Write times as "HH:MM" in 24-hour time, e.g. "09:00".')
            else:
                good.append(int(m.group(1)) * 60 + int(m.group(2)))
        if not isinstance(times, list) or not times:
            c.add(sf, "must list at least one start time.", key="schedule.times", value=shorten(str(times)),
                  hint='Write e.g. times = ["09:00", "13:00"].')
        out["times"] = tuple(sorted(set(good)))
    if "session_minutes" in sec:
        minutes = sec["session_minutes"]
        known = {f.id for f in formats if f.group}
        good_minutes: dict[str, int] = {}
        if not isinstance(minutes, dict):
            c.add(sf, "must be a table of minutes per group format.", key="schedule.session_minutes",
                  value=shorten(str(minutes)), hint="Write e.g. session_minutes = { workshop = 180, webinar = 90 }.")
            minutes = {}
        for fmt, value in minutes.items():
            if fmt not in known:
                c.add(sf, "is not a group format.", key=f"schedule.session_minutes.{fmt}",
                      hint=suggest(fmt, known) or f"Group formats: {', '.join(sorted(known))}.")
            elif isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 24 * 60:
                c.add(sf, "must be whole minutes between 1 and 1440.", key=f"schedule.session_minutes.{fmt}",
                      value=shorten(str(value)))
            else:
                good_minutes[fmt] = value
        out["session_minutes"] = good_minutes
    if "parallel_per_site" in sec:
        value = sec["parallel_per_site"]
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1000:
            c.add(sf, "must be a whole number of sessions between 1 and 1000.", key="schedule.parallel_per_site",
                  value=shorten(str(value)))
        else:
            out["parallel_per_site"] = value
    if "timezone" in sec:
        value = sec["timezone"]
        try:
            if not isinstance(value, str) or not value.strip() or len(value) > MAX_ID:
                raise ValueError
            ZoneInfo(value.strip())
            out["timezone"] = value.strip()
        except (ValueError, ZoneInfoNotFoundError, OSError):
            c.add(sf, "is not a known time zone.", key="schedule.timezone", value=shorten(str(value)),
                  hint='Use an IANA time zone name such as "Europe/Helsinki", "Europe/Stockholm" or "Europe/London".')
    if "blackout" in sec:
        days = sec["blackout"]
        good_days = []
        for n, d in enumerate(days if isinstance(days, list) else [days], 1):
            try:
                good_days.append(parse_date(d))
            except ValueError:
                c.add(sf, "must be a date as YYYY-MM-DD.", key=f"schedule.blackout[{n}]", value=shorten(str(d)))
        out["blackout"] = tuple(sorted(set(good_days)))
    return Schedule(**out)


_DAY_NAMES = {"mon": "monday", "tue": "tuesday", "wed": "wednesday", "thu": "thursday", "fri": "friday",
              "sat": "saturday", "sun": "sunday"}


def _table(name: str, data: bytes, encoding: str, limits: Mapping[str, int], c: _Collector) -> tuple[list[str], list[dict[str, str]]]:
    """:func:`read_table`, its problems collected with the others."""
    try:
        return read_table(name, data, encoding, limits)
    except ProgrammeError as exc:
        c.problems += exc.problems
        return [], []


def _parse_items(
    files: Mapping[str, bytes], domain_ids: list[str], languages: tuple[str, ...], c: _Collector, encoding: str = "utf-8"
) -> list[Item]:
    name = ITEMS_FILE
    if name not in files:
        c.add(name, "is missing from the programme folder.", hint="Every programme needs its questionnaire items.")
        return []
    header, rows = _table(name, files[name], encoding,
                          {"item_id": MAX_ID, "domain": MAX_ID, "reverse": MAX_ID, "attitude": MAX_ID, "dont_know": MAX_ID}, c)
    if not header:
        return []
    required = ["item_id", "domain", "reverse"] + [f"text_{lang}" for lang in languages]
    optional = list(ITEM_OPTIONAL_COLUMNS)
    known = required + optional + [h for h in header if h.startswith("text_")]  # texts in more languages are kept
    c.problems += header_problems(name, header, required, known)
    if any(col not in header for col in required):
        return []
    items, seen = [], set()
    for n, r in enumerate(rows, 1):
        ident = r["item_id"]
        if not ident:
            c.add(name, "item_id is empty.", row=n, column="item_id")
            continue
        if re.match(FORMULA_PATTERN, ident):
            c.add(name, FORMULA_ID, row=n, column="item_id", value=ident, hint=FORMULA_ID_HINT)
            continue
        if ident in seen:
            c.add(name, "duplicate item_id.", row=n, column="item_id", value=ident)
            continue
        seen.add(ident)
        if r["domain"] not in domain_ids:
            c.add(name, "unknown domain.", row=n, column="domain", value=r["domain"], hint=suggest(r["domain"], domain_ids))
            continue
        rev = r["reverse"].lower()
        if rev not in {"yes", "no", "true", "false", "1", "0", ""}:
            c.add(name, "reverse must be yes or no.", row=n, column="reverse", value=r["reverse"])
            continue
        attitude = (r.get("attitude") or "").strip().lower()
        if attitude not in {"yes", "no", "true", "false", "1", "0", ""}:
            c.add(name, "attitude must be yes (reported, not counted in the skill score) or no (a skill item; the default).",
                  row=n, column="attitude", value=r["attitude"])
            continue
        dont_know = (r.get("dont_know") or "").strip().lower() or "missing"
        if dont_know not in DONT_KNOW_RULES:
            c.add(name, "dont_know must be missing (a \"don't know\" answer counts as no answer; the default) or lowest "
                  "(it counts as the lowest skill).", row=n, column="dont_know", value=r["dont_know"])
            continue
        texts = {lang: r.get(f"text_{lang}", "") for lang in languages}
        items.append(Item(ident, r["domain"], rev in {"yes", "true", "1"}, texts, attitude in {"yes", "true", "1"}, dont_know,
                          (r.get("note") or "").strip()))
    for d in domain_ids:
        if items and not any(i.domain == d for i in items):
            c.add(name, f"domain {d!r} has no items.", hint="Give every domain at least one item, or remove the domain from programme.toml.")
        elif items and all(i.attitude for i in items if i.domain == d):
            last = max(n for n, r in enumerate(rows, 1) if r.get("domain") == d)
            c.add(name, f"every item of domain {d!r} is marked attitude, so the domain has no skill score left.", row=last,
                  column="attitude", value=rows[last - 1].get("attitude", ""),
                  hint="Mark at least one of its items attitude = no, or remove the domain from programme.toml.")
    return items


def _parse_tasks(
    files: Mapping[str, bytes],
    domain_ids: list[str],
    level_index: dict[str, int],
    languages: tuple[str, ...],
    c: _Collector,
    encoding: str = "utf-8",
) -> list[Task]:
    name = TASKS_FILE
    if name not in files:
        c.add(name, "is missing from the programme folder.", hint="Every programme needs the task requirement matrix.")
        return []
    header, rows = _table(name, files[name], encoding, {"task_id": MAX_ID, **{d: MAX_ID for d in domain_ids}}, c)
    if not header:
        return []
    required = ["task_id"] + [f"name_{lang}" for lang in languages] + list(domain_ids)
    known = required + ["criticality"] + [h for h in header if h.startswith("name_")]
    c.problems += header_problems(name, header, required, known, " Other columns must be domains of the programme.")
    if any(col not in header for col in required):
        return []
    allowed = list(level_index) + [NO_REQUIREMENT]
    tasks, seen = [], set()
    for n, r in enumerate(rows, 1):
        ident = r["task_id"]
        if not ident:
            c.add(name, "task_id is empty.", row=n, column="task_id")
            continue
        if re.match(FORMULA_PATTERN, ident):
            c.add(name, FORMULA_ID, row=n, column="task_id", value=ident, hint=FORMULA_ID_HINT)
            continue
        if ident in seen:
            c.add(name, "duplicate task_id.", row=n, column="task_id", value=ident)
            continue
        seen.add(ident)
        requires = {}
        for d in domain_ids:
            cell = r[d] or NO_REQUIREMENT
            if cell == NO_REQUIREMENT:
                continue
            if cell not in level_index:
                c.add(name, "unknown level.", row=n, column=d, value=cell, hint=suggest(cell, allowed))
                continue
            requires[d] = level_index[cell]
        crit = r.get("criticality", "") or "normal"
        if crit not in CRITICALITY:
            c.add(name, "unknown criticality.", row=n, column="criticality", value=crit, hint=suggest(crit, CRITICALITY))
            crit = "normal"
        tasks.append(Task(ident, {lang: r.get(f"name_{lang}", "") for lang in languages}, requires, CRITICALITY[crit]))
    if not tasks and not c.problems:
        c.add(name, "has no tasks.", hint="List at least one work task or digital service.")
    return tasks


def _parse_roles(
    files: Mapping[str, bytes],
    roles: list[Role],
    domain_ids: list[str],
    level_index: dict[str, int],
    c: _Collector,
    encoding: str = "utf-8",
) -> list[Role]:
    """``roles`` with their baseline and cap per domain from roles.csv (a programme without it has neither).

    One row per role: ``role_id``, then ``baseline_<domain>`` and ``cap_<domain>`` for any domains,
    each a level id or ``-`` (no baseline, no cap). A cap below the baseline is a problem: the role
    would be required to reach more than it may be asked to.
    """
    name = ROLES_FILE
    if name not in files:
        return roles
    header, rows = _table(name, files[name], encoding, {h: MAX_ID for h in ["role_id"]}, c)
    if not header:
        return roles
    known = ["role_id"] + [f"{kind}_{d}" for d in domain_ids for kind in ("baseline", "cap")]
    c.problems += header_problems(name, header, ["role_id"], known,
                                  " Columns are baseline_<domain> and cap_<domain> for domains of the programme.")
    if "role_id" not in header:
        return roles
    role_ids = [r.id for r in roles]
    allowed = list(level_index) + [NO_REQUIREMENT]
    found: dict[str, Role] = {}
    for n, r in enumerate(rows, 1):
        ident = r["role_id"]
        if ident not in role_ids:
            c.add(name, "unknown role.", row=n, column="role_id", value=ident,
                  hint=(suggest(ident, role_ids) if ident else "Allowed: " + ", ".join(role_ids) + ".")
                  + f" Roles are listed as [[roles]] in {SETTINGS_FILE}.")
            continue
        if ident in found:
            c.add(name, "duplicate role_id.", row=n, column="role_id", value=ident)
            continue
        levels: dict[str, dict[str, int]] = {"baseline": {}, "cap": {}}
        for d in domain_ids:
            for kind in ("baseline", "cap"):
                col = f"{kind}_{d}"
                cell = r.get(col, "") or NO_REQUIREMENT
                if cell == NO_REQUIREMENT:
                    continue
                if cell not in level_index:
                    c.add(name, "unknown level.", row=n, column=col, value=cell, hint=suggest(cell, allowed))
                    continue
                levels[kind][d] = level_index[cell]
            base, cap = levels["baseline"].get(d, 0), levels["cap"].get(d, len(level_index))
            if cap < base:
                c.add(name, f"the cap is below the baseline ({r.get(f'baseline_{d}')}): the role could not be "
                            "required to reach its own baseline.", row=n, column=f"cap_{d}", value=r.get(f"cap_{d}", ""),
                      hint=f"Raise cap_{d} to at least the baseline, or lower baseline_{d}.")
        found[ident] = Role(ident, next(x.names for x in roles if x.id == ident), levels["baseline"], levels["cap"])
    return [found.get(x.id, x) for x in roles]


def write_programme(folder: str | Path, files: Mapping[str, bytes] | None = None) -> list[Path]:
    """Write the programme files (default: the built-in ones) into ``folder``; returns the paths."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    from .staging import staged_file

    for name, data in sorted((files or default_programme_files()).items()):
        path = out / name
        with staged_file(path) as tmp:  # an edited programme is never left half-overwritten
            tmp.write_bytes(data)
        written.append(path)
    return written
