"""Writing outputs: fast CSV, the XLSX workbook, JSON, and an `assign` run's files.

Where they are written, and what may be replaced, is :mod:`trainmatch.staging`'s
job: these writers write into the staged folder (or a staged single file).
Text cells that a spreadsheet would run as a formula are neutralised in CSV
and XLSX (after leading spaces, NBSP, the ideographic space or control
characters too, and for the full-width signs); numbers stay numbers.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

import numpy as np

from .columns import FORMULA_PATTERN, text_array
from .staging import staged_file

if TYPE_CHECKING:  # imported where used: `assign` checks the output folder before pandas is loaded
    import pandas as pd

# FORMULA_PATTERN (columns.py): a cell a spreadsheet may run as a formula.
# The same for pyarrow (RE2): \s is ASCII-only there, so Unicode separators, controls and format characters by class.
_FORMULA_RE2 = r"^(?:[\t\r]|[\s\p{Z}\p{Cc}\p{Cf}]*[=+\-@\x{FF1D}\x{FF0B}\x{FF0D}\x{FF20}])"
WORKBOOK_CREATED = datetime(2000, 1, 1)  # the "created" property of plans.xlsx: fixed, for identical outputs


def neutralise_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Prefix text cells that start like a formula (:data:`FORMULA_PATTERN`) with ``'``, per distinct value.

    Repeated text columns (titles, reasons) are factorised first, so the check
    runs once per distinct value, and come back as categoricals, which the CSV
    writer streams without copying each string.
    """
    import numpy as np
    import pandas as pd

    out = {}
    for col in frame.columns:
        s = frame[col]
        if isinstance(s.dtype, pd.CategoricalDtype) and not pd.api.types.is_numeric_dtype(s.cat.categories.dtype):
            cats = pd.Series(s.cat.categories.astype(str))
            bad = cats.str.match(FORMULA_PATTERN).to_numpy(dtype=bool)
            if bad.any():
                fixed = cats.where(~bad, "'" + cats)
                # "=x" next to "'=x" would give two equal categories: treat the column as plain text instead.
                s = s.astype(object) if fixed.duplicated().any() else s.cat.rename_categories(fixed.tolist())
        if isinstance(s.dtype, pd.CategoricalDtype):
            out[col] = s
        elif isinstance(s.dtype, pd.StringDtype) and s.dtype.storage == "pyarrow" and not _any_formula(s):
            out[col] = s  # Arrow-backed text checked in one vectorised pass: nothing to change (the usual case)
        elif s.dtype == object or pd.api.types.is_string_dtype(s.dtype):
            codes, uniques = pd.factorize(s, use_na_sentinel=True)
            texts = pd.Series(np.asarray(uniques, dtype=object), dtype=object).astype(str)
            bad = texts.str.match(FORMULA_PATTERN).to_numpy(dtype=bool)
            fixed = texts.where(~bad, "'" + texts).to_numpy(dtype=object)
            if len(fixed) * 2 < len(s) and len(set(fixed)) == len(fixed):
                out[col] = pd.Categorical.from_codes(codes, categories=fixed)
            else:
                values = fixed[codes] if len(fixed) else np.full(len(s), None, dtype=object)
                out[col] = np.where(codes < 0, None, values)
        else:
            out[col] = s.to_numpy() if not isinstance(s.dtype, pd.api.extensions.ExtensionDtype) else s.array
    return pd.DataFrame(out, index=frame.index)


def _any_formula(s: pd.Series) -> bool:
    """Whether an Arrow-backed text column has a cell that starts like a formula."""
    import pyarrow as pa

    values = pa.chunked_array(s.array._pa_array) if hasattr(s.array, "_pa_array") else pa.chunked_array([pa.array(s.array)])
    return any(_chunk_has_formula(chunk) for chunk in values.chunks)


