"""Real survey-tool exports import with nothing lost (issue 14).

Fixtures are made by tests/data/exports/make_tool_exports.py from the tools'
documented formats; every decoded cell is checked against what the generator
wrote. Header rows are removed in one place, and a run that would lose a
record stops with exit 1.
"""

from __future__ import annotations

import csv
import io
import math
import sys

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import DATA, TINY
from trainmatch.errors import MappingError
from trainmatch.io import read_survey
from trainmatch.layouts import LIMESURVEY, QUALTRICS, SURVEYMONKEY, detect_layout
from trainmatch.mapping import load_mapping
from trainmatch.summary import import_summary
from trainmatch.survey import import_survey

EXPORTS = DATA / "exports"
sys.path.insert(0, str(EXPORTS))
import make_exports  # noqa: E402
import make_tool_exports  # noqa: E402

TINY_OPT = ("--programme", str(TINY))
ITEMS = make_exports.ITEMS
TEXT = make_exports.TEXT_EN
TASKS = make_exports.TASKS
NAN = float("nan")


def imported(name: str, programme, **kw):
    """Read the fixture ``name``.csv and import it with its mapping file ``name``.toml."""
    raw = read_survey(EXPORTS / f"{name}.csv")
    return raw, import_survey(raw, programme, mapping=load_mapping(EXPORTS / f"{name}.toml", programme), **kw)


def same(a: float, b: float) -> bool:
    # NaN expected: no code on the scale (empty, a missing code, or "don't know", which decodes to -inf).
    return (math.isnan(b) and not math.isfinite(a)) or abs(a - b) < 1e-6


def expected_people(items=None, role=None, site=None, tasks=None):
    """What the generator encoded, person by person: {id: {column: value}}."""
    out = {}
    for pid, rid, _role, psite, lang, answers, ticks, hours, formats, _name, _email in make_exports.PEOPLE:
        row = {"role": role or rid, "site": site or psite, "language": lang, "hours": float(hours.replace(",", ".")) if hours else NAN,
               "formats": ";".join(formats)}
        values = items(pid) if items else [float(a) if a > 0 else NAN for a in answers]
        row |= dict(zip(ITEMS, values))
        row |= {f"task_{t}": bool(on) for t, on in zip(TASKS, ticks)}
        if tasks:
            row |= tasks
        out[pid] = row
    return out


def check_cells(people: pd.DataFrame, expected: dict, columns: list[str], ids=None) -> None:
    table = people.set_index("person_id")
    assert sorted(table.index) == sorted(ids or expected)
    for pid, want in zip(ids or expected, expected.values()):
        for c in columns:
            got = table.loc[pid, c]
            if isinstance(want[c], float):
                assert same(float(got), want[c]), (pid, c, got, want[c])
            else:
                assert got == want[c], (pid, c, got, want[c])


PERSON = ["role", "site", "language"]
ALL_TASKS = [f"task_{t}" for t in TASKS]


# --------------------------------------------------------------------------- point 4: every decoded cell


def test_redcap_two_instruments_completion_from_the_questionnaire(tiny_programme):
    raw, result = imported("redcap_instruments", tiny_programme)
    assert result.layout == "REDCap, with mapping file" and result.layout_source == "detected"
    check_cells(result.people, expected_people(), PERSON + ITEMS + ALL_TASKS + ["hours", "formats"])
    # 0002's screening form is Incomplete but the questionnaire is Complete: accepted.
    assert "0002" in set(result.people["person_id"])
    # 0005's questionnaire is Incomplete (0) and empty: rejected, naming the instrument.
    status = result.rejects  # for its status alone: the record is otherwise valid (role from the screening form, no answers)
    assert status[["row", "person_id", "column", "value"]].values.tolist() == [[5, "0005", "digital_competence_complete", "0"]]
    assert "'digital_competence', which holds the answers" in status["reason"].iloc[0]
    assert result.timestamp == "digital_competence_timestamp"
    assert any("other instruments ('screening') are not checked" in n for n in result.notes)


