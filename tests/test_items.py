"""Items as evidence: item statistics that catch a wrongly keyed item, attitude items and "don't know" rules.

The hand-computed cases use tests/data/surveys/tiny.csv under a copy of the tiny programme
(domains ict: ict1, ict2 reversed, ict3; remote: rem1, rem2, rem3 reversed; 2 of 3 items must be answered)
whose items.csv gains the optional columns attitude and dont_know.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import SURVEYS, TINY
from trainmatch.errors import ProgrammeError
from trainmatch.io import RawSurvey, read_survey
from trainmatch.programme import load_programme
from trainmatch.scoring import cronbach_alpha, item_statistics, score
from trainmatch.survey import import_survey
from trainmatch.synth import synthesize

TINY_ITEMS = """item_id,domain,reverse,attitude,dont_know,text_fi,text_sv,text_en,note
ict1,ict,no,no,missing,a,a,a,
ict2,ict,yes,no,missing,b,b,b,
ict3,ict,no,no,missing,c,c,c,
rem1,remote,no,{rem1_attitude},{rem1_dont_know},d,d,d,know-how
rem2,remote,no,no,missing,e,e,e,
rem3,remote,yes,{rem3_attitude},missing,f,f,f,
"""


def tiny_with(tmp_path: Path, rem1_attitude="no", rem1_dont_know="missing", rem3_attitude="no") -> Path:
    folder = tmp_path / "p"
    shutil.copytree(TINY, folder, dirs_exist_ok=True)
    (folder / "items.csv").write_text(
        TINY_ITEMS.format(rem1_attitude=rem1_attitude, rem1_dont_know=rem1_dont_know, rem3_attitude=rem3_attitude), encoding="utf-8"
    )
    return folder


def tiny_scores(folder: Path) -> pd.DataFrame:
    programme = load_programme(folder)
    return score(import_survey(read_survey(SURVEYS / "tiny.csv"), programme).people, programme).set_index("person_id")


# --------------------------------------------------------------------------- items as evidence


def test_the_optional_columns_left_out_change_nothing(tmp_path):
    before = tiny_scores(TINY)
    after = tiny_scores(tiny_with(tmp_path))
    pd.testing.assert_frame_equal(before, after)


def test_dont_know_counts_as_the_lowest_answer_where_the_item_says_so(tmp_path):
    people = tiny_scores(tiny_with(tmp_path, rem1_dont_know="lowest"))
    # 0004: remote "Vet inte" → 1, 3, 4→2: (1 + 3 + 2) / 3 = 2.0, foundation (with dont_know = missing: 2.5).
    assert people.loc["0004", "score_remote"] == pytest.approx(2.0)
    assert people.loc["0004", "level_remote"] == 1
    # 0002: "En osaa sanoa" → 1, empty, 1→5: 2 of 3 answered, so a score now: (1 + 5) / 2 = 3.0.
    assert people.loc["0002", "score_remote"] == pytest.approx(3.0)
    assert not people.loc["0002", "missing_remote"]


def test_an_attitude_item_is_not_in_the_skill_score(tmp_path):
    people = tiny_scores(tiny_with(tmp_path, rem3_attitude="yes"))
    # 0001: remote 2, 3 (rem3 left out): 2.5; 0003: 5, 4: 4.5. 0002 answered only rem3 of the skill items → missing.
    assert people.loc["0001", "score_remote"] == pytest.approx(2.5)
    assert people.loc["0003", "score_remote"] == pytest.approx(4.5)
    assert people.loc["0002", "missing_remote"]
    [_, remote] = cronbach_alpha(import_survey(read_survey(SURVEYS / "tiny.csv"), load_programme(tmp_path / "p")).people,
                                 load_programme(tmp_path / "p"))
    assert remote.n_items == 2


def test_default_programme_marks_attitude_and_know_how_items_and_says_why(default_programme):
    items = {i.id: i for i in default_programme.items}
    assert {i for i, item in items.items() if item.attitude} >= {"ict5", "rem4", "sec4"}
    assert items["sec5"].dont_know == "lowest"  # "I know whom to notify of a data breach"
    for item in items.values():
        if item.attitude or item.dont_know == "lowest":
            assert item.note, item.id
    for domain in default_programme.domain_ids:
        assert default_programme.skill_items_of(domain)


@pytest.mark.parametrize(
    "kw, column, value, message",
    [
        ({"rem1_dont_know": "zero"}, "dont_know", "zero", "dont_know must be missing"),
        ({"rem1_attitude": "maybe"}, "attitude", "maybe", "attitude must be yes"),
    ],
)
def test_a_bad_item_flag_names_file_row_column_and_value(tmp_path, kw, column, value, message):
    with pytest.raises(ProgrammeError) as info:
        load_programme(tiny_with(tmp_path, **kw))
    [problem] = info.value.problems
    assert problem.file.endswith("items.csv")
    assert (problem.row, problem.column, problem.value) == (4, column, value)
    assert message in problem.message


def test_every_item_of_a_domain_attitude_is_refused(tmp_path):
    folder = tiny_with(tmp_path, rem1_attitude="yes", rem3_attitude="yes")
    (folder / "items.csv").write_text((folder / "items.csv").read_text(encoding="utf-8").replace("rem2,remote,no,no", "rem2,remote,no,yes"),
                                      encoding="utf-8")
    with pytest.raises(ProgrammeError) as info:
        load_programme(folder)
    [problem] = info.value.problems
    assert (problem.row, problem.column, problem.value) == (6, "attitude", "yes")
    assert "every item of domain 'remote' is marked attitude" in problem.message


def test_a_bad_dont_know_stops_the_cli_before_the_survey_is_read(cli, tmp_path):
    folder = tiny_with(tmp_path, rem1_dont_know="lowst")
    result = cli("score", tmp_path / "no-such-survey.csv", "-o", tmp_path / "s.csv", "--programme", folder)
    assert result.exit_code == 1
    assert "items.csv, row 4, column 'dont_know': dont_know must be missing" in result.output
    assert "Got 'lowst'" in result.output
    assert "Traceback" not in result.output


# --------------------------------------------------------------------------- item statistics


def _synthetic(programme, n=1500, seed=4):
    survey, _ = synthesize(programme, n, seed=seed)
    raw = RawSurvey("s.csv", survey, np.arange(2, n + 2), "csv", "utf-8", ",", None, "")
    return import_survey(raw, programme).people


@pytest.fixture(scope="module")
def synthetic_people(default_programme):
    return _synthetic(default_programme)


def test_no_item_of_the_default_programme_is_flagged_on_realistic_data(synthetic_people, default_programme):
    stats = item_statistics(synthetic_people, default_programme)
    assert list(stats["item"]) == [i.id for i in default_programme.items]
    assert (stats["flag"] == "no").all(), stats[stats["flag"] == "yes"]
    assert (stats["item_rest_r"] > 0.3).all()
    assert stats.loc[stats["kind"] == "attitude", "alpha_if_deleted"].isna().all()
    assert ((stats["share_dont_know"] > 0) & (stats["share_dont_know"] < 0.1)).all()


@pytest.mark.parametrize("item", ["ehr2", "sec2", "ict5"])
def test_an_item_keyed_the_wrong_way_is_flagged(synthetic_people, default_programme, item):
    """The survey answers as the items mean; the programme gets one reverse key wrong."""
    wrong = dataclasses.replace(
        default_programme,
        items=tuple(dataclasses.replace(i, reverse=not i.reverse) if i.id == item else i for i in default_programme.items),
    )
    stats = item_statistics(synthetic_people, wrong).set_index("item")
    assert stats.loc[item, "flag"] == "yes"
    assert stats.loc[item, "item_rest_r"] < 0
    assert "negative item-rest correlation" in stats.loc[item, "reason"]
    assert "reverse key" in stats.loc[item, "reason"]
    others = stats.drop(index=item)
    assert (others.loc[others["domain"] != stats.loc[item, "domain"], "flag"] == "no").all()


def test_score_writes_item_stats_and_warns_about_a_wrongly_keyed_item(cli, tmp_path, default_programme):
    from trainmatch.outputs import write_csv

    folder = tmp_path / "prog"
    assert cli("init", folder).exit_code == 0
    items = folder / "items.csv"
    text = items.read_text(encoding="utf-8")
    assert "\nehr2,ehr,no," in text
    items.write_text(text.replace("\nehr2,ehr,no,", "\nehr2,ehr,yes,"), encoding="utf-8")
    survey, _ = synthesize(default_programme, 800, seed=6)
    write_csv(survey, tmp_path / "survey.csv")
    out = tmp_path / "stats.csv"
    result = cli("score", tmp_path / "survey.csv", "-o", tmp_path / "scores.csv", "--programme", folder, "--item-stats", out)
    assert result.exit_code == 0, result.output
    assert "Warning: 1 item(s) may not measure their domain:" in result.output
    assert "ehr2 (ehr): negative item-rest correlation" in result.output
    stats = pd.read_csv(out, dtype={"flag": str})
    assert list(stats.columns) == ["item", "domain", "kind", "reverse", "dont_know", "n_answered", "mean", "sd", "share_dont_know",
                                   "item_rest_r", "alpha_if_deleted", "flag", "reason"]
    assert stats.loc[stats["flag"] == "yes", "item"].tolist() == ["ehr2"]


def test_the_library_call_returns_the_item_statistics(tmp_path, synth_csv):
    from trainmatch import jobs

    scored = jobs.score(synth_csv, tmp_path / "scores.csv", item_stats=tmp_path / "items.csv")
    assert len(scored.item_stats) == 30
    assert (tmp_path / "items.csv").exists()
    assert scored.flagged_items.empty
    assert all(not math.isnan(r.sem) and 0 < r.sem < 1 for r in scored.reliability)


def test_the_report_shows_the_item_table_and_the_flagged_items(synthetic_people, default_programme):
    from trainmatch.report import render_report_data, report_data
    from trainmatch.scoring import score as score_people

    wrong = dataclasses.replace(
        default_programme,
        items=tuple(dataclasses.replace(i, reverse=not i.reverse) if i.id == "data3" else i for i in default_programme.items),
    )
    people = score_people(synthetic_people, wrong)
    empty = pd.DataFrame(columns=["person_id", "hours"])
    data = report_data(people, empty, empty, wrong, item_stats=item_statistics(synthetic_people, wrong))
    table = data["tables"]["items"]
    assert [row[0] for row in table["rows"]] == [i.id for i in wrong.items]
    assert len(table["flagged"]) == 1 and table["flagged"][0].startswith("data3 (Using data and evaluating digital solutions): negative")
    sec5 = next(row for row in table["rows"] if row[0] == "sec5")
    assert sec5[2] == "skill, don't know = lowest" and "whom to notify" in sec5[-1]  # the note from items.csv says why
    html = render_report_data(data)
    assert '<section id="items">' in html and "Flagged: data3" in html
