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
import re
from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np
import pandas as pd

from .errors import Problem, SurveyError
from .io import RawSurvey
from .programme import Programme

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
    ``role``, ``site``, ``language``, ``hours``, ``formats``, one float column
    per item (NaN when unanswered or "don't know") and one bool column
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

    @property
    def n_rejected(self) -> int:
        return int(self.rejects["row"].nunique()) if len(self.rejects) else 0

    @property
    def n_accepted(self) -> int:
        return len(self.people)


_TYPOGRAPHIC = str.maketrans({"\u2019": "'", "\u2018": "'", "\u00b4": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-"})


def normalise(text: str) -> str:
    """Case-fold, collapse white space (non-breaking too) and straighten typographic quotes and dashes.

    Survey tools and Word turn "Don't know" into "Don’t know"; both must match.
    """
    return " ".join(str(text).translate(_TYPOGRAPHIC).split()).casefold()


def _header_key(text: str) -> str:
    return re.sub(r"[\s_\-.]+", "", normalise(text))


# --------------------------------------------------------------------------- columns


def match_columns(raw: RawSurvey, programme: Programme) -> tuple[dict[str, str], list[str], list[str], list[str]]:
    """Map programme columns to file headers: exact, then ignoring case and surrounding space.

    Returns (matched, ignored headers, personal-data headers, absent optional columns).
    Raises SurveyError naming the missing required columns with close matches.
    """
    cols = programme.columns
    required = [cols.id, cols.role] + [i.id for i in programme.items] + [t.id for t in programme.tasks]
    optional = [cols.site, cols.language, cols.hours, cols.formats]
    wanted = required + optional
    headers = list(raw.frame.columns)
    personal_keys = {_header_key(p) for p in programme.personal_data}

    matched: dict[str, str] = {}
    by_exact = {h: h for h in headers}
    by_loose: dict[str, list[str]] = {}
    for h in headers:
        by_loose.setdefault(_header_key(h), []).append(h)
    exact_count: dict[str, int] = {}
    for h in headers:
        exact_count[h] = exact_count.get(h, 0) + 1
    for w in wanted:
        if w in by_exact:
            candidates = [w] * exact_count[w]
        else:
            candidates = by_loose.get(_header_key(w), [])
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
    personal = [h for h in headers if h not in used and _header_key(h) in personal_keys]
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
                hint="Rename the columns in the export to the programme's ids, or edit the programme's columns.",
            )
        )
    absent = [w for w in optional if w not in matched]
    return matched, ignored, personal, absent


# --------------------------------------------------------------------------- decoding


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