def test_limesurvey_full_text_headings_and_incomplete_responses(tiny_programme):
    raw, result = imported("limesurvey_fulltext", tiny_programme)
    assert result.layout.startswith(LIMESURVEY)
    answers = {p[0]: [float(a) if a > 0 else NAN for a in p[5]] for p in make_exports.PEOPLE}
    want = expected_people(items=lambda pid: answers[pid][:5] + [NAN])  # rem3 not asked
    check_cells(result.people, want, PERSON + ITEMS + ALL_TASKS + ["hours", "formats"])
    incomplete = result.rejects
    assert incomplete[["row", "line", "person_id", "column"]].values.tolist() == [[5, 6, "0005", "Date submitted"], [6, 7, "0006", "Date submitted"]]
    assert all(r.startswith("Incomplete response: LimeSurvey has no submit date") for r in incomplete["reason"])
    assert result.dropped_personal == ("IP address",)
    assert any("rem3 not asked; scored from the 2 items asked, of which 2 must be answered" in n for n in result.notes)


def test_surveymonkey_two_header_rows_cp1252_cr_line_ends(tiny_programme):
    raw, result = imported("surveymonkey", tiny_programme)
    assert raw.encoding == "cp1252" and result.layout.startswith(SURVEYMONKEY)
    assert result.header_rows == 2 and result.n_read == 4
    assert result.people["row"].tolist() == [1, 2, 3, 4]
    check_cells(result.people, expected_people(), PERSON + ITEMS + ALL_TASKS + ["hours"])  # "N/A" → missing
    assert set(result.dropped_personal) == {"IP Address", "Email Address", "First Name", "Last Name", "Custom Data 1"}
    assert result.timestamp == "End Date"


def test_qualtrics_seven_point_rescaled(tiny_programme):
    raw, result = imported("qualtrics_7point", tiny_programme)
    assert result.header_rows == 3 and result.n_read == 4

    def rescaled(pid):
        codes = make_tool_exports.SEVEN_POINT[pid]
        return [NAN if c is None else 1 + (c - 1) * 4 / 6 for c in codes[:5]] + [NAN if codes[5] is None else 1 + codes[5] * 4 / 10]

    check_cells(result.people, expected_people(items=rescaled), PERSON + ITEMS + ALL_TASKS)
    people = result.people.set_index("person_id")
    assert people.loc["0001", "ict1"] == 5.0 and people.loc["0004", "ict1"] == 1.0 and people.loc["0003", "rem3"] == 1.0  # 0 on 0–10


def test_google_forms_without_ids_constants_and_a_task_not_asked(tiny_programme):
    raw, result = imported("google_forms_noid", tiny_programme)
    want = expected_people(role="nurse", site="Ward 5", tasks={"task_chat_service": False})
    check_cells(result.people, want, PERSON + ITEMS + ALL_TASKS + ["hours"], ids=["GF1", "GF2", "GF3", "GF4"])
    # Stable for the same file.
    _, again = imported("google_forms_noid", tiny_programme)
    assert again.people["person_id"].tolist() == result.people["person_id"].tolist()
    assert any("counted as no for everyone: chat_service" in n for n in result.notes)


def test_the_generator_writes_the_committed_fixtures(tmp_path, monkeypatch):
    """The fixtures are the generator's output, byte for byte (no hand edits)."""
    monkeypatch.setattr(make_tool_exports, "HERE", tmp_path)
    make_tool_exports.main()
    for made in tmp_path.iterdir():
        assert made.read_bytes() == (EXPORTS / made.name).read_bytes(), made.name


# --------------------------------------------------------------------------- point 1: nothing lost

# Every export fixture with its number of data rows (people or not).
DATA_ROWS = [
    ("ms_forms.xlsx", None, 4), ("google_forms.csv", None, 5), ("limesurvey.csv", None, 5), ("qualtrics.csv", None, 5),
    ("redcap.csv", None, 5), ("webropol.csv", "webropol.toml", 4), ("pipe.csv", None, 4), ("labels.csv", None, 4),
    ("excel_ids.csv", None, 5), ("duplicates.csv", None, 7), ("redcap_instruments.csv", "redcap_instruments.toml", 5),
    ("limesurvey_fulltext.csv", "limesurvey_fulltext.toml", 6), ("surveymonkey.csv", "surveymonkey.toml", 4),
    ("qualtrics_7point.csv", "qualtrics_7point.toml", 4), ("google_forms_noid.csv", "google_forms_noid.toml", 4),
]


