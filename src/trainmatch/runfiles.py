"""The files of a run and how each holds person ids: a declared registry, and a handler per kind.

`person`, `erase` and `share` (:mod:`trainmatch.privacy`) are driven by
:data:`RUN_FILES`: every file of a run folder must match one entry, or those
commands refuse the folder (a file they do not know could hold a person they
would miss). A new output file is covered by adding an entry here.

Kinds:

- ``table``: a CSV table. ``owner`` columns make a row the person's (erase
  removes the row); ``named`` columns name a person in someone else's row
  (erase writes ``replacement`` there); ``lists`` columns list ids separated by
  ``sep`` (erase takes the id out, and updates the count column given in
  ``counts``). Rows that are not changed keep their bytes.
- ``derived``: a file with no person ids. Erase rebuilds cohorts.csv,
  groups.csv, capacity.csv, plans.xlsx, report.html and run.json from the
  remaining tables (:data:`trainmatch.privacy.REBUILT`) and keeps any other
  as it is; share suppresses small cells in the three tables and leaves any
  other out.
- ``letter``: one file per person, named by :func:`trainmatch.letters.plan_filename`.
- ``flatfile``: Moodle's flat-file enrolment lines ``add, student, <person_id>, <course>[, start, end]``.
- ``ics``: iCalendar files; a line naming the person is dropped when its
  property is in ``drop`` (e.g. ATTENDEE), else the id becomes ``replacement``.
- ``sessions``: sessions.csv: no ids, but ``attendees`` counts the plans.csv rows of each session (erase counts
  them again from the remaining rows).
- ``calendar``: calendar/<group>.ics of sessions.csv's sessions: no ids, but each event's DESCRIPTION says how
  many attend (erase updates the count of the sessions whose count changed; other files keep their bytes).
- ``lms_cohorts``: lms/moodle-cohorts.csv, a Moodle cohort per training group: its description counts the
  group's members (erase updates it from the rebuilt groups.csv, and leaves out a group that has no one left).
- ``lms_users``: lms/moodle-users.csv: a Moodle username per person, in the order of their first row in
  lms/enrolments.csv, with their courses in the same order (erase removes the person's row by that order, after
  checking that its courses are theirs).
- ``plain``: holds no person data (the output marker, the cohort model).

``share`` says what `trainmatch share` does with the file: ``pseudonymise``
(ids replaced by keyed pseudonyms), ``aggregate`` (copied with small cells
suppressed), ``rebuild`` (written anew), or ``drop`` (left out).
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Mapping

from .errors import DataError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import pyarrow as pa

TO_BE_NAMED = "to be named"


@dataclass(frozen=True)
class RunFile:
    """One entry of the registry: which files (a glob on the path inside the run) and how they hold ids."""

    pattern: str
    kind: str  # table, derived, letter, flatfile, ics, plain
    owner: tuple[str, ...] = ()
    named: tuple[str, ...] = ()
    lists: tuple[str, ...] = ()
    counts: Mapping[str, str] = field(default_factory=dict)  # list column -> its count column
    sep: str = ";"
    replacement: str = TO_BE_NAMED
    drop: tuple[str, ...] = ()  # ics: properties whose line is removed when it names the person
    share: str = "pseudonymise"
    label: str = ""  # what the file holds about a person, for `person`
    # `person`: the columns shown of a row that only names the person (another person's row: not all of it)
    named_shows: tuple[str, ...] = ()
    raw: tuple[str, ...] = ()  # columns share leaves out: a survey or LMS cell as typed can name someone

    def matches(self, relative: str) -> bool:
        return fnmatch.fnmatchcase(relative, self.pattern)


KINDS = ("table", "derived", "letter", "flatfile", "ics", "sessions", "calendar", "lms_cohorts", "lms_users", "plain")

RUN_FILES: tuple[RunFile, ...] = (
    RunFile("people.csv", "table", owner=("person_id",), named=("support_person",), named_shows=("group", "support_person"),
            label="scores, levels, requirements, cohort, training group and support person"),
    RunFile("plans.csv", "table", owner=("person_id",), label="plan steps"),
    RunFile("deferred.csv", "table", owner=("person_id",), label="deferred items"),
    RunFile("rejects.csv", "table", owner=("person_id",), raw=("value",), label="rejected survey cells"),
    RunFile("change.csv", "table", owner=("person_id",), label="change since the previous round, per domain"),
    RunFile("leavers.csv", "table", owner=("person_id",), label="left since the previous round"),
    RunFile("completions-rejects.csv", "table", owner=("person_id",), raw=("value",), label="rejected completion rows"),
    RunFile("feedback-rejects.csv", "table", owner=("person_id",), raw=("value",), label="rejected feedback rows"),
    RunFile("groups.csv", "table", named=("support_1", "support_2"), named_shows=("group", "site", "main_domains"),
            share="aggregate", label="training groups the person supports"),
    RunFile("sessions.csv", "sessions", share="aggregate", label="the person's group sessions"),
    RunFile("cohorts.csv", "derived", share="aggregate"),
    RunFile("capacity.csv", "derived", share="aggregate"),
    RunFile("effects.csv", "derived", share="aggregate"),
    RunFile("modules.csv", "derived", share="aggregate"),
    RunFile("plans.xlsx", "derived", share="rebuild"),
    RunFile("report.html", "derived", share="rebuild"),
    RunFile("run.json", "derived", share="rebuild"),
    RunFile("plans/plan-*.html", "letter", share="drop", label="the printable plan"),
    RunFile("calendar/*.ics", "calendar", share="drop", label="calendar events of the person's sessions"),
    RunFile("lms/enrolments.csv", "table", owner=("person_id",), share="drop", label="LMS enrolments"),
    RunFile("lms/moodle-flatfile.txt", "flatfile", share="drop", label="Moodle enrolment lines"),
    RunFile("lms/moodle-cohorts.csv", "lms_cohorts", share="drop", label="the Moodle cohort of the person's training group"),
    RunFile("lms/moodle-users.csv", "lms_users", share="drop", label="the person's Moodle username, cohort and courses"),
    # The cohort model: standardisation and cluster centres, no person's row. Share leaves it out: a centre of a
    # cohort smaller than min_cell would be that cohort's means, unsuppressed.
    RunFile("model/*", "plain", share="drop"),
    RunFile(".trainmatch-output", "plain", share="drop"),
)

WORKBOOK_SHEETS = {"people": "people.csv", "plans": "plans.csv", "cohorts": "cohorts.csv", "groups": "groups.csv"}


def registry_entry(relative: str, registry: Iterable[RunFile] = RUN_FILES) -> RunFile | None:
    """The first entry whose pattern matches ``relative`` (a POSIX path inside the run), or None."""
    for entry in registry:
        if entry.matches(relative):
            return entry
    return None


def run_files(folder: Path, registry: Iterable[RunFile] = RUN_FILES) -> list[tuple[str, RunFile]]:
    """Every file of the run (its POSIX path inside the run) with its entry, sorted; a file no entry covers is
    refused (DataError), naming it.

    Walked with ``os.scandir`` and matched with compiled patterns: a run of a million letters is listed in seconds.
    """
    import os

    registry = tuple(registry)
    # one alternation of every entry's pattern, tried in registry order: one match per file, not one per entry
    anyone = re.compile("|".join(f"(?P<e{n}>{fnmatch.translate(e.pattern)})" for n, e in enumerate(registry)) or "(?!)")
    found: list[tuple[str, RunFile]] = []
    unknown: list[str] = []
    pending = [""]
    while pending:
        prefix = pending.pop()
        with os.scandir(os.path.join(folder, prefix) if prefix else folder) as entries:
            for item in entries:
                relative = prefix + item.name
                if item.is_symlink():
                    raise DataError(f"{folder / relative}: is a symbolic link; a run folder holds only files trainmatch wrote. "
                                    "Remove it and run again.")
                if item.is_dir():
                    pending.append(relative + "/")
                    continue
                hit = anyone.match(relative)
                if hit is None:
                    unknown.append(relative)
                else:
                    found.append((relative, registry[int(hit.lastgroup[1:])]))
    if unknown:
        unknown.sort()
        shown = ", ".join(unknown[:10]) + (f" and {len(unknown) - 10} more" if len(unknown) > 10 else "")
        raise DataError(
            f"{folder}: holds files trainmatch does not know how to search for a person: {shown}. "
            "Nothing was changed. Move them out of the run folder and run again."
        )
    found.sort(key=lambda item: item[0])
    return found


# --------------------------------------------------------------------------- CSV records, byte-exact


def record_bounds(data: bytes) -> "tuple[np.ndarray, np.ndarray]":
    """Start and end offsets of each record of a CSV (header first): newlines outside quotes end records.

    Vectorised: a newline ends a record when an even number of quotes comes
    before it (an escaped quote ``""`` counts twice), as RFC 4180 quoting gives.
    """
    import numpy as np

    buf = np.frombuffer(data, dtype=np.uint8)
    newlines = np.flatnonzero(buf == 10)
    quotes = np.flatnonzero(buf == 34)
    ends = newlines[np.searchsorted(quotes, newlines) % 2 == 0] + 1
    if len(data) and (not len(ends) or ends[-1] != len(data)):
        ends = np.append(ends, len(data))
    starts = np.concatenate([[0], ends[:-1]]).astype(np.int64)
    return starts, ends.astype(np.int64)


_FIELD = re.compile(r'"((?:[^"]|"")*)"|([^,]*)')


def split_record(text: str) -> list[tuple[str, bool]]:
    """One CSV record (without its line ending) as (value, was quoted) per field."""
    fields = []
    pos = 0
    while True:
        m = _FIELD.match(text, pos)
        assert m is not None  # the pattern matches the empty string
        quoted = m.group(1) is not None
        fields.append((m.group(1).replace('""', '"') if quoted else m.group(2), quoted))
        pos = m.end()
        if pos >= len(text) or text[pos] != ",":
            return fields
        pos += 1


def join_record(fields: Iterable[tuple[str, bool]]) -> str:
    return ",".join('"' + value.replace('"', '""') + '"' if quoted or any(c in value for c in ',"\n\r') else value
                    for value, quoted in fields)


def read_columns(path: Path, columns: Iterable[str]) -> "pd.DataFrame":
    """Some columns of a run's CSV as text (missing columns are left out), every row in file order."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    header = header_of(path)
    wanted = [c for c in dict.fromkeys(columns) if c in header]
    table = pacsv.read_csv(
        path,
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(include_columns=wanted, column_types={c: pa.string() for c in wanted},
                                             strings_can_be_null=False, quoted_strings_can_be_null=False),
    )
    return table.to_pandas(types_mapper=lambda t: None)


