"""Rules: the cell grammar, strict loading, and vectorised evaluation that matches a row-by-row reading."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest

from trainmatch.catalogue import load_catalogue
from trainmatch.errors import ProgrammeError
from trainmatch.rules import (AnyOf, AnyValue, Between, CellError, Compare, Flag, Not, OneOf, build_needs, evaluate,
                              load_rules, parse_test)
from trainmatch.programme import load_programme

from test_paths import make_people

COLUMNS = "rule_id,domain,level,score,required,gap,task,role,cohort,missing,objective,priority,note\n"


@pytest.fixture(scope="module")
def programme():
    return load_programme()


@pytest.fixture(scope="module")
def catalogue(programme):
    return load_catalogue(programme)


def with_rules(programme, text: str):
    files = dict(programme.files)
    files["rules.csv"] = text.encode()
    return dataclasses.replace(programme, files=files)


@pytest.mark.parametrize("column,cell,expected", [
    ("gap", "", AnyValue()),
    ("gap", "-", AnyValue()),
    ("score", "< 2.5", Compare("<", 2.5)),
    ("score", "<=2", Compare("<=", 2.0)),
    ("gap", ">= 1", Compare(">=", 1.0)),
    ("gap", "> 0", Compare(">", 0.0)),
    ("gap", "= 3", Compare("=", 3.0)),
    ("gap", "3", Compare("=", 3.0)),
    ("gap", "< -1", Compare("<", -1.0)),
    ("score", "[2..3]", Between(2.0, 3.0, True, True)),
    ("score", "]2..3[", Between(2.0, 3.0, False, False)),
    ("score", "[1..3[", Between(1.0, 3.0, True, False)),
    ("score", "(1.5..3]", Between(1.5, 3.0, False, True)),
    ("level", "foundation,intermediate", AnyOf((Compare("=", 1.0), Compare("=", 2.0)))),
    ("level", "not(foundation, intermediate)", Not(AnyOf((Compare("=", 1.0), Compare("=", 2.0))))),
    ("required", ">= advanced", Compare(">=", 3.0)),
    ("required", "none", Compare("=", 0.0)),
    ("level", "[foundation..advanced[", Between(1.0, 3.0, True, False)),
    ("role", "nurse,physician", OneOf(("nurse", "physician"))),
    ("role", "not(nurse)", Not(OneOf(("nurse",)))),
    ("role", '"nurse"', OneOf(("nurse",))),
    ("task", "video_visits;chat_service", OneOf(("video_visits", "chat_service"))),
    ("domain", "remote_care", OneOf(("remote_care",))),
    ("cohort", "C1,C2-G03", OneOf(("C1", "C2-G03"))),
    ("missing", "true", Flag(True)),
    ("missing", "FALSE", Flag(False)),
])
def test_cell_grammar(programme, column, cell, expected):
    assert parse_test(column, cell, programme) == expected


@pytest.mark.parametrize("column,cell,message", [
    ("score", "< two", "'two' is not a number"),
    ("level", "< expert", "'expert' is not a level"),
    ("level", "intermediat", "did you mean 'intermediate'?"),
    ("score", "[1..", "expected a value at character 5, found the end of the cell"),
    ("score", "[3..1]", "the range starts above its end"),
    ("score", "[1..2", "expected ']', '[' or ')' to close the range"),
    ("gap", "1 2", "unexpected '2' at character 3"),
    ("role", "nurs", "'nurs' is not a known role (did you mean 'nurse'?)"),
    ("role", "> nurse", "comparisons and ranges are not allowed in the role column"),
    ("task", "video_visit", "did you mean 'video_visits'?"),
    ("missing", "maybe", "'maybe' is not true or false"),
    ("score", "__import__('os').system('x')", "unexpected character '.' at character 17"),
    ("score", "1; import os", "unexpected 'os' at character 11"),
    ("score", "1, import", "'import' is not a number"),
    ("gap", "not(1", "expected ')' to close not("),
    ("gap", "$1", "unexpected character '$'"),
])
def test_invalid_cells_say_what_is_wrong(programme, column, cell, message):
    with pytest.raises(CellError) as info:
        parse_test(column, cell, programme)
    assert message in str(info.value)


def test_default_rules_load_and_name_catalogue_objectives(programme, catalogue):
    rules = load_rules(programme, catalogue)
    assert len(rules.rules) >= 30
    assert all(r.objective in catalogue.objectives for r in rules.rules)
    assert any(r.conditions.get("missing") == Flag(True) and r.objective == "self_assessment" for r in rules.rules)


def test_invalid_rules_file_lists_every_problem(programme, catalogue):
    text = COLUMNS + (
        "A,remote_care,-,-,-,>= x,-,-,-,-,remote_care.advanced,1,\n"
        "A,-,-,-,-,-,-,nurse,-,-,remote_care.advnced,1,\n"
        "C,-,-,-,-,-,-,-,-,maybe,self_assessment,0,\n"
    )
    with pytest.raises(ProgrammeError) as info:
        load_rules(with_rules(programme, text), catalogue)
    found = [str(p) for p in info.value.problems]
    assert ("rules.csv, row 1, column 'gap': rule A: invalid condition: 'x' is not a number. Got '>= x'. "
            "Allowed: '-', a number, a comparison like '< 2.5' or '>= 1'") in found[0]
    assert found[1] == "rules.csv, row 2, column 'rule_id': duplicate rule_id. Got 'A'. Rule ids must be unique."
    assert "row 2, column 'objective': rule A: unknown objective (not in catalogue.csv). Got 'remote_care.advnced'. " \
           "Did you mean 'remote_care.advanced'?" in found[2]
    assert "row 3, column 'missing': rule C: invalid condition" in found[3] and "Allowed: '-', true or false." in found[3]
    assert "row 3, column 'priority': rule C: priority must be a whole number ≥ 1" in found[4]
    assert len(found) == 5


def test_unknown_and_missing_columns_are_rejected(programme, catalogue):
    text = "rule_id,domian,objective,priority\nA,ehr,ehr.advanced,1\n"
    with pytest.raises(ProgrammeError) as info:
        load_rules(with_rules(programme, text), catalogue)
    assert "column 'domian': unknown column. Did you mean 'domain'?" in str(info.value)
    text = "rule_id,domain,priority\nA,ehr,1\n"
    with pytest.raises(ProgrammeError, match="column 'objective': required column is missing"):
        load_rules(with_rules(programme, text), catalogue)


def test_condition_columns_are_optional(programme, catalogue):
    rules = load_rules(with_rules(programme, "rule_id,gap,objective,priority\nA,> 0,ehr.advanced,1\n"), catalogue)
    assert rules.columns == ("gap",)
    assert rules.rules[0].conditions == {"gap": Compare(">", 0.0)}


def small_people(programme, rows: list[dict]) -> pd.DataFrame:
    """People frame with the given per-row overrides: keys like role, hours, tasks, and domain dicts."""
    base = make_people(programme, len(rows), seed=3, missing_share=0.0)
    for i, spec in enumerate(rows):
        for task in programme.task_ids:
            base.loc[i, f"task_{task}"] = task in spec.get("tasks", ())
        for key in ("role", "cohort", "group", "formats", "hours"):
            if key in spec:
                if key not in base.columns:
                    base[key] = ""
                base.loc[i, key] = spec[key]
        for d in programme.domain_ids:
            score, req = spec.get(d, (4.0, 0))
            level = None if score is None or math.isnan(score) else int(
                np.searchsorted(np.asarray(programme.level_thresholds()), score, side="right"))
            base.loc[i, f"score_{d}"] = np.nan if level is None else score
            base.loc[i, f"missing_{d}"] = level is None
            base.loc[i, f"level_{d}"] = pd.NA if level is None else level
            base.loc[i, f"required_{d}"] = req
            base.loc[i, f"gap_{d}"] = pd.NA if level is None else req - level
    return base


def fired_pairs(programme, catalogue, text, people):
    rules = load_rules(with_rules(programme, text), catalogue)
    needs = build_needs(people, programme)
    fired = evaluate(rules, needs, people, programme)
    return {(int(p), str(d), str(r)) for p, d, r in zip(fired["person"], fired["domain"], fired["rule_id"])}


def test_missing_scores_never_satisfy_numeric_tests_even_negated(programme, catalogue):
    people = small_people(programme, [{"ehr": (None, 3)}, {"ehr": (2.0, 3)}])
    text = COLUMNS + (
        "LOW,ehr,-,< 3,-,-,-,-,-,-,ehr.advanced,1,\n"
        "NOTLOW,ehr,-,not(< 3),-,-,-,-,-,-,ehr.advanced,1,\n"
        "NOTLEVEL,ehr,not(advanced),-,-,-,-,-,-,-,ehr.advanced,1,\n"
        "MISS,ehr,-,-,-,-,-,-,-,true,self_assessment,1,\n"
        "ANY,ehr,-,-,-,-,-,-,-,-,ehr.advanced,1,\n"
    )
    got = fired_pairs(programme, catalogue, text, people)
    assert got == {(0, "ehr", "MISS"), (0, "ehr", "ANY"),
                   (1, "ehr", "LOW"), (1, "ehr", "NOTLEVEL"), (1, "ehr", "ANY")}


def test_task_role_and_cohort_conditions(programme, catalogue):
    people = small_people(programme, [
        {"remote_care": (2.0, 3), "tasks": ("video_visits",), "role": "nurse", "cohort": "C1"},
        {"remote_care": (2.0, 3), "tasks": ("chat_service",), "role": "physician", "cohort": "C2"},
        {"remote_care": (2.0, 3), "tasks": (), "role": "secretary", "cohort": "C1"},
    ])
    text = COLUMNS + (
        "VIDEO,remote_care,-,-,-,> 0,video_visits,-,-,-,video_visit_practice,2,\n"
        "EITHER,remote_care,-,-,-,> 0,\"video_visits,chat_service\",-,-,-,chat_counselling,2,\n"
        "NOTASK,remote_care,-,-,-,> 0,\"not(video_visits,chat_service)\",-,-,-,remote_care.advanced,2,\n"
        "ROLE,remote_care,-,-,-,-,-,not(nurse),C1,-,remote_care.advanced,2,\n"
    )
    got = fired_pairs(programme, catalogue, text, people)
    assert got == {(0, "remote_care", "VIDEO"), (0, "remote_care", "EITHER"), (1, "remote_care", "EITHER"),
                   (2, "remote_care", "NOTASK"), (2, "remote_care", "ROLE")}


def test_rules_work_before_cohorts_exist(programme, catalogue):
    people = small_people(programme, [{"ehr": (2.0, 3)}]).drop(columns=["cohort", "group"], errors="ignore")
    text = COLUMNS + "A,-,-,-,-,-,-,-,not(C1),-,ehr.advanced,1,\nB,-,-,-,-,-,-,-,C1,-,ehr.advanced,1,\n"
    assert fired_pairs(programme, catalogue, text, people) == {(0, "ehr", "A")}


def test_needs_are_positive_gaps_and_missing_scores(programme):
    people = make_people(programme, 500, seed=11)
    needs = build_needs(people, programme)
    expected = set()
    for d in programme.domain_ids:
        gap = people[f"gap_{d}"]
        miss = people[f"missing_{d}"].to_numpy()
        for i in np.flatnonzero(miss | (gap.fillna(0).to_numpy() > 0)):
            expected.add((int(i), d))
    assert set(zip(needs["person"].tolist(), needs["domain"].astype(str))) == expected
    assert (needs["missing"] == needs["level"].isna()).all()
    row = needs.iloc[0]
    p = people.iloc[int(row["person"])]
    assert row["person_id"] == p["person_id"] and row["required"] == p[f"required_{row['domain']}"]


def test_every_positive_gap_is_matched_by_a_default_rule(programme, catalogue):
    rules = load_rules(programme, catalogue)
    rows = []
    for d in programme.domain_ids:
        for level in range(1, len(programme.levels) + 1):
            for req in range(level + 1, len(programme.levels) + 1):
                score = programme.levels[level - 1].min_score
                rows.append({d: (score, req)})
    people = small_people(programme, rows)
    needs = build_needs(people, programme)
    fired = evaluate(rules, needs, people, programme)
    positive = needs[needs["gap"].fillna(0) > 0]
    assert len(positive) == len(rows)
    assert set(positive["need"]) <= set(fired["need"])


def test_vectorised_evaluation_matches_a_row_by_row_reading(programme, catalogue):
    """An independent, slow reference: evaluate each rule on each need with plain Python."""
    rules = load_rules(programme, catalogue)
    people = make_people(programme, 400, seed=5, cohorts=True)
    needs = build_needs(people, programme)
    fired = evaluate(rules, needs, people, programme)
    got = set(zip(fired["need"].tolist(), fired["rule_id"].astype(str)))

    def number_ok(test, v):
        if isinstance(test, Not):
            return v is not None and not number_ok(test.test, v)
        if v is None:
            return False
        if isinstance(test, AnyOf):
            return any(number_ok(t, v) for t in test.tests)
        if isinstance(test, Between):
            lo = v >= test.low if test.low_closed else v > test.low
            hi = v <= test.high if test.high_closed else v < test.high
            return lo and hi
        return {"<": v < test.value, "<=": v <= test.value, ">": v > test.value, ">=": v >= test.value,
                "=": v == test.value, "!=": v != test.value}[test.op]

    def names_ok(test, values):
        if isinstance(test, Not):
            return not names_ok(test.test, values)
        return bool(set(test.values) & set(values))

    want = set()
    for need in needs.itertuples():
        p = people.iloc[need.person]
        facts = {
            "domain": [need.domain], "role": [p["role"]], "cohort": [p["cohort"]],
            "task": [t for t in programme.task_ids if p[f"task_{t}"]],
            "level": None if pd.isna(need.level) else float(need.level),
            "gap": None if pd.isna(need.gap) else float(need.gap),
            "score": None if math.isnan(need.score) else need.score,
            "required": float(need.required), "missing": bool(need.missing),
        }
        for rule in rules.rules:
            ok = True
            for col, test in rule.conditions.items():
                if col == "missing":
                    ok &= facts["missing"] == test.value
                elif col in ("domain", "role", "cohort", "task"):
                    ok &= names_ok(test, facts[col])
                else:
                    ok &= number_ok(test, facts[col])
            if ok:
                want.add((need.need, rule.id))
    assert got == want
    assert len(got) > 100