@pytest.mark.parametrize(("name", "mapping", "rows"), DATA_ROWS, ids=[d[0] for d in DATA_ROWS])
def test_every_data_row_is_in_people_or_rejects(tiny_programme, name, mapping, rows):
    m = load_mapping(EXPORTS / mapping, tiny_programme) if mapping else None
    result = import_survey(read_survey(EXPORTS / name), tiny_programme, mapping=m)
    assert result.n_read == rows
    assert sorted([*result.people["row"].tolist(), *result.rejects["row"].unique().tolist()]) == list(range(1, rows + 1))


def as_xlsx(source, target) -> None:
    """The export saved as a workbook: every record as read (header rows too), every cell as text."""
    import xlsxwriter

    raw = read_survey(source)
    book = xlsxwriter.Workbook(str(target))
    sheet = book.add_worksheet("Export")
    for j, h in enumerate(raw.frame.columns):
        if h:
            sheet.write_string(0, j, h)
    for i, row in enumerate(raw.frame.astype(str).itertuples(index=False), 1):
        for j, v in enumerate(row):
            if v:
                sheet.write_string(i, j, v)
    book.close()


@pytest.mark.parametrize(("name", "mapping", "rows"), [d for d in DATA_ROWS if d[0].endswith(".csv")], ids=[d[0] for d in DATA_ROWS if d[0].endswith(".csv")])
@pytest.mark.parametrize("variant", ["xlsx", "with a mapping file"])
def test_every_data_row_is_in_people_or_rejects_as_xlsx_and_with_a_mapping(tiny_programme, tmp_path, name, mapping, rows, variant):
    path = EXPORTS / name
    if variant == "xlsx":
        path = tmp_path / (name[:-4] + ".xlsx")
        as_xlsx(EXPORTS / name, path)
        m = load_mapping(EXPORTS / mapping, tiny_programme) if mapping else None
    else:
        text = (EXPORTS / mapping).read_text(encoding="utf-8") if mapping else '[survey]\ntool = "Any"\n'
        (tmp_path / "m.toml").write_text(text, encoding="utf-8")
        m = load_mapping(tmp_path / "m.toml", tiny_programme)
    result = import_survey(read_survey(path), tiny_programme, mapping=m)
    assert result.n_read == rows
    assert sorted([*result.people["row"].tolist(), *result.rejects["row"].unique().tolist()]) == list(range(1, rows + 1))


def qualtrics_rows(header_rows: int) -> list[list[str]]:
    rows = list(csv.reader(io.StringIO((EXPORTS / "qualtrics.csv").read_text(encoding="utf-8-sig"))))
    if header_rows == 3:
        return rows
    # Without the question-text row, the export tags name the items and tasks (as renamed in Qualtrics).
    tags = {f"Q1_{k}": i for k, i in enumerate(ITEMS, 1)} | {f"Q2_{k}": t for k, t in enumerate(TASKS, 1)}
    return [[tags.get(h, h) for h in rows[0]], *rows[3:]]


def write_qualtrics(path, header_rows: int) -> None:
    rows = qualtrics_rows(header_rows)
    if path.suffix == ".xlsx":
        import xlsxwriter

        book = xlsxwriter.Workbook(str(path))
        sheet = book.add_worksheet("Sheet0")
        for i, row in enumerate(rows):
            for j, v in enumerate(row):
                if v:
                    sheet.write_string(i, j, v)
        book.close()
    else:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\r\n").writerows(rows)
        path.write_bytes(buffer.getvalue().encode("utf-8-sig"))


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
@pytest.mark.parametrize("header_rows", [1, 3])
@pytest.mark.parametrize("mapping", ["none", "header_rows", "no header_rows"])
def test_qualtrics_header_rows_with_and_without_a_mapping(tiny_programme, tmp_path, suffix, header_rows, mapping):
    """The reported loss: header_rows = 3 in the mapping dropped the first two responses as well."""
    path = tmp_path / f"qualtrics{suffix}"
    write_qualtrics(path, header_rows)
    m = None
    if mapping != "none":
        text = '[survey]\ntool = "Qualtrics"\n' + (f"header_rows = {header_rows}\n" if mapping == "header_rows" else "")
        (tmp_path / "m.toml").write_text(text, encoding="utf-8")
        m = load_mapping(tmp_path / "m.toml", tiny_programme)
    raw = read_survey(path)
    result = import_survey(raw, tiny_programme, mapping=m)
    assert result.header_rows == header_rows
    assert result.n_read == 5
    assert result.people["person_id"].tolist() == ["0001", "0002", "0003", "0004"]
    assert result.rejects["row"].unique().tolist() == [5]  # the unfinished response
    assert result.people["row"].tolist() == [1, 2, 3, 4]
    first_line = header_rows + 1
    assert result.rejects["line"].tolist() == [first_line + 4]