def read_table(path: Path, id_columns: Iterable[str] = ("person_id",), columns: Iterable[str] | None = None, *,
               arrow_text: bool = False) -> "pd.DataFrame":
    """A run's CSV table with its id columns as text and the other columns typed as written (only ``columns``,
    those of them it has, when given). ``arrow_text``: text columns stay Arrow-backed (``string[pyarrow]``), with
    no Python string per cell, for callers that only pass them on to Arrow."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    header = header_of(path)
    types = {c: pa.string() for c in id_columns if c in header}
    include = [c for c in columns if c in header] if columns is not None else []
    table = pacsv.read_csv(path, parse_options=pacsv.ParseOptions(newlines_in_values=True),
                           convert_options=pacsv.ConvertOptions(column_types=types, include_columns=include))
    if arrow_text:
        import pandas as pd

        text = pd.StringDtype("pyarrow")
        return table.to_pandas(types_mapper=lambda t: text if t == pa.string() else None)
    return table.to_pandas()


def header_of(path: Path) -> list[str]:
    with open(path, "rb") as fh:
        first = fh.readline(1 << 20).decode("utf-8-sig").rstrip("\r\n")
    return [value for value, _ in split_record(first)] if first else []


def _id_cells(values: "pd.Series", ids: "set[str]", sep: str | None) -> "np.ndarray":
    """Which cells hold one of ``ids`` (the whole cell, or one item of a ``sep``-separated list)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = pa.array(values.to_numpy(dtype=object), type=pa.string())
    id_set = pa.array(sorted(ids), type=pa.string())
    if sep is None:
        return pc.is_in(pc.utf8_trim_whitespace(arr), value_set=id_set).to_numpy(zero_copy_only=False).astype(bool)
    items = pc.split_pattern(arr, sep)
    flat = pc.is_in(pc.utf8_trim_whitespace(pc.list_flatten(items)), value_set=id_set).to_numpy(zero_copy_only=False)
    parents = pc.list_parent_indices(items).to_numpy()
    hit = np.zeros(len(arr), dtype=bool)
    hit[parents[flat.astype(bool)]] = True
    return hit


