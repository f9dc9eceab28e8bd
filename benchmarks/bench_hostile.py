"""Width is linear: read + validate a survey with 10,000 extra columns, and one with a row of 5,000,000 fields.

Both start from ``synth --n 500 --seed 1`` (48 columns) and are made once under
benchmarks/cache/ (git-ignored): ``wide-columns.csv`` adds 10,000 columns that
the programme does not use (a header and a value in every row); ``wide-row.csv``
gives one row 5,000,000 extra fields (10 MB), which is rejected as a row with
values beyond the last column. Each case runs in a fresh process (median of 3
wall times of read_survey + import_survey(consume=True), as the commands
call them, and the process's peak resident memory).

    python benchmarks/bench_hostile.py
"""

from __future__ import annotations

import csv
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

CACHE = Path(__file__).parent / "cache"
EXTRA_COLUMNS, ROW_FIELDS = 10_000, 5_000_000


def base_rows() -> list[list[str]]:
    from trainmatch.programme import load_programme
    from trainmatch.synth import synthesize

    survey, _ = synthesize(load_programme(), 500, seed=1)
    survey = survey.astype(str).replace({"nan": ""})
    return [list(survey.columns)] + survey.to_numpy(dtype=object).tolist()


def inputs() -> dict[str, Path]:
    CACHE.mkdir(exist_ok=True)
    paths = {"10,000 extra columns": CACHE / "wide-columns.csv", "one row of 5,000,000 fields": CACHE / "wide-row.csv"}
    if not all(p.exists() for p in paths.values()):
        rows = base_rows()
        with open(paths["10,000 extra columns"], "w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(rows[0] + [f"extra{j}" for j in range(EXTRA_COLUMNS)])
            for row in rows[1:]:
                writer.writerow(row + ["1"] * EXTRA_COLUMNS)
        with open(paths["one row of 5,000,000 fields"], "w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerows(rows[:10])
            fh.write(",".join(rows[10]) + "," + ",".join(["x"] * ROW_FIELDS) + "\n")
            writer.writerows(rows[11:])
    return paths


def one(path: str) -> None:
    """Run in a fresh process: three timings and the peak memory, as JSON on stdout."""
    from trainmatch.io import read_survey
    from trainmatch.programme import load_programme
    from trainmatch.survey import import_survey

    programme = load_programme()
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        result = import_survey(read_survey(path), programme, consume=True)
        times.append(time.perf_counter() - t0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"times": times, "peak_mb": peak, "read": result.n_read, "rejected": result.n_rejected}))


def main() -> None:
    for name, path in inputs().items():
        out = subprocess.run([sys.executable, __file__, "--one", str(path)], capture_output=True, text=True, check=True)
        got = json.loads(out.stdout.strip().splitlines()[-1])
        times = ", ".join(f"{t:.2f}" for t in got["times"])
        print(f"{name} ({path.stat().st_size / 1e6:.0f} MB): median {statistics.median(got['times']):.2f} s [{times}], "
              f"peak {got['peak_mb']:.0f} MB; {got['read']} rows read, {got['rejected']} rejected", flush=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--one"]:
        one(sys.argv[2])
    else:
        main()