@pytest.mark.parametrize(("actual", "declared"), [(1, 3), (3, 1), (3, 2)])
def test_a_mapping_header_rows_that_contradicts_the_layout_is_refused(cli, tmp_path, actual, declared):
    path = tmp_path / "qualtrics.csv"
    write_qualtrics(path, actual)
    (tmp_path / "m.toml").write_text(f"[survey]\nheader_rows = {declared}\n", encoding="utf-8")
    out = tmp_path / "problems.csv"
    result = cli("validate", path, "--mapping", tmp_path / "m.toml", "--errors-out", out, *TINY_OPT)
    assert result.exit_code == 1
    assert f"has {actual} header row(s), as its Qualtrics layout shows" in result.output
    assert f"header_rows = {declared} (key survey.header_rows)" in result.output and "Remove header_rows" in result.output
    assert not out.exists() and "Traceback" not in result.output


def test_the_reader_counts_records(tmp_path):
    assert read_survey(EXPORTS / "qualtrics.csv").records == 8  # 3 header rows + 5 responses
    assert read_survey(EXPORTS / "limesurvey.csv").records == 6  # the trailing empty record is not counted
    assert read_survey(EXPORTS / "surveymonkey.csv").records == 6  # CR-only line ends: the careful reader
    assert read_survey(EXPORTS / "excel_resaved.xlsx", sheet="Vastaukset").records == 5  # empty formatted rows are not records


def test_a_lost_record_stops_the_run(cli, tmp_path, monkeypatch):
    """Safety net independent of the layouts: if any step dropped a record, nothing is written."""
    from trainmatch import layouts

    real = layouts._drop_header_rows
    monkeypatch.setattr(layouts, "_drop_header_rows", lambda raw, extra: real(raw, extra + 1))  # a layout losing one row
    out = tmp_path / "problems.csv"
    result = cli("validate", EXPORTS / "qualtrics.csv", "--errors-out", out, *TINY_OPT)
    assert result.exit_code == 1
    assert "was not read completely: the file has 8 records with text, but 3 header row(s) + 4 rows read make 7" in result.output
    assert not out.exists() and "Traceback" not in result.output


# --------------------------------------------------------------------------- point 2: completion


@pytest.mark.parametrize(
    "headers",
    [
        ["Response ID", "Date submitted", "Last page", "Start language", "Seed", "Q [a]"],
        ["Antwort ID", "Datum Abgeschickt", "Letzte Seite", "Start-Sprache", "Zufallsstartwert", "Q [a]"],
        ["id", "submitdate", "lastpage", "startlanguage", "seed"],
    ],
)
def test_limesurvey_is_recognised_from_code_and_full_text_headings(headers):
    assert detect_layout(headers) == LIMESURVEY


def test_surveymonkey_and_qualtrics_are_recognised():
    assert detect_layout(["Respondent ID", "Collector ID", "Start Date", "End Date", "IP Address", "Q1", ""]) == SURVEYMONKEY
    assert detect_layout(["StartDate", "EndDate", "Status", "Finished", "ResponseId"]) == QUALTRICS


def plain_with_status(tmp_path):
    rows = [["person_id", "Status", "role", *ITEMS, *TASKS]]
    for n, status in enumerate(["Complete", "Partial", "complete ", "Complete"], 1):
        rows.append([f"000{n}", status, "nurse", "4", "4", "4", "4", "4", "4", "1", "0", "0"])
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    (tmp_path / "s.csv").write_text(buffer.getvalue(), encoding="utf-8")
    return tmp_path / "s.csv"


def test_mapping_completion_filter(tiny_programme, tmp_path):
    path = plain_with_status(tmp_path)
    (tmp_path / "m.toml").write_text('[survey]\ntool = "HR system"\ncomplete = { column = "Status", values = ["Complete"] }\n', encoding="utf-8")
    result = import_survey(read_survey(path), tiny_programme, mapping=load_mapping(tmp_path / "m.toml", tiny_programme))
    assert result.people["person_id"].tolist() == ["0001", "0003", "0004"]  # case and spaces ignored
    assert result.rejects[["row", "column", "value"]].values.tolist() == [[2, "Status", "Partial"]]
    assert result.rejects["reason"].iloc[0].startswith("Not a complete response: the mapping file accepts only 'Complete'")