@dataclass(frozen=True)
class TableMatch:
    """Which data rows of a table belong to the people, and which only name them."""

    owned: "np.ndarray"  # bool per data row: the row is the person's
    named: "np.ndarray"  # bool per data row: the row names the person in a named or list column
    found: frozenset[str] = frozenset()  # which of the ids the table holds


def match_table(path: Path, entry: RunFile, ids: "set[str]") -> TableMatch:
    import numpy as np

    columns = read_columns(path, (*entry.owner, *entry.named, *entry.lists))
    n = len(columns)
    owned = np.zeros(n, dtype=bool)
    named = np.zeros(n, dtype=bool)
    found: set[str] = set()
    for c, sep, into in ([(c, None, owned) for c in entry.owner] + [(c, None, named) for c in entry.named]
                         + [(c, entry.sep, named) for c in entry.lists]):
        if c not in columns:
            continue
        hit = _id_cells(columns[c], ids, sep)
        into |= hit
        for cell in columns[c].to_numpy(dtype=object)[hit]:  # only the matching cells: a few
            found.update(x.strip() for x in (cell.split(sep) if sep else [cell]) if x.strip() in ids)
    return TableMatch(owned, named & ~owned, frozenset(found))


def erase_table(path: Path, target: Path, entry: RunFile, ids: "set[str]", match: TableMatch | None = None,
                removed: "list[dict[str, str]] | None" = None) -> int:
    """Write ``path`` to ``target`` without the people's rows, and with them taken out of named and list cells.

    Every other row keeps its bytes. Returns the number of rows removed; ``removed``, when given, gets each
    removed row (column → text).
    """
    import numpy as np

    data = path.read_bytes()
    starts, ends = record_bounds(data)
    match = match if match is not None else match_table(path, entry, ids)
    if len(starts) - 1 != len(match.owned):
        raise DataError(f"{path}: its rows cannot be told apart ({len(starts) - 1} lines, {len(match.owned)} records); "
                        "it was not written by trainmatch or was edited. Restore it from the run and try again.")
    keep = np.concatenate([[True], ~match.owned])
    if removed is not None:
        header = header_of(path)
        for i in np.flatnonzero(match.owned).tolist():  # the people's rows: a few
            values = [v for v, _ in split_record(data[starts[i + 1]:ends[i + 1]].decode("utf-8").rstrip("\r\n"))]
            removed.append(dict(zip(header, values)))
    edits = {int(i) + 1: _edited_record(data[starts[i + 1]:ends[i + 1]], header_of(path), entry, ids)
             for i in np.flatnonzero(match.named)}
    target.write_bytes(splice(data, starts, ends, keep, edits))
    return int(match.owned.sum())


