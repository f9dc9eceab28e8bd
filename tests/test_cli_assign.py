"""`trainmatch assign`: the promises of the main job, checked on the files a user gets.

Nothing lost (every data row in people.csv or rejects.csv, run.json reconciles),
staged outputs (an existing OUTDIR is refused, replaced only on success, never
half-written), formulas neutralised in CSV and XLSX while numbers stay numbers,
reproducible bytes, --strict, the workbook and per-person options, one plan per
person in their language, and progress only on a terminal.

Every run renders the real report (its charts cost milliseconds).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import sys
import tempfile
import zipfile
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trainmatch.cli import Progress, main
from trainmatch.letters import plan_filename
from trainmatch.staging import MARKER, MARKER_TEXT

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data" / "survey.csv"
DANGEROUS = ("=", "+", "-", "@", "\t", "\r")
QUICK = ("--k", "2-3", "--seed", "1")
EVIL_SITE = '=HYPERLINK("http://evil.example","click")'
SHEETS = ["people", "plans", "cohorts", "groups"]


def run(*args: object) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def read_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    with open(path, encoding="utf-8", newline="") as fh:
        header, *rows = list(csv.reader(fh))
    return header, rows


def write_rows(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def read_table(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def typed_cells(path: Path) -> list[list[object]]:
    """CSV cells as written: quoted cells as str; unquoted cells as float, bool or '' (empty).

    An unquoted cell that is not a number, true/false or empty fails the test: a
    spreadsheet would read it as it stands.
    """
    text = path.read_bytes().decode("utf-8")
    bare = re.compile(r"[^,\r\n]*")
    rows: list[list[object]] = []
    row: list[object] = []
    i = 0
    while i < len(text):
        if text[i] == '"':
            parts, j = [], i + 1
            while True:
                k = text.index('"', j)
                parts.append(text[j:k])
                if text[k + 1 : k + 2] == '"':
                    parts.append('"')
                    j = k + 2
                else:
                    i = k + 1
                    break
            row.append("".join(parts))
        else:
            raw = bare.match(text, i).group()
            i += len(raw)
            if raw in ("true", "false"):
                row.append(raw == "true")
            else:
                row.append(float(raw) if raw else "")  # ValueError: unquoted text
        if i >= len(text) or text[i] == "\n":
            rows.append(row)
            row = []
            i += 1
        else:
            assert text[i] == ",", (path.name, text[i - 20 : i + 20])
            i += 1
    return rows


def unneutralise(text: str) -> str:
    return text[1:] if text.startswith("'") and text[1:2] in DANGEROUS else text


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def make_bad_sample(path: Path) -> SimpleNamespace:
    """The sample survey with bad rows and spreadsheet formulas injected; returns what was done where."""
    header, rows = read_rows(SAMPLE)
    col = {name: j for j, name in enumerate(header)}

    def put(i: int, **cells: str) -> None:
        for name, value in cells.items():
            rows[i][col[name]] = value

    ids = lambda i: rows[i][col["person_id"]]  # noqa: E731
    put(3, ict1="Sometimes")  # an unknown label
    put(4, ict2="7")  # out of the 1–5 scale
    put(5, person_id="")  # an empty id
    put(6, site=EVIL_SITE)
    put(7, person_id="+358401234567")
    put(8, site="@evil")
    put(9, site="-2+3")
    put(10, language="")  # gets --lang
    put(11, language="svenska")
    put(12, ict3="\t=cmd")  # rejected; the value starts with a tab
    put(13, ehr1="\r=cmd")  # rejected; the value starts with a carriage return
    put(14, role="@admin")  # an unknown role that looks like a formula
    rows.append(list(rows[0]))  # a duplicate id with the same submission time: both copies rejected
    return SimpleNamespace(
        path=write_rows(path, header, rows),
        n=len(rows),
        bad_ids={ids(3), ids(4), ids(12), ids(13), ids(14), ids(0)},
        duplicate=ids(0),
        no_language=ids(10),
        svenska=ids(11),
    )


@pytest.fixture(scope="module")
def bad_sample(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    return make_bad_sample(tmp_path_factory.mktemp("bad") / "survey.csv")


@pytest.fixture(scope="module")
def bad_run(bad_sample: SimpleNamespace, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """`assign` on the sample with bad rows, with every output (report, plans, workbook)."""
    out = tmp_path_factory.mktemp("run") / "out"
    result = run("assign", bad_sample.path, "-o", out, "--seed", "7", "--lang", "sv")
    assert result.exit_code == 0, result.output
    return SimpleNamespace(out=out, result=result, args=("assign", bad_sample.path, "--seed", "7", "--lang", "sv"))


@pytest.fixture(scope="module")
def small_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clean synthetic survey of 40 people."""
    from trainmatch.programme import load_programme
    from trainmatch.synth import synthesize

    survey, _ = synthesize(load_programme(), 40, seed=5)
    path = tmp_path_factory.mktemp("small") / "small.csv"
    survey.to_csv(path, index=False)
    return path


