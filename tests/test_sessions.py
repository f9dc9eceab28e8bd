"""Group sessions planned per training group: the issue's figures on `synth --n 5000 --seed 3`, the rules of
min_attendees (join, pool, self-paced, below the minimum with its reason), and groups formed by shared needs."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from trainmatch.cli import main

FIGURES = Path(__file__).parent.parent / "benchmarks" / "session_figures.py"


def read_table(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def synth5000(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sessions")
    runner = CliRunner()
    for args in (["synth", "--n", "5000", "--seed", "3", "-o", folder / "s.csv"],
                 ["assign", folder / "s.csv", "-o", folder / "out", "-q", "--no-xlsx", "--per-person", "none",
                  "--start", "2027-01-11"]):
        result = runner.invoke(main, [str(a) for a in args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
    return folder / "out"


def test_figures_on_synth_5000_seed_3(synth5000):
    spec = importlib.util.spec_from_file_location("session_figures", FIGURES)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fig = module.figures(synth5000)
    assert fig["group_steps"] > 3000
    assert fig["viable_share"] >= 0.9
    assert fig["below_minimum_without_reason"] == 0
    assert fig["group_steps_without_session"] == 0
    assert fig["grouped_without_own_session"] == 0
    assert fig["single_attendee_sessions"] == 0


def test_groups_are_one_site_and_share_needs(synth5000):
    people = read_table(synth5000 / "people.csv")
    plans = read_table(synth5000 / "plans.csv")
    grouped = people[people["group"] != ""]
    assert (grouped.groupby("group")["site"].nunique() == 1).all()
    # members of a group share at least one group-format objective with most of their group
    own = plans[(plans["session_id"] != "") & (plans["session_note"] == "")]
    per_group = own.groupby(["group", "objective"])["person_id"].nunique()
    size = grouped.groupby("group").size()
    biggest = per_group.groupby(level="group").max()
    assert (biggest / size.reindex(biggest.index)).median() >= 0.75


def test_sessions_csv_matches_the_plans(synth5000):
    sessions = read_table(synth5000 / "sessions.csv")
    plans = read_table(synth5000 / "plans.csv")
    assert list(sessions.columns) == ["session_id", "group", "site", "objective", "module", "format", "hours", "attendees",
                                      "reason", "start", "end", "timezone", "status"]
    assert sessions["session_id"].is_unique
    counted = plans[plans["session_id"] != ""].groupby("session_id").size()
    assert (sessions.set_index("session_id")["attendees"].astype(int) == counted.reindex(sessions["session_id"]).to_numpy()).all()
    # one module per session, the session's own
    joined = plans[plans["session_id"] != ""].merge(sessions, on="session_id", suffixes=("", "_s"))
    assert (joined["module"] == joined["module_s"]).all() and (joined["group"] == joined["group_s"]).all()
    assert set(sessions["status"]) <= {"scheduled", "unscheduled"}
    assert (sessions.loc[sessions["status"] == "unscheduled", "reason"] != "").all()


def _plan(people: pd.DataFrame, steps: pd.DataFrame, programme, catalogue, budget=None):
    from trainmatch.sessions import plan_sessions

    budget = np.full(len(people), 100.0) if budget is None else np.asarray(budget, dtype=float)
    return plan_sessions(people, steps, catalogue, programme, budget)


def _people(sites: list[str]) -> pd.DataFrame:
    n = len(sites)
    return pd.DataFrame({"person_id": [f"p{i:02d}" for i in range(n)], "site": sites, "cohort": ["C1"] * n,
                         "language": ["en"] * n, "formats": [""] * n})


def _steps(rows: list[tuple[str, str]], catalogue) -> pd.DataFrame:
    """Steps (person_id, module) with the columns the sessions stage reads."""
    mods = {m.id: m for m in catalogue.modules}
    return pd.DataFrame({
        "person_id": [p for p, _ in rows],
        "step": np.arange(1, len(rows) + 1, dtype=np.int16),
        "objective": [mods[m].objective for _, m in rows],
        "module": pd.Categorical([m for _, m in rows], categories=list(catalogue.module_ids)),
        "title": [m for _, m in rows],
        "format": [mods[m].format for _, m in rows],
        "hours": [mods[m].hours for _, m in rows],
        "group": [""] * len(rows),
    })


@pytest.fixture(scope="module")
def plan_parts():
    from trainmatch.catalogue import load_catalogue
    from trainmatch.programme import load_programme

    programme = load_programme()
    return programme, load_catalogue(programme)


def test_a_need_too_few_share_at_the_site_goes_self_paced_and_says_so(plan_parts):
    programme, catalogue = plan_parts
    people = _people(["A"] * 6)
    rows = [(f"p{i:02d}", "ehr.intermediate.workshop") for i in range(4)] + [("p04", "security.advanced.workshop")]
    result = _plan(people, _steps(rows, catalogue), programme, catalogue)
    alone = result.steps[result.steps["person_id"] == "p04"].iloc[0]
    assert alone["session_id"] == "" and alone["group"] == ""
    assert alone["format"] not in {f.id for f in programme.formats if f.group}
    assert alone["session_note"] == "self-paced instead of a workshop: fewer than 4 people at the site need it"
    assert list(result.sessions["attendees"]) == [4]


def _catalogue_with(catalogue, objective: str, keep_individual: bool, individual_hours: float | None = None):
    """The catalogue with ``objective``'s self-paced modules removed, or made to last ``individual_hours``."""
    from dataclasses import replace

    modules = []
    for m in catalogue.modules:
        if m.objective == objective and not m.group:
            if not keep_individual:
                continue
            m = replace(m, hours=individual_hours)
        modules.append(m)
    objectives = {o: replace(obj, modules=tuple(m for m in modules if m.objective == o))
                  for o, obj in catalogue.objectives.items()}
    return replace(catalogue, modules=tuple(modules), objectives=objectives)


