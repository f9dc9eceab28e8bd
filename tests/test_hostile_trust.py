"""Hostile input in what trainmatch renders and in the files it trusts besides the survey.

* Any text renders: site, role, domain, format, level, task and programme names, organisation and
  module titles with characters the report font lacks (emoji, CJK, full-width ＝), control characters
  (tab, ESC) or mathtext (``$…$``) never stop the run; the text appears, escaped, in the report and
  in the letters.
* Saved models are checked for sense, not only for integrity: a model.json re-signed with its new
  SHA-256 is still refused when its numbers or ids make no sense, when it is too deep or too large.
* The programme (settings and tables) and mapping files: finite numbers, bounded texts, strict
  UTF-8 with the byte named, bounded nesting; ``validate --programme`` runs every check ``assign`` runs.
* Fuzzing: any bytes in a programme file or a mapping give a programme or the library's own error
  naming the file, never a traceback.
"""

from __future__ import annotations

import csv
import dataclasses
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markupsafe import escape


# Texts the landed report could not measure, or that a chart would parse or an SVG could not carry.
NASTY = ["Site 😀", "中央病院", "Ａ＝Ｂ", "tab\there", "esc\x1b[31mred", "$\\frac$ and $x^$", "<b>&amp;</b>", "\x00\x7f\x85"]