def assert_reconciles(survey: Path, out: Path) -> None:
    """Every data row of ``survey`` is in exactly one of people.csv and rejects.csv; run.json agrees."""
    header, rows = read_rows(survey)
    ids = [r[header.index("person_id")].strip() for r in rows]
    n = len(rows)
    rejects = read_table(out / "rejects.csv")
    rejected = {int(r) for r in rejects["row"]}
    assert rejected <= set(range(1, n + 1))
    for row, pid in zip(rejects["row"], rejects["person_id"]):
        assert unneutralise(pid) == ids[int(row) - 1]  # the reject names the row's own id
    people = read_table(out / "people.csv")
    accepted = Counter(ids[i] for i in range(n) if i + 1 not in rejected)
    assert Counter(unneutralise(p) for p in people["person_id"]) == accepted
    assert len(people) + len(rejected) == n
    counts = json.loads((out / "run.json").read_text(encoding="utf-8"))["counts"]
    assert counts["rows_read"] == n
    assert counts["accepted"] == len(people)
    assert counts["rejected"] == len(rejected)
    assert counts["reconciles"] is True


# --------------------------------------------------------------------------- nothing lost


def test_every_row_is_in_people_or_rejects(bad_run: SimpleNamespace, bad_sample: SimpleNamespace) -> None:
    assert_reconciles(bad_sample.path, bad_run.out)
    rejects = read_table(bad_run.out / "rejects.csv")
    rejected_ids = {unneutralise(p) for p in rejects["person_id"]}
    assert bad_sample.bad_ids <= rejected_ids
    reasons = " ".join(rejects["reason"])
    for words in ("Unknown answer", "outside the scale", "person id is empty", "Unknown role", "same id appears"):
        assert words in reasons
    assert rejects.loc[rejects["person_id"] == bad_sample.duplicate, "row"].nunique() == 2  # both copies


def test_rejects_are_summarised_on_stderr_and_the_run_succeeds(bad_run: SimpleNamespace) -> None:
    result = bad_run.result
    n_rejected = json.loads((bad_run.out / "run.json").read_text(encoding="utf-8"))["counts"]["rejected"]
    assert re.search(rf"Warning: {n_rejected} of \d+ rows were rejected; see .*rejects\.csv", result.stderr)
    assert "Unknown answer" in result.stderr  # the first problems are listed
    assert "rejected" not in result.stdout


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(min_value=20, max_value=36),
    seed=st.integers(min_value=0, max_value=10_000),
    edits=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=35),
            st.sampled_from(["person_id", "role", "site", "language", "ict1", "ehr2", "rem3", "video_visits", "hours_available", "preferred_formats"]),
            st.sampled_from(["", "7", "0", "Sometimes", "=1+1", "+358", "@x", "-3", "\t5", "zz", "copy-id"]),
        ),
        max_size=8,
    ),
)
def test_nothing_is_lost_on_random_surveys(n: int, seed: int, edits: list[tuple[int, str, str]]) -> None:
    """Property: whatever cells are spoiled, each row lands in exactly one of people.csv and rejects.csv."""
    from trainmatch.programme import load_programme
    from trainmatch.synth import synthesize

    survey, _ = synthesize(load_programme(), n, seed=seed)
    for row, column, value in edits:
        if value == "copy-id":  # a duplicate id
            value = survey.at[(row + 1) % n, "person_id"]
        survey.at[row % n, column] = value
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "survey.csv"
        survey.to_csv(path, index=False)
        out = Path(tmp) / "out"
        result = run("assign", path, "-o", out, "--per-person", "none", "--no-xlsx", *QUICK)
        assert result.exit_code == 0, result.output
        assert_reconciles(path, out)


