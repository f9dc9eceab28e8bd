"""Golden output: a fresh `assign` of tests/golden/survey.csv must equal tests/golden/output/ file by file.

The survey (42 rows) covers rejected rows (an answer off the scale, an unknown role, an empty id), a
duplicate id (the later answer kept), a domain with too few answers (reassess), answers given as
labels and "don't know", a site that looks like a spreadsheet formula, a person who ticked no task,
all three languages and none, and every training format as a preference. It is planned twice: as
`assign` runs by default (output/), and with a start date and an --lms-users file that leaves one person
out (output-dated/: dated plans and sessions, calendar/*.ics and lms/moodle-users.csv). Any change to any
output file shows here as a diff; after an intended change regenerate both folders with

    .venv/bin/pytest tests/test_golden.py --update-golden

and commit it with the change. Not compared: run.json's seconds and library versions
(they differ between runs and machines, and are left out of the stored copy), run.json's creation, erasure and
sharing times (and the erasure days in the report), model/model.json's versions (and so its checksum), and the folders in a follow-up round's run.json
(only their names are compared). The report's SVG charts are compared byte for
byte: trainmatch writes them itself.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

GOLDEN = Path(__file__).parent / "golden"
RUNS = {  # golden folder: assign's options besides the survey, -o and --seed 0
    "output": [],
    "output-dated": ["--start", "2027-01-11", "--lms-users", GOLDEN / "lms-users.csv"],
}


def _stable(path: Path) -> bytes:
    """The file's bytes as compared: run.json without seconds and versions."""
    data = path.read_bytes()
    if path.name in ("run.json", "model.json"):
        doc = json.loads(data)
        doc.pop("seconds", None)
        doc.pop("versions", None)
        doc.pop("created", None)  # run.json: when the run was made
        for erasure in doc.get("erasures", []):  # when an erasure was made
            erasure.pop("at", None)
        if isinstance(doc.get("shared"), dict):  # when the shared copy was made
            doc["shared"].pop("at", None)
        doc.pop("created_by", None)  # model.json: names the trainmatch version
        model = doc.get("cohort_model")
        if isinstance(model, dict) and model.get("reused"):  # a follow-up round's: the previous run's folder
            model["reused"] = Path(model["reused"]).parent.name + "/" + Path(model["reused"]).name
        return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    if path.name == "report.html":  # an erased run's report says on which days people were erased
        return re.sub(rb"erased from this run on request \([0-9, -]+\)", b"erased from this run on request (DAYS)", data)
    if path.name == "checksum.sha256":  # of model.json, whose versions differ between machines
        return b"(checksum)"
    return data


def _files(folder: Path) -> dict[str, Path]:
    return {p.relative_to(folder).as_posix(): p for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("folder", sorted(RUNS))
def test_fresh_run_equals_the_golden_output(cli, tmp_path: Path, request: pytest.FixtureRequest, folder: str) -> None:
    out = tmp_path / "out"
    result = cli("assign", GOLDEN / "survey.csv", "-o", out, "--seed", "0", "--quiet", *RUNS[folder])
    assert result.exit_code == 0, result.output
    _compare(out, GOLDEN / folder, request)


def test_fresh_followup_round_equals_the_golden_output(cli, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """A follow-up round of output-dated's run: change.csv, effects.csv, modules.csv, leavers.csv, the rejects of
    the completions and ratings, and the next plans. tests/golden/followup/ was made once by `synth
    --followup-of` that run (seed 1, with the previous run's created time below); it stays fixed."""
    previous = tmp_path / "previous"
    result = cli("assign", GOLDEN / "survey.csv", "-o", previous, "--seed", "0", "--quiet", *RUNS["output-dated"])
    assert result.exit_code == 0, result.output
    record = json.loads((previous / "run.json").read_text(encoding="utf-8"))
    record["created"] = "2027-01-04T08:00:00+00:00"  # completions are timed after it; a fixed round date, not today
    (previous / "run.json").write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    inputs = GOLDEN / "followup"
    out = tmp_path / "out"
    result = cli("followup", previous, inputs / "survey2.csv", "-o", out, "--seed", "0", "--quiet", "--start", "2027-09-06",
                 "--completions", inputs / "completions.csv", "--feedback", inputs / "feedback.csv")
    assert result.exit_code == 0, result.output
    _compare(out, GOLDEN / "output-followup", request)


def test_shared_copy_equals_the_golden_output(cli, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """`share` of output-dated's run with a fixed test key: pseudonyms, merged sites, suppressed cells."""
    run = tmp_path / "run"
    result = cli("assign", GOLDEN / "survey.csv", "-o", run, "--seed", "0", "--quiet", *RUNS["output-dated"])
    assert result.exit_code == 0, result.output
    key = tmp_path / "test.key"
    key.write_text("ab" * 32 + "\n", encoding="ascii")  # a key for this test only
    key.chmod(0o600)
    out = tmp_path / "out"
    result = cli("share", run, "-o", out, "--key", key)
    assert result.exit_code == 0, result.output
    _compare(out, GOLDEN / "output-shared", request)


def test_erased_run_equals_the_golden_output(cli, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """`erase` of a support person (named in groups.csv and in other people's letters) and of both members of
    group S6-G01 (its sessions left empty and dropped, its calendar emptied) from output-dated's run, whose
    --lms-users file lacked g036: rows and files removed (their moodle-users.csv rows found by their courses),
    mentions replaced, counts, cohorts, calendars and report rebuilt."""
    run = tmp_path / "run"
    result = cli("assign", GOLDEN / "survey.csv", "-o", run, "--seed", "0", "--quiet", *RUNS["output-dated"])
    assert result.exit_code == 0, result.output
    result = cli("erase", run, "--id", "g007", "--id", "g001", "--id", "g028")
    assert result.exit_code == 0, result.output
    _compare(run, GOLDEN / "output-erased", request)


def _compare(out: Path, expected_folder: Path, request: pytest.FixtureRequest) -> None:
    """Every file of ``out`` equals its golden copy (or, with --update-golden, the golden folder is rewritten)."""
    fresh = _files(out)
    if request.config.getoption("--update-golden"):
        shutil.rmtree(expected_folder, ignore_errors=True)
        shutil.copytree(out, expected_folder)
        (expected_folder / "run.json").write_bytes(_stable(out / "run.json"))
        if (out / "model").is_dir():  # a shared copy has none
            (expected_folder / "model" / "model.json").write_bytes(_stable(out / "model" / "model.json"))
        pytest.skip(f"rewrote {expected_folder}; review `git diff` and commit it")
    expected = _files(expected_folder)
    assert sorted(fresh) == sorted(expected), "files added or missing"
    changed = [name for name in expected if _stable(fresh[name]) != _stable(expected[name])]
    assert not changed, f"outputs differ from {expected_folder.relative_to(GOLDEN.parent)}/: {changed}"
