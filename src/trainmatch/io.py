"""Reading survey files and writing outputs: the only library module that touches files.

Survey files arrive as CSV (any of `,` `;` tab `|`, UTF-8 with or without BOM,
UTF-16, cp1252) or XLSX. :func:`read_survey` returns every cell as text,
exactly as written, together with where each record sits in the file, so that
later stages can name row and line in their messages. Outputs are written to a
temporary file next to the target and moved into place when complete.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .errors import Problem, SurveyError, UsageError

if TYPE_CHECKING:
    from concurrent.futures import Future

DELIMITERS = (",", ";", "\t", "|")
_SNIFF_BYTES = 64 * 1024


@dataclass(frozen=True)
class RawSurvey:
    """A survey file as text cells.

    ``frame`` has one column per header (text: Arrow-backed strings from the
    CSV fast path and XLSX, ``object`` holding ``str`` otherwise; ``''`` for
    empty cells) and one row per data record; blank records are
    skipped. ``lines[i]`` is the line of the file (CSV) or sheet row (XLSX)
    where record ``i + 1`` starts.
    """

    path: str
    frame: pd.DataFrame
    lines: np.ndarray
    kind: str  # "csv" or "xlsx"
    encoding: str | None
    delimiter: str | None
    sheet: str | None
    sha256: str
    # CSV only: text beyond the header's last column, by 0-based record (a value
    # holding the delimiter unquoted shifts the cells after it; such rows are rejected).
    overflow: pd.Series = field(default_factory=lambda: pd.Series(dtype=object))
    skipped_empty: int = 0  # blank rows (or rows of bare delimiters) that were not read as people


def _hash_and_count_lines(path: Path) -> tuple[str, int]:
    """The file's sha256 and its number of b"\n" bytes, in one pass (run beside the CSV parser)."""
    h = hashlib.sha256()
    lines = 0
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)  # releases the GIL for large blocks
            lines += block.count(b"\n")
    return h.hexdigest(), lines


def read_survey(path: str | Path, *, sheet: str | None = None, encoding: str | None = None) -> RawSurvey:
    """Read a CSV or XLSX survey export as text. Raises SurveyError for unreadable files."""
    path = Path(path)
    name = str(path)
    if not path.is_file():
        raise SurveyError(Problem(name, "does not exist or is not a file."))
    if path.stat().st_size == 0:
        raise SurveyError(Problem(name, "is empty.", hint="Export the survey again with its header row and answers."))
    suffix = path.suffix.lower()
    # The checksum (and the newline count the CSV fast path needs) is computed while the file is parsed.
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=1)
    scan = pool.submit(_hash_and_count_lines, path)
    try:
        return _read_survey(path, name, suffix, sheet, encoding, scan)
    finally:
        pool.shutdown(wait=True)


def _read_survey(path: Path, name: str, suffix: str, sheet: str | None, encoding: str | None, scan: "Future[tuple[str, int]]") -> RawSurvey:
    overflow, skipped = pd.Series(dtype=object), 0
    if suffix in (".xlsx", ".xlsm"):
        frame, lines, sheet_name, skipped = _read_xlsx(path, sheet)
        enc, delim, kind = None, None, "xlsx"
    elif suffix == ".xls":
        raise SurveyError(Problem(name, "is an old binary Excel file (.xls).", hint="Save it as .xlsx or CSV in Excel and try again."))
    else:
        frame, lines, enc, delim, overflow, skipped = _read_csv(path, encoding, scan)
        sheet_name, kind = None, "csv"
    if frame.shape[1] == 0:
        raise SurveyError(Problem(name, "has no header row.", hint="The first row must name the columns."))
    if len(frame) == 0:
        raise SurveyError(
            Problem(name, "has a header row but no answers.", hint="Check that the export includes the responses, not only the questions.")
        )
    return RawSurvey(name, frame, lines, kind, enc, delim, sheet_name, scan.result()[0], overflow, skipped)


# --------------------------------------------------------------------------- CSV


def detect_encoding(head: bytes, complete: bool = False) -> str:
    """Encoding from the BOM, else UTF-8 when the sample decodes, else cp1252 (Excel on Windows).

    ``complete`` says ``head`` is the whole file, so a bad byte at its end is
    not a character cut by the sample.
    """
    if head.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the sample's end is not an error.
        if complete or exc.start < len(head) - 3:
            return "cp1252"
    return "utf-8"