def _rewrite_csv(src: Path, dst: Path, column: str, values: list[str]) -> Path:
    with open(src, encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    j = rows[0].index(column)
    for n, row in enumerate(rows[1:]):
        row[j] = values[n % len(values)]
    with open(dst, "w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(rows)
    return dst


# --------------------------------------------------------------------------- any text renders


def test_assign_with_sites_the_report_font_lacks_writes_every_output(cli, synth_csv, tmp_path):
    survey = _rewrite_csv(synth_csv, tmp_path / "survey.csv", "site", NASTY)
    out = tmp_path / "out"
    result = cli("assign", survey, "-o", out, "--k", "2-3", "--seed", "1", "--no-xlsx")
    assert result.exit_code == 0, result.output
    assert "Internal error" not in result.output and "Glyph" not in result.output
    html = (out / "report.html").read_text(encoding="utf-8")
    for site in NASTY:
        if site.strip("\x00\x7f\x85"):  # a site that is only control characters is shown, but not findable
            assert str(escape(site)) in html, site
    # Every chart is valid SVG (XML cannot carry ESC or NUL): drawn with visible stand-ins.
    import base64
    import xml.etree.ElementTree as ET

    svgs = [base64.b64decode(m).decode("utf-8") for m in re.findall(r"data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)", html)]
    assert svgs
    for svg in svgs:
        ET.fromstring(svg)
    assert any("esc␛[31mred" in svg for svg in svgs)
    assert any("$\\frac$ and $x^$" in svg for svg in svgs)  # text, not mathtext
    plans = list((out / "plans").glob("*.html"))
    assert len(plans) == 150
    assert any(str(escape("中央病院")) in p.read_text(encoding="utf-8") for p in plans)


@pytest.fixture(scope="module")
def planned(default_programme, synth_csv):
    """One small run of the default programme (the texts are swapped per example below)."""
    from trainmatch.pipeline import group_modules, load_plan, run_assignment
    from trainmatch.io import read_survey
    from trainmatch.survey import import_survey

    plan = load_plan(default_programme)
    imported = import_survey(read_survey(synth_csv), default_programme)
    result = run_assignment(imported, default_programme, plan, k_range=(2, 3), seed=1)
    return plan, imported, result, group_modules(result.cohorts.groups, result.steps)


def _names(text: str, programme) -> dict[str, str]:
    return {lang: text for lang in programme.languages}


free_text = st.one_of(st.sampled_from(NASTY), st.text(min_size=1, max_size=80))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(texts=st.lists(free_text, min_size=9, max_size=9))
def test_report_and_letters_render_any_unicode_in_every_free_text_field(planned, default_programme, texts):
    """Arbitrary Unicode in every free-text field: the report and every letter render, and show it escaped."""
    import pandas as pd

    from trainmatch.catalogue import Catalogue
    from trainmatch.letters import render_plans
    from trainmatch.report import render_report

    plan, imported, result, groups = planned
    site, name, org, domain, role, fmt, level, task, title = texts
    p = default_programme
    programme = dataclasses.replace(
        p,
        name=name,
        version="",
        organisation=org,
        support_contact=org,
        domains=tuple(dataclasses.replace(d, names=_names(f"{domain} {i}", p)) for i, d in enumerate(p.domains)),
        roles=tuple(dataclasses.replace(r, names=_names(role, p)) for r in p.roles),
        formats=tuple(dataclasses.replace(f, names=_names(fmt, p)) for f in p.formats),
        levels=tuple(dataclasses.replace(lv, names=_names(level, p)) for lv in p.levels),
        tasks=tuple(dataclasses.replace(t, names=_names(task, p)) for t in p.tasks),
    )
    modules = tuple(dataclasses.replace(m, titles=_names(title, p)) for m in plan.catalogue.modules)
    catalogue = Catalogue(modules, plan.catalogue.objectives)
    people = result.people.assign(site=pd.Series([site] * len(result.people), index=result.people.index, dtype=object))
    groups = groups.assign(site=site)
    rejects = pd.DataFrame({"row": [1], "column": ["site"], "value": [site], "reason": [f"{site}. Second sentence."]})

    html = render_report(
        people, result.steps, result.deferred, programme, cohorts=result.cohorts.cohorts, groups=groups,
        fit_rows=result.cohorts.fit_report, rejects=rejects, reliability=result.reliability, n_read=len(people) + 1,
        organisation=org, run_info={"Programme": name},
    )
    for text in (site, org, name, f"{domain} 0"):
        assert str(escape(text)) in html, text

    letters = dict(
        render_plans(
            people.head(40), result.steps, result.deferred, programme, organisation=org, support_contact=org,
            plan_weeks=programme.plan_weeks, groups=groups, catalogue=catalogue,
        )
    )
    assert len(letters) == 40
    joined = "\n".join(letters.values())
    for text in (site, org, name.strip(), role, f"{domain} 0", level):
        assert str(escape(text)) in joined, text
    if len(result.steps):
        assert str(escape(title)) in joined and str(escape(fmt)) in joined


# --------------------------------------------------------------------------- saved models: sense, not only integrity


@pytest.fixture(scope="module")
def saved_model(synth_csv, tmp_path_factory) -> Path:
    from click.testing import CliRunner

    from trainmatch.cli import main

    folder = tmp_path_factory.mktemp("model") / "m"
    out = folder.parent / "out"
    result = CliRunner().invoke(main, ["cohorts", str(synth_csv), "-o", str(out), "--k", "2-3", "--seed", "1", "--save-model", str(folder)])
    assert result.exit_code == 0, result.output
    return folder


def _resign(src: Path, dst: Path, edit) -> Path:
    """A copy of the model folder with model.json edited and its checksum recomputed (what a forger does)."""
    import hashlib
    import json
    import shutil

    from trainmatch.model_store import CHECKSUM_FILE, MODEL_FILE

    shutil.copytree(src, dst)
    doc = json.loads((dst / MODEL_FILE).read_text(encoding="utf-8"))
    data = edit(doc)
    if not isinstance(data, bytes):
        data = json.dumps(doc, allow_nan=True).encode("utf-8")
    (dst / MODEL_FILE).write_bytes(data)
    (dst / CHECKSUM_FILE).write_text(f"{hashlib.sha256(data).hexdigest()}  {MODEL_FILE}\n")
    return dst


def _big_k(k: int):
    def edit(doc):
        d = len(doc["domain_ids"])
        doc["k"] = k
        doc["parameters"]["k_range"] = [2, k]
        doc["centres"] = [[(i % 7) / 3 - 1.0] * d for i in range(k)]
        doc["cohorts"] = [{**doc["cohorts"][0], "id": f"C{i + 1}"} for i in range(k)]
        doc["fit_report"]["chosen_k"] = k

    return edit


def _set(path: str, value):
    def edit(doc):
        *parents, last = path.split(".")
        target = doc
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        target[int(last) if isinstance(target, list) else last] = value

    return edit


def _nest(depth: int):
    def edit(doc):
        doc["versions"] = {"trainmatch": "x"}
        return json_bytes(doc).replace(b'"versions": {"trainmatch": "x"}', b'"versions": ' + b"[" * depth + b"]" * depth)

    return edit


def json_bytes(doc) -> bytes:
    import json

    return json.dumps(doc).encode("utf-8")


MODEL_CASES = {
    "k of 1,000 centres": (_big_k(1_000), "field parameters.k_range[1] must be a whole number from 2 to 30"),
    "k of 10,000 centres": (_big_k(10_000), "is larger than 1,000,000 bytes"),
    # A range that leaves out the model's own k (the synthetic survey is a continuum: its k may well be 2).
    "k outside its own range": (lambda doc: _set("parameters.k_range", [doc["k"] + 1] * 2)(doc),
                                "field k must be a whole number within the k range the model was fitted with ("),
    "k of 31": (_big_k(31), "field parameters.k_range[1] must be a whole number from 2 to 30"),
    "duplicate cohort ids": (lambda doc: _set("cohorts.1.id", doc["cohorts"][0]["id"])(doc), "field cohorts[1].id must be unique"),
    "empty cohort id": (_set("cohorts.0.id", ""), "field cohorts[0].id must be non-empty text"),
    "cohort id with a control character": (_set("cohorts.0.id", "C\x1b1"), "field cohorts[0].id must be non-empty text of at most 100 characters without control characters"),
    "infinite scale": (_set("standardisation.scales.2", float("inf")), "field standardisation.scales[2] must be a finite number above 0; it holds inf"),
    "zero scale": (_set("standardisation.scales.0", 0), "field standardisation.scales[0] must be a finite number above 0; it holds 0.0"),
    "NaN centre": (_set("centres.1.3", float("nan")), "field centres[1][3] must be a finite number; it holds nan"),
    "infinite mean": (_set("standardisation.means.0", float("-inf")), "field standardisation.means[0] must be a finite number"),
    "means of too few domains": (lambda doc: doc["standardisation"]["means"].pop(), "field standardisation.means must be 6 numbers; it holds 5 numbers"),
    "duplicate domain ids": (_set("domain_ids.1", "ict_basics"), "field domain_ids[1] must be unique"),
    "text for a number": (_set("centres.0.0", "1.0"), "field centres[0][0] must be a number; it holds '1.0'"),
    "chosen k not k": (lambda doc: _set("fit_report.chosen_k", doc["k"] + 1)(doc), "field fit_report.chosen_k must equal k ("),
    "nesting 100,000 deep": (_nest(100_000), "its JSON is nested too deeply to read"),
    "nesting 50 deep": (_nest(50), "field versions[0][0][0][0][0][0][0] nests more than 8 levels deep"),
    "2 MB description": (_set("cohorts.0.description", "x" * 2_000_000), "is larger than 1,000,000 bytes"),
}


@pytest.mark.parametrize("case", list(MODEL_CASES))
def test_a_resigned_model_that_makes_no_sense_is_refused(cli, synth_csv, saved_model, tmp_path, case):
    from trainmatch.model_store import MODEL_FILE

    edit, message = MODEL_CASES[case]
    folder = _resign(saved_model, tmp_path / "forged", edit)
    result = cli("cohorts", synth_csv, "-o", tmp_path / "out", "--model", folder)
    assert result.exit_code == 1, result.output
    assert str(folder / MODEL_FILE) in result.output
    assert message in result.output
    assert "Internal error" not in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_k_beyond_what_a_model_may_hold_is_a_usage_error(cli, synth_csv, tmp_path):
    result = cli("cohorts", synth_csv, "-o", tmp_path / "out", "--k", "2-31")
    assert result.exit_code == 2
    assert "trainmatch fits at most 30 cohorts" in result.output


# --------------------------------------------------------------------------- the programme: sense, bounds, encoding


@pytest.fixture
def programme_dir(tmp_path) -> Path:
    """An editable copy of the built-in programme."""
    from trainmatch.programme import write_programme

    folder = tmp_path / "prog"
    write_programme(folder)
    return folder


def _edit(folder: Path, name: str, old: str, new: str) -> None:
    path = folder / name
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _validate(cli, survey: Path, folder: Path, *extra):
    result = cli("validate", survey, "--programme", folder, *extra)
    assert "Traceback" not in result.output and "Internal error" not in result.output, result.output
    return result


def test_inf_and_nan_hours_and_thresholds_are_refused_naming_key_and_value(cli, synth_csv, programme_dir):
    _edit(programme_dir, "programme.toml", "max_hours = 400.0", "max_hours = inf")
    _edit(programme_dir, "programme.toml", "min_score = 2.5", "min_score = nan")
    _edit(programme_dir, "programme.toml", "alpha_warning = 0.7", "alpha_warning = -inf")
    result = _validate(cli, synth_csv, programme_dir)
    assert result.exit_code == 1
    toml = programme_dir / "programme.toml"
    assert f"{toml}, key budget.max_hours: must be a finite number. Got 'inf'." in result.output
    assert f"{toml}, key levels[2].min_score: min_score must be a finite number. Got 'nan'." in result.output
    assert f"{toml}, key scoring.alpha_warning: must be a finite number. Got '-inf'." in result.output


def test_every_text_has_a_length_limit(cli, synth_csv, programme_dir):
    _edit(programme_dir, "programme.toml", 'name = ""             #', f'name = "{"O" * 201}" #')
    _edit(programme_dir, "programme.toml", 'en = "ICT basics"', f'en = "{"D" * 201}"')
    _edit(programme_dir, "programme.toml", 'id = "nurse"', f'id = "{"n" * 101}"')
    _edit(programme_dir, "catalogue.csv", "Getting started with work devices and logins (e-learning)", "T" * 201)
    result = _validate(cli, synth_csv, programme_dir)
    assert result.exit_code == 1
    out = result.output
    assert "key organisation.name: is longer than 200 characters. Got 'OOOOOOOOOOOOOOOOOOOOOOOOOOOOOOOOOOOOOOO… (201 characters)'." in out
    assert "key domains[1].name.en: is longer than 200 characters." in out
    assert "key roles[1].id: id is longer than 100 characters." in out
    catalogue = cli("validate", synth_csv, "--programme", _only_catalogue_broken(programme_dir))
    assert catalogue.exit_code == 1
    assert "catalogue.csv, row 1, column 'title_en': is longer than 200 characters." in catalogue.output


def _only_catalogue_broken(folder: Path) -> Path:
    """The folder with programme.toml restored, so that only the catalogue is at fault."""
    from trainmatch.programme import default_programme_files

    (folder / "programme.toml").write_bytes(default_programme_files()["programme.toml"])
    return folder


def test_a_huge_organisation_name_is_refused_before_it_is_read(cli, synth_csv, programme_dir):
    _edit(programme_dir, "programme.toml", 'name = ""             #', f'name = "{"O" * 2_000_000}" #')
    result = _validate(cli, synth_csv, programme_dir)
    assert result.exit_code == 1
    assert f"{programme_dir / 'programme.toml'}: is larger than 1,000,000 bytes" in result.output


def test_a_huge_cell_in_a_table_names_the_table_and_line(cli, synth_csv, programme_dir):
    _edit(programme_dir, "catalogue.csv", "Getting started with work devices and logins (e-learning)", "T" * 200_000)
    result = _validate(cli, synth_csv, programme_dir)
    assert result.exit_code == 1
    assert f"{programme_dir / 'catalogue.csv'}: cannot be read as CSV on line 2" in result.output or "catalogue.csv: cannot be read as CSV on line 2" in result.output


@pytest.mark.parametrize("name, needle", [("catalogue.csv", "Getting started with work"), ("items.csv", "ict2"), ("rules.csv", "R03")])
def test_a_stray_byte_in_a_utf8_table_is_reported_with_line_and_offset(cli, synth_csv, programme_dir, name, needle):
    path = programme_dir / name
    data = path.read_bytes()
    offset = data.index(needle.encode())
    path.write_bytes(data[:offset] + b"\xe4" + data[offset:])  # one Latin-1 'ä' in a UTF-8 file
    line = data[:offset].count(b"\n") + 1
    result = _validate(cli, synth_csv, programme_dir)
    assert result.exit_code == 1
    assert f"{name}: is not valid UTF-8: byte 0xE4 on line {line} (byte offset {offset} in the file) cannot be UTF-8." in result.output
    assert 'encoding = "cp1252"' in result.output


def test_a_cp1252_table_loads_when_declared(cli, synth_csv, programme_dir):
    path = programme_dir / "catalogue.csv"
    path.write_bytes(path.read_text(encoding="utf-8").encode("cp1252"))
    assert _validate(cli, synth_csv, programme_dir).exit_code == 1  # not declared: refused, never guessed
    for name in ("items.csv", "tasks.csv", "rules.csv"):
        (programme_dir / name).write_bytes((programme_dir / name).read_text(encoding="utf-8").encode("cp1252"))
    _edit(programme_dir, "programme.toml", "[programme]\n", '[programme]\nencoding = "cp1252"\n')
    result = _validate(cli, synth_csv, programme_dir)
    assert result.exit_code == 0, result.output
    from trainmatch.pipeline import load_plan
    from trainmatch.programme import load_programme

    titles = [m.titles["fi"] for m in load_plan(load_programme(programme_dir)).catalogue.modules]
    assert "Työlaitteiden ja kirjautumisen perusteet (verkkokurssi)" in titles


def _bomb(depth: int) -> str:
    return "bomb = " + "[" * depth + "]" * depth + "\n"


@pytest.mark.parametrize("depth", [100_000, 50])
def test_a_nesting_bomb_in_programme_toml_names_the_file(cli, synth_csv, programme_dir, depth):
    toml = programme_dir / "programme.toml"
    toml.write_text(_bomb(depth) + toml.read_text(encoding="utf-8"), encoding="utf-8")
    result = _validate(cli, synth_csv, programme_dir)
    assert result.exit_code == 1
    assert f"{toml}" in result.output
    assert "nests tables or arrays more than 10 levels deep" in result.output


@pytest.mark.parametrize("depth", [100_000, 50])
def test_a_nesting_bomb_in_a_mapping_names_the_file(cli, synth_csv, tmp_path, depth):
    mapping = tmp_path / "mapping.toml"
    mapping.write_text(_bomb(depth), encoding="utf-8")
    result = cli("validate", synth_csv, "--mapping", mapping)
    assert result.exit_code == 1
    assert "Traceback" not in result.output and "Internal error" not in result.output
    assert f"{mapping}" in result.output and "nests tables or arrays more than 10 levels deep" in result.output


@pytest.mark.parametrize(
    "name, old, new, message",
    [
        ("rules.csv", "ict_basics.intermediate,2,", "no_such_objective,2,", "rules.csv, row 1, column 'objective': rule R01: unknown objective"),
        ("rules.csv", ">= 1,-,-,-,-,ict_basics.intermediate", ">= ²,-,-,-,-,ict_basics.intermediate", "rule R01: invalid condition: '²' is not a number."),
        ("rules.csv", ">= 1,-,-,-,-,ict_basics.intermediate", ">= 1" + "0" * 400 + ",-,-,-,-,ict_basics.intermediate", "is too large a number"),
        ("catalogue.csv", "intermediate,elearning,2,individual,,", "intermediate,elearning,2,individual,ict_basics.advanced,", "prerequisites form a cycle"),
        ("catalogue.csv", "1.5,individual,,fi;sv;en", "1.5,individual,no_such_objective,fi;sv;en", "unknown prerequisite objective"),
    ],
)
def test_validate_runs_every_programme_check_assign_runs(cli, synth_csv, programme_dir, name, old, new, message):
    _edit(programme_dir, name, old, new)
    result = _validate(cli, synth_csv, programme_dir)
    assert result.exit_code == 1, result.output
    assert message in result.output
    assert "OK: every row can be used" not in result.output


# --------------------------------------------------------------------------- fuzzing: any bytes, no traceback

# Bytes that change a file's structure when inserted: quotes, brackets, separators, line ends, a BOM,
# bytes that are not UTF-8, TOML's special numbers, a lone CR.
_STRUCTURE = [b'"', b"'", b"[", b"]", b"{", b"}", b",", b";", b"\t", b"\n", b"\r", b"=", b"#", b"\\", b"\x00",
              b"\xe4", b"\xff\xfe", b"\xef\xbb\xbf", b"inf", b"nan", b"-", b"[[levels]]\n", b"\xc3", b"1e999"]
# What broke the landed code: a digit float() cannot read, a number too large for a float, a nesting
# bomb, a cell over csv's field limit.
_HOSTILE = ["²".encode(), b"1" * 400, b"\nbomb = " + b"[" * 5_000 + b"\n", b"x" * 140_000]


@st.composite
def mutated(draw, original: bytes, hostile: tuple[bytes, ...] = ()) -> bytes:
    """``original`` with a few random edits (insert, delete, replace, duplicate a span), or random bytes."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=400))
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(["insert", "delete", "replace", "duplicate"]))
        piece = draw(st.one_of(st.sampled_from(hostile or _HOSTILE), st.sampled_from(_STRUCTURE), st.binary(min_size=1, max_size=8)))
        span = draw(st.integers(1, 40))
        if kind == "insert":
            data[at:at] = piece
        elif kind == "delete":
            del data[at : at + span]
        elif kind == "replace":
            data[at : at + len(piece)] = piece
        else:
            data[at:at] = data[at : at + span]
    return bytes(data)


def _default_files() -> dict[str, bytes]:
    from trainmatch.programme import default_programme_files

    return default_programme_files()


def _load_or_located_error(folder: Path) -> None:
    """Load the programme as assign does; a ProgrammeError must name a programme file for every problem."""
    from trainmatch.errors import ProgrammeError
    from trainmatch.pipeline import load_plan
    from trainmatch.programme import PROGRAMME_FILES, load_programme

    try:
        load_plan(load_programme(folder))
    except ProgrammeError as exc:
        assert exc.problems
        for problem in exc.problems:
            assert any(name in problem.file for name in PROGRAMME_FILES), problem
            str(problem)  # renders


@pytest.mark.parametrize("target", ["programme.toml", "items.csv", "tasks.csv", "roles.csv", "catalogue.csv", "rules.csv"])
def test_any_bytes_in_a_programme_file_load_or_give_a_located_error(tmp_path_factory, target):
    folder = tmp_path_factory.mktemp("fuzz")
    files = _default_files()
    for name, data in files.items():
        (folder / name).write_bytes(data)

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(data=mutated(files[target]))
    def check(data: bytes) -> None:
        (folder / target).write_bytes(data)
        _load_or_located_error(folder)

    check()


def test_any_bytes_in_a_mapping_file_load_or_give_a_located_error(tmp_path_factory, default_programme):
    from trainmatch.errors import MappingError
    from trainmatch.mapping import load_mapping, mapping_example

    path = tmp_path_factory.mktemp("fuzz") / "mapping.toml"
    original = mapping_example()

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(data=mutated(original))
    def check(data: bytes) -> None:
        path.write_bytes(data)
        try:
            load_mapping(path, default_programme)
        except MappingError as exc:
            assert exc.problems and all(str(path) == p.file for p in exc.problems), exc.problems

    check()


def test_a_programme_name_over_the_limit_is_refused_not_replaced(cli, synth_csv, programme_dir):
    _edit(programme_dir, "programme.toml", 'name = "Digital competence in health and social care"', f'name = "{"P" * 201}"')
    result = _validate(cli, synth_csv, programme_dir)
    assert result.exit_code == 1
    assert "key programme.name: is longer than 200 characters." in result.output


def test_any_bytes_in_a_resigned_model_load_or_give_a_model_error(saved_model, tmp_path_factory):
    """A forger who re-signs model.json: whatever its bytes, a model or ModelError naming the file."""
    import hashlib
    import shutil

    from trainmatch.errors import ModelError
    from trainmatch.model_store import CHECKSUM_FILE, MODEL_FILE, load_model
    from trainmatch.programme import load_programme

    folder = tmp_path_factory.mktemp("fuzz") / "m"
    shutil.copytree(saved_model, folder)
    original = (saved_model / MODEL_FILE).read_bytes()
    fingerprint = load_programme().fingerprint

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(data=mutated(original, (b"[" * 5_000, b"Infinity", b"NaN", b"1e999", b"9" * 5_000, b'"', b"{}", b"[]")))
    def check(data: bytes) -> None:
        (folder / MODEL_FILE).write_bytes(data)
        (folder / CHECKSUM_FILE).write_text(f"{hashlib.sha256(data).hexdigest()}  {MODEL_FILE}\n")
        try:
            load_model(folder, programme_fingerprint=fingerprint)
        except ModelError as exc:
            assert str(folder) in str(exc)

    check()
