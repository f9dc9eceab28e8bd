"""LMS completions and module feedback read back for a follow-up round.

Both files are read with the survey reader (CSV in any of its encodings and
delimiters, or XLSX) and checked cell by cell, vectorised: every row ends up
used or in the rejects table with its row, line, column, value and reason, so
the counts reconcile. Modules are named by catalogue module id or by the LMS
course id (``catalogue.Module.lms_course``); people by the person_id of the
previous round, normalised as the survey import does (Unicode NFKC, invisible
characters and surrounding space removed). Feedback comments are only counted:
they may name people, so they are never copied anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import pandas as pd

from .columns import header_key
from .errors import SurveyError

if TYPE_CHECKING:
    from .catalogue import Catalogue

REJECT_COLUMNS = ("row", "line", "person_id", "column", "value", "reason")
PERSON_HEADERS = ("person_id", "person", "user_id", "userid", "idnumber", "employee_id", "username", "respondent_id", "id")
MODULE_HEADERS = ("module", "module_id", "lms_course", "course", "course_id", "courseid", "shortname", "course_shortname")
STATUS_HEADERS = ("status", "completion_status", "completion", "state")
TIME_HEADERS = ("completed_at", "completion_time", "timecompleted", "completed", "completion_date", "date", "time")
RATING_HEADERS = ("rating", "score", "stars", "arvosana", "betyg")
COMMENT_HEADERS = ("comment", "comments", "feedback", "kommentti", "kommentar")
COMPLETED = ("completed", "complete", "passed", "pass", "done", "finished", "completed (achieved pass grade)",
             "suoritettu", "valmis", "hyväksytty", "genomförd", "godkänd", "klar", "fullföljd")
NOT_COMPLETED = ("in progress", "in_progress", "started", "not started", "not_started", "enrolled", "incomplete", "failed",
                 "not completed", "kesken", "aloitettu", "ei suoritettu", "hylätty", "pågående", "påbörjad", "underkänd",
                 "ej genomförd")
TIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d",
                "%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%d.%m.%Y", "%d/%m/%Y %H:%M", "%d/%m/%Y")


@dataclass(frozen=True)
class Completions:
    """Accepted completion rows (person_id, module, completed, completed_at) and the rejected ones."""

    table: pd.DataFrame
    rejects: pd.DataFrame
    n_read: int

    @property
    def counts(self) -> dict[str, Any]:
        return {"rows_read": self.n_read, "accepted": len(self.table), "rejected": len(self.rejects),
                "completed": int(self.table["completed"].sum()) if len(self.table) else 0,
                "reconciles": len(self.table) + len(self.rejects) == self.n_read}


@dataclass(frozen=True)
class Feedback:
    """Accepted ratings (person_id, module, rating, has_comment) and the rejected rows; never the comments."""

    table: pd.DataFrame
    rejects: pd.DataFrame
    n_read: int

    @property
    def counts(self) -> dict[str, Any]:
        return {"rows_read": self.n_read, "accepted": len(self.table), "rejected": len(self.rejects),
                "reconciles": len(self.table) + len(self.rejects) == self.n_read}


def empty_completions() -> Completions:
    return Completions(pd.DataFrame({"person_id": pd.Series(dtype=object), "module": pd.Series(dtype=object),
                                     "completed": pd.Series(dtype=bool), "completed_at": pd.Series(dtype="datetime64[ns]")}),
                       pd.DataFrame(columns=list(REJECT_COLUMNS)), 0)


def empty_feedback() -> Feedback:
    return Feedback(pd.DataFrame({"person_id": pd.Series(dtype=object), "module": pd.Series(dtype=object),
                                  "rating": pd.Series(dtype=np.float64), "has_comment": pd.Series(dtype=bool)}),
                    pd.DataFrame(columns=list(REJECT_COLUMNS)), 0)


def _find(header: Sequence[str], names: Sequence[str], extra: Sequence[str] = ()) -> str | None:
    keys = {header_key(h): h for h in header}
    for name in (*extra, *names):
        if header_key(name) in keys:
            return keys[header_key(name)]
    return None


MAPPING_KEYS = {"completions": ("person_id", "module", "status", "completed_at"),
                "feedback": ("person_id", "module", "rating", "comment")}


def load_columns(path: str | Path, kind: str, header: Sequence[str]) -> dict[str, str]:
    """A mapping file for an LMS export (``kind`` completions or feedback): its ``[columns]`` table names the
    export's header for each of :data:`MAPPING_KEYS`, e.g. ``person_id = "Employee number"``. Every key and
    header is checked against the file (MappingError lists every problem)."""
    import difflib

    from .errors import MappingError, Problem
    from .programme import read_toml

    name = str(path)
    doc = read_toml(Path(path), name, error=MappingError)
    problems = [Problem(name, f"unknown section [{k}].", key=k, hint="A mapping for an LMS export has only [columns].")
                for k in doc if k != "columns"]
    columns = doc.get("columns", {})
    if not isinstance(columns, dict):
        raise MappingError([*problems, Problem(name, "[columns] must be a table.", key="columns")])
    allowed = MAPPING_KEYS[kind]
    out: dict[str, str] = {}
    for key, value in columns.items():
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            problems.append(Problem(name, "unknown key.", key=f"columns.{key}",
                                    hint=(f"Did you mean {close[0]!r}? " if close else "") + f"Keys: {', '.join(allowed)}."))
        elif not isinstance(value, str) or value not in header:
            near = difflib.get_close_matches(str(value), list(header), n=1)
            problems.append(Problem(name, "is not a header of the file.", key=f"columns.{key}", value=str(value),
                                    hint=f"Did you mean {near[0]!r}?" if near else f"The headers are {', '.join(map(repr, header[:10]))}."))
        else:
            out[key] = value
    if problems:
        raise MappingError(problems)
    return out


def _text(frame: pd.DataFrame, column: str | None) -> pd.Series:
    if column is None:
        return pd.Series("", index=frame.index, dtype=object)
    return frame[column].astype(str).fillna("").str.strip()


def normalise_ids(values: pd.Series) -> pd.Series:
    """Ids normalised as the survey import normalises person_id (NFKC, no invisible characters, stripped)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    array = pa.array(values.astype(str).to_numpy(dtype=object), type=pa.string())
    array = pc.utf8_normalize(array, "NFKC")
    array = pc.replace_substring_regex(array, "[\u200b-\u200f\u2060\ufeff\u00ad]", "")
    return pd.Series(pc.utf8_trim_whitespace(array).to_numpy(zero_copy_only=False), index=values.index, dtype=object)