def test_mapping_completion_filter_replaces_the_layouts_own(tiny_programme, tmp_path):
    (tmp_path / "m.toml").write_text('[survey]\ncomplete = { column = "Progress", values = ["100", "40"] }\n', encoding="utf-8")
    result = import_survey(read_survey(EXPORTS / "qualtrics.csv"), tiny_programme, mapping=load_mapping(tmp_path / "m.toml", tiny_programme))
    assert "Unfinished response" not in " ".join(result.rejects["reason"])


# --------------------------------------------------------------------------- point 3: summary and bad input


def test_summary_names_where_the_layout_came_from(tiny_programme):
    raw, result = imported("google_forms_noid", tiny_programme)
    assert "Detected layout: Google Forms, with mapping file" in import_summary(raw, result)
    raw = read_survey(EXPORTS / "webropol.csv")
    result = import_survey(raw, tiny_programme, mapping=load_mapping(EXPORTS / "webropol.toml", tiny_programme))
    text = import_summary(raw, result)
    assert "Layout from the mapping file: Webropol" in text and "Detected layout" not in text


BAD_AT_IMPORT = [
    ("surveymonkey.csv", '[columns]\nict1 = "My work devices"\n', "has no column 'My work devices'", "columns.ict1"),
    ("webropol.csv", '[columns]\nict1 = { header = "Osaan käynnistää laitteet.", row = 2 }\n', "has 1 header row(s), so no header row 2", "columns.ict1"),
    ("qualtrics_7point.csv", '[survey]\nheader_rows = 3\n[scale]\nfrom = [1, 5]\n', "row 1, column 'Q1_1': holds the answer '7' in the column mapped to 'ict1', outside the range 1–5", "scale.from"),
    ("surveymonkey.csv", '[survey]\ncomplete = { column = "Status", values = ["Complete"] }\n', "has no column 'Status'", "survey.complete"),
    ("surveymonkey.csv", '[columns]\nict1 = { column_number = 99 }\n', "has 24 columns, so no column number 99", "columns.ict1"),
]


@pytest.mark.parametrize(("name", "toml", "message", "key"), BAD_AT_IMPORT, ids=[b[3] + "-" + b[0] for b in BAD_AT_IMPORT])
def test_a_mapping_that_does_not_fit_the_export(cli, tmp_path, name, toml, message, key):
    (tmp_path / "m.toml").write_text(toml, encoding="utf-8")
    out = tmp_path / "problems.csv"
    result = cli("validate", EXPORTS / name, "--mapping", tmp_path / "m.toml", "--errors-out", out, *TINY_OPT)
    assert result.exit_code == 1, result.output
    assert message in result.output and key in result.output and str(tmp_path / "m.toml") in result.output
    assert not out.exists() and "Traceback" not in result.output


def test_new_mapping_keys_are_validated_with_their_keys(tmp_path, tiny_programme):
    path = tmp_path / "m.toml"
    path.write_text(
        '[survey]\nnot_asked = ["ict9"]\ncomplete = { column = "Status" }\nheader_rows = 2\n'
        '[columns]\nperson_id = { generate = "hash" }\nict1 = { header = "Q1", row = 3 }\nict2 = { column_number = 0 }\n'
        'rem1 = { header = "Q4", scale = { from = [7, 1] } }\nrole = { header = "R", scale = { from = [1, 7] } }\nrem2 = { heading = "Q5" }\n'
        '[scale]\ncodes = { "N/A" = 0 }\n'
        '[constants]\nward = "5"\nrole = "surgeon"\nvideo_visits = "maybe"\nict3 = "4"\npreferred_formats = "workshop;webinars"\n',
        encoding="utf-8",
    )
    with pytest.raises(MappingError) as info:
        load_mapping(path, tiny_programme)
    keys = [p.key for p in info.value.problems]
    assert keys == [
        "columns.person_id.generate", "columns.ict1.row", "columns.ict2.column_number", "columns.rem1.scale.from", "columns.role.scale",
        "columns.rem2.heading", "columns.rem2", "scale.codes.N/A", "constants.ward", "constants.role", "constants.video_visits",
        "constants.ict3", "constants.preferred_formats", "survey.not_asked", "survey.complete.values",
    ]
    text = str(info.value)
    assert "Did you mean 'header'?" in text  # rem2.heading
    assert "is beyond the 2 header row(s)" in text and "Got 'surgeon'" in text and "List items not asked in survey.not_asked" in text


