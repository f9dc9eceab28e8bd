"""Importing a survey: matching columns, decoding answers, and rejecting bad cells with their location."""

from __future__ import annotations

import dataclasses
import gc
import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import SURVEYS
from trainmatch.errors import SurveyError
from trainmatch.io import RawSurvey, read_survey
from trainmatch.columns import normalise
from trainmatch.survey import REJECT_COLUMNS, import_survey


def load(name: str, programme):
    return import_survey(read_survey(SURVEYS / name), programme)


def person(result, pid: str) -> pd.Series:
    rows = result.people[result.people["person_id"] == pid]
    assert len(rows) == 1, pid
    return rows.iloc[0]


def raw_from(frame: pd.DataFrame, path: str = "survey.csv") -> RawSurvey:
    frame = frame.astype(object)
    return RawSurvey(path, frame, np.arange(2, len(frame) + 2, dtype=np.int64), "csv", "utf-8", ",", None, "0" * 64)


# --------------------------------------------------------------------------- columns


def test_headers_match_ignoring_case_and_spaces(tiny_programme):
    result = load("loose_headers.csv", tiny_programme)
    assert result.matched["person_id"] == "Person_ID"
    assert result.matched["role"] == "ROLE"
    assert result.matched["ict1"] == "ICT1"
    assert result.matched["video_visits"] == "Video_Visits"
    assert result.matched["hours_available"] == "Hours_Available"
    assert result.ignored == ("Department",)
    assert result.dropped_personal == ("E-mail",)
    assert result.n_accepted == 4 and len(result.rejects) == 0
    assert person(result, "0003")["role"] == "nurse"


def test_exact_header_wins_over_a_loose_one(tiny_programme):
    raw = read_survey(SURVEYS / "tiny.csv")
    frame = raw.frame.copy()
    frame.insert(5, "Role", ["physician"] * len(frame))
    result = import_survey(RawSurvey(raw.path, frame, raw.lines, "csv", "utf-8", ",", None, raw.sha256), tiny_programme)
    assert result.matched["role"] == "role"
    assert "Role" in result.ignored
    assert result.people["role"].tolist() == ["nurse", "physician", "nurse", "physician"]


def test_two_loose_matches_are_refused_not_guessed(tiny_programme):
    raw = read_survey(SURVEYS / "loose_headers.csv")
    frame = raw.frame.copy()
    frame.insert(1, "role ", frame["ROLE"])
    frame.columns = ["Person_ID", "Role", *frame.columns[2:]]
    with pytest.raises(SurveyError) as info:
        import_survey(RawSurvey(raw.path, frame, raw.lines, "csv", "utf-8", ",", None, raw.sha256), tiny_programme)
    assert info.value.problem.column == "role"
    assert "'Role'" in str(info.value) and "'ROLE'" in str(info.value)


def test_duplicate_header_of_a_needed_column_is_an_error(tiny_programme, tmp_path):
    text = (SURVEYS / "tiny.csv").read_text(encoding="utf-8").replace(",ict3,", ",ict2,", 1)
    path = tmp_path / "dup.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SurveyError) as info:
        import_survey(read_survey(path), tiny_programme)
    assert info.value.problem.column == "ict2"
    assert str(path) in str(info.value)


def test_duplicate_header_of_an_ignored_column_is_fine(tiny_programme, tmp_path):
    text = (SURVEYS / "tiny.csv").read_text(encoding="utf-8").replace("submitted_at,", "comment,comment,").replace("\n2026", "\nx,2026")
    path = tmp_path / "dup.csv"
    path.write_text(text, encoding="utf-8")
    result = import_survey(read_survey(path), tiny_programme)
    assert result.n_accepted == 4


def test_missing_required_columns_are_named_with_close_matches(tiny_programme):
    with pytest.raises(SurveyError) as info:
        load("missing_column.csv", tiny_programme)
    text = str(info.value)
    assert "missing_column.csv" in text
    assert "lacks 2 required column(s)" in text
    assert "'person_id' (did you mean 'person_idd'?)" in text
    assert "'rem3'" in text
    assert info.value.problem.column == "person_id"


