"""How well the plans of an `assign` output folder spend their hours (the acceptance figures of the planner).

    python benchmarks/plan_figures.py OUT [--programme DIR]

Reads OUT/people.csv, OUT/plans.csv and OUT/deferred.csv and prints, as JSON:

- ``unused_while_fits``: share of people whose plan leaves unused hours while one of their deferred
  needs would fit in them in one of its formats (the objective's cheapest module);
- ``larger_gap_deferred``: share of people with deferrals who have a deferred need with a larger gap
  than every planned need of theirs, prerequisites aside: only needs deferred for the budget count,
  and not one the plan has started on by planning one of its prerequisites (the person's biggest gap
  is then being closed, one level in this period);
- ``below_baseline_empty``: people with some domain below their role's baseline who get no plan and
  no deferral (a count; should be 0);
- ``preferred_share``: among people who gave preferred formats, the share of steps in a preferred
  format, counting only steps whose objective the catalogue offers in a preferred format;
- ``variety_3plus``: the share of paths of 3 or more steps that use at least 3 formats.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd


def figures(out: Path, programme_dir: Path | None = None) -> dict[str, float]:
    from trainmatch.catalogue import load_catalogue
    from trainmatch.programme import load_programme

    programme = load_programme(programme_dir)
    catalogue = load_catalogue(programme)
    people = pd.read_csv(out / "people.csv", dtype={"person_id": str}, keep_default_na=False, na_values=[""])
    steps = pd.read_csv(out / "plans.csv", dtype={"person_id": str}, keep_default_na=False, na_values=[""])
    deferred = pd.read_csv(out / "deferred.csv", dtype={"person_id": str}, keep_default_na=False, na_values=[""])
    n = len(people)

    budget = people["hours"].fillna(programme.default_hours).to_numpy(dtype=float)
    left = pd.Series(budget - people["planned_hours"].fillna(0).to_numpy(dtype=float), index=people["person_id"])
    cheapest = {o: min(m.hours for m in obj.modules) for o, obj in catalogue.objectives.items()}
    budget_late = deferred[deferred["deferred_because"] == "budget"]
    fits = budget_late["objective"].map(cheapest).to_numpy() <= left.reindex(budget_late["person_id"]).to_numpy() + 1e-9
    unused = budget_late.loc[fits, "person_id"].nunique()

    needs = steps[steps["kind"] == "need"].groupby("person_id")["gap"].max()
    closure: dict[str, set[str]] = {}

    def before(o: str) -> set[str]:
        if o not in closure:
            closure[o] = set()
            for p in catalogue.objectives[o].prerequisites:
                closure[o] |= {p} | before(p)
        return closure[o]

    planned = steps.groupby("person_id")["objective"].agg(set)
    late = deferred[(deferred["kind"] == "need") & (deferred["deferred_because"] == "budget")]
    started = np.asarray([bool(before(o) & planned.get(p, set())) for p, o in zip(late["person_id"], late["objective"])],
                         dtype=bool)
    late = late[~started]
    top = needs.reindex(late["person_id"]).to_numpy()  # NaN (nothing planned: nothing passed it over) compares False
    larger = late.loc[late["gap"].to_numpy() > top, "person_id"].nunique()
    with_deferrals = deferred["person_id"].nunique()

    base, _ = programme.role_matrices()
    role_index = {r.id: i for i, r in enumerate(programme.roles)}
    level_index = {lv: i for i, lv in enumerate(programme.level_ids, 1)}
    roles = people["role"].map(role_index)
    below = np.zeros(n, dtype=bool)
    for d, dom in enumerate(programme.domain_ids):
        lv = people[f"level_{dom}"].map(level_index).to_numpy(dtype=float)
        want = np.asarray([base[int(r)][d] if r == r else 0 for r in roles], dtype=float)
        below |= lv < want
    touched = set(steps["person_id"]) | set(deferred["person_id"])
    empty = int(sum(pid not in touched for pid in people.loc[below, "person_id"]))

    fmt_of = {o: {m.format for m in obj.modules} for o, obj in catalogue.objectives.items()}
    prefs = people.set_index("person_id")["formats"].fillna("").astype(str).map(lambda s: set(filter(None, s.split(";"))))
    s = steps.assign(pref=steps["person_id"].map(prefs))
    s = s[s["pref"].map(bool)]
    offered = [bool(p & fmt_of[o]) for p, o in zip(s["pref"], s["objective"])]
    s = s[offered]
    preferred = float(np.mean([f in p for f, p in zip(s["format"], s["pref"])])) if len(s) else float("nan")

    per = steps.groupby("person_id")["format"].agg(["size", "nunique"])
    long = per[per["size"] >= 3]
    variety = float((long["nunique"] >= 3).mean()) if len(long) else float("nan")
    return {
        "people": n,
        "unused_while_fits": unused / n if n else 0.0,
        "larger_gap_deferred": larger / with_deferrals if with_deferrals else 0.0,
        "people_with_deferrals": int(with_deferrals),
        "below_baseline_empty": empty,
        "preferred_share": preferred,
        "variety_3plus": variety,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--programme", type=Path, default=None)
    args = parser.parse_args()
    print(json.dumps(figures(args.out, args.programme), indent=2))


if __name__ == "__main__":
    main()
