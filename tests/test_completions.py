"""Reading LMS completions and module feedback: every row used or rejected, whatever the rows hold."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trainmatch.completions import read_completions, read_feedback
from trainmatch.pipeline import load_plan
from trainmatch.programme import load_programme

CATALOGUE = load_plan(load_programme()).catalogue
MODULES = [m.id for m in CATALOGUE.modules]
PEOPLE = pd.Index(["p1", "p2", "p3", "Ｐ4"])  # full-width: matched after NFKC, as the survey import does
SINCE = pd.Timestamp("2026-06-01T00:00:00+00:00")

cells = {
    "person": st.sampled_from(["p1", "p2", " p3 ", "P4", "Ｐ4", "nobody", "", "=cmd()"]),
    "module": st.sampled_from([*MODULES[:4], MODULES[0].upper(), "no.such", "", "@x"]),
    "status": st.sampled_from(["completed", "Passed", "in progress", "suoritettu", "", "maybe"]),
    "time": st.sampled_from(["2026-07-01 10:00", "2026-07-01", "1.7.2026", "2020-01-01", "31.02.2026", "", "1782000000", "soon"]),
    "rating": st.sampled_from(["1", "5", "3,0", "0", "6", "2.5", "", "x"]),
}


def _write_rows(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(cells["person"], cells["module"], cells["status"], cells["time"]), min_size=1, max_size=25))
def test_every_completion_row_is_used_or_rejected_once(tmp_path: Path, rows: list[tuple[str, ...]]) -> None:
    path = _write_rows(tmp_path / "lms.csv", ["person_id", "module", "status", "completed_at"], [list(r) for r in rows])
    done = read_completions(path, CATALOGUE, PEOPLE, SINCE)
    assert len(done.table) + len(done.rejects) == done.n_read == len(rows)
    assert done.rejects["row"].is_unique and done.counts["reconciles"]
    assert set(done.table["person_id"]) <= set(PEOPLE.map(lambda p: "P4" if p == "Ｐ4" else p))
    assert set(done.table["module"]) <= set(MODULES)
    assert not done.table.duplicated(["person_id", "module"]).any()
    assert (done.table["completed_at"].dropna() >= SINCE.tz_convert(None)).all()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(cells["person"], cells["module"], cells["rating"]), min_size=1, max_size=25))
def test_every_rating_row_is_used_or_rejected_once(tmp_path: Path, rows: list[tuple[str, ...]]) -> None:
    path = _write_rows(tmp_path / "fb.csv", ["person", "course", "rating", "comment"], [[*r, "a comment"] for r in rows])
    rated = read_feedback(path, CATALOGUE, PEOPLE)
    assert len(rated.table) + len(rated.rejects) == rated.n_read == len(rows)
    assert rated.table["rating"].isin([1.0, 2.0, 3.0, 4.0, 5.0]).all()
    assert "a comment" not in rated.rejects.to_string() and "comment" not in rated.table.columns


@pytest.mark.parametrize("status, time, completed", [("completed", "", True), ("", "2026-07-01", True), ("in progress", "", False),
                                                     ("", "", False), ("Genomförd", "", True)])
def test_what_counts_as_completed(tmp_path: Path, status: str, time: str, completed: bool) -> None:
    path = _write_rows(tmp_path / "lms.csv", ["person_id", "lms_course", "status", "completed_at"], [["p1", MODULES[0], status, time]])
    done = read_completions(path, CATALOGUE, PEOPLE, SINCE)
    assert list(done.table["completed"]) == [completed]


def test_an_xlsx_export_reads_like_a_csv(tmp_path: Path) -> None:
    from trainmatch.outputs import write_xlsx_table

    frame = pd.DataFrame({"User ID": ["p1", "p2", "nobody"], "Course": [MODULES[0], MODULES[1], MODULES[0]],
                          "Time completed": ["2026-07-01 10:00", "2026-07-02", "2026-07-03"]})
    path = write_xlsx_table(frame, tmp_path / "lms.xlsx", sheet="Completions")
    done = read_completions(path, CATALOGUE, PEOPLE, SINCE)
    assert list(done.table["module"]) == MODULES[:2] and done.table["completed"].all()
    assert list(done.rejects["reason"].str[:14]) == ["unknown person"] and list(done.rejects["row"]) == [3]
