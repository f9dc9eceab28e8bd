"""`trainmatch explain`: one person's facts, fired rules and path, the same as `assign` gives them."""

from __future__ import annotations

import csv
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from click.testing import CliRunner, Result

from trainmatch.cli import main

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data" / "survey.csv"
SEED = ("--seed", "4", "--k", "2-6")


def run(*args: object) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def read_table(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def survey(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """The sample with a row rejected for a bad answer, and a person who answered twice (the later row counts)."""
    with open(SAMPLE, encoding="utf-8", newline="") as fh:
        header, *rows = list(csv.reader(fh))
    col = {name: j for j, name in enumerate(header)}
    rows[9][col["ict1"]] = "Sometimes"
    again = list(rows[20])
    again[col["submitted_at"]] = "2026-12-31 23:59:00"  # later than every sample submission
    rows.append(again)
    path = tmp_path_factory.mktemp("explain") / "survey.csv"
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return SimpleNamespace(path=path, rejected=rows[9][col["person_id"]], twice=rows[20][col["person_id"]])


@pytest.fixture(scope="module")
def assigned(survey: SimpleNamespace, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tables of an `assign` run with the same seed."""
    out = tmp_path_factory.mktemp("assigned") / "out"
    result = run("assign", survey.path, "-o", out, "--per-person", "none", "--no-xlsx", *SEED)
    assert result.exit_code == 0, result.output
    return out


def test_explain_prints_facts_rules_and_the_path_that_assign_planned(survey: SimpleNamespace, assigned: Path) -> None:
    plans = read_table(assigned / "plans.csv")
    deferred = read_table(assigned / "deferred.csv")
    people = read_table(assigned / "people.csv").set_index("person_id")
    # Someone with a long path and something deferred.
    counts = plans["person_id"].value_counts()
    pid = next(p for p in counts.index if counts[p] >= 3 and p in set(deferred["person_id"]))
    result = run("explain", survey.path, "--person", pid, *SEED)
    assert result.exit_code == 0, result.output
    out = result.output
    assert out.startswith(f"Person {pid}\n")
    person = people.loc[pid]
    assert f"Site: {person['site']}" in out
    assert f"cohort: {person['cohort']}" in out and f"group: {person['group']}" in out
    for domain in ("ICT basics", "EHR documentation", "Remote care and counselling", "Information security and ethics"):
        assert f"  - {domain}: " in out
    assert "Rules that fired:" in out and "Training path:" in out and "Deferred" in out
    mine = plans[plans["person_id"] == pid]
    for rule_ids in mine["rule_ids"]:
        for rule in rule_ids.split(";"):
            assert f"  - {rule} (" in out, rule  # every rule behind a step is listed as fired
    path = out[out.index("Training path:") :]
    positions = [path.index(f"  {step}. {title} [") for step, title in zip(mine["step"], mine["title"])]
    assert positions == sorted(positions)  # the steps of `assign`, in its order
    for reason in mine["reason"]:
        assert reason in path
    for module in deferred.loc[deferred["person_id"] == pid, "module"]:
        assert module in out[out.index("Deferred") :]


def test_a_later_submission_is_explained(survey: SimpleNamespace) -> None:
    result = run("explain", survey.path, "--person", survey.twice, *SEED)
    assert result.exit_code == 0, result.output
    assert f"Person {survey.twice}" in result.output
    # Unless duplicates are rejected: then both rows are.
    result = run("explain", survey.path, "--person", survey.twice, "--duplicates", "reject", *SEED)
    assert result.exit_code == 1
    assert f"Rows 21, 301 (person {survey.twice}) were rejected" in result.output and "same id appears" in result.output


def test_unknown_id_suggests_the_closest(survey: SimpleNamespace) -> None:
    result = run("explain", survey.path, "--person", "00O123", *SEED)
    assert result.exit_code == 1
    assert "Unknown person_id '00O123'. Did you mean '000123'?" in result.output
    assert "Traceback" not in result.output


def test_rejected_row_prints_its_reasons(survey: SimpleNamespace) -> None:
    result = run("explain", survey.path, "--person", survey.rejected, *SEED)
    assert result.exit_code == 1
    out = result.output
    assert f"Row 10 (person {survey.rejected}) was rejected, so there is no plan" in out
    assert "column 'ict1', value 'Sometimes': Unknown answer" in out
    assert "Traceback" not in out and "Internal error" not in out


@pytest.mark.parametrize(
    "args, words",
    [
        (("--person", "000001", "--save-model", "m"), "explain does not save models"),
        (("--person", "  "), "--person"),
        (("--person", "000001", "--k", "9-2"), "--k"),
    ],
)
def test_wrong_invocations_exit_2(survey: SimpleNamespace, tmp_path: Path, args: tuple[str, ...], words: str) -> None:
    result = run("explain", survey.path, *(str(tmp_path / "m") if a == "m" else a for a in args))
    assert result.exit_code == 2, result.output
    assert words in result.output
    assert list(tmp_path.iterdir()) == []  # no model saved
