"""Reading survey files (writing is :mod:`trainmatch.outputs`' job).

Survey files arrive as CSV (any of `,` `;` tab `|`, UTF-8 with or without BOM,
UTF-16, cp1252) or XLSX. :func:`read_survey` returns every cell as text,
exactly as written, together with where each record sits in the file, so that
later stages can name row and line in their messages.
"""

from __future__ import annotations

import csv
import hashlib
import re
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .errors import Problem, SurveyError, UsageError

if TYPE_CHECKING:
    from collections.abc import Iterator
    from concurrent.futures import Future

    import fastexcel
    import pyarrow as pa

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
    # Records of the file with any text, header rows included, as the parser counted them (not
    # from ``frame``): the import checks that header rows + rows read add up to it (nothing lost).
    records: int = -1
    # CSV only: header fields in the file, unnamed empty columns included (``frame`` may have
    # fewer); with ``overflow`` it bounds where a shifted cell came from. 0: as many as ``frame``.
    fields: int = 0


def _hash_and_count_lines(path: Path) -> tuple[str, int]:
    """The file's sha256 and its number of b"\n" bytes, in one pass (run beside the CSV parser)."""
    h = hashlib.sha256()
    lines = 0
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)  # releases the GIL for large blocks
            lines += block.count(b"\n")
    return h.hexdigest(), lines


def read_survey(
    path: str | Path, *, sheet: str | None = None, encoding: str | None = None, xlsx_limits: XlsxLimits | None = None
) -> RawSurvey:
    """Read a CSV or XLSX survey export as text. Raises SurveyError for unreadable files.

    ``xlsx_limits`` bounds a workbook before it is read (default :class:`XlsxLimits`).
    """
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
        return _read_survey(path, name, suffix, sheet, encoding, scan, xlsx_limits)
    finally:
        pool.shutdown(wait=True)


def _read_survey(
    path: Path, name: str, suffix: str, sheet: str | None, encoding: str | None, scan: "Future[tuple[str, int]]", xlsx_limits: XlsxLimits | None = None
) -> RawSurvey:
    overflow, skipped, fields = pd.Series(dtype=object), 0, 0
    if suffix in (".xlsx", ".xlsm"):
        frame, lines, sheet_name, skipped, records = _read_xlsx(path, sheet, xlsx_limits)
        enc, delim, kind = None, None, "xlsx"
    elif suffix == ".xls":
        raise SurveyError(Problem(name, "is an old binary Excel file (.xls).", hint="Save it as .xlsx or CSV in Excel and try again."))
    else:
        frame, lines, enc, delim, overflow, skipped, records = _read_csv(path, encoding, scan)
        sheet_name, kind = None, "csv"
        fields = frame.attrs.pop("fields", 0)
    if frame.shape[1] == 0:
        raise SurveyError(Problem(name, "has no header row.", hint="The first row must name the columns."))
    if len(frame) == 0:
        raise SurveyError(
            Problem(name, "has a header row but no answers.", hint="Check that the export includes the responses, not only the questions.")
        )
    return RawSurvey(name, frame, lines, kind, enc, delim, sheet_name, scan.result()[0], overflow, skipped, records=records, fields=fields)


# --------------------------------------------------------------------------- CSV


ENCODING_LABELS = {"utf-8": "UTF-8", "utf-8-sig": "UTF-8 with BOM", "utf-16": "UTF-16 with BOM", "cp1252": "cp1252 (Windows, Western European)"}


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


