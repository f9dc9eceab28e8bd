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


_PY_SPACE = "".join(chr(c) for c in range(0x3001) if chr(c).isspace())  # what str.strip() removes


def _arrow_text(frame: pd.DataFrame, column: str | None) -> Any:
    """A column as one Arrow string array, stripped as str.strip() strips, '' for missing (as :func:`_text`,
    without a Python string per row: Arrow-backed columns stay in Arrow)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if column is None:
        return pa.array(np.full(len(frame), "", dtype=object), type=pa.string())
    values = frame[column]
    if isinstance(values.dtype, pd.ArrowDtype) and pa.types.is_string(values.dtype.pyarrow_dtype):
        array = pa.array(values.array)
        array = array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array
    else:
        array = pa.array(values.astype(str).fillna("").to_numpy(dtype=object), type=pa.string())
    return pc.utf8_trim(array.fill_null(""), characters=_PY_SPACE)


def _encode(array: Any) -> tuple[np.ndarray, pd.Series]:
    """Codes and distinct values (object Series) of an Arrow string array: each distinct text handled once."""
    import pyarrow.compute as pc

    encoded = pc.dictionary_encode(array)
    return (encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64),
            pd.Series(encoded.dictionary.to_numpy(zero_copy_only=False), dtype=object))


def _at(values: Any, pos: np.ndarray) -> np.ndarray:
    """``values`` (an Arrow array, Series or array) at positions ``pos``, as Python objects."""
    import pyarrow as pa

    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return values.take(pa.array(pos)).to_numpy(zero_copy_only=False).astype(object)
    if isinstance(values, pd.Series):
        return values.iloc[pos].to_numpy(dtype=object)
    return np.asarray(values, dtype=object)[pos]


def normalise_ids(values: pd.Series) -> pd.Series:
    """Ids normalised as the survey import normalises person_id (NFKC, no invisible characters, stripped)."""
    import pyarrow as pa

    array = _normalise_arrow(pa.array(values.astype(str).to_numpy(dtype=object), type=pa.string()))
    return pd.Series(array.to_numpy(zero_copy_only=False), index=values.index, dtype=object)


def _normalise_arrow(array: Any) -> Any:
    import pyarrow.compute as pc

    array = pc.utf8_normalize(array, "NFKC")
    array = pc.replace_substring_regex(array, "[\u200b-\u200f\u2060\ufeff\u00ad]", "")
    return pc.utf8_trim_whitespace(array)


def module_lookup(catalogue: "Catalogue") -> dict[str, str]:
    """Module ids and LMS course ids (casefolded) → module id; a module id wins over another module's course id."""
    out = {str(m.lms_course or m.id).casefold(): m.id for m in catalogue.modules}
    out.update({m.id.casefold(): m.id for m in catalogue.modules})
    return out


