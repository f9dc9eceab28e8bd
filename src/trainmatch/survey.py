"""Import: match a raw survey's columns to the programme and decode every cell.

:func:`import_survey` is the validation edge of the data flow. It turns the text
cells of a :class:`~trainmatch.io.RawSurvey` into typed answers, collects every
bad cell (row, line, column, value, reason) and splits the records into
accepted people and rejects, so that every data row ends up in exactly one of
them. Personal-data columns are dropped here and only their names are kept.

Decoding is vectorised: each column is factorised, the few distinct values are
decoded once, and the codes are broadcast back to the rows.
"""

from __future__ import annotations

import difflib
import itertools
import math
import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Mapping

import numpy as np
import pandas as pd

from .answers import formats_decoder, hours_decoder, likert_decoder, name_decoder, willing_decoder, yes_no_decoder
from .columns import factorize, header_key, parse_timestamps, text_column
from .errors import Problem, SurveyError
from .io import RawSurvey
from .programme import Programme

if TYPE_CHECKING:
    from .mapping import ColumnMapping

REJECT_COLUMNS = ["row", "line", "person_id", "column", "value", "reason"]
OVERFLOW_COLUMN = "(beyond the last column)"

LANGUAGE_NAMES = {
    "fi": ("fi", "fin", "suomi", "finnish", "finska", "suomeksi"),
    "sv": ("sv", "swe", "svenska", "swedish", "ruotsi", "på svenska"),
    "en": ("en", "eng", "english", "englanti", "engelska", "in english"),
}


@dataclass(frozen=True)
class ImportResult:
    """Accepted people (typed answers), rejected cells, and what happened to each column.

    ``people`` columns: ``person_id``, ``row`` (1-based record number),
    ``role``, ``site``, ``language``, ``hours``, ``formats``, one float32 column
    per item (the answer's code; NaN when unanswered or "don't know") and one bool column
    ``task_<id>`` per task. ``rejects`` has one row per bad cell, columns
    :data:`REJECT_COLUMNS`; a record with any bad cell is rejected as a whole.
    """

    people: pd.DataFrame
    rejects: pd.DataFrame
    n_read: int
    file: str
    matched: Mapping[str, str]  # programme column -> header in the file
    ignored: tuple[str, ...]
    dropped_personal: tuple[str, ...]
    absent_optional: tuple[str, ...]
    notes: tuple[str, ...] = field(default=())
    layout: str = "plain"  # the survey tool recognised (or "plain": the programme's own columns)
    duplicates: str = "reject"  # the duplicates policy that was applied
    timestamp: str | None = None  # header of the submission time used for keep-latest (None: none)
    n_superseded: int = 0  # rows replaced by a later submission of the same id
    warnings: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=REJECT_COLUMNS))  # e.g. ids mangled by Excel
    layout_source: str = "detected"  # "detected" from the export's header, or "mapping" (the mapping file's tool)
    header_rows: int = 1  # header rows of the file (not people)

    @property
    def n_rejected(self) -> int:
        return int(self.rejects["row"].nunique()) if len(self.rejects) else 0

    @property
    def n_accepted(self) -> int:
        return len(self.people)


# --------------------------------------------------------------------------- columns


def match_columns(
    raw: RawSurvey, programme: Programme, personal_extra: tuple[str, ...] = (), layout: str = "plain"
) -> tuple[dict[str, str], list[str], list[str], list[str]]:
    """Map programme columns to file headers: exact, then ignoring case and surrounding space.

    Returns (matched, ignored headers, personal-data headers, absent optional columns).
    ``personal_extra`` names headers the survey tool is known to fill with
    personal data. Raises SurveyError naming the missing required columns with close matches.
    """
    cols = programme.columns
    required = [cols.id, cols.role] + [i.id for i in programme.items] + [t.id for t in programme.tasks]
    optional = [cols.site, cols.language, cols.hours, cols.formats, cols.support]
    wanted = required + optional
    headers = list(raw.frame.columns)
    personal_keys = {header_key(p) for p in programme.personal_data}

    matched: dict[str, str] = {}
    by_exact = {h: h for h in headers}
    by_loose: dict[str, list[str]] = {}
    for h in headers:
        by_loose.setdefault(header_key(h), []).append(h)
    exact_count: dict[str, int] = {}
    for h in headers:
        exact_count[h] = exact_count.get(h, 0) + 1
    for w in wanted:
        if w in by_exact:
            candidates = [w] * exact_count[w]
        else:
            candidates = by_loose.get(header_key(w), [])
        if len(candidates) > 1:
            # Two columns could hold this answer: refuse to guess which one is right.
            raise SurveyError(
                Problem(
                    raw.path,
                    f"has {len(candidates)} columns that match {w!r}: {', '.join(repr(c) for c in candidates)}.",
                    column=w,
                    hint="Rename or remove the extra column so that exactly one remains.",
                )
            )
        if candidates:
            matched[w] = candidates[0]
    if len(set(matched.values())) < len(matched):
        shared = [h for h in set(matched.values()) if list(matched.values()).count(h) > 1][0]
        raise SurveyError(
            Problem(raw.path, "one column matches several of the programme's columns.", column=shared, hint="Give the programme's [columns] distinct names.")
        )
    used = set(matched.values())
    extra = set(personal_extra)
    personal = [h for h in headers if h not in used and (header_key(h) in personal_keys or h in extra)]
    ignored = [h for h in headers if h not in used and h not in personal]
    missing = [w for w in required if w not in matched]
    if missing:
        leftovers = [h for h in ignored if h]
        suggestions = []
        for m in missing[:5]:
            close = difflib.get_close_matches(m, leftovers, n=1, cutoff=0.6)
            suggestions.append(f"{m!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise SurveyError(
            Problem(
                raw.path,
                f"lacks {len(missing)} required column(s): {', '.join(suggestions)}{more}.",
                column=missing[0],
                hint=(f"Layout recognised: {layout}. " if layout != "plain" else "")
                + "Rename the columns in the export to the programme's ids, or map them with --mapping FILE "
                "(`trainmatch init DIR` writes an example mapping file).",
            )
        )
    absent = [w for w in optional if w not in matched]
    return matched, ignored, personal, absent


