"""plans.xlsx as a user sees it: values, types, header format, frozen pane, filter, splits, same bytes."""

from __future__ import annotations

import math
import re
import zipfile
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import trainmatch.outputs
import trainmatch.xlsx
from trainmatch import xlsx
from trainmatch.columns import FORMULA_PATTERN
from trainmatch.outputs import WORKBOOK_CREATED, write_workbook

NS = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
NASTY = [
    "a\x01b\x1fc",  # control characters: illegal in XML, escaped as _x0001_
    "_x0041_ stays literal",  # looks like an escape: must not decode to "A"
    "_x0041\x01",  # … and before a control character, whose escape begins with "_"
    "_x0041_x0042_",  # two that share an underscore
    "cr\rinside",
    "tab\tand\nnewline",
    "  leading and trailing  ",
    "\u00a0nbsp\u00a0",
    "<b>&amp; \"quoted\" 'single'</b>",
    "<r>not rich text</r>",
    "]]> and <![CDATA[x]]>",
    "Ääkköset ja emoji 🎉",
    "\x00nul",
]


def calamine(path: Path) -> dict[str, list[list[object]]]:
    from python_calamine import CalamineWorkbook

    book = CalamineWorkbook.from_path(str(path))
    return {name: book.get_sheet_by_name(name).to_python() for name in book.sheet_names}


def part(path: Path, name: str) -> ET.Element:
    with zipfile.ZipFile(path) as z:
        return ET.fromstring(z.read(name))  # also proves every part is well-formed XML


def sheet_parts(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as z:
        return sorted((n for n in z.namelist() if n.startswith("xl/worksheets/")), key=lambda n: int(re.findall(r"\d+", n)[0]))


@pytest.fixture
def mixed() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "person_id": ["000001", "000002", "000003", "000004"],
            "hours": [1.5, float("nan"), 0.30000000000000004, -2.0],
            "step": np.array([1, 2, 3, 30000], dtype=np.int16),
            "gap": pd.array([1, None, -2, 0], dtype="Int8"),
            "planned": [True, False, True, False],
            "level": pd.Categorical(["basic", None, "advanced", "basic"]),
            "size": pd.Categorical([3, 5, None, 3]),
            "note": ["x", "", None, "y"],
        }
    )


def test_values_and_types_read_back(tmp_path: Path, mixed: pd.DataFrame) -> None:
    path = tmp_path / "m.xlsx"
    assert write_workbook({"people": mixed}, path) == ["people"]
    header, *rows = calamine(path)["people"]
    assert header == list(mixed.columns)
    assert rows == [
        ["000001", 1.5, 1.0, 1.0, True, "basic", 3.0, "x"],
        ["000002", "", 2.0, "", False, "", 5.0, ""],
        ["000003", 0.30000000000000004, 3.0, -2.0, True, "advanced", "", ""],
        ["000004", -2.0, 30000.0, 0.0, False, "basic", 3.0, "y"],
    ]
    # Empty values are no cell at all, not an empty string.
    sheet = part(path, "xl/worksheets/sheet1.xml")
    refs = [c.get("r") for c in sheet.iterfind(".//m:sheetData/m:row/m:c", NS)]
    every = {f"{col}{row}" for col in "ABCDEFGH" for row in range(1, 6)}
    assert every - set(refs) == {"B3", "D3", "F3", "H3", "G4", "H4"} and len(refs) == len(set(refs))


def test_arrow_backed_columns_in_several_chunks(tmp_path: Path) -> None:
    # pandas' default "str" dtype keeps pyarrow chunks, e.g. after a concat; so can categories and numbers.
    import pyarrow as pa

    def chunked(values: list[object], type_: pa.DataType) -> pd.Series:
        return pd.Series(pd.arrays.ArrowExtensionArray(pa.chunked_array([values[:2], values[2:]], type=type_)))

    text = pd.concat([pd.Series(["a", "=b"], dtype="str"), pd.Series([None, "c"], dtype="str")], ignore_index=True)
    frame = pd.DataFrame(
        {
            "text": text,
            "cat": pd.Series(pd.Categorical(["x", "y", "x", None], categories=text.dropna().drop_duplicates().tolist() + ["x", "y"])),
            "int": chunked([1, None, 3, 4], pa.int64()),
            "float": chunked([0.5, 1.5, None, 2.5], pa.float64()),
            "bool": chunked([True, None, False, True], pa.bool_()),
        }
    )
    path = tmp_path / "arrow.xlsx"
    write_workbook({"a": frame}, path)
    assert calamine(path)["a"][1:] == [
        ["a", "x", 1.0, 0.5, True],
        ["'=b", "y", "", 1.5, ""],
        ["", "x", 3.0, "", False],
        ["c", "", 4.0, 2.5, True],
    ]


