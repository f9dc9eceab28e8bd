"""The library API behind the commands: each stage of the data flow as one call.

read → validate → score → cohorts → rules → paths. These functions are pure
(no files, no printing); a notebook user calls them the same way the CLI does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .cohorts import CohortModel, FitReport, cohort_table, make_groups
from .errors import DataError
from .model_store import SavedModel
from .programme import Programme
from .scoring import score_columns


@dataclass(frozen=True)
class CohortStage:
    """People with ``cohort`` and ``group`` added, plus the tables that describe them."""

    people: pd.DataFrame
    cohorts: pd.DataFrame  # cohort, size, share, mean_<domain>…, description
    groups: pd.DataFrame  # group, cohort, site, members, undersized
    fit_report: FitReport
    model: CohortModel
    warnings: tuple[str, ...]
    reused_model: bool


def assign_cohorts(
    people: pd.DataFrame,
    programme: Programme,
    *,
    saved: SavedModel | None = None,
    k_range: tuple[int, int] = (2, 8),
    seed: int = 0,
) -> CohortStage:
    """Fit cohorts on the scored people (or reuse a saved model) and split them into training groups."""
    if len(people) == 0:
        raise DataError("No accepted people to form cohorts from: every row was rejected. Fix the problems listed and run again.")
    X = people[score_columns(programme)].to_numpy(dtype="float64", na_value=float("nan"))
    empty = [d.names.get("en", d.id) for j, d in enumerate(programme.domains) if np.isnan(X[:, j]).all()]
    if empty:
        raise DataError(
            f"Cannot form cohorts: {', '.join(empty)} {'has' if len(empty) == 1 else 'have'} no scores at all "
            "(too few items answered by everybody). Check that the survey holds the domain's answers, "
            "or remove the domain from the programme."
        )
    if saved is not None:
        if tuple(saved.domain_ids) != programme.domain_ids:
            raise DataError(
                f"The saved model uses domains {', '.join(saved.domain_ids)}, but the programme has "
                f"{', '.join(programme.domain_ids)}. Refit with --save-model."
            )
        model = saved.model
        report = saved.fit_report
        warnings: list[str] = []
    else:
        model = CohortModel(k_range=k_range, random_state=seed).fit(X)
        report = model.fit_report_
        warnings = list(report.warnings)
    names = [d.names.get("en", d.id) for d in programme.domains]
    labels = model.predict_cohort(X)
    table = cohort_table(model, X, names)
    table = table.rename(columns={name: f"mean_{d}" for name, d in zip(names, programme.domain_ids)})
    table[[f"mean_{d}" for d in programme.domain_ids]] = table[[f"mean_{d}" for d in programme.domain_ids]].round(3)
    out = people.copy()
    out["cohort"] = labels
    group_ids, groups, problems = make_groups(
        out["cohort"], out["site"], min_size=programme.group_min_size, max_size=programme.group_max_size
    )
    out["group"] = group_ids.to_numpy()
    return CohortStage(
        people=out,
        cohorts=table,
        groups=groups,
        fit_report=report,
        model=model,
        warnings=tuple(warnings) + tuple(problems),
        reused_model=saved is not None,
    )
