"""The default catalogue is complete, and catalogue.csv is validated strictly with every problem reported."""

from __future__ import annotations

import dataclasses

import pytest

from trainmatch.catalogue import find_cycle, load_catalogue
from trainmatch.errors import ProgrammeError
from trainmatch.programme import load_programme

HEADER = "module_id,objective,title_fi,title_sv,title_en,domain,level,format,hours,delivery,prerequisites,languages\n"


@pytest.fixture(scope="module")
def programme():
    return load_programme()


def with_catalogue(programme, text: str):
    files = dict(programme.files)
    files["catalogue.csv"] = text.encode()
    return dataclasses.replace(programme, files=files)


def problems_of(programme, text: str) -> list[str]:
    with pytest.raises(ProgrammeError) as info:
        load_catalogue(with_catalogue(programme, text))
    return [str(p) for p in info.value.problems]


def test_default_catalogue_covers_every_domain_level_and_format(programme):
    cat = load_catalogue(programme)
    assert len(cat.modules) >= 40
    covered = {(o.domain, o.level) for o in cat.objectives.values()}
    for d in programme.domain_ids:
        for level in range(1, len(programme.levels) + 1):
            assert (d, level) in covered, (d, level)
    assert {m.format for m in cat.modules} == set(programme.format_ids)
    for o in cat.objectives.values():
        assert len(o.formats) >= 2, o.id
    assert "self_assessment" in cat.objectives and cat.objectives["self_assessment"].domain == ""
    groups = {f.id: f.group for f in programme.formats}
    assert all(m.group == groups[m.format] for m in cat.modules)
    assert all(m.titles[lang] for m in cat.modules for lang in programme.languages)


def test_default_catalogue_is_part_of_the_programme_fingerprint(programme):
    assert "catalogue.csv" in programme.files and "rules.csv" in programme.files
    other = with_catalogue(programme, programme.files["catalogue.csv"].decode() + "\n")
    assert dataclasses.replace(other).files != programme.files


def test_every_problem_is_reported_together(programme):
    text = HEADER + (
        "a,obj_a,a,a,a,ict_basics,foundation,elearning,1,individual,,fi\n"
        "a,obj_a,dup,dup,dup,ict_basics,foundation,video,1,individual,,fi\n"
        "b,obj_b,b,b,b,ict_basic,foundation,video,1,individual,,fi\n"
        "c,obj_c,c,c,c,ehr,expert,video,1,individual,,fi\n"
        "d,obj_d,d,d,d,ehr,advanced,podcast,1,individual,,fi\n"
        "e,obj_e,e,e,e,ehr,advanced,workshop,2,individual,,fi\n"
        "f,obj_f,f,f,f,ehr,advanced,video,0,individual,,fi\n"
        "g,obj_g,g,g,g,ehr,advanced,video,1,individual,obj_zz,fi\n"
        "h,obj_h,h,h,h,ehr,advanced,video,1,individual,,fi;de\n"
    )
    found = problems_of(programme, text)
    joined = "\n".join(found)
    assert "row 2, column 'module_id': duplicate module_id. Got 'a'." in joined
    assert "row 3, column 'domain': unknown domain. Got 'ict_basic'. Did you mean 'ict_basics'?" in joined
    assert "row 4, column 'level': unknown level. Got 'expert'." in joined
    assert "row 5, column 'format': unknown format. Got 'podcast'." in joined
    assert "row 6, column 'delivery': delivery does not match the format: 'workshop' is a group format" in joined
    assert "row 7, column 'hours': hours must be a positive number. Got '0'." in joined
    assert "row 9, column 'languages': unknown language. Got 'de'." in joined
    assert "row 8, column 'prerequisites': unknown prerequisite objective. Got 'obj_zz'." in joined
    assert len(found) == 8


def test_unknown_column_is_rejected_with_a_suggestion(programme):
    text = HEADER.replace("hours", "hourz") + "a,obj,a,a,a,ehr,advanced,video,1,individual,,fi\n"
    found = problems_of(programme, text)
    assert any("column 'hourz': unknown column. Did you mean 'hours'?" in p for p in found)
    assert any("column 'hours': required column is missing. Did you mean 'hourz'?" in p for p in found)