# --------------------------------------------------------------------------- decoding

# Headers that hold the submission time in files of no particular tool.
_TIMESTAMP_KEYS = {"submittedat", "submitted", "timestamp", "submissiontime", "submitdate", "completiontime", "enddate", "aikaleima", "vastausaika"}


def _strip(values: pd.Series) -> pd.Series:
    """Text with surrounding white space (non-breaking too) removed."""
    if isinstance(values.dtype, pd.ArrowDtype):
        import pyarrow.compute as pc

        return pd.Series(pd.arrays.ArrowExtensionArray(pc.utf8_trim_whitespace(values.array._pa_array)), index=values.index)
    return values.astype(str).str.strip()



def _take(values: pd.Series, positions: np.ndarray) -> np.ndarray:
    """The raw text at ``positions`` (converting only those cells, not the whole column)."""
    return values.iloc[positions].astype(object).to_numpy(dtype=object) if len(positions) else np.zeros(0, dtype=object)


class _Cells:
    """Collects bad cells as arrays (row positions, column, values, reasons)."""

    def __init__(self) -> None:
        self.parts: list[pd.DataFrame] = []

    def add(self, positions: np.ndarray, column: str, values: np.ndarray, reasons: np.ndarray | str) -> None:
        if len(positions) == 0:
            return
        reasons = np.broadcast_to(np.asarray(reasons, dtype=object), (len(positions),))
        self.parts.append(pd.DataFrame({"pos": positions, "column": column, "value": values, "reason": reasons}))

    def frame(self) -> pd.DataFrame:
        if not self.parts:
            return pd.DataFrame({"pos": np.zeros(0, np.int64), "column": [], "value": [], "reason": []})
        return pd.concat(self.parts, ignore_index=True)