def module_lookup(catalogue: "Catalogue") -> dict[str, str]:
    """Module ids and LMS course ids (casefolded) → module id; a module id wins over another module's course id."""
    out = {str(m.lms_course or m.id).casefold(): m.id for m in catalogue.modules}
    out.update({m.id.casefold(): m.id for m in catalogue.modules})
    return out


class _Rows:
    """Rejected rows collected as columns: each row at most once (its first problem)."""

    def __init__(self, raw: Any, ids: pd.Series):
        self.lines = np.asarray(raw.lines)
        self.ids = ids.to_numpy(dtype=object)
        self.bad = np.zeros(len(ids), dtype=bool)
        self.parts: list[pd.DataFrame] = []

    def reject(self, mask: np.ndarray, column: str, values: pd.Series | np.ndarray, reason: str | np.ndarray) -> None:
        mask = np.asarray(mask, dtype=bool) & ~self.bad
        if not mask.any():
            return
        pos = np.flatnonzero(mask)
        values = np.asarray(values, dtype=object)
        self.parts.append(pd.DataFrame({
            "row": pos + 1, "line": self.lines[pos] if len(self.lines) == len(self.bad) else pos + 2,
            "person_id": self.ids[pos], "column": column, "value": values[pos],
            "reason": np.asarray(reason, dtype=object)[pos] if isinstance(reason, np.ndarray) else reason,
        }))
        self.bad |= mask

    def table(self) -> pd.DataFrame:
        if not self.parts:
            return pd.DataFrame(columns=list(REJECT_COLUMNS))
        return pd.concat(self.parts, ignore_index=True).sort_values("row", kind="stable").reset_index(drop=True)


def _read(path: str | Path, what: str, sheet: str | None, encoding: str | None) -> Any:
    from .io import read_survey

    return read_survey(path, sheet=sheet, encoding=encoding)


def _need(column: str | None, path: str | Path, header: Sequence[str], what: str, names: Sequence[str]) -> str:
    if column is None:
        raise SurveyError(
            f"{path}: no column for {what}. The header has {', '.join(map(repr, header[:12]))}"
            f"{', …' if len(header) > 12 else ''}; name the column one of {', '.join(names[:6])}."
        )
    return column


