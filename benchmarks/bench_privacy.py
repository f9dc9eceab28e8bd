"""Timing of `erase` (one person) and `share` on an `assign` run of N synthetic people.

    python benchmarks/bench_privacy.py 100000            # letters and workbook as assign writes them by default
    python benchmarks/bench_privacy.py 1000000 --no-letters

The run is made once into benchmarks/cache/privacy-N/ (git-ignored) and copied for each erase. For share,
the time to write the run's tables (people, plans, deferred, rejects as read back) with trainmatch's CSV
writer is printed next to it: the issue's target is share ≤ that.
"""
from __future__ import annotations

import shutil
import statistics
import sys
import time
from pathlib import Path

import trainmatch
from trainmatch.jobs import synth
from trainmatch.outputs import write_csvs
from trainmatch.runfiles import read_table

n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
letters = "--no-letters" not in sys.argv
cache = Path(__file__).resolve().parent / "cache"
cache.mkdir(exist_ok=True)
survey = cache / f"privacy-survey-{n}.csv"
run = cache / f"privacy-{n}{'' if letters else '-noletters'}"
if not survey.exists():
    synth(survey, n=n, seed=1)
if not run.exists():
    t0 = time.perf_counter()
    trainmatch.assign(survey, run, seed=1, per_person="html" if letters else "none")
    print(f"assign: {time.perf_counter() - t0:.1f}s")
people = read_table(run / "people.csv")
victim = str(people["person_id"].iloc[len(people) // 2])

erase_times = []
for i in range(3):
    copy = cache / f"privacy-erase-{n}"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(run, copy)
    t0 = time.perf_counter()
    trainmatch.erase(copy, [victim])
    erase_times.append(time.perf_counter() - t0)
    shutil.rmtree(copy)
print(f"erase one person of {n:,}: median {statistics.median(erase_times):.2f}s ({', '.join(f'{t:.2f}' for t in erase_times)})")

key = cache / "bench.key"
if not key.exists():
    trainmatch.keygen(key)
share_times, write_times = [], []
for i in range(3):
    out = cache / f"privacy-shared-{n}"
    t0 = time.perf_counter()
    trainmatch.share(run, out, key, force=True)
    share_times.append(time.perf_counter() - t0)
    tables = {cache / f"privacy-write-{name}": read_table(run / name) for name in ("people.csv", "plans.csv", "deferred.csv", "rejects.csv")}
    t0 = time.perf_counter()
    write_csvs(tables)
    write_times.append(time.perf_counter() - t0)
    for path in tables:
        path.unlink()
    shutil.rmtree(out)
print(f"share of {n:,}: median {statistics.median(share_times):.2f}s; writing its tables: median {statistics.median(write_times):.2f}s")
