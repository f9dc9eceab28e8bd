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


@pytest.fixture
def quick_report(monkeypatch: pytest.MonkeyPatch) -> None:
    """Skip the charts in runs that test something else (the work stays in this process)."""
    import trainmatch.report

    monkeypatch.setenv("TRAINMATCH_SIDECAR", "0")
    monkeypatch.setattr(trainmatch.report, "render_report_data", lambda *a, **k: "<!DOCTYPE html><title>stub</title>")


def every_byte(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


# --------------------------------------------------------------------------- personal data in shifted rows


@pytest.mark.parametrize("where", ["after the site", "before the id"])
def test_a_shifted_row_never_shows_the_dropped_email(tmp_path: Path, quick_report: None, where: str) -> None:
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