def splice(data: bytes, starts: "np.ndarray", ends: "np.ndarray", keep: "np.ndarray", edits: dict[int, bytes]) -> bytes:
    """The records of ``data`` that ``keep`` says (header included), record ``i`` replaced by ``edits[i]``; the
    other records keep their bytes (vectorised between the edits)."""
    import numpy as np

    buf = np.frombuffer(data, dtype=np.uint8)
    pieces: list[bytes] = []
    begin = 0
    for rec in sorted(edits) + [len(starts)]:
        span = slice(begin, rec)
        lengths = ends[span] - starts[span]
        if len(lengths):
            mask = np.repeat(keep[span], lengths)
            pieces.append(buf[starts[begin]:ends[rec - 1]][mask].tobytes())
        if rec < len(starts) and keep[rec]:
            pieces.append(edits[rec])
        begin = rec + 1
    return b"".join(pieces)


def set_cells(path: Path, key: str, column: str, values: Mapping[str, str], *, drop: "set[str] | None" = None) -> "tuple[bytes, int]":
    """``path``'s bytes with the ``column`` cell of the rows whose ``key`` is in ``values`` set to it (only where it
    differs), and the rows whose key is in ``drop`` left out; every other row keeps its bytes.
    Returns (bytes, rows changed or left out)."""
    import numpy as np

    data = path.read_bytes()
    starts, ends = record_bounds(data)
    frame = read_columns(path, [key, column])
    if len(starts) - 1 != len(frame):
        raise DataError(f"{path}: its rows cannot be told apart ({len(starts) - 1} lines, {len(frame)} records); "
                        "it was not written by trainmatch or was edited. Restore it from the run and try again.")
    keys = frame[key].to_numpy(dtype=object)
    new = frame[key].map(values)
    differs = (new.notna() & (new != frame[column])).to_numpy()
    gone = frame[key].isin(drop or set()).to_numpy()
    keep = np.concatenate([[True], ~gone])
    header = header_of(path)
    at = header.index(column)
    edits = {}
    for i in np.flatnonzero(differs & ~gone).tolist():
        record = data[starts[i + 1]:ends[i + 1]]
        body = record.rstrip(b"\r\n")
        fields = split_record(body.decode("utf-8"))
        fields[at] = (str(values[keys[i]]), fields[at][1])
        edits[i + 1] = join_record(fields).encode("utf-8") + record[len(body):]
    return splice(data, starts, ends, keep, edits), int((differs | gone).sum())