def detect_delimiter(sample: str) -> str:
    """The delimiter that splits the first lines into the same, largest number of fields."""
    lines = [ln for ln in sample.splitlines()[:50] if ln.strip()]
    if len(lines) > 1 and not sample.endswith("\n"):
        lines = lines[:-1]  # the last line of a sample may be cut short
    best, best_score = ",", (-1, -1)
    for d in DELIMITERS:
        counts = []
        for ln in lines:
            try:
                counts.append(len(next(csv.reader([ln], delimiter=d))))
            except (csv.Error, StopIteration):
                counts.append(1)
        if not counts or counts[0] < 2:
            continue
        consistent = sum(1 for n in counts if n >= counts[0])
        score = (consistent, counts[0])
        if score > best_score:
            best, best_score = d, score
    return best


def _read_csv(path: Path, encoding: str | None, scan: "Future[tuple[str, int]] | None" = None) -> tuple[pd.DataFrame, np.ndarray, str, str, pd.Series, int]:
    name = str(path)
    with open(path, "rb") as fh:
        head = fh.read(_SNIFF_BYTES)
    complete = len(head) < _SNIFF_BYTES
    enc = encoding or detect_encoding(head, complete=complete)
    try:
        text_head = head.decode(enc, errors="strict" if complete else "ignore")
    except (UnicodeDecodeError, LookupError) as exc:
        raise SurveyError(Problem(name, f"cannot be decoded as {enc}: {exc}.", hint="Try --encoding=cp1252 or --encoding=utf-8."))
    text_head = text_head.lstrip("\ufeff")
    if encoding is None and enc == "cp1252":
        _refuse_mixed_encodings(path)
    skip = 0
    first = text_head.split("\n", 1)[0].strip().strip('"')
    if first.lower().startswith("sep=") and len(first) >= 5:
        delim = first[4]
        skip = 1
    else:
        delim = detect_delimiter(text_head)
    fast = _read_regular_csv(path, enc, delim, skip, text_head, scan)
    if fast is not None:
        frame, lines, skipped = fast
        return frame, lines, enc, delim, pd.Series(dtype=object), skipped
    options = dict(
        sep=delim,
        encoding=enc,
        dtype=str,
        keep_default_na=False,
        na_filter=False,
        index_col=False,
        skiprows=skip,
        header=None,
        engine="c",
    )
    try:
        # The header is read on its own (not by pandas' header logic) so that
        # duplicate names are not renamed "x.1" and rows may be longer than it.
        width = pd.read_csv(path, nrows=1, skip_blank_lines=True, **options).shape[1]
        # Every record, blank ones included, so that line numbers stay right; one
        # spare column takes a trailing delimiter. Rows with still more fields
        # raise, and the width grows to what the error reports.
        spare = width + 1
        for _attempt in range(20):
            try:
                cells = pd.read_csv(path, names=list(range(spare)), skip_blank_lines=False, **options)
                break
            except pd.errors.ParserError as exc:
                seen = re.search(r"saw (\d+)", str(exc))
                if not seen or int(seen.group(1)) <= spare:
                    raise
                spare = int(seen.group(1))
        else:  # pragma: no cover - a file whose rows keep getting longer
            raise pd.errors.ParserError("rows have too many fields")
    except UnicodeDecodeError as exc:
        line = _first_bad_line(path, enc)
        raise SurveyError(
            Problem(
                name,
                f"is not valid {enc} text at line {line} (the file mixes encodings or is not {enc}).",
                hint="Re-save it as 'CSV UTF-8' in Excel, or give the encoding, e.g. --encoding=cp1252.",
            )
        ) from exc
    except pd.errors.EmptyDataError:
        raise SurveyError(Problem(name, "has no header row.", hint="The first row must name the columns."))
    except pd.errors.ParserError as exc:
        if "EOF inside string" in str(exc):
            line = _unclosed_quote_line(path, enc, delim, skip)
            raise SurveyError(
                Problem(
                    name,
                    f"has a quote (\") opened in the record starting at line {line} that is never closed, so the rest of the file is one cell.",
                    hint="Close or remove that quote and save the file again.",
                )
            )
        raise SurveyError(Problem(name, f"is not a well-formed CSV file: {str(exc).strip()}.", hint="Check for an unclosed quote."))

    # Line where each record starts: one line per record plus the newlines
    # embedded in its quoted cells.
    extra = np.zeros(len(cells), dtype=np.int64)
    nonempty = np.zeros(len(cells), dtype=bool)
    for j in range(cells.shape[1]):
        values = cells.iloc[:, j]
        filled = (values != "").to_numpy(dtype=bool)
        if filled.any():
            nonempty |= filled
            if values.str.contains("\n", regex=False).any():
                extra += values.str.count("\n").to_numpy(dtype=np.int64)
    starts = 1 + skip + np.concatenate([[0], np.cumsum(1 + extra)[:-1]]).astype(np.int64)
    records = np.flatnonzero(nonempty)  # blank lines and rows of bare delimiters are not people
    if len(records) == 0:
        raise SurveyError(Problem(name, "has no header row.", hint="The first row must name the columns."))
    header_pos, body = records[0], records[1:]
    header = [str(h).strip() for h in cells.iloc[header_pos, :width]]
    contiguous = len(body) == 0 or body[-1] - body[0] + 1 == len(body)
    rows_of = slice(body[0], body[-1] + 1) if len(body) and contiguous else body
    frame = cells.iloc[rows_of, :width].reset_index(drop=True)
    frame.columns = header
    surplus = cells.iloc[rows_of, width:]
    overflow = pd.Series(dtype=object)
    if surplus.shape[1]:
        has = (surplus != "").to_numpy().any(axis=1)
        if has.any():
            rows = surplus.iloc[np.flatnonzero(has)]
            text = rows.iloc[:, 0].astype(object)
            for j in range(1, rows.shape[1]):
                text = text + delim + rows.iloc[:, j].astype(object)
            overflow = pd.Series(text.str.rstrip(delim).to_numpy(dtype=object), index=np.flatnonzero(has))
    frame = _drop_empty_unnamed(frame)
    skipped = int(body[-1] - header_pos - len(body)) if len(body) else 0  # blank rows between answers
    return frame, starts[body], enc, delim, overflow, skipped