# First bytes a formula cell can begin with (see _FORMULA_RE2): ASCII controls and space, = + - @ and DEL, and any
# byte of a multi-byte UTF-8 character (Unicode spaces, controls, format characters and full-width signs).
_SUSPECT_FIRST_BYTE = np.zeros(256, dtype=bool)
_SUSPECT_FIRST_BYTE[:0x21] = True
_SUSPECT_FIRST_BYTE[[ord(c) for c in "=+-@\x7f"]] = True
_SUSPECT_FIRST_BYTE[0x80:] = True


def _chunk_has_formula(chunk: Any) -> bool:
    """:func:`_any_formula` of one Arrow string array: each cell's first byte is read straight from the array's
    buffers, and the full pattern (RE2, the cost per cell) runs only on the cells whose first byte may begin one."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if len(chunk) == 0:
        return False
    if not (pa.types.is_string(chunk.type) or pa.types.is_large_string(chunk.type)):
        chunk = chunk.cast(pa.string())
    _, offsets_buf, data_buf = chunk.buffers()
    if data_buf is None or data_buf.size == 0:
        return False  # every cell empty or missing
    offsets = np.frombuffer(offsets_buf, dtype=np.int64 if pa.types.is_large_string(chunk.type) else np.int32)
    offsets = offsets[chunk.offset : chunk.offset + len(chunk) + 1]
    starts = offsets[:-1]
    filled = offsets[1:] > starts  # a missing cell has no bytes either
    first = np.zeros(len(chunk), dtype=np.uint8)
    first[filled] = np.frombuffer(data_buf, dtype=np.uint8)[starts[filled]]
    suspect = filled & _SUSPECT_FIRST_BYTE[first]
    if not suspect.any():
        return False
    candidates = chunk.filter(pa.array(suspect))
    return bool(pc.any(pc.match_substring_regex(candidates, _FORMULA_RE2)).as_py())


CSV_BLOCK_ROWS = 32_768  # rows formatted at a time: bounds the extra memory of writing a table
CSV_WORKERS = 2  # threads formatting blocks; pyarrow's CSV writer and take release the GIL


def _csv_blocks(frame: pd.DataFrame) -> list[Callable[[], Any]]:
    """One function per block of rows of ``frame`` (formulas neutralised) that formats it as CSV bytes.

    Categoricals are never converted whole: each block's codes pick their
    text from the categories with ``take`` (a million person ids as a
    categorical cost more to convert than to write). Other columns go to
    Arrow once, without copying Arrow-backed text.
    """
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.csv as pacsv

    rows = CSV_BLOCK_ROWS
    clean = neutralise_text(frame)
    parts: list[tuple[Any, Any]] = []  # (categories, codes) or (None, Arrow column)
    fields = []
    for i, name in enumerate(clean.columns):
        s = clean.iloc[:, i]
        if isinstance(s.dtype, pd.CategoricalDtype):
            cats = s.cat.categories
            values = pa.array(cats.array) if isinstance(cats.array, pd.arrays.ArrowStringArray) else pa.array(cats.to_numpy())
            values = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
            parts.append((values, s.cat.codes.to_numpy()))
            fields.append(pa.field(str(name), values.type))
        else:
            column = pa.Table.from_pandas(clean.iloc[:, [i]], preserve_index=False).column(0)
            parts.append((None, column))
            fields.append(pa.field(str(name), column.type))
    schema = pa.schema(fields)

    def block(start: int, header: bool) -> Any:
        arrays = []
        for values, part in parts:
            if values is None:
                arrays.append(part.slice(start, rows))
            else:
                codes = part[start : start + rows]
                arrays.append(pa.chunked_array([values.take(pa.array(codes, mask=codes < 0))], type=values.type))
        sink = pa.BufferOutputStream()
        options = pacsv.WriteOptions(include_header=header, quoting_style="needed")
        pacsv.write_csv(pa.Table.from_arrays(arrays, schema=schema), sink, write_options=options)
        return sink.getvalue()

    starts = np.arange(0, max(len(clean), 1), rows)
    return [functools.partial(block, int(start), start == 0) for start in starts]


def write_csvs(tables: Mapping[str | Path, pd.DataFrame], *, workers: int = CSV_WORKERS) -> list[Path]:
    """Write each frame (formulas neutralised) as UTF-8 CSV; blocks of rows are formatted on ``workers`` threads.

    The blocks of all the tables go through one pool, in order, and are
    written to their files in that order; at most ``2 * workers`` formatted
    blocks wait in memory, so a table of millions of rows is never held
    twice as text.
    """
    from collections import deque

    paths = [Path(p) for p in tables]
    # A generator: the next table is prepared (here, with the GIL) while the blocks of this one are formatted.
    jobs = ((path, fn) for path, frame in zip(paths, tables.values()) for fn in _csv_blocks(frame))
    files: dict[Path, Any] = {}
    pending: deque[tuple[Path, Any]] = deque()
    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for path, fn in jobs:
                pending.append((path, pool.submit(fn)))
                if len(pending) > 2 * workers:
                    _write_block(files, *pending.popleft())
            while pending:
                _write_block(files, *pending.popleft())
    finally:
        for path, fh in files.items():
            with naming_file(path):
                fh.close()
    return paths


def _write_block(files: dict[Path, Any], path: Path, future: Any) -> None:
    data = future.result()
    with naming_file(path):
        if path not in files:
            files[path] = open(path, "wb")
        files[path].write(data)


class naming_file:
    """Context manager: an OSError raised within names ``path`` when it names no file (a full disk does not)."""

    def __init__(self, path: str | Path):
        self.path = path

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if isinstance(exc, OSError) and not exc.filename:
            raise OSError(exc.errno, exc.strerror or str(exc), str(self.path)) from None


def write_csv_fast(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write one frame (formulas neutralised) as UTF-8 CSV with pyarrow's writer: :func:`write_csvs` of one table."""
    return write_csvs({path: frame})[0]