def _read_csv(path: Path, encoding: str | None, scan: "Future[tuple[str, int]]") -> tuple[pd.DataFrame, np.ndarray, str, str, pd.Series, int, int]:
    name = str(path)
    with open(path, "rb") as fh:
        head = fh.read(_SNIFF_BYTES)
    complete = len(head) < _SNIFF_BYTES
    if head.startswith(b"PK\x03\x04"):
        raise SurveyError(
            Problem(name, f"is an XLSX workbook (a zip file), not CSV text, although its name ends in {path.suffix!r}.", hint="Rename it to .xlsx, or save it as CSV in Excel.")
        )
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        raise SurveyError(Problem(name, "is an old binary Excel file (.xls), not CSV text.", hint="Save it as .xlsx or CSV in Excel and try again."))
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
        frame, lines, skipped, records = fast
        return frame, lines, enc, delim, pd.Series(dtype=object), skipped, records
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
        # Every record, blank ones included, so that line numbers stay right; one spare column
        # takes a trailing delimiter. Records with still more fields are left out here (pandas
        # would hold a column for every field of the longest row, for every row) and read on
        # their own by _long_records, from the lines pandas names in its warnings.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", pd.errors.ParserWarning)
            cells = pd.read_csv(path, names=list(range(width + 1)), skip_blank_lines=False, on_bad_lines="warn", **options)
        long_lines = sorted(int(n) + skip for w in caught for n in re.findall(r"Skipping line (\d+)", str(w.message)))
    except UnicodeError as exc:  # UnicodeDecodeError, or e.g. a UTF-16 stream without a byte-order mark
        if encoding is not None:
            found = ENCODING_LABELS.get(detect_encoding(head, complete=complete), "")
            raise SurveyError(
                Problem(
                    name,
                    f"is not {encoding} text ({getattr(exc, 'reason', None) or exc})" + (f"; it looks like {found}." if found else "."),
                    hint="Leave out --encoding to let the encoding be detected, or give the right one, e.g. --encoding=utf-8.",
                )
            ) from exc
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
    long_text: dict[int, str] = {}
    if long_lines:
        cells, extra, nonempty, long_text = _long_records(path, enc, delim, width, cells, extra, nonempty, long_lines, skip)
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
    # Text beyond the header's last column: the spare column, or all the extra fields of a long record.
    spare = cells.iloc[rows_of, width].astype(object).to_numpy(dtype=object).copy()
    for record, text in long_text.items():
        spare[np.searchsorted(body, record)] = text
    spare = pd.Series(spare, dtype=object).str.rstrip(delim)
    has = (spare != "").to_numpy(dtype=bool)  # an empty trailing field is not data
    overflow = pd.Series(spare[has].to_numpy(dtype=object), index=np.flatnonzero(has))
    frame = _drop_empty_unnamed(frame)
    frame.attrs["fields"] = width
    skipped = int(body[-1] - header_pos - len(body)) if len(body) else 0  # blank rows between answers
    return frame, starts[body], enc, delim, overflow, skipped, len(records)


def _read_regular_csv(
    path: Path, enc: str, delim: str, skip: int, text_head: str, scan: "Future[tuple[str, int]]"
) -> tuple[pd.DataFrame, np.ndarray, int, int] | None:
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
    if len(lines_of_head) == skip + 1:
        # The header is longer than the sample (thousands of columns): read it whole.
        try:
            with open(path, encoding=enc, errors="replace", newline="") as fh:
                lines_of_head = [fh.readline().lstrip("\ufeff") for _ in range(skip + 1)]
        except (UnicodeError, LookupError):
            return None  # the careful reader names the problem
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
    else:
        n_newlines = scan.result()[1]  # counted while the file was hashed
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
    return frame, lines, skipped, table.num_rows - skipped


