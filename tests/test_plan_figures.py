"""The planner's acceptance figures (benchmarks/plan_figures.py) on the issue's survey, `synth --n 5000 --seed 8`,
run through `assign` (the letters are not written: they do not change the figures)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

FIGURES = Path(__file__).parent.parent / "benchmarks" / "plan_figures.py"


@pytest.fixture(scope="module")
def figures(tmp_path_factory):
    from click.testing import CliRunner

    from trainmatch.cli import main

    spec = importlib.util.spec_from_file_location("plan_figures", FIGURES)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    folder = tmp_path_factory.mktemp("figures")
    runner = CliRunner()
    for args in (["synth", "--n", "5000", "--seed", "8", "-o", folder / "s.csv"],
                 ["assign", folder / "s.csv", "-o", folder / "out", "-q", "--no-xlsx", "--per-person", "none"]):
        result = runner.invoke(main, [str(a) for a in args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
    return module.figures(folder / "out")


def test_hours_are_spent_where_the_gaps_are(figures):
    assert figures["unused_while_fits"] <= 0.01
    assert figures["people_with_deferrals"] > 100
    assert figures["larger_gap_deferred"] <= 0.02


def test_no_one_below_their_roles_baseline_is_left_without_a_plan(figures):
    assert figures["below_baseline_empty"] == 0


def test_preferred_formats_lead_and_paths_stay_varied(figures):
    assert figures["preferred_share"] >= 0.6
    assert figures["variety_3plus"] >= 0.75
