"""How well an `assign` output folder turns group formats into sessions (the acceptance figures of issue 16).

    python benchmarks/session_figures.py OUT [--programme DIR]

Reads OUT/people.csv, OUT/plans.csv, OUT/sessions.csv and OUT/groups.csv and prints, as JSON:

- ``group_steps``: steps in a group format (workshop, webinar, simulation, …);
- ``viable_share``: among them, the share in a session with at least ``[groups] min_attendees`` people;
- ``below_minimum_without_reason``: sessions below the minimum whose row gives no reason (should be 0);
- ``group_steps_without_session``: group-format steps with no session (should be 0);
- ``grouped_without_own_session``: people in a training group in which they have no session (should be 0);
- ``sessions``, ``median_attendees``, ``single_attendee_sessions``;
- ``unscheduled``: sessions without a date (with a start date, each with its reason).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd


def figures(out: Path, programme_dir: Path | None = None) -> dict[str, float]:
    from trainmatch.programme import load_programme

    programme = load_programme(programme_dir)
    group_formats = {f.id for f in programme.formats if f.group}
    read = {"dtype": str, "keep_default_na": False}
    people = pd.read_csv(out / "people.csv", **read)
    steps = pd.read_csv(out / "plans.csv", **read)
    sessions = pd.read_csv(out / "sessions.csv", **read)
    sessions["attendees"] = sessions["attendees"].astype(int)
    size = sessions.set_index("session_id")["attendees"]
    group_steps = steps[steps["format"].isin(group_formats)]
    in_session = group_steps[group_steps["session_id"] != ""]
    viable = (in_session["session_id"].map(size) >= programme.min_attendees).sum()
    below = sessions[sessions["attendees"] < programme.min_attendees]
    own = set(zip(in_session["person_id"], in_session["group"]))
    grouped = people[people["group"] != ""]
    without_own = sum((p, g) not in own for p, g in zip(grouped["person_id"], grouped["group"]))
    return {
        "people": len(people),
        "group_steps": len(group_steps),
        "viable_share": round(float(viable / len(group_steps)), 4) if len(group_steps) else 1.0,
        "below_minimum_without_reason": int((below["reason"] == "").sum()),
        "group_steps_without_session": int((group_steps["session_id"] == "").sum()),
        "grouped_without_own_session": int(without_own),
        "sessions": len(sessions),
        "median_attendees": float(sessions["attendees"].median()) if len(sessions) else 0.0,
        "single_attendee_sessions": int((sessions["attendees"] == 1).sum()),
        "unscheduled": int((sessions["status"] != "scheduled").sum()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--programme", type=Path, default=None)
    args = parser.parse_args()
    print(json.dumps(figures(args.out, args.programme), indent=2))


if __name__ == "__main__":
    main()