def _long_records(
    path: Path, enc: str, delim: str, width: int, cells: pd.DataFrame, extra: np.ndarray, nonempty: np.ndarray, lines: list[int], skip: int
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, dict[int, str]]:
    """Put back the records that pandas left out for having more than ``width + 1`` fields.

    ``lines`` are the lines (1-based) where they start. Each is split with
    :mod:`csv` on its own: its first ``width`` fields join ``cells`` in their
    place, and the rest, joined by the delimiter, is returned by record
    position as the text beyond the last column. Linear in the file's size,
    however many fields a row has.
    """
    import io as _io
    import sys

    data = path.read_bytes()
    if enc.startswith("utf-16"):
        data = data.decode(enc).encode("utf-8")  # the same lines, so the same line numbers
        enc = "utf-8"
    # Line starts as pandas counts lines: after a \n, and after a \r that no \n follows (old Mac line ends).
    byte = np.frombuffer(data, dtype=np.uint8)
    ends = byte == 10
    ends[:-1] |= (byte[:-1] == 13) & (byte[1:] != 10)
    if len(byte) and byte[-1] == 13:
        ends[-1] = True
    line_start = np.concatenate([[0], np.flatnonzero(ends) + 1])
    limit = csv.field_size_limit()
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    rows, spans, texts = [], [], []
    try:
        for line in lines:
            # The record's bytes: its first line, and more lines while a quote is left open.
            start, n = line_start[line - 1], 1
            while True:
                end = line_start[line - 1 + n] if line - 1 + n < len(line_start) else len(data)
                if data.count(b'"', start, end) % 2 == 0 or end == len(data):
                    break
                n *= 2
            reader = csv.reader(_io.StringIO(data[start:end].decode(enc, errors="replace"), newline=""), delimiter=delim)
            fields = next(reader, [])
            rows.append((fields[:width] + [""] * (width + 1))[: width + 1])
            spans.append(reader.line_num)
            texts.append(delim.join(fields[width:]))
    finally:
        csv.field_size_limit(limit)
    del data
    # Where each goes among the records pandas kept: before the first record that starts at or after its line.
    spans_a = np.asarray(spans, dtype=np.int64)
    before = np.concatenate([[0], np.cumsum(spans_a)[:-1]])  # lines of long records before each one
    partial = 1 + skip + np.concatenate([[0], np.cumsum(1 + extra)[:-1]]).astype(np.int64)
    at = np.searchsorted(partial, np.asarray(lines, dtype=np.int64) - before)
    position = np.arange(len(cells)) + np.searchsorted(at, np.arange(len(cells)), side="right")
    inserted = at + np.arange(len(at))
    order = np.argsort(np.concatenate([position, inserted]), kind="stable")
    added = pd.DataFrame(rows, columns=cells.columns, dtype=cells.dtypes.iloc[0] if len(cells.columns) else object)
    cells = pd.concat([cells, added], ignore_index=True).iloc[order].reset_index(drop=True)
    extra = np.concatenate([extra, spans_a - 1])[order]
    nonempty = np.concatenate([nonempty, np.ones(len(rows), dtype=bool)])[order]
    return cells, extra, nonempty, {int(p): t for p, t in zip(inserted, texts)}


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

# fastexcel (Rust calamine, returning Arrow arrays) reads the sheet. calamine's XML reader
# does not expand entities or fetch external ones, so a crafted workbook (billion laughs,
# XXE) is refused as unreadable, never expanded. header_row=None with skip_rows=0 makes the
# range start at sheet row 1 (fastexcel's default skips leading empty rows and takes the first
# row with values as column names), so record i is sheet row i + 1.
_SHEET_ROWS = {"header_row": None, "skip_rows": 0, "eager": True}


@dataclass(frozen=True)
class XlsxLimits:
    """How large a workbook may be before it is read (checked without inflating it into memory).

    The reader holds every cell of the used range (the rectangle from A1 to
    the last row and column that have a cell), so a single cell at XFD1048576
    would cost 512 GB: the range, the number of cells, and the bytes the
    zip inflates to are bounded first. ``cells`` bounds the range's area;
    a range much larger than the cells it holds (more than ``sparse`` times
    their number plus ten million) is refused too, as a stray cell far below
    or right of the answers makes it.
    """

    rows: int = 2_000_000
    columns: int = 2_000
    cells: int = 100_000_000
    inflated: int = 2 * 1024**3  # bytes
    sparse: int = 20

    @classmethod
    def parse(cls, text: str) -> "XlsxLimits":
        """``rows=N,columns=N,cells=N,inflated=SIZE`` (any of them; SIZE in bytes or with KB, MB, GB)."""
        values: dict[str, int] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            key, _, value = part.partition("=")
            key, value = key.strip().lower(), value.strip().upper().replace("_", "")
            scale = 1
            for unit, factor in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024), ("B", 1)):
                if key == "inflated" and value.endswith(unit):
                    value, scale = value[: -len(unit)].strip(), factor
                    break
            if key not in ("rows", "columns", "cells", "inflated") or not value.isdigit() or int(value) <= 0:
                raise UsageError(
                    f"XLSX limits must look like rows=2000000,columns=2000,cells=100000000,inflated=2GB "
                    f"(any of them, positive whole numbers); got {part!r}."
                )
            values[key] = int(value) * scale
        return cls(**values)