def _people_and_modules(frame: pd.DataFrame, rows: _Rows, person_col: str, module_col: str, known_people: pd.Index,
                        catalogue: "Catalogue") -> tuple[pd.Series, pd.Series]:
    person = normalise_ids(_text(frame, person_col))
    rows.ids = person.to_numpy(dtype=object)
    module_text = _text(frame, module_col)
    rows.reject((person == "").to_numpy(), person_col, person, "empty person id; give the person_id of the survey")
    rows.reject(~person.isin(known_people).to_numpy(), person_col, person,
                "unknown person: not in the previous round's people.csv; check the id, or leave the row out")
    lookup = module_lookup(catalogue)
    codes, uniques = pd.factorize(module_text)  # each distinct text looked up once
    found = pd.Series(uniques, dtype=object).str.casefold().map(lookup).to_numpy(dtype=object)
    module = pd.Series(found[codes] if len(codes) else np.zeros(0, dtype=object), index=module_text.index, dtype=object)
    rows.reject(module.isna().to_numpy(), module_col, module_text,
                "unknown module: neither a module id nor an lms_course of the catalogue; check the id or the catalogue")
    return person, module.fillna("").astype(object)


def _duplicates(rows: _Rows, person: pd.Series, module: pd.Series, column: str, values: pd.Series) -> None:
    """Later rows for a person and module already given are rejected, naming the row kept."""
    ok = np.flatnonzero(~rows.bad)
    p_codes, _ = pd.factorize(person.to_numpy(dtype=object)[ok])
    m_codes, m_uniques = pd.factorize(module.to_numpy(dtype=object)[ok])
    key = pd.Series(p_codes.astype(np.int64) * max(len(m_uniques), 1) + m_codes)  # integer keys: fast at millions of rows
    later = key.duplicated().to_numpy()
    if not later.any():
        return
    first_pos = pd.Series(np.arange(len(key))).groupby(key.to_numpy()).transform("min").to_numpy()
    mask = np.zeros(len(rows.bad), dtype=bool)
    mask[ok[later]] = True
    reason = np.full(len(rows.bad), "", dtype=object)
    reason[ok[later]] = [f"duplicate: row {k} already gives this person and module" for k in (ok[first_pos[later]] + 1).tolist()]
    rows.reject(mask, column, values, reason)


def parse_times(values: pd.Series) -> pd.Series:
    """Completion times: the first of :data:`TIME_FORMATS` that reads each value, or Unix seconds; NaT if none."""
    codes, uniques = pd.factorize(values.astype(str))
    texts = pd.Series(uniques, dtype=object).str.replace(r"(Z|[+-]\d\d:?\d\d)$", "", regex=True).str.strip()
    # ISO 8601 (what LMS exports mostly write) in one vectorised pass; the other formats for what is left.
    parsed = pd.Series(pd.to_datetime(texts, format="ISO8601", errors="coerce").to_numpy(dtype="datetime64[ns]"), index=texts.index)
    for fmt in TIME_FORMATS:
        todo = parsed.isna()
        if not todo.any():
            break
        parsed[todo] = pd.to_datetime(texts[todo], format=fmt, errors="coerce")
    unix = parsed.isna() & texts.str.fullmatch(r"\d{9,10}")
    if unix.any():
        parsed[unix] = pd.to_datetime(texts[unix].astype(np.int64), unit="s")
    out = parsed.to_numpy()[codes] if len(codes) else np.zeros(0, "datetime64[ns]")
    return pd.Series(out, index=values.index)