def write_json(data: Mapping[str, Any], path: str | Path) -> Path:
    with naming_file(path):
        Path(path).write_text(json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False) + "\n", encoding="utf-8")
    return Path(path)


def write_workbook(sheets: Mapping[str, pd.DataFrame], path: str | Path, *, progress: Callable[[str], None] | None = None) -> list[str]:
    """Write tables as formatted sheets (bold frozen header, filters, column widths).

    A table longer than Excel's 1,048,576-row limit is split across sheets
    ``name``, ``name (2)``, …; nothing is truncated. Returns the sheet names.
    """
    from . import xlsx

    per_sheet = xlsx.MAX_ROWS - 1  # read here, not at import: tests lower the limit
    parts: list[tuple[str, pd.DataFrame]] = []
    for base, frame in sheets.items():
        clean = neutralise_text(frame)
        n_parts = max(1, -(-len(clean) // per_sheet))
        for part in range(n_parts):
            suffix = "" if part == 0 else f" ({part + 1})"
            # Excel allows 31 characters: cut the base name, so that "… (2)" stays apart from the first part.
            name = base[: xlsx.MAX_NAME - len(suffix)] + suffix
            parts.append((name, clean.iloc[part * per_sheet : (part + 1) * per_sheet]))

    def note(name: str) -> None:
        if progress is not None:
            progress(f"workbook sheet {name}")

    # A fixed creation date (not the current time), so the same run gives the same bytes.
    with naming_file(path):
        xlsx.write_xlsx(str(path), parts, created=WORKBOOK_CREATED, on_sheet=note)
    return [name for name, _ in parts]


XLSX_AUTO_LIMIT = 20_000  # people: above this the workbook is written only on request
def write_assignment(
    folder: Path,
    *,
    people: pd.DataFrame,
    plans: pd.DataFrame,
    deferred: pd.DataFrame,
    rejects: pd.DataFrame,
    cohorts: pd.DataFrame,
    groups: pd.DataFrame,
    xlsx: bool,
    plan_pages: Iterable[tuple[str, str]] | None,
    n_plans: int = 0,
    progress: Callable[[str], None] | None = None,
    bar: Callable[[Iterable[Any], int], Any] | None = None,
    capacity: pd.DataFrame | None = None,
) -> list[str]:
    """Write the tables, workbook and plans of an `assign` run into ``folder``; returns the names written.

    report.html and run.json are written by the caller (:func:`trainmatch.jobs.assign`) after them.
    """
    from .letters import plan_filename

    def note(text: str) -> None:
        if progress is not None:
            progress(text)

    written = []
    tables = {"people.csv": people, "plans.csv": plans, "deferred.csv": deferred, "rejects.csv": rejects, "cohorts.csv": cohorts, "groups.csv": groups}
    if capacity is not None:
        tables["capacity.csv"] = capacity
    note("writing " + ", ".join(tables))
    write_csvs({folder / name: frame for name, frame in tables.items()})
    written += list(tables)
    if xlsx:
        note("writing plans.xlsx")
        write_workbook({"people": people, "plans": plans, "cohorts": cohorts, "groups": groups}, folder / "plans.xlsx", progress=progress)
        written.append("plans.xlsx")
    if plan_pages is not None:
        plan_dir = folder / "plans"
        plan_dir.mkdir()
        with (bar(plan_pages, n_plans) if bar is not None else nullcontext(plan_pages)) as items:
            page = plan_dir
            try:
                for person_id, html in items:
                    page = plan_dir / plan_filename(person_id)
                    page.write_text(html, encoding="utf-8")
            except OSError:  # name the plan (a full disk names no file), without a check per plan
                with naming_file(page):
                    raise
        written.append("plans/")
    return written


# --------------------------------------------------------------------------- single files


def write_csv(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write ``frame`` as UTF-8 CSV atomically, with spreadsheet formulas neutralised."""
    path = Path(path)
    with staged_file(path) as tmp:
        write_csv_fast(frame, tmp)
    return path


def write_xlsx_table(frame: pd.DataFrame, path: str | Path, sheet: str = "Sheet1") -> Path:
    """Write one table to an XLSX file atomically, formatted like the run's workbook (and as reproducibly)."""
    path = Path(path)
    with staged_file(path) as tmp:
        write_workbook({sheet: frame}, tmp)
    return path


def write_handoff(folder: Path, *, sessions: pd.DataFrame, calendars: Mapping[str, str], lms: Any) -> list[str]:
    """sessions.csv (formulas neutralised), calendar/<group>.ics and lms/ of an `assign` run into ``folder``.

    The .ics and LMS files are read by calendars and LMSs, not spreadsheets: they are written as made
    (their values were checked when made), enrolments.csv with pyarrow's CSV writer (quoted as needed).
    The Moodle flat file and upload-users file are made here, from ``lms``, on the caller's thread.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    write_csvs({folder / "sessions.csv": sessions})
    written = ["sessions.csv"]
    if calendars:
        cal = folder / "calendar"
        cal.mkdir()
        for group, text in calendars.items():
            (cal / f"{group}.ics").write_bytes(text.encode("utf-8"))
        written.append("calendar/")
    lms_dir = folder / "lms"
    lms_dir.mkdir()
    (lms_dir / "moodle-flatfile.txt").write_bytes(lms.make_flatfile())
    (lms_dir / "moodle-cohorts.csv").write_bytes(lms.cohorts)
    if lms.make_users is not None:
        (lms_dir / "moodle-users.csv").write_bytes(lms.make_users())
    table = pa.table({name: text_array(column) for name, column in lms.enrolments.items()})
    pacsv.write_csv(table, lms_dir / "enrolments.csv", pacsv.WriteOptions(quoting_style="needed"))
    written.append("lms/")
    return written