def _xlsx_parts(book: "zipfile.ZipFile", sheet: str | None) -> list[str]:
    """The worksheet part of ``sheet`` (the first sheet when None), from workbook.xml and its rels.

    Read with regular expressions (the two parts are small and nothing is
    expanded); when they cannot be followed, every worksheet part is returned.
    """
    import html

    every = [n for n in book.namelist() if re.match(r"^/?xl/worksheets/[^/]+\.xml$", n)]
    try:
        workbook = book.read("xl/workbook.xml")[: 1 << 24].decode("utf-8", "replace")
        rels = book.read("xl/_rels/workbook.xml.rels")[: 1 << 24].decode("utf-8", "replace")
    except (KeyError, OSError, zipfile.BadZipFile, ValueError, EOFError):
        return every
    targets = {}
    for tag in re.findall(r"<(?:\w+:)?Relationship\b[^>]*>", rels):
        rid, target = re.search(r'\bId="([^"]*)"', tag), re.search(r'\bTarget="([^"]*)"', tag)
        if rid and target:
            path = html.unescape(target.group(1))
            targets[rid.group(1)] = path.lstrip("/") if path.startswith("/") else "xl/" + path
    for tag in re.findall(r"<(?:\w+:)?sheet\b[^>]*>", workbook):
        name, rid = re.search(r'\bname="([^"]*)"', tag), re.search(r'\b\w+:id="([^"]*)"', tag)
        if name and rid and (sheet is None or html.unescape(name.group(1)) == sheet):
            part = targets.get(rid.group(1))
            return [part] if part in book.namelist() else every
    return every


_CARRY = 16  # bytes kept between blocks, so that a cell reference cut by a block edge is still read


def check_xlsx_bounds(path: str | Path, sheet: str | None = None, limits: XlsxLimits | None = None) -> None:
    """Refuse (SurveyError) a workbook whose sheet or inflated size is past ``limits``, before it is read.

    The zip's central directory must declare at most ``limits.inflated``
    bytes in all; then the shared strings and the sheet are inflated in
    blocks (never whole) and their true size is counted, so a directory that
    lies is caught too. In the sheet, every ``r="…"`` (of a row or a cell) is
    read with numpy to find the last row and column, and the cells are
    counted. Costs about one pass of zlib over the sheet.
    """
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    from .xlsx import column_letter

    limits = limits or XlsxLimits()
    name = str(path)
    hint = "Delete the empty rows and columns below and right of the answers in Excel (or copy the answers to a new workbook), or raise the limit with --xlsx-limits."
    try:
        book = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise SurveyError(Problem(name, f"is not a readable XLSX workbook ({exc}).", hint="Open and re-save it in Excel."))
    with book:
        declared = sum(info.file_size for info in book.infolist())
        hint_size = "A survey export this large is unusual: check the file, or raise the limit with --xlsx-limits inflated=SIZE."
        if declared > limits.inflated:
            raise SurveyError(Problem(name, f"inflates to {declared:,} bytes, more than the limit of {limits.inflated:,}.", hint=hint_size))
        budget = [limits.inflated]
        for part in [n for n in book.namelist() if n.lstrip("/") == "xl/sharedStrings.xml"]:
            for _ in _inflate(book, part, budget, name, hint_size):
                pass
        for part in _xlsx_parts(book, sheet):
            last_row, last_col, cells = 0, 0, 0
            # numpy and zlib release the GIL: blocks are scanned on two threads while the next is inflated.
            with ThreadPoolExecutor(max_workers=2) as pool:
                pending: deque = deque()
                for block, final in _with_carry(_inflate(book, part, budget, name, hint_size)):
                    pending.append(pool.submit(_scan_refs, block, final))
                    while len(pending) > 3 or (pending and pending[0].done()):
                        r, c, n = pending.popleft().result()
                        last_row, last_col, cells = max(last_row, r), max(last_col, c), cells + n
                for future in pending:
                    r, c, n = future.result()
                    last_row, last_col, cells = max(last_row, r), max(last_col, c), cells + n
            area = last_row * last_col
            corner = f" ({column_letter(last_col - 1)}{last_row})" if 0 < last_col <= 16_384 else ""
            where = f"its sheet's used range reaches row {last_row:,} and column {last_col:,}{corner}"
            if last_row > limits.rows or last_col > limits.columns:
                raise SurveyError(Problem(name, f"is too large to read: {where}; the limits are {limits.rows:,} rows and {limits.columns:,} columns.", hint=hint))
            if area > limits.cells:
                raise SurveyError(Problem(name, f"is too large to read: {where}, {area:,} cells; the limit is {limits.cells:,}.", hint=hint))
            if area > limits.sparse * cells + 10_000_000:
                raise SurveyError(
                    Problem(
                        name,
                        f"is too large to read: {where}, {area:,} cells, but only {cells:,} of them are written (a stray cell far from the answers?).",
                        hint="Delete the rows and columns below and right of the answers in Excel, or copy the answers to a new workbook.",
                    )
                )


