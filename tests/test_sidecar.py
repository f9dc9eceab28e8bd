"""The helper process of `assign`: same results as doing the work in one process, and never a dependency.

It fits the cohorts and draws the report on the second core. A run must give
the same bytes with and without it, errors found there must reach the user
as they would here, and a helper that cannot start or dies must only cost time.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from trainmatch.cli import main
from trainmatch.errors import DataError
from trainmatch.pipeline import fit_cohorts
from trainmatch.sidecar import Sidecar

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data" / "survey.csv"
QUICK = ("--k", "2-4", "--seed", "3", "--per-person", "none", "--no-xlsx")


def scores(n: int = 600, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = np.array([[2.0] * 6, [4.0, 4.0, 2.0, 2.0, 4.0, 2.0], [4.2] * 6])
    X = centres[rng.integers(0, 3, n)] + rng.normal(0, 0.3, (n, 6))
    X[rng.random((n, 6)) < 0.02] = np.nan  # some missing domain scores
    return X


def test_the_helper_fits_exactly_the_cohorts_this_process_fits() -> None:
    X = scores()
    with Sidecar(jobs=("fit",)) as helper:
        assert helper.proc is not None, "the helper process did not start"
        there = helper.start_fit(X, k_range=(2, 5), seed=7)()
        assert helper.redone == []  # the helper did it (it runs without pandas)
    here = fit_cohorts(X, k_range=(2, 5), seed=7)
    np.testing.assert_array_equal(there.cluster_centers_, here.cluster_centers_)
    np.testing.assert_array_equal(there.mean_, here.mean_)
    np.testing.assert_array_equal(there.predict(X), here.predict(X))
    assert there.fit_report_ == here.fit_report_
    assert there.shares_ == here.shares_


def test_a_data_error_in_the_helper_reaches_the_caller_with_its_message() -> None:
    same = np.tile([[3.0, 3.0, 3.0, 3.0, 3.0, 3.0]], (50, 1))
    with Sidecar(jobs=("fit",)) as helper, pytest.raises(DataError, match="same domain-score profile"):
        helper.start_fit(same, k_range=(2, 4), seed=0)()


@pytest.fixture(scope="module")
def sample_report() -> dict:
    """report_data of the sample survey."""
    from trainmatch.io import read_survey
    from trainmatch.pipeline import load_plan, run_assignment
    from trainmatch.programme import load_programme
    from trainmatch.report import report_data
    from trainmatch.survey import import_survey

    programme = load_programme()
    imported = import_survey(read_survey(SAMPLE), programme)
    result = run_assignment(imported, programme, load_plan(programme), k_range=(2, 3), seed=0)
    return report_data(result.people, result.steps, result.deferred, programme, cohorts=result.cohorts.cohorts,
                       fit_rows=result.cohorts.fit_report, rejects=imported.rejects, reliability=result.reliability)


def test_the_helper_draws_the_same_report_as_this_process(sample_report: dict, tmp_path: Path) -> None:
    from trainmatch.report import render_report_data

    with Sidecar(jobs=("report",)) as helper:
        assert helper.proc is not None
        seconds = helper.write_report(sample_report, tmp_path / "report.html")()
        assert helper.redone == []
    assert seconds > 0
    here = render_report_data(json.loads(json.dumps(sample_report)))
    assert (tmp_path / "report.html").read_text(encoding="utf-8") == here
    assert here.count("data:image/svg+xml;base64,") >= 7  # every chart but the groups (none passed)


def test_nothing_the_helper_does_needs_pandas(sample_report: dict, tmp_path: Path) -> None:
    """The helper refuses pandas (it would cost 0.3 s of its start): the fit and the whole report work without it."""
    data = tmp_path / "report.json"
    data.write_text(json.dumps(sample_report), encoding="utf-8")
    code = (
        "import json, sys\n"
        "import numpy as np\n"
        "from trainmatch.sidecar import _WithoutPandas, _charts, _fit, _report\n"
        "sys.meta_path.insert(0, _WithoutPandas())\n"
        "_fit({'k_range': [2, 4], 'seed': 0}, np.random.default_rng(0).normal(3.0, 1.0, (300, 6)))\n"
        "data = json.loads(open(sys.argv[1], encoding='utf-8').read())\n"
        "_charts({'charts': data['charts']}, None)\n"
        "_report({'data': data, 'path': sys.argv[2]}, None)\n"
        "assert 'pandas' not in sys.modules, 'pandas was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code, str(data), str(tmp_path / "report.html")], check=True)
    assert (tmp_path / "report.html").read_text(encoding="utf-8").count("data:image/svg+xml;base64,") >= 7


def test_a_helper_that_dies_costs_only_time(sample_report: dict, tmp_path: Path) -> None:
    X = scores(seed=1)
    with Sidecar(jobs=("fit", "report")) as helper:
        assert helper.proc is not None
        helper.proc.kill()
        helper.proc.wait()
        fitted = helper.start_fit(X, k_range=(2, 4), seed=1)()
        assert helper.proc is None  # given up on, after the first failure
        assert helper.write_report(sample_report, tmp_path / "report.html")() > 0
        assert helper.redone == ["fit", "report"]
    np.testing.assert_array_equal(fitted.cluster_centers_, fit_cohorts(X, k_range=(2, 4), seed=1).cluster_centers_)
    assert "Cohort sizes" in (tmp_path / "report.html").read_text(encoding="utf-8")


def test_a_helper_that_cannot_start_is_not_needed(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_process(*args: object, **kwargs: object) -> None:
        raise OSError("no processes left")

    monkeypatch.setattr(subprocess, "Popen", no_process)
    X = scores(seed=2)
    with Sidecar() as helper:
        assert helper.proc is None
        fitted = helper.start_fit(X, k_range=(2, 4), seed=2)()
    assert fitted.n_clusters_ >= 2


def test_assign_writes_the_same_files_with_and_without_the_helper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with_helper = tmp_path / "with"
    result = CliRunner().invoke(main, ["assign", str(SAMPLE), "-o", str(with_helper), *QUICK])
    assert result.exit_code == 0, result.output
    monkeypatch.setenv("TRAINMATCH_SIDECAR", "0")
    alone = tmp_path / "alone"
    result = CliRunner().invoke(main, ["assign", str(SAMPLE), "-o", str(alone), *QUICK])
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in with_helper.iterdir())
    assert names == sorted(p.name for p in alone.iterdir())
    assert "report.html" in names
    for name in names:
        if name == "run.json":
            a, b = (json.loads((d / name).read_text(encoding="utf-8")) for d in (with_helper, alone))
            a.pop("seconds"), b.pop("seconds")
            assert a == b
        else:
            assert (with_helper / name).read_bytes() == (alone / name).read_bytes(), name


def test_charts_drawn_before_the_paths_are_the_ones_the_report_shows() -> None:
    """early_chart_args (after cohorts) gives exactly the report's arguments for every chart but the hours."""
    from trainmatch.io import read_survey
    from trainmatch.pipeline import group_modules, load_plan, run_assignment
    from trainmatch.programme import load_programme
    from trainmatch.report import LATE_CHARTS, early_chart_args, report_data
    from trainmatch.survey import import_survey

    programme = load_programme()
    imported = import_survey(read_survey(SAMPLE), programme)
    early = {}

    def after_cohorts(stage, reliability) -> None:
        early.update(early_chart_args(stage.people, programme, cohorts=stage.cohorts, groups=stage.groups, fit_rows=stage.fit_report,
                                      rejects=imported.rejects, reliability=reliability, n_read=imported.n_read))

    result = run_assignment(imported, programme, load_plan(programme), k_range=(2, 3), seed=0, after_cohorts=after_cohorts)
    final = report_data(result.people, result.steps, result.deferred, programme, cohorts=result.cohorts.cohorts,
                        groups=group_modules(result.cohorts.groups, result.steps), fit_rows=result.cohorts.fit_report,
                        rejects=imported.rejects, reliability=result.reliability, n_read=imported.n_read)["charts"]
    assert set(early) == set(final) - set(LATE_CHARTS)
    assert {"cohort_sizes", "cohort_profiles", "fit", "gaps", "groups_site", "reliability"} <= set(early)
    for name, args in early.items():
        assert json.dumps(args, sort_keys=True) == json.dumps(final[name], sort_keys=True), name