def test_numbers_keep_their_exact_value_and_inf_is_empty(tmp_path: Path) -> None:
    values = [0.1, 1e-300, 1.7976931348623157e308, 123456789.123456789, float("inf"), -float("inf"), 2.0**53, -0.5]
    path = tmp_path / "n.xlsx"
    write_workbook({"n": pd.DataFrame({"x": values, "f32": np.full(len(values), 0.1, dtype=np.float32)})}, path)
    rows = calamine(path)["n"][1:]
    assert [r[0] for r in rows] == [v if math.isfinite(v) else "" for v in values]
    # A float32 is written as the double it equals, as xlsxwriter did.
    assert rows[0][1] == float(np.float32(0.1))


def test_header_is_bold_filled_bordered_frozen_and_filtered(tmp_path: Path, mixed: pd.DataFrame) -> None:
    path = tmp_path / "h.xlsx"
    write_workbook({"people": mixed, "empty": mixed.iloc[:0]}, path)
    sheet = part(path, "xl/worksheets/sheet1.xml")
    pane = sheet.find(".//m:sheetView/m:pane", NS)
    assert (pane.get("ySplit"), pane.get("topLeftCell"), pane.get("state")) == ("1", "A2", "frozen")
    assert sheet.find("m:autoFilter", NS).get("ref") == "A1:H5"
    assert part(path, "xl/worksheets/sheet2.xml").find("m:autoFilter", NS).get("ref") == "A1:H2"  # header-only table
    widths = [float(c.get("width")) for c in sheet.iterfind(".//m:cols/m:col", NS)]
    assert widths == [xlsx.excel_width(min(max(len(c) + 2, 10), 48)) for c in mixed.columns]
    header_styles = {c.get("s") for c in sheet.find(".//m:sheetData/m:row", NS)}
    body_styles = {c.get("s") for row in list(sheet.find(".//m:sheetData", NS))[1:] for c in row}
    assert header_styles == {"1"} and body_styles == {None}
    styles = part(path, "xl/styles.xml")
    xf = styles.findall(".//m:cellXfs/m:xf", NS)[1]
    assert styles.findall(".//m:fonts/m:font", NS)[int(xf.get("fontId"))].find("m:b", NS) is not None
    fill = styles.findall(".//m:fills/m:fill", NS)[int(xf.get("fillId"))]
    assert fill.find(".//m:fgColor", NS).get("rgb") == "FFDDE6F0"
    border = styles.findall(".//m:borders/m:border", NS)[int(xf.get("borderId"))]
    assert {border.find(f"m:{side}", NS).get("style") for side in ("left", "right", "top", "bottom")} == {"thin"}
    # Excel needs the filter's range as a hidden defined name too.
    names = part(path, "xl/workbook.xml").findall(".//m:definedNames/m:definedName", NS)
    assert {(n.get("name"), n.get("localSheetId"), n.get("hidden"), n.text) for n in names} == {
        ("_xlnm._FilterDatabase", "0", "1", "'people'!$A$1:$H$5"),
        ("_xlnm._FilterDatabase", "1", "1", "'empty'!$A$1:$H$2"),
    }


def test_openpyxl_sees_the_format_and_the_values(tmp_path: Path, mixed: pd.DataFrame) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    path = tmp_path / "o.xlsx"
    write_workbook({"people": mixed}, path)
    ws = openpyxl.load_workbook(path)["people"]
    assert ws.freeze_panes == "A2" and ws.auto_filter.ref == "A1:H5"
    head = ws["A1"]
    assert head.font.b and head.fill.fgColor.rgb == "FFDDE6F0" and head.border.bottom.style == "thin"
    assert not ws["A2"].font.b
    assert ws.column_dimensions["A"].width == xlsx.excel_width(11)
    assert [c.value for c in ws[2]] == ["000001", 1.5, 1, 1, True, "basic", 3, "x"]
    assert [c.value for c in ws[3]] == ["000002", None, 2, None, False, None, 5, None]