def _inflate(book: "zipfile.ZipFile", part: str, budget: list[int], name: str, hint: str) -> "Iterator[bytes]":
    """The part's bytes in blocks of 4 MiB, refusing past the remaining budget of inflated bytes."""
    try:
        with book.open(part) as fh:
            while block := fh.read(1 << 22):
                budget[0] -= len(block)
                if budget[0] < 0:
                    raise SurveyError(Problem(name, "inflates to more bytes than its size limit allows.", hint=hint))
                yield block
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as exc:  # bad CRC, a size that lies, …
        raise SurveyError(Problem(name, f"is not a readable XLSX workbook ({exc}).", hint="Open and re-save it in Excel."))


def _with_carry(blocks: "Iterator[bytes]") -> "Iterator[tuple[bytes, bool]]":
    """Blocks that overlap by _CARRY bytes; each but the last is scanned only up to its last _CARRY bytes."""
    carry = b""
    pending = None
    for block in blocks:
        if pending is not None:
            yield pending, False
            carry = pending[-_CARRY:]
        pending = carry + block
    if pending is not None:
        yield pending, True


def _scan_refs(data: bytes, final: bool) -> tuple[int, int, int]:
    """(last row, last column, number of cells) in a block of sheet XML, vectorised.

    A reference is what follows ``␠r="``: letters (the column) and digits (the
    row) of a cell, or the digits of a row. Matches starting in the last
    _CARRY bytes of a block that is not the last are left for the next block.
    """
    end = len(data) if final else max(0, len(data) - _CARRY)
    buf = np.frombuffer(b"\0" * 8 + data + b"\0" * 16, dtype=np.uint8)
    quotes = np.flatnonzero(buf[8 : len(data) + 8] == 34) + 8  # every '"' is a candidate; few are a ' r="'
    opening = np.flatnonzero((quotes < end + 8) & (buf[quotes - 1] == 61) & (buf[quotes - 2] == 114) & (buf[quotes - 3] == 32))
    if len(opening) == 0:
        return 0, 0, 0
    at = quotes[opening] + 1
    cells = int(np.count_nonzero((buf[at - 5] == 99) & (buf[at - 6] == 60)))  # '<c r="': a cell, not a row
    # Each reference runs to the next quote: letters, then digits. Only the references with the
    # most letters can hold the last column (letters have no zero), and those with the most digits the last row.
    length = np.where(opening + 1 < len(quotes), quotes[np.minimum(opening + 1, len(quotes) - 1)] - at, 12)
    letters = np.zeros(len(at), dtype=np.int32)
    run = np.ones(len(at), dtype=bool)
    for k in range(4):
        run &= ((buf[at + k] & 0xDF) - 65) < 26  # uint8 arithmetic: below "A" wraps round; lower case counts
        letters += run
    digits = length - letters
    if letters.max() > 3 or digits.max() > 9:
        return np.iinfo(np.int32).max, np.iinfo(np.int32).max, cells  # past any limit (Excel stops at XFD1048576)
    most = int(letters.max())
    wide = at[letters == most]
    col = np.zeros(max(len(wide), 1), dtype=np.int64)
    for k in range(most):
        col[: len(wide)] = col[: len(wide)] * 26 + ((buf[wide + k] & 0xDF).astype(np.int64) - 64)
    # Rows by number of digits, most digits first: a leading zero ("A0001") makes more digits no larger.
    row = np.zeros(1, dtype=np.int64)
    counts = np.bincount(digits.clip(0), minlength=10)
    for n_digits in [d for d in range(len(counts) - 1, 0, -1) if counts[d]]:
        of = np.flatnonzero(digits == n_digits)
        first = at[of] + letters[of]
        value = np.zeros(len(of), dtype=np.int64)
        for k in range(n_digits):
            figure = buf[first + k].astype(np.int64) - 48
            if ((figure < 0) | (figure > 9)).any():
                return np.iinfo(np.int32).max, int(col.max()), cells  # not digits after all: past the limit
            value = value * 10 + figure
        row = np.append(row, value.max())
        if (buf[first] != 48).all():
            break  # no leading zero: fewer digits cannot be larger
    return int(row.max()), int(col.max()), cells