def _factorize(values: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Codes and distinct values of a text column; Arrow-backed columns use Arrow's dictionary encoding."""
    if isinstance(values.dtype, pd.ArrowDtype):
        import pyarrow as pa
        import pyarrow.compute as pc

        encoded = pc.dictionary_encode(pa.array(values.array))
        chunks = encoded.unify_dictionaries().chunks if isinstance(encoded, pa.ChunkedArray) else [encoded]
        if not chunks:
            return np.zeros(0, np.intp), []
        indices = np.concatenate([c.indices.to_numpy(zero_copy_only=False) for c in chunks]).astype(np.intp)
        return indices, chunks[0].dictionary.to_pylist()
    codes, uniques = pd.factorize(values, sort=False)
    return codes, list(uniques)


def _decode(values: pd.Series, decode_one: Callable[[str], tuple[object, str | None]], dtype: object) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decode a text column via its distinct values.

    ``decode_one`` maps a distinct raw value to (decoded value, error reason or
    None). Returns the decoded array, the positions of bad cells and their reasons.
    """
    codes, uniques = _factorize(values)
    if len(uniques) == 0:
        return np.zeros(len(values), dtype=dtype), np.zeros(0, np.int64), np.zeros(0, object)
    decoded = [decode_one(u) for u in uniques]
    decoded_u = np.asarray([v for v, _ in decoded], dtype=dtype)
    reason_u = np.asarray([r for _, r in decoded], dtype=object)
    bad_u = np.array([r is not None for _, r in decoded], dtype=bool)
    pos = np.flatnonzero(bad_u[codes]) if bad_u.any() else np.zeros(0, np.int64)
    return decoded_u[codes], pos, reason_u[codes[pos]]


def likert_decoder(programme: Programme) -> Callable[[str], tuple[float, str | None]]:
    """Decoder for item answers: codes, or labels in any language; "don't know" → missing."""
    lo, hi = programme.scale_min, programme.scale_max
    table: dict[str, float] = {}
    for labels in programme.scale_labels.values():
        for code, label in enumerate(labels, lo):
            table[normalise(label)] = float(code)
    missing = {normalise(x) for x in programme.dont_know} | {normalise(x) for x in programme.missing_codes} | {""}
    example = next(iter(programme.scale_labels.values()), ("",))[-1]
    allowed = f"Allowed: codes {lo}–{hi}, the scale's labels (e.g. {example!r}), or a \"don't know\" answer."

    def decode(raw: str) -> tuple[float, str | None]:
        key = normalise(raw)
        if key in missing:
            return np.nan, None
        if key in table:
            return table[key], None
        # "5 - Täysin samaa mieltä" / "5 = Strongly agree" / "5. Agree"
        # The label after the code must not start with a digit: "2.5" is not "2" labelled "5".
        m = re.match(r"^([+-]?\d+(?:[.,]0+)?)\s*(?:[-–=.:)]\s*(\D.*)?)?$", key)
        if m:
            code = float(m.group(1).replace(",", "."))
            label = m.group(2)
            if label and label in table and table[label] != code:
                return np.nan, f"The code and the label disagree. {allowed}"
            if lo <= code <= hi:
                return code, None
            return np.nan, f"Code is outside the scale {lo}–{hi}."
        if re.match(r"^[+-]?\d+[.,]\d+$", key):
            return np.nan, f"Answers must be whole codes {lo}–{hi}."
        return np.nan, f"Unknown answer. {allowed}"

    return decode


def yes_no_decoder(programme: Programme) -> Callable[[str], tuple[bool, str | None]]:
    yes = {normalise(x) for x in programme.yes}
    no = {normalise(x) for x in programme.no} | {""}
    allowed = f"Allowed: {', '.join(programme.yes[:4])} for yes; {', '.join(programme.no[:4])} or empty for no."

    def decode(raw: str) -> tuple[bool, str | None]:
        key = normalise(raw)
        if key in yes:
            return True, None
        if key in no:
            return False, None
        return False, f"Not a yes/no answer. {allowed}"

    return decode


def _name_decoder(entries: Mapping[str, tuple[str, ...]], what: str, required: bool) -> Callable[[str], tuple[str, str | None]]:
    table = {normalise(alias): ident for ident, aliases in entries.items() for alias in aliases}
    ids = list(entries)

    def decode(raw: str) -> tuple[str, str | None]:
        key = normalise(raw)
        if not key:
            return "", (f"The {what} is empty; it is required." if required else None)
        if key in table:
            return table[key], None
        close = difflib.get_close_matches(key, list(table), n=1, cutoff=0.75)
        hint = f" Did you mean {table[close[0]]!r}?" if close else ""
        return "", f"Unknown {what}.{hint} Allowed: {', '.join(ids)} (or their names)."

    return decode


def _hours_decoder(programme: Programme) -> Callable[[str], tuple[float, str | None]]:
    top = programme.max_hours

    def decode(raw: str) -> tuple[float, str | None]:
        text = normalise(raw).removesuffix("h").strip()
        if not text:
            return np.nan, None
        text = text.replace(" ", "")
        if "," in text and "." not in text:
            text = text.replace(",", ".")
        try:
            value = float(text)
        except ValueError:
            return np.nan, "Hours must be a number such as 8 or 2,5."
        if not np.isfinite(value) or value < 0:
            return np.nan, "Hours must be zero or more."
        if value > top:
            return np.nan, f"More than the programme's maximum of {top:g} hours (budget.max_hours)."
        return value, None

    return decode


def _formats_decoder(programme: Programme) -> Callable[[str], tuple[str, str | None]]:
    aliases = {f.id: (f.id, *f.names.values()) for f in programme.formats}
    single = _name_decoder(aliases, "training format", required=False)
    order = {f.id: n for n, f in enumerate(programme.formats)}

    def decode(raw: str) -> tuple[str, str | None]:
        parts = [p for p in re.split(r"[;,|]", raw) if p.strip()]
        found = set()
        for p in parts:
            ident, reason = single(p)
            if reason:
                return "", f"{p.strip()!r}: {reason}"
            found.add(ident)
        return ";".join(sorted(found, key=order.__getitem__)), None

    return decode


def _duplicate_reasons(dup_ids: np.ndarray, rows: np.ndarray, show: int = 3) -> np.ndarray:
    """For each copy of a duplicated id: "The same id appears in rows 5, 9 …", vectorised.

    Names the first ``show`` rows of the id and how many more there are, so that
    a file appended to itself (every id twice) is reported in seconds.
    """
    codes, _ = pd.factorize(pd.Series(dup_ids, dtype=object))
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
    text = text.where(more <= 0, text + " and " + pd.Series(more, dtype=object).astype(str) + " more")
    return ("The same id appears in rows " + text + "; all copies are rejected. Remove the duplicates.").to_numpy(dtype=object)


# --------------------------------------------------------------------------- import


def import_survey(raw: RawSurvey, programme: Programme) -> ImportResult:
    """Validate and decode a raw survey against the programme."""
    matched, ignored, personal, absent = match_columns(raw, programme)
    frame = raw.frame
    n = len(frame)
    cols = programme.columns
    cells = _Cells()
    out: dict[str, object] = {}

    def column(name: str) -> pd.Series:
        return frame[matched[name]]

    # person id: text, trimmed, leading zeros intact
    ids = column(cols.id).astype(str).str.strip()
    empty = np.flatnonzero((ids == "").to_numpy())
    cells.add(empty, cols.id, _take(column(cols.id), empty), "The person id is empty; every response needs an id.")
    dup_mask = ids.duplicated(keep=False).to_numpy() & (ids != "").to_numpy()
    if dup_mask.any():
        dpos = np.flatnonzero(dup_mask)
        reasons = _duplicate_reasons(ids.to_numpy(dtype=object)[dpos], dpos + 1)
        cells.add(dpos, cols.id, _take(ids, dpos), reasons)
    overflow = getattr(raw, "overflow", None)
    if overflow is not None and len(overflow):
        delim = {"\t": "tab"}.get(raw.delimiter or "", repr(raw.delimiter))
        cells.add(
            overflow.index.to_numpy(dtype=np.int64),
            OVERFLOW_COLUMN,
            overflow.to_numpy(dtype=object),
            f"The row has more values than the header has columns ({raw.frame.shape[1]}): a cell probably holds "
            f"the delimiter {delim} without quotes, which shifts every cell after it. Quote that cell or remove the extra values.",
        )
    out["person_id"] = ids.to_numpy(dtype=object)
    out["row"] = np.arange(1, n + 1, dtype=np.int64)

    role_aliases = {r.id: (r.id, *r.names.values()) for r in programme.roles}
    decoders: list[tuple[str, str, Callable, object]] = [(cols.role, "role", _name_decoder(role_aliases, "role", True), object)]
    if cols.site in matched:
        out["site"] = column(cols.site).astype(str).str.strip().to_numpy(dtype=object)
    else:
        out["site"] = np.full(n, "", dtype=object)
    lang_aliases = {k: v for k, v in LANGUAGE_NAMES.items() if k in programme.languages}
    optional = [
        (cols.language, "language", _name_decoder(lang_aliases, "language", False), object, ""),
        (cols.hours, "hours", _hours_decoder(programme), np.float64, np.nan),
        (cols.formats, "formats", _formats_decoder(programme), object, ""),
    ]
    for name, key, dec, dtype, fill in optional:
        if name in matched:
            decoders.append((name, key, dec, dtype))
        else:
            out[key] = np.full(n, fill, dtype=dtype)

    for name, key, dec, dtype in decoders:
        values, pos, reasons = _decode(column(name), dec, dtype)
        cells.add(pos, name, _take(column(name), pos), reasons)
        out[key] = values

    likert = likert_decoder(programme)
    for item in programme.items:
        values, pos, reasons = _decode(column(item.id), likert, np.float64)
        cells.add(pos, matched[item.id], _take(column(item.id), pos), reasons)
        out[item.id] = values
    yn = yes_no_decoder(programme)
    for task in programme.tasks:
        values, pos, reasons = _decode(column(task.id), yn, bool)
        cells.add(pos, matched[task.id], _take(column(task.id), pos), reasons)
        out[f"task_{task.id}"] = values

    people = pd.DataFrame(out)
    bad_cells = cells.frame()
    rejected = np.zeros(n, dtype=bool)
    rejected[bad_cells["pos"].to_numpy(dtype=np.int64)] = True
    rejects = pd.DataFrame(
        {
            "row": bad_cells["pos"].to_numpy(dtype=np.int64) + 1,
            "line": raw.lines[bad_cells["pos"].to_numpy(dtype=np.int64)] if len(bad_cells) else np.zeros(0, np.int64),
            "person_id": ids.to_numpy(dtype=object)[bad_cells["pos"].to_numpy(dtype=np.int64)],
            "column": bad_cells["column"].to_numpy(dtype=object),
            "value": bad_cells["value"].astype(str).to_numpy(dtype=object),
            "reason": bad_cells["reason"].astype(str).to_numpy(dtype=object),
        }
    ).sort_values("row", kind="stable", ignore_index=True)
    accepted = people.loc[~rejected].reset_index(drop=True)
    return ImportResult(
        people=accepted,
        rejects=rejects,
        n_read=n,
        file=raw.path,
        matched=matched,
        ignored=tuple(h for h in ignored if h),
        dropped_personal=tuple(personal),
        absent_optional=tuple(absent),
    )
