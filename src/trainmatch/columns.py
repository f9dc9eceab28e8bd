"""Column helpers shared by every stage: one home for how text is compared and how a column becomes codes.

* :func:`normalise` and :func:`header_key`: how cells and headers are compared
  (case, white space, typographic quotes and dashes);
* :func:`factorize`, :func:`codes` and :func:`text_codes`: a column as integer
  codes and its distinct values (Arrow's dictionary encoding for Arrow text,
  free for categoricals), never a Python string per row;
* :func:`text_column` and :func:`person_id_column`: text columns built from codes;
* :func:`text_array` and :func:`map_text`: a column as Arrow text, and mapped through a dict per distinct value;
* :func:`index_in`: positions of Arrow values in another Arrow array;
* :func:`level_matrix`: a family of level columns as one people × domains matrix;
* :func:`parse_timestamps`: submission times in any of the survey tools' formats.
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np
import pandas as pd

# A cell a spreadsheet may run as a formula: one that starts with = + - @ (or their full-width
# forms ＝ ＋ － ＠, which Excel with an East Asian input method reads as the same) after any
# leading white space (NBSP and the ideographic space U+3000 included), control or invisible
# formatting characters, which spreadsheets skip; or one that starts with a tab or CR. Output
# text cells that match are neutralised; ids that match are refused where they are read.
_LEAD = "\\s\u00a0\u1680\u2000-\u200f\u2028-\u202f\u205f-\u2064\u3000\ufeff\x00-\x1f\x7f-\x9f"
_STARTS = "=+\\-@\uff1d\uff0b\uff0d\uff20"
FORMULA_PATTERN = f"^(?:[\t\r]|[{_LEAD}]*[{_STARTS}])"  # Python's re

_TYPOGRAPHIC = str.maketrans({"\u2019": "'", "\u2018": "'", "\u00b4": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-"})


def normalise(text: str) -> str:
    """Case-fold, collapse white space (non-breaking too) and straighten typographic quotes and dashes.

    Survey tools and Word turn "Don't know" into "Don’t know"; both must match.
    """
    return " ".join(str(text).translate(_TYPOGRAPHIC).split()).casefold()


def header_key(text: str) -> str:
    """A column header for matching: normalised, without spaces, underscores, hyphens or dots."""
    return re.sub(r"[\s_\-.]+", "", normalise(text))


def factorize(values: pd.Series, *, uniques: bool = True) -> tuple[np.ndarray, list[str] | None]:
    """Codes and distinct values of a text column (the values left out, None, with ``uniques=False``).

    Arrow-backed columns use Arrow's dictionary encoding.
    """
    if isinstance(values.dtype, pd.ArrowDtype):
        import pyarrow as pa
        import pyarrow.compute as pc

        array = pa.array(values.array)
        if isinstance(array, pa.ChunkedArray):
            # One dictionary for the whole column: unifying per-chunk dictionaries is slow for ids.
            array = array.combine_chunks() if array.num_chunks != 1 else array.chunk(0)
        if len(array) == 0:
            return np.zeros(0, np.intp), [] if uniques else None
        encoded = pc.dictionary_encode(array)
        codes = encoded.indices.to_numpy(zero_copy_only=False)  # int32: half the memory traffic
        return codes, encoded.dictionary.to_pylist() if uniques else None
    codes, distinct = pd.factorize(values, sort=False)
    return codes, list(distinct) if uniques else None


def codes(values: pd.Series, categories: Sequence[str] | None = None) -> tuple[np.ndarray, list[str]]:
    """Integer codes (int64) and labels of a categorical or text column; with ``categories``, codes into
    those (-1 for a label not among them). Free for categoricals, such as the paths' text columns."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        out = values.cat.codes.to_numpy().astype(np.int64)
        labels = [str(c) for c in values.cat.categories.to_numpy(dtype=object)]  # not per element of an Arrow index
    else:
        found, distinct = pd.factorize(values.astype(str))
        out, labels = found.astype(np.int64), [str(x) for x in distinct]
    if categories is not None:
        lookup = {c: i for i, c in enumerate(categories)}
        remap = np.asarray([lookup.get(label, -1) for label in labels] or [0], dtype=np.int64)
        out = remap[out] if len(out) else out
    return out, labels


def text_codes(people: "pd.DataFrame", column: str) -> tuple[np.ndarray, list[str]]:
    """Integer codes and labels of a text column; missing values and an absent column read as ''.

    Factorising the (Arrow-backed) strings directly avoids materialising a million Python strings.
    """
    n = len(people)
    if column not in people.columns:
        return np.zeros(n, dtype=np.int64), [""]
    codes, uniques = pd.factorize(people[column], use_na_sentinel=True)
    labels = ["" if (u is None or u is pd.NA or (isinstance(u, float) and u != u)) else str(u) for u in uniques]
    codes = np.asarray(codes, dtype=np.int64)
    if (codes < 0).any() or len(set(labels)) != len(labels) or not labels:
        labels = labels + [""]
        codes = np.where(codes < 0, len(labels) - 1, codes)
        unique = list(dict.fromkeys(labels))
        remap = np.asarray([unique.index(lab) for lab in labels], dtype=np.int64)
        codes, labels = remap[codes], unique
    return codes, labels


_STR = pd.StringDtype("pyarrow", na_value=np.nan)  # pandas' default "str" dtype


