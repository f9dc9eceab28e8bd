"""Baselines and caps by role (roles.csv): what everyone in a role needs, and the most a task may ask of it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import SURVEYS
from trainmatch.errors import ProgrammeError
from trainmatch.programme import load_programme
from trainmatch.scoring import required_levels


def people_frame(programme, role: str, tasks: tuple[str, ...] = ()) -> pd.DataFrame:
    frame = {"role": [role]}
    for t in programme.task_ids:
        frame[f"task_{t}"] = [t in tasks]
    return pd.DataFrame(frame)


def required_of(programme, role: str, tasks: tuple[str, ...] = ()) -> dict[str, str]:
    req = required_levels(people_frame(programme, role, tasks), programme)[0]
    return {d: programme.level_ids[int(r) - 1] if r else "-" for d, r in zip(programme.domain_ids, req)}


def test_someone_who_ticked_no_task_still_needs_their_roles_baseline(default_programme):
    req = required_of(default_programme, "practical_nurse")
    assert req["ict_basics"] == "intermediate"
    assert req["security"] == "intermediate"  # everyone who handles client data
    assert req["remote_care"] == "-"


def test_a_ward_clerk_is_not_asked_to_design_care_pathways(default_programme):
    req = required_of(default_programme, "secretary", ("digital_care_pathways",))
    assert req["remote_care"] == "intermediate"  # the task says highly specialised; the role's cap holds
    nurse = required_of(default_programme, "nurse", ("digital_care_pathways",))
    assert nurse["remote_care"] == "highly_specialised"
    practical = required_of(default_programme, "practical_nurse", ("digital_care_pathways",))
    assert practical["remote_care"] == "advanced"


def test_required_level_is_the_cap_of_the_baseline_and_the_tasks(default_programme):
    """min(cap, max(baseline, max over tasks)) for every role and every single task."""
    p = default_programme
    base, cap = (np.asarray(m) for m in p.role_matrices())
    tasks = np.asarray(p.requirement_matrix())
    for r, role in enumerate(p.roles):
        for t, task in enumerate(p.tasks):
            got = required_levels(people_frame(p, role.id, (task.id,)), p)[0]
            assert list(got) == list(np.minimum(cap[r], np.maximum(base[r], tasks[t]))), (role.id, task.id)


def test_a_programme_without_roles_csv_has_no_baselines_or_caps(tmp_path, cli):
    folder = tmp_path / "p"
    assert cli("init", folder).exit_code == 0
    (folder / "roles.csv").unlink()
    p = load_programme(folder)
    assert set(required_of(p, "nurse").values()) == {"-"}
    assert required_of(p, "secretary", ("digital_care_pathways",))["remote_care"] == "highly_specialised"


def edited_roles(tmp_path: Path, cli, old: str, new: str) -> Path:
    folder = tmp_path / "p"
    assert cli("init", folder).exit_code == 0
    path = folder / "roles.csv"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return folder


@pytest.mark.parametrize("old, new, row, column, value, words", [
    ("\nsecretary,", "\nward_clerk,", 8, "role_id", "ward_clerk", "unknown role"),
    ("\nnurse,intermediate,intermediate,-,-,intermediate,-,-,-,-,-,-,advanced",
     "\nnurse,intermediate,intermediate,-,-,intermediate,-,foundation,-,-,-,-,advanced",
     1, "cap_ict_basics", "foundation", "cap is below the baseline"),
    ("\nmanager,intermediate", "\nmanager,expert", 7, "baseline_ict_basics", "expert", "unknown level"),
])
def test_a_bad_roles_table_is_named_before_any_survey_is_read(tmp_path, cli, old, new, row, column, value, words):
    folder = edited_roles(tmp_path, cli, old, new)
    with pytest.raises(ProgrammeError) as info:
        load_programme(folder)
    [problem] = info.value.problems
    assert (Path(problem.file).name, problem.row, problem.column, problem.value) == ("roles.csv", row, column, value)
    # The survey is an empty file: had it been read first, the message would be about it.
    for command in ("validate", "assign"):
        args = [command, SURVEYS / "empty.csv", "--programme", folder]
        if command == "assign":
            args += ["-o", tmp_path / "out"]
        result = cli(*args)
        assert result.exit_code == 1, result.output
        assert f"roles.csv, row {row}, column '{column}'" in result.output
        assert repr(value) in result.output and words in result.output
        assert "empty.csv" not in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()