_BOOL_WORDS = ("true", "false")


def _read_xlsx(path: Path, sheet: str | None, limits: XlsxLimits | None = None) -> tuple[pd.DataFrame, np.ndarray, str, int, int]:
    import fastexcel
    import pyarrow as pa

    name = str(path)
    check_xlsx_bounds(path, sheet, limits)
    try:
        book = fastexcel.read_excel(name)
    except Exception as exc:  # fastexcel raises its own error types for corrupt files
        raise SurveyError(Problem(name, f"is not a readable XLSX workbook ({_first_line(exc)}).", hint="Open and re-save it in Excel."))
    sheets = list(book.sheet_names)
    if sheet is None:
        chosen = sheets[0]
    elif sheet in sheets:
        chosen = sheet
    else:
        raise SurveyError(
            Problem(name, f"has no sheet {sheet!r}.", hint="Sheets in this workbook: " + ", ".join(repr(s) for s in sheets) + ".")
        )
    try:
        # Every cell as text, in Rust: no Python object per cell. Empty cells are null; numbers
        # have no trailing zeros (4512.0 reads "4512", 2.5 "2.5") and at most nine decimals (see
        # _restore_digits); date-times read "2026-09-01 08:11:33"; booleans, see _restore_booleans.
        table = book.load_sheet(chosen, dtypes="string", **_SHEET_ROWS)
        columns = _restore_booleans(book, chosen, table.schema.names, list(table.columns))
        columns = _restore_digits(book, chosen, table.schema.names, columns)
    except fastexcel.FastExcelError as exc:
        raise SurveyError(Problem(name, f"is not a readable XLSX workbook ({_first_line(exc)}).", hint="Open and re-save it in Excel."))
    del table
    height = len(columns[0]) if columns else 0
    row_filled = np.zeros(height, dtype=bool)
    for j, column in enumerate(columns):
        columns[j], filled = _stripped_text(column)
        row_filled |= filled
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
        return pd.DataFrame(), np.zeros(0, dtype=np.int64), chosen, 0, 0
    start = int(nonempty[0])
    body = nonempty[1:]
    header = [column[start].as_py() for column in columns]
    if len(body) and body[-1] - body[0] + 1 == len(body):
        columns = [column.slice(int(body[0]), len(body)) for column in columns]  # no copy
    else:
        rows = pa.array(body)
        columns = [column.take(rows) for column in columns]
    # Arrow-backed text columns, like the CSV reader's.
    frame = pd.DataFrame({j: pd.arrays.ArrowExtensionArray(column) for j, column in enumerate(columns)})
    frame.columns = header
    frame = _drop_empty_unnamed(frame)
    lines = (body + 1).astype(np.int64)
    # Trailing empty rows are usually just formatting; count only those between answers.
    last = int(lines[-1]) if len(lines) else start + 1
    skipped = (last - (start + 1)) - len(lines)
    return frame, lines, chosen, skipped, len(nonempty)