def _decode_parts(
    values: pd.Series, decode_one: Callable[[str], tuple[object, str | None]], dtype: object
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Decode a text column via its distinct values: (codes, decoded distinct values, bad positions, their reasons)."""
    codes, uniques = factorize(values)
    if len(uniques) == 0:
        return np.zeros(len(values), np.intp), np.zeros(1, dtype=dtype), np.zeros(0, np.int64), np.zeros(0, object)
    decoded = [decode_one(u) for u in uniques]
    decoded_u = np.asarray([v for v, _ in decoded], dtype=dtype)
    reason_u = np.asarray([r for _, r in decoded], dtype=object)
    bad_u = np.array([r is not None for _, r in decoded], dtype=bool)
    pos = np.flatnonzero(bad_u[codes]) if bad_u.any() else np.zeros(0, np.int64)
    return codes, decoded_u, pos, reason_u[codes[pos]]


def _duplicate_reasons(dup_ids: np.ndarray, rows: np.ndarray, show: int = 3, ending: str | None = None) -> np.ndarray:
    """For each copy of a duplicated id: "The same id appears in rows 5, 9 …", vectorised.

    Names the first ``show`` rows of the id and how many more there are, so that
    a file appended to itself (every id twice) is reported in seconds.
    """
    text = _row_lists(dup_ids, rows, show)
    ending = "; all copies are rejected. Remove the duplicates." if ending is None else ending
    return ("The same id appears in rows " + text + ending).to_numpy(dtype=object)


def _row_lists(group_keys: np.ndarray, rows: np.ndarray, show: int = 3) -> pd.Series:
    """Per element, "5, 9, 12 and 2 more": the first rows of its group (vectorised)."""
    codes, _ = pd.factorize(pd.Series(group_keys, dtype=object))
    frame = pd.DataFrame({"id": codes, "row": rows})
    rank = frame.groupby("id").cumcount().to_numpy()
    size = frame.groupby("id")["row"].transform("size").to_numpy()
    text = pd.Series("", index=frame.index, dtype=object)
    for k in range(show):
        kth = frame.loc[rank == k].set_index("id")["row"]
        nth = frame["id"].map(kth)
        has = nth.notna().to_numpy()
        sep = "" if k == 0 else ", "
        text = text.where(~has, text + sep + nth.astype("Int64").astype(str))
    more = size - show
    return text.where(more <= 0, text + " and " + pd.Series(more, dtype=object).astype(str) + " more")


DUPLICATE_POLICIES = ("keep-latest", "reject")
_GIVE_BACKS = 8  # with consume: freed text memory is returned to the system after each eighth of the columns


def give_back_memory() -> None:
    """Return freed Arrow memory to the system.

    pyarrow's allocator keeps it for reuse, but what is made next (the
    decoded answers, the plan) is mostly numpy's, and a large survey's text
    is hundreds of MB.
    """
    import pyarrow as pa

    pa.default_memory_pool().release_unused()


def _mangled(ids: pd.Series) -> np.ndarray:
    """Positions of ids that look changed by Excel; ids of digits (or letters and digits) only are skipped fast."""
    import pyarrow as pa
    import pyarrow.compute as pc

    array = ids.array._pa_array if isinstance(ids.dtype, pd.ArrowDtype) else pa.array(ids.astype(str).to_numpy(dtype=object), type=pa.string())
    # Only ids holding a separator or an exponent can be a date or 1.23E+11 (ids of digits are the common case).
    suspect = ~pc.utf8_is_digit(array).to_numpy(zero_copy_only=False)
    if suspect.any():
        rest = np.flatnonzero(suspect)
        suspect[rest] = pc.match_substring_regex(array.take(pa.array(rest)), r"[-./ ]|[eE][+-]?\d").to_numpy(zero_copy_only=False)
    if not suspect.any():
        return np.zeros(0, np.int64)
    pos = np.flatnonzero(suspect)
    values = pd.Series(np.asarray(array.take(pa.array(pos)).to_pylist(), dtype=object))
    hit = values.map(lambda v: bool(_MANGLED_ID.match(v or ""))).to_numpy(dtype=bool)
    return pos[hit]

# Ids that Excel has turned into something else: a date, or a number in
# scientific notation (digits after the 15th are lost as well).
_MANGLED_ID = re.compile(
    r"^(?:\d{1,4}[-./]\d{1,2}[-./]\d{1,4}(?:[ T]\d{1,2}[:.]\d{2}(?:[:.]\d{2})?)?"
    r"|\d{1,2}[-. ](?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec|tammi|helmi|maalis|huhti|touko|kesä|heinä|elo|syys|loka|marras|joulu)\w*(?:[-. ]\d{2,4})?"
    r"|[+-]?\d(?:[.,]\d+)?e[+-]?\d+)$",
    re.IGNORECASE,
)


MAX_ID_LENGTH = 256  # characters; an XLSX cell holds 32,767, a file name 255 bytes
# Invisible characters removed from ids before duplicates are judged: zero-width space,
# non-joiner and joiner, word joiner, byte-order mark, soft hyphen.
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"))


def _normalise_ids(ids: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Ids in Unicode NFKC (full-width digits and letters made plain) without invisible characters.

    Returns the ids and the positions of those that changed. Only ids that
    are not ASCII are looked at one by one (ASCII ids are already normal).
    """
    import unicodedata

    import pyarrow as pa
    import pyarrow.compute as pc

    array = ids.array._pa_array if isinstance(ids.dtype, pd.ArrowDtype) else pa.array(ids.astype(str).to_numpy(dtype=object), type=pa.string())
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks() if array.num_chunks != 1 else array.chunk(0)
    other = np.flatnonzero(~pc.string_is_ascii(array).to_numpy(zero_copy_only=False)) if len(array) else np.zeros(0, np.int64)
    if len(other) == 0:
        return ids, np.zeros(0, np.int64)
    before = array.take(pa.array(other)).to_pylist()
    after = [unicodedata.normalize("NFKC", v).translate(_INVISIBLE).strip() for v in before]
    changed = np.asarray([a != b for a, b in zip(after, before)], dtype=bool)
    if not changed.any():
        return ids, np.zeros(0, np.int64)
    pos = other[changed]
    if isinstance(ids.dtype, pd.ArrowDtype):
        mask = np.zeros(len(array), dtype=bool)
        mask[pos] = True
        fixed = pc.replace_with_mask(array, pa.array(mask), pa.array([a for a, c in zip(after, changed) if c], type=array.type))
        return pd.Series(pd.arrays.ArrowExtensionArray(fixed), index=ids.index), pos
    out = ids.astype(object).copy()
    out.iloc[pos] = [a for a, c in zip(after, changed) if c]
    return out, pos


def _bad_ids(ids: pd.Series) -> list[tuple[np.ndarray, str]]:
    """Ids refused at import, by kind: (positions, reason). Every output must carry the id as written."""
    import pyarrow as pa
    import pyarrow.compute as pc

    array = ids.array._pa_array if isinstance(ids.dtype, pd.ArrowDtype) else pa.array(ids.astype(str).to_numpy(dtype=object), type=pa.string())
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks() if array.num_chunks != 1 else array.chunk(0)
    if len(array) == 0:
        return []
    # Ids of letters and digits only (the usual case) cannot fail the first two checks: only the rest are searched.
    rest = np.flatnonzero(~pc.fill_null(pc.utf8_is_alnum(array), False).to_numpy(zero_copy_only=False))
    others = array.take(pa.array(rest))
    found = []
    for hit, reason in [
        (pc.match_substring_regex(others, r"[\p{Cc}\p{Cf}]"),
         "The id holds a control or invisible formatting character (such as NUL, a tab or a text-direction mark). "
         "Ids may hold only visible characters; correct the id in the source."),
        (pc.match_substring_regex(others, r"^[=+\-@]"),
         "The id starts with = + - or @, which a spreadsheet runs as a formula. The tables would have to change it, "
         "and it would then not match the letters and the LMS; give the person an id that starts otherwise."),
    ]:
        pos = rest[pc.fill_null(hit, False).to_numpy(zero_copy_only=False)]
        if len(pos):
            found.append((pos, reason))
    long = np.flatnonzero(pc.greater(pc.utf8_length(array), MAX_ID_LENGTH).to_numpy(zero_copy_only=False))
    if len(long):
        found.append((long, f"The id is longer than {MAX_ID_LENGTH} characters; it is refused, not cut. Check the id column."))
    return found