def test_a_constant_for_an_unknown_programme_column_exits_1(cli, tmp_path):
    (tmp_path / "m.toml").write_text('[constants]\nward = "Ward 5"\n', encoding="utf-8")
    result = cli("validate", EXPORTS / "google_forms_noid.csv", "--mapping", tmp_path / "m.toml", *TINY_OPT)
    assert result.exit_code == 1
    assert "key constants.ward: is not a programme column that can be the same for everyone" in result.output
    assert "Traceback" not in result.output


def test_a_domain_with_too_few_items_asked_is_reported(tiny_programme, tmp_path):
    from trainmatch.scoring import score

    text = (EXPORTS / "limesurvey_fulltext.toml").read_text(encoding="utf-8").replace('["rem3"]', '["rem2", "rem3"]')
    (tmp_path / "m.toml").write_text(text, encoding="utf-8")
    result = import_survey(read_survey(EXPORTS / "limesurvey_fulltext.csv"), tiny_programme, mapping=load_mapping(tmp_path / "m.toml", tiny_programme))
    assert any("only 1 of 3 items asked and a score needs 2 answered, so no one gets a score there" in n for n in result.notes)
    scored = score(result.people, tiny_programme)
    assert scored["score_remote"].isna().all() and scored["score_ict"].notna().all()


def test_one_item_in_two_columns(tiny_programme, tmp_path):
    """A questionnaire with a column per language version: each person answers in one of them."""
    rows = [["person_id", "role", "Q1 (suomi)", "Q1 (svenska)", *ITEMS[1:], *TASKS],
            ["0001", "nurse", "5", "", "4", "4", "4", "4", "4", "1", "0", "0"],
            ["0002", "nurse", "", "2", "4", "4", "4", "4", "4", "1", "0", "0"],
            ["0003", "nurse", "", "", "4", "4", "4", "4", "4", "1", "0", "0"],
            ["0004", "nurse", "3", "4", "4", "4", "4", "4", "4", "1", "0", "0"]]
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    (tmp_path / "s.csv").write_text(buffer.getvalue(), encoding="utf-8")
    (tmp_path / "m.toml").write_text('[columns]\nict1 = ["Q1 (suomi)", "Q1 (svenska)"]\n', encoding="utf-8")
    result = import_survey(read_survey(tmp_path / "s.csv"), tiny_programme, mapping=load_mapping(tmp_path / "m.toml", tiny_programme))
    people = result.people.set_index("person_id")["ict1"]
    assert people["0001"] == 5.0 and people["0002"] == 2.0 and np.isnan(people["0003"])
    assert result.rejects[["row", "column", "value"]].values.tolist() == [[4, "ict1", "Q1 (suomi): 3 | Q1 (svenska): 4"]]
    assert "Answered differently in the columns that the mapping file combines into 'ict1'" in result.rejects["reason"].iloc[0]
    assert not [h for h in result.ignored if "Q1" in h]