def test_all_rows_rejected_is_an_error_and_writes_nothing(small_csv: Path, tmp_path: Path) -> None:
    frame = read_table(small_csv)
    frame["ict1"] = "Sometimes"
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    result = run("assign", path, "-o", tmp_path / "out", *QUICK)
    assert result.exit_code == 1
    assert "All 40 rows were rejected" in result.output and "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv"]


# --------------------------------------------------------------------------- staged output


def test_existing_output_is_refused_without_force(small_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / MARKER).write_text(MARKER_TEXT, encoding="utf-8")  # an earlier run's output
    (out / "keep.txt").write_text("mine", encoding="utf-8")
    before = snapshot(out)
    result = run("assign", small_csv, "-o", out, *QUICK)
    assert result.exit_code == 2
    assert "already exists" in result.output and "--force" in result.output
    assert snapshot(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_force_replaces_the_output_once_complete(small_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / MARKER).write_text(MARKER_TEXT, encoding="utf-8")  # an earlier run's output
    (out / "stale.txt").write_text("old run", encoding="utf-8")
    result = run("assign", small_csv, "-o", out, "--force", *QUICK)
    assert result.exit_code == 0, result.output
    names = {p.name for p in out.iterdir()}
    assert "stale.txt" not in names
    assert {"people.csv", "plans.csv", "deferred.csv", "rejects.csv", "cohorts.csv", "groups.csv", "run.json", "report.html", "plans.xlsx", "plans"} <= names
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no .partial or .old folder left


def _fail_workbook(*args: object, **kwargs: object) -> None:
    raise OSError(28, "No space left on device", "plans.xlsx")


def _fail_after_first_plan(*args: object, **kwargs: object):  # noqa: ANN202
    yield "000001", "<html>first plan</html>"
    raise RuntimeError("rendering failed midway")


def _fail_json(*args: object, **kwargs: object) -> None:
    raise RuntimeError("run.json could not be written")


FAILURES = [
    ("trainmatch.outputs", "write_workbook", _fail_workbook),
    ("trainmatch.letters", "render_plans", _fail_after_first_plan),
    ("trainmatch.outputs", "write_json", _fail_json),
]


@pytest.mark.parametrize("module, name, failure", FAILURES, ids=[f[1] for f in FAILURES])
def test_a_failure_midway_leaves_the_existing_output_untouched(
    small_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, module: str, name: str, failure: object
) -> None:
    import importlib

    work = tmp_path / "work"
    work.mkdir()
    out = work / "out"
    first = run("assign", small_csv, "-o", out, *QUICK)
    assert first.exit_code == 0, first.output
    before = snapshot(out)
    monkeypatch.setattr(importlib.import_module(module), name, failure)
    result = run("assign", small_csv, "-o", out, "--force", "--seed", "2", "--k", "2-3")
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert snapshot(out) == before
    assert [p.name for p in work.iterdir()] == ["out"]  # no .partial folder left behind
    # Without an existing folder, a failed run leaves nothing at all.
    result = run("assign", small_csv, "-o", work / "fresh", *QUICK)
    assert result.exit_code == 1
    assert [p.name for p in work.iterdir()] == ["out"]


def test_a_failure_while_swapping_folders_puts_the_old_output_back(
    small_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    out = tmp_path / "out"
    assert run("assign", small_csv, "-o", out, "--per-person", "none", *QUICK).exit_code == 0
    before = snapshot(out)
    real = os.replace

    def flaky(src: object, dst: object) -> None:
        if str(src).endswith(".partial"):
            raise OSError(5, "Input/output error", str(dst))
        real(src, dst)

    monkeypatch.setattr(os, "replace", flaky)
    result = run("assign", small_csv, "-o", out, "--force", "--per-person", "none", *QUICK)
    assert result.exit_code == 1 and "Input/output error" in result.output
    assert snapshot(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


# --------------------------------------------------------------------------- formulas and numbers


def test_formulas_are_neutralised_in_every_csv(bad_run: SimpleNamespace, bad_sample: SimpleNamespace) -> None:
    seen: set[str] = set()
    for path in sorted(bad_run.out.glob("*.csv")):
        for row in typed_cells(path)[1:]:
            for cell in row:
                if isinstance(cell, str):
                    assert not cell.startswith(DANGEROUS), (path.name, cell)
                    seen.add(cell)
    assert {"'" + EVIL_SITE, "'+358401234567", "'@evil", "'-2+3", "'\t=cmd", "'\r=cmd", "'@admin"} <= seen
    # Numbers stay numbers (unquoted), negative gaps included.
    header, *rows = typed_cells(bad_run.out / "people.csv")
    numeric = [j for j, c in enumerate(header) if c == "hours" or c.split("_")[0] in ("score", "gap") or c.endswith("_hours")]
    values = [row[j] for row in rows for j in numeric]
    assert all(isinstance(v, float) or v == "" for v in values)
    assert any(isinstance(v, float) and v < 0 for v in values)
    header, *rows = typed_cells(bad_run.out / "plans.csv")
    assert all(isinstance(row[header.index("step")], float) and isinstance(row[header.index("hours")], float) for row in rows)


def test_neutralise_text_keeps_numbers_and_distinct_values() -> None:
    from trainmatch.outputs import neutralise_text

    frame = pd.DataFrame(
        {
            "title": pd.Categorical(["=x", "'=x", "ok", "-y"]),
            "gap": pd.Categorical([-1, 2, -1, 3]),
            "text": ["-1", "\t@a", "b", None],
            "hours": [-1.5, 2.0, float("nan"), 0.0],
        }
    )
    out = neutralise_text(frame)
    assert list(out["title"].astype(str)) == ["'=x", "'=x", "ok", "'-y"]
    assert list(out["gap"]) == [-1, 2, -1, 3]
    assert list(out["text"][:3]) == ["'-1", "'\t@a", "b"] and pd.isna(out["text"][3])
    assert out["hours"].tolist()[:2] == [-1.5, 2.0]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(alphabet=st.sampled_from(
    list("ab1 =+-@'\t\r\n\x00\x1c\x7f\u00a0\u00ad\u2003\u200b\ufeff\uff1d\uff0b\uff0d\uff20é")), max_size=4)), min_size=1, max_size=12),
    st.integers(0, 12), st.lists(st.text(max_size=3), max_size=3))