def test_optional_columns_may_be_absent(tiny_programme):
    raw = read_survey(SURVEYS / "tiny.csv")
    frame = raw.frame.drop(columns=["site", "language", "hours_available", "preferred_formats"])
    result = import_survey(RawSurvey(raw.path, frame, raw.lines, "csv", "utf-8", ",", None, raw.sha256), tiny_programme)
    assert set(result.absent_optional) == {"site", "language", "hours_available", "preferred_formats", "willing_to_support"}
    assert result.people["site"].tolist() == [""] * 4
    assert result.people["hours"].isna().all()
    assert result.people["formats"].tolist() == [""] * 4


# --------------------------------------------------------------------------- answers


def test_codes_and_labels_in_three_languages_decode_to_the_same_scale(tiny_programme):
    result = load("tiny.csv", tiny_programme)
    assert result.n_accepted == 4 and len(result.rejects) == 0
    p1, p3, p4 = person(result, "0001"), person(result, "0003"), person(result, "0004")
    assert [p1[i] for i in ("ict1", "ict2", "ict3")] == [5.0, 1.0, 4.0]  # codes
    assert [p3[i] for i in ("ict1", "ict2", "ict3", "rem1", "rem3")] == [4.0, 2.0, 3.0, 5.0, 1.0]  # English labels
    assert [p4[i] for i in ("ict1", "ict2", "rem3")] == [1.0, 5.0, 4.0]  # Finnish labels (raw, before reversal)


def test_swedish_labels_and_code_with_label(tiny_programme):
    raw = read_survey(SURVEYS / "tiny.csv")
    frame = raw.frame.copy()
    frame.loc[0, "ict1"] = "Helt av samma åsikt"
    frame.loc[0, "ict2"] = "delvis  AV annan åsikt"  # case and spaces ignored
    frame.loc[0, "ict3"] = "3 - Ei samaa eikä eri mieltä"
    result = import_survey(raw_from(frame), tiny_programme)
    p = person(result, "0001")
    assert (p["ict1"], p["ict2"], p["ict3"]) == (5.0, 2.0, 3.0)


@pytest.mark.parametrize("answer", ["En osaa sanoa", "Vet inte", "Don't know", "Don’t know", "EN OSAA SANOA"])
def test_dont_know_is_kept_apart_never_the_midpoint(tiny_programme, answer):
    from trainmatch.answers import DONT_KNOW

    raw = read_survey(SURVEYS / "tiny.csv")
    frame = raw.frame.copy()
    frame.loc[0, "ict1"] = answer
    result = import_survey(raw_from(frame), tiny_programme)
    assert person(result, "0001")["ict1"] == DONT_KNOW  # scoring decides: no answer, or the item's lowest
    assert len(result.rejects) == 0


@pytest.mark.parametrize("answer", ["-99", ""])
def test_missing_codes_and_empty_cells_are_no_answer(tiny_programme, answer):
    raw = read_survey(SURVEYS / "tiny.csv")
    frame = raw.frame.copy()
    frame.loc[0, "ict1"] = answer
    result = import_survey(raw_from(frame), tiny_programme)
    assert math.isnan(person(result, "0001")["ict1"])
    assert len(result.rejects) == 0


def test_dont_know_in_the_fixture_is_kept_apart(tiny_programme):
    from trainmatch.answers import DONT_KNOW

    result = load("tiny.csv", tiny_programme)
    assert person(result, "0002")["rem1"] == DONT_KNOW  # "En osaa sanoa"
    assert person(result, "0004")["rem1"] == DONT_KNOW  # "Vet inte"
    assert math.isnan(person(result, "0002")["ict3"])  # left empty


def test_person_facts_are_decoded(tiny_programme):
    result = load("tiny.csv", tiny_programme)
    people = result.people.set_index("person_id")
    assert people["role"].tolist() == ["nurse", "physician", "nurse", "physician"]
    assert people["language"].tolist() == ["fi", "sv", "en", "fi"]
    assert people.loc["0002", "site"] == "Terveysasema Itä"
    assert people.loc["0002", "hours"] == 2.5  # decimal comma
    assert math.isnan(people.loc["0003", "hours"])
    assert people["formats"].tolist() == ["workshop", "elearning;workshop", "", "workshop"]  # "Työpaja" → workshop
    assert people["task_video_visits"].tolist() == [True, False, False, True]  # "1", "0", "0", "x"
    assert people["task_ehr_documentation"].tolist() == [False, True, False, False]  # "" = not ticked
    assert people["task_chat_service"].tolist() == [True, False, False, True]  # "kyllä"
    assert people["row"].tolist() == [1, 2, 3, 4]