def read_completions(path: str | Path, catalogue: "Catalogue", known_people: pd.Index, since: pd.Timestamp, *,
                     sheet: str | None = None, encoding: str | None = None, mapping: str | Path | None = None) -> Completions:
    """Read an LMS completion export: person, module or lms_course, and a status or completion time.

    A row counts as completed when its status says so (completed, passed, suoritettu, genomförd, …) or,
    without a status, when it has a completion time. Rejected: unknown person or module, unknown status,
    unreadable time, a time before ``since`` (the previous run: the plan did not exist yet), and a later
    row for a person and module already given.
    """
    raw = _read(path, "completions", sheet, encoding)
    frame, header = raw.frame, [str(c) for c in raw.frame.columns]
    given = load_columns(mapping, "completions", header) if mapping is not None else {}
    person_col = given.get("person_id") or _need(_find(header, PERSON_HEADERS), path, header, "the person (person_id)", PERSON_HEADERS)
    module_col = given.get("module") or _need(_find(header, MODULE_HEADERS), path, header, "the module (module or lms_course)", MODULE_HEADERS)
    status_col = given.get("status") or _find(header, STATUS_HEADERS)
    time_col = given.get("completed_at") or _find(header, TIME_HEADERS)
    if status_col is None and time_col is None:
        raise SurveyError(f"{path}: no column for the status or the completion time; add one named status or completed_at.")
    rows = _Rows(raw, pd.Series("", index=frame.index))
    person, module = _people_and_modules(frame, rows, person_col, module_col, known_people, catalogue)
    status = _text(frame, status_col).str.casefold()
    if status_col is not None:
        unknown = ~status.isin([*COMPLETED, *NOT_COMPLETED, ""])
        rows.reject(unknown.to_numpy(), status_col, _text(frame, status_col),
                    f"unknown status; use one of {', '.join(COMPLETED[:3])} or {', '.join(NOT_COMPLETED[:3])}")
    times_text = _text(frame, time_col)
    times = parse_times(times_text) if time_col is not None else pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns]")
    if time_col is not None:
        rows.reject(((times_text != "") & times.isna()).to_numpy(), time_col, times_text,
                    "bad date; write it as 2026-03-31 or 2026-03-31 14:05 (or 31.3.2026)")
        since_naive = since.tz_convert(None) if since.tzinfo is not None else since
        rows.reject((times < since_naive).to_numpy(), time_col, times_text,
                    f"completed before the previous run ({since_naive:%Y-%m-%d %H:%M}), so not of its plan; check the date")
    completed = status.isin(COMPLETED) | ((status == "") & times.notna())
    _duplicates(rows, person, module, module_col, _text(frame, module_col))
    ok = ~rows.bad
    table = pd.DataFrame({"person_id": person[ok].to_numpy(dtype=object), "module": module[ok].to_numpy(dtype=object),
                          "completed": completed[ok].to_numpy(dtype=bool), "completed_at": times[ok].to_numpy()})
    return Completions(table, rows.table(), len(frame))


def read_feedback(path: str | Path, catalogue: "Catalogue", known_people: pd.Index, *, sheet: str | None = None,
                  encoding: str | None = None, mapping: str | Path | None = None) -> Feedback:
    """Read module ratings: person, module or lms_course, rating 1–5 and an optional comment (only counted)."""
    raw = _read(path, "feedback", sheet, encoding)
    frame, header = raw.frame, [str(c) for c in raw.frame.columns]
    given = load_columns(mapping, "feedback", header) if mapping is not None else {}
    person_col = given.get("person_id") or _need(_find(header, PERSON_HEADERS), path, header, "the person (person_id)", PERSON_HEADERS)
    module_col = given.get("module") or _need(_find(header, MODULE_HEADERS), path, header, "the module (module or lms_course)", MODULE_HEADERS)
    rating_col = given.get("rating") or _need(_find(header, RATING_HEADERS), path, header, "the rating (1-5)", RATING_HEADERS)
    comment_col = given.get("comment") or _find(header, COMMENT_HEADERS)
    rows = _Rows(raw, pd.Series("", index=frame.index))
    person, module = _people_and_modules(frame, rows, person_col, module_col, known_people, catalogue)
    text = _text(frame, rating_col)
    rating = pd.to_numeric(text.str.replace(",", ".", regex=False), errors="coerce")
    bad = rating.isna() | (rating < 1) | (rating > 5) | (rating != rating.round())
    rows.reject(bad.to_numpy(), rating_col, text, "rating outside 1-5; give a whole number from 1 (poor) to 5 (excellent)")
    _duplicates(rows, person, module, module_col, _text(frame, module_col))
    ok = ~rows.bad
    has_comment = (_text(frame, comment_col) != "").to_numpy() if comment_col is not None else np.zeros(len(frame), bool)
    table = pd.DataFrame({"person_id": person[ok].to_numpy(dtype=object), "module": module[ok].to_numpy(dtype=object),
                          "rating": rating[ok].to_numpy(dtype=np.float64), "has_comment": has_comment[ok]})
    return Feedback(table, rows.table(), len(frame))
