"""The library API behind the commands: each stage of the data flow as one call.

read → validate → score → cohorts → rules → paths. These functions are pure
(no files, no printing); a notebook user calls them the same way the CLI does.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from .catalogue import Catalogue, load_catalogue
from .cohorts import CohortCentres, FitReport, cohort_table
from .groups import make_groups
from .errors import DataError
from .model_store import SavedModel
from .paths import PlannerHints, build_paths
from .programme import Programme
from .rules import RuleTable, build_needs, evaluate, load_rules
from .scoring import Reliability, measure, score_columns
from .io import RawSurvey
from .columns import codes, positions, text_column
from .survey import ImportResult


def fit_cohorts(X: np.ndarray, *, k_range: tuple[int, int], seed: int) -> CohortCentres:
    """Fit :class:`~trainmatch.kmeans.CohortModel` on domain scores (people × domains) and keep its centres."""
    from .kmeans import fit_centres  # imports scikit-learn: about a second, so only when fitting

    return fit_centres(X, k_range=k_range, seed=seed)


def cohort_scores(people: pd.DataFrame, programme: Programme) -> np.ndarray:
    """The domain scores cohorts are formed from (people × domains); DataError when they cannot be."""
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
    return X


@dataclass(frozen=True)
class CohortStage:
    """People with ``cohort`` and ``group`` added, plus the tables that describe them."""

    people: pd.DataFrame
    cohorts: pd.DataFrame  # cohort, size, share, mean_<domain>…, description
    groups: pd.DataFrame  # group, cohort, site, members, undersized
    fit_report: FitReport
    model: CohortCentres
    warnings: tuple[str, ...]
    reused_model: bool
    group_problems: tuple[str, ...] = ()  # the warnings about these cohort-based groups (replaced by the sessions stage)


def assign_cohorts(
    people: pd.DataFrame,
    programme: Programme,
    *,
    saved: SavedModel | None = None,
    k_range: tuple[int, int] = (2, 8),
    seed: int = 0,
) -> CohortStage:
    """Fit cohorts on the scored people (or reuse a saved model) and split them into training groups."""
    X = cohort_scores(people, programme)
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
        model = fit_cohorts(X, k_range=k_range, seed=seed)
        report = model.fit_report_
        warnings = list(report.warnings)
    names = [d.names.get("en", d.id) for d in programme.domains]
    index = model.predict(X)
    table = cohort_table(model, X, names, labels=index)
    table = table.rename(columns={name: f"mean_{d}" for name, d in zip(names, programme.domain_ids)})
    table[[f"mean_{d}" for d in programme.domain_ids]] = table[[f"mean_{d}" for d in programme.domain_ids]].round(3)
    out = people.copy()
    out["cohort"] = text_column(model.cohort_ids_, index)
    group_ids, groups, problems = make_groups(
        out["cohort"], out["site"], min_size=programme.group_min_size, max_size=programme.group_max_size
    )
    out["group"] = group_ids.array  # Arrow text, as made (to_numpy would make a Python string per person)
    return CohortStage(
        people=out,
        cohorts=table,
        groups=groups,
        fit_report=report,
        model=model,
        warnings=tuple(warnings) + tuple(problems),
        reused_model=saved is not None,
        group_problems=tuple(problems),
    )


@dataclass(frozen=True)
class Plan:
    """Loaded catalogue and rules of a programme, validated together before any survey is read."""

    catalogue: Catalogue
    rules: RuleTable


def load_plan(programme: Programme) -> Plan:
    """Validate the programme's catalogue and rules (ProgrammeError lists every problem)."""
    catalogue = load_catalogue(programme)
    return Plan(catalogue, load_rules(programme, catalogue))


@dataclass(frozen=True)
class Assignment:
    """Everything one `assign` run produces, before it is written anywhere.

    ``people`` is the people contract plus ``cohort``, ``group``,
    ``planned_hours`` and ``deferred_hours``; ``steps`` and ``deferred`` are the
    paths (see :mod:`trainmatch.paths`); ``timings`` are seconds per stage.
    """

    imported: ImportResult
    people: pd.DataFrame
    fired: pd.DataFrame
    steps: pd.DataFrame
    deferred: pd.DataFrame
    cohorts: CohortStage
    reliability: tuple[Reliability, ...]
    timings: dict[str, float]
    item_stats: pd.DataFrame  # per item: item-rest correlation, alpha if deleted, flag (scoring.item_statistics)
    sessions: pd.DataFrame | None = None  # group sessions (sessions.SESSION_COLUMNS), before the calendar
    members: pd.DataFrame | None = None  # one row per (session, person)