def test_leading_zeros_of_ids_are_kept(tiny_programme):
    result = load("semicolon_cp1252.csv", tiny_programme)
    assert result.people["person_id"].tolist() == ["0001", "0002", "0003", "0004"]


# --------------------------------------------------------------------------- rejects


EXPECTED_REJECTS = [
    # row, line, person_id, column, value, words of the reason
    (2, 3, "0102", "ict1", "Sometimes", "Unknown answer"),
    (3, 4, "0103", "ict2", "7", "outside the scale 1–5"),
    (4, 5, "", "person_id", "", "id is empty"),
    (5, 6, "0105", "person_id", "0105", "rows 5, 6"),
    (6, 7, "0105", "person_id", "0105", "rows 5, 6"),
    (7, 8, "0107", "role", "Nurse practitioner", "Unknown role"),
    (8, 9, "0108", "rem1", "kolme", "Unknown answer"),
    (10, 11, "0110", "ict3", "2.5", "whole codes"),
]


def test_bad_cells_are_rejected_with_row_line_id_column_value_and_reason(tiny_programme):
    result = load("bad_cells.csv", tiny_programme)
    rejects = result.rejects
    assert list(rejects.columns) == REJECT_COLUMNS
    got = list(rejects[["row", "line", "person_id", "column", "value"]].itertuples(index=False, name=None))
    assert got == [e[:5] for e in EXPECTED_REJECTS]
    for reason, expected in zip(rejects["reason"], EXPECTED_REJECTS):
        assert expected[5] in reason
    assert "all copies are rejected" in rejects["reason"].iloc[3]
    # Allowed values are named so that the user knows how to fix the cell.
    assert "nurse, physician" in rejects["reason"].iloc[5]
    assert result.n_rejected == 8
    assert result.people["person_id"].tolist() == ["0101", "0109"]
    assert "0105" not in result.people["person_id"].tolist()  # no copy of a duplicate survives


def test_many_copies_of_an_id_are_summarised(tiny_programme):
    raw = read_survey(SURVEYS / "tiny.csv")
    frame = pd.concat([raw.frame] * 3, ignore_index=True)  # the export appended to itself, twice
    frame.loc[11, "person_id"] = "0009"
    result = import_survey(raw_from(frame), tiny_programme)
    assert result.n_accepted == 1 and result.people["person_id"].tolist() == ["0009"]
    reasons = result.rejects.set_index("row")["reason"]
    assert "rows 1, 5, 9;" in reasons.loc[5]
    assert "rows 4, 8;" in reasons.loc[8]
    four = raw_from(pd.concat([raw.frame] * 4, ignore_index=True))
    assert "rows 1, 5, 9 and 1 more;" in import_survey(four, tiny_programme).rejects["reason"].iloc[0]


def test_a_row_with_several_bad_cells_lists_each(tiny_programme):
    result = load("trailing_delimiter.csv", tiny_programme)
    bad = result.rejects[result.rejects["row"] == 3]
    assert set(bad["line"]) == {4}
    assert "(beyond the last column)" in bad["column"].tolist()
    assert "without quotes" in bad.loc[bad["column"] == "(beyond the last column)", "reason"].iloc[0]
    assert len(bad) >= 2
    assert result.n_rejected == 1
    assert result.people["person_id"].tolist() == ["0001", "0002", "0004"]
    assert result.people["row"].tolist() == [1, 2, 4]


def test_reject_line_counts_embedded_newlines(tiny_programme):
    result = load("embedded_newline.csv", tiny_programme)
    assert result.rejects[["row", "line", "column", "value"]].values.tolist() == [[2, 5, "rem2", "7"]]


def test_personal_columns_are_dropped_and_never_shown(tiny_programme):
    result = load("bad_cells.csv", tiny_programme)
    assert result.dropped_personal == ("name", "email")
    assert result.ignored == ("submitted_at",)
    everything = [str(v) for v in pd.concat([result.people, result.rejects]).to_numpy().ravel()]
    assert not any("@example.fi" in v or v.startswith("Person 0") for v in everything)
    assert not {"name", "email"} & set(result.people.columns)