def test_a_columns_own_scale_decodes_codes_labels_and_not_applicable(tiny_programme):
    from trainmatch.answers import scale_decoder
    from trainmatch.mapping import ColumnScale

    rescale = scale_decoder(tiny_programme, ColumnScale({}, source_range=(0, 10), key="columns.rem3.scale"))
    assert rescale("10") == (5.0, None) and rescale(" 0 ") == (1.0, None) and rescale("5") == (3.0, None)
    assert math.isnan(rescale("N/A")[0]) and rescale("N/A")[1] is None  # not applicable: no answer
    assert rescale("Agree") == (4.0, None)  # the programme's labels still read
    assert "outside this column's scale 0–10 (columns.rem3.scale.from" in rescale("11")[1]
    table = scale_decoder(tiny_programme, ColumnScale({"yes": 5.0, "no": 1.0, "n/a": 3.0}, missing=("99",), reverse=True))
    assert table("Yes") == (5.0, None) and table("N/A") == (3.0, None)  # a code the mapping gives wins
    assert math.isnan(table("99")[0]) and table("2") == (4.0, None)  # reversed bare code


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    qualtrics=st.booleans(),
    extra=st.integers(0, 3),
    declare=st.booleans(),
    with_mapping=st.booleans(),
    answers=st.lists(st.sampled_from(["4", "", "9", "x"]), min_size=1, max_size=12),
    blank_after=st.sets(st.integers(0, 11), max_size=3),
    xlsx=st.booleans(),
)
def test_header_rows_plus_rows_read_are_the_records(
    tiny_programme, tmp_path_factory, qualtrics, extra, declare, with_mapping, answers, blank_after, xlsx
):
    """Invariant: whatever the header rows (a layout's own, or the mapping's) and the answers,
    every data record is in people or rejects, and the reader's record count adds up."""
    folder = tmp_path_factory.mktemp("h")
    meta = ["StartDate", "EndDate", "Finished", "ResponseId"] if qualtrics else []
    header = [*meta, "person_id", "role", *ITEMS, *TASKS]
    if qualtrics:
        extra = min(extra, 2)  # Qualtrics: question texts, then ImportIds
        texts = ["Start Date", "End Date", "Finished", "Response ID", "Person", "Role", *TEXT, *TASKS]
        ids = [f'{{"ImportId":"QID{j}"}}' for j in range(len(header))]
        rows = [header, *[texts, ids][:extra]]
    else:
        rows = [header] + [[f"Q{k}.{j}" for j in range(len(header))] for k in range(extra)]
    for n, a in enumerate(answers):
        stamp = ["2026-09-01 08:00:00", "2026-09-01 08:10:00", "True", f"R_{n}"] if qualtrics else []
        rows.append([*stamp, f"{n:04d}", "nurse", a, "3", "3", "3", "3", "3", "1", "0", ""])
        if n in blank_after:
            rows.append([""] * len(header))  # a blank record between answers is not a person
    path = folder / ("s.xlsx" if xlsx else "s.csv")
    if xlsx:
        import xlsxwriter

        book = xlsxwriter.Workbook(str(path))
        sheet = book.add_worksheet()
        for i, row in enumerate(rows):
            for j, v in enumerate(row):
                if v:
                    sheet.write_string(i, j, v)
        book.close()
    else:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(rows)
        path.write_text(buffer.getvalue(), encoding="utf-8")
    declare = declare or not qualtrics  # a file of no known tool says its header rows in the mapping; Qualtrics may
    (folder / "m.toml").write_text(f"[survey]\nheader_rows = {1 + extra}\n" if declare else "[survey]\n", encoding="utf-8")
    mapping = load_mapping(folder / "m.toml", tiny_programme) if declare or with_mapping else None
    raw = read_survey(path)
    result = import_survey(raw, tiny_programme, mapping=mapping)
    assert raw.records == 1 + extra + len(answers)
    assert result.header_rows == 1 + extra
    assert result.n_read == len(answers)
    rows_seen = sorted([*result.people["row"].tolist(), *result.rejects["row"].unique().tolist()])
    assert rows_seen == list(range(1, len(answers) + 1))
    assert set(result.people["person_id"]) == {f"{n:04d}" for n, a in enumerate(answers) if a in ("4", "")}


def test_a_mappings_own_codes_read_limesurveys_answer_codes_as_written(tiny_programme, tmp_path):
    """LimeSurvey's A1…A5 are read as 1…5 unless the mapping says what they mean (here, the other way round)."""
    (tmp_path / "m.toml").write_text('[scale]\ncodes = { A1 = 5, A2 = 4, A3 = 3, A4 = 2, A5 = 1 }\n', encoding="utf-8")
    result = import_survey(read_survey(EXPORTS / "limesurvey.csv"), tiny_programme, mapping=load_mapping(tmp_path / "m.toml", tiny_programme))
    plain = import_survey(read_survey(EXPORTS / "limesurvey.csv"), tiny_programme)
    mine, theirs = result.people.set_index("person_id")[ITEMS], plain.people.set_index("person_id").loc[result.people["person_id"], ITEMS]
    answered = mine.notna().to_numpy()
    assert (mine.to_numpy()[answered] == 6 - theirs.to_numpy()[answered]).all() and answered.sum() > 10