def _read_regular_csv(
    path: Path, enc: str, delim: str, skip: int, text_head: str, scan: "Future[tuple[str, int]] | None" = None
) -> tuple[pd.DataFrame, np.ndarray, int] | None:
    """Fast path: pyarrow's multi-threaded reader, for files whose every line is one complete record.

    Returns None when the file is irregular in any way (a blank line, a row
    longer or shorter than the header, a newline inside a quoted cell, an
    undecodable byte); the careful reader in :func:`_read_csv` then takes over
    and locates the problem. Cells come back as Arrow-backed strings, exactly
    as written (quotes removed, nothing trimmed or converted).
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    lines_of_head = text_head.splitlines()
    if len(lines_of_head) <= skip:
        return None
    try:
        width = len(next(csv.reader([lines_of_head[skip]], delimiter=delim)))
    except (csv.Error, StopIteration):
        return None
    names = [f"c{j}" for j in range(width)]
    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(skip_rows=skip, column_names=names, encoding="utf8" if enc.startswith("utf-8") else enc),
            parse_options=pacsv.ParseOptions(delimiter=delim, newlines_in_values=False, ignore_empty_lines=False),
            convert_options=pacsv.ConvertOptions(
                column_types={c: pa.string() for c in names}, strings_can_be_null=False, quoted_strings_can_be_null=False
            ),
        )
    except (pa.ArrowInvalid, UnicodeError, LookupError, ValueError):
        return None
    if table.num_rows == 0:
        return None
    # pyarrow may accept a newline inside a quoted cell within one block but
    # split it at a block boundary: only a file with one line per record
    # (a trailing newline allowed) stays on the fast path.
    if enc.startswith("utf-16"):
        n_newlines = _count_bytes(path, "\n".encode("utf-16-le"))
    elif scan is not None:
        n_newlines = scan.result()[1]
    else:
        n_newlines = _count_bytes(path, b"\n")
    if n_newlines - (skip + table.num_rows) not in (-1, 0):
        return None
    header = [str(table.column(j)[0].as_py()).lstrip("\ufeff").strip() for j in range(width)]
    body = table.slice(1)
    filled = np.zeros(body.num_rows, dtype=bool)
    for col in body.columns:
        filled |= pc.not_equal(col, "").to_numpy(zero_copy_only=False)
    frame = body.to_pandas(types_mapper=pd.ArrowDtype)
    records = np.flatnonzero(filled)
    skipped = int(body.num_rows - len(records))
    if skipped:
        frame = frame.iloc[records].reset_index(drop=True)
    frame.columns = header
    frame = _drop_empty_unnamed(frame)
    lines = (2 + skip + records).astype(np.int64)  # the header is line 1 + skip
    return frame, lines, skipped


def _count_bytes(path: Path, pattern: bytes, block: int = 1 << 24) -> int:
    """How often ``pattern`` (one or two bytes) occurs in the file, read in blocks of 16 MiB."""
    total, carry = 0, b""
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(block), b""):
            data = carry + chunk
            total += data.count(pattern)
            # Keep the last byte of a two-byte pattern, so one cut by the block edge is still found.
            carry = data[-1:] if len(pattern) == 2 and not data.endswith(pattern) else b""
    return total


def _unclosed_quote_line(path: Path, enc: str, delim: str, skip: int) -> int:
    """Line where the record holding an unclosed quote starts (error path only)."""
    start = 1 + skip
    with open(path, encoding=enc, newline="", errors="replace") as fh:
        for _ in range(skip):
            fh.readline()
        reader = csv.reader(fh, delimiter=delim)
        last = skip
        try:
            for _record in reader:
                start = last + 1
                last = skip + reader.line_num
        except csv.Error:
            return last + 1
    return start


_UTF8_SEQUENCE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")


def _refuse_mixed_encodings(path: Path) -> None:
    """A file that is not UTF-8 but holds UTF-8 characters mixes encodings (e.g. answers pasted from two exports).

    Reading it as cp1252 would turn every UTF-8 "ä" into "Ã¤" without a word,
    so it is refused, naming the first line that is not UTF-8 and a line that is.
    """
    data = path.read_bytes()
    found = _UTF8_SEQUENCE.search(data)
    if found is None:
        return
    utf8_line = data.count(b"\n", 0, found.start()) + 1
    bad_line = _first_bad_line(path, "utf-8")
    raise SurveyError(
        Problem(
            str(path),
            f"mixes encodings: line {bad_line} is not valid UTF-8 (it looks like cp1252, Excel on Windows), "
            f"but line {utf8_line} holds UTF-8 text.",
            hint="Re-save the whole file as 'CSV UTF-8' in Excel, or give the encoding of most of it, e.g. --encoding=cp1252.",
        )
    )


def _first_bad_line(path: Path, enc: str) -> int:
    with open(path, "rb") as fh:
        for n, raw in enumerate(fh, 1):
            try:
                raw.decode(enc)
            except UnicodeDecodeError:
                return n
    return 0


def _drop_empty_unnamed(frame: pd.DataFrame) -> pd.DataFrame:
    """Drop columns that have neither a header nor any value (e.g. a row-end delimiter)."""
    keep = [j for j, c in enumerate(frame.columns) if c != "" or (frame.iloc[:, j] != "").any()]
    return frame.iloc[:, keep] if len(keep) < frame.shape[1] else frame


# --------------------------------------------------------------------------- XLSX


def _read_xlsx(path: Path, sheet: str | None) -> tuple[pd.DataFrame, np.ndarray, str, int]:
    from python_calamine import CalamineWorkbook

    name = str(path)
    try:
        book = CalamineWorkbook.from_path(str(path))
    except Exception as exc:  # calamine raises its own error types for corrupt files
        raise SurveyError(Problem(name, f"is not a readable XLSX workbook ({exc}).", hint="Open and re-save it in Excel."))
    sheets = list(book.sheet_names)
    if sheet is None:
        chosen = sheets[0]
    elif sheet in sheets:
        chosen = sheet
    else:
        raise SurveyError(
            Problem(name, f"has no sheet {sheet!r}.", hint="Sheets in this workbook: " + ", ".join(repr(s) for s in sheets) + ".")
        )
    rows = book.get_sheet_by_name(chosen).to_python(skip_empty_area=False)
    if not rows:
        cells = np.zeros((0, 0), dtype=object)
    else:
        width = max(len(r) for r in rows)
        if any(len(r) != width for r in rows):
            rows = [list(r) + [""] * (width - len(r)) for r in rows]
        cells = np.empty((len(rows), width), dtype=object)
        cells[:] = rows
        del rows
    # Every cell as text, decided once per distinct value (a sheet has few distinct answers).
    flat = cells.ravel()
    codes, uniques = pd.factorize(flat, use_na_sentinel=False)
    codes, uniques = _split_bools(flat, codes, list(uniques))
    texts = np.asarray(list(map(_cell_text, uniques)), dtype=object)
    filled_u = texts != ""
    codes = codes.reshape(cells.shape)
    filled = filled_u[codes] if codes.size else np.zeros(cells.shape, dtype=bool)
    row_filled = filled.any(axis=1) if cells.size else np.zeros(len(cells), dtype=bool)
    if sheet is None and len(sheets) > 1 and int(row_filled.sum()) < 2:
        # The first sheet is often instructions or a cover page.
        raise SurveyError(
            Problem(
                name,
                f"has no answers on its first sheet {chosen!r}.",
                hint="Choose the sheet with the answers with --sheet; sheets in this workbook: "
                + ", ".join(repr(s) for s in sheets)
                + ".",
            )
        )
    # The header is the first row with any text; rows after it that are all empty are not people.
    nonempty = np.flatnonzero(row_filled)
    if len(nonempty) == 0:
        return pd.DataFrame(), np.zeros(0, dtype=np.int64), chosen, 0
    start = int(nonempty[0])
    body = nonempty[1:]
    header = [str(t).strip() for t in texts[codes[start]]]
    import pyarrow as pa

    # Arrow-backed text columns, like the CSV reader's: a take from the distinct texts.
    dictionary = pa.array(texts.tolist(), type=pa.string())
    contiguous = len(body) == 0 or body[-1] - body[0] + 1 == len(body)
    chosen_rows = codes[body[0] : body[-1] + 1] if len(body) and contiguous else codes[body]
    by_column = np.ascontiguousarray(chosen_rows.T, dtype=np.int32)  # one transpose, then each column is contiguous
    frame = pd.DataFrame(
        {j: pd.arrays.ArrowExtensionArray(dictionary.take(pa.array(by_column[j]))) for j in range(codes.shape[1])}
    )
    frame.columns = header
    frame = _drop_empty_unnamed(frame)
    lines = (body + 1).astype(np.int64)
    # Trailing empty rows are usually just formatting; count only those between answers.
    last = int(lines[-1]) if len(lines) else start + 1
    skipped = (last - (start + 1)) - len(lines)
    return frame, lines, chosen, skipped


def _split_bools(flat: np.ndarray, codes: np.ndarray, uniques: list) -> tuple[np.ndarray, list]:
    """Keep TRUE/FALSE cells apart from the numbers 1 and 0 (Python counts them equal when factorising)."""
    values = np.empty(len(uniques), dtype=object)
    values[:] = uniques
    # Elementwise == is one C loop; a text never equals 0 or 1.
    suspect = np.flatnonzero((values == 1) | (values == 0)).tolist()
    suspect = [j for j in suspect if isinstance(uniques[j], (bool, int, float))]
    if not suspect:
        return codes, uniques
    mask = np.zeros(len(uniques), dtype=bool)
    mask[suspect] = True
    idx = np.flatnonzero(mask[codes])
    kinds = np.fromiter(map(isinstance, flat[idx], itertools.repeat(bool)), dtype=bool, count=len(idx))
    for j in suspect:
        at = codes[idx] == j
        mixed = kinds[at]
        if mixed.any() and not mixed.all():
            # This code holds both kinds: give the other kind a code of its own.
            rep = uniques[j]
            other = (not isinstance(rep, bool))
            move = idx[at][mixed == other]
            uniques.append(bool(rep) if other else float(rep))
            codes = codes.copy() if codes.base is not None else codes
            codes[move] = len(uniques) - 1
    return codes, uniques


def _cell_text(value: object) -> str:
    if type(value) is str:
        return value.strip()
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))
        return repr(value)
    return str(value).strip() if isinstance(value, str) else str(value)


# --------------------------------------------------------------------------- writing


def write_csv(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write ``frame`` as UTF-8 CSV atomically, with spreadsheet formulas neutralised."""
    from .outputs import write_csv_fast

    path = Path(path)
    with staged_file(path) as tmp:
        write_csv_fast(frame, tmp)
    return path


class staged_file:
    """Context manager: yields a temporary path next to ``path``; moved into place on success."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __enter__(self) -> Path:
        parent = self.path.parent
        if not parent.is_dir():
            raise UsageError(f"The folder {str(parent)!r} for {self.path.name!r} does not exist. Create it first.")
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".part", dir=parent)
        os.close(fd)
        self.tmp = Path(tmp)
        return self.tmp

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            os.replace(self.tmp, self.path)
        else:
            self.tmp.unlink(missing_ok=True)


def write_xlsx_table(frame: pd.DataFrame, path: str | Path, sheet: str = "Sheet1") -> Path:
    """Write one table to an XLSX file atomically, formatted like the run's workbook (and as reproducibly)."""
    from .outputs import write_workbook

    path = Path(path)
    with staged_file(path) as tmp:
        write_workbook({sheet: frame}, tmp)
    return path