def text_column(values: object, codes: np.ndarray | None = None) -> pd.api.extensions.ExtensionArray:
    """A pandas "str" column built in Arrow: from distinct values and codes (a take), or from a text Series.

    With codes no Python string is made per row.
    """
    import pyarrow as pa
    from pandas.core.arrays.string_arrow import ArrowStringArray

    if codes is not None:
        array = pa.array([str(v) for v in values], type=pa.large_string()).take(pa.array(codes))
    elif isinstance(getattr(values, "dtype", None), pd.ArrowDtype):
        array = values.array._pa_array.cast(pa.large_string())
    else:
        return pd.array(np.asarray(values, dtype=object), dtype=_STR)
    return ArrowStringArray(array, dtype=_STR)


def person_id_column(people: "pd.DataFrame"):  # type: ignore[no-untyped-def]
    """A function mapping row positions to person_id values: categorical when ids are unique (fast), else text."""
    if "person_id" not in people.columns:
        ids = pd.Series(np.arange(len(people)).astype(str), dtype=str)
    elif isinstance(people["person_id"].dtype, pd.StringDtype):
        ids = people["person_id"]
    else:
        ids = people["person_id"].astype(str)
    ids = ids.reset_index(drop=True)
    cats = pd.Index(ids)
    if cats.is_unique:  # the Index hash table is several times faster than Series.is_unique on Arrow strings
        dtype = pd.CategoricalDtype(cats)
        return lambda rows: pd.Categorical.from_codes(rows, dtype=dtype)
    return lambda rows: ids.take(rows).reset_index(drop=True)


def level_matrix(people: "pd.DataFrame", prefix: str, domains: tuple[str, ...]) -> np.ndarray:
    """n × domains float matrix of a nullable integer column family, NaN where missing."""
    cols = []
    for d in domains:
        s = people[f"{prefix}{d}"]
        if isinstance(s.dtype, pd.api.extensions.ExtensionDtype):
            cols.append(s.to_numpy(dtype="float64", na_value=np.nan))
        else:
            cols.append(s.to_numpy(dtype="float64"))
    return np.column_stack(cols) if cols else np.zeros((len(people), 0))


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
    codes, uniques = factorize(values)
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


def positions(values: "pd.Series | pd.Categorical", index: pd.Index) -> np.ndarray:
    """Position in ``index`` of each value (int64, -1 if absent), each distinct value looked up once.

    A categorical whose categories are ``index`` (as the follow-up round's person_id columns, whose
    categories are the people's ids) gives its codes: no lookup of a million ids.
    """
    cat = values.array if isinstance(values, pd.Series) and isinstance(values.dtype, pd.CategoricalDtype) else values
    if not isinstance(cat, pd.Categorical):
        cat = pd.Categorical(pd.Series(values).astype(str))
    codes = np.asarray(cat.codes, dtype=np.int64)
    if cat.categories is index or (len(cat.categories) == len(index) and cat.categories.equals(index)):
        return codes
    if len(cat.categories) > 10_000:  # many (person ids): matched in Arrow, no Python string per id
        where = index_in(text_array(cat.categories), text_array(index))
    else:
        where = index.get_indexer(np.asarray(cat.categories, dtype=object).astype(str))
    return np.where(codes >= 0, where[np.maximum(codes, 0)], -1) if len(codes) else codes


def index_in(values, among) -> np.ndarray:  # type: ignore[no-untyped-def]
    """The position of each value of the Arrow array ``values`` in the Arrow array ``among`` (int64, -1 where
    absent); ``among`` is hashed, so pass the smaller side there when the caller can choose."""
    import pyarrow.compute as pc

    return pc.index_in(values, value_set=among).fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)


def text_array(values: "pd.Series | pd.Index"):  # type: ignore[no-untyped-def]
    """A column's values as one Arrow string array, missing values null: zero-copy for Arrow-backed text, a
    categorical taken from its categories by code (pyarrow's own conversion of a categorical with a million
    text categories takes seconds), Python objects converted in C, numbers cast."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(values.dtype, pd.CategoricalDtype):
        cat = values.array if isinstance(values, pd.Series) else values.values
        codes = np.asarray(cat.codes)
        return pc.take(text_array(cat.categories), pa.array(codes, mask=codes < 0))
    array = values.array
    if hasattr(array, "__arrow_array__"):
        array = pa.array(array)
        array = array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array
        return array if pa.types.is_string(array.type) else pc.cast(array, pa.string())
    if values.dtype != object:
        return pc.cast(pa.array(np.asarray(values), from_pandas=True), pa.string())
    objects = values.to_numpy(dtype=object)
    try:
        return pa.array(objects, type=pa.string(), from_pandas=True)  # Python strings: converted in C
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        return pa.array([None if v is None or v is pd.NA or (isinstance(v, float) and v != v) else str(v) for v in objects],
                        type=pa.string())


def map_text(values: pd.Series, mapping: "dict[str, str]") -> pd.Series:
    """``values`` with each text found in ``mapping`` replaced (others kept, missing stays missing), looked up once per
    distinct value; Arrow-backed text."""
    import pyarrow as pa
    import pyarrow.compute as pc

    encoded = pc.dictionary_encode(text_array(values))
    mapped = pa.array([mapping.get(v, v) for v in encoded.dictionary.to_pylist()], type=pa.string())
    return pd.Series(pd.arrays.ArrowStringArray(mapped.take(encoded.indices)), index=values.index)
