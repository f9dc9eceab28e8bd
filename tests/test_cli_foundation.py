"""The foundation commands (init, synth, validate, score) as a user runs them: exit codes, messages, files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pandas as pd
import pytest

from conftest import PROGRAMMES, SURVEYS, TINY
from trainmatch.cli import main

TINY_OPT = ("--programme", TINY)


def read_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def assert_clean_failure(result, code: int = 1) -> None:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert "Internal error" not in result.output


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# --------------------------------------------------------------------------- validate


def test_validate_clean_synthetic_data_exits_0(cli, synth_csv):
    result = cli("validate", synth_csv)
    assert result.exit_code == 0, result.output
    assert "150 rows" in result.output
    assert "accepted: 150, rejected: 0" in result.output
    assert "personal data dropped (1): email" in result.output
    assert "OK" in result.output


def test_validate_bad_data_exits_1_and_shows_where(cli):
    result = cli("validate", SURVEYS / "bad_cells.csv", *TINY_OPT)
    assert_clean_failure(result)
    out = result.output
    assert "bad_cells.csv" in out
    assert "8 of 10 rows would be rejected" in out
    lines = out.splitlines()
    # The problem table names row, line, id, column and value of each bad cell.
    assert any(ln.split()[:5] == ["3", "4", "0103", "ict2", "7"] for ln in lines), out
    assert any(ln.split()[:5] == ["2", "3", "0102", "ict1", "Sometimes"] for ln in lines), out
    assert "Nurse practitioner" in out and "role" in out
    assert "rows 5, 6" in out
    assert "p0101@example.fi" not in out  # personal data never shown


def test_validate_errors_out_lists_every_problem(cli, tmp_path):
    errors = tmp_path / "problems.csv"
    result = cli("validate", SURVEYS / "bad_cells.csv", *TINY_OPT, "--errors-out", errors, "--show", "2")
    assert_clean_failure(result)
    problems = read_csv(errors)
    assert list(problems.columns) == ["row", "line", "person_id", "column", "value", "reason"]
    assert len(problems) == 8  # all of them, not only the two shown
    assert problems[["row", "person_id", "column", "value"]].values.tolist()[:3] == [
        ["2", "0102", "ict1", "Sometimes"],
        ["3", "0103", "ict2", "7"],
        ["4", "", "person_id", ""],
    ]
    assert "First 2 problem(s)" in result.output


def test_validate_errors_out_neutralises_formulas(cli, tmp_path):
    text = (SURVEYS / "tiny.csv").read_text(encoding="utf-8").replace(",Agree,", ",=HYPERLINK(\"http://x\"),", 1)
    survey = tmp_path / "formula.csv"
    survey.write_text(text, encoding="utf-8")
    errors = tmp_path / "problems.csv"
    assert_clean_failure(cli("validate", survey, *TINY_OPT, "--errors-out", errors))
    value = read_csv(errors)["value"].iloc[0]
    assert value.startswith("'=")


def test_validate_reads_xlsx_with_sheet(cli, tiny_xlsx):
    result = cli("validate", tiny_xlsx, *TINY_OPT, "--sheet", "Responses")
    assert result.exit_code == 0, result.output
    assert "XLSX, sheet 'Responses'" in result.output
    missing = cli("validate", tiny_xlsx, *TINY_OPT, "--sheet", "Answers")
    assert_clean_failure(missing)
    assert "'Info', 'Responses'" in missing.output


def test_validate_reports_skipped_blank_rows_and_shifted_cells(cli):
    result = cli("validate", SURVEYS / "trailing_delimiter.csv", *TINY_OPT)
    assert_clean_failure(result)
    assert "empty rows skipped (not people): 2" in result.output
    assert "(beyond the last column)" in result.output
    assert "1 of 4 rows would be rejected" in result.output


@pytest.mark.parametrize("name", ["semicolon_cp1252.csv", "utf16_tab.csv", "sep_line.csv", "bom_utf8.csv", "loose_headers.csv"])
def test_validate_accepts_common_export_formats(cli, name):
    result = cli("validate", SURVEYS / name, *TINY_OPT)
    assert result.exit_code == 0, result.output


# --------------------------------------------------------------------------- score


def test_score_writes_the_expected_columns_and_values(cli, tmp_path, tiny_programme):
    out = tmp_path / "scores.csv"
    result = cli("score", SURVEYS / "tiny.csv", *TINY_OPT, "-o", out)
    assert result.exit_code == 0, result.output
    assert "Wrote scores of 4 people" in result.output
    assert "Cronbach" in result.output
    scores = read_csv(out)
    expected = ["person_id", "role", "site", "language", "hours", "formats"]
    expected += [f"task_{t}" for t in tiny_programme.task_ids]
    for d in ("ict", "remote"):
        expected += [f"score_{d}", f"level_{d}", f"required_{d}", f"gap_{d}", f"reassess_{d}", f"uncertain_{d}"]
    assert list(scores.columns) == expected
    s = scores.set_index("person_id")
    assert s.index.tolist() == ["0001", "0002", "0003", "0004"]
    assert "name" not in scores.columns and "email" not in scores.columns
    # Values worked out by hand in test_scoring.py.
    assert s.loc["0001", ["score_ict", "level_ict", "required_ict", "gap_ict"]].tolist() == ["4.667", "highly_specialised", "intermediate", "-2"]
    assert s.loc["0001", ["score_remote", "level_remote", "required_remote", "gap_remote"]].tolist() == ["2.333", "foundation", "advanced", "2"]
    assert s.loc["0002", ["score_ict", "level_ict", "required_ict", "gap_ict"]].tolist() == ["3.5", "advanced", "advanced", "0"]
    assert s.loc["0002", ["score_remote", "level_remote", "gap_remote", "reassess_remote"]].tolist() == ["", "", "", "yes"]
    assert s.loc["0004", ["score_remote", "level_remote", "gap_remote"]].tolist() == ["2.5", "intermediate", "1"]
    assert s.loc["0003", "required_ict"] == "none"
    assert s.loc["0002", "hours"] == "2.5"
    assert s.loc["0004", "role"] == "physician"
    assert s.loc["0001", "task_video_visits"] == "yes"


def test_no_requirement_is_written_as_none(cli, tmp_path):
    # Not "-": a cell starting with "-" is neutralised as a possible spreadsheet formula.
    out = tmp_path / "scores.csv"
    assert cli("score", SURVEYS / "tiny.csv", *TINY_OPT, "-o", out).exit_code == 0
    s = read_csv(out).set_index("person_id")
    assert s.loc["0002", "required_remote"] == "none"
    assert s.loc["0003", "required_ict"] == "none"


def test_score_keeps_every_row_in_scores_or_rejects(cli, tmp_path):
    out, rejects = tmp_path / "scores.csv", tmp_path / "rejects.csv"
    result = cli("score", SURVEYS / "bad_cells.csv", *TINY_OPT, "-o", out, "--rejects-out", rejects)
    assert result.exit_code == 0, result.output
    assert "8 row(s) were rejected" in result.output
    scored = read_csv(out)["person_id"].tolist()
    rejected = read_csv(rejects)
    assert scored == ["0101", "0109"]
    assert sorted(set(rejected["row"].astype(int))) == [2, 3, 4, 5, 6, 7, 8, 10]
    assert len(scored) + rejected["row"].nunique() == 10


def test_score_without_rejects_out_says_how_to_list_them(cli, tmp_path):
    result = cli("score", SURVEYS / "bad_cells.csv", *TINY_OPT, "-o", tmp_path / "s.csv")
    assert "--rejects-out" in result.output


BAD_INPUTS = [
    # survey, extra options, words the message must contain
    ("empty.csv", (), ["empty.csv", "is empty"]),
    ("header_only.csv", (), ["header_only.csv", "no answers"]),
    ("no_id.csv", (), ["no_id.csv", "'person_id'"]),
    ("missing_column.csv", (), ["missing_column.csv", "'rem3'", "did you mean 'person_idd'"]),
    ("tiny.csv", ("--programme", PROGRAMMES / "bad_typo_key"), ["programme.toml", "scoring.min_answerd_share", "min_answered_share"]),
    ("tiny.csv", ("--programme", PROGRAMMES / "bad_unknown_level"), ["tasks.csv", "row 2", "column 'remote'", "advaned"]),
    ("unclosed_quote.csv", (), ["unclosed_quote.csv", "line 4", "never closed"]),
    ("does_not_exist.csv", (), ["does_not_exist.csv", "does not exist"]),
]


@pytest.fixture
def bad_inputs(tmp_path) -> Path:
    """The committed bad surveys plus two made here, in one folder."""
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("empty.csv", "header_only.csv", "missing_column.csv", "tiny.csv"):
        (folder / name).write_bytes((SURVEYS / name).read_bytes())
    tiny = (SURVEYS / "tiny.csv").read_text(encoding="utf-8").splitlines()
    (folder / "no_id.csv").write_text("\n".join(ln.split(",", 2)[0] + "," + ln.split(",", 2)[2] for ln in tiny) + "\n", encoding="utf-8")
    (folder / "unclosed_quote.csv").write_text("\n".join([tiny[0], tiny[1], tiny[2], tiny[3].replace(",Registered nurse,", ',"Registered nurse,'), tiny[4]]) + "\n", encoding="utf-8")
    return folder


@pytest.mark.parametrize("command", ["validate", "score"])
@pytest.mark.parametrize("survey, options, words", BAD_INPUTS, ids=[f"{b[0]}{'+' + Path(b[1][1]).name if b[1] else ''}" for b in BAD_INPUTS])
def test_bad_input_exits_1_with_a_located_message_and_no_output(cli, bad_inputs, tmp_path, command, survey, options, words):
    out = tmp_path / "out"
    out.mkdir()
    args = [command, bad_inputs / survey, *(options or TINY_OPT)]
    if command == "score":
        args += ["-o", out / "scores.csv", "--rejects-out", out / "rejects.csv"]
    else:
        args += ["--errors-out", out / "problems.csv"]
    result = cli(*args)
    assert_clean_failure(result)
    for word in words:
        assert word in result.output, result.output
    assert leftovers(out) == []  # nothing written, no temporary files either


@pytest.mark.parametrize(
    "old, new, words",
    [
        (",0003,", ",0001,", ["rows 1, 3", "0001", "person_id"]),  # duplicate id
        (",Agree,", ",Agreed,", ["Agreed", "ict1", "Unknown answer"]),  # unknown label
        (",1,4,", ",1,7,", ["7", "ict3", "outside the scale"]),  # out-of-range code
        (",Registered nurse,", ",Nurse practitioner,", ["Nurse practitioner", "role", "Unknown role"]),
    ],
    ids=["duplicate-id", "unknown-label", "out-of-range", "unknown-role"],
)
def test_row_level_problems_fail_validate_naming_row_column_value(cli, tmp_path, old, new, words):
    text = (SURVEYS / "tiny.csv").read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "survey.csv"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    result = cli("validate", path, *TINY_OPT)
    assert_clean_failure(result)
    assert str(path) in result.output
    assert "row  line  person_id  column" in result.output
    for word in words:
        assert word in result.output, result.output


# --------------------------------------------------------------------------- usage errors (exit 2)


@pytest.mark.parametrize(
    "args",
    [
        ["synth", "--n", "0", "-o", "x.csv"],
        ["synth", "--n", "many", "-o", "x.csv"],
        ["synth", "--n", "10", "-o", "x.txt"],
        ["synth", "--n", "10"],
        ["score", "survey.csv"],
        ["validate"],
        ["validate", "survey.csv", "--show", "-1"],
        ["validate", "survey.csv", "--colour"],
        ["frobnicate"],
    ],
)
def test_malformed_options_exit_2(cli, tmp_path, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    result = cli(*args)
    assert_clean_failure(result, code=2)
    assert "Usage:" in result.output or "Error:" in result.output
    assert not (tmp_path / "x.csv").exists() and not (tmp_path / "x.txt").exists()


def test_output_into_a_missing_folder_is_a_usage_error(cli, tmp_path):
    result = cli("score", SURVEYS / "tiny.csv", *TINY_OPT, "-o", tmp_path / "nowhere" / "scores.csv")
    assert_clean_failure(result, code=2)
    assert "nowhere" in result.output


# --------------------------------------------------------------------------- the command line as a program


def test_python_m_trainmatch_help():
    done = subprocess.run([sys.executable, "-m", "trainmatch", "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "Usage:" in done.stdout
    for command in ("init", "synth", "validate", "score"):
        assert command in done.stdout


def test_importing_the_cli_does_not_import_heavy_libraries():
    code = "import sys, trainmatch.cli; print(sorted(m for m in ('pandas', 'numpy', 'sklearn', 'scipy', 'matplotlib') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_version(cli):
    from trainmatch import __version__

    result = cli("--version")
    assert result.exit_code == 0
    assert __version__ in result.output


def all_commands() -> list[str]:
    return sorted(main.commands)


@pytest.mark.parametrize("command", all_commands())
def test_every_command_help_has_a_description_and_an_example(cli, command):
    result = cli(command, "--help")
    assert result.exit_code == 0, result.output
    cmd = main.commands[command]
    assert cmd.help and len(cmd.help.strip().splitlines()[0]) > 10, command
    assert "Example" in result.output, command
    assert f"trainmatch {command}" in result.output, command
    for param in cmd.params:
        if isinstance(param, click.Option) and not param.hidden and param.name != "help":
            assert param.help, f"{command} {param.opts[0]} has no help text"


def test_score_refuses_when_every_row_is_rejected(cli, tmp_path):
    bad = tmp_path / "all_bad.csv"
    lines = (SURVEYS / "tiny.csv").read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    body = [",".join("9" if h.startswith(("ict", "rem")) else v for h, v in zip(header, ln.split(","))) for ln in lines[1:]]
    bad.write_text("\n".join([lines[0], *body]) + "\n", encoding="utf-8")
    out = tmp_path / "scores.csv"
    result = cli("score", bad, *TINY_OPT, "-o", out)
    assert result.exit_code == 1
    assert "nothing to score" in result.output
    assert not out.exists()


def test_headers_match_ignoring_case_spaces_and_underscores(cli, tmp_path):
    src = (SURVEYS / "tiny.csv").read_text(encoding="utf-8").splitlines()
    loose = tmp_path / "loose.csv"
    loose.write_text("\n".join([src[0].replace("person_id", "Person ID", 1), *src[1:]]) + "\n", encoding="utf-8")
    result = cli("validate", loose, *TINY_OPT)
    assert "lacks" not in result.output, result.output