@pytest.mark.parametrize("keep_individual, why", [
    (False, "only 2 at the site need it and it has no self-paced format"),
    (True, "only 2 at the site need it and the self-paced format does not fit their hours"),
])
def test_a_need_that_cannot_go_self_paced_stays_a_small_session_with_its_reason(plan_parts, keep_individual, why):
    programme, catalogue = plan_parts
    catalogue = _catalogue_with(catalogue, "ehr.intermediate", keep_individual, individual_hours=9.0)
    people = _people(["A"] * 2)
    rows = [("p00", "ehr.intermediate.workshop"), ("p01", "ehr.intermediate.workshop")]
    result = _plan(people, _steps(rows, catalogue), programme, catalogue, budget=[3.0, 3.0])
    assert result.sessions["attendees"].tolist() == [2]
    assert result.sessions["reason"].tolist() == [f"below the minimum of 4: {why}"]
    assert set(result.steps["session_note"]) == {f"session below the minimum of 4: {why}"}


def test_small_pieces_join_a_viable_session_of_another_group_at_the_site(plan_parts):
    from trainmatch.sessions import NOTE_JOINED

    programme, catalogue = plan_parts
    # 8 people share two needs (their own group); 2 more need only one of them: they are grouped apart
    people = _people(["A"] * 10)
    rows = [(f"p{i:02d}", m) for i in range(8) for m in ("ehr.intermediate.workshop", "security.advanced.workshop")]
    rows += [(f"p{i:02d}", "ehr.intermediate.workshop") for i in (8, 9)]
    rows += [(f"p{i:02d}", "data_use.advanced.workshop") for i in (8, 9)]
    result = _plan(people, _steps(rows, catalogue), programme, catalogue)
    steps = result.steps
    ehr = steps[steps["module"] == "ehr.intermediate.workshop"]
    assert ehr["session_id"].nunique() == 1  # one session of 10, not 8 + 2
    host = ehr["group"].iloc[0]
    notes = set(steps.loc[steps["person_id"].isin(["p08", "p09"]) & (steps["module"] == "ehr.intermediate.workshop"),
                          "session_note"])
    own_group = result.people.set_index("person_id").loc["p08", "group"]
    if own_group != host:
        assert notes == {NOTE_JOINED.format(group=host)}
    session = result.sessions.set_index("session_id").loc[ehr["session_id"].iloc[0]]
    assert session["attendees"] == 10


