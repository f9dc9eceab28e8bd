"""Scoring: domain scores, proficiency levels, required levels and gaps.

A domain score is the mean of the domain's answered items after reversing the
reverse-keyed ones, computed only when at least ``min_answered_share`` of the
items are answered; otherwise the score is missing and the person is flagged
for reassessment in that domain (never imputed). Levels come from the
programme's thresholds, the required level is the maximum over the person's
tasks raised to their role's baseline and held to its cap (roles.csv), and the
gap is required − current level. The output follows the
``people`` contract in docs/data-contracts.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .programme import Programme

PERSON_COLUMNS = ["person_id", "row", "role", "site", "language", "hours", "formats"]


@dataclass(frozen=True)
class Reliability:
    """Cronbach's alpha of one domain, on the people who answered all its items."""

    domain: str
    n_items: int
    n_complete: int
    alpha: float
    low: bool


def item_matrix(people: pd.DataFrame, programme: Programme, domain: str) -> np.ndarray:
    """Answers of one domain's items (n × k), reverse-keyed items reversed; NaN = missing."""
    items = programme.items_of(domain)
    mat = people[[i.id for i in items]].to_numpy(dtype=np.float64, copy=True)
    rev = np.array([i.reverse for i in items], dtype=bool)
    mat[:, rev] = (programme.scale_min + programme.scale_max) - mat[:, rev]
    return mat


def levels_of(scores: np.ndarray, programme: Programme) -> np.ndarray:
    """1-based level index of each score (0 where the score is NaN)."""
    thresholds = np.asarray(programme.level_thresholds(), dtype=np.float64)
    idx = np.searchsorted(thresholds, scores, side="right").astype(np.int8)
    # A score below the lowest threshold still belongs to the lowest level.
    idx = np.maximum(idx, 1).astype(np.int8)
    idx[np.isnan(scores)] = 0
    return idx


def required_levels(people: pd.DataFrame, programme: Programme) -> np.ndarray:
    """n × domains: min(cap, max(baseline, highest level any of the person's tasks requires)) (0 = none).

    Baseline and cap are the person's role's (roles.csv): someone who ticked no task still
    needs what everyone in the role needs, and no task asks more of a role than its cap.
    """
    req = np.asarray(programme.requirement_matrix(), dtype=np.int8)  # tasks × domains
    out = np.zeros((len(people), len(programme.domains)), dtype=np.int8)
    for t, task in enumerate(programme.tasks):
        does = people[f"task_{task.id}"].to_numpy(dtype=bool)
        np.maximum(out, np.where(does[:, None], req[t][None, :], 0).astype(np.int8), out=out)
    base, cap = (np.asarray(m, dtype=np.int8).reshape(len(programme.roles), len(programme.domains))
                 for m in programme.role_matrices())
    role = role_codes(people, programme)
    known = role >= 0
    safe = np.maximum(role, 0)
    np.maximum(out, np.where(known[:, None], base[safe], 0).astype(np.int8), out=out)
    np.minimum(out, np.where(known[:, None], cap[safe], len(programme.levels)).astype(np.int8), out=out)
    return out


def role_codes(people: pd.DataFrame, programme: Programme) -> np.ndarray:
    """Index of each person's role in ``programme.roles`` (-1 where the role is not one of them)."""
    ids = [r.id for r in programme.roles]
    if "role" not in people.columns or not len(ids):
        return np.full(len(people), -1, dtype=np.int64)
    return pd.Categorical(people["role"].astype(object), categories=ids).codes.astype(np.int64)


def score(people: pd.DataFrame, programme: Programme) -> pd.DataFrame:
    """Score imported people (see :class:`~trainmatch.survey.ImportResult`) into the people contract."""
    n = len(people)
    # .array, not .to_numpy(): Arrow-backed text stays Arrow (no Python str per cell).
    out: dict[str, object] = {c: people[c].array for c in PERSON_COLUMNS}
    for task in programme.tasks:
        out[f"task_{task.id}"] = people[f"task_{task.id}"].to_numpy(dtype=bool)
    required = required_levels(people, programme)
    for d, domain in enumerate(programme.domain_ids):
        mat = item_matrix(people, programme, domain)
        k = mat.shape[1]
        answered = (~np.isnan(mat)).sum(axis=1)
        enough = answered >= np.ceil(programme.min_answered_share * k - 1e-9)
        sums = np.nansum(mat, axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            scores = np.where(enough & (answered > 0), sums / np.maximum(answered, 1), np.nan)
        level = levels_of(scores, programme)
        missing = np.isnan(scores)
        out[f"score_{domain}"] = scores
        out[f"answered_{domain}"] = answered.astype(np.int8)
        out[f"missing_{domain}"] = missing
        level_arr = pd.array(level, dtype="Int8")
        level_arr[missing] = pd.NA
        out[f"level_{domain}"] = level_arr
        out[f"required_{domain}"] = required[:, d]
        gap = pd.array((required[:, d].astype(np.int16) - level).astype(np.int8), dtype="Int8")
        gap[missing] = pd.NA
        out[f"gap_{domain}"] = gap
    frame = pd.DataFrame(out, index=pd.RangeIndex(n))
    return frame


def cronbach_alpha(people: pd.DataFrame, programme: Programme) -> list[Reliability]:
    """Cronbach's alpha per domain on complete cases; ``low`` when below the programme's warning level."""
    result = []
    for domain in programme.domain_ids:
        mat = item_matrix(people, programme, domain)
        complete = mat[~np.isnan(mat).any(axis=1)]
        k = mat.shape[1]
        alpha = float("nan")
        if k >= 2 and len(complete) >= 3:
            item_var = complete.var(axis=0, ddof=1).sum()
            total_var = complete.sum(axis=1).var(ddof=1)
            if total_var > 0:
                alpha = float(k / (k - 1) * (1 - item_var / total_var))
        low = bool(np.isnan(alpha) or alpha < programme.alpha_warning)
        result.append(Reliability(domain, k, int(len(complete)), alpha, low))
    return result


def score_columns(programme: Programme) -> list[str]:
    return [f"score_{d}" for d in programme.domain_ids]
