"""Reading survey exports as Excel and survey tools write them: encodings, delimiters, XLSX quirks."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import SURVEYS, tiny_rows, write_tiny_xlsx
from trainmatch.errors import SurveyError
from trainmatch.io import detect_delimiter, detect_encoding, read_survey

# What the first and last answers look like whatever the file format.
FIRST = {"person_id": "0001", "role": "nurse", "site": "Keskussairaala", "ict1": "5", "preferred_formats": "workshop"}
LAST = {"person_id": "0004", "role": "Lääkäri", "ict1": "Täysin eri mieltä", "rem3": "Jokseenkin samaa mieltä", "preferred_formats": "Työpaja"}


def cells(raw, i: int, keys) -> dict:
    return {k: raw.frame[k].iloc[i] for k in keys}


@pytest.mark.parametrize(
    "name, encoding, delimiter",
    [
        ("tiny.csv", "utf-8", ","),
        ("semicolon_cp1252.csv", "cp1252", ";"),
        ("bom_utf8.csv", "utf-8-sig", ","),
        ("utf16_tab.csv", "utf-16", "\t"),
        ("sep_line.csv", "utf-8", ";"),
    ],
)
def test_exports_read_to_the_same_cells(name, encoding, delimiter):
    raw = read_survey(SURVEYS / name)
    assert (raw.kind, raw.encoding, raw.delimiter) == ("csv", encoding, delimiter)
    assert list(raw.frame.columns)[:2] == ["submitted_at", "person_id"]  # no BOM glued to the first header
    assert raw.frame.shape == (4, 18)
    assert cells(raw, 0, FIRST) == FIRST
    assert cells(raw, 3, LAST) == LAST
    assert raw.frame["hours_available"].iloc[1] == "2,5"
    assert raw.frame["ict3"].iloc[1] == ""  # empty cells are '' (not NaN)
    first_line = 3 if name == "sep_line.csv" else 2
    assert raw.lines.tolist() == [first_line, first_line + 1, first_line + 2, first_line + 3]


def test_every_cell_is_text_as_written():
    raw = read_survey(SURVEYS / "tiny.csv")
    values = raw.frame.to_numpy()
    assert all(isinstance(v, str) for v in values.ravel())
    assert raw.frame["person_id"].tolist() == ["0001", "0002", "0003", "0004"]  # leading zeros kept


def test_trailing_delimiter_does_not_shift_known_cells():
    raw = read_survey(SURVEYS / "trailing_delimiter.csv")
    assert raw.frame.shape[1] == 18
    second = raw.frame.iloc[1]
    assert second["person_id"] == "0002"
    assert second["hours_available"] == "2,5"
    assert second["preferred_formats"] == "elearning;workshop"
    assert 1 not in raw.overflow.index  # an empty trailing field is not data


def test_unquoted_delimiter_in_a_cell_is_caught_as_overflow():
    raw = read_survey(SURVEYS / "trailing_delimiter.csv")
    assert raw.overflow.to_dict() == {2: "elearning"}


def test_blank_rows_are_not_people_and_lines_stay_right():
    raw = read_survey(SURVEYS / "trailing_delimiter.csv")
    # header 1, answers on lines 2-4, a blank line 5, a row of bare delimiters 6, answer on 7
    assert raw.frame["person_id"].tolist() == ["0001", "0002", "0003", "0004"]
    assert raw.lines.tolist() == [2, 3, 4, 7]
    assert raw.skipped_empty == 2


def test_embedded_newline_counts_lines_not_records():
    raw = read_survey(SURVEYS / "embedded_newline.csv")
    assert len(raw.frame) == 3
    assert raw.frame["comments"].iloc[0].count("\n") == 2
    assert raw.lines.tolist() == [2, 5, 6]


def test_crlf_embedded_newline(tmp_path):
    path = tmp_path / "crlf.csv"
    path.write_bytes(b'id,note,x\r\n1,"a\r\nb\r\nc",3\r\n2,,4\r\n')
    raw = read_survey(path)
    assert raw.frame["x"].tolist() == ["3", "4"]
    assert raw.lines.tolist() == [2, 5]


def test_small_cp1252_file_with_its_only_accent_at_the_end(tmp_path):
    path = tmp_path / "short.csv"
    path.write_bytes("id;site\r\n1;Kotihoito Etelä\r\n".encode("cp1252"))
    raw = read_survey(path)
    assert raw.encoding == "cp1252"
    assert raw.frame["site"].tolist() == ["Kotihoito Etelä"]


def test_forced_encoding_is_used(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("id;site\r\n1;Vårdcentralen\r\n".encode("cp1252"))
    assert read_survey(path, encoding="latin-1").frame["site"].tolist() == ["Vårdcentralen"]


def test_mixed_encodings_name_the_line(tmp_path):
    path = tmp_path / "mixed.csv"
    body = "id,site\n" + "".join(f"{i},Keskussairaala\n" for i in range(7000))  # > the 64 KiB sample
    path.write_bytes(body.encode("utf-8") + "7001,Vårdcentralen\n".encode("cp1252"))
    with pytest.raises(SurveyError) as info:
        read_survey(path)
    assert "line 7002" in str(info.value)
    assert "--encoding" in str(info.value)


def test_unclosed_quote_names_the_line(tmp_path):
    path = tmp_path / "quote.csv"
    path.write_bytes(b'id,site,x\n1,a,3\n2,"Keskus,4\n3,b,5\n')
    with pytest.raises(SurveyError) as info:
        read_survey(path)
    assert "line 3" in str(info.value)


@pytest.mark.parametrize(
    "content, expected",
    [(b"", "is empty"), (b"\r\n\r\n", "no header row"), (b";;;\n;;;\n", "no header row")],
)
def test_files_without_a_header(tmp_path, content, expected):
    path = tmp_path / "x.csv"
    path.write_bytes(content)
    with pytest.raises(SurveyError) as info:
        read_survey(path)
    assert expected in str(info.value)
    assert str(path) in str(info.value)


def test_committed_empty_and_header_only_files():
    with pytest.raises(SurveyError, match="is empty"):
        read_survey(SURVEYS / "empty.csv")
    with pytest.raises(SurveyError, match="header row but no answers") as info:
        read_survey(SURVEYS / "header_only.csv")
    assert info.value.problem.file.endswith("header_only.csv")


def test_missing_file_and_old_excel(tmp_path):
    with pytest.raises(SurveyError, match="does not exist"):
        read_survey(tmp_path / "nope.csv")
    old = tmp_path / "old.xls"
    old.write_bytes(b"\xd0\xcf\x11\xe0" + b"\0" * 100)
    with pytest.raises(SurveyError, match=r"\.xls"):
        read_survey(old)


def test_duplicate_headers_are_kept_not_renamed(tmp_path):
    path = tmp_path / "dup.csv"
    path.write_bytes(b"id,q,q\n1,a,b\n")
    assert list(read_survey(path).frame.columns) == ["id", "q", "q"]


# --------------------------------------------------------------------------- XLSX


def test_xlsx_numbers_empty_formatted_rows_and_sheets(tiny_xlsx):
    raw = read_survey(tiny_xlsx, sheet="Responses")
    assert (raw.kind, raw.sheet) == ("xlsx", "Responses")
    assert raw.frame["person_id"].tolist() == ["4512", "2", "3", "4"]  # 4512.0 → "4512"
    assert raw.frame["ict1"].tolist()[:2] == ["5", "5"]
    assert raw.frame["video_visits"].iloc[0] == "1"
    assert raw.frame["hours_available"].tolist() == ["8", "2,5", "", "12"]
    assert raw.frame["rem1"].iloc[3] == "Vet inte"
    # sheet rows: header 1, answers 2-3, a formatted empty row 4, answers 5-6; the trailing formatted rows are not people
    assert raw.lines.tolist() == [2, 3, 5, 6]
    assert raw.skipped_empty == 1


def test_xlsx_unknown_sheet_lists_the_sheets(tiny_xlsx):
    with pytest.raises(SurveyError) as info:
        read_survey(tiny_xlsx, sheet="Answers")
    text = str(info.value)
    assert "'Answers'" in text and "'Info'" in text and "'Responses'" in text


def test_xlsx_first_sheet_without_answers_points_to_sheet_option(tiny_xlsx):
    with pytest.raises(SurveyError) as info:
        read_survey(tiny_xlsx)
    assert "--sheet" in str(info.value)
    assert "'Responses'" in str(info.value)


def test_xlsx_header_only_and_empty_sheet(tmp_path):
    import xlsxwriter

    path = tmp_path / "h.xlsx"
    book = xlsxwriter.Workbook(str(path))
    book.add_worksheet("Responses").write_row(0, 0, ["person_id", "role"])
    book.add_worksheet("Empty")
    book.close()
    with pytest.raises(SurveyError, match="header row but no answers"):
        read_survey(path, sheet="Responses")
    with pytest.raises(SurveyError, match="no header row"):
        read_survey(path, sheet="Empty")


def test_corrupt_xlsx(tmp_path):
    path = tmp_path / "broken.xlsx"
    path.write_bytes(b"PK\x03\x04 not really a workbook")
    with pytest.raises(SurveyError, match="not a readable XLSX"):
        read_survey(path)


def test_xlsx_and_csv_give_the_same_cells(tmp_path):
    header, rows = tiny_rows()
    raw = read_survey(write_tiny_xlsx(tmp_path / "t.xlsx"), sheet="Responses")
    text_columns = ["role", "site", "language", "rem1", "rem3", "preferred_formats"]
    for j, row in enumerate(rows):
        for col in text_columns:
            assert raw.frame[col].iloc[j] == row[header.index(col)]


# --------------------------------------------------------------------------- sniffing


@pytest.mark.parametrize(
    "sample, expected",
    [
        ("a;b;c\n1;2,5;x\n", ";"),
        ("a,b,c\n1,2,3\n", ","),
        ("a\tb\tc\n1\t2\t3\n", "\t"),
        ("a|b|c\n1|2|3\n", "|"),
        ('a,b,c\n1,"x; y",3\n', ","),
    ],
)
def test_detect_delimiter(sample, expected):
    assert detect_delimiter(sample) == expected


def test_detect_encoding():
    assert detect_encoding("ä".encode("utf-8-sig")) == "utf-8-sig"
    assert detect_encoding("ä".encode("utf-16")) == "utf-16"
    assert detect_encoding("Lähihoitaja".encode("utf-8")) == "utf-8"
    assert detect_encoding("Lähihoitaja;x".encode("cp1252")) == "cp1252"
    # A sample cut inside a UTF-8 character is still UTF-8 …
    assert detect_encoding("abcä".encode("utf-8")[:-1]) == "utf-8"
    # … but a whole file ending in a cp1252 byte is not.
    assert detect_encoding("abcä".encode("cp1252"), complete=True) == "cp1252"


def test_lines_are_int64_numpy(tmp_path):
    raw = read_survey(SURVEYS / "tiny.csv")
    assert isinstance(raw.lines, np.ndarray) and raw.lines.dtype == np.int64


# --------------------------------------------------------------------------- property: lines and records

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

CELL = st.text(alphabet=st.sampled_from(list('ab 1;,"\nä\t')), max_size=6)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(st.lists(CELL, min_size=3, max_size=3), min_size=1, max_size=12),
    delimiter=st.sampled_from([",", ";", "\t"]),
    line_end=st.sampled_from(["\n", "\r\n"]),
)
def test_records_and_their_lines_survive_any_quoting(tmp_path_factory, rows, delimiter, line_end):
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator=line_end, quoting=csv.QUOTE_MINIMAL)
    writer.writerow(["id", "note", "x"])
    writer.writerows(rows)
    path = tmp_path_factory.mktemp("prop") / "survey.csv"
    path.write_bytes(buffer.getvalue().encode("utf-8"))

    expected_cells, expected_lines, line = [], [], 2
    for r in rows:
        if any(r):
            expected_cells.append(r)
            expected_lines.append(line)
        line += 1 + sum(c.count("\n") for c in r)
    if not expected_cells:
        with pytest.raises(SurveyError):
            read_survey(path)
        return
    raw = read_survey(path)
    assert raw.frame.columns.tolist() == ["id", "note", "x"]
    assert raw.frame.to_numpy().tolist() == [[c.replace("\r\n", "\n") for c in r] for r in expected_cells]
    assert raw.lines.tolist() == expected_lines


def test_xlsx_booleans_stay_apart_from_the_numbers_1_and_0(tmp_path):
    import xlsxwriter

    path = tmp_path / "b.xlsx"
    book = xlsxwriter.Workbook(str(path))
    ws = book.add_worksheet("Responses")
    ws.write_row(0, 0, ["person_id", "video_visits", "chat_service"])
    ws.write_row(1, 0, [4512.0, 1, True])
    ws.write_row(2, 0, ["0002", True, 0])
    ws.write_row(3, 0, [3, 0.0, False])
    book.close()
    raw = read_survey(path)
    assert raw.frame["person_id"].tolist() == ["4512", "0002", "3"]
    assert raw.frame["video_visits"].tolist() == ["1", "TRUE", "0"]
    assert raw.frame["chat_service"].tolist() == ["TRUE", "0", "FALSE"]
    assert raw.lines.tolist() == [2, 3, 4]  # a row whose only values are zeros is still a row


def test_xlsx_numbers_keep_all_their_digits(tmp_path):
    """fastexcel writes numbers with at most nine decimals; a typed 2.3333333333333335 must not become 2.333333333."""
    import xlsxwriter

    path = tmp_path / "d.xlsx"
    book = xlsxwriter.Workbook(str(path))
    ws = book.add_worksheet("Responses")
    ws.write_row(0, 0, ["person_id", "hours", "note"])
    ws.write_row(1, 0, [1, 7 / 3, "2.333333333"])  # text with nine decimals stays as typed
    ws.write_row(2, 0, [2, 2.5, "x"])
    ws.write_row(3, 0, [3, 0.123456789, "y"])  # a number with exactly nine decimals is unchanged
    # Text cells that a float read would change (trailing zeros, a leading zero) stay as typed; a number
    # that would need an exponent keeps its nine-decimal form.
    ws.write_row(4, 0, [4, 1e-9, "1.100000000"])
    ws.write_row(5, 0, [5, -2 / 3, "01.123456789"])
    book.close()
    raw = read_survey(path)
    hours = raw.frame["hours"].tolist()
    assert float(hours[0]) == float("%.16g" % (7 / 3)) and len(hours[0].split(".")[1]) > 9  # xlsxwriter stores 16 digits
    assert hours[1:] == ["2.5", "0.123456789", "0.000000001", repr(-2 / 3)]
    assert raw.frame["note"].tolist() == ["2.333333333", "x", "y", "1.100000000", "01.123456789"]


def test_xlsx_numbers_whose_cut_form_lost_its_zeros_keep_the_cut_form(tmp_path):
    """The known limit of _restore_digits: fastexcel's nine-decimal form of these has fewer decimals.

    So an answer typed 4.9999999999 in Excel is read as the code 5 and accepted, where the exact value
    would be rejected as not a whole code; in CSV it is rejected.
    """
    import xlsxwriter

    path = tmp_path / "z.xlsx"
    book = xlsxwriter.Workbook(str(path))
    ws = book.add_worksheet("Responses")
    ws.write_row(0, 0, ["person_id", "ict1"])
    for i, value in enumerate([4.9999999999, 2.5000000001, 1e-10], start=1):
        ws.write_row(i, 0, [str(i), value])
    book.close()
    assert read_survey(path).frame["ict1"].tolist() == ["5", "2.5", "0"]


def test_xlsx_text_true_and_false_stay_text_beside_real_booleans(tmp_path):
    import xlsxwriter

    path = tmp_path / "t.xlsx"
    book = xlsxwriter.Workbook(str(path))
    ws = book.add_worksheet("Responses")
    ws.write_row(0, 0, ["person_id", "chat_service", "note"])
    ws.write_row(1, 0, ["0001", True, "true"])
    ws.write_row(2, 0, ["0002", "false", "false"])  # text cells, as typed into a text-formatted cell
    ws.write_row(3, 0, ["0003", False, 1])
    book.close()
    raw = read_survey(path)
    assert raw.frame["chat_service"].tolist() == ["TRUE", "false", "FALSE"]
    assert raw.frame["note"].tolist() == ["true", "false", "1"]


def test_xlsx_rows_and_columns_before_the_table_keep_sheet_row_numbers(tmp_path):
    import xlsxwriter

    path = tmp_path / "offset.xlsx"
    book = xlsxwriter.Workbook(str(path))
    ws = book.add_worksheet("Responses")
    ws.write_row(2, 2, ["person_id", "role"])  # header in C3
    ws.write_row(3, 2, [" 0001 ", "\u3000nurse\xa0"])
    ws.write_row(5, 2, [2, "  "])  # D6 holds only spaces: the row still has an id
    ws.write_row(6, 3, ["\t "])  # a row of spaces only is empty
    ws.write_row(7, 2, [3.0, "doctor"])
    book.close()
    raw = read_survey(path)
    assert raw.frame.columns.tolist() == ["person_id", "role"]
    assert raw.frame.to_numpy().tolist() == [["0001", "nurse"], ["2", ""], ["3", "doctor"]]
    assert raw.lines.tolist() == [4, 6, 8]
    assert raw.skipped_empty == 2


def test_xlsx_with_a_broken_sheet_is_refused_clearly(tmp_path):
    import xlsxwriter
    import zipfile

    good = tmp_path / "good.xlsx"
    book = xlsxwriter.Workbook(str(good))
    book.add_worksheet("Responses").write_row(0, 0, ["person_id", "role"])
    book.close()
    bad = tmp_path / "bad.xlsx"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bad, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "xl/worksheets/sheet1.xml":
                data = data.replace(b"<sheetData>", b"<sheetData><row r='2'><c r='A2' t='s'><v>99")  # cut off
            dst.writestr(item, data)
    with pytest.raises(SurveyError, match="not a readable XLSX"):
        read_survey(bad)


def test_xlsx_cells_are_stripped_as_str_strip_does(tmp_path):
    """The XLSX reader strips text with Arrow; it must remove exactly what str.strip() removes, no more."""
    import sys

    import xlsxwriter

    spaces = [chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace() and c not in (0x0A, 0x0D)]
    kept = ["\u200b", "\u2060", "\ufeff", "\u180e", "x"]  # zero-width and other characters str.strip keeps
    cells = [f"{ch}a{ch}" for ch in spaces + kept] + [" ".join(spaces)]
    path = tmp_path / "spaces.xlsx"
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet("Responses")
    sheet.write_row(0, 0, ["person_id", "site"])
    for row, cell in enumerate(cells, 1):
        sheet.write_string(row, 0, f"p{row}")
        sheet.write_string(row, 1, cell)
    book.close()
    read = read_survey(path).frame["site"].tolist()
    assert read == [c.strip() for c in cells]
