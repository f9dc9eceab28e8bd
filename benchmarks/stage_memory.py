"""Memory per stage of `trainmatch assign`: how many copies of the survey each stage holds.

Usage (from the repository root, in the environment where trainmatch is installed):

    python benchmarks/stage_memory.py                  # 1M people (the cached survey of run.py)
    python benchmarks/stage_memory.py --size 100000

It runs `assign --per-person none --no-xlsx` once, in a child process (after
a first run on the 300-person sample, so that the libraries' code is loaded
before the first record) whose
progress hook records, at each stage boundary, the main process's resident
memory (VmRSS) and its peak during the stage that just ended (VmHWM, reset
through /proc/self/clear_refs at every boundary), and which copies of the
survey are still alive, with their size then: the file's text cells as read
(`RawSurvey.frame`) and the decoded answers (`ImportResult.people`), found
by weak reference.
"One survey" is the in-memory size of the text cells. Linux only.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import weakref
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import survey_for  # noqa: E402  the same cached surveys as run.py


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def child(survey: str, out: str, log: str) -> None:
    """Run assign here, recording memory at every stage boundary into ``log`` (JSON)."""
    import trainmatch.cli as cli
    import trainmatch.io as tio
    import trainmatch.survey as tsurvey

    # A first run on the 300-person sample loads (and touches) the libraries' code before the first
    # record: code pages count in RSS but are not survey data.
    sample = Path(__file__).resolve().parent.parent / "sample_data" / "survey.csv"
    cli.main(["assign", str(sample), "-o", out, "--per-person", "none", "--no-xlsx", "--quiet", "--force"], standalone_mode=False)

    alive: dict[str, weakref.ref] = {}
    sizes: dict[str, int] = {}
    records: list[dict] = []

    def frame_bytes(frame) -> int:  # noqa: ANN001
        return int(frame.memory_usage(deep=True, index=False).sum())

    read_survey, import_survey = tio.read_survey, tsurvey.import_survey

    def traced_read(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raw = read_survey(*args, **kwargs)
        alive["text cells"], sizes["text cells"] = weakref.ref(raw.frame), frame_bytes(raw.frame)
        mark("validating the survey")  # its own row: reading and validating peak apart
        return raw

    def traced_import(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        result = import_survey(*args, **kwargs)
        alive["decoded answers"], sizes["decoded answers"] = weakref.ref(result.people), frame_bytes(result.people)
        return result

    tio.read_survey, tsurvey.import_survey = traced_read, traced_import
    stage = cli.Progress.stage

    def mark(name: str) -> None:
        records.append(
            {
                "after": name,
                "rss_mb": _status_kb("VmRSS") / 1024,
                "peak_mb": _status_kb("VmHWM") / 1024,  # since the last mark
                # each copy still alive, with its current size (consume empties the text cells' frame as it decodes)
                "alive": {k: frame_bytes(ref()) for k, ref in sorted(alive.items()) if ref() is not None},
            }
        )
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS

    def traced_stage(self, name: str) -> None:  # noqa: ANN001
        mark(name)
        stage(self, name)

    cli.Progress.stage = traced_stage
    mark("start")
    try:
        cli.main(["assign", survey, "-o", out, "--per-person", "none", "--no-xlsx", "--quiet", "--force"], standalone_mode=False)
    finally:
        mark("done")
        Path(log).write_text(json.dumps({"records": records, "sizes": sizes}), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000, help="people in the survey")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    survey = survey_for(args.size, args.seed)
    with tempfile.TemporaryDirectory(prefix="trainmatch-mem-") as work:
        log = Path(work) / "memory.json"
        subprocess.run([sys.executable, __file__, "--child", str(survey), str(Path(work) / "out"), str(log)], check=True)
        data = json.loads(log.read_text(encoding="utf-8"))
    survey_mb = data["sizes"]["text cells"] / 2**20
    records = data["records"]
    # Each record's peak belongs to the stage that ended there: the stage named by the record before it.
    print(f"Command: `python benchmarks/stage_memory.py --size {args.size} --seed {args.seed}`\n")
    print(
        f"One survey in memory (its text cells as read): {survey_mb:,.0f} MB; "
        f"the decoded answers: {data['sizes']['decoded answers'] / 2**20:,.0f} MB.\n"
    )
    print("| stage | RSS at its end MB | peak during it MB | peak ÷ survey | survey data alive at its end |")
    print("|---|---:|---:|---:|---|")
    base = records[0]["rss_mb"]
    for before, after in zip(records, records[1:]):
        held = ", ".join(f"{name} {size / 2**20:,.0f} MB" for name, size in after["alive"].items()) or "none"
        print(
            f"| {before['after']} | {after['rss_mb']:,.0f} | {after['peak_mb']:,.0f} | "
            f"{(after['peak_mb'] - base) / survey_mb:.1f} | {held} |"
        )
    print(f"\n`peak ÷ survey` is the stage's peak above the {base:,.0f} MB before the run (after a run on the 300-person sample), in surveys.")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        child(*sys.argv[2:])
    else:
        main()
