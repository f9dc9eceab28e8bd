"""Survey exports as they really arrive (issue 6): every fixture in tests/data/exports/ read and imported,
checking the values that reach the people table, the rejects and the summary — not only that it loads.

The fixtures are made by tests/data/exports/make_exports.py; the same four people answer in each.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

from conftest import DATA
from trainmatch.errors import SurveyError
from trainmatch.io import read_survey
from trainmatch.mapping import load_mapping
from trainmatch.summary import import_summary
from trainmatch.survey import REJECT_COLUMNS, import_survey

EXPORTS = DATA / "exports"
TINY_OPT = ("--programme", str(DATA / "programmes" / "tiny"))

# What every export must decode to (items before reversal; NaN = empty or "don't know", which decodes to
# -inf (answers.DONT_KNOW): both are no code on the scale, and `same` treats them alike).
NAN = float("nan")
EXPECTED = {
    "0001": {"role": "nurse", "language": "fi", "items": [5, 1, 4, 2, 3, 4], "tasks": [True, False, True], "hours": 8.0, "formats": "workshop"},
    "0002": {"role": "physician", "language": "sv", "items": [5, 4, NAN, NAN, NAN, 1], "tasks": [False, True, False], "hours": 2.5, "formats": "elearning;workshop"},
    "0003": {"role": "nurse", "language": "en", "items": [4, 2, 3, 5, 4, 1], "tasks": [False, False, False], "hours": NAN, "formats": ""},
    "0004": {"role": "physician", "language": "fi", "items": [1, 5, 1, NAN, 3, 4], "tasks": [True, False, True], "hours": 12.0, "formats": "workshop"},
}
ITEMS = ["ict1", "ict2", "ict3", "rem1", "rem2", "rem3"]
TASKS = ["task_video_visits", "task_ehr_documentation", "task_chat_service"]


def same(a: float, b: float) -> bool:
    return (not math.isfinite(a) and not math.isfinite(b)) or a == b


def check_people(people: pd.DataFrame, ids=("0001", "0002", "0003", "0004"), formats: bool = True, hours: bool = True) -> None:
    table = people.set_index("person_id")
    assert sorted(table.index) == sorted(ids)
    for pid in ids:
        want, got = EXPECTED[pid], table.loc[pid]
        assert got["role"] == want["role"], pid
        assert got["language"] == want["language"], pid
        assert all(same(float(got[i]), float(w)) for i, w in zip(ITEMS, want["items"])), (pid, [got[i] for i in ITEMS])
        assert [bool(got[t]) for t in TASKS] == want["tasks"], pid
        if hours:
            assert same(float(got["hours"]), want["hours"]), pid
        if formats:
            assert got["formats"] == want["formats"], pid


def load(name: str, programme, **kw):
    raw = read_survey(EXPORTS / name, sheet=kw.pop("sheet", None))
    return raw, import_survey(raw, programme, **kw)


def personal_values_absent(result, *values: str) -> None:
    everything = pd.concat([result.people.astype(str), result.rejects.astype(str), result.warnings.astype(str)])
    text = " ".join(str(v) for v in everything.to_numpy().ravel().tolist())
    for v in values:
        assert v not in text


# --------------------------------------------------------------------------- point 4: survey tools


def test_microsoft_forms_xlsx(tiny_programme):
    raw, result = load("ms_forms.xlsx", tiny_programme)
    assert result.layout == "Microsoft Forms"
    check_people(result.people)
    assert result.dropped_personal == ("Email", "Name")
    # "Video visits;Chat service;" became two ticked task columns; the question is not "ignored".
    assert "Which of these services do you use in your work?" not in result.ignored
    assert result.timestamp == "Completion time"  # real Excel date-times, read as ISO text
    assert raw.frame["Completion time"].iloc[0] == "2026-09-01 08:11:33"
    personal_values_absent(result, "Aino Virtanen", "@example")
    assert "Detected layout: Microsoft Forms" in import_summary(raw, result)


def test_google_forms_grid_checkboxes_and_resubmission(tiny_programme):
    raw, result = load("google_forms.csv", tiny_programme)
    assert result.layout == "Google Forms"
    check_people(result.people)
    # 0003 answered twice; the later submission (row 4, role nurse, ict1 Agree) is kept.
    assert result.people.set_index("person_id").loc["0003", "row"] == 4
    superseded = result.rejects[result.rejects["row"] == 3]
    assert superseded[["line", "person_id", "column", "value"]].values.tolist() == [[4, "0003", "Timestamp", "2026/09/01 7:59:59 AM GMT+3"]]
    assert superseded["reason"].iloc[0].startswith("superseded by row 4 (later submission)")
    assert result.n_superseded == 1
    assert result.dropped_personal == ("Email Address",)
    personal_values_absent(result, "@example")
    text = import_summary(raw, result)
    assert "Detected layout: Google Forms" in text
    assert "keep the latest submission by 'Timestamp'; superseded rows: 1" in text


def test_google_forms_duplicates_reject_policy(tiny_programme):
    _, result = load("google_forms.csv", tiny_programme, duplicates="reject")
    assert "0003" not in set(result.people["person_id"])
    assert result.rejects[result.rejects["person_id"] == "0003"]["row"].tolist() == [3, 4]
    assert all("all copies are rejected" in r for r in result.rejects["reason"])


def test_limesurvey_codes_multichoice_incomplete_and_trailing_record(tiny_programme):
    raw, result = load("limesurvey.csv", tiny_programme)
    assert result.layout == "LimeSurvey"
    assert raw.delimiter == ";"
    check_people(result.people)  # A1–A5 → 1–5, Y/empty → ticked or not, "-99" → missing
    assert result.n_read == 5  # the trailing empty record is not a person
    incomplete = result.rejects.set_index("row").loc[5]
    assert (incomplete["person_id"], incomplete["column"]) == ("0005", "submitdate")
    assert "Incomplete response" in incomplete["reason"]
    assert result.dropped_personal == ("ipaddr",)
    personal_values_absent(result, "10.0.0.")


def test_qualtrics_three_header_rows_and_unfinished_policy(tiny_programme):
    raw, result = load("qualtrics.csv", tiny_programme)
    assert result.layout == "Qualtrics"
    assert raw.encoding == "utf-8-sig"
    check_people(result.people, formats=False)
    # The question-text and ImportId rows are headers, never people: the first person is row 1, line 4.
    assert result.n_read == 5
    assert result.people["row"].tolist() == [1, 2, 3, 4]
    unfinished = result.rejects.iloc[0]
    assert (unfinished["row"], unfinished["line"], unfinished["person_id"], unfinished["value"]) == (5, 8, "0009", "False")
    assert "Unfinished response" in unfinished["reason"] and "progress 40%" in unfinished["reason"]
    assert set(result.dropped_personal) == {"IPAddress", "RecipientLastName", "RecipientFirstName", "RecipientEmail", "LocationLatitude", "LocationLongitude"}
    personal_values_absent(result, "192.0.2.", "Virtanen", "@example", "60.19")


def test_redcap_raw_codes_and_checkbox_columns(tiny_programme):
    _, result = load("redcap.csv", tiny_programme)
    assert result.layout == "REDCap"
    check_people(result.people)  # services___video_visits = 1 → task; formats___* joined in programme order
    assert result.matched["person_id"] == "person_id"  # record_id is the person id
    incomplete = result.rejects.set_index("row").loc[5]
    assert (incomplete["column"], incomplete["value"]) == ("digital_competence_complete", "0")
    assert result.timestamp == "digital_competence_timestamp"  # "[not completed]" of the rejected record is no obstacle


def test_mapping_file_for_another_tool(tiny_programme):
    mapping = load_mapping(EXPORTS / "webropol.toml", tiny_programme)
    raw, result = load("webropol.csv", tiny_programme, mapping=mapping)
    assert result.layout == "Webropol"
    assert raw.encoding == "cp1252" and raw.delimiter == ";"
    # Reversed numeric codes (1 = Täysin samaa mieltä) and 99 = no answer, as the mapping declares.
    check_people(result.people, formats=False)
    assert result.dropped_personal == ("Vastaajan nimi",)
    assert result.timestamp == "Vastausaika"
    personal_values_absent(result, "Aino", "Mäkinen")


def test_without_the_mapping_the_missing_columns_point_to_it(tiny_programme):
    with pytest.raises(SurveyError) as info:
        load("webropol.csv", tiny_programme)
    assert "--mapping" in str(info.value)


# --------------------------------------------------------------------------- points 1 and 2: encodings, delimiters


def test_pipe_delimiter_decided_over_several_lines(tiny_programme):
    raw, result = load("pipe.csv", tiny_programme)
    assert raw.delimiter == "|"
    assert raw.frame.columns[0] == "submitted_at;utc"
    check_people(result.people)


def test_mixed_encodings_name_the_first_bad_line(tiny_programme):
    with pytest.raises(SurveyError) as info:
        read_survey(EXPORTS / "mixed_encoding.csv")
    text = str(info.value)
    assert "line 5 is not valid UTF-8" in text and "line 3 holds UTF-8" in text and "--encoding" in text
    # With --encoding the user takes responsibility: read as cp1252, as asked.
    raw = read_survey(EXPORTS / "mixed_encoding.csv", encoding="cp1252")
    assert raw.frame["site"].iloc[3] == "Keskussairaala Pääkonttori"


def test_encoding_is_named_in_the_summary(tiny_programme):
    mapping = load_mapping(EXPORTS / "webropol.toml", tiny_programme)
    raw, result = load("webropol.csv", tiny_programme, mapping=mapping)
    assert "encoding: cp1252 (Windows, Western European)" in import_summary(raw, result)
    raw, result = load("qualtrics.csv", tiny_programme)
    assert "encoding: UTF-8 with BOM" in import_summary(raw, result)


# --------------------------------------------------------------------------- point 3: XLSX


def test_excel_resaved_workbook(tiny_programme):
    with pytest.raises(SurveyError) as info:
        read_survey(EXPORTS / "excel_resaved.xlsx")
    assert "'Ohjeet'" in str(info.value) and "'Vastaukset'" in str(info.value) and "--sheet" in str(info.value)
    raw, result = load("excel_resaved.xlsx", tiny_programme, sheet="Vastaukset")
    assert raw.frame["person_id"].tolist() == ["4512", "2", "3", "4"]  # 4512.0 → "4512"
    assert raw.lines.tolist() == [2, 3, 5, 6]  # the formatted empty row 4 and the 20 after are not people
    assert raw.skipped_empty == 1
    assert result.n_read == 4
    people = result.people.set_index("person_id")
    assert people.loc["4512", "ict1"] == 5.0 and people.loc["2", "hours"] == 2.5


def test_malicious_xml_is_not_expanded(tiny_programme):
    try:
        raw = read_survey(EXPORTS / "malicious.xlsx")
    except SurveyError as exc:  # refusing the entities is safe
        assert "root:" not in str(exc)
        return
    text = " ".join(raw.frame.astype(str).to_numpy().ravel())
    assert "root:" not in text and "aaaaaaaaaa" * 100 not in text


# --------------------------------------------------------------------------- point 5: labels


def test_labels_in_any_form_and_an_unknown_label(tiny_programme):
    _, result = load("labels.csv", tiny_programme)
    people = result.people.set_index("person_id")
    assert [people.loc["0001", i] for i in ITEMS] == [5.0, 1.0, 4.0, 2.0, 3.0, 4.0]
    assert [people.loc["0003", i] for i in ITEMS] == [4.0, 2.0, 3.0, 5.0, 4.0, 1.0]
    p2 = [people.loc["0002", i] for i in ITEMS]
    assert p2[0] == 5.0 and math.isnan(p2[1]) and p2[5] == 1.0  # "-99" is a declared missing code
    bad = result.rejects
    assert bad[["row", "person_id", "column", "value"]].values.tolist() == [[4, "0004", "rem2", "Samaa mieltä"]]
    assert "Unknown answer" in bad["reason"].iloc[0]


# --------------------------------------------------------------------------- point 6: ids


def test_excel_mangled_ids_are_warned_by_row_and_trim_collisions_rejected(tiny_programme):
    raw, result = load("excel_ids.csv", tiny_programme)
    assert list(result.warnings.columns) == REJECT_COLUMNS
    assert result.warnings[["row", "line", "value"]].values.tolist() == [[1, 2, "1.9.2026"], [2, 3, "1.23457E+11"]]
    assert set(result.people["person_id"]) == {"1.9.2026", "1.23457E+11", "0003"}  # warned, not rejected
    clash = result.rejects
    assert clash["row"].tolist() == [4, 5]
    assert all("rows 4, 5" in r and "same after removing surrounding spaces" in r for r in clash["reason"])
    assert clash["value"].tolist() == [" 0004 ", "0004"]
    text = import_summary(raw, result)
    assert "2 id(s) look changed by Excel" in text and "rows 1, 2" in text


# --------------------------------------------------------------------------- point 7: duplicates


def test_duplicates_keep_latest_by_default(tiny_programme):
    _, result = load("duplicates.csv", tiny_programme)
    assert result.duplicates == "keep-latest"
    people = result.people.set_index("person_id")
    assert people.loc["0002", "row"] == 5 and people.loc["0002", "ict1"] == 2.0  # the latest answer
    rejects = result.rejects.set_index("row")
    assert rejects.loc[2, "reason"].startswith("superseded by row 5 (later submission)")
    assert rejects.loc[4, "reason"].startswith("superseded by row 5 (later submission)")
    # 0003's copies share their time: which is the latest is unknown, so both are rejected.
    assert "0003" not in people.index
    assert "shared by several copies" in rejects.loc[3, "reason"] and "all copies are rejected" in rejects.loc[6, "reason"]
    assert result.n_superseded == 2
    assert result.n_accepted + result.n_rejected == result.n_read == 7


def test_duplicates_reject_policy(tiny_programme):
    _, result = load("duplicates.csv", tiny_programme, duplicates="reject")
    assert set(result.people["person_id"]) == {"0001", "0004"}
    assert result.n_superseded == 0


# --------------------------------------------------------------------------- CLI


def test_cli_validate_with_mapping_and_duplicates(cli, tmp_path):
    result = cli("validate", EXPORTS / "webropol.csv", "--mapping", EXPORTS / "webropol.toml", *TINY_OPT)
    assert result.exit_code == 0, result.output
    assert "Layout from the mapping file: Webropol" in result.output and "Detected layout" not in result.output
    assert "personal data dropped (1): Vastaajan nimi" in result.output
    assert "Aino" not in result.output
    out = tmp_path / "rejects.csv"
    result = cli("validate", EXPORTS / "duplicates.csv", "--duplicates", "reject", "--errors-out", out, *TINY_OPT)
    assert result.exit_code == 1
    assert "every copy is rejected (--duplicates reject)" in result.output
    assert len(pd.read_csv(out)) == 5


def test_cli_rejects_an_unknown_duplicates_policy(cli):
    result = cli("validate", EXPORTS / "duplicates.csv", "--duplicates", "first", *TINY_OPT)
    assert result.exit_code == 2


def test_cli_bad_mapping_file_lists_every_problem(cli, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[survey]\ntoool = "x"\n[columns]\nict9 = "Q1"\n[values.role]\n"1" = "surgeon"\n', encoding="utf-8")
    result = cli("validate", EXPORTS / "webropol.csv", "--mapping", bad, *TINY_OPT)
    assert result.exit_code == 1
    assert "3 problem(s)" in result.output
    assert "key survey.toool" in result.output and "key columns.ict9" in result.output and "key values.role.1" in result.output
    assert "Traceback" not in result.output


def test_init_writes_an_example_mapping_that_loads(cli, tmp_path, default_programme):
    result = cli("init", tmp_path / "prog", "--mapping", tmp_path / "my-tool.toml")
    assert result.exit_code == 0, result.output
    mapping = load_mapping(tmp_path / "my-tool.toml", default_programme)
    assert mapping.tool == "Webropol" and mapping.columns["person_id"][0].header == "Henkilönumero"
    again = cli("init", tmp_path / "prog2", "--mapping", tmp_path / "my-tool.toml")
    assert again.exit_code == 2 and "--force" in again.output


# --------------------------------------------------------------------------- freeing the text while decoding

RELEASED = [
    ("ms_forms.xlsx", {}),
    ("google_forms.csv", {}),
    ("google_forms.csv", {"duplicates": "reject"}),
    ("limesurvey.csv", {}),
    ("qualtrics.csv", {}),
    ("redcap.csv", {}),
    ("webropol.csv", {"mapping": "webropol.toml"}),
    ("pipe.csv", {}),
    ("excel_resaved.xlsx", {"sheet": "Vastaukset"}),
    ("labels.csv", {}),
    ("excel_ids.csv", {}),
    ("duplicates.csv", {}),
    ("redcap_instruments.csv", {"mapping": "redcap_instruments.toml"}),
    ("limesurvey_fulltext.csv", {"mapping": "limesurvey_fulltext.toml"}),
    ("surveymonkey.csv", {"mapping": "surveymonkey.toml"}),
    ("qualtrics_7point.csv", {"mapping": "qualtrics_7point.toml"}),
    ("google_forms_noid.csv", {"mapping": "google_forms_noid.toml"}),
]


@pytest.mark.parametrize(("name", "options"), RELEASED, ids=[f"{n}-{'-'.join(map(str, o.values())) or 'default'}" for n, o in RELEASED])
def test_freeing_the_text_while_decoding_changes_no_result(tiny_programme, name, options):
    """`assign` frees each text column once decoded (consume): people, rejects and warnings are the same."""
    options = dict(options)
    if "mapping" in options:
        options["mapping"] = load_mapping(EXPORTS / options["mapping"], tiny_programme)
    sheet = options.pop("sheet", None)
    kept = import_survey(read_survey(EXPORTS / name, sheet=sheet), tiny_programme, **options)
    raw = read_survey(EXPORTS / name, sheet=sheet)
    released = import_survey(raw, tiny_programme, consume=True, **options)
    assert raw.frame.shape[1] == 0  # the caller's cells are gone, not copied
    for table in ("people", "rejects", "warnings"):
        pd.testing.assert_frame_equal(getattr(released, table), getattr(kept, table))
    assert (released.n_read, released.n_superseded, released.timestamp, released.layout, released.matched, released.ignored, released.notes) == (
        kept.n_read, kept.n_superseded, kept.timestamp, kept.layout, kept.matched, kept.ignored, kept.notes
    )


def test_a_bad_personal_or_timestamp_key_is_an_error_not_ignored(cli, tmp_path):
    """A mapping's personal-data columns must never be dropped from the mapping without a word: the
    column would then not be removed as personal data."""
    bad = tmp_path / "bad.toml"
    bad.write_text('[survey]\ntimestamp = 5\npersonal = ["Email", { a = 1 }]\n', encoding="utf-8")
    result = cli("validate", EXPORTS / "webropol.csv", "--mapping", bad, *TINY_OPT)
    assert result.exit_code == 1, result.output
    assert "key survey.timestamp" in result.output and "key survey.personal" in result.output
    assert "Traceback" not in result.output