def test_the_report_reuses_a_chart_drawn_with_the_same_arguments_only(sample_report: dict) -> None:
    from trainmatch.report import Chart, chart_key, render_report_data

    args = sample_report["charts"]["fit"]
    marked = Chart("fit", "data:image/svg+xml;base64,DRAWN-BEFORE", "drawn before")
    page = render_report_data(sample_report, drawn={chart_key("fit", args): marked})
    assert "DRAWN-BEFORE" in page
    changed = {**args, "chosen": None}
    page = render_report_data(sample_report, drawn={chart_key("fit", changed): marked})
    assert "DRAWN-BEFORE" not in page


def test_paths_planned_while_the_cohorts_are_fitted_are_the_paths_planned_after() -> None:
    """No default rule looks at the cohort, so run_assignment plans first and attaches the groups after."""
    from trainmatch.io import read_survey
    from trainmatch.paths import build_paths
    from trainmatch.pipeline import load_plan, run_assignment
    from trainmatch.programme import load_programme
    from trainmatch.rules import build_needs, evaluate
    from trainmatch.survey import import_survey

    programme = load_programme()
    plan = load_plan(programme)
    assert not plan.rules.uses("cohort")
    imported = import_survey(read_survey(SAMPLE), programme)
    result = run_assignment(imported, programme, plan, k_range=(2, 4), seed=5)
    assert list(result.timings) == ["score", "rules", "paths", "cohorts"]  # planned before the cohorts were known
    people = result.cohorts.people
    after = build_paths(people, evaluate(plan.rules, build_needs(people, programme), people, programme), plan.catalogue, programme)
    pd.testing.assert_frame_equal(result.steps, after.steps)
    pd.testing.assert_frame_equal(result.deferred, after.deferred)
    assert (result.steps["group"].astype(str) != "").any()


