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


GOLDEN_SURVEY = __import__("pathlib").Path(__file__).resolve().parent / "golden" / "survey.csv"


def _folder_bytes(folder) -> dict[str, bytes]:
    import json

    out = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            if path.name == "run.json":
                doc = json.loads(data)
                doc.pop("seconds")
                doc.pop("created")  # when the run was made (a follow-up round checks completions against it)
                data = json.dumps(doc, sort_keys=True).encode()
            out[path.relative_to(folder).as_posix()] = data
    return out


def test_the_cli_and_the_library_call_write_the_same_folder(tmp_path, cli) -> None:
    """`trainmatch assign` is `trainmatch.assign`: byte-identical files, run.json's seconds aside."""
    result = cli("assign", GOLDEN_SURVEY, "-o", tmp_path / "cli", "--seed", "3", "--lang", "fi", "--quiet")
    assert result.exit_code == 0, result.output
    run = trainmatch.assign(GOLDEN_SURVEY, tmp_path / "lib", seed=3, lang="fi")
    assert _folder_bytes(tmp_path / "cli") == _folder_bytes(tmp_path / "lib")
    assert run.counts["accepted"] + run.counts["rejected"] == run.counts["rows_read"] == 42
    assert len(run.people) == run.counts["accepted"] and len(run.rejects["row"].unique()) == run.counts["rejected"]
    assert list(run.plans.columns)[:4] == ["person_id", "step", "objective", "module"]


def test_library_errors_are_the_library_s_own(tmp_path) -> None:
    """A bad call raises UsageError, a bad file DataError/SurveyError: never a click exception or a traceback of ours."""
    import pytest

    with pytest.raises(trainmatch.UsageError, match="either --model"):
        trainmatch.assign(GOLDEN_SURVEY, tmp_path / "a", model=tmp_path, save_model=tmp_path / "m")
    with pytest.raises(trainmatch.UsageError, match="per_person"):
        trainmatch.assign(GOLDEN_SURVEY, tmp_path / "b", per_person="pdf")
    with pytest.raises(trainmatch.TrainmatchError, match="strict"):
        trainmatch.assign(GOLDEN_SURVEY, tmp_path / "c", strict=True)
    assert not (tmp_path / "c").exists()  # nothing written
    (tmp_path / "empty.csv").write_text("", encoding="utf-8")
    with pytest.raises(trainmatch.TrainmatchError, match="empty.csv"):
        trainmatch.assign(tmp_path / "empty.csv", tmp_path / "d")


def test_cli_commands_are_thin_adapters() -> None:
    """Each command parses options, calls its job and prints: assign in at most 40 lines, the others 30."""
    import ast
    import inspect

    from trainmatch import cli

    tree = ast.parse(inspect.getsource(cli))
    bodies = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name in ("assign", "validate", "score", "cohorts", "explain", "followup"):
            body = node.body[1:] if isinstance(node.body[0], ast.Expr) else node.body  # without the docstring
            bodies[node.name] = body[-1].end_lineno - body[0].lineno + 1
    assert set(bodies) == {"assign", "validate", "score", "cohorts", "explain", "followup"}
    assert bodies.pop("assign") <= 40
    assert max(bodies.values()) <= 30, bodies