class _Rows:
    """Rejected rows collected as columns: each row at most once (its first problem)."""

    def __init__(self, raw: Any, ids: Any):
        self.lines = np.asarray(raw.lines)
        self.ids = ids  # person_id per row (Arrow array, Series or array), read only at the rejected rows
        self.bad = np.zeros(len(ids), dtype=bool)
        self.parts: list[pd.DataFrame] = []

    def reject(self, mask: np.ndarray, column: str, values: Any, reason: str | np.ndarray) -> None:
        mask = np.asarray(mask, dtype=bool) & ~self.bad
        if not mask.any():
            return
        pos = np.flatnonzero(mask)
        self.parts.append(pd.DataFrame({
            "row": pos + 1, "line": self.lines[pos] if len(self.lines) == len(self.bad) else pos + 2,
            "person_id": _at(self.ids, pos), "column": column, "value": _at(values, pos),
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
                        catalogue: "Catalogue") -> tuple[pd.Categorical, pd.Categorical]:
    """person_id and module of each row as categoricals: person codes are positions in ``known_people`` (its
    ids the categories), module codes positions in the catalogue; -1 (NaN) where unknown, and those rows rejected.
    Arrow compares the ids (no Python string per row); each distinct module text is looked up once."""
    import pyarrow as pa
    import pyarrow.compute as pc

    person = _normalise_arrow(_arrow_text(frame, person_col))
    rows.ids = person
    known = pa.array(np.asarray(known_people, dtype=object), type=pa.string())
    who = pc.index_in(person, value_set=known).fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    empty = pc.equal(person, "").to_numpy(zero_copy_only=False)
    rows.reject(empty, person_col, person, "empty person id; give the person_id of the survey")
    rows.reject(who < 0, person_col, person,
                "unknown person: not in the previous round's people.csv; check the id, or leave the row out")
    module_text = _arrow_text(frame, module_col)
    lookup = module_lookup(catalogue)
    ids = [m.id for m in catalogue.modules]
    position = {m: i for i, m in enumerate(ids)}
    codes, uniques = _encode(module_text)
    found = np.asarray([position[lookup[u]] if u in lookup else -1 for u in uniques.str.casefold()] or [0], dtype=np.int64)
    which = found[codes] if len(codes) else np.zeros(0, dtype=np.int64)
    rows.reject(which < 0, module_col, module_text,
                "unknown module: neither a module id nor an lms_course of the catalogue; check the id or the catalogue")
    return (pd.Categorical.from_codes(who, dtype=pd.CategoricalDtype(known_people)),
            pd.Categorical.from_codes(which, dtype=pd.CategoricalDtype(pd.Index(ids, dtype=object))))


def _duplicates(rows: _Rows, person: pd.Categorical, module: pd.Categorical, column: str, values: Any) -> None:
    """Later rows for a person and module already given are rejected, naming the row kept."""
    ok = np.flatnonzero(~rows.bad)
    M = max(len(module.categories), 1)
    key = person.codes[ok].astype(np.int64) * M + module.codes[ok]  # integer keys: fast at millions of rows
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    first_pos = first[inverse.reshape(-1)]
    later = first_pos != np.arange(len(key))
    if not later.any():
        return
    mask = np.zeros(len(rows.bad), dtype=bool)
    mask[ok[later]] = True
    reason = np.full(len(rows.bad), "", dtype=object)
    reason[ok[later]] = [f"duplicate: row {k} already gives this person and module" for k in (ok[first_pos[later]] + 1).tolist()]
    rows.reject(mask, column, values, reason)


def parse_times(values: Any) -> pd.Series:
    """Completion times: the first of :data:`TIME_FORMATS` that reads each value, or Unix seconds; NaT if none.

    ``values``: a Series or an Arrow string array; each distinct value is parsed once.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    index = values.index if isinstance(values, pd.Series) else None
    array = values if isinstance(values, (pa.Array, pa.ChunkedArray)) else \
        pa.array(values.astype(str).to_numpy(dtype=object), type=pa.string())
    encoded = pc.dictionary_encode(array)
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    # The zone suffix removed in Arrow (one pass over the distinct values, no Python regex per value).
    bare = pc.utf8_trim(pc.replace_substring_regex(encoded.dictionary, r"(Z|[+-]\d\d:?\d\d)$", ""), characters=_PY_SPACE)
    texts = pd.Series(bare.to_numpy(zero_copy_only=False), dtype=object)
    # ISO 8601 (what LMS exports mostly write) in one vectorised pass; the other formats for what is left.
    parsed = pd.Series(pd.to_datetime(texts, format="ISO8601", errors="coerce").to_numpy(dtype="datetime64[ns]"), index=texts.index)
    todo = parsed.isna() & (texts != "")
    for fmt in TIME_FORMATS:
        if not todo.any():
            break
        parsed[todo] = pd.to_datetime(texts[todo], format=fmt, errors="coerce")
        todo = parsed.isna() & (texts != "")
    if todo.any():
        unix = texts[todo][texts[todo].str.fullmatch(r"\d{9,10}")]
        if len(unix):
            parsed[unix.index] = pd.to_datetime(unix.astype(np.int64), unit="s")
    out = parsed.to_numpy()[codes] if len(codes) else np.zeros(0, "datetime64[ns]")
    return pd.Series(out, index=index)


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
    rows = _Rows(raw, np.full(len(frame), "", dtype=object))
    person, module = _people_and_modules(frame, rows, person_col, module_col, known_people, catalogue)
    status_codes, status_text = _encode(_arrow_text(frame, status_col))
    status_of = status_text.str.casefold()  # each distinct status once
    completed_of = status_of.isin(COMPLETED).to_numpy()
    if status_col is not None:
        unknown = ~status_of.isin([*COMPLETED, *NOT_COMPLETED, ""]).to_numpy()
        rows.reject(unknown[status_codes], status_col, _arrow_text(frame, status_col),
                    f"unknown status; use one of {', '.join(COMPLETED[:3])} or {', '.join(NOT_COMPLETED[:3])}")
    times_text = _arrow_text(frame, time_col)
    times = parse_times(times_text) if time_col is not None else pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns]")
    if time_col is not None:
        import pyarrow.compute as pc

        given = pc.not_equal(times_text, "").to_numpy(zero_copy_only=False)
        rows.reject(given & times.isna().to_numpy(), time_col, times_text,
                    "bad date; write it as 2026-03-31 or 2026-03-31 14:05 (or 31.3.2026)")
        since_naive = since.tz_convert(None) if since.tzinfo is not None else since
        rows.reject((times < since_naive).to_numpy(), time_col, times_text,
                    f"completed before the previous run ({since_naive:%Y-%m-%d %H:%M}), so not of its plan; check the date")
    no_status = (status_of == "").to_numpy()[status_codes] if len(status_codes) else np.zeros(0, dtype=bool)
    completed = (completed_of[status_codes] if len(status_codes) else no_status) | (no_status & times.notna().to_numpy())
    _duplicates(rows, person, module, module_col, _arrow_text(frame, module_col))
    ok = ~rows.bad
    table = pd.DataFrame({"person_id": person[ok], "module": module[ok],
                          "completed": completed[ok], "completed_at": times.to_numpy()[ok]})
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
    rows = _Rows(raw, np.full(len(frame), "", dtype=object))
    person, module = _people_and_modules(frame, rows, person_col, module_col, known_people, catalogue)
    text = _arrow_text(frame, rating_col)
    codes, distinct = _encode(text)  # each distinct rating text read once
    value = pd.to_numeric(distinct.str.replace(",", ".", regex=False), errors="coerce")
    wrong = (value.isna() | (value < 1) | (value > 5) | (value != value.round())).to_numpy()
    rating = value.to_numpy(dtype=np.float64)[codes] if len(codes) else np.zeros(0)
    rows.reject(wrong[codes] if len(codes) else np.zeros(0, dtype=bool), rating_col, text,
                "rating outside 1-5; give a whole number from 1 (poor) to 5 (excellent)")
    _duplicates(rows, person, module, module_col, _arrow_text(frame, module_col))
    ok = ~rows.bad
    if comment_col is not None:
        import pyarrow.compute as pc

        has_comment = pc.not_equal(_arrow_text(frame, comment_col), "").to_numpy(zero_copy_only=False)
    else:
        has_comment = np.zeros(len(frame), bool)
    table = pd.DataFrame({"person_id": person[ok], "module": module[ok],
                          "rating": rating[ok], "has_comment": has_comment[ok]})
    return Feedback(table, rows.table(), len(frame))