def _id_checks(
    raw_ids: pd.Series, ids: pd.Series, cells: "_Cells", id_column: str, skip: np.ndarray,
    policy: str, raw_stamps: pd.Series | None, stamp_column: str | None, stamp_format: str | None,
    normalised: np.ndarray | None = None,
) -> tuple[pd.DataFrame, int, str | None]:
    """Empty, refused, mangled, colliding and duplicated ids.

    Returns (warnings by row, number of superseded rows, why the submission
    times could not be used or None). Times are read only for duplicated ids.
    ``normalised``: positions of ids that :func:`_normalise_ids` changed (a warning each).
    """

    empty = (ids == "").to_numpy()
    epos = np.flatnonzero(empty)
    cells.add(epos, id_column, _take(raw_ids, epos), "The person id is empty; every response needs an id.")
    refused = np.zeros(len(ids), dtype=bool)
    for pos, reason in _bad_ids(ids):
        cells.add(pos, id_column, _take(raw_ids, pos), reason)
        refused[pos] = True

    # Mangled by Excel: a warning by row (the id is kept as written; it may be right).
    wpos = _mangled(ids)
    warnings = pd.DataFrame({"pos": wpos, "column": id_column, "value": _take(raw_ids, wpos),
                             "reason": "The id looks changed by Excel (a date, or a number in scientific notation that has lost digits). "
                             "Check it against the source, and export the id column as text."})
    if normalised is not None and len(normalised):
        now = ids.iloc[normalised].astype(object).to_numpy(dtype=object)
        changes = pd.DataFrame({"pos": normalised, "column": id_column, "value": _take(raw_ids, normalised),
                                "reason": ("The id is read as " + pd.Series(now, dtype=object).map(repr)
                                           + " (full-width or compatibility characters made plain, invisible characters removed); "
                                           "duplicates are judged on this form and the outputs carry it.").to_numpy(dtype=object)})
        warnings = pd.concat([warnings, changes], ignore_index=True).sort_values("pos", kind="stable", ignore_index=True)

    considered = ~empty & ~refused
    considered[skip] = False  # rows already rejected as a whole (unfinished responses) are not copies
    codes = factorize(ids, uniques=False)[0]
    counts = np.bincount(codes[considered], minlength=int(codes.max()) + 1 if len(codes) else 0)
    dup = considered & (counts[codes] > 1) if len(codes) else np.zeros(0, bool)
    superseded = 0
    if not dup.any():
        return warnings, superseded, None
    dpos = np.flatnonzero(dup)
    dids = _take(ids, dpos)
    draw = raw_ids.iloc[dpos].astype(object).to_numpy(dtype=object)
    group = pd.Series(dids, dtype=object)
    # Ids that differ as written but are equal after trimming: maybe two people, never merged.
    collide = (pd.Series(draw, dtype=object).groupby(group.to_numpy()).transform("nunique") > 1).to_numpy()
    if collide.any():
        cpos, crows = dpos[collide], dpos[collide] + 1
        rows_text = _row_lists(dids[collide], crows)
        reasons = ("Ids in rows " + rows_text + " are the same after removing surrounding spaces and invisible characters and making "
                   "full-width characters plain (" + pd.Series(draw[collide], dtype=object).map(repr)
                   + " here); they may be different people, so all are rejected. Correct the ids.").to_numpy(dtype=object)
        cells.add(cpos, id_column, draw[collide], reasons)
    same = ~collide
    if not same.any():
        return warnings, superseded, None
    spos, sids = dpos[same], dids[same]
    stamps, stamp_why = None, None
    if policy == "keep-latest" and raw_stamps is not None:
        # The format is chosen on the duplicated rows plus the first rows of the file.
        sample = np.union1d(spos, np.arange(min(len(ids), 2000)))
        sample = np.setdiff1d(sample, skip)
        parsed, stamp_why = parse_timestamps(raw_stamps.iloc[sample].reset_index(drop=True), stamp_format)
        if stamp_why is None:
            stamps = np.full(len(ids), np.datetime64("NaT"), "datetime64[ns]")
            stamps[sample] = parsed
    if policy == "reject" or stamps is None:
        why = "" if policy == "reject" else f" (there is no submission time to tell which is the latest{': ' + stamp_why if stamp_why else ''})"
        cells.add(spos, id_column, draw[same], _duplicate_reasons(sids, spos + 1, ending=f"; all copies are rejected{why}. Remove the duplicates."))
        return warnings, superseded, stamp_why
    t = stamps[spos]
    frame = pd.DataFrame({"id": pd.factorize(pd.Series(sids, dtype=object))[0], "pos": spos, "t": t})
    g = frame.groupby("id")["t"]
    latest = g.transform("max").to_numpy()
    nat = frame["t"].isna().groupby(frame["id"]).transform("any").to_numpy()
    is_latest = frame["t"].to_numpy() == latest
    n_latest = pd.Series(is_latest).groupby(frame["id"]).transform("sum").to_numpy()
    clear = ~nat & (n_latest == 1)
    unclear = ~clear
    if unclear.any():
        why = np.where(nat[unclear], " (a copy has no readable submission time)", " (the latest submission time is shared by several copies)")
        cells.add(spos[unclear], id_column, draw[same][unclear],
                  _duplicate_reasons(sids[unclear], spos[unclear] + 1, ending="; all copies are rejected") + why + ". Remove the duplicates.")
    old = clear & ~is_latest
    if old.any():
        keeper = frame.loc[clear & is_latest].set_index("id")["pos"]
        winner = frame["id"][old].map(keeper).to_numpy(dtype=np.int64) + 1
        rows_text = _row_lists(sids, spos + 1).to_numpy(dtype=object)[old]
        reasons = ("superseded by row " + pd.Series(winner).astype(str) + " (later submission); rows " + pd.Series(rows_text, dtype=object)
                   + " have this id and the latest is used (--duplicates keep-latest).").to_numpy(dtype=object)
        values = raw_stamps.iloc[spos[old]].astype(object).to_numpy(dtype=object) if raw_stamps is not None else draw[same][old]
        cells.add(spos[old], stamp_column or id_column, values, reasons)
        superseded = int(old.sum())
    return warnings, superseded, stamp_why


