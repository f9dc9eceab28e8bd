"""Hostile and careless survey files: what a reader of them may never do.

Personal data never leaks from a shifted row, a crafted workbook is refused
before it is inflated, width costs stay linear, every text cell of a CSV or
XLSX output is safe to open in a spreadsheet while ids stay as written, ids
are normalised and checked at import, and the CSV reader never crashes or
loses a row whatever bytes it is given.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner, Result

from trainmatch.cli import main

EMAIL = "aino.virtanen@example.fi"


def run(*args: object) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def synth_rows(n: int = 40, seed: int = 5) -> tuple[list[str], list[list[str]]]:
    """A clean synthetic survey for the default programme, as CSV text cells."""
    from trainmatch.programme import load_programme
    from trainmatch.synth import synthesize

    survey, _ = synthesize(load_programme(), n, seed=seed)
    survey = survey.astype(str).replace({"nan": ""})
    return list(survey.columns), survey.to_numpy(dtype=object).tolist()


def write_rows(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def every_byte(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


# --------------------------------------------------------------------------- personal data in shifted rows


@pytest.mark.parametrize("where", ["after the site", "before the id"])
def test_a_shifted_row_never_shows_the_dropped_email(tmp_path: Path, where: str) -> None:
    """An unquoted comma in a site name moves the e-mail into another column or beyond the last one.

    The e-mail column is dropped on import; the cells of the shifted row that may
    hold its value are hidden in rejects.csv, in --errors-out, --rejects-out and
    on stderr, and the row is still rejected (nothing lost).
    """
    header, rows = synth_rows()
    e = header.index("email")
    to = header.index("site") + 1 if where == "after the site" else header.index("person_id")
    for row in [header, *rows]:
        row.insert(to, row.pop(e))
    # The cell that holds a comma (the site, or the e-mail itself), written without the quotes it needs.
    cell, secret = ("Kotihoito, Etelä", EMAIL) if where == "after the site" else ("Virtanen, " + EMAIL, EMAIL)
    rows[3][header.index("site" if where == "after the site" else "email")] = cell
    rows[3][header.index("email")] = rows[3][header.index("email")] if where == "before the id" else EMAIL
    rows[3][-1] = "workshop"  # the last field is not empty, so the row has a value beyond the last column
    survey = write_rows(tmp_path / "s.csv", header, rows)
    text = survey.read_text(encoding="utf-8")
    assert text.count(f'"{cell}"') == 1
    survey.write_text(text.replace(f'"{cell}"', cell), encoding="utf-8")

    out = tmp_path / "out"
    result = run("assign", survey, "-o", out, "--k", "2-3", "--seed", "1", "--per-person", "none")
    assert result.exit_code == 0, result.output
    rejects = pd.read_csv(out / "rejects.csv", dtype=str, keep_default_na=False)
    assert set(rejects["row"]) == {"4"}  # the shifted row is rejected, the others planned
    assert secret.encode() not in every_byte(out)
    assert secret not in result.stdout + result.stderr
    assert "(hidden: may be personal data)" in set(rejects["value"]) | set(rejects["person_id"])

    result = run("validate", survey, "--errors-out", tmp_path / "errors.csv")
    assert result.exit_code == 1
    assert secret not in result.stdout + result.stderr
    assert secret.encode() not in (tmp_path / "errors.csv").read_bytes()

    result = run("score", survey, "-o", tmp_path / "scores.csv", "--rejects-out", tmp_path / "rejected.csv")
    assert result.exit_code == 0, result.output
    assert secret not in result.stdout + result.stderr
    assert secret.encode() not in (tmp_path / "scores.csv").read_bytes() + (tmp_path / "rejected.csv").read_bytes()


NAME = "Aino Virtanen"


def test_a_row_short_of_a_field_never_shows_the_dropped_name(tmp_path: Path) -> None:
    """A lost delimiter before the dropped name column moves the name left, into the language column, whose value is
    then rejected: the rejected cell is hidden (its last cell is empty, so the row may be short), and the other rows
    are planned as usual."""
    header, rows = synth_rows()
    at = header.index("language") + 1
    header.insert(at, "name")
    for i, row in enumerate(rows):
        row.insert(at, NAME if i == 3 else f"Person {i}")
    survey = write_rows(tmp_path / "s.csv", header, rows)
    lines = survey.read_text(encoding="utf-8").split("\n")
    role, site = rows[3][header.index("role")], rows[3][header.index("site")]
    assert f",{role},{site}," in lines[4]
    lines[4] = lines[4].replace(f",{role},{site},", f",{role}{site},", 1)  # the delimiter between role and site is lost
    survey.write_text("\n".join(lines), encoding="utf-8")

    out = tmp_path / "out"
    result = run("assign", survey, "-o", out, "--k", "2-3", "--seed", "1", "--per-person", "none")
    assert result.exit_code == 0, result.output
    rejects = pd.read_csv(out / "rejects.csv", dtype=str, keep_default_na=False)
    assert set(rejects["row"]) == {"4"}
    assert NAME.encode() not in every_byte(out)
    assert NAME not in result.stdout + result.stderr
    assert "(hidden: may be personal data)" in set(rejects.loc[rejects["column"] == "language", "value"])
    assert len(pd.read_csv(out / "people.csv", dtype=str)) == len(rows) - 1

    result = run("validate", survey, "--errors-out", tmp_path / "errors.csv")
    assert result.exit_code == 1
    assert NAME not in result.stdout + result.stderr
    assert NAME.encode() not in (tmp_path / "errors.csv").read_bytes()


# --------------------------------------------------------------------------- bounded XLSX


def sheet_workbook(path: Path, sheet_xml: bytes, *, level: int = 9) -> Path:
    """A one-sheet workbook with the given worksheet XML (what a crafted file holds), built in a few ms."""
    import zipfile

    ns = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    pkg = "http://schemas.openxmlformats.org/package/2006/relationships"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as z:
        z.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
            '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>',
        )
        z.writestr("_rels/.rels", f'<?xml version="1.0"?><Relationships xmlns="{pkg}"><Relationship Id="rId1" Type="{rel}/officeDocument" Target="xl/workbook.xml"/></Relationships>')
        z.writestr("xl/workbook.xml", f'<?xml version="1.0"?><workbook {ns} xmlns:r="{rel}"><sheets><sheet name="Answers" sheetId="1" r:id="rId1"/></sheets></workbook>')
        z.writestr("xl/_rels/workbook.xml.rels", f'<?xml version="1.0"?><Relationships xmlns="{pkg}"><Relationship Id="rId1" Type="{rel}/worksheet" Target="worksheets/sheet1.xml"/></Relationships>')
        z.writestr("xl/worksheets/sheet1.xml", sheet_xml)
    return path


def sheet_xml(*rows: str, padding: int = 0) -> bytes:
    head = b'<?xml version="1.0"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
    return head + "".join(rows).encode() + b" " * padding + b"</sheetData></worksheet>"


def tiny_header_row() -> str:
    from trainmatch.xlsx import column_letter

    header = (Path(__file__).parent / "data" / "surveys" / "tiny.csv").read_text(encoding="utf-8").splitlines()[0].split(",")
    cells = "".join(f'<c r="{column_letter(j)}1" t="inlineStr"><is><t>{h}</t></is></c>' for j, h in enumerate(header))
    return f'<row r="1">{cells}</row><row r="2"><c r="B2" t="inlineStr"><is><t>0001</t></is></c></row>'


@pytest.mark.parametrize(
    "rows, words",
    [
        # One cell at the sheet's last corner: the reader would hold 17 billion cells (512 GB).
        (['<row r="1"><c r="A1" t="inlineStr"><is><t>person_id</t></is></c></row>',
          '<row r="1048576"><c r="XFD1048576" t="inlineStr"><is><t>x</t></is></c></row>'],
         "its sheet's used range reaches row 1,048,576 and column 16,384 (XFD1048576); the limits are 2,000,000 rows and 2,000 columns."),
        # One cell at the last row under a normal header: 19 million cells for 19 written (1.9 GB).
        ([tiny_header_row(), '<row r="1048576"><c r="A1048576" t="inlineStr"><is><t>x</t></is></c></row>'],
         "its sheet's used range reaches row 1,048,576 and column 18 (R1048576), 18,874,368 cells, but only 20 of them are written"),
        # A cell reference that is not Excel's: a row past the limit, in a row whose own number is small.
        (['<row r="1"><c r="A1" t="inlineStr"><is><t>person_id</t></is></c><c r="B99999999"><v>1</v></c></row>'],
         "its sheet's used range reaches row 99,999,999 and column 2 (B99999999); the limits are 2,000,000 rows"),
    ],
)
def test_a_crafted_workbook_is_refused_before_it_is_read(tmp_path: Path, rows: list[str], words: str) -> None:
    book = sheet_workbook(tmp_path / "survey.xlsx", sheet_xml(*rows))
    assert book.stat().st_size < 5_000
    result = run("validate", book)
    assert result.exit_code == 1, result.output
    assert f"Error: {book}: is too large to read: {words}" in result.stderr
    assert isinstance(result.exception, SystemExit)  # a clean exit, no traceback


def test_a_zip_bomb_of_whitespace_is_refused_without_inflating_it(tmp_path: Path) -> None:
    """40 MB of spaces zip to 40 KB; the central directory says so and the limit refuses it unread."""
    book = sheet_workbook(tmp_path / "survey.xlsx", sheet_xml(tiny_header_row(), padding=40_000_000))
    assert book.stat().st_size < 100_000
    result = run("validate", book, "--xlsx-limits", "inflated=10MB")
    assert result.exit_code == 1
    assert f"Error: {book}: inflates to 40,00" in result.stderr
    assert "more than the limit of 10,485,760. A survey export this large is unusual" in result.stderr


def test_the_sheet_is_scanned_also_when_the_zip_directory_lies(tmp_path: Path) -> None:
    """A central directory that declares a small size does not let the whitespace through."""
    book = sheet_workbook(tmp_path / "survey.xlsx", sheet_xml(tiny_header_row(), padding=20_000_000))
    data = bytearray(book.read_bytes())
    # The sheet's entry is the last: patch its uncompressed size in the central directory to 1,000 bytes.
    central = data.rfind(b"PK\x01\x02")
    data[central + 24 : central + 28] = (1000).to_bytes(4, "little")
    book.write_bytes(bytes(data))
    result = run("validate", book, "--xlsx-limits", "inflated=10MB")
    assert result.exit_code == 1
    assert f"Error: {book}: is not a readable XLSX workbook (Bad CRC-32 for file 'xl/worksheets/sheet1.xml')." in result.stderr


@pytest.mark.parametrize("value", ["rows=-1", "size=2GB", "columns=many", "cells"])
def test_bad_xlsx_limits_are_a_usage_error(tmp_path: Path, value: str) -> None:
    result = run("validate", tmp_path / "any.xlsx", "--xlsx-limits", value)
    assert result.exit_code == 2
    assert "XLSX limits must look like rows=2000000,columns=2000,cells=100000000,inflated=2GB" in result.stderr


def test_limits_let_a_normal_workbook_through(tmp_path: Path, tiny_xlsx: Path) -> None:
    from trainmatch.io import XlsxLimits, read_survey

    raw = read_survey(tiny_xlsx, sheet="Responses", xlsx_limits=XlsxLimits(rows=20, columns=18, cells=400))
    assert len(raw.frame) == 4
    with pytest.raises(Exception, match="the limits are 2,000,000 rows and 17 columns"):
        read_survey(tiny_xlsx, sheet="Responses", xlsx_limits=XlsxLimits(columns=17))


# --------------------------------------------------------------------------- spreadsheet safety and ids

HIDDEN_FORMULAS = ["  =HYPERLINK(\"http://evil.example\",\"x\")", "\u00a0@SUM(1)", "\u3000=1+1", "\uff1d1+1", "\uff0bcmd", "\uff0d2+3", "\uff20x", "\x1b=1"]
_SKIPPED = "".join(chr(c) for c in range(0x20)) + " \u00a0\u3000\u200b\u2028\x7f\x85"


def looks_like_formula(cell: str) -> bool:
    return cell.lstrip(_SKIPPED)[:1] in set("=+-@\uff1d\uff0b\uff0d\uff20") or cell[:1] in ("\t", "\r")


def csv_text_cells(path: Path) -> list[str]:
    """Every cell but numbers (a negative gap is a number, not a formula)."""

    def number(cell: str) -> bool:
        try:
            float(cell)
        except ValueError:
            return False
        return cell == cell.strip()

    with open(path, encoding="utf-8", newline="") as fh:
        return [cell for row in list(csv.reader(fh))[1:] for cell in row if not number(cell)]


def test_formulas_behind_spaces_or_full_width_signs_are_neutralised_everywhere(tmp_path: Path) -> None:
    """Sites (planned people) and item answers (rejected cells) that a spreadsheet would run, in every CSV and the workbook."""
    import fastexcel

    header, rows = synth_rows()
    for k, evil in enumerate(HIDDEN_FORMULAS):
        rows[k][header.index("site")] = evil  # people.csv, plans.xlsx: planned people's site
        rows[10 + k][header.index("ict1")] = evil  # rejects.csv: the cell's value
    survey = write_rows(tmp_path / "s.csv", header, rows)
    out = tmp_path / "out"
    result = run("assign", survey, "-o", out, "--k", "2-3", "--seed", "1", "--per-person", "none", "--xlsx")
    assert result.exit_code == 0, result.output
    seen = set()
    for path in sorted(out.glob("*.csv")):
        for cell in csv_text_cells(path):
            assert not looks_like_formula(cell) or cell.startswith("'"), (path.name, cell)
            seen.add(cell)
    assert {"'" + evil for evil in HIDDEN_FORMULAS} <= seen
    book = fastexcel.read_excel(str(out / "plans.xlsx"))
    for name in book.sheet_names:
        sheet = book.load_sheet(name).to_pandas()  # numbers as numbers
        for cell in sheet.to_numpy().ravel():
            assert not isinstance(cell, str) or not looks_like_formula(cell) or cell.startswith("'"), (name, cell)
    people = pd.read_csv(out / "people.csv", dtype=str, keep_default_na=False)
    assert people["person_id"].tolist() == [r[header.index("person_id")] for r in rows if not rows.index(r) in range(10, 18)]


def test_ids_are_normalised_and_refused_at_import_never_changed_in_outputs(tmp_path: Path) -> None:
    header, rows = synth_rows()
    col = header.index("person_id")
    ids = [r[col] for r in rows]
    rows[1][col] = "\uff10\uff10\uff10\uff10\uff10\uff11"  # full-width "000001": the same person as row 1
    rows[2][col] = "0000\u200b03"  # a zero-width space inside: read as "000003"
    rows[3][col] = "\x1b[2J\x1b[31m4"  # clears and recolours a terminal
    rows[4][col] = "\uff1dcmd"  # full-width =: NFKC makes it "=cmd"
    rows[5][col] = "000\x0006"  # a NUL
    rows[6][col] = "7" * 300
    rows[7][col] = "-rf"
    survey = write_rows(tmp_path / "s.csv", header, rows)
    out = tmp_path / "out"
    result = run("assign", survey, "-o", out, "--k", "2-3", "--seed", "1", "--per-person", "none")
    assert result.exit_code == 0, result.output
    rejects = pd.read_csv(out / "rejects.csv", dtype=str, keep_default_na=False)
    reasons = dict(zip(rejects["row"].astype(int), rejects["reason"]))
    assert "are the same after removing surrounding spaces and invisible characters" in reasons[1] and 2 in reasons
    assert reasons[4].startswith("The id holds a control or invisible formatting character (such as NUL")
    assert reasons[5].startswith("The id starts with = + - or @, which a spreadsheet runs as a formula.")
    assert reasons[6].startswith("The id holds a control or invisible formatting character")
    assert reasons[7] == "The id is longer than 256 characters; it is refused, not cut. Check the id column."
    assert reasons[8].startswith("The id starts with = + - or @")
    people = pd.read_csv(out / "people.csv", dtype=str, keep_default_na=False)
    assert "000003" in set(people["person_id"])  # read as normalised, and written as read
    assert set(people["person_id"]) == set(ids[8:]) | {"000003"}
    assert "row 3: '0000\\u200b03' -> '000003'" in result.stderr
    assert "\x1b" not in result.stderr and "\\x1b[2J\\x1b[31m4" in result.stderr


def test_a_zip_named_csv_is_reported_as_a_workbook(tmp_path: Path, tiny_xlsx: Path) -> None:
    fake = tmp_path / "survey.csv"
    fake.write_bytes(tiny_xlsx.read_bytes())
    result = run("validate", fake)
    assert result.exit_code == 1
    assert f"Error: {fake}: is an XLSX workbook (a zip file), not CSV text, although its name ends in '.csv'." in result.stderr


def test_a_wrong_forced_encoding_names_the_file(tmp_path: Path) -> None:
    header, rows = synth_rows(400)
    survey = write_rows(tmp_path / "s.csv", header, rows)
    assert survey.stat().st_size > 70_000  # past the sample the encoding is checked on
    result = run("validate", survey, "--encoding", "utf-16")
    assert result.exit_code == 1
    assert f"Error: {survey}: is not utf-16 text (UTF-16 stream does not start with BOM); it looks like UTF-8." in result.stderr


# --------------------------------------------------------------------------- width


def test_rows_far_longer_than_the_header_keep_their_place_and_lines(tmp_path: Path) -> None:
    """Records with many extra fields are read on their own and put back where they were (not minutes, not gigabytes)."""
    from trainmatch.io import read_survey

    path = tmp_path / "s.csv"
    path.write_text(
        "sep=;\n"
        "a;b;c\n"
        '1;"two\nlines";3\n'
        "\n"
        "4;5;6;" + ";".join(["x"] * 200_000) + "\n"
        '7;"eight\n\nlines";9;;y;"z\nz"\n'
        "10;11;12;\n"
        "13;14;15\n",
        encoding="utf-8",
    )
    raw = read_survey(path)
    assert raw.frame["a"].tolist() == ["1", "4", "7", "10", "13"]
    assert raw.frame["c"].tolist() == ["3", "6", "9", "12", "15"]
    assert raw.lines.tolist() == [3, 6, 7, 11, 12]
    assert raw.overflow.to_dict() == {1: ";".join(["x"] * 200_000), 2: ";y;z\nz"}
    assert raw.skipped_empty == 1


def test_a_header_longer_than_the_sample_is_read_whole(tmp_path: Path) -> None:
    from trainmatch.io import read_survey

    header, rows = synth_rows(5)
    extra = [f"unused question {j}" for j in range(5_000)]  # a header line of ~100 KB
    survey = write_rows(tmp_path / "s.csv", header + extra, [row + ["1"] * len(extra) for row in rows])
    raw = read_survey(survey)
    assert raw.frame.shape == (5, len(header) + len(extra))
    assert isinstance(raw.frame["person_id"].dtype, pd.ArrowDtype)  # pyarrow's fast reader, not the careful one


# --------------------------------------------------------------------------- fuzzing the CSV reader

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_CELL_CHARS = st.sampled_from(list("ab1 5,;\"\n\r\t=@-'é") + ["\uff1d", "\x1b", "\u200b", "\u3000", "En osaa sanoa", "nurse", "0001", "4"])


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    # (row, column, text); the id column (1) and the site (5) are hit more often than the others.
    edits=st.lists(st.tuples(st.integers(0, 3), st.sampled_from([1, 1, 1, 5, *range(18)]), st.lists(_CELL_CHARS, max_size=4).map("".join)), max_size=6),
    extra=st.lists(st.lists(st.lists(_CELL_CHARS, max_size=4).map("".join), max_size=22), max_size=3),
    quote=st.booleans(),
    tail=st.sampled_from(["", "\n", "\r\n", "\n\n"]),
)
def test_fuzzed_csv_never_crashes_and_loses_no_row(
    tiny_programme, tmp_path_factory: pytest.TempPathFactory, edits: list[tuple[int, int, str]], extra: list[list[str]], quote: bool, tail: str
) -> None:
    """The tiny survey with random cells changed and random rows added, quoted or not (an unquoted
    delimiter or newline shifts or splits a row): a clean SurveyError, or every record accepted or rejected."""
    import io as _io

    from trainmatch.errors import DataError, SurveyError
    from trainmatch.io import read_survey
    from trainmatch.survey import import_survey

    with open(Path(__file__).parent / "data" / "surveys" / "tiny.csv", encoding="utf-8", newline="") as fh:
        header, *rows = list(csv.reader(fh))
    for i, j, text in edits:
        rows[i][j] = text
    rows += extra
    out = _io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        if quote:
            writer.writerow(row)
        else:
            out.write(",".join(row) + "\n")
    text = out.getvalue().rstrip("\n") + tail
    path = tmp_path_factory.mktemp("fuzz") / "survey.csv"
    path.write_text(text, encoding="utf-8", newline="")
    try:
        raw = read_survey(path)
        result = import_survey(raw, tiny_programme)
    except (SurveyError, DataError):
        return  # a clean, located error (anything else fails the test with its traceback)
    assert result.n_accepted + result.n_rejected == result.n_read == len(raw.lines)
    assert set(result.rejects["row"]) <= set(range(1, result.n_read + 1))
    # Accepted ids are ones no output has to change: no formula start, no control character.
    ids = result.people["person_id"].astype(str)
    assert not ids.str.contains(r"^[=+\-@]|[\x00-\x1f\x7f]", regex=True).any(), ids.tolist()
    # What Python's csv module sees as records with any text after the header is exactly what was read.
    with open(path, encoding="utf-8", newline="") as fh:
        records = [r for r in csv.reader(fh) if any(r)]
    assert result.n_read == len(records) - 1


def test_a_row_missing_a_field_does_not_put_the_dropped_address_in_rejects(tmp_path: Path) -> None:
    """One delimiter too few moves the e-mail left into a checked column: a shift the reader cannot see.
    The address must still reach neither rejects.csv nor the terminal."""
    import csv

    from click.testing import CliRunner

    from trainmatch.cli import main

    sample = Path(__file__).resolve().parent.parent / "sample_data" / "survey.csv"
    rows = list(csv.reader(sample.open(encoding="utf-8")))[:21]
    short = rows[3]
    address = short[-1]
    del short[-2]  # the preferred formats field is gone: the e-mail now sits in preferred_formats
    survey = tmp_path / "short.csv"
    with survey.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(rows)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["assign", str(survey), "-o", str(out), "--per-person", "none", "--no-xlsx"])
    assert result.exit_code == 0, result.output
    assert address not in result.output
    rejects = (out / "rejects.csv").read_text(encoding="utf-8")
    assert "(hidden: may be personal data)" in rejects and address not in rejects
    assert all(address.encode() not in p.read_bytes() for p in out.rglob("*") if p.is_file())


def test_a_lone_carriage_return_before_a_too_long_row_loses_no_row(tiny_programme, tmp_path: Path) -> None:
    """An old-Mac line end (a \\r alone) counts as a line, as pandas counts it, so a too-long row after it is
    still found and put back (found by the fuzzer above: it used to stop the import with an IndexError)."""
    from trainmatch.io import read_survey
    from trainmatch.survey import import_survey

    with open(Path(__file__).parent / "data" / "surveys" / "tiny.csv", encoding="utf-8", newline="") as fh:
        header, *rows = list(csv.reader(fh))
    rows[0][0] = "\r" + rows[0][0]
    rows[3][1] = ",,"  # the id cell holds two delimiters: a row two fields too long
    path = tmp_path / "survey.csv"
    path.write_text("\n".join(",".join(r) for r in [header, *rows]), encoding="utf-8", newline="")
    result = import_survey(read_survey(path), tiny_programme)
    with open(path, encoding="utf-8", newline="") as fh:
        records = [r for r in csv.reader(fh) if any(r)]
    assert result.n_accepted + result.n_rejected == result.n_read == len(records) - 1