def _restore_booleans(book: fastexcel.ExcelReader, sheet: str, names: list[str], columns: list[pa.Array]) -> list[pa.Array]:
    """Write Excel's TRUE and FALSE cells as "TRUE" and "FALSE".

    fastexcel writes them as "true" and "false", the same as text cells holding
    those words. Columns with such words are read once more as booleans, where
    a text cell is null and a TRUE/FALSE cell is not (nor is a number, but the
    text pass wrote numbers as digits). Only workbooks with such words pay for
    this second pass.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    words = pa.array(_BOOL_WORDS)
    suspects = [j for j, column in enumerate(columns) if pc.any(pc.is_in(column, value_set=words)).as_py()]
    if not suspects:
        return columns
    # By name: integer use_columns count from column A, the names from the sheet's first used column.
    typed = book.load_sheet(sheet, dtypes="boolean", use_columns=[names[j] for j in suspects], **_SHEET_ROWS)
    for k, j in enumerate(suspects):
        flags = typed.column(k)
        is_bool = pc.and_(pc.is_in(columns[j], value_set=words), pc.is_valid(flags))
        columns[j] = pc.if_else(is_bool, pc.if_else(flags, "TRUE", "FALSE"), columns[j])
    return columns


# fastexcel's form of a number cut to nine decimals: trailing zeros are dropped, so it never ends in 0.
_NINE_DECIMALS = r"^-?[0-9]+\.[0-9]{8}[1-9]$"


def _restore_digits(book: fastexcel.ExcelReader, sheet: str, names: list[str], columns: list[pa.Array]) -> list[pa.Array]:
    """Give numbers that fastexcel cut to nine decimals their digits back (2.3333333333333335, not 2.333333333).

    Only columns with a cell of exactly nine decimals are read once more as
    floats. A cell is written from the float in its shortest exact form only
    when its text is that float written with nine decimals: the float read
    parses text cells too, and a text cell typed ``01.123456789`` or
    ``1.100000000`` stays as typed. Floats that need an exponent (1e-09) keep
    the nine-decimal form. Survey numbers rarely have nine decimals, so this
    second pass is rare. A number whose cut form lost its trailing zeros
    cannot be told from a short one without reading every numeric column
    twice, and keeps the cut form: 4.9999999999 reads "5", 2.5000000001 reads
    "2.5", a number below 5e-10 reads "0" (tests/test_io.py pins this). A
    text cell of nine decimals and more than 15 significant digits is read
    as the nearest float, as a number cell of the same digits would be.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    suspects = [j for j, column in enumerate(columns) if pc.any(pc.match_substring_regex(column, _NINE_DECIMALS)).as_py()]
    if not suspects:
        return columns
    typed = book.load_sheet(sheet, dtypes="float", use_columns=[names[j] for j in suspects], **_SHEET_ROWS)
    for k, j in enumerate(suspects):
        column, floats = columns[j], typed.column(k)
        cut = pc.fill_null(pc.and_(pc.match_substring_regex(column, _NINE_DECIMALS), pc.is_valid(floats)), False)
        rows = pa.array(np.flatnonzero(cut.to_numpy(zero_copy_only=False)))
        # Per cut cell only (rare): the float must give back exactly this text with nine decimals.
        restored = [
            repr(v) if f"{v:.9f}" == t and "e" not in repr(v) else t
            for t, v in zip(column.take(rows).to_pylist(), floats.take(rows).to_pylist())
        ]
        columns[j] = pc.replace_with_mask(column, cut, pa.array(restored, type=column.type))
    return columns


def _stripped_text(column: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """The column with every text stripped and empty cells as "", and which of its cells are not empty."""
    import pyarrow.compute as pc

    # utf8_trim_whitespace removes the same characters as str.strip() (every code point checked
    # with pyarrow 26; a test in tests/test_io.py keeps an eye on it). coalesce is several times
    # faster than fill_null here.
    text = pc.coalesce(pc.utf8_trim_whitespace(column), "")
    return text, pc.greater(pc.binary_length(text), 0).to_numpy(zero_copy_only=False)


def _first_line(exc: BaseException) -> str:
    """fastexcel's messages add indented context lines (with the full path); the first line says what is wrong."""
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


# --------------------------------------------------------------------------- writing