# --------------------------------------------------------------------------- shifted rows

HIDDEN = "(hidden: may be personal data)"


def _hide_shifted(
    rejects: pd.DataFrame, pos: np.ndarray, overflow: pd.Series, raw: RawSurvey, width: int,
    position: Mapping[str, int], personal_at: list[int], id_header: str,
) -> pd.DataFrame:
    """Hide the reported cells of shifted rows that may hold a personal-data column's value.

    A value holding the delimiter unquoted splits into more fields and moves
    every later cell right by one field per extra delimiter; the overflow has
    ``s`` fields, so the cell in column ``j`` came from one of columns
    ``j - s`` … ``j`` (and from up to ``d`` columns further right when the file
    has ``d`` unnamed empty columns that the reader left out). A reported cell
    (its value, its reason when the reason quotes the value, and the row's
    person id) whose source range holds a personal-data column is hidden: the
    dropped column's e-mail or name never reaches rejects.csv or the terminal.
    Only rejects of shifted rows are looked at (they are few).
    """
    extra = max(0, (raw.fields or width) - width)
    delim = raw.delimiter or ","
    shift = pd.Series(overflow.astype(str).str.count(re.escape(delim)).to_numpy(dtype=np.int64) + 1, index=overflow.index)
    s = shift.reindex(pos).to_numpy()  # NaN: not a shifted row
    shifted = ~np.isnan(s)
    if not shifted.any():
        return rejects
    p = np.asarray(personal_at, dtype=np.int64)

    def near(j: np.ndarray, s: np.ndarray) -> np.ndarray:
        """Whether the value now in column j may come from a personal-data column."""
        return ((p[None, :] <= j[:, None] + extra) & (p[None, :] + extra >= j[:, None] - s[:, None])).any(axis=1)

    columns = rejects["column"].to_numpy(dtype=object)
    j = np.array([position.get(c, -1) for c in columns], dtype=np.int64)
    beyond = columns == OVERFLOW_COLUMN
    j = np.where(beyond, width + extra, j)  # the overflow's first field; its last is s - 1 further
    s_row = np.nan_to_num(s, nan=0).astype(np.int64)
    reach = np.where(beyond, s_row + s_row - 1, s_row)  # overflow fields came from width - s … width + s - 1
    hide = shifted & (j >= 0) & near(j + np.where(beyond, s_row - 1, 0), reach)
    # The id column itself may be shifted: then the row's person id is hidden in every reject of the row.
    id_j = position.get(id_header, -1)
    id_hidden = shifted & near(np.full(len(j), id_j, dtype=np.int64), s_row) if id_j >= 0 else np.zeros(len(j), bool)
    return _hide_cells(rejects, hide, id_hidden, f"The row is shifted (see {OVERFLOW_COLUMN!r}), so this cell may hold "
                       "personal data and is not shown. Quote the cell that holds the delimiter.")


def _trailing_empty(frame: pd.DataFrame) -> np.ndarray:
    """How many of each row's last cells are empty. A row that lost delimiters reads the same as one whose last
    answers are empty (the reader fills the missing fields), so its cells may have moved left by that many."""
    count = np.zeros(len(frame), dtype=np.int64)
    still = np.ones(len(frame), dtype=bool)
    for j in range(frame.shape[1] - 1, -1, -1):
        still &= (frame.iloc[:, j] == "").to_numpy(dtype=bool)
        if not still.any():
            break
        count += still
    return count