def test_text_that_looks_like_a_formula_is_text(tmp_path: Path) -> None:
    evil = ["=HYPERLINK(\"http://evil\")", "+358401234567", "-2+3", "@SUM(A1)", "\t=1", "\r=1", "ok"]
    path = tmp_path / "f.xlsx"
    write_workbook({"t": pd.DataFrame({"a": evil, "b": pd.Categorical(evil)})}, path)
    rows = calamine(path)["t"][1:]
    expected = ["'" + v if v[0] in "=+-@\t\r" else v for v in evil]
    assert [r[0] for r in rows] == expected and [r[1] for r in rows] == expected
    with zipfile.ZipFile(path) as z:
        xml = z.read("xl/worksheets/sheet1.xml").decode("utf-8")
    assert "<f>" not in xml and xml.count('t="inlineStr"') == 2 + 2 * len(evil)


def test_nasty_text_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "x.xlsx"
    long_text = "é" * 40_000
    frame = pd.DataFrame({"text": NASTY + [long_text], "cat": pd.Categorical(NASTY + [long_text])})
    write_workbook({"nasty": frame}, path)
    for name in sheet_parts(path):
        part(path, name)  # well-formed: no raw control characters, everything escaped
    rows = calamine(path)["nasty"][1:]
    want = NASTY + ["é" * xlsx.MAX_CHARS]  # Excel's cell limit: cut, as xlsxwriter did
    assert [r[0] for r in rows] == want and [r[1] for r in rows] == want


def test_nasty_text_round_trips_through_openpyxl(tmp_path: Path) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    from openpyxl.utils.escape import unescape

    path = tmp_path / "x.xlsx"
    texts = NASTY + ["\ufffe\uffff non-characters"]
    write_workbook({"nasty": pd.DataFrame({"text": texts})}, path)
    got = [c.value for c in openpyxl.load_workbook(path)["nasty"]["A"][1:]]
    # openpyxl leaves Excel's _xHHHH_ escapes in the text; its own unescape gives the original back.
    assert [unescape(v) for v in got] == texts


def test_text_pyarrow_cannot_take_is_written_in_python(tmp_path: Path) -> None:
    # A lone surrogate cannot be UTF-8, and a timestamp in a text column is not a str.
    path = tmp_path / "s.xlsx"
    column = pd.Series(["ok", "bad \ud800 half", pd.Timestamp("2026-01-02")], dtype=object)
    xlsx.write_xlsx(str(path), [("s", pd.DataFrame({"text": column}))], created=WORKBOOK_CREATED)
    assert calamine(path)["s"][1:] == [["ok"], ["bad _xD800_ half"], ["2026-01-02 00:00:00"]]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\ufffe\uffff"), max_size=12), min_size=1, max_size=8))
def test_any_text_round_trips(tmp_path_factory: pytest.TempPathFactory, texts: list[str]) -> None:
    path = tmp_path_factory.mktemp("h") / "h.xlsx"
    write_workbook({"h": pd.DataFrame({"text": texts})}, path)
    got = [row[0] for row in calamine(path)["h"][1:]]
    # Neutralised as every output is (outputs.FORMULA_PATTERN: also after leading spaces or controls).
    want = ["'" + t if re.match(FORMULA_PATTERN, t) else t for t in texts]
    # calamine reads the used range: trailing empty cells past the last value are not rows.
    while want and want[-1] == "":
        want.pop()
    assert got[: len(want)] == want and all(g == "" for g in got[len(want) :])