def test_a_rule_on_the_cohort_waits_for_the_cohorts(tmp_path: Path) -> None:
    from trainmatch.io import read_survey
    from trainmatch.pipeline import load_plan, run_assignment
    from trainmatch.programme import load_programme
    from trainmatch.survey import import_survey

    folder = tmp_path / "programme"
    assert CliRunner().invoke(main, ["init", str(folder)]).exit_code == 0
    rules = (folder / "rules.csv").read_text(encoding="utf-8").splitlines()
    header = rules[0].split(",")
    cells = rules[1].split(",")
    cells[header.index("cohort")] = "C1"  # R01 only for the cohort that needs the most support
    (folder / "rules.csv").write_text("\n".join([rules[0], ",".join(cells), *rules[2:]]) + "\n", encoding="utf-8")
    programme = load_programme(folder)
    imported = import_survey(read_survey(SAMPLE), programme)
    result = run_assignment(imported, programme, load_plan(programme), k_range=(2, 4), seed=5)
    assert list(result.timings) == ["score", "cohorts", "rules", "paths"]
    fired = result.fired[result.fired["rule_id"] == cells[0]]
    cohort = result.people.set_index("person_id")["cohort"]
    assert len(fired) and set(cohort.loc[fired["person_id"].astype(str)]) == {"C1"}


def test_stopping_the_helper_while_the_scores_are_still_being_sent() -> None:
    """A run that ends early (an error) while the scores go down the pipe: no thread traceback, no wait, the fit done here."""
    import threading
    import time

    X = scores(n=200_000, seed=8)  # 9.6 MB: more than the pipe holds while the helper is still importing scikit-learn
    errors: list[object] = []
    hook, threading.excepthook = threading.excepthook, errors.append
    try:
        helper = Sidecar(jobs=("fit",))
        assert helper.proc is not None
        pending = helper.start_fit(X, k_range=(2, 3), seed=8)
        started = time.monotonic()
        helper.close()
        took = time.monotonic() - started
        fitted = pending()
    finally:
        threading.excepthook = hook
    assert errors == []
    assert took < 1.0  # the helper is stopped at once, not after it has imported scikit-learn and read the scores
    assert helper.redone == ["fit"]
    np.testing.assert_array_equal(fitted.cluster_centers_, fit_cohorts(X, k_range=(2, 3), seed=8).cluster_centers_)