def test_a_group_larger_than_the_capacity_gets_several_sessions(plan_parts):
    programme, catalogue = plan_parts
    n = programme.group_max_size + 6
    people = _people(["A"] * n)
    rows = [(f"p{i:02d}", "ehr.intermediate.workshop") for i in range(n)]
    result = _plan(people, _steps(rows, catalogue), programme, catalogue)
    sizes = sorted(result.sessions["attendees"].tolist())
    assert sum(sizes) == n and max(sizes) <= programme.group_max_size and min(sizes) >= programme.min_attendees


def test_people_without_group_formats_are_in_no_group(plan_parts):
    programme, catalogue = plan_parts
    people = _people(["A"] * 5)
    rows = [(f"p{i:02d}", "ehr.intermediate.elearning") for i in range(5)]
    result = _plan(people, _steps(rows, catalogue), programme, catalogue)
    assert set(result.people["group"]) == {""} and result.sessions.empty and result.groups.empty


def test_support_persons_are_at_the_site_advanced_in_the_main_domains_and_willing(synth5000):
    people = read_table(synth5000 / "people.csv").set_index("person_id")
    groups = read_table(synth5000 / "groups.csv")
    named = groups[groups["support_1"] != ""]
    assert len(named) >= 0.9 * len(groups)
    for g in named.itertuples():
        for pid in {g.support_1, g.support_2} - {""}:
            assert people.loc[pid, "site"] == g.site
            assert people.loc[pid, "support"] == "yes"  # synth asks the question: only those who said yes
            for d in g.main_domains.split(";"):
                assert people.loc[pid, f"level_{d}"] in ("advanced", "highly_specialised")
            assert g.group in people.loc[pid, "supports"].split(";")
    members = people[people["group"] != ""]
    first = groups.set_index("group")["support_1"]
    assert (members["support_person"] == first.reindex(members["group"]).to_numpy()).all()


def test_letters_name_the_support_person_by_id_and_role_and_tell_support_persons(tmp_path):
    from trainmatch.letters import plan_filename

    sample = Path(__file__).resolve().parent.parent / "sample_data" / "survey.csv"
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["assign", str(sample), "-o", str(out), "--k", "2-3", "--seed", "1", "--no-xlsx", "-q",
                                       "--lang", "en"])
    assert result.exit_code == 0, result.output
    people = read_table(out / "people.csv").set_index("person_id")
    member = people[(people["support_person"] != "") & (people["language"] == "en")].index[0]
    helper = people.loc[member, "support_person"]
    html = (out / "plans" / plan_filename(member)).read_text(encoding="utf-8")
    assert f"Your support person in your training group is {helper} (" in html
    supporter = people[(people["supports"] != "") & (people["language"] == "en")].index[0]
    html = (out / "plans" / plan_filename(supporter)).read_text(encoding="utf-8")
    assert "You are a support person for the training groups " + people.loc[supporter, "supports"].replace(";", ", ") in html


def test_a_group_nobody_at_the_site_can_support_is_listed_in_the_report(plan_parts):
    from trainmatch.report import sessions_section

    programme, catalogue = plan_parts
    people = _people(["A"] * 5)
    for d in programme.domain_ids:
        people[f"level_{d}"] = pd.array([1] * 5, dtype="Int8")
    rows = [(f"p{i:02d}", "ehr.intermediate.workshop") for i in range(5)]
    result = _plan(people, _steps(rows, catalogue), programme, catalogue)
    assert result.groups["support_1"].tolist() == [""] and result.groups["main_domains"].tolist() == ["ehr"]
    section = sessions_section(result.sessions.assign(status="unscheduled", start=""), result.steps, result.groups, programme)
    assert ("Groups without a support person", "1") in section["summary"]
    assert section["no_support"]["rows"] == [[result.groups["group"].iloc[0], "A", "ehr"]]
