"""Shared fixtures: the fixture files under tests/data/, generated XLSX workbooks, a CLI runner.

Survey fixtures in tests/data/surveys/ fit the tiny programme in
tests/data/programmes/tiny/ (two domains of three items, three tasks); see
tests/data/surveys/make_surveys.py for how each file was made.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest
from click.testing import CliRunner, Result

DATA = Path(__file__).parent / "data"
SURVEYS = DATA / "surveys"
PROGRAMMES = DATA / "programmes"
TINY = PROGRAMMES / "tiny"


@pytest.fixture(scope="session")
def tiny_programme():
    from trainmatch.programme import load_programme

    return load_programme(TINY)


@pytest.fixture(scope="session")
def default_programme():
    from trainmatch.programme import load_programme

    return load_programme()


def write_tiny_xlsx(path: Path) -> Path:
    """The tiny survey as an Excel user leaves it: ids and codes stored as numbers,
    an instructions sheet first, formatted but empty rows between and after answers."""
    import xlsxwriter

    header, rows = tiny_rows()
    book = xlsxwriter.Workbook(str(path))
    info = book.add_worksheet("Info")
    info.write(0, 0, "Digital competence survey 2026, export from the survey tool")
    ws = book.add_worksheet("Responses")
    shade = book.add_format({"bg_color": "#DDEEFF", "border": 1})
    ws.write_row(0, 0, header)
    numeric = {"person_id", "ict1", "ict2", "ict3", "rem1", "rem2", "rem3", "video_visits", "ehr_documentation", "chat_service", "hours_available"}
    sheet_row = 1
    for n, row in enumerate(rows):
        if n == 2:
            # A formatted row with no values between answers: not a person.
            for j in range(len(header)):
                ws.write_blank(sheet_row, j, None, shade)
            sheet_row += 1
        for j, (col, cell) in enumerate(zip(header, row)):
            if col in numeric and cell.replace(",", "").isdigit() and "," not in cell:
                ws.write_number(sheet_row, j, float(cell))  # Excel keeps 4512 as 4512.0
            elif cell:
                ws.write_string(sheet_row, j, cell)
        sheet_row += 1
    for r in range(sheet_row, sheet_row + 5):  # formatted rows after the answers
        for j in range(len(header)):
            ws.write_blank(r, j, None, shade)
    book.close()
    return path


def tiny_rows() -> tuple[list[str], list[list[str]]]:
    """Header and rows of tests/data/surveys/tiny.csv, with person 0001 renumbered 4512."""
    import csv

    with open(SURVEYS / "tiny.csv", encoding="utf-8", newline="") as fh:
        header, *rows = list(csv.reader(fh))
    rows[0][header.index("person_id")] = "4512"
    return header, rows


@pytest.fixture(scope="session")
def tiny_xlsx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_xlsx(tmp_path_factory.mktemp("xlsx") / "tiny.xlsx")


@pytest.fixture(scope="session")
def synth_csv(tmp_path_factory: pytest.TempPathFactory, default_programme) -> Path:
    """A clean synthetic survey of the default programme (150 people)."""
    from trainmatch.outputs import write_csv
    from trainmatch.synth import synthesize

    survey, _ = synthesize(default_programme, 150, seed=3)
    return write_csv(survey, tmp_path_factory.mktemp("synth") / "survey.csv")


@pytest.fixture
def cli() -> Callable[..., Result]:
    """Run ``trainmatch ARGS`` in-process; exceptions other than SystemExit propagate."""
    from trainmatch.cli import main

    runner = CliRunner()

    def run(*args: str | Path) -> Result:
        result = runner.invoke(main, [str(a) for a in args], catch_exceptions=False)
        return result

    return run


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        help="Rewrite tests/golden/output*/ from fresh runs instead of comparing with it (review the diff, then commit).",
    )
