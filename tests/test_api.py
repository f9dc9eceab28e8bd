"""The public API: every name in trainmatch.__all__ resolves, and the package import stays light."""

from __future__ import annotations

import subprocess
import sys

import trainmatch


def test_every_public_name_resolves() -> None:
    for name in trainmatch.__all__:
        assert getattr(trainmatch, name) is not None, name


def test_import_trainmatch_does_not_load_heavy_libraries() -> None:
    code = "import sys, trainmatch; print(sorted(m for m in ('pandas', 'numpy', 'sklearn', 'matplotlib') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_notebook_flow_on_the_sample(tmp_path) -> None:
    from pathlib import Path

    survey = Path(__file__).resolve().parent.parent / "sample_data" / "survey.csv"
    programme = trainmatch.load_programme()
    plan = trainmatch.load_plan(programme)
    imported = trainmatch.import_survey(trainmatch.read_survey(survey), programme)
    result = trainmatch.run_assignment(imported, programme, plan, seed=0)
    assert len(result.people) == imported.n_accepted == 300
    assert set(result.steps["person_id"]) <= set(result.people["person_id"])
