"""Median-of-3 timing of build_needs + evaluate + build_paths on a synthetic people frame."""
import statistics, sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from test_paths import make_people
from trainmatch.programme import load_programme
from trainmatch.catalogue import load_catalogue
from trainmatch.rules import load_rules, build_needs, evaluate
from trainmatch.paths import build_paths

n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
p = load_programme(); c = load_catalogue(p); r = load_rules(p, c)
people = make_people(p, n, seed=1, cohorts=True)
runs = []
for i in range(3):
    t0 = time.perf_counter(); needs = build_needs(people, p)
    t1 = time.perf_counter(); fired = evaluate(r, needs, people, p)
    t2 = time.perf_counter(); paths = build_paths(people, fired, c, p)
    t3 = time.perf_counter()
    runs.append((t3 - t0, t1 - t0, t2 - t1, t3 - t2))
    print(f"run {i + 1}: total {t3 - t0:.2f}s = needs {t1 - t0:.2f} + evaluate {t2 - t1:.2f} + paths {t3 - t2:.2f} "
          f"({len(needs)} needs, {len(fired)} fired, {len(paths.steps)} steps, {len(paths.deferred)} deferred)")
    del needs, fired, paths
print(f"median of 3: {statistics.median(x[0] for x in runs):.2f}s for {n} people")