def _hide_short(rejects: pd.DataFrame, pos: np.ndarray, room: np.ndarray, raw: RawSurvey, width: int,
                position: Mapping[str, int], personal_at: list[int], id_header: str) -> pd.DataFrame:
    """Hide the reported cells that a row short of fields may have moved out of a personal-data column.

    A lost delimiter joins two cells and moves every later cell left by one field, so the cell in column ``j``
    of a row whose last ``m`` cells are empty may hold text from columns ``j`` … ``j + m`` (and up to ``d``
    further when the file has ``d`` unnamed empty columns the reader left out). A reported cell, or the row's
    person id, with a personal-data column in that range is hidden, as for rows with too many fields.
    """
    extra = max(0, (raw.fields or width) - width)
    m = room[pos] + np.where(room[pos] > 0, extra, 0)
    if not (m > 0).any():
        return rejects
    p = np.asarray(personal_at, dtype=np.int64)

    def near(j: np.ndarray) -> np.ndarray:
        """Whether the value now in column j may come from a personal-data column on its right."""
        return ((p[None, :] > j[:, None]) & (p[None, :] <= j[:, None] + m[:, None])).any(axis=1)

    j = np.array([position.get(c, -1) for c in rejects["column"].to_numpy(dtype=object)], dtype=np.int64)
    hide = (m > 0) & (j >= 0) & near(j)
    id_j = position.get(id_header, -1)
    id_hidden = (m > 0) & near(np.full(len(j), id_j, dtype=np.int64)) if id_j >= 0 else np.zeros(len(j), bool)
    return _hide_cells(rejects, hide, id_hidden, "The row may be short of values (its last cells are empty, as when a "
                       "delimiter is lost), so this cell may hold personal data and is not shown.")


def _hide_cells(rejects: pd.DataFrame, hide: np.ndarray, id_hidden: np.ndarray, why: str) -> pd.DataFrame:
    """``rejects`` with the values of ``hide`` and the person ids of ``id_hidden`` shown as :data:`HIDDEN`, and
    a reason that quotes a hidden text replaced by ``why``."""
    if not (hide.any() or id_hidden.any()):
        return rejects
    rejects = rejects.copy()
    values = rejects["value"].to_numpy(dtype=object).copy()
    reasons = rejects["reason"].to_numpy(dtype=object).copy()
    ids = rejects["person_id"].to_numpy(dtype=object).copy()
    for k in np.flatnonzero(hide | id_hidden):  # the hidden cells only
        secrets = [str(values[k]), str(ids[k])] if id_hidden[k] else [str(values[k])]
        if hide[k]:
            # A reason may quote the value, or one answer of a list (the training formats).
            secrets += re.split(r"[;,|\t]", secrets[0])
            values[k] = HIDDEN
        if any(t.strip() and t.strip() in str(reasons[k]) for t in secrets):
            reasons[k] = why
    ids[id_hidden] = HIDDEN
    rejects["value"], rejects["reason"], rejects["person_id"] = values, reasons, ids
    return rejects


# An e-mail address is never an answer: where one turns up in a rejected cell, a row has lost or gained a field
# (a shift the reader cannot always see, such as a missing delimiter) and it is a dropped personal-data column's.
_ADDRESS = re.compile(r"[^@\s;,<>\"']+@[^@\s;,<>\"']+\.[^@\s;,<>\"']+")


def _hide_personal(rejects: pd.DataFrame, pos: np.ndarray, raw: RawSurvey, width: int, position: Mapping[str, int],
                   personal_at: list[int], id_header: str, overflow: "pd.Series | None", room: np.ndarray | None) -> pd.DataFrame:
    """``rejects`` (of the rows at ``pos``) with every reported cell that may hold a dropped personal-data column's
    value hidden: cells a row with too many fields (``overflow``) or too few (``room``) may have moved out of one,
    and any e-mail address."""
    if not len(rejects):
        return rejects
    if overflow is not None and len(overflow) and personal_at:
        rejects = _hide_shifted(rejects, pos, overflow, raw, width, position, personal_at, id_header)
    if room is not None:
        rejects = _hide_short(rejects, pos, room, raw, width, position, personal_at, id_header)
    return _hide_addresses(rejects, id_header)


def _hide_addresses(rejects: pd.DataFrame, id_header: str) -> pd.DataFrame:
    """Hide rejected cells that hold an e-mail address (and the reasons that quote them), whatever the row;
    the id column's own cells keep their text, since the organisation chose the ids."""
    values = rejects["value"].astype(str)
    found = values.str.contains(_ADDRESS, regex=True).to_numpy(dtype=bool) & (rejects["column"].to_numpy(dtype=object) != id_header)
    if not found.any():
        return rejects
    rejects = rejects.copy()
    hidden_values = rejects["value"].to_numpy(dtype=object).copy()
    reasons = rejects["reason"].to_numpy(dtype=object).copy()
    for k in np.flatnonzero(found):  # the few cells found only
        for address in _ADDRESS.findall(str(hidden_values[k])):
            reasons[k] = str(reasons[k]).replace(address, HIDDEN)
        hidden_values[k] = HIDDEN
    rejects["value"], rejects["reason"] = hidden_values, reasons
    return rejects


# --------------------------------------------------------------------------- import


def _cell_rows(cells: pd.DataFrame, raw: RawSurvey, ids: "pd.Series | np.ndarray") -> pd.DataFrame:
    """Reported cells (pos, column, value, reason) as rejects.csv's rows: the data row, the file's line and the
    row's person id added."""
    pos = cells["pos"].to_numpy(dtype=np.int64)
    return pd.DataFrame(
        {
            "row": pos + 1,
            "line": raw.lines[pos] if len(pos) else np.zeros(0, np.int64),
            "person_id": _take(ids, pos),
            "column": cells["column"].to_numpy(dtype=object),
            "value": cells["value"].astype(str).to_numpy(dtype=object),
            "reason": cells["reason"].astype(str).to_numpy(dtype=object),
        }
    )


