"""The programme: the built-in default, `init` round trip, and strict validation with located problems."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import PROGRAMMES, TINY
from trainmatch.errors import ProgrammeError
from trainmatch.programme import default_programme_files, load_programme, write_programme


# --------------------------------------------------------------------------- the default


def test_default_programme_has_a_usable_instrument(default_programme):
    p = default_programme
    assert len(p.domains) >= 6
    for d in p.domain_ids:
        assert len(p.items_of(d)) >= 4, d
    assert any(i.reverse for i in p.items)
    assert not all(i.reverse for i in p.items)
    assert len(p.tasks) >= 8
    assert p.level_thresholds() == (1.0, 2.5, 3.5, 4.5)
    assert p.scale_min == 1 and p.scale_max == 5


def test_default_programme_speaks_finnish_swedish_and_english(default_programme):
    p = default_programme
    assert set(p.languages) == {"fi", "sv", "en"}
    assert set(p.scale_labels) == {"fi", "sv", "en"}
    assert p.scale_labels["fi"][-1] == "Täysin samaa mieltä"
    assert p.scale_labels["sv"][0] == "Helt av annan åsikt"
    assert p.scale_labels["en"][3] == "Agree"
    assert {"En osaa sanoa", "Vet inte", "Don't know"} <= set(p.dont_know)
    for entry in (*p.domains, *p.roles, *p.formats, *p.levels, *p.tasks):
        assert set(entry.names) >= {"fi", "sv", "en"}, entry.id
        assert all(entry.names[lang].strip() for lang in ("fi", "sv", "en")), entry.id
    for item in p.items:
        assert all(item.texts[lang].strip() for lang in ("fi", "sv", "en")), item.id


def test_every_task_requires_something_and_only_known_levels(default_programme):
    p = default_programme
    for task, row in zip(p.tasks, p.requirement_matrix()):
        assert any(row), task.id
        assert all(0 <= level <= len(p.levels) for level in row)


def test_init_output_loads_back_identically(cli, tmp_path):
    folder = tmp_path / "my-programme"
    result = cli("init", folder)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in folder.iterdir()) == sorted([*default_programme_files(), "mapping-example.toml"])
    copy = load_programme(folder)
    default = load_programme()
    assert copy.fingerprint == default.fingerprint
    assert copy.items == default.items
    assert copy.tasks == default.tasks
    assert copy.levels == default.levels


def test_files_beside_the_programme_do_not_change_it(cli, tmp_path):
    # Notes, the example mapping or an Excel lock file in the folder are not part of the programme.
    folder = tmp_path / "p"
    assert cli("init", folder).exit_code == 0
    (folder / "notes.txt").write_text("round 2 changes", encoding="utf-8")
    (folder / "~$items.csv").write_bytes(b"lock")
    assert load_programme(folder).fingerprint == load_programme().fingerprint


def test_the_example_mapping_written_by_init_loads(cli, tmp_path):
    from trainmatch.mapping import load_mapping

    folder = tmp_path / "p"
    assert cli("init", folder).exit_code == 0
    assert load_mapping(folder / "mapping-example.toml", load_programme(folder)) is not None


def test_init_refuses_to_overwrite_without_force(cli, tmp_path):
    folder = tmp_path / "p"
    assert cli("init", folder).exit_code == 0
    (folder / "items.csv").write_text("edited", encoding="utf-8")
    again = cli("init", folder)
    assert again.exit_code == 2
    assert "--force" in again.output
    assert (folder / "items.csv").read_text(encoding="utf-8") == "edited"
    assert cli("init", folder, "--force").exit_code == 0
    assert load_programme(folder).fingerprint == load_programme().fingerprint


def test_fingerprint_changes_with_content_not_line_ends(tmp_path):
    folder = tmp_path / "p"
    shutil.copytree(TINY, folder)
    base = load_programme(folder).fingerprint
    items = folder / "items.csv"
    items.write_bytes(items.read_bytes().replace(b"\n", b"\r\n"))  # saved again on Windows
    assert load_programme(folder).fingerprint == base
    items.write_bytes(items.read_bytes().replace(b"I can save files.", b"I can save my files."))
    assert load_programme(folder).fingerprint != base


def test_tables_saved_by_excel_with_semicolons_and_cp1252_load(tmp_path):
    folder = tmp_path / "p"
    shutil.copytree(TINY, folder)
    for name in ("items.csv", "tasks.csv"):
        text = (folder / name).read_text(encoding="utf-8")
        rows = [line.split(",") for line in text.splitlines()]
        (folder / name).write_bytes("\r\n".join(";".join(r) for r in rows).encode("cp1252") + b"\r\n")
    settings = folder / "programme.toml"  # cp1252 is read when declared, never guessed
    settings.write_text(settings.read_text(encoding="utf-8").replace("[programme]\n", '[programme]\nencoding = "cp1252"\n', 1), encoding="utf-8")
    p = load_programme(folder)
    assert [i.id for i in p.items] == ["ict1", "ict2", "ict3", "rem1", "rem2", "rem3"]
    assert p.items[0].texts["fi"] == "Osaan käynnistää laitteet."
    assert p.requirement_matrix() == [[2, 3], [3, 0], [1, 2]]


# --------------------------------------------------------------------------- located problems


def problems_of(folder: Path) -> list:
    with pytest.raises(ProgrammeError) as info:
        load_programme(folder)
    return info.value.problems


def test_typo_in_a_key_is_named_with_a_suggestion():
    [problem] = problems_of(PROGRAMMES / "bad_typo_key")
    assert problem.file.endswith("programme.toml")
    assert problem.key == "scoring.min_answerd_share"
    assert "unknown key" in problem.message
    assert "min_answered_share" in problem.hint


def test_unknown_section_is_named_with_a_suggestion():
    [problem] = problems_of(PROGRAMMES / "bad_unknown_section")
    assert problem.file.endswith("programme.toml")
    assert problem.key == "grups"
    assert "unknown section" in problem.message
    assert "'groups'" in problem.hint


def test_unknown_domain_in_items_names_row_column_and_value():
    [problem] = problems_of(PROGRAMMES / "bad_unknown_domain")
    assert problem.file.endswith("items.csv")
    assert (problem.row, problem.column, problem.value) == (2, "domain", "icts")
    assert "'ict'" in problem.hint


def test_unknown_level_in_tasks_names_row_column_and_value():
    [problem] = problems_of(PROGRAMMES / "bad_unknown_level")
    assert problem.file.endswith("tasks.csv")
    assert (problem.row, problem.column, problem.value) == (2, "remote", "advaned")
    assert "'advanced'" in problem.hint


def test_several_problems_are_reported_together_with_their_folder():
    problems = problems_of(PROGRAMMES / "bad_many")
    where = {(Path(p.file).name, p.key, p.row, p.column) for p in problems}
    assert where == {
        ("programme.toml", "scoring.min_answerd_share", None, None),
        ("programme.toml", "grups", None, None),
        ("items.csv", None, 2, "domain"),
        ("tasks.csv", None, 2, "remote"),
    }
    assert all(Path(p.file).parent.name == "bad_many" for p in problems)
    text = str(ProgrammeError(problems))
    assert "4 problem(s)" in text
    assert "bad_many/tasks.csv, row 2, column 'remote': unknown level. Got 'advaned'. Did you mean 'advanced'?" in text


def edited(tmp_path: Path, name: str, old: str, new: str) -> Path:
    folder = tmp_path / "p"
    if not folder.exists():
        shutil.copytree(TINY, folder)
    path = folder / name
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return folder


@pytest.mark.parametrize(
    "name, old, new, expected",
    [
        ("programme.toml", "[scale]\nmin = 1\nmax = 5", "[scale]\nmin = 1\nmax = 1", "scale.max"),
        ("programme.toml", "min_score = 2.5", 'min_score = "2.5"', "levels[2].min_score"),
        ("programme.toml", "min_score = 3.5", "min_score = 2.0", "levels[3].min_score"),
        ("programme.toml", "min_answered_share = 0.6", "min_answered_share = 1.5", "scoring.min_answered_share"),
        ("programme.toml", 'default_language = "en"', 'default_language = "de"', "programme.default_language"),
        ("programme.toml", 'id = "physician"', 'id = "nurse"', "roles[2].id"),
        ("programme.toml", "group = true", 'group = "yes"', "formats[2].group"),
        ("programme.toml", '[groups]\nmin_size = 2', "[groups]\nmin_size = 9", "groups.min_size"),
    ],
)
def test_bad_settings_are_located_by_key(tmp_path, name, old, new, expected):
    problems = problems_of(edited(tmp_path, name, old, new))
    assert expected in [p.key for p in problems], [str(p) for p in problems]


def test_a_section_that_is_not_a_table_is_a_problem_not_a_crash(tmp_path):
    folder = edited(tmp_path, "programme.toml", "[personal_data]\ncolumns = [", "[secrecy]\ncolumns = [")
    settings = folder / "programme.toml"
    settings.write_text("personal_data = 3\n" + settings.read_text(encoding="utf-8"), encoding="utf-8")
    keys = [p.key for p in problems_of(folder)]
    assert "personal_data" in keys and "secrecy" in keys


def test_invalid_toml_names_the_line(tmp_path):
    [problem] = problems_of(edited(tmp_path, "programme.toml", "[groups]", "[groups"))
    assert "not valid TOML" in problem.message
    assert "line" in problem.message


def test_missing_table_and_missing_column_are_reported(tmp_path):
    folder = edited(tmp_path, "items.csv", "item_id,domain,reverse", "item_id,domain,reversed")
    (folder / "tasks.csv").unlink()
    problems = problems_of(folder)
    columns = {(Path(p.file).name, p.column) for p in problems}
    assert ("items.csv", "reverse") in columns
    assert any(Path(p.file).name == "tasks.csv" and "missing" in p.message for p in problems)
    hint = next(p.hint for p in problems if p.column == "reverse")
    assert "reversed" in hint


def test_duplicate_item_and_bad_reverse_flag(tmp_path):
    folder = edited(tmp_path, "items.csv", "ict3,ict,no", "ict1,ict,no")
    edited(tmp_path, "items.csv", "rem1,remote,no", "rem1,remote,maybe")
    problems = problems_of(folder)
    found = {(p.row, p.column, p.value) for p in problems}
    assert (3, "item_id", "ict1") in found
    assert (4, "reverse", "maybe") in found


def test_not_a_folder_and_no_settings_file(tmp_path):
    [problem] = problems_of(tmp_path / "nowhere")
    assert "not a folder" in problem.message
    (tmp_path / "empty").mkdir()
    [problem] = problems_of(tmp_path / "empty")
    assert "programme.toml" in problem.message
    assert "trainmatch init" in problem.hint


def test_written_programme_is_the_given_files(tmp_path):
    paths = write_programme(tmp_path / "out", {"programme.toml": b"x = 1\n"})
    assert [p.name for p in paths] == ["programme.toml"]
    assert paths[0].read_bytes() == b"x = 1\n"


def test_programme_ids_that_read_as_formulas_are_refused(tmp_path):
    """Role, domain, item and task ids reach every output unchanged, so none may start like a formula."""
    from trainmatch.programme import load_programme, write_programme, default_programme_files

    write_programme(tmp_path, default_programme_files())
    toml = (tmp_path / "programme.toml").read_text(encoding="utf-8").replace('id = "nurse"', 'id = "=nurse"', 1)
    (tmp_path / "programme.toml").write_text(toml, encoding="utf-8")
    items = (tmp_path / "items.csv").read_text(encoding="utf-8").replace("\nict1,", "\n+ict1,", 1)
    (tmp_path / "items.csv").write_text(items, encoding="utf-8")
    with pytest.raises(ProgrammeError) as info:
        load_programme(tmp_path)
    text = str(info.value)
    assert "roles[1].id: id starts like a spreadsheet formula. Got '=nurse'." in text
    assert "items.csv, row 1, column 'item_id': id starts like a spreadsheet formula. Got '+ict1'." in text
