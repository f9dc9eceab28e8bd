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
    cols = [c for c in PERSON_COLUMNS if c != "row"] + [c for c in ("cohort", "group") if c in people.columns]
    out = people[cols].copy()
    for task in programme.tasks:
        out[f"task_{task.id}"] = _labels(people[f"task_{task.id}"], "no", "yes")
    for d in programme.domain_ids:
        out[f"score_{d}"] = people[f"score_{d}"].round(3)
        out[f"level_{d}"] = level_ids(people[f"level_{d}"], programme)
        out[f"required_{d}"] = level_ids(people[f"required_{d}"], programme, none="none")
        out[f"gap_{d}"] = people[f"gap_{d}"]
        out[f"reassess_{d}"] = _labels(people[f"missing_{d}"], "", "yes")
    for extra in ("planned_hours", "deferred_hours"):
        if extra in people.columns:
            out[extra] = people[extra]
    return out
