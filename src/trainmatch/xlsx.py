"""A small, fast XLSX writer for plain tables: formatted header, frozen pane, filter.

xlsxwriter spends a few microseconds of Python per cell, which is most of a
large run's write time. This module builds each worksheet's XML a column at a
time with pyarrow's string kernels instead: text is escaped once per
*distinct* value (a column has few), then every cell of a chunk of rows is
assembled by element-wise string joins and streamed into the zip. No Python
code runs per cell.

Only standard parts are written (ECMA-376): [Content_Types].xml, _rels/.rels,
docProps/core.xml and app.xml, xl/workbook.xml and its _rels, xl/styles.xml
and one xl/worksheets/sheetN.xml per sheet. Text is written as inline strings
(t="inlineStr"), never as formulas; numbers as numbers; booleans as booleans;
missing values (NaN, NA, None, ±inf, "") as no cell at all. The same input
gives the same bytes: the timestamps (core properties and zip entries) come
from the caller.
"""

from __future__ import annotations

import re
import zipfile
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import IO, Callable, Iterator, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

MAX_ROWS = 1_048_576  # Excel's rows per sheet, the header included
MAX_NAME = 31  # Excel's characters per sheet name
MAX_CHARS = 32_767  # Excel's characters (UTF-16 code units) per cell
# Deflate level 1: deflating is the larger half of writing a workbook, and level 1 is several times
# faster than the default 6 for a file somewhat larger (figures in benchmarks/README.md).
COMPRESSLEVEL = 1
CHUNK_CELLS = 1 << 18  # cells per batch of rows: ~10 MB of XML, joined in one go and then deflated

