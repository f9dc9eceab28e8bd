"""Time for training (capacity.csv and the report's section): hours available against hours needed per site and role."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from trainmatch.cli import main
from trainmatch.exports import CAPACITY_COLUMNS, capacity_table
from trainmatch.report import CAPACITY_ROWS, capacity_section


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("capacity")
    runner = CliRunner()
    for args in (["synth", "--n", "400", "--seed", "3", "-o", folder / "s.csv"],
                 ["assign", folder / "s.csv", "-o", folder / "out", "-q", "--no-xlsx", "--per-person", "none"]):
        result = runner.invoke(main, [str(a) for a in args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
    out = folder / "out"
    read = lambda name: pd.read_csv(out / name, dtype={"person_id": str}, keep_default_na=False, na_values=[""])  # noqa: E731
    return read("capacity.csv"), read("people.csv"), read("plans.csv"), read("deferred.csv"), (out / "report.html").read_text("utf-8")


def test_capacity_reconciles_with_people_plans_and_deferred_items(run):
    capacity, people, plans, deferred, _ = run
    assert list(capacity.columns) == list(CAPACITY_COLUMNS)
    total = capacity[(capacity["site"] == "all") & (capacity["role"] == "all")]
    rows = capacity.drop(total.index)
    assert len(total) == 1 and len(rows) == people.groupby(["site", "role"]).ngroups
    assert int(total["people"].iloc[0]) == len(people) == rows["people"].sum()
    assert total["hours_planned"].iloc[0] == pytest.approx(plans["hours"].sum())
    assert total["hours_deferred"].iloc[0] == pytest.approx(deferred["hours"].sum())
    assert (rows["hours_needed"] == (rows["hours_planned"] + rows["hours_deferred"]).round(2)).all()
    assert total["hours_available"].iloc[0] == pytest.approx(people["hours"].fillna(12.0).sum())
    # the share counts people with a need whose plan defers nothing
    needs = set(plans["person_id"]) | set(deferred["person_id"])
    closed = needs - set(deferred["person_id"])
    assert int(total["people_with_needs"].iloc[0]) == len(needs)
    assert total["share_all_gaps_closed"].iloc[0] == pytest.approx(round(len(closed) / len(needs), 3))
    one = rows.iloc[0]
    mine = people[(people["site"] == one["site"]) & (people["role"] == one["role"])]
    assert one["people"] == len(mine) and one["hours_planned"] == pytest.approx(mine["planned_hours"].sum())


def test_the_report_shows_the_time_for_training(run):
    capacity, *_, html = run
    assert '<section id="time">' in html and "Time for training" in html
    assert "plan closes all gaps" in html


def test_the_report_shows_the_sites_with_most_hours_deferred_first_and_counts_the_rest():
    n = CAPACITY_ROWS + 7
    people = pd.DataFrame({
        "site": [f"S{i:03d}" for i in range(n)], "role": "nurse", "hours": np.full(n, 10.0),
        "planned_hours": np.full(n, 4.0), "deferred_hours": np.arange(n, dtype=float),
    })
    from trainmatch.programme import load_programme

    table = capacity_table(people, load_programme())
    section = capacity_section(table)
    assert section["rows"][0][:2] == ["all", "all"]
    assert [r[0] for r in section["rows"][1:4]] == [f"S{n - 1:03d}", f"S{n - 2:03d}", f"S{n - 3:03d}"]
    assert len(section["rows"]) == CAPACITY_ROWS + 1 and section["more"] == 7
    assert section["rows"][1][-1] == "0%" and table["share_all_gaps_closed"].iloc[0] == 1.0