def test_long_tables_are_split_across_sheets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trainmatch.xlsx, "MAX_ROWS", 4)  # 3 data rows per sheet
    frame = pd.DataFrame({"id": [f"p{i}" for i in range(10)], "n": range(10)})
    path = tmp_path / "split.xlsx"
    seen: list[str] = []
    names = write_workbook({"plans": frame, "people": frame.iloc[:3]}, path, progress=seen.append)
    assert names == ["plans", "plans (2)", "plans (3)", "plans (4)", "people"]
    assert seen == [f"workbook sheet {n}" for n in names]
    sheets = calamine(path)
    assert list(sheets) == names
    rows = [row for name in names[:4] for row in sheets[name][1:]]
    assert rows == [[f"p{i}", float(i)] for i in range(10)]  # nothing lost, order kept
    assert all(sheets[n][0] == ["id", "n"] for n in names)
    filters = [part(path, p).find("m:autoFilter", NS).get("ref") for p in sheet_parts(path)]
    assert filters == ["A1:B4", "A1:B4", "A1:B4", "A1:B2", "A1:B4"]


def test_long_sheet_names_are_cut_and_stay_distinct(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trainmatch.xlsx, "MAX_ROWS", 3)
    base = "a very long table name that Excel cannot hold"
    names = write_workbook({base: pd.DataFrame({"x": range(5)})}, tmp_path / "l.xlsx")
    assert names == [base[:31], base[:27] + " (2)", base[:27] + " (3)"]
    assert list(calamine(tmp_path / "l.xlsx")) == names


def test_rows_are_right_across_chunk_boundaries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mixed: pd.DataFrame) -> None:
    frame = pd.concat([mixed] * 5, ignore_index=True)
    write_workbook({"t": frame}, tmp_path / "one.xlsx")
    monkeypatch.setattr(xlsx, "CHUNK_CELLS", 3 * frame.shape[1])  # three rows per chunk
    write_workbook({"t": frame}, tmp_path / "many.xlsx")
    assert (tmp_path / "one.xlsx").read_bytes() == (tmp_path / "many.xlsx").read_bytes()


def test_same_input_gives_the_same_bytes_with_fixed_dates(tmp_path: Path, mixed: pd.DataFrame) -> None:
    write_workbook({"people": mixed}, tmp_path / "a.xlsx")
    write_workbook({"people": mixed.copy()}, tmp_path / "b.xlsx")
    assert (tmp_path / "a.xlsx").read_bytes() == (tmp_path / "b.xlsx").read_bytes()
    with zipfile.ZipFile(tmp_path / "a.xlsx") as z:
        assert {i.date_time for i in z.infolist()} == {WORKBOOK_CREATED.timetuple()[:6]}
        assert z.namelist() == [
            "[Content_Types].xml",
            "_rels/.rels",
            "docProps/app.xml",
            "docProps/core.xml",
            "xl/workbook.xml",
            "xl/_rels/workbook.xml.rels",
            "xl/styles.xml",
            "xl/worksheets/sheet1.xml",
        ]
    created = part(tmp_path / "a.xlsx", "docProps/core.xml").find("{http://purl.org/dc/terms/}created")
    assert created.text == WORKBOOK_CREATED.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_size_bound_covers_the_xml(mixed: pd.DataFrame) -> None:
    frame = pd.concat([mixed, pd.DataFrame({"person_id": NASTY})], ignore_index=True)
    sheet = xlsx._Sheet(trainmatch.outputs.neutralise_text(frame), selected=True)
    assert sum(len(piece) for piece in sheet.xml()) <= sheet.size_bound()
    # The longest numbers in every cell, over enough rows that the fixed slack is a small part: the
    # bound must count each row's and cell's markup, not only the values.
    n = 5000
    widest = pd.DataFrame({"a": np.full(n, -1.2345678901234567e-300), "b": np.full(n, -9.876543210987654e299), "t": pd.Categorical(["x" * 20] * n)})
    sheet = xlsx._Sheet(trainmatch.outputs.neutralise_text(widest), selected=True)
    assert sum(len(piece) for piece in sheet.xml()) <= sheet.size_bound()


@pytest.mark.parametrize("names", [["a", "A"], ["x" * 32], ["a/b"], ["'quoted'"], [""]])
def test_sheet_names_excel_would_reject_are_refused(tmp_path: Path, names: list[str]) -> None:
    with pytest.raises(ValueError):
        xlsx.write_xlsx(str(tmp_path / "bad.xlsx"), [(n, pd.DataFrame({"x": [1]})) for n in names], created=WORKBOOK_CREATED)