HEADER_STYLE = 1  # index into cellXfs in styles.xml: bold, #DDE6F0 fill, thin border
_BAD_NAME = re.compile(r"[\[\]:*?/\\\x00-\x1f]")
# Characters XML 1.0 cannot carry, written as Excel's _xHHHH_ escape (ECMA-376 Part 1, 22.9.2.19 ST_Xstring);
# tab and newline are legal and stay. Lone surrogates only get here through the slow path (see _escape_slow).
_CONTROL = "[\x00-\x08\x0b-\x1f\ufffe\uffff\ud800-\udfff]"
_CONTROL_RE2 = r"[\x00-\x08\x0b-\x1f\x{FFFE}\x{FFFF}]"  # the same set in RE2 syntax, for pyarrow
# Text a reader could decode as an escape: its "_" is written as _x005F_. Any "_xHHHH" counts, not only
# "_xHHHH_": after it may come a control character, whose own escape starts with "_"; an "_" escaped
# needlessly still reads back as "_".
_LITERAL_ESCAPE = r"_(x[0-9A-Fa-f]{4})"
_ENTITIES = (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&quot;"))  # "&" first

_NS_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_NS_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_NS_PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
_XML_DECL = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'


# --------------------------------------------------------------------------- public entry


def write_xlsx(
    path: str,
    sheets: Sequence[tuple[str, pd.DataFrame]],
    *,
    created: datetime,
    on_sheet: Callable[[str], None] | None = None,
) -> None:
    """Write each (name, frame) as a worksheet with a formatted, frozen, filtered header row.

    Frames must already fit on one sheet (at most MAX_ROWS - 1 rows) and have
    valid, distinct sheet names; splitting long tables is the caller's job.
    Column headers are written as text. ``created`` stamps the document
    properties and every zip entry, so equal input gives equal bytes.
    """
    names = [name for name, _ in sheets]
    _check_names(names)
    shapes = [(len(frame), frame.shape[1]) for _, frame in sheets]
    for name, (rows, _) in zip(names, shapes):
        if rows > MAX_ROWS - 1:
            raise ValueError(f"sheet {name!r} has {rows:,} rows; at most {MAX_ROWS - 1:,} fit under the header")
    stamp = (max(created.year, 1980), created.month, created.day, created.hour, created.minute, created.second)

    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as book:
        parts = [
            ("[Content_Types].xml", _content_types(len(sheets))),
            ("_rels/.rels", _ROOT_RELS),
            ("docProps/app.xml", _app_xml(names)),
            ("docProps/core.xml", _core_xml(created)),
            ("xl/workbook.xml", _workbook_xml(names, shapes)),
            ("xl/_rels/workbook.xml.rels", _workbook_rels(len(sheets))),
            ("xl/styles.xml", _STYLES),
        ]
        for name, text in parts:
            with book.open(_entry(name, stamp), "w") as out:
                out.write(text.encode("utf-8"))
        for i, (name, frame) in enumerate(sheets, start=1):
            if on_sheet is not None:
                on_sheet(name)
            sheet = _Sheet(frame, selected=i == 1)
            # A worksheet over 2 GiB needs zip64 records, which zipfile must be told about before
            # writing; its size is known only afterwards, so an upper bound decides.
            big = sheet.size_bound() > zipfile.ZIP64_LIMIT
            with book.open(_entry(f"xl/worksheets/sheet{i}.xml", stamp), "w", force_zip64=big) as out:
                _stream(sheet.xml(), out)


def column_letter(index: int) -> str:
    """Excel's column name for a 0-based index: 0 → A, 25 → Z, 26 → AA."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def excel_width(chars: float) -> float:
    """A column width in characters as stored in <col width>: ECMA-376 Part 1, 18.3.1.13.

    Truncate((chars × 7 px + 5 px padding) / 7 px × 256) / 256, for Calibri 11's
    7-pixel digit; Excel then shows the width as ``chars``.
    """
    return int((chars * 7 + 5) / 7 * 256) / 256


# --------------------------------------------------------------------------- zip plumbing


def _entry(name: str, stamp: tuple[int, ...]) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=stamp)
    info.compress_type = zipfile.ZIP_DEFLATED
    # ZipFile.open(ZipInfo) takes the level from the entry, not the archive; the attribute is
    # `compress_level` since Python 3.13 and `_compresslevel` before.
    setattr(info, "compress_level" if hasattr(info, "compress_level") else "_compresslevel", COMPRESSLEVEL)
    info.create_system = 0  # not the writer's OS, so the bytes do not depend on where they were made
    return info


def _stream(pieces: Iterator[bytes | memoryview], out: IO[bytes]) -> None:
    """Write the pieces, preparing the next one in a thread while this one is compressed.

    pyarrow's kernels and zlib both release the GIL, so on two cores the XML
    assembly and the deflate overlap instead of taking turns.
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(next, pieces, None)
        while (piece := pending.result()) is not None:
            pending = pool.submit(next, pieces, None)
            out.write(piece)


# --------------------------------------------------------------------------- worksheet XML


class _Sheet:
    """One worksheet: its columns encoded up front, its XML produced in chunks of rows."""

    def __init__(self, frame: pd.DataFrame, *, selected: bool):
        self.n_rows, self.n_cols = frame.shape
        self.headers = [str(c) for c in frame.columns]
        self.selected = selected
        self.columns = [_Column(frame.iloc[:, j]) for j in range(self.n_cols)] if self.n_rows else []

    def size_bound(self) -> int:
        """At least the worksheet's XML bytes."""
        cell = len('<c r="XFD1048576')
        per_row = len('<row r="1048576"></row>') + sum(cell + c.widest() for c in self.columns)
        return 2**16 + 200 * self.n_cols + self.n_rows * per_row

    def xml(self) -> Iterator[bytes | memoryview]:
        last = column_letter(max(self.n_cols - 1, 0))
        dimension = "A1" if self.n_cols == 0 else f"A1:{last}{self.n_rows + 1}"
        # The filter covers the header and at least one row below it, as Excel makes it on an empty table.
        filter_ref = f"A1:{last}{max(self.n_rows, 1) + 1}"
        tab = ' tabSelected="1"' if self.selected else ""
        cols = "".join(
            f'<col min="{j}" max="{j}" width="{excel_width(min(max(len(h) + 2, 10), 48))!r}" customWidth="1"/>'
            for j, h in enumerate(self.headers, start=1)
        )
        # Cell tails start by closing the r="…" attribute, so the style attribute goes in front of them.
        header = "".join(f'<c r="{column_letter(j)}1" s="{HEADER_STYLE}{_header_tail(h)}' for j, h in enumerate(self.headers))
        yield (
            f'{_XML_DECL}<worksheet xmlns="{_NS_MAIN}" xmlns:r="{_NS_REL}"><dimension ref="{dimension}"/>'
            f'<sheetViews><sheetView{tab} workbookViewId="0">'
            '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>'
            '<selection pane="bottomLeft"/></sheetView></sheetViews>'
            '<sheetFormatPr defaultRowHeight="15"/>'
            + (f"<cols>{cols}</cols>" if cols else "")
            + f'<sheetData><row r="1">{header}</row>'
        ).encode("utf-8")
        if self.columns:
            prefixes = [pa.scalar(f'<c r="{column_letter(j)}') for j in range(self.n_cols)]
            step = max(1, CHUNK_CELLS // self.n_cols)
            for lo in range(0, self.n_rows, step):
                yield _rows_xml(self.columns, prefixes, lo, min(lo + step, self.n_rows))
        yield (
            f'</sheetData><autoFilter ref="{filter_ref}"/>'
            '<pageMargins left="0.7" right="0.7" top="0.75" bottom="0.75" header="0.3" footer="0.3"/>'
            "</worksheet>"
        ).encode("utf-8")


def _rows_xml(columns: list[_Column], prefixes: list[pa.Scalar], lo: int, hi: int) -> memoryview:
    """The <row> elements of data rows lo..hi-1 (sheet rows lo+2..hi+1) as one UTF-8 buffer."""
    numbers = pa.array(np.arange(lo + 2, hi + 2, dtype=np.int64)).cast(pa.string())
    parts: list[pa.Array | pa.Scalar | str] = ['<row r="', numbers, '">']
    for prefix, column in zip(prefixes, columns):
        # A cell is '<c r="B' + '17' + tail, the tail being e.g. '" t="b"><v>1</v></c>'.
        tails = column.tails(lo, hi)
        if tails.null_count == 0:
            parts += [prefix, numbers, tails]  # joined once, with the whole row
        else:
            # An empty value has a null tail and gets no cell at all, not even its '<c r="B17'.
            cell = pc.binary_join_element_wise(prefix, numbers, tails, "", null_handling="emit_null")
            parts.append(pc.fill_null(cell, ""))
    rows = pc.binary_join_element_wise(*parts, "</row>", "")
    # With no nulls and a separator of "", the value buffer is exactly the rows one after another.
    offsets = np.frombuffer(rows.buffers()[1], dtype=np.int32, count=len(rows) + 1, offset=rows.offset * 4)
    return memoryview(rows.buffers()[2])[offsets[0] : offsets[-1]]


# --------------------------------------------------------------------------- cells


class _Column:
    """One column's cell tails: everything of ``<c r="A2" … </c>`` after the row number.

    Text (and anything that is not a number or a boolean) is factorised; its
    distinct values are escaped once and looked up by code. Numbers are
    formatted per chunk (pyarrow writes the shortest text that reads back as
    the same double).
    """

    NUMBER_WIDTH = 40  # bytes of the longest number tail: '"><v>-1.7976931348623157e+308</v></c>'

    def __init__(self, s: pd.Series):
        self.lookup: pa.Array | None = None  # tails of the distinct values
        self.codes: np.ndarray | None = None  # per row: index into lookup, -1 for an empty cell
        self.values: pa.Array | None = None  # numbers or booleans, formatted per chunk
        if isinstance(s.dtype, pd.CategoricalDtype):
            cats = s.cat.categories
            if pd.api.types.is_bool_dtype(cats.dtype) or pd.api.types.is_numeric_dtype(cats.dtype):
                self.lookup = _value_tails(pa.array(np.asarray(cats)))
            else:
                self.lookup = _text_tails(cats)
            self.codes = np.asarray(s.cat.codes)  # int8 or int16 mostly: kept small
        elif pd.api.types.is_bool_dtype(s.dtype) or (pd.api.types.is_numeric_dtype(s.dtype) and s.dtype.kind != "c"):
            data = s.array if isinstance(s.dtype, pd.api.extensions.ExtensionDtype) else s.to_numpy()
            self.values = _flat(pa.array(data, from_pandas=True))
        else:
            # Text, and plain text for anything else (dates, periods, mixed objects).
            codes, uniques = pd.factorize(s, use_na_sentinel=True)
            self.lookup = _text_tails(uniques)
            self.codes = codes

    def tails(self, lo: int, hi: int) -> pa.Array:
        if self.codes is not None:
            codes = self.codes[lo:hi]
            return self.lookup.take(pa.array(codes, mask=codes < 0))
        return _value_tails(self.values.slice(lo, hi - lo))

    def widest(self) -> int:
        if self.lookup is None:
            return self.NUMBER_WIDTH
        return int(pc.max(pc.binary_length(self.lookup)).as_py() or 0)


def _flat(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """One contiguous array: pandas' Arrow-backed columns (the default "str" dtype) come in chunks."""
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


_BOOL_TAILS = pa.array(['" t="b"><v>0</v></c>', '" t="b"><v>1</v></c>'])


def _value_tails(values: pa.Array) -> pa.Array:
    """Tails for numbers or booleans; null, NaN and ±inf (which XLSX cannot hold) give null (no cell)."""
    if pa.types.is_boolean(values.type):
        return _BOOL_TAILS.take(pc.cast(values, pa.int8()))
    if pa.types.is_null(values.type):
        return pa.nulls(len(values), pa.string())
    if pa.types.is_floating(values.type):
        values = pc.cast(values, pa.float64())  # a float32 keeps its exact value, as Python's float() would
        values = pc.if_else(pc.is_finite(values), values, pa.scalar(None, pa.float64()))
    return pc.binary_join_element_wise('"><v>', pc.cast(values, pa.string()), "</v></c>", "", null_handling="emit_null")


def _text_tails(texts: Sequence[object] | pd.Index | pd.api.extensions.ExtensionArray) -> pa.Array:
    """Inline-string tails for distinct texts; "" gives null (no cell)."""
    try:
        values = _escape(_flat(pa.array(texts, type=pa.string(), from_pandas=True)))
    except (pa.ArrowException, UnicodeError):
        # Not all str (dates, mixed objects), or lone surrogates that UTF-8 cannot carry: do these
        # few distinct values in Python.
        values = pa.array([_escape_slow(v if isinstance(v, str) else str(v)) for v in texts], type=pa.string())
    # Leading or trailing whitespace needs xml:space="preserve", or readers may trim it.
    spaced = pc.match_substring_regex(values, r"^[\s\p{Z}\x{85}]|[\s\p{Z}\x{85}]$")
    opening = pc.if_else(spaced, '" t="inlineStr"><is><t xml:space="preserve">', '" t="inlineStr"><is><t>')
    tails = pc.binary_join_element_wise(opening, values, "</t></is></c>", "")
    return pc.if_else(pc.equal(pc.binary_length(values), 0), pa.scalar(None, pa.string()), tails)


def _header_tail(text: str) -> str:
    """The tail for a header cell; an empty header is a formatted empty cell."""
    return _text_tails([text])[0].as_py() or '"/>'


def _escape(values: pa.Array) -> pa.Array:
    """XML-escape texts and apply Excel's _xHHHH_ escapes; cut at Excel's cell limit first."""
    long = pc.greater(pc.utf8_length(values), MAX_CHARS // 2)
    if pc.any(long).as_py():
        # Only texts over half the limit can exceed it in UTF-16 code units: cut those in Python.
        cut = [_cut(t) if is_long else t for t, is_long in zip(values.to_pylist(), long.to_pylist())]
        values = pa.array(cut, type=pa.string())
    for char, entity in _ENTITIES:
        values = pc.replace_substring(values, char, entity)
    # Literal "_x0041_" must stay literal (done before the control characters, whose escapes would
    # otherwise be escaped again).
    values = pc.replace_substring_regex(values, _LITERAL_ESCAPE, r"_x005F_\1")
    bad = pc.match_substring_regex(values, _CONTROL_RE2)
    if pc.any(bad).as_py():
        fixed = [_escape_controls(t) if is_bad else t for t, is_bad in zip(values.to_pylist(), bad.to_pylist())]
        values = pa.array(fixed, type=pa.string())
    return values


def _escape_slow(text: str) -> str:
    """The same as _escape, for one text that pyarrow cannot take (it has lone surrogates)."""
    text = _cut(text)
    return _escape_controls(re.sub(_LITERAL_ESCAPE, r"_x005F_\1", _attr(text)))


def _escape_controls(text: str) -> str:
    return re.sub(_CONTROL, lambda m: f"_x{ord(m.group()):04X}_", text)


def _cut(text: str) -> str:
    """Cut a text to Excel's MAX_CHARS UTF-16 code units, never inside a surrogate pair."""
    units = text.encode("utf-16-le", "surrogatepass")
    if len(units) <= 2 * MAX_CHARS:
        return text
    units = units[: 2 * MAX_CHARS]
    if 0xD800 <= int.from_bytes(units[-2:], "little") <= 0xDBFF:
        units = units[:-2]  # a high surrogate whose pair was cut off
    return units.decode("utf-16-le", "surrogatepass")


# --------------------------------------------------------------------------- package parts


def _check_names(names: Sequence[str]) -> None:
    """Refuse sheet names that Excel would reject or repair."""
    seen: set[str] = set()
    for name in names:
        if not name or len(name.encode("utf-16-le", "surrogatepass")) > 2 * MAX_NAME:  # Excel counts UTF-16 units
            raise ValueError(f"sheet name {name!r} must have 1 to {MAX_NAME} characters")
        if _BAD_NAME.search(name) or name.startswith("'") or name.endswith("'"):
            raise ValueError(f"sheet name {name!r} cannot contain [ ] : * ? / \\ or control characters, nor start or end with '")
        if name.casefold() in seen:
            raise ValueError(f"sheet name {name!r} is used twice (Excel ignores case)")
        seen.add(name.casefold())


def _attr(text: str) -> str:
    """XML-escape a text (for attributes and element text alike)."""
    for char, entity in _ENTITIES:
        text = text.replace(char, entity)
    return text


def _content_types(n_sheets: int) -> str:
    part = "application/vnd.openxmlformats-officedocument"
    sheets = "".join(
        f'<Override PartName="/xl/worksheets/sheet{i}.xml" ContentType="{part}.spreadsheetml.worksheet+xml"/>'
        for i in range(1, n_sheets + 1)
    )
    return (
        f'{_XML_DECL}<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        f'<Override PartName="/docProps/app.xml" ContentType="{part}.extended-properties+xml"/>'
        '<Override PartName="/docProps/core.xml" ContentType="application/vnd.openxmlformats-package.core-properties+xml"/>'
        f'<Override PartName="/xl/styles.xml" ContentType="{part}.spreadsheetml.styles+xml"/>'
        f'<Override PartName="/xl/workbook.xml" ContentType="{part}.spreadsheetml.sheet.main+xml"/>'
        f"{sheets}</Types>"
    )


_ROOT_RELS = (
    f'{_XML_DECL}<Relationships xmlns="{_NS_PKG_REL}">'
    f'<Relationship Id="rId1" Type="{_NS_REL}/officeDocument" Target="xl/workbook.xml"/>'
    f'<Relationship Id="rId2" Type="{_NS_PKG_REL}/metadata/core-properties" Target="docProps/core.xml"/>'
    f'<Relationship Id="rId3" Type="{_NS_REL}/extended-properties" Target="docProps/app.xml"/>'
    "</Relationships>"
)


def _app_xml(names: Sequence[str]) -> str:
    titles = "".join(f"<vt:lpstr>{_attr(n)}</vt:lpstr>" for n in names)
    return (
        f'{_XML_DECL}<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/extended-properties" '
        'xmlns:vt="http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes">'
        "<Application>Microsoft Excel</Application><DocSecurity>0</DocSecurity><ScaleCrop>false</ScaleCrop>"
        '<HeadingPairs><vt:vector size="2" baseType="variant"><vt:variant><vt:lpstr>Worksheets</vt:lpstr></vt:variant>'
        f"<vt:variant><vt:i4>{len(names)}</vt:i4></vt:variant></vt:vector></HeadingPairs>"
        f'<TitlesOfParts><vt:vector size="{len(names)}" baseType="lpstr">{titles}</vt:vector></TitlesOfParts>'
        "<LinksUpToDate>false</LinksUpToDate><SharedDoc>false</SharedDoc>"
        "<HyperlinksChanged>false</HyperlinksChanged><AppVersion>12.0000</AppVersion></Properties>"
    )


def _core_xml(created: datetime) -> str:
    when = created.strftime("%Y-%m-%dT%H:%M:%SZ")
    return (
        f'{_XML_DECL}<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/" '
        'xmlns:dcmitype="http://purl.org/dc/dcmitype/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        f'<dcterms:created xsi:type="dcterms:W3CDTF">{when}</dcterms:created>'
        f'<dcterms:modified xsi:type="dcterms:W3CDTF">{when}</dcterms:modified></cp:coreProperties>'
    )


def _workbook_xml(names: Sequence[str], shapes: Sequence[tuple[int, int]]) -> str:
    sheets = "".join(f'<sheet name="{_attr(n)}" sheetId="{i}" r:id="rId{i}"/>' for i, n in enumerate(names, start=1))
    # Excel keeps an autofilter's range in this hidden name as well as in the sheet; without it
    # Excel shows the filter buttons but loses the filter when the file is saved again.
    # The sheet name is always quoted ('it''s'!$A$1:$B$2), which is valid for any name; the names
    # are listed by sheet name, as Excel orders them.
    filters = "".join(
        '<definedName name="_xlnm._FilterDatabase" localSheetId="{}" hidden="1">{}</definedName>'.format(
            i, _attr("'" + n.replace("'", "''") + "'!" + f"$A$1:${column_letter(max(cols - 1, 0))}${max(rows, 1) + 1}")
        )
        for i, n, (rows, cols) in sorted(zip(range(len(names)), names, shapes), key=lambda item: item[1].casefold())
    )
    return (
        f'{_XML_DECL}<workbook xmlns="{_NS_MAIN}" xmlns:r="{_NS_REL}">'
        '<bookViews><workbookView xWindow="240" yWindow="15" windowWidth="16095" windowHeight="9660"/></bookViews>'
        f"<sheets>{sheets}</sheets><definedNames>{filters}</definedNames></workbook>"
    )


def _workbook_rels(n_sheets: int) -> str:
    rels = "".join(
        f'<Relationship Id="rId{i}" Type="{_NS_REL}/worksheet" Target="worksheets/sheet{i}.xml"/>' for i in range(1, n_sheets + 1)
    )
    return (
        f'{_XML_DECL}<Relationships xmlns="{_NS_PKG_REL}">{rels}'
        f'<Relationship Id="rId{n_sheets + 1}" Type="{_NS_REL}/styles" Target="styles.xml"/></Relationships>'
    )


# Two cell formats: 0 the default, 1 (HEADER_STYLE) bold on a #DDE6F0 fill with a thin border.
# The first two fills (none, gray125) are reserved by Excel and must be there.
_STYLES = (
    f'{_XML_DECL}<styleSheet xmlns="{_NS_MAIN}">'
    '<fonts count="2"><font><sz val="11"/><color rgb="FF000000"/><name val="Calibri"/><family val="2"/></font>'
    '<font><b/><sz val="11"/><color rgb="FF000000"/><name val="Calibri"/><family val="2"/></font></fonts>'
    '<fills count="3"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill>'
    '<fill><patternFill patternType="solid"><fgColor rgb="FFDDE6F0"/><bgColor indexed="64"/></patternFill></fill></fills>'
    '<borders count="2"><border><left/><right/><top/><bottom/><diagonal/></border>'
    '<border><left style="thin"><color auto="1"/></left><right style="thin"><color auto="1"/></right>'
    '<top style="thin"><color auto="1"/></top><bottom style="thin"><color auto="1"/></bottom><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="2"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="0" fontId="1" fillId="2" borderId="1" xfId="0" applyFont="1" applyFill="1" applyBorder="1"/></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    '<dxfs count="0"/><tableStyles count="0" defaultTableStyle="TableStyleMedium9" defaultPivotStyle="PivotStyleLight16"/>'
    "</styleSheet>"
)