def _edited_record(record: bytes, header: list[str], entry: RunFile, ids: "set[str]") -> bytes:
    """One row with the people taken out of its named and list cells (and its count cells updated)."""
    body = record.rstrip(b"\r\n")
    ending = record[len(body):]
    fields = split_record(body.decode("utf-8"))
    index = {name: i for i, name in enumerate(header)}
    for c in entry.named:
        i = index.get(c)
        if i is not None and i < len(fields) and fields[i][0].strip() in ids:
            fields[i] = (entry.replacement, True)
    for c in entry.lists:
        i = index.get(c)
        if i is None or i >= len(fields):
            continue
        items = [x for x in fields[i][0].split(entry.sep) if x.strip() and x.strip() not in ids]
        fields[i] = (entry.sep.join(items), fields[i][1])
        count = index.get(entry.counts.get(c, ""))
        if count is not None and count < len(fields):
            fields[count] = (str(len(items)), False)
    return join_record(fields).encode("utf-8") + ending


# --------------------------------------------------------------------------- Moodle flat file


_FLAT_ID = r"^\s*[^,]*,\s*[^,]*,\s*(?P<id>[^,]*?)\s*(?:,|$)"


def line_bounds(data: bytes) -> "tuple[np.ndarray, np.ndarray]":
    """Start and end offsets of each line (its \\n included)."""
    import numpy as np

    buf = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(buf == 10) + 1
    if len(data) and (not len(ends) or ends[-1] != len(data)):
        ends = np.append(ends, len(data))
    return np.concatenate([[0], ends[:-1]]).astype(np.int64), ends.astype(np.int64)


def flatfile_ids(data: bytes) -> "pa.Array":
    """The person id of each line of a Moodle flat file (null for a line that has none), vectorised."""
    import pyarrow as pa
    import pyarrow.compute as pc

    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    arr = pa.array(lines, type=pa.binary()).cast(pa.string())
    return pc.extract_regex(arr, _FLAT_ID).field("id") if len(arr) else arr