def import_survey(
    raw: RawSurvey,
    programme: Programme,
    *,
    mapping: "ColumnMapping | None" = None,
    duplicates: str = "keep-latest",
    consume: bool = False,
) -> ImportResult:
    """Validate and decode a raw survey against the programme.

    The survey tool's layout is recognised and converted first (see
    :mod:`trainmatch.layouts`; ``mapping`` for any other tool). ``duplicates``:
    ``"keep-latest"`` (the default) keeps the latest submission of an id when
    the file has submission times, and rejects every copy when it has none or
    they tie; ``"reject"`` always rejects every copy.

    ``consume=True`` consumes the caller's survey to save memory: the
    columns of ``raw.frame`` that the programme does not use are deleted at
    once and the others as soon as each is decoded, so the text cells and the
    decoded answers are never both whole in memory. ``raw.frame`` is then
    left without columns; keep ``raw.frame.columns`` beforehand if the header
    is needed. Without it (the default) the caller's objects are not changed.
    """
    from .layouts import convert

    if duplicates not in DUPLICATE_POLICIES:
        from .errors import UsageError

        raise UsageError(f"duplicates must be one of {', '.join(DUPLICATE_POLICIES)}; got {duplicates!r}.")
    conv = convert(raw, programme, mapping)
    original, raw = raw, conv.raw
    if len(raw.frame) == 0:
        raise SurveyError(Problem(raw.path, "has header rows but no answers.", hint="Check that the export includes the responses, not only the questions."))
    matched, ignored, personal, absent = match_columns(raw, programme, conv.personal, conv.layout)
    ignored = [h for h in ignored if h not in conv.consumed]
    n, width = raw.frame.shape
    # Where each header sits, for hiding what a shifted row may have moved out of a personal-data column.
    personal_set = set(personal)
    personal_at = [j for j, h in enumerate(raw.frame.columns) if h in personal_set]
    position = {h: j for j, h in reversed(list(enumerate(raw.frame.columns)))}
    # The careful CSV reader (files with any irregular row) fills a short row's missing fields: how many of each
    # row's last cells are empty bounds how far its cells may have moved left.
    room = _trailing_empty(raw.frame) if personal_at and raw.kind == "csv" and getattr(raw, "fields", 0) else None
    cols = programme.columns
    cells = _Cells()
    out: dict[str, object] = {}
    for pos, name, values, reasons in conv.completion + conv.bad:
        cells.add(np.asarray(pos, dtype=np.int64), name, values, reasons)

    stamp_column = conv.timestamp
    if stamp_column is None:
        stamp_column = next((h for h in ignored if header_key(h) in _TIMESTAMP_KEYS), None)
    if duplicates != "keep-latest" or stamp_column not in raw.frame.columns:
        stamp_column = None
    # The text of the columns used, by header: with consume, the only reference to each.
    texts = {h: raw.frame[h] for h in (*matched.values(), *([stamp_column] if stamp_column else []))}
    if consume:
        import warnings

        for frame in {id(f): f for f in (original.frame, raw.frame)}.values():
            # All at once: deleting one column at a time copies the rest of its block each time
            # (4,000 columns took 333 s). pandas 3 deprecates inplace but has no other way to
            # empty the caller's frame; a pandas without it fails the consume tests.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                frame.drop(columns=frame.columns, inplace=True)

    def column(name: str) -> pd.Series:
        return texts[matched[name]]

    every = max(1, math.ceil(len(texts) / _GIVE_BACKS))
    freed = itertools.count(1)  # columns freed; next() is atomic, and the workers call done_with

    def done_with(header: str) -> None:
        if consume:
            del texts[header]
            if next(freed) % every == 0:
                give_back_memory()

    # person id: text, trimmed, leading zeros intact
    raw_ids = column(cols.id)
    ids, normalised = _normalise_ids(_strip(raw_ids))
    raw_stamps = texts[stamp_column] if stamp_column else None
    notes = list(conv.notes)
    warn, n_superseded, stamp_why = _id_checks(
        raw_ids, ids, cells, cols.id, conv.excluded, duplicates, raw_stamps, stamp_column, conv.timestamp_format, normalised
    )
    del raw_ids, raw_stamps
    done_with(matched[cols.id])
    if stamp_column and stamp_column not in matched.values():
        done_with(stamp_column)
    if stamp_why:
        notes.append(f"submission times in {stamp_column!r} are not used: {stamp_why}")
    overflow = getattr(raw, "overflow", None)
    if overflow is not None and len(overflow):
        delim = {"\t": "tab"}.get(raw.delimiter or "", repr(raw.delimiter))
        cells.add(
            overflow.index.to_numpy(dtype=np.int64),
            OVERFLOW_COLUMN,
            overflow.to_numpy(dtype=object),
            f"The row has more values than the header has columns ({width}): a cell probably holds "
            f"the delimiter {delim} without quotes, which shifts every cell after it. Quote that cell or remove the extra values.",
        )
    out["row"] = np.arange(1, n + 1, dtype=np.int64)

    role_aliases = {r.id: (r.id, *r.names.values()) for r in programme.roles}
    # (programme column, output key, decoder, dtype); every column decoded once, per distinct value.
    jobs: list[tuple[str, str, Callable, object]] = []
    order = ["person_id", "row", "site"]  # the people frame's column order
    if cols.site in matched:
        out["site"] = text_column(_strip(column(cols.site)))
        done_with(matched[cols.site])
    else:
        out["site"] = text_column(np.full(n, "", dtype=object))
    lang_aliases = {k: v for k, v in LANGUAGE_NAMES.items() if k in programme.languages}
    optional = [
        (cols.language, "language", name_decoder(lang_aliases, "language", False), object, ""),
        (cols.hours, "hours", hours_decoder(programme), np.float64, np.nan),
        (cols.formats, "formats", formats_decoder(programme), object, ""),
        (cols.support, "support", willing_decoder(programme), object, ""),
    ]
    jobs.append((cols.role, "role", name_decoder(role_aliases, "role", True), object))
    for name, key, dec, dtype, fill in optional:
        if name in matched:
            jobs.append((name, key, dec, dtype))
        elif key == "support":  # an optional question: absent means not asked, so no column
            continue
        else:
            out[key] = text_column(np.full(n, fill, dtype=object)) if dtype is object else np.full(n, fill, dtype=dtype)
            order.append(key)
    order += [key for _, key, _, _ in jobs]
    likert = likert_decoder(programme)
    jobs += [(item.id, item.id, conv.decoders.get(item.id, likert), np.float32) for item in programme.items]
    yn = yes_no_decoder(programme)
    jobs += [(task.id, f"task_{task.id}", yn, bool) for task in programme.tasks]

    # Items and tasks go straight into one float and one bool block (no consolidation copy later).
    # Answers are whole codes: float32 holds them (and NaN) exactly in half the memory of float64.
    items = np.empty((n, len(programme.items)), dtype=np.float32, order="F")
    ticks = np.empty((n, len(programme.tasks)), dtype=bool, order="F")
    item_at = {item.id: j for j, item in enumerate(programme.items)}
    task_at = {f"task_{task.id}": j for j, task in enumerate(programme.tasks)}

    def run(job: tuple[str, str, Callable, object]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Decode one column into its place; returns its bad cells (positions, reasons, values)."""
        name, key, decode_one, dtype = job
        values = column(name)
        codes, decoded_u, pos, reasons = _decode_parts(values, decode_one, dtype)
        if key in item_at:
            np.take(decoded_u, codes, out=items[:, item_at[key]])
        elif key in task_at:
            np.take(decoded_u, codes, out=ticks[:, task_at[key]])
        elif dtype is object:
            out[key] = text_column(decoded_u, codes)
        else:
            out[key] = decoded_u[codes]
        bad_values = _take(values, pos)
        del values, codes  # the codes may hold Arrow memory: nothing of a decoded column is kept but its result
        done_with(matched[name])
        return pos, reasons, bad_values

    # Arrow's dictionary encoding and numpy's take release the GIL: columns are decoded in parallel.
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=max(1, min(8, os.cpu_count() or 1))) as pool:
        decoded = list(pool.map(run, jobs))
    for (name, _key, _dec, _dtype), (pos, reasons, bad_values) in zip(jobs, decoded):
        cells.add(pos, matched[name], bad_values, reasons)

    out["person_id"] = text_column(ids)
    base = pd.DataFrame({key: out[key] for key in order}, copy=False)
    people = pd.concat(
        [base, pd.DataFrame(items, columns=list(item_at), copy=False), pd.DataFrame(ticks, columns=list(task_at), copy=False)],
        axis=1,
    )
    bad_cells = cells.frame()
    bad_pos = bad_cells["pos"].to_numpy(dtype=np.int64)
    rejected = np.zeros(n, dtype=bool)
    rejected[bad_pos] = True
    rejects = _cell_rows(bad_cells, raw, ids)
    rejects = _hide_personal(rejects, bad_pos, raw, width, position, personal_at, matched[cols.id], overflow, room)
    rejects = rejects.sort_values("row", kind="stable", ignore_index=True)
    accepted = people.loc[~rejected].reset_index(drop=True) if rejected.any() else people
    warnings = _cell_rows(warn, raw, ids)
    if consume:
        give_back_memory()  # the last columns' text, and what validation made on the way
    _reconcile(original, conv.header_rows, n, len(accepted), int(rejected.sum()))
    return ImportResult(
        people=accepted,
        rejects=rejects,
        n_read=n,
        file=raw.path,
        matched=matched,
        ignored=tuple(h for h in ignored if h),
        dropped_personal=tuple(personal),
        absent_optional=tuple(absent),
        notes=tuple(notes),
        layout=conv.layout,
        duplicates=duplicates,
        timestamp=stamp_column if stamp_column and not stamp_why else None,
        n_superseded=n_superseded,
        warnings=warnings,
        layout_source=conv.layout_source,
        header_rows=conv.header_rows,
    )


def _reconcile(raw: RawSurvey, header_rows: int, n_read: int, n_accepted: int, n_rejected: int) -> None:
    """Nothing lost: header rows + rows read = the records the reader counted, and every row read is accepted or rejected.

    A safety net that does not depend on the layouts or the mapping file: if
    any step dropped a record, the run stops here rather than finish with a
    person missing from both people and rejects.
    """
    records = getattr(raw, "records", -1)
    if (records >= 0 and header_rows + n_read != records) or n_accepted + n_rejected != n_read:
        raise SurveyError(
            Problem(
                raw.path,
                f"was not read completely: the file has {records} records with text, but {header_rows} header row(s) "
                f"+ {n_read} rows read make {header_rows + n_read}, and {n_accepted} accepted + {n_rejected} rejected "
                f"rows make {n_accepted + n_rejected}. Nothing was written, so that no answer is lost without a word.",
                hint="Check survey.header_rows in the mapping file, and report this file's layout to the trainmatch maintainers.",
            )
        )
