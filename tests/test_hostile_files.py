"""Hostile and careless use of files, folders, processes and interruptions (issue 18).

No command destroys a file it did not write: `--force` replaces only a folder
that a trainmatch run wrote, never the working folder, an input or a folder
holding one, and no output overwrites an input or (without --force) an existing
file; every output path is checked before the work. No code from the working
folder runs. SIGINT, SIGTERM and SIGHUP leave nothing behind and exit 128 + the
signal; what killed runs left is cleared by the next run; one run at a time
writes an output. Seeds out of range and --sheet on a CSV are usage errors; a
full disk names the file.

The signal and code tests run the `trainmatch` command as a real process.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trainmatch.cli import main
from trainmatch.staging import MARKER, MARKER_TEXT

TRAINMATCH = Path(sys.executable).parent / "trainmatch"
FAST = ("--k", "2-3", "--seed", "1", "--per-person", "none", "--no-xlsx")
COHORTS = ("--k", "2-3", "--seed", "1")


def run(*args: object) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def survey(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clean synthetic survey of 60 people, in a folder of its own."""
    path = tmp_path_factory.mktemp("survey") / "s.csv"
    assert run("synth", "--n", 60, "--seed", 1, "-o", path).exit_code == 0
    return path


def copy_survey(survey: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "s.csv"
    path.write_bytes(survey.read_bytes())
    return path


# --------------------------------------------------------------------------- --force and output folders (finding 1)


@pytest.mark.parametrize("command, extra", [("assign", FAST), ("cohorts", COHORTS)])
def test_force_never_replaces_a_folder_holding_the_input(survey: Path, tmp_path: Path, command: str, extra: tuple) -> None:
    d = tmp_path / "d"
    data = copy_survey(survey, d)
    (d / "notes.txt").write_text("mine", encoding="utf-8")
    before = snapshot(d)
    for target in (d, tmp_path):
        result = run(command, data, "-o", target, "--force", *extra)
        assert result.exit_code == 1, result.output
        assert "cannot be the output folder" in result.output and f"it holds the input {str(data)!r}" in result.output
        assert "Read " not in result.output and "Traceback" not in result.output  # refused before reading
    assert snapshot(d) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]


@pytest.mark.parametrize("where", [".", "cwd/", "parent"])
@pytest.mark.parametrize("command, extra", [("assign", FAST), ("cohorts", COHORTS)])
def test_force_never_replaces_the_working_folder_or_a_parent(
    survey: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str, extra: tuple, where: str
) -> None:
    work = tmp_path / "a" / "work"
    work.mkdir(parents=True)
    (work / "notes.txt").write_text("mine", encoding="utf-8")
    monkeypatch.chdir(work)
    target = {".": ".", "cwd/": f"{work}/", "parent": str(tmp_path / "a")}[where]
    result = run(command, survey, "-o", target, "--force", *extra)
    assert result.exit_code == 1, result.output
    assert "working folder" in result.output and "never replaces" in result.output
    assert "Read " not in result.output and "Internal error" not in result.output
    assert snapshot(tmp_path) == {"a/work/notes.txt": b"mine"}


@pytest.mark.parametrize("command, extra", [("assign", FAST), ("cohorts", COHORTS)])
def test_force_never_replaces_a_folder_trainmatch_did_not_write(survey: Path, tmp_path: Path, command: str, extra: tuple) -> None:
    out = tmp_path / "reports"
    out.mkdir()
    (out / "budget.xlsx").write_bytes(b"not ours")
    for force in ((), ("--force",)):
        result = run(command, survey, "-o", out, *force, *extra)
        assert result.exit_code == 1, result.output
        assert "was not written by trainmatch" in result.output and MARKER in result.output
        assert "Read " not in result.output
    assert snapshot(out) == {"budget.xlsx": b"not ours"}
    assert [p.name for p in tmp_path.iterdir()] == ["reports"]


