"""Output tables: the frames written to CSV and XLSX, in a form people read.

Pure functions; :mod:`trainmatch.io` writes them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .programme import Programme
from .scoring import PERSON_COLUMNS


def level_ids(levels: pd.Series, programme: Programme, none: str = "") -> pd.Series:
    """Level indexes (1-based, 0 or NA = none) as level ids (a categorical: cheap at a million rows)."""
    idx = levels.astype("Int16").fillna(0).to_numpy(dtype=np.int64)
    return pd.Series(pd.Categorical.from_codes(idx, categories=[none, *programme.level_ids]), index=levels.index)


def _labels(flags: pd.Series, no: str, yes: str) -> pd.Categorical:
    return pd.Categorical.from_codes(flags.to_numpy(dtype=bool).astype(np.int8), categories=[no, yes])


def people_table(people: pd.DataFrame, programme: Programme) -> pd.DataFrame:
    """One row per person: facts, then per domain score, level, required level, gap and flag."""
    cols = [c for c in PERSON_COLUMNS if c != "row"] + [c for c in ("support", "cohort", "group", "support_person", "supports") if c in people.columns]
    out = people[cols].copy()
    for task in programme.tasks:
        out[f"task_{task.id}"] = _labels(people[f"task_{task.id}"], "no", "yes")
    for d in programme.domain_ids:
        out[f"score_{d}"] = people[f"score_{d}"].round(3)
        out[f"level_{d}"] = level_ids(people[f"level_{d}"], programme)
        out[f"required_{d}"] = level_ids(people[f"required_{d}"], programme, none="none")
        out[f"gap_{d}"] = people[f"gap_{d}"]
        out[f"reassess_{d}"] = _labels(people[f"missing_{d}"], "", "yes")
        if f"uncertain_{d}" in people.columns:  # a score within one SEM of a level boundary
            out[f"uncertain_{d}"] = _labels(people[f"uncertain_{d}"], "", "yes")
    for extra in ("planned_hours", "deferred_hours"):
        if extra in people.columns:
            out[extra] = people[extra]
    return out


def _reason_facts(frame: pd.DataFrame, programme: Programme) -> pd.DataFrame:
    """The reason's facts of steps or deferred items with levels as level ids, as people.csv shows them."""
    out = frame.copy()
    out["level"] = level_ids(frame["level"], programme)
    out["required"] = level_ids(frame["required"], programme, none="none")
    out["hours"] = out["hours"].astype(float).round(2)
    return out


def plans_table(steps: pd.DataFrame, programme: Programme) -> pd.DataFrame:
    """plans.csv: one row per step with its reason as text and as facts, hours rounded to 0.01."""
    from .paths import STEP_COLUMNS

    extra = [c for c in PLAN_SESSION_COLUMNS if c in steps.columns]
    return _reason_facts(steps[[c for c in STEP_COLUMNS if c != "priority"] + extra], programme)


# The session and calendar of each step (trainmatch.sessions, trainmatch.calendar), after the reason facts.
PLAN_SESSION_COLUMNS = ("session_id", "session_note", "start", "end", "due")


def deferred_table(deferred: pd.DataFrame, programme: Programme) -> pd.DataFrame:
    """deferred.csv: one row per deferred objective with its reason as text and as facts."""
    from .paths import DEFERRED_COLUMNS

    out = _reason_facts(deferred[list(DEFERRED_COLUMNS)], programme)
    out["hours_left"] = out["hours_left"].round(2)
    return out


CAPACITY_COLUMNS = ("site", "role", "people", "people_with_needs", "hours_available", "hours_needed", "hours_planned",
                    "hours_deferred", "share_all_gaps_closed")


def capacity_table(people: pd.DataFrame, programme: Programme) -> pd.DataFrame:
    """capacity.csv: per site and role, the time for training against the time the gaps need.

    ``people`` carries ``planned_hours`` and ``deferred_hours`` (:func:`trainmatch.pipeline.run_assignment`).
    Hours available are the people's training budgets; hours needed to close every gap are the hours
    planned plus the hours of every deferred objective in the format it would have had; the share is
    of the people with any need whose plan defers nothing (empty when no one in the row has a need).
    One row per site and role that has people, sorted; a last row ``all``/``all`` totals them.
    """
    from .columns import text_codes
    from .paths import budgets

    planned = people["planned_hours"].to_numpy(dtype=np.float64)
    deferred = people["deferred_hours"].to_numpy(dtype=np.float64)
    values = {
        "people": np.ones(len(people), dtype=np.float64),
        "people_with_needs": (planned + deferred > 0).astype(np.float64),
        "hours_available": budgets(people, programme),
        "hours_needed": planned + deferred,
        "hours_planned": planned,
        "hours_deferred": deferred,
        "closed": ((planned > 0) & (deferred == 0)).astype(np.float64),
    }
    # Sums per (site, role) over integer codes: no Python string per person.
    site_codes, sites = text_codes(people, "site")
    role_codes, roles = text_codes(people, "role")  # at least one label ('')
    keys, which = np.unique(site_codes * len(roles) + role_codes, return_inverse=True)
    rows = pd.DataFrame({
        "site": [sites[k // len(roles)] for k in keys.tolist()],
        "role": [roles[k % len(roles)] for k in keys.tolist()],
        **{name: np.bincount(which, weights=x, minlength=len(keys)) for name, x in values.items()},
    }).sort_values(["site", "role"], kind="stable", ignore_index=True)
    total = pd.DataFrame({"site": ["all"], "role": ["all"], **{name: [float(x.sum())] for name, x in values.items()}})
    rows = pd.concat([rows, total[rows.columns]], ignore_index=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = rows["closed"].to_numpy(dtype=np.float64) / rows["people_with_needs"].to_numpy(dtype=np.float64)
    rows["share_all_gaps_closed"] = np.where(rows["people_with_needs"] > 0, np.round(share, 3), np.nan)
    for col in ("hours_available", "hours_needed", "hours_planned", "hours_deferred"):
        rows[col] = rows[col].astype(np.float64).round(2)
    for col in ("people", "people_with_needs", "closed"):
        rows[col] = rows[col].astype(np.int64)
    return rows[list(CAPACITY_COLUMNS)]
