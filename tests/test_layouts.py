"""Survey-tool layouts: detection from the header row, option splitting, timestamps, the mapping file."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import DATA
from trainmatch.columns import parse_timestamps
from trainmatch.errors import MappingError
from trainmatch.layouts import GOOGLE_FORMS, LIMESURVEY, MS_FORMS, PLAIN, QUALTRICS, REDCAP, detect_layout, split_options
from trainmatch.mapping import load_mapping, mapping_example


@pytest.mark.parametrize(
    "headers, expected",
    [
        (["Id", "Start time", "Completion time", "Email", "Name", "Q1"], MS_FORMS),
        (["Tunnus", "Aloitusaika", "Valmistumisaika", "Sähköposti", "Nimi", "Q1"], MS_FORMS),
        (["Timestamp", "Email Address", "Q [Row]"], GOOGLE_FORMS),
        (["Aikaleima", "Q"], GOOGLE_FORMS),
        (["id", "submitdate", "lastpage", "startlanguage", "seed", "Q1[SQ001]"], LIMESURVEY),
        (["StartDate", "EndDate", "Status", "Progress", "Finished", "RecordedDate", "ResponseId", "Q1_1"], QUALTRICS),
        (["record_id", "ict1", "tasks___1", "form_complete"], REDCAP),
        (["participant", "redcap_event_name", "ict1"], REDCAP),
        (["submitted_at", "person_id", "role", "ict1"], PLAIN),
        (["id", "role"], PLAIN),  # an "id" alone is no tool's signature
    ],
)
def test_detect_layout_from_headers(headers, expected):
    assert detect_layout(headers) == expected


OPTIONS = {"video visits": "video", "video": "short", "chat, text and phone": "chat", "chat": "chat_only"}


@pytest.mark.parametrize(
    "answer, separator, ids, unknown",
    [
        ("Video visits, Chat, text and phone", ", ", ["video", "chat"], None),  # an option holding the separator
        ("Chat, Video", ", ", ["chat_only", "short"], None),
        ("Video visits;Chat;", ";", ["video", "chat_only"], None),  # Microsoft Forms' trailing ';'
        ("  VIDEO\u00a0VISITS ", ", ", ["video"], None),  # case and non-breaking space
        ("Video visits, Fax", ", ", ["video"], "fax"),
        ("", ", ", [], None),
        ("Video visits Chat", " ", ["video", "chat_only"], None),  # a separator of spaces only
        ("Video visits AND Chat, text and phone", " AND ", ["video", "chat"], None),  # capitals in the separator
        ("Video visits – Chat", " – ", ["video", "chat_only"], None),  # a typographic dash
        ("Video visits\nChat", "\n", ["video", "chat_only"], None),  # one answer per line
        ("Video visits and Fax", " and ", ["video"], "fax"),
        ("Video visits Fax machine", " ", ["video"], "fax machine"),  # with spaces as separator, the whole rest
    ],
)
def test_split_options_longest_first(answer, separator, ids, unknown):
    found, bad = split_options(answer, OPTIONS, separator)
    assert found == ids
    assert bad == unknown


def test_parse_timestamps_formats_and_ambiguity():
    stamps, why = parse_timestamps(pd.Series(["2026/09/01 8:10:33 AM GMT+3", "2026/09/01 1:05:40 PM GMT+3", ""]))
    assert why is None
    assert stamps[1] > stamps[0] and np.isnat(stamps[2])
    _, why = parse_timestamps(pd.Series(["01/02/2026 10:00", "03/04/2026 10:00"]))
    assert why is not None and "ambiguous" in why  # day/month order unknown: never guessed
    stamps, why = parse_timestamps(pd.Series(["01/02/2026 10:00", "13/04/2026 10:00"]))
    assert why is None and str(stamps[0])[:10] == "2026-02-01"  # 13 can only be a day
    stamps, why = parse_timestamps(pd.Series(["1.9.2026 8.10.33", "2.9.2026 8.10.33"]))
    assert why is None and stamps[1] > stamps[0]
    _, why = parse_timestamps(pd.Series(["yesterday"]))
    assert "no known format" in why


def test_the_shipped_example_mapping_is_valid(default_programme, tmp_path):
    path = tmp_path / "mapping.toml"
    path.write_bytes(mapping_example())
    mapping = load_mapping(path, default_programme)  # MappingError, listing every problem, if it were not
    assert any(item.id in mapping.columns for item in default_programme.items)  # it maps the questionnaire, not just a header


def test_mapping_problems_are_collected_with_their_keys(tmp_path, tiny_programme):
    path = tmp_path / "m.toml"
    path.write_text(
        "[survey]\nheader_rows = 0\n[columns]\nperson_id = \"Id\"\nrole = \"Id\"\nict7 = \"Q\"\n"
        "[scale]\ncodes = { A1 = 9 }\nreverse = \"yes\"\n[[multi]]\ncolumn = \"Q5\"\ntarget = \"skills\"\n[extra]\n",
        encoding="utf-8",
    )
    with pytest.raises(MappingError) as info:
        load_mapping(path, tiny_programme)
    keys = [p.key for p in info.value.problems]
    assert keys == ["extra", "survey.header_rows", "columns.role", "columns.ict7", "scale.codes.A1", "scale.reverse", "multi[1].target"]
    assert "Did you mean 'ict3'?" in str(info.value)  # the closest item id


def test_mapping_file_that_is_not_toml(tmp_path, tiny_programme):
    path = tmp_path / "m.toml"
    path.write_text("[survey\n", encoding="utf-8")
    with pytest.raises(MappingError, match="not valid TOML"):
        load_mapping(path, tiny_programme)
    with pytest.raises(MappingError, match="does not exist"):
        load_mapping(tmp_path / "nope.toml", tiny_programme)


def test_mapped_header_missing_from_the_export_is_named(tmp_path, tiny_programme):
    from trainmatch.errors import SurveyError
    from trainmatch.io import read_survey
    from trainmatch.survey import import_survey

    path = tmp_path / "m.toml"
    path.write_text('[columns]\nperson_id = "Henkilönumeroo"\n', encoding="utf-8")
    mapping = load_mapping(path, tiny_programme)
    with pytest.raises(SurveyError) as info:
        import_survey(read_survey(DATA / "exports" / "webropol.csv"), tiny_programme, mapping=mapping)
    assert "'Henkilönumeroo'" in str(info.value) and "Did you mean 'Henkilönumero'?" in str(info.value)


def test_mapping_header_rows_are_not_people(tmp_path, tiny_programme):
    from trainmatch.io import read_survey
    from trainmatch.survey import import_survey

    source = (DATA / "exports" / "webropol.csv").read_bytes().decode("cp1252").split("\r\n")
    # A second header row (question numbers), as some tools write.
    text = "\r\n".join([source[0], ";".join(f"Q{k}" for k in range(14)), *source[1:]])
    path = tmp_path / "two_headers.csv"
    path.write_bytes(text.encode("cp1252"))
    mapping_text = (DATA / "exports" / "webropol.toml").read_text(encoding="utf-8").replace('tool = "Webropol"', 'tool = "Webropol"\nheader_rows = 2')
    (tmp_path / "m.toml").write_text(mapping_text, encoding="utf-8")
    result = import_survey(read_survey(path), tiny_programme, mapping=load_mapping(tmp_path / "m.toml", tiny_programme))
    assert result.n_read == 4 and result.n_rejected == 0
    assert result.people["person_id"].tolist() == ["0001", "0002", "0003", "0004"]
    assert result.people["row"].tolist() == [1, 2, 3, 4]