def test_arrow_text_is_neutralised_exactly_as_the_formula_pattern_says(cells: list[str | None], split: int, before: list[str]) -> None:
    """Arrow-backed text (how tables read back from CSV come) is checked by Arrow's regex engine after a
    first-byte filter; the cells it prefixes are exactly those Python's FORMULA_PATTERN matches, whatever the
    chunks and slices of the Arrow data."""
    import pyarrow as pa

    from trainmatch.columns import FORMULA_PATTERN
    from trainmatch.outputs import neutralise_text

    split = min(split, len(cells))
    tail = pa.array(before + cells[split:], type=pa.string()).slice(len(before))  # a chunk that starts inside its buffers
    chunked = pa.chunked_array([pa.array(cells[:split], type=pa.string()), tail], type=pa.string())
    text = pd.Series(pd.arrays.ArrowStringArray(chunked))
    out = neutralise_text(pd.DataFrame({"text": text}))["text"]
    expected = [None if c is None else ("'" + c if re.match(FORMULA_PATTERN, c) else c) for c in cells]
    assert [None if pd.isna(v) else v for v in out] == expected


@pytest.mark.parametrize("make, words", [(lambda t: t / "missing" / "out", "does not exist"), (lambda t: t / "file", "is a file")])
def test_an_impossible_output_is_refused_before_any_work(small_csv: Path, tmp_path: Path, make: object, words: str) -> None:
    (tmp_path / "file").write_text("x", encoding="utf-8")
    result = run("assign", small_csv, "-o", make(tmp_path), "--force", *QUICK)
    assert result.exit_code == 2 and words in result.output
    assert "Read " not in result.output  # refused before reading the survey
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def workbook(path: Path) -> dict[str, list[list[object]]]:
    from python_calamine import CalamineWorkbook

    book = CalamineWorkbook.from_path(str(path))
    return {name: book.get_sheet_by_name(name).to_python() for name in book.sheet_names}