def flatfile_match(data: bytes, ids: "set[str]") -> "tuple[np.ndarray, np.ndarray, np.ndarray]":
    """Line bounds of a flat file and which lines enrol one of ``ids``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    import numpy as np

    starts, ends = line_bounds(data)
    hit = np.zeros(len(starts), dtype=bool)
    # Only the lines where one of the ids stands as a field are parsed (a few), not every line: the id is
    # searched as bytes, and each line found is checked to hold it as its third field.
    positions = []
    for i in ids:  # a literal search per id (fast); the regex below decides whether it is the id field
        needle, at = i.encode("utf-8"), 0
        while needle and (at := data.find(needle, at)) >= 0:
            positions.append(at)
            at += len(needle)
    candidates = np.unique(np.searchsorted(ends, positions, side="right")).astype(np.int64)
    if len(candidates):
        lines = pa.array([data[starts[i]:ends[i]].rstrip(b"\r\n") for i in candidates.tolist()], type=pa.binary()).cast(pa.string())
        found = pc.extract_regex(lines, _FLAT_ID).field("id")
        confirmed = pc.fill_null(pc.is_in(found, value_set=pa.array(sorted(ids), type=pa.string())), False)
        hit[candidates[confirmed.to_numpy(zero_copy_only=False).astype(bool)]] = True
    return starts, ends, hit


def erase_lines(data: bytes, starts: "np.ndarray", ends: "np.ndarray", drop: "np.ndarray") -> bytes:
    """The bytes without the dropped lines (vectorised)."""
    import numpy as np

    buf = np.frombuffer(data, dtype=np.uint8)
    return buf[np.repeat(~drop, ends - starts)].tobytes()


# --------------------------------------------------------------------------- iCalendar


def ics_lines(text: str) -> list[tuple[str, str]]:
    """Content lines of an iCalendar text: (unfolded line, its raw text with folds and line ending)."""
    raw = re.split(r"(?<=\n)(?![ \t])", text)
    out = []
    for chunk in raw:
        if not chunk:
            continue
        out.append((re.sub(r"\r?\n[ \t]", "", chunk).rstrip("\r\n"), chunk))
    return out


def id_pattern(ids: Iterable[str]) -> "re.Pattern[str]":
    """An id as a whole token: not inside a longer word or number."""
    alternatives = "|".join(re.escape(i) for i in sorted(ids, key=len, reverse=True))
    return re.compile(rf"(?<![0-9A-Za-z])(?:{alternatives})(?![0-9A-Za-z])")


def fold(line: str, ending: str = "\r\n") -> str:
    """Fold a content line at 75 octets (RFC 5545 3.1), never inside a UTF-8 character."""
    out, current = [], ""
    for ch in line:
        limit = 75 if not out else 74
        if len((current + ch).encode("utf-8")) > limit:
            out.append(current)
            current = ch
        else:
            current += ch
    out.append(current)
    return (ending + " ").join(out) + ending


def erase_ics(text: str, entry: RunFile, ids: "set[str]") -> tuple[str, int]:
    """The calendar without the people: lines of ``entry.drop`` properties naming them removed, other
    mentions replaced by ``entry.replacement``. Unchanged lines keep their text. Returns (text, lines changed)."""
    pattern = id_pattern(ids)
    out, changed = [], 0
    for line, raw in ics_lines(text):
        if not pattern.search(line):
            out.append(raw)
            continue
        changed += 1
        name = re.split(r"[;:]", line, maxsplit=1)[0].upper()
        if name in entry.drop:
            continue
        ending = "\r\n" if raw.endswith("\r\n") else "\n"
        out.append(fold(pattern.sub(entry.replacement, line), ending))
    return "".join(out), changed


def ics_mentions(text: str, ids: "set[str]") -> list[str]:
    """The unfolded lines of a calendar that name the person, each after its event's SUMMARY."""
    pattern = id_pattern(ids)
    out: list[str] = []
    block: list[str] = []
    for line, _ in ics_lines(text):
        block.append(line)
        if line.upper().startswith(("END:VEVENT", "END:VCALENDAR")):
            hits = [x for x in block if pattern.search(x)]
            summary = next((x.split(":", 1)[-1] for x in block if x.upper().startswith("SUMMARY")), "")
            out += [f"{summary}: {x}" if summary else x for x in hits]
            block = []
    return out


# --------------------------------------------------------------------------- sessions, calendars and Moodle files


def session_counts(sessions: Path, removed_steps: "Iterable[Mapping[str, str]]") -> "tuple[dict[str, str], dict[str, str]]":
    """The new attendee count of each session that lost attendees, and its group: a session's attendees are its
    plan steps (plans.csv's session_id), so each removed step with a session_id takes one off."""
    from collections import Counter

    lost = Counter(step.get("session_id", "") for step in removed_steps)
    lost.pop("", None)
    if not lost:
        return {}, {}
    frame = read_columns(sessions, ["session_id", "group", "attendees"])
    if "attendees" not in frame:
        return {}, {}
    hit = frame["session_id"].isin(set(lost))
    rows = frame[hit]
    new = [str(max(int(n) - lost[sid], 0)) for sid, n in zip(rows["session_id"], rows["attendees"].str.strip())]
    group = rows["group"].tolist() if "group" in rows else [""] * len(rows)
    return dict(zip(rows["session_id"], new)), dict(zip(rows["session_id"], group))