def test_personal_columns_match_loosely(tiny_programme):
    raw = read_survey(SURVEYS / "tiny.csv")
    frame = raw.frame.rename(columns={"name": " Name ", "email": "E-Mail"}).assign(**{"IP Address": "10.0.0.1", "Sähköposti": "x"})
    result = import_survey(raw_from(frame), tiny_programme)
    assert set(result.dropped_personal) == {" Name ", "E-Mail", "IP Address", "Sähköposti"}
    assert result.ignored == ("submitted_at",)


def test_normalise():
    assert normalise("  Don’t\u00a0 KNOW ") == "don't know"
    assert normalise("Täysin  samaa\tmieltä") == "täysin samaa mieltä"


# --------------------------------------------------------------------------- nothing lost

IDS = st.sampled_from(["0001", "0002", "0003", "017", "17", "", " ", "A-9"])
ROLES = st.sampled_from(["nurse", "Physician", "Sjukskötare", "Lääkäri", "", "doctor"])
ANSWERS = st.sampled_from(["1", "3", "5", "7", "0", "Agree", "Vet inte", "En osaa sanoa", "", "x", "2.5", "-99", "Helt av samma åsikt"])
TICKS = st.sampled_from(["1", "0", "", "x", "kyllä", "maybe"])


@st.composite
def surveys(draw):
    n = draw(st.integers(min_value=1, max_value=25))
    cols = {
        "person_id": draw(st.lists(IDS, min_size=n, max_size=n)),
        "role": draw(st.lists(ROLES, min_size=n, max_size=n)),
    }
    for item in ("ict1", "ict2", "ict3", "rem1", "rem2", "rem3"):
        cols[item] = draw(st.lists(ANSWERS, min_size=n, max_size=n))
    for task in ("video_visits", "ehr_documentation", "chat_service"):
        cols[task] = draw(st.lists(TICKS, min_size=n, max_size=n))
    cols["hours_available"] = draw(st.lists(st.sampled_from(["", "8", "2,5", "lots", "-1", "999"]), min_size=n, max_size=n))
    return pd.DataFrame(cols)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frame=surveys())
def test_every_row_is_accepted_or_rejected_exactly_once(tiny_programme, frame):
    result = import_survey(raw_from(frame), tiny_programme)
    n = len(frame)
    accepted = set(result.people["row"])
    rejected = set(result.rejects["row"])
    assert accepted.isdisjoint(rejected)
    assert accepted | rejected == set(range(1, n + 1))
    assert result.n_accepted + result.n_rejected == result.n_read == n
    # What was accepted is clean: unique non-empty ids, answers on the scale, missing or "don't know".
    ids = result.people["person_id"]
    assert ids.is_unique and (ids.str.strip() != "").all()
    answers = result.people[["ict1", "ict2", "ict3", "rem1", "rem2", "rem3"]].to_numpy(dtype=float)
    assert np.all(np.isnan(answers) | (answers == -np.inf) | ((answers >= 1) & (answers <= 5) & (answers == np.round(answers))))
    assert (result.rejects["reason"].str.len() > 0).all()
    # The reject's line belongs to its row.
    assert (result.rejects["line"] == result.rejects["row"] + 1).all()


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frame=surveys(), policy=st.sampled_from(["keep-latest", "reject"]), arrow=st.booleans())
def test_freeing_the_text_while_decoding_gives_the_same_result(tiny_programme, frame, policy, arrow):
    """consume (what `assign` uses) frees each column once decoded; nothing else may change."""
    frame = frame.assign(submitted_at="2026-09-01 08:00", email="someone@example.org")
    kept = import_survey(raw_from(frame), tiny_programme, duplicates=policy)
    raw = raw_from(frame)
    if arrow:  # the CSV fast path's Arrow-backed text
        raw = dataclasses.replace(raw, frame=frame.astype(pd.ArrowDtype(pa.string())))
    released = import_survey(raw, tiny_programme, duplicates=policy, consume=True)
    assert raw.frame.shape[1] == 0
    for table in ("people", "rejects", "warnings"):
        pd.testing.assert_frame_equal(getattr(released, table), getattr(kept, table))
    assert released.timestamp == kept.timestamp and released.n_superseded == kept.n_superseded