def test_formulas_are_neutralised_in_the_workbook(bad_run: SimpleNamespace) -> None:
    sheets = workbook(bad_run.out / "plans.xlsx")
    seen: set[str] = set()
    for name, rows in sheets.items():
        for row in rows[1:]:
            for cell in row:
                if isinstance(cell, str):
                    assert not cell.startswith(DANGEROUS), (name, cell)
                    seen.add(cell)
    assert {"'" + EVIL_SITE, "'@evil", "'-2+3"} <= seen  # "+358401234567" is refused at import (ids are never changed)
    header, *rows = sheets["people"]
    for col in ("score_ict_basics", "gap_ict_basics", "planned_hours", "deferred_hours"):
        j = header.index(col)
        assert all(isinstance(row[j], float) for row in rows if row[j] != ""), col
    assert any(row[header.index("gap_ict_basics")] < 0 for row in rows)
    header, *rows = sheets["plans"]
    assert all(isinstance(row[header.index("hours")], float) and isinstance(row[header.index("step")], float) for row in rows)


# --------------------------------------------------------------------------- workbook and options


def sheet_xml(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as z:
        names = sorted((n for n in z.namelist() if re.fullmatch(r"xl/worksheets/sheet\d+\.xml", n)), key=lambda n: int(re.findall(r"\d+", n)[0]))
        return [z.read(n).decode("utf-8") for n in names]


def test_workbook_has_the_tables_with_frozen_headers_and_filters(bad_run: SimpleNamespace) -> None:
    sheets = workbook(bad_run.out / "plans.xlsx")
    assert list(sheets) == SHEETS
    for name in SHEETS:
        table = read_table(bad_run.out / f"{name}.csv")
        assert [str(c) for c in sheets[name][0]] == list(table.columns)
        assert len(sheets[name]) == len(table) + 1
    for xml in sheet_xml(bad_run.out / "plans.xlsx"):
        assert re.search(r'<pane ySplit="1" topLeftCell="A2" [^>]*state="frozen"', xml)
        assert "<autoFilter ref=" in xml


def test_long_tables_continue_on_the_next_sheet(small_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import trainmatch.xlsx

    monkeypatch.setattr(trainmatch.xlsx, "MAX_ROWS", 25)
    out = tmp_path / "out"
    result = run("assign", small_csv, "-o", out, "--per-person", "none", *QUICK)
    assert result.exit_code == 0, result.output
    sheets = workbook(out / "plans.xlsx")
    plans = read_table(out / "plans.csv")
    parts = [name for name in sheets if name == "plans" or name.startswith("plans (")]
    assert parts == ["plans"] + [f"plans ({i})" for i in range(2, len(parts) + 1)]
    assert len(parts) == -(-len(plans) // 24) > 1
    rows = []
    for name in parts:
        assert sheets[name][0] == list(plans.columns) and len(sheets[name]) <= 25
        rows += sheets[name][1:]
    assert [r[0] for r in rows] == list(plans["person_id"])  # nothing lost, order kept
    assert len(sheet_xml(out / "plans.xlsx")) == len(sheets)
    assert all("<autoFilter" in xml and "<pane" in xml for xml in sheet_xml(out / "plans.xlsx"))


@pytest.mark.parametrize(
    "flag, limit, expected",
    [(None, 10, False), (None, 40, True), ("--xlsx", 10, True), ("--no-xlsx", 40, False)],
)
def test_workbook_default_limit_and_switches(
    small_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flag: str | None, limit: int, expected: bool
) -> None:
    import trainmatch.outputs

    monkeypatch.setattr(trainmatch.outputs, "XLSX_AUTO_LIMIT", limit)
    out = tmp_path / "out"
    result = run("assign", small_csv, "-o", out, "--per-person", "none", *QUICK, *([flag] if flag else []))
    assert result.exit_code == 0, result.output
    assert (out / "plans.xlsx").exists() is expected
    assert json.loads((out / "run.json").read_text(encoding="utf-8"))["options"]["xlsx"] is expected


def test_per_person_none_writes_no_plans(small_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run("assign", small_csv, "-o", out, "--per-person", "none", "--no-xlsx", *QUICK)
    assert result.exit_code == 0, result.output
    assert not (out / "plans").exists()
    assert (out / "plans.csv").exists() and (out / "report.html").exists()


# --------------------------------------------------------------------------- plans


def test_one_plan_per_accepted_person_in_their_language(bad_run: SimpleNamespace, bad_sample: SimpleNamespace) -> None:
    header, rows = read_rows(bad_sample.path)
    language = {r[header.index("person_id")]: r[header.index("language")] for r in rows}
    people = [unneutralise(p) for p in read_table(bad_run.out / "people.csv")["person_id"]]
    files = {p.name for p in (bad_run.out / "plans").iterdir()}
    assert files == {plan_filename(p) for p in people}
    assert language[bad_sample.no_language] == "" and language[bad_sample.svenska] == "svenska"
    expected = {p: {"": "sv", "svenska": "sv"}.get(language[p], language[p]) for p in people}  # --lang sv for no language
    assert set(expected.values()) == {"fi", "sv", "en"}
    deferred = set(read_table(bad_run.out / "deferred.csv")["person_id"])
    for pid in people:
        html = (bad_run.out / "plans" / plan_filename(pid)).read_text(encoding="utf-8")
        assert f'<html lang="{expected[pid]}">' in html, pid
        if expected[pid] != "en" and pid in deferred:  # why something was deferred, in their language too
            assert "remaining budget" not in html and "needed for" not in html and "is deferred" not in html, pid


def test_plans_name_the_group_of_group_sessions(bad_run: SimpleNamespace) -> None:
    from trainmatch.programme import load_programme

    plans = read_table(bad_run.out / "plans.csv")
    grouped = plans[plans["group"] != ""]
    group_formats = {f.id for f in load_programme().formats if f.group}
    assert len(grouped) and set(grouped["format"]) == group_formats & set(plans["format"])
    for pid, group in grouped[["person_id", "group"]].drop_duplicates().itertuples(index=False):
        html = (bad_run.out / "plans" / plan_filename(unneutralise(pid))).read_text(encoding="utf-8")
        assert group in html
    people = read_table(bad_run.out / "people.csv").set_index("person_id")
    # a step is in a session of the person's own group, unless its note says it joins another group's session
    own = grouped["session_note"] == ""
    assert own.any()
    assert (grouped.loc[own, "group"].to_numpy() == people.loc[grouped.loc[own, "person_id"], "group"].to_numpy()).all()
    others = grouped[~own]
    assert all(("joins a session of group " + g) in note or note.startswith(("meets with", "session below"))
               for g, note in zip(others["group"], others["session_note"]))


def test_plan_steps_name_the_rule_behind_them(bad_run: SimpleNamespace) -> None:
    from trainmatch.letters import TEXT

    plans = read_table(bad_run.out / "plans.csv")
    by_rule = plans[plans["reason"].str.startswith("rule ")].drop_duplicates("person_id").head(40)
    assert len(by_rule)
    for pid, rule in by_rule[["person_id", "rule_ids"]].itertuples(index=False):
        html = (bad_run.out / "plans" / plan_filename(unneutralise(pid))).read_text(encoding="utf-8")
        lang = re.search(r'<html lang="(\w+)">', html).group(1)
        assert "(" + TEXT[lang]["rule"].format(rule=rule.split(";")[0]) in html, (pid, rule)


def test_report_keeps_sites_with_the_same_beginning_apart() -> None:
    """Site names are cut to 40 characters on the chart; sites that share those stay separate bars."""
    import base64

    from trainmatch.charts import draw_charts

    same = "mixed: Keskussairaala, Kotihoito Pohjoinen, "
    rows = [{"site": same + "Itä", "groups": 1, "members": 8}, {"site": same + "Länsi", "groups": 2, "members": 16}, {"site": "Keskussairaala", "groups": 3, "members": 24}]
    svg = base64.b64decode(draw_charts({"groups_site": {"rows": rows}})["groups_site"].src.split(",", 1)[1]).decode("utf-8")
    tops = [float(y) for y in re.findall(r'<rect x="[0-9.]+" y="([0-9.]+)"[^>]*fill="#1f4e79"', svg)]
    assert len(set(tops)) == 3  # three bars at three heights, not two on top of each other


# --------------------------------------------------------------------------- reproducible


def test_same_input_and_seed_give_identical_files(bad_run: SimpleNamespace, tmp_path: Path) -> None:
    again = tmp_path / "again"
    command, survey, *options = bad_run.args
    result = run(command, survey, "-o", again, *options)
    assert result.exit_code == 0, result.output
    first, second = snapshot(bad_run.out), snapshot(again)
    assert sorted(first) == sorted(second)
    assert any(name.startswith("plans/") for name in first) and "plans.xlsx" in first and "report.html" in first
    different = [name for name in first if name != "run.json" and first[name] != second[name]]
    assert different == []
    runs = [json.loads(files["run.json"]) for files in (first, second)]
    for doc in runs:
        assert set(doc.pop("seconds")) >= {"read", "validate", "report", "write", "total"}
        doc.pop("created")  # when the run was made
    assert runs[0] == runs[1]


def test_run_json_describes_the_run(bad_run: SimpleNamespace, bad_sample: SimpleNamespace) -> None:
    doc = json.loads((bad_run.out / "run.json").read_text(encoding="utf-8"))
    assert doc["input"]["sha256"] == hashlib.sha256(bad_sample.path.read_bytes()).hexdigest()
    assert doc["seed"] == 7 and doc["options"]["lang"] == "sv" and doc["options"]["xlsx"] is True
    assert doc["programme"]["fingerprint"] and doc["versions"]["trainmatch"]
    assert doc["counts"]["steps"] == len(read_table(bad_run.out / "plans.csv"))
    assert doc["counts"]["groups"] == len(read_table(bad_run.out / "groups.csv"))


# --------------------------------------------------------------------------- --strict


def test_strict_with_rejected_rows_exits_1_and_writes_nothing(bad_sample: SimpleNamespace, tmp_path: Path) -> None:
    result = run("assign", bad_sample.path, "-o", tmp_path / "out", "--strict", *QUICK)
    assert result.exit_code == 1
    assert "--strict" in result.output and "nothing was written" in result.output
    assert list(tmp_path.iterdir()) == []
    # An existing folder stays as it was, even with --force.
    out = tmp_path / "out"
    out.mkdir()
    (out / MARKER).write_text(MARKER_TEXT, encoding="utf-8")  # an earlier run's output
    (out / "keep.txt").write_text("mine", encoding="utf-8")
    result = run("assign", bad_sample.path, "-o", out, "--strict", "--force", *QUICK)
    assert result.exit_code == 1 and "--strict" in result.output
    assert snapshot(out) == {MARKER: MARKER_TEXT.encode(), "keep.txt": b"mine"} and [p.name for p in tmp_path.iterdir()] == ["out"]


def test_strict_with_a_clean_survey_succeeds(small_csv: Path, tmp_path: Path) -> None:
    result = run("assign", small_csv, "-o", tmp_path / "out", "--strict", "--per-person", "none", *QUICK)
    assert result.exit_code == 0, result.output
    assert read_table(tmp_path / "out" / "rejects.csv").empty


# --------------------------------------------------------------------------- progress and --quiet


def test_no_progress_when_stderr_is_not_a_terminal(bad_run: SimpleNamespace) -> None:
    text = bad_run.result.output
    assert not re.search(r"(?m)^… ", text) and "plans  [" not in text
    assert "Planned " in bad_run.result.stderr and "Wrote " in bad_run.result.stderr


def test_quiet_prints_only_warnings(small_csv: Path, tmp_path: Path) -> None:
    result = run("assign", small_csv, "-o", tmp_path / "out", "--quiet", "--per-person", "none", *QUICK)
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert all(line.startswith("Warning:") for line in result.stderr.splitlines()), result.stderr


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_shows_stages_and_a_bar_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    progress = Progress(quiet=False)
    progress.stage("reading the survey")
    with progress.bar(iter(range(5)), 5) as items:
        assert list(items) == list(range(5))
    text = terminal.getvalue()
    assert "… reading the survey" in text and "plans" in text and "100%" in text

    for quiet, stream in ((True, FakeTerminal()), (False, io.StringIO())):
        monkeypatch.setattr(sys, "stderr", stream)
        progress = Progress(quiet=quiet)
        progress.stage("reading the survey")
        with progress.bar(iter(range(5)), 5) as items:
            assert list(items) == list(range(5))
        assert stream.getvalue() == ""


def test_letters_name_the_organisation_support_and_feedback_from_the_programme(tmp_path):
    from click.testing import CliRunner

    from trainmatch.cli import main

    prog = tmp_path / "prog"
    assert CliRunner().invoke(main, ["init", str(prog)]).exit_code == 0
    toml = prog / "programme.toml"
    text = toml.read_text(encoding="utf-8")
    text = text.replace('name = ""             #', 'name = "Pohjanmaan hyvinvointialue" #')
    text = text.replace('support_contact = ""  #', 'support_contact = "Digituki 010 123 4567" #')
    text = text.replace('feedback = ""         #', 'feedback = "palaute@example.fi" #')
    toml.write_text(text, encoding="utf-8")
    out = tmp_path / "out"
    survey = Path(__file__).resolve().parent.parent / "sample_data" / "survey.csv"
    result = CliRunner().invoke(main, ["assign", str(survey), "-o", str(out), "--programme", str(prog), "--no-xlsx"])
    assert result.exit_code == 0, result.output
    page = (out / "plans" / "plan-000001.html").read_text(encoding="utf-8")
    assert "Pohjanmaan hyvinvointialue" in page
    assert "Digituki 010 123 4567" in page
    assert "mailto:palaute@example.fi" in page


def test_programme_rejects_a_bad_plan_period(tmp_path):
    from click.testing import CliRunner

    from trainmatch.cli import main

    prog = tmp_path / "prog"
    assert CliRunner().invoke(main, ["init", str(prog)]).exit_code == 0
    toml = prog / "programme.toml"
    toml.write_text(toml.read_text(encoding="utf-8").replace("plan_weeks = 12", "plan_weeks = 0"), encoding="utf-8")
    survey = Path(__file__).resolve().parent.parent / "sample_data" / "survey.csv"
    result = CliRunner().invoke(main, ["validate", str(survey), "--programme", str(prog)])
    assert result.exit_code == 1
    assert "organisation.plan_weeks" in result.output