_DESCRIPTION = re.compile(r"^(DESCRIPTION(?:;[^:]*)?:Session )(.*?)(\\, group .*?\\, )(\d+)( attendees?)$")


def calendar_counts(text: str, counts: Mapping[str, str]) -> "tuple[str, int, int]":
    """The calendar with the attendee count of each event's DESCRIPTION ("Session X\\, group G\\, N attendees") set
    to ``counts[X]`` (unescaping X as RFC 5545 TEXT), folded again at 75 octets, and the events whose count is now
    0 left out; other lines keep their text. Returns (text, events changed or left out, events left)."""
    out: list[str] = []
    event: list[str] | None = None  # the lines of the event being read
    empty = False  # the event being read has nobody left
    changed = left = 0
    for line, raw in ics_lines(text):
        upper = line.upper()
        if upper.startswith("BEGIN:VEVENT"):
            event, empty = [], False
        m = _DESCRIPTION.match(line) if line.startswith("DESCRIPTION") else None
        sid = re.sub(r"\\(.)", r"\1", m.group(2)) if m else None
        if m is not None and sid in counts and counts[sid] != m.group(4):
            changed += 1
            empty = event is not None and counts[sid] == "0"
            ending = "\r\n" if raw.endswith("\r\n") else "\n"
            raw = fold(m.group(1) + m.group(2) + m.group(3) + counts[sid] + m.group(5), ending)
        (event if event is not None else out).append(raw)
        if upper.startswith("END:VEVENT") and event is not None:
            if not empty:
                out += event
                left += 1
            event = None
    return "".join(out + (event or [])), changed, left


def calendar_events(text: str, session_ids: "set[str]") -> list[str]:
    """SUMMARY, start and DESCRIPTION of the events of ``session_ids`` (by their DESCRIPTION)."""
    out: list[str] = []
    block: list[str] = []
    for line, _ in ics_lines(text):
        block.append(line)
        if line.upper().startswith("END:VEVENT"):
            described = next((x for x in block if x.startswith("DESCRIPTION")), "")
            m = _DESCRIPTION.match(described)
            if m and re.sub(r"\\(.)", r"\1", m.group(2)) in session_ids:
                out.append(" | ".join(x for x in block if x.startswith(("SUMMARY", "DTSTART", "LOCATION", "DESCRIPTION"))))
            block = []
        elif line.upper().startswith("BEGIN:VEVENT"):
            block = [line]
    return out


_MEMBERS = re.compile(r"^\d+( members? at .*)$", re.S)


def lms_cohort_counts(path: Path, groups: "pd.DataFrame") -> "tuple[bytes, int]":
    """moodle-cohorts.csv with each group's description counting its members in ``groups`` (group, members);
    a cohort whose group is not in ``groups`` (no one left) is left out."""
    frame = read_columns(path, ["idnumber", "description"])
    members = dict(zip(groups["group"].astype(str), groups["members"].astype(str)))
    values = {}
    for group, text in zip(frame["idnumber"].tolist(), frame["description"].tolist()):
        m = _MEMBERS.match(text)
        if m and group in members:
            values[group] = members[group] + m.group(1)
    return set_cells(path, "idnumber", "description", values, drop=set(frame["idnumber"]) - set(members))