def run_assignment(
    imported: ImportResult,
    programme: Programme,
    plan: Plan,
    *,
    saved: SavedModel | None = None,
    k_range: tuple[int, int] = (2, 8),
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
    hints: PlannerHints | None = None,
) -> Assignment:
    """Score, form cohorts (or reuse ``saved``), fire rules and build paths for the accepted people;
    ``hints`` (:class:`~trainmatch.paths.PlannerHints`, a follow-up round) go to the planner."""
    timings: dict[str, float] = {}

    def stage(name: str) -> None:
        timings[name] = time.perf_counter()
        if progress is not None:
            progress(name)

    stage("score")
    measured = measure(imported.people, programme)
    people = measured.people
    stage("cohorts")
    cohorts = assign_cohorts(people, programme, saved=saved, k_range=k_range, seed=seed)
    people = cohorts.people
    stage("rules")
    fired = evaluate(plan.rules, build_needs(people, programme), people, programme)
    stage("paths")
    paths = build_paths(people, fired, plan.catalogue, programme, hints=hints)
    stage("sessions")
    from .paths import budgets
    from .sessions import plan_sessions

    planned = plan_sessions(people, paths.steps, plan.catalogue, programme, budgets(people, programme), hints=hints)
    people, steps = planned.people, planned.steps
    kept = tuple(w for w in cohorts.warnings if w not in cohorts.group_problems)
    cohorts = replace(cohorts, people=people, groups=planned.groups, warnings=kept + planned.warnings, group_problems=())
    people = people.assign(
        planned_hours=_hours_per_person(steps, people),
        deferred_hours=_hours_per_person(paths.deferred, people),
    )
    stage("end")
    names = list(timings)
    durations = {a: round(timings[b] - timings[a], 4) for a, b in zip(names, names[1:])}
    return Assignment(imported, people, fired, steps, paths.deferred, cohorts, measured.reliability, durations,
                      measured.item_stats, planned.sessions, planned.members)


def _hours_per_person(table: pd.DataFrame, people: pd.DataFrame) -> np.ndarray:
    """Sum of ``hours`` per person, aligned with ``people`` (0 for people with none)."""
    if len(table) == 0:
        return np.zeros(len(people))
    # The paths' person_id is a categorical of the people's ids in their order: its codes are the rows.
    who = positions(table["person_id"], pd.Index(people["person_id"]))
    known = who >= 0
    return np.bincount(who[known], weights=table["hours"].to_numpy(dtype=np.float64)[known], minlength=len(people)).round(2)


def group_modules(groups: pd.DataFrame, steps: pd.DataFrame) -> pd.DataFrame:
    """The group table with ``modules``: the group-format modules each group meets for."""
    group_codes, group_ids = codes(steps["group"])
    module_codes, module_ids = codes(steps["module"])
    keep = group_codes >= 0
    empty = np.flatnonzero(np.asarray(group_ids, dtype=object) == "")  # steps that are not group sessions
    if len(empty):
        keep &= group_codes != empty[0]
    width = max(len(module_ids), 1)
    # Distinct (group, module) pairs by hashing, then sorted: by group, then catalogue order.
    pairs = np.sort(pd.unique(group_codes[keep] * width + module_codes[keep]))
    pair_groups = pairs // width
    modules = np.asarray(module_ids, dtype=object)[pairs % width].tolist()
    starts = np.flatnonzero(np.diff(pair_groups, prepend=-1) != 0)  # where each group's pairs begin
    names = np.asarray(group_ids, dtype=object)[pair_groups[starts]]
    ends = [*starts[1:].tolist(), len(modules)]
    joined = pd.Series([";".join(modules[a:b]) for a, b in zip(starts.tolist(), ends)], index=names, dtype=object)
    out = groups.copy()
    out["modules"] = joined.reindex(out["group"].to_numpy()).fillna("").to_numpy()
    return out


def run_record(
    raw: RawSurvey,
    imported: ImportResult,
    result: Assignment,
    programme: Programme,
    *,
    n_steps: int,
    n_groups: int,
    seed: int,
    model: dict[str, Any],
    options: dict[str, Any],
    versions: dict[str, str],
) -> dict[str, Any]:
    """What run.json records about a run (without timings): input hash, reconciled counts, programme, seed."""
    return {
        "input": {"file": Path(raw.path).name, "sha256": raw.sha256, "format": raw.kind, "encoding": raw.encoding, "sheet": raw.sheet},
        "counts": {
            "rows_read": imported.n_read,
            "accepted": imported.n_accepted,
            "rejected": imported.n_rejected,
            "reconciles": imported.n_accepted + imported.n_rejected == imported.n_read,
            "steps": n_steps,
            "deferred": len(result.deferred),
            "cohorts": len(result.cohorts.cohorts),
            "groups": n_groups,
        },
        "programme": {"name": programme.name, "version": programme.version, "source": programme.source, "fingerprint": programme.fingerprint},
        "cohort_model": {**model, "k": int(result.cohorts.model.n_clusters_), **result.cohorts.fit_report.quality()},
        "seed": seed,
        "options": options,
        "versions": versions,
    }
