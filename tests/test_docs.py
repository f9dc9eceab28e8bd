"""The docs check themselves: every command has help with an example and is in the README."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from trainmatch.cli import main

README = Path(__file__).resolve().parent.parent / "README.md"
COMMANDS = sorted(main.commands)


def test_readme_starts_with_the_two_commands() -> None:
    text = README.read_text(encoding="utf-8")
    block = re.search(r"```bash\n(.*?)```", text, re.S)
    assert block is not None and text.index("```bash") < 300, "README must open with the two commands"
    lines = [ln for ln in block.group(1).splitlines() if ln.strip()]
    assert len(lines) == 2
    assert "pip install ." in lines[0] and "trainmatch " in lines[0] and "sample_data/" in lines[0]
    assert "pip install '.[test]'" in lines[1] and "pytest" in lines[1]


def test_ci_runs_the_readme_test_command() -> None:
    text = README.read_text(encoding="utf-8")
    test_command = re.search(r"```bash\n.*?\n(.*?)\n", text, re.S).group(1)
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8")
    assert test_command in ci.splitlines()


@pytest.mark.parametrize("command", COMMANDS)
def test_command_is_in_the_readme_reference(command: str) -> None:
    text = README.read_text(encoding="utf-8")
    assert f"### `trainmatch {command}" in text, f"add `trainmatch {command}` to the README's command reference"


@pytest.mark.parametrize("command", COMMANDS)
def test_command_help_has_description_and_example(command: str) -> None:
    result = CliRunner().invoke(main, [command, "--help"])
    assert result.exit_code == 0
    assert main.commands[command].help and len(main.commands[command].help.split()) > 8
    assert "Example" in result.output


def test_the_readme_library_example_runs(tmp_path: Path) -> None:
    """The README's notebook example, run as written by Python from a copy of the repository's sample data."""
    import shutil
    import subprocess
    import sys

    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Library use"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    shutil.copytree(README.parent / "sample_data", tmp_path / "sample_data")
    (tmp_path / "example.py").write_text(code, encoding="utf-8")
    done = subprocess.run([sys.executable, "-I", "example.py"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("300 people planned, 0 rows rejected")
    assert (tmp_path / "plans-out" / "people.csv").is_file()