def test_force_replaces_an_earlier_output_which_carries_the_marker(survey: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run("assign", survey, "-o", out, *FAST).exit_code == 0
    assert (out / MARKER).read_text(encoding="utf-8") == MARKER_TEXT
    (out / "stale.txt").write_text("old", encoding="utf-8")
    again = run("assign", survey, "-o", out, "--force", *FAST)
    assert again.exit_code == 0, again.output
    assert not (out / "stale.txt").exists() and (out / MARKER).is_file() and (out / "people.csv").is_file()
    cohorts_out = tmp_path / "c"
    assert run("cohorts", survey, "-o", cohorts_out, *COHORTS).exit_code == 0
    assert (cohorts_out / MARKER).is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c", "out"]


# --------------------------------------------------------------------------- output files (finding 2)


def test_no_output_file_overwrites_the_input(survey: Path, tmp_path: Path) -> None:
    data = copy_survey(survey, tmp_path)
    before = data.read_bytes()
    for args in (
        ("validate", data, "--errors-out", data),
        ("validate", data, "--errors-out", data, "--force"),
        ("score", data, "-o", data, "--force"),
        ("score", data, "-o", tmp_path / "scores.csv", "--rejects-out", data, "--force"),
    ):
        result = run(*args)
        assert result.exit_code == 1, (args, result.output)
        assert "would overwrite an input of this run" in result.output and "Read " not in result.output
        assert data.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.csv"]


@pytest.mark.parametrize(
    "args, option",
    [
        (("validate", "{survey}", "--errors-out", "{old}"), "--errors-out"),
        (("score", "{survey}", "-o", "{old}"), "-o"),
        (("score", "{survey}", "-o", "{new}", "--rejects-out", "{old}"), "--rejects-out"),
        (("synth", "--n", "5", "-o", "{old}"), "-o"),
        (("synth", "--n", "5", "-o", "{new}", "--truth", "{old}"), "--truth"),
    ],
)
def test_an_existing_file_is_overwritten_only_with_force(survey: Path, tmp_path: Path, args: tuple, option: str) -> None:
    old = tmp_path / "old.csv"
    old.write_text("keep me\n", encoding="utf-8")
    names = {"survey": survey, "old": old, "new": tmp_path / "new.csv"}
    argv = [a.format(**names) for a in args]
    result = run(*argv)
    assert result.exit_code == 2, result.output
    assert f"{str(old)!r} already exists. Use --force to overwrite it" in result.output and option in result.output
    assert old.read_text(encoding="utf-8") == "keep me\n" and not (tmp_path / "new.csv").exists()
    forced = run(*argv, "--force")
    assert forced.exit_code in (0, 1), forced.output  # validate exits 1 only for rejected rows
    assert old.read_text(encoding="utf-8") != "keep me\n"


def test_two_outputs_of_one_command_must_differ(survey: Path, tmp_path: Path) -> None:
    same = tmp_path / "x.csv"
    result = run("score", survey, "-o", same, "--rejects-out", same)
    assert result.exit_code == 2 and "-o and --rejects-out name the same file" in result.output
    result = run("synth", "--n", "5", "-o", same, "--truth", same)
    assert result.exit_code == 2 and "-o and --truth name the same file" in result.output
    assert list(tmp_path.iterdir()) == []


def read_only_folder(tmp_path: Path) -> Path:
    """A folder nobody may write: /sys for root (whom permission bits do not stop), else a chmod-ed one."""
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        if not Path("/sys").is_dir() or os.access("/sys", os.W_OK) and _writable("/sys"):
            pytest.skip("no read-only folder for root here")
        return Path("/sys")
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    return folder


def _writable(folder: str) -> bool:
    try:
        Path(folder, ".trainmatch-test").touch()
    except OSError:
        return False
    Path(folder, ".trainmatch-test").unlink()
    return True


def test_output_problems_are_found_before_the_run(survey: Path, tmp_path: Path) -> None:
    ro = read_only_folder(tmp_path)
    try:
        for args in (("score", survey, "-o", ro / "scores.csv"), ("validate", survey, "--errors-out", ro / "e.csv")):
            result = run(*args)
            assert result.exit_code == 1, result.output
            assert "cannot be written" in result.output and str(ro) in result.output and "Read " not in result.output
        result = run("assign", survey, "-o", ro / "out", *FAST)
        assert result.exit_code == 1 and "cannot be written" in result.output and "Read " not in result.output
    finally:
        if ro.is_relative_to(tmp_path):
            ro.chmod(0o755)
    long = tmp_path / ("x" * 300 + ".csv")
    result = run("score", survey, "-o", long)
    assert result.exit_code == 2 and "bytes long, and the file system allows" in result.output and "Read " not in result.output
    result = run("assign", survey, "-o", tmp_path / ("y" * 300), *FAST)
    assert result.exit_code == 2 and "bytes long" in result.output and "Read " not in result.output


def test_a_long_output_name_the_file_system_allows_works(survey: Path, tmp_path: Path) -> None:
    name = "s" * 246 + ".csv"  # 250 characters: the staging file next to it must not be longer than allowed
    result = run("score", survey, "-o", tmp_path / name)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_save_model_is_checked_before_the_run(survey: Path, tmp_path: Path) -> None:
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "plan.docx").write_bytes(b"mine")
    for command, extra in (("assign", FAST), ("cohorts", COHORTS)):
        result = run(command, survey, "-o", tmp_path / "out", "--save-model", notes, *extra)
        assert result.exit_code == 1, result.output
        assert "is not a trainmatch model folder" in result.output and "Read " not in result.output
    assert snapshot(notes) == {"plan.docx": b"mine"} and not (tmp_path / "out").exists()
    model = tmp_path / "model"
    assert run("cohorts", survey, "-o", tmp_path / "c1", "--save-model", model, *COHORTS).exit_code == 0
    saved = snapshot(model)
    again = run("cohorts", survey, "-o", tmp_path / "c2", "--save-model", model, "--seed", "2", "--k", "2-3")
    assert again.exit_code == 2 and "already holds a saved model. Use --force" in again.output and "Read " not in again.output
    assert snapshot(model) == saved and not (tmp_path / "c2").exists()