@pytest.mark.parametrize("release", [False, True])
def test_consume_frees_each_column_as_it_is_decoded(tiny_programme, monkeypatch, release):
    """What consume is for: the text cells shrink while the columns are decoded, not only at the end."""
    import trainmatch.survey as survey

    n = 20_000
    frame = pd.DataFrame({"person_id": [f"P{i:06d}" for i in range(n)], "role": "nurse", "hours_available": "8"})
    for item in ("ict1", "ict2", "ict3", "rem1", "rem2", "rem3"):
        frame[item] = "3"
    for task in ("video_visits", "ehr_documentation", "chat_service"):
        frame[task] = "1"
    raw = dataclasses.replace(raw_from(frame), frame=frame.astype(pd.ArrowDtype(pa.string())))
    seen: list[int] = []

    def traced(make):  # each column's one distinct answer is decoded once, as the column's turn comes
        def made(programme):
            decode = make(programme)

            def traced_decode(text):
                seen.append(pa.total_allocated_bytes())  # Arrow memory alive as each column is decoded
                return decode(text)

            return traced_decode

        return made

    monkeypatch.setattr(survey, "likert_decoder", traced(survey.likert_decoder))
    monkeypatch.setattr(survey, "yes_no_decoder", traced(survey.yes_no_decoder))
    answers = sum(raw.frame[c].array.nbytes for c in raw.frame.columns[3:])  # the 9 item and task columns
    gc.collect()  # Arrow memory is counted process-wide: earlier tests' garbage must not be freed mid-measurement
    result = import_survey(raw, tiny_programme, consume=release)
    assert result.n_accepted == n
    drop = max(seen) - seen[-1]  # Arrow memory freed between the busiest moment and the last column's start
    if release:
        assert drop > 0.5 * answers, (drop, answers)  # most answer columns were gone before the last one was decoded
    else:
        assert drop < 0.1 * answers, (drop, answers)


def test_a_mapped_submission_time_that_is_also_a_programme_column(tiny_programme, tmp_path):
    """A mapping may name a programme column as the submission time: both read it, text freed or not."""
    from trainmatch.mapping import load_mapping

    (tmp_path / "m.toml").write_text('[survey]\ntool = "Test"\ntimestamp = "site"\n', encoding="utf-8")
    mapping = load_mapping(tmp_path / "m.toml", tiny_programme)
    results = [import_survey(read_survey(SURVEYS / "tiny.csv"), tiny_programme, mapping=mapping, consume=r) for r in (False, True)]
    for result in results:
        assert result.timestamp == "site" and result.n_accepted == 4
    pd.testing.assert_frame_equal(results[0].people, results[1].people)


STAMPS = st.sampled_from(["2026-09-01 08:00", "2026-09-01 08:00", "2026-09-02 10:30", "2026-09-03 07:15", "", "soon"])


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frame=surveys(), data=st.data(), policy=st.sampled_from(["keep-latest", "reject"]))
def test_duplicates_policy_keeps_every_row_accounted_for(tiny_programme, frame, data, policy):
    frame = frame.assign(submitted_at=data.draw(st.lists(STAMPS, min_size=len(frame), max_size=len(frame))))
    result = import_survey(raw_from(frame), tiny_programme, duplicates=policy)
    n = len(frame)
    accepted, rejected = set(result.people["row"]), set(result.rejects["row"])
    assert accepted.isdisjoint(rejected) and accepted | rejected == set(range(1, n + 1))
    assert result.people["person_id"].is_unique
    superseded = result.rejects[result.rejects["reason"].str.startswith("superseded by row")]
    assert len(superseded) == result.n_superseded
    if policy == "reject":
        assert result.n_superseded == 0
    for reason, row in zip(superseded["reason"], superseded["row"]):
        keeper = int(reason.split("superseded by row ")[1].split(" ")[0])
        assert keeper != row
        ids = frame["person_id"].str.strip()
        assert ids.iloc[keeper - 1] == ids.iloc[row - 1]  # the same person…
        assert keeper not in set(superseded["row"])  # …whose kept submission is not superseded (planned, or rejected for its own cells)…
        kept, earlier = (pd.Timestamp(frame["submitted_at"].iloc[r - 1]) for r in (keeper, row))
        assert kept > earlier  # …and is the later one


def test_import_leaves_the_callers_survey_alone_unless_told_to_consume_it(tiny_programme) -> None:
    """A library function does not change its caller's objects; consume=True says it does, and does."""
    raw = read_survey(SURVEYS / "tiny.csv")
    before = raw.frame.copy()
    import_survey(raw, tiny_programme)
    pd.testing.assert_frame_equal(raw.frame, before)
    import_survey(raw, tiny_programme, consume=True)
    assert raw.frame.shape[1] == 0
