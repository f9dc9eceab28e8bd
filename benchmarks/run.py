"""Reproducible time and memory figures for `trainmatch assign` at 10k, 100k and 1M people.

Usage (from the repository root, in the environment where trainmatch is installed):

    python benchmarks/run.py                       # 10k, 100k, 1M; 3 runs each
    python benchmarks/run.py --sizes 10000,100000 --runs 5
    python benchmarks/run.py --sizes 100000 --runs 1 --followup   # also a follow-up round against assign

For each size it generates a survey with `trainmatch synth` (cached under
benchmarks/cache/ by size and seed, with a users file for --lms-users), then
runs the whole `trainmatch assign --per-person none --no-xlsx --start
2027-01-11 --lms-users USERS` as a separate process `--runs` times. It
reports the median wall time, the peak resident memory (the process's RSS
sampled every 20 ms, with its children should it start any, and never below
its own peak from wait4's rusage), people per second,
the median seconds of each stage (from run.json), and the I/O floor measured
in the same run: the time pyarrow takes just to read the same input file
plus the time to write the same output bytes. Every run, and every floor
measurement, starts from the same state: the previous output removed and
the page cache's dirty pages written out (os.sync), so that one run's 1.5 GB
of output does not slow the writing of the next. It ends with the scaling
ratios between sizes, the `trainmatch --help` start-up time, and each target
with PASS or MISS. The output is Markdown, ready for benchmarks/README.md.

Before timing, trainmatch's modules are compiled to bytecode, as `pip
install` does: an editable checkout run with PYTHONDONTWRITEBYTECODE=1 (as on
the benchmark machine) would otherwise compile every module in both
processes on every run (0.1-0.2 s that no installed copy pays). The output
also gives a speed check of the machine (a fixed workload, timed before and
after the runs), because a shared machine's speed moves by tens of per
cent within minutes: compare figures only from runs with similar checks.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CACHE = HERE / "cache"
STAGES = ("read", "validate", "score", "cohorts", "rules", "paths", "sessions", "calendar_lms", "report", "write")
TARGETS = {  # people: (seconds, peak MB, times the I/O floor)
    100_000: (4.0, None, None),
    1_000_000: (20.0, 3 * 1024, 6.0),
}
HELP_TARGET = 0.3


def trainmatch_command() -> list[str]:
    return [sys.executable, "-m", "trainmatch"]


def survey_for(n: int, seed: int) -> Path:
    """The cached synthetic survey of ``n`` people (made once per size and seed)."""
    CACHE.mkdir(exist_ok=True)
    path = CACHE / f"survey-{n}-seed{seed}.csv"
    if not path.exists():
        print(f"<!-- generating {path.name} -->", file=sys.stderr)
        subprocess.run([*trainmatch_command(), "synth", "--n", str(n), "--seed", str(seed), "-o", str(path)], check=True, stdout=subprocess.DEVNULL)
    return path


def users_for(survey: Path) -> Path:
    """An --lms-users file for the survey (person_id, username), made once next to it."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    path = survey.with_name(survey.stem + "-users.csv")
    if not path.exists():
        ids = pacsv.read_csv(survey, convert_options=pacsv.ConvertOptions(include_columns=["person_id"],
                                                                         column_types={"person_id": pa.string()})).column(0)
        users = pa.table({"person_id": ids, "username": pc.binary_join_element_wise("user", ids, "")})
        pacsv.write_csv(users, path)
    return path


def _rss_kb(pid: int) -> int:
    """Resident memory of ``pid`` and all its descendants, in kB (0 once gone)."""
    total = 0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                total += _rss_kb(int(child))
    except (OSError, ValueError):
        pass
    return total


def run_options(survey: Path) -> list[str]:
    """The options of every measured run: no letters, no workbook, and with a start date and Moodle usernames,
    so the calendar, .ics files and every LMS file are part of it."""
    return ["--per-person", "none", "--no-xlsx", "--quiet", "--force", "--start", "2027-01-11", "--lms-users", str(users_for(survey))]


def run_assign(survey: Path, out: Path) -> tuple[float, float, dict[str, float]]:
    """Wall seconds, peak RSS in MB and run.json's stage seconds of one `assign` process."""
    return _timed([*trainmatch_command(), "assign", str(survey), "-o", str(out), *run_options(survey)], out)


