"""`trainmatch cohorts`: fit, save, reuse and refuse models through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from trainmatch.cli import main

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data" / "survey.csv"


def run(*args: str):
    return CliRunner().invoke(main, list(args))


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("cohorts")
    out, model = base / "out", base / "model"
    result = run("cohorts", str(SAMPLE), "-o", str(out), "--save-model", str(model), "--seed", "3")
    assert result.exit_code == 0, result.output
    return out, model


def test_fit_writes_every_person_with_cohort_and_group(fitted: tuple[Path, Path]) -> None:
    out, _ = fitted
    people = pd.read_csv(out / "people.csv", dtype=str)
    survey = pd.read_csv(SAMPLE, dtype=str)
    assert sorted(people["person_id"]) == sorted(survey["person_id"])
    assert people["cohort"].str.fullmatch(r"C\d").all()
    assert people["group"].str.fullmatch(r"C\d-G\d\d").all()
    assert (people["group"].str[:2] == people["cohort"]).all()
    cohorts = pd.read_csv(out / "cohorts.csv")
    assert cohorts["size"].sum() == len(people)
    assert list(cohorts["cohort"]) == [f"C{i}" for i in range(1, len(cohorts) + 1)]
    # C1 needs the most support: its mean across domains is the lowest.
    means = cohorts.filter(like="mean_").mean(axis=1)
    assert means.iloc[0] == means.min()
    groups = pd.read_csv(out / "groups.csv")
    assert groups["members"].sum() == len(people)


def test_fit_report_lists_every_k(tmp_path: Path) -> None:
    result = run("cohorts", str(SAMPLE), "-o", str(tmp_path / "o"), "--k", "2-6")
    assert result.exit_code == 0, result.output
    for k in range(2, 7):
        assert f"\n    {k} " in result.output or f"\n*   {k} " in result.output
    assert "Chosen: k =" in result.output


def test_edge_of_range_is_warned(tmp_path: Path) -> None:
    result = run("cohorts", str(SAMPLE), "-o", str(tmp_path / "o"), "--k", "2-3")
    assert result.exit_code == 0, result.output
    assert "Warning:" in result.output and "edge" in result.output


def test_saved_model_is_readable_json_without_people(fitted: tuple[Path, Path]) -> None:
    _, model = fitted
    text = (model / "model.json").read_text(encoding="utf-8")
    doc = json.loads(text)
    assert doc["programme_fingerprint"]
    ids = pd.read_csv(SAMPLE, dtype=str)["person_id"]
    assert not any(f'"{pid}"' in text for pid in ids.head(50))


def test_reusing_the_model_gives_the_same_cohorts(fitted: tuple[Path, Path], tmp_path: Path) -> None:
    out, model = fitted
    result = run("cohorts", str(SAMPLE), "-o", str(tmp_path / "again"), "--model", str(model))
    assert result.exit_code == 0, result.output
    assert "saved model" in result.output
    before = pd.read_csv(out / "people.csv", dtype=str)
    after = pd.read_csv(tmp_path / "again" / "people.csv", dtype=str)
    assert before["cohort"].tolist() == after["cohort"].tolist()


def test_same_seed_same_files(tmp_path: Path) -> None:
    for name in ("a", "b"):
        assert run("cohorts", str(SAMPLE), "-o", str(tmp_path / name), "--seed", "5").exit_code == 0
    for f in ("people.csv", "cohorts.csv", "groups.csv"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()


def test_tampered_model_is_refused(fitted: tuple[Path, Path], tmp_path: Path) -> None:
    _, model = fitted
    bad = tmp_path / "bad"
    bad.mkdir()
    for f in model.iterdir():
        (bad / f.name).write_bytes(f.read_bytes())
    doc = (bad / "model.json").read_text(encoding="utf-8").replace('"k": ', '"k":  ', 1)
    (bad / "model.json").write_text(doc, encoding="utf-8")
    result = run("cohorts", str(SAMPLE), "-o", str(tmp_path / "o"), "--model", str(bad))
    assert result.exit_code == 1
    assert "was modified" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "o").exists()


def test_model_for_another_programme_is_refused(fitted: tuple[Path, Path], tmp_path: Path) -> None:
    _, model = fitted
    prog = tmp_path / "prog"
    assert run("init", str(prog)).exit_code == 0
    toml = prog / "programme.toml"
    toml.write_text(toml.read_text(encoding="utf-8").replace('version = "2026.1"', 'version = "2026.2"'), encoding="utf-8")
    result = run("cohorts", str(SAMPLE), "-o", str(tmp_path / "o"), "--model", str(model), "--programme", str(prog))
    assert result.exit_code == 1
    assert "was made for programme" in result.output


def test_folder_that_is_not_a_model(tmp_path: Path) -> None:
    result = run("cohorts", str(SAMPLE), "-o", str(tmp_path / "o"), "--model", str(tmp_path))
    assert result.exit_code == 1
    assert "is not a trainmatch model folder" in result.output


@pytest.mark.parametrize("k", ["8-2", "x", "1-3", "2-"])
def test_malformed_k_is_a_usage_error(k: str, tmp_path: Path) -> None:
    result = run("cohorts", str(SAMPLE), "-o", str(tmp_path / "o"), "--k", k)
    assert result.exit_code == 2
    assert "--k" in result.output and "Traceback" not in result.output


def test_model_and_save_model_together_is_a_usage_error(tmp_path: Path) -> None:
    result = run("cohorts", str(SAMPLE), "-o", str(tmp_path / "o"), "--model", "a", "--save-model", "b")
    assert result.exit_code == 2


def test_too_few_people(tmp_path: Path) -> None:
    small = tmp_path / "small.csv"
    pd.read_csv(SAMPLE, dtype=str, keep_default_na=False).head(3).to_csv(small, index=False)
    result = run("cohorts", str(small), "-o", str(tmp_path / "o"), "--k", "4-6")
    assert result.exit_code == 1
    assert "fewer than the smallest number of cohorts" in result.output
    assert not (tmp_path / "o").exists()


def test_identical_profiles(tmp_path: Path) -> None:
    frame = pd.read_csv(SAMPLE, dtype=str, keep_default_na=False).head(40)
    items = [c for c in frame.columns if c[:-1] in ("ict", "ehr", "rem", "eserv", "sec", "data")]
    frame[items] = "3"
    path = tmp_path / "same.csv"
    frame.to_csv(path, index=False)
    result = run("cohorts", str(path), "-o", str(tmp_path / "o"))
    assert result.exit_code == 1
    assert "same domain-score profile" in result.output


def test_domain_with_no_scores(tmp_path: Path) -> None:
    frame = pd.read_csv(SAMPLE, dtype=str, keep_default_na=False)
    frame[[f"rem{i}" for i in range(1, 6)]] = ""
    path = tmp_path / "norem.csv"
    frame.to_csv(path, index=False)
    result = run("cohorts", str(path), "-o", str(tmp_path / "o"))
    assert result.exit_code == 1
    assert "Remote care and counselling" in result.output and "no scores at all" in result.output


def test_existing_output_needs_force(fitted: tuple[Path, Path]) -> None:
    out, _ = fitted
    result = run("cohorts", str(SAMPLE), "-o", str(out))
    assert result.exit_code == 2 and "--force" in result.output
    assert run("cohorts", str(SAMPLE), "-o", str(out), "--force").exit_code == 0


def test_shipped_example_model_fits_the_default_programme(tmp_path: Path) -> None:
    # models/sample is refitted with the README's command whenever the default programme changes.
    model = SAMPLE.parent.parent / "models" / "sample"
    result = run("cohorts", str(SAMPLE), "-o", str(tmp_path / "o"), "--model", str(model))
    assert result.exit_code == 0, result.output
    # The sample survey is a continuum (a general competence factor), so the silhouette picks k = 2: bands, not types.
    assert pd.read_csv(tmp_path / "o" / "people.csv", dtype=str)["cohort"].nunique() >= 2


# --------------------------------------------------------------------------- honest cohorts


@pytest.fixture(scope="module")
def continuum(tmp_path_factory) -> Path:
    """A synthetic survey of the default structure (one general competence factor): no natural groups."""
    path = tmp_path_factory.mktemp("continuum") / "survey.csv"
    assert run("synth", "--n", "1500", "--seed", "8", "-o", str(path)).exit_code == 0
    return path


def test_bands_along_a_continuum_are_said_plainly_in_stderr_report_and_run_json(continuum: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run("assign", str(continuum), "-o", str(out), "--k", "4", "--per-person", "none")
    assert result.exit_code == 0, result.output
    assert "Warning: The survey shows no natural groups: people are hardly closer to their own cohort" in result.output
    report = (out / "report.html").read_text(encoding="utf-8")
    assert "The 4 cohorts are bands along overall competence (C1 lowest)" in report
    assert "How to read these cohorts." in report
    assert "Stability of the chosen k: mean adjusted Rand index <strong>" in report
    model = json.loads((out / "run.json").read_text(encoding="utf-8"))["cohort_model"]
    assert 0 < model["stability_ari"] <= 1 and model["silhouette"] < 0.25 and model["no_natural_groups"] is True
    described = pd.read_csv(out / "cohorts.csv")["description"]
    assert not described.str.contains("gap").any()


def test_cohorts_prints_the_stability_next_to_the_silhouette(continuum: Path, tmp_path: Path) -> None:
    result = run("cohorts", str(continuum), "-o", str(tmp_path / "o"), "--k", "2-5")
    assert result.exit_code == 0, result.output
    assert "Stability: mean adjusted Rand index" in result.output
    assert "over 10 bootstrap refits on the sample" in result.output


def test_cohorts_with_every_row_rejected_lists_the_problems(cli, tmp_path):
    """Like score and assign, cohorts shows what was wrong with the rows, not only that none was left."""
    import csv

    sample = Path(__file__).resolve().parent.parent / "sample_data" / "survey.csv"
    header, *rows = list(csv.reader(sample.open(encoding="utf-8")))[:3]
    for row in rows:
        row[header.index("role")] = "astronaut"
    bad = tmp_path / "bad.csv"
    with bad.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows([header, *rows])
    result = cli("cohorts", bad, "-o", tmp_path / "out")
    assert result.exit_code == 1
    assert "All 2 rows were rejected, so there is nothing to group" in result.output
    assert "astronaut" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()