def test_prerequisite_cycle_is_named(programme):
    text = HEADER + (
        "a1,a,a,a,a,ehr,advanced,video,1,individual,c,fi\n"
        "b1,b,b,b,b,ehr,advanced,video,1,individual,a,fi\n"
        "c1,c,c,c,c,ehr,advanced,video,1,individual,b,fi\n"
    )
    found = problems_of(programme, text)
    assert len(found) == 1
    assert "prerequisites form a cycle: a → c → b → a." in found[0]


def test_objective_modules_must_share_domain_and_level(programme):
    text = HEADER + (
        "a1,a,a,a,a,ehr,advanced,video,1,individual,,fi\n"
        "a2,a,a,a,a,security,intermediate,elearning,1,individual,,fi\n"
    )
    found = "\n".join(problems_of(programme, text))
    assert "objective 'a' has modules in different domains" in found
    assert "objective 'a' has modules at different levels" in found


def test_missing_catalogue_file_is_reported(programme):
    files = {k: v for k, v in programme.files.items() if k != "catalogue.csv"}
    with pytest.raises(ProgrammeError, match="catalogue.csv: is missing"):
        load_catalogue(dataclasses.replace(programme, files=files))


def test_semicolon_separated_excel_export_loads(programme):
    text = "\ufeff" + HEADER.replace(",", ";") + (
        "a1;a;Otsikko;Rubrik;Title, with comma;ehr;advanced;video;1,5;individual;;\"fi;sv\"\n"
        "a2;a;Otsikko;Rubrik;Title;ehr;advanced;workshop;3;group;;fi\n"
    )
    cat = load_catalogue(with_catalogue(programme, text))
    assert [m.hours for m in cat.modules] == [1.5, 3.0]
    assert cat.modules[0].titles["en"] == "Title, with comma"
    assert cat.modules[0].languages == ("fi", "sv")
    assert cat.objectives["a"].formats == ("video", "workshop")


@pytest.mark.parametrize("graph,cycle", [
    ({"a": ("b",), "b": ()}, None),
    ({"a": ("a",)}, ["a", "a"]),
    ({"a": ("b",), "b": ("c",), "c": ("a",)}, ["a", "b", "c", "a"]),
])
def test_find_cycle(graph, cycle):
    assert find_cycle(graph) == cycle


def test_ids_that_read_as_formulas_are_refused_not_altered(programme):
    """Module and objective ids reach plans.csv, the workbook and the LMS unchanged: none may be a formula."""
    text = HEADER + (
        "-cmd,obj_a,a,a,a,ict_basics,foundation,elearning,1,individual,,fi\n"
        "b,\u00a0=obj_b,b,b,b,ehr,advanced,video,1,individual,,fi\n"
        "c,\uff20obj_c,c,c,c,ehr,advanced,video,1,individual,,fi\n"
    )
    joined = "\n".join(problems_of(programme, text))
    assert "row 1, column 'module_id': id starts like a spreadsheet formula. Got '-cmd'." in joined
    assert "row 2, column 'objective': id starts like a spreadsheet formula." in joined
    assert "row 3, column 'objective': id starts like a spreadsheet formula. Got '＠obj_c'." in joined


def test_lms_course_defaults_to_the_module_id_and_must_be_unique_and_safe(programme):
    """Completions come back from the LMS by course id, so each module needs its own, spreadsheet-safe one."""
    header = HEADER.rstrip("\n") + ",lms_course\n"
    good = header + (
        "a1,a,a,a,a,ehr,advanced,video,1,individual,,fi,LMS-101\n"
        "a2,a,a,a,a,ehr,advanced,elearning,1,individual,,fi,\n"
    )
    modules = {m.id: m for m in load_catalogue(with_catalogue(programme, good)).modules}
    assert (modules["a1"].lms_course, modules["a2"].lms_course) == ("LMS-101", "a2")
    bad = header + (
        "a1,a,a,a,a,ehr,advanced,video,1,individual,,fi,LMS-101\n"
        "a2,a,a,a,a,ehr,advanced,elearning,1,individual,,fi,LMS-101\n"
        "a3,a,a,a,a,ehr,advanced,podcast,1,individual,,fi,=HYPERLINK(1)\n"
    )
    joined = "\n".join(problems_of(programme, bad))
    assert "row 2, column 'lms_course': lms_course is also the course of module 'a1'. Got 'LMS-101'." in joined
    assert "row 3, column 'lms_course': id starts like a spreadsheet formula." in joined