def run_followup(previous: Path, survey: Path, completions: Path, feedback: Path, out: Path) -> tuple[float, float, dict[str, float]]:
    """Wall seconds, peak RSS in MB and run.json's stage seconds of one `followup` process (as run_assign)."""
    cmd = [*trainmatch_command(), "followup", str(previous), str(survey), "-o", str(out), "--completions", str(completions),
           "--feedback", str(feedback), *run_options(survey)]
    return _timed(cmd, out)


def _timed(cmd: list[str], out: Path) -> tuple[float, float, dict[str, float]]:
    """Run ``cmd`` as a new process: wall seconds, peak RSS in MB (sampled every 20 ms, and wait4's own peak)
    and run.json's stage seconds."""
    import threading

    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    sampled = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            sampled[0] = max(sampled[0], _rss_kb(proc.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    done.set()
    sampler.join()
    err = proc.stderr.read().decode() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{cmd[3]} failed:\n{err}")
    seconds = json.loads((out / "run.json").read_text(encoding="utf-8"))["seconds"]
    return wall, max(usage.ru_maxrss, sampled[0]) / 1024, seconds


def followup_figures(n: int, seed: int, runs: int, work: Path) -> dict[str, float]:
    """`assign` and `followup` on the same synthetic second round of ``n`` people (median of ``runs`` each):
    what a follow-up round costs on top of planning the survey."""
    survey = survey_for(n, seed)
    previous = work / f"previous-{n}"
    run_assign(survey, previous)
    second = {name: work / f"{name}-{n}.csv" for name in ("survey2", "completions", "feedback")}
    subprocess.run([*trainmatch_command(), "synth", "--followup-of", str(previous), "--seed", str(seed + 1), "-o", str(second["survey2"]),
                    "--completions-out", str(second["completions"]), "--feedback-out", str(second["feedback"]), "--force"],
                   check=True, stdout=subprocess.DEVNULL)
    walls: dict[str, list[float]] = {"assign": [], "followup": []}
    peaks: dict[str, list[float]] = {"assign": [], "followup": []}
    for _ in range(runs):
        for kind in ("assign", "followup"):
            out = work / f"{kind}-{n}"
            shutil.rmtree(out, ignore_errors=True)
            os.sync()
            if kind == "assign":
                wall, peak, _ = run_assign(second["survey2"], out)
            else:
                wall, peak, _ = run_followup(previous, second["survey2"], second["completions"], second["feedback"], out)
            walls[kind].append(wall)
            peaks[kind].append(peak)
    return {f"{kind}_{what}": (statistics.median(walls[kind]) if what == "wall" else max(peaks[kind]))
            for kind in walls for what in ("wall", "peak_mb")}


FOLLOWUP_TARGET = (6.0, 1024)  # seconds and MB a follow-up round may add to assign's


def io_floor(survey: Path, out: Path) -> float:
    """Seconds to read the input with pyarrow's CSV reader and write the same output bytes."""
    import pyarrow.csv as pacsv

    outputs = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        start = time.perf_counter()
        pacsv.read_csv(survey)
        for rel, data in outputs.items():
            target = Path(tmp) / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        return time.perf_counter() - start  # not counting the removal of the copy


def compile_bytecode() -> None:
    """Compile trainmatch's modules as `pip install` does (written even under PYTHONDONTWRITEBYTECODE)."""
    import compileall
    import importlib.util

    spec = importlib.util.find_spec("trainmatch")
    for folder in spec.submodule_search_locations if spec and spec.submodule_search_locations else []:
        compileall.compile_dir(folder, quiet=1)


def speed_check(runs: int = 5) -> float:
    """Seconds a fixed workload takes (median of ``runs``): how fast the machine is right now.

    The workload is a new Python process importing scikit-learn (what every
    fit starts with): CPU, memory and file reads, like the start of every run.
    """
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import sklearn.base"], check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def help_seconds(runs: int = 7) -> float:
    exe = Path(sys.executable).with_name("trainmatch")
    cmd = [str(exe), "--help"] if exe.exists() else [*trainmatch_command(), "--help"]
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated numbers of people")
    parser.add_argument("--runs", type=int, default=3, help="runs per size (median reported)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--followup", action="store_true",
                        help="also time `followup` against `assign` on a synthetic second round of each size")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    compile_bytecode()
    speed_before = speed_check()
    results = {}
    work = Path(tempfile.mkdtemp(prefix="trainmatch-bench-"))
    try:
        for n in sizes:
            survey = survey_for(n, args.seed)
            walls, peaks, floors, stages = [], [], [], []
            for r in range(args.runs):
                out = work / f"out-{n}"
                shutil.rmtree(out, ignore_errors=True)
                os.sync()
                wall, peak, seconds = run_assign(survey, out)
                walls.append(wall)
                peaks.append(peak)
                stages.append(seconds)
                os.sync()
                floors.append(io_floor(survey, out))
            results[n] = {
                "wall": statistics.median(walls),
                "peak_mb": max(peaks),
                "floor": statistics.median(floors),
                "stages": {s: statistics.median(x.get(s, 0.0) for x in stages) for s in STAGES},
                "size_mb": survey.stat().st_size / 2**20,
            }
        followups = {n: followup_figures(n, args.seed, args.runs, work) for n in sizes} if args.followup else {}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    help_s = help_seconds()
    speed_after = speed_check()

    print(f"Machine: {platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"Command: `python benchmarks/run.py --sizes {args.sizes} --runs {args.runs} --seed {args.seed}`")
    print(f"Speed check (`python -c \"import sklearn.base\"`, median of 5): {speed_before:.2f} s before the runs, {speed_after:.2f} s after\n")
    print("| people | input MB | median wall s | peak MB | people/s | I/O floor s | × floor |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for n, r in results.items():
        print(
            f"| {n:,} | {r['size_mb']:.0f} | {r['wall']:.2f} | {r['peak_mb']:,.0f} | {n / r['wall']:,.0f} | {r['floor']:.2f} | {r['wall'] / r['floor']:.2f} |"
        )
    print("\nMedian seconds per stage (from run.json):\n")
    print("| people | " + " | ".join(STAGES) + " |")
    print("|---:|" + "---:|" * len(STAGES))
    for n, r in results.items():
        print(f"| {n:,} | " + " | ".join(f"{r['stages'][s]:.2f}" for s in STAGES) + " |")
    ns = list(results)
    if len(ns) > 1:
        print("\nScaling (time ratio / memory ratio; linear in people would be the size ratio):\n")
        for a, b in zip(ns, ns[1:]):
            print(
                f"- {a:,} → {b:,} (×{b / a:g}): time ×{results[b]['wall'] / results[a]['wall']:.1f}, "
                f"memory ×{results[b]['peak_mb'] / results[a]['peak_mb']:.1f}"
            )
    print(f"\n`trainmatch --help`: {help_s:.3f} s (median of 7)\n")
    print("Targets:\n")
    for n, (secs, mb, ratio) in TARGETS.items():
        if n not in results:
            continue
        r = results[n]
        checks = [f"time {r['wall']:.2f} s ≤ {secs:g} s: {'PASS' if r['wall'] <= secs else 'MISS'}"]
        if mb:
            checks.append(f"peak {r['peak_mb']:,.0f} MB ≤ {mb:,} MB: {'PASS' if r['peak_mb'] <= mb else 'MISS'}")
        if ratio:
            x = r["wall"] / r["floor"]
            checks.append(f"{x:.2f}× floor ≤ {ratio:g}×: {'PASS' if x <= ratio else 'MISS'}")
        print(f"- {n:,} people: " + "; ".join(checks))
    print(f"- `--help`: {help_s:.3f} s ≤ {HELP_TARGET} s: {'PASS' if help_s <= HELP_TARGET else 'MISS'}")
    if followups:
        secs, mb = FOLLOWUP_TARGET
        print("\nFollow-up rounds (`assign` and `followup` on the same second round, with its completions and ratings):\n")
        print("| people | assign s | followup s | extra s | assign MB | followup MB | extra MB | target |")
        print("|---:|---:|---:|---:|---:|---:|---:|---|")
        for n, f in followups.items():
            dt, dm = f["followup_wall"] - f["assign_wall"], f["followup_peak_mb"] - f["assign_peak_mb"]
            verdict = "PASS" if dt <= secs and dm <= mb else "MISS"
            print(f"| {n:,} | {f['assign_wall']:.2f} | {f['followup_wall']:.2f} | {dt:+.2f} | {f['assign_peak_mb']:,.0f} | "
                  f"{f['followup_peak_mb']:,.0f} | {dm:+,.0f} | ≤ +{secs:g} s, ≤ +{mb:,} MB: {verdict} |")


if __name__ == "__main__":
    main()
