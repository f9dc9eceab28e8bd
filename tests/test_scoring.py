"""Scoring against a hand-computed fixture: tests/data/surveys/tiny.csv under the tiny programme.

The tiny programme has domains ict (ict1, ict2 reversed, ict3) and remote
(rem1, rem2, rem3 reversed) on a 1–5 scale, levels from 1.0 / 2.5 / 3.5 / 4.5,
and at least 60 % of a domain's items (2 of 3) must be answered. Tasks (tasks.csv):

    task               ict           remote
    video_visits       intermediate  advanced
    ehr_documentation  advanced      -
    chat_service       foundation    intermediate
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from conftest import SURVEYS
from trainmatch.io import read_survey
from trainmatch.scoring import cronbach_alpha, levels_of, score
from trainmatch.survey import import_survey

FOUNDATION, INTERMEDIATE, ADVANCED, HIGHLY = 1, 2, 3, 4
NA = None

# Reversed item: 6 − answer. Each line is worked out from tiny.csv by hand.
EXPECTED = {
    # person: (score, answered, level, required, gap) for ict, then for remote
    "0001": (
        # ict 5, 1→5, 4; remote 2, 3, 4→2. Tasks video + chat.
        ((5 + 5 + 4) / 3, 3, HIGHLY, max(INTERMEDIATE, FOUNDATION), INTERMEDIATE - HIGHLY),
        ((2 + 3 + 2) / 3, 3, FOUNDATION, max(ADVANCED, INTERMEDIATE), ADVANCED - FOUNDATION),
    ),
    "0002": (
        # ict 5, 4→2, (empty) → 3.5 exactly: advanced. remote don't know, empty, 1→5: 1 of 3 answered → missing.
        ((5 + 2) / 2, 2, ADVANCED, ADVANCED, ADVANCED - ADVANCED),
        (math.nan, 1, NA, 0, NA),
    ),
    "0003": (
        # labels in English: Agree 4, Disagree 2→4, Neither 3; Strongly agree 5, Agree 4, Strongly disagree 1→5. No tasks.
        ((4 + 4 + 3) / 3, 3, ADVANCED, 0, 0 - ADVANCED),
        ((5 + 4 + 5) / 3, 3, HIGHLY, 0, 0 - HIGHLY),
    ),
    "0004": (
        # Finnish labels: 1, 5→1, 1; remote Vet inte, 3, 4→2 → 2.5 exactly: intermediate. Tasks video + chat.
        ((1 + 1 + 1) / 3, 3, FOUNDATION, INTERMEDIATE, INTERMEDIATE - FOUNDATION),
        ((3 + 2) / 2, 2, INTERMEDIATE, ADVANCED, ADVANCED - INTERMEDIATE),
    ),
}


@pytest.fixture(scope="module")
def imported(tiny_programme):
    return import_survey(read_survey(SURVEYS / "tiny.csv"), tiny_programme)


@pytest.fixture(scope="module")
def people(imported, tiny_programme):
    return score(imported.people, tiny_programme)


@pytest.mark.parametrize("pid", sorted(EXPECTED))
@pytest.mark.parametrize("d, domain", [(0, "ict"), (1, "remote")])
def test_hand_computed_scores_levels_requirements_and_gaps(people, pid, d, domain):
    row = people.set_index("person_id").loc[pid]
    score_, answered, level, required, gap = EXPECTED[pid][d]
    if math.isnan(score_):
        assert math.isnan(row[f"score_{domain}"])
        assert row[f"missing_{domain}"]
        assert pd.isna(row[f"level_{domain}"])
        assert pd.isna(row[f"gap_{domain}"])
    else:
        assert row[f"score_{domain}"] == pytest.approx(score_, abs=1e-12)
        assert not row[f"missing_{domain}"]
        assert row[f"level_{domain}"] == level
        assert row[f"gap_{domain}"] == gap
    assert row[f"answered_{domain}"] == answered
    assert row[f"required_{domain}"] == required


def test_too_few_answers_is_flagged_not_imputed(people):
    p2 = people.set_index("person_id").loc["0002"]
    # Its one answer (rem3 = 1, reversed 5) is not used as the score, nor the midpoint 3.
    assert math.isnan(p2["score_remote"])
    assert p2["missing_remote"]
    assert people["missing_remote"].tolist() == [False, True, False, False]
    assert people["missing_ict"].tolist() == [False, False, False, False]


def test_output_follows_the_people_contract(people, tiny_programme):
    expected_columns = ["person_id", "row", "role", "site", "language", "hours", "formats"]
    expected_columns += [f"task_{t}" for t in tiny_programme.task_ids]
    for d in tiny_programme.domain_ids:
        expected_columns += [f"{c}_{d}" for c in ("score", "answered", "missing", "uncertain", "level", "required", "gap")]
    assert list(people.columns) == expected_columns
    assert isinstance(people.index, pd.RangeIndex)
    assert people["person_id"].tolist() == ["0001", "0002", "0003", "0004"]
    assert people["row"].dtype == np.int64
    assert people["hours"].dtype == np.float64
    for d in tiny_programme.domain_ids:
        assert people[f"score_{d}"].dtype == np.float64
        assert people[f"answered_{d}"].dtype == np.int8
        assert people[f"missing_{d}"].dtype == bool
        assert str(people[f"level_{d}"].dtype) == "Int8"
        assert people[f"required_{d}"].dtype == np.int8
        assert str(people[f"gap_{d}"].dtype) == "Int8"
    for t in tiny_programme.task_ids:
        assert people[f"task_{t}"].dtype == bool


def test_level_thresholds_are_inclusive_lower_bounds(tiny_programme):
    scores = np.array([1.0, 2.4999, 2.5, 3.4999, 3.5, 4.4999, 4.5, 5.0, np.nan])
    assert levels_of(scores, tiny_programme).tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 0]


def test_requirement_is_the_maximum_over_tasks(imported, tiny_programme):
    frame = imported.people.copy()
    for t in tiny_programme.task_ids:
        frame[f"task_{t}"] = True
    everything = score(frame, tiny_programme)
    # ict: max(intermediate, advanced, foundation); remote: max(advanced, none, intermediate)
    assert everything["required_ict"].tolist() == [ADVANCED] * 4
    assert everything["required_remote"].tolist() == [ADVANCED] * 4
    for t in tiny_programme.task_ids:
        frame[f"task_{t}"] = False
    nothing = score(frame, tiny_programme)
    assert nothing["required_ict"].tolist() == [0] * 4


def test_min_answered_share_is_respected(imported, tiny_programme):
    import dataclasses

    strict = dataclasses.replace(tiny_programme, min_answered_share=1.0)
    people = score(imported.people, strict).set_index("person_id")
    assert people.loc["0002", "missing_ict"] and math.isnan(people.loc["0002", "score_ict"])  # 2 of 3
    assert people.loc["0004", "missing_remote"]
    assert not people.loc["0001", "missing_ict"]


def test_cronbach_alpha_matches_a_hand_computation(imported, tiny_programme):
    ict, remote = cronbach_alpha(imported.people, tiny_programme)
    # ict complete cases after reversal: 0001 (5, 5, 4), 0003 (4, 4, 3), 0004 (1, 1, 1); 0002 skipped ict3.
    def var(xs):  # sample variance
        m = sum(xs) / len(xs)
        return sum((x - m) ** 2 for x in xs) / (len(xs) - 1)

    items = [(5, 4, 1), (5, 4, 1), (4, 3, 1)]
    totals = (14, 11, 3)
    k = 3
    by_hand = k / (k - 1) * (1 - sum(var(i) for i in items) / var(totals))
    assert by_hand == pytest.approx(288 / 291)
    assert (ict.domain, ict.n_items, ict.n_complete) == ("ict", 3, 3)
    assert ict.alpha == pytest.approx(by_hand, abs=1e-12)
    assert not ict.low
    # remote has only two complete cases: alpha is not computed, and that is a warning.
    assert (remote.domain, remote.n_complete) == ("remote", 2)
    assert math.isnan(remote.alpha) and remote.low


def test_alpha_below_the_warning_is_low(imported, tiny_programme):
    frame = imported.people.copy()
    # Items that disagree with each other: alpha is negative.
    frame["ict1"] = [5.0, 1.0, 5.0, 1.0]
    frame["ict2"] = [5.0, 1.0, 1.0, 5.0]  # reversed: 1, 5, 5, 1
    frame["ict3"] = [1.0, 5.0, 3.0, 3.0]
    [ict, _] = cronbach_alpha(frame, tiny_programme)
    assert ict.n_complete == 4
    assert ict.alpha < tiny_programme.alpha_warning and ict.low


def test_scoring_the_default_programme_on_synthetic_data(default_programme):
    from trainmatch.synth import synthesize
    from trainmatch.io import RawSurvey

    survey, _ = synthesize(default_programme, 400, seed=11)
    raw = RawSurvey("synth.csv", survey, np.arange(2, 402), "csv", "utf-8", ",", None, "")
    result = import_survey(raw, default_programme)
    people = score(result.people, default_programme)
    assert len(people) == 400
    for d in default_programme.domain_ids:
        s = people[f"score_{d}"]
        flagged = people[f"missing_{d}"]
        assert (s[~flagged].between(1, 5)).all()
        assert s[flagged].isna().all()
        level = people[f"level_{d}"]
        assert level[~flagged].between(1, 4).all()
        gap = people[f"gap_{d}"]
        assert (gap[~flagged] == people.loc[~flagged, f"required_{d}"] - level[~flagged]).all()
    # The skippers of the synthetic data are flagged somewhere, not imputed.
    assert people[[f"missing_{d}" for d in default_programme.domain_ids]].to_numpy().any()


# --------------------------------------------------------------------------- uncertainty


def test_sem_is_the_score_sd_times_root_one_minus_alpha(default_programme):
    from trainmatch.io import RawSurvey
    from trainmatch.synth import synthesize

    survey, _ = synthesize(default_programme, 600, seed=12)
    people = import_survey(RawSurvey("s.csv", survey, np.arange(2, 602), "csv", "utf-8", ",", None, ""), default_programme).people
    scored = score(people, default_programme)
    for rel in cronbach_alpha(people, default_programme):
        sd = scored[f"score_{rel.domain}"].std(ddof=1)
        assert rel.sem == pytest.approx(sd * math.sqrt(1 - rel.alpha))
        # uncertain exactly where the score is within one SEM of a level boundary (2.5, 3.5, 4.5)
        s = scored[f"score_{rel.domain}"].to_numpy()
        near = np.abs(np.nan_to_num(s)[:, None] - np.array([2.5, 3.5, 4.5])[None, :]).min(axis=1) <= rel.sem
        near[np.isnan(s)] = False
        assert (scored[f"uncertain_{rel.domain}"].to_numpy() == near).all()
        assert 0 < near.mean() < 1


def test_near_boundary_by_hand(tiny_programme):
    from trainmatch.scoring import near_boundary

    scores = np.array([2.31, 2.29, 3.0, 3.8, 4.9, np.nan, 1.0])
    # boundaries 2.5, 3.5, 4.5 (1.0 is the scale's bottom, not a boundary); SEM 0.2
    assert near_boundary(scores, 0.2, tiny_programme).tolist() == [True, False, False, False, False, False, False]
    assert near_boundary(scores, 0.5, tiny_programme).tolist() == [True, True, True, True, True, False, False]
    assert not near_boundary(scores, float("nan"), tiny_programme).any()  # alpha unknown: nothing flagged


def test_score_writes_the_borderline_flag(cli, tmp_path, synth_csv):
    out = tmp_path / "scores.csv"
    result = cli("score", synth_csv, "-o", out)
    assert result.exit_code == 0, result.output
    assert "SEM" in result.output
    scores = pd.read_csv(out, dtype=str, keep_default_na=False)
    for d in ("ict_basics", "security"):
        assert set(scores[f"uncertain_{d}"]) == {"", "yes"}