def test_init_never_overwrites_files_of_a_folder_that_is_not_a_programme(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "items.csv").write_text("my own items", encoding="utf-8")
    result = run("init", folder, "--force")
    assert result.exit_code == 1 and "not a trainmatch programme folder" in result.output
    assert snapshot(folder) == {"items.csv": b"my own items"}
    survey = tmp_path / "survey.csv"
    survey.write_text("person_id\n1\n", encoding="utf-8")
    result = run("init", tmp_path / "p", "--mapping", survey, "--force")
    assert result.exit_code == 2 and "must end in .toml" in result.output
    assert survey.read_text(encoding="utf-8") == "person_id\n1\n" and not (tmp_path / "p").exists()


def test_a_full_disk_names_the_file(survey: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    import trainmatch.outputs

    real_open = builtins.open

    class Full:
        def __init__(self, fh: object):
            self.fh = fh

        def write(self, data: bytes) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")  # as a real write says it: no file name

        def close(self) -> None:
            self.fh.close()  # type: ignore[attr-defined]

    def full_open(path: object, mode: str = "r", *args: object, **kwargs: object) -> object:
        fh = real_open(path, mode, *args, **kwargs)  # type: ignore[call-overload]
        return Full(fh) if "w" in mode else fh

    monkeypatch.setattr(trainmatch.outputs, "open", full_open, raising=False)
    target = tmp_path / "scores.csv"
    result = run("score", survey, "-o", target)
    assert result.exit_code == 1
    assert f"Error: {target}: No space left on device. Free some space" in result.output
    assert list(tmp_path.iterdir()) == []  # no half-written file, no staging file
    result = run("assign", survey, "-o", tmp_path / "out", *FAST)
    assert result.exit_code == 1
    assert f"Error: {tmp_path / 'out' / 'people.csv'}: No space left on device. Free some space" in result.output
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- messages (findings 12, 13)


@pytest.mark.parametrize("seed", ["-1", "12345678901234567890", "4294967296"])
@pytest.mark.parametrize("command", ["synth", "assign", "cohorts"])
def test_a_seed_out_of_range_is_a_usage_error(survey: Path, tmp_path: Path, command: str, seed: str) -> None:
    args = ("synth", "-o", tmp_path / "x.csv") if command == "synth" else (command, survey, "-o", tmp_path / "out")
    result = run(*args, "--seed", seed)
    assert result.exit_code == 2, result.output
    assert "Invalid value for '--seed'" in result.output and "0<=x<=4294967295" in result.output
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", ["validate", "score", "assign"])
def test_sheet_with_a_csv_is_a_usage_error(survey: Path, tmp_path: Path, command: str) -> None:
    args = {"validate": (), "score": ("-o", tmp_path / "x.csv"), "assign": ("-o", tmp_path / "out", *FAST)}[command]
    result = run(command, survey, "--sheet", "Responses", *args)
    assert result.exit_code == 2
    assert "Invalid value for --sheet: applies to XLSX files only" in result.output
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_encoding_is_a_usage_error(survey: Path) -> None:
    result = run("validate", survey, "--encoding", "nonsense")
    assert result.exit_code == 2
    assert "Invalid value for --encoding: 'nonsense' is not an encoding Python knows" in result.output


# --------------------------------------------------------------------------- no code from the working folder (finding 3)

HOSTILE = "open({name!r}, 'w').close()\n"  # leaves a file behind if it ever runs


def hostile_folder(folder: Path, survey: Path, modules: tuple[str, ...]) -> None:
    copy_survey(survey, folder)
    for module in modules:
        (folder / f"{module}.py").write_text(HOSTILE.format(name=f"RAN-{module}"), encoding="utf-8")


@pytest.mark.parametrize(
    "launcher, modules",
    [
        ((str(TRAINMATCH),), ("json", "numpy", "trainmatch", "sitecustomize")),
        ((sys.executable, "-m", "trainmatch"), ("json", "numpy", "sitecustomize")),  # a trainmatch.py would *be* the command
    ],
    ids=["trainmatch", "python -m trainmatch"],
)
def test_no_module_in_the_working_folder_runs_during_assign(survey: Path, tmp_path: Path, launcher: tuple, modules: tuple) -> None:
    hostile_folder(tmp_path, survey, modules)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSAFEPATH")}
    done = subprocess.run(
        [*launcher, "assign", "s.csv", "-o", "out", "--k", "3", "--per-person", "none", "-q"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240,
    )
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in tmp_path.glob("RAN-*")) == []
    assert (tmp_path / "out" / "report.html").is_file()


# --------------------------------------------------------------------------- interruptions (finding 10)


@pytest.fixture(scope="module")
def big_survey(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Large enough that `assign` spends seconds writing into its staging folder."""
    path = tmp_path_factory.mktemp("big") / "big.csv"
    assert run("synth", "--n", 4000, "--seed", 3, "-o", path).exit_code == 0
    return path


def start_assign(survey: Path, folder: Path) -> subprocess.Popen[str]:
    env = dict(os.environ)
    return subprocess.Popen(
        [str(TRAINMATCH), "assign", str(survey), "-o", "out", "--k", "3", "--seed", "1", "--xlsx"],
        cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def wait_for(proc: subprocess.Popen[str], folder: Path, pattern: str, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if any(folder.glob(pattern)):
            return
        if proc.poll() is not None:
            pytest.fail(f"the run ended ({proc.returncode}) before {pattern} appeared: {proc.stderr.read()}")  # type: ignore[union-attr]
        time.sleep(0.01)
    proc.kill()
    pytest.fail(f"{pattern} did not appear within {seconds} s")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=lambda s: signal.Signals(s).name)
def test_a_signal_while_writing_leaves_nothing_behind(big_survey: Path, tmp_path: Path, signum: int) -> None:
    proc = start_assign(big_survey, tmp_path)
    wait_for(proc, tmp_path, ".out.*.partial")
    proc.send_signal(signum)
    try:
        _, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signum, stderr
    assert f"Stopped by {signal.Signals(signum).name}" in stderr and "Traceback" not in stderr
    left = sorted(p.name for p in tmp_path.iterdir())
    # The signal waits while the finished folder is swapped in: then `out` is complete.
    assert left == [] or (left == ["out"] and (tmp_path / "out" / "run.json").is_file()), left
    assert processes_in(tmp_path) == []  # the helper process was stopped too


def processes_in(folder: Path) -> list[int]:
    """Processes (Linux) whose working folder is ``folder``: the run's helper process would be one."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if Path(os.readlink(proc / "cwd")) == folder:
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def test_the_next_run_clears_what_killed_runs_left(survey: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run("assign", survey, "-o", out, *FAST).exit_code == 0
    for name in (".out.k1ll3d_x.partial", ".out.4242.deadbeef.old"):  # as a SIGKILL leaves them
        (tmp_path / name).mkdir()
        (tmp_path / name / "people.csv").write_text("person_id,score\n1,2.5\n", encoding="utf-8")
    mine = tmp_path / ".out.notes"  # not a name trainmatch gives: left alone
    mine.mkdir()
    result = run("assign", survey, "-o", out, "--force", *FAST)
    assert result.exit_code == 0, result.output
    assert "Note: Removed what interrupted runs left next to" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.notes", "out"]


def test_the_next_run_clears_staging_files_and_models_killed_runs_left(survey: Path, tmp_path: Path) -> None:
    model = tmp_path / "model"
    assert run("cohorts", survey, "-o", tmp_path / "c", "--save-model", model, *COHORTS).exit_code == 0
    left = {
        ".scores.csv.k1ll3d_x.part": "person_id,score\n1,2.5\n",  # score -o scores.csv
        ".model.k1ll3d_y.partial/model.json": "{}",  # --save-model model
        ".model.4242.deadbeef.old/model.json": "{}",
    }
    for name, text in left.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    result = run("score", survey, "-o", tmp_path / "scores.csv")
    assert result.exit_code == 0 and "Note: Removed what interrupted runs left next to" in result.output
    result = run("cohorts", survey, "-o", tmp_path / "c", "--save-model", model, "--force", *COHORTS)
    assert result.exit_code == 0, result.output
    assert ".model.k1ll3d_y.partial" in result.output and ".model.4242.deadbeef.old" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c", "model", "scores.csv"]


def test_a_previous_output_moved_aside_by_a_killed_run_is_put_back(survey: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run("assign", survey, "-o", out, *FAST).exit_code == 0
    before = snapshot(out)
    out.rename(tmp_path / ".out.4242.deadbeef.old")  # killed between moving the old output aside and the new one in
    (tmp_path / ".out.k1ll3d_x.partial").mkdir()
    result = run("assign", survey, "-o", out, *FAST)
    assert result.exit_code == 2, result.output
    assert "Put back the previous" in result.output and "already exists. Use --force" in result.output
    assert snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_second_run_on_the_same_output_is_refused_while_the_first_writes(big_survey: Path, tmp_path: Path) -> None:
    first = start_assign(big_survey, tmp_path)
    try:
        wait_for(first, tmp_path, ".out.*.partial")
        second = run("assign", big_survey, "-o", tmp_path / "out", "--force", *FAST)
        assert second.exit_code == 1, second.output
        assert "Another trainmatch run is writing" in second.output and "Read " not in second.output
        _, stderr = first.communicate(timeout=180)
    finally:
        first.kill()
    assert first.returncode == 0, stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert (tmp_path / "out" / "run.json").is_file()


# --------------------------------------------------------------------------- the rule as an invariant

FOLDERS = ["", "a", "a/b", "a/b/c", "a/d", "e"]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    survey_in=st.sampled_from(FOLDERS),
    cwd_in=st.sampled_from(FOLDERS),
    marked=st.sets(st.sampled_from(FOLDERS)),
    filled=st.sets(st.sampled_from(FOLDERS)),
    target=st.sampled_from([*FOLDERS, "a/new", ".", "..", "../..", "./a/../e"]),
    relative=st.booleans(),
)
def test_force_accepts_only_a_folder_whose_loss_loses_nothing(
    tmp_path: Path, survey_in: str, cwd_in: str, marked: set, filled: set, target: str, relative: bool
) -> None:
    """Whatever the layout, StagedFolder(force=True) accepts a target only if replacing it loses nothing."""
    import tempfile

    from trainmatch.errors import OutputError, UsageError
    from trainmatch.staging import StagedFolder

    base = Path(tempfile.mkdtemp(dir=tmp_path))
    for folder in FOLDERS:
        (base / folder).mkdir(parents=True, exist_ok=True)
    for folder in marked:
        (base / folder / MARKER).write_text(MARKER_TEXT, encoding="utf-8")
    for folder in filled:
        (base / folder / "mine.txt").write_text("mine", encoding="utf-8")
    data = base / survey_in / "s.csv"
    data.write_text("person_id\n1\n", encoding="utf-8")
    cwd = base / cwd_in
    before = os.getcwd()
    os.chdir(cwd)
    try:
        path = Path(target) if relative or target.startswith(".") else base / target
        try:
            StagedFolder(path, force=True, inputs=[data]).check()
            accepted = True
        except (OutputError, UsageError):
            accepted = False
        real = path.resolve()
    finally:
        os.chdir(before)
    if accepted:
        assert real != cwd.resolve() and real not in cwd.resolve().parents
        assert real not in data.resolve().parents
        if real.exists():
            assert (real / MARKER).is_file() or not any(real.iterdir())


def test_a_model_folder_in_new_parents_is_locked_from_the_start(survey: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """--save-model rounds/2027/model: the parents are made before the survey is read so the model's lock is
    held all through the run; a run that fails takes the parents it made away again."""
    import trainmatch.staging

    claimed: list[str] = []
    real = trainmatch.staging.claim_output

    def recording(target: object, shown: object = None) -> object:
        claimed.append(str(target))
        return real(target, shown)

    monkeypatch.setattr(trainmatch.staging, "claim_output", recording)
    model = tmp_path / "rounds" / "2027" / "model"
    result = run("cohorts", survey, "-o", tmp_path / "c", "--save-model", model, *COHORTS)
    assert result.exit_code == 0, result.output
    assert str(model) in claimed and (model / "model.json").is_file()
    broken = tmp_path / "broken.csv"
    broken.write_text("no,survey\n", encoding="utf-8")
    failed = run("cohorts", broken, "-o", tmp_path / "c2", "--save-model", tmp_path / "new" / "deeper" / "model", *COHORTS)
    assert failed.exit_code == 1, failed.output
    assert not (tmp_path / "new").exists()