def lms_user_rows(users: Path, enrolments: Path, ids: "Iterable[str]") -> dict[str, int]:
    """The data row (0-based) of each of ``ids`` in moodle-users.csv that has one.

    Rows are written in the order of each person's first row in lms/enrolments.csv, each listing the person's
    courses and groups in order, and name the person only by username. With a row per person there, row k is
    the k-th person's. With fewer (an --lms-users file that lacked some people), rows are matched to people by
    their courses and groups, in order: a person's row is found when every such matching gives them the same
    row, and has none when no matching gives them one. DataError when whose row is whose cannot be told (two
    people with the same courses next to a missing one, or an edited file): nothing may be erased by guess."""
    import numpy as np
    import pandas as pd

    enrol = read_columns(enrolments, ["person_id", "lms_course", "group"])
    codes, people = pd.factorize(enrol["person_id"])  # people in the order of their first row
    data = users.read_bytes()
    starts, ends = line_bounds(data)  # usernames and course ids hold no line breaks (lms.py refuses them)
    header = header_of(users)
    numbered = sorted((int(c[6:]), i) for i, c in enumerate(header) if c.startswith("course") and c[6:].isdigit())
    group_at = {c: i for i, c in enumerate(header)}
    pairs_at = [(i, group_at.get(f"group{n}")) for n, i in numbered]
    course, group = enrol["lms_course"].to_numpy(dtype=object), enrol["group"].to_numpy(dtype=object)

    def own(k: int) -> tuple:  # person k's (course, group) pairs in path order
        at = np.flatnonzero(codes == k)
        return tuple(zip(course[at].tolist(), group[at].tolist()))

    def listed(j: int) -> tuple:  # data row j's (course, group) pairs
        fields = [v for v, _ in split_record(data[starts[j + 1]:ends[j + 1]].decode("utf-8").rstrip("\r\n"))]
        return tuple((fields[i], fields[g] if g is not None and g < len(fields) else "")
                     for i, g in pairs_at if i < len(fields) and fields[i])

    index = pd.Index(people)
    wanted = [(pid, int(index.get_indexer([pid])[0])) for pid in ids]
    n_rows = len(starts) - 1
    if n_rows == len(people):
        if any(k >= 0 and listed(k) != own(k) for _, k in wanted):
            raise _unmatched_users(users)
        return {pid: k for pid, k in wanted if k >= 0}
    by = np.argsort(codes, kind="stable")  # every person's pairs, grouped in one pass
    bounds = np.searchsorted(codes[by], np.arange(len(people) + 1)).tolist()
    pairs = list(zip(course[by].tolist(), group[by].tolist()))
    keys = [tuple(pairs[bounds[k]:bounds[k + 1]]) for k in range(len(people))]
    names = [(header[i], header[g] if g is not None else None) for i, g in pairs_at]
    table = read_columns(users, [c for pair in names for c in pair if c])  # every row's pairs, read as columns
    course_cols = [table[c].tolist() for c, _ in names]
    group_cols = [table[g].tolist() if g is not None else [""] * n_rows for _, g in names]
    rows = [tuple((c, g) for c, g in zip(cs, gs) if c) for cs, gs in zip(zip(*course_cols), zip(*group_cols))] \
        if names else [()] * n_rows
    early = _matched_in_order(rows, keys)
    late = _matched_in_order(rows[::-1], keys[::-1])
    if early is None or late is None:
        raise _unmatched_users(users)
    late = [len(keys) - 1 - k for k in late[::-1]]
    out: dict[str, int] = {}
    for pid, k in wanted:
        if k < 0:
            continue
        # the rows some matching may give person k: early[j] <= k <= late[j] (both increase with j), same pairs
        lo, hi = int(np.searchsorted(late, k, side="left")), int(np.searchsorted(early, k, side="right"))
        could = [j for j in range(lo, hi) if rows[j] == keys[k]]
        if not could:
            continue  # no row of theirs: not in the --lms-users file
        if len(could) > 1 or early[could[0]] != late[could[0]]:
            raise _unmatched_users(users)
        out[pid] = could[0]
    return out


def _matched_in_order(rows: list, keys: list) -> "list[int] | None":
    """Each row's person when rows take the first person, in order, with the same pairs; None if a row finds none."""
    out, k = [], 0
    for row in rows:
        while k < len(keys) and keys[k] != row:
            k += 1
        if k == len(keys):
            return None
        out.append(k)
        k += 1
    return out


def _unmatched_users(users: Path) -> DataError:
    return DataError(f"{users}: its rows cannot be matched to the people of lms/enrolments.csv (the run was made with an "
                     "--lms-users file that lacked some planned people and two of them have the same courses, or a file "
                     "was edited), so a person's username cannot be told from it. Nothing was changed. Remove "
                     "lms/moodle-users.csv from the run (make it again from the current lms/enrolments.csv) and run again.")
