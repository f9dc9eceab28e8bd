"""Scoring: domain scores, proficiency levels, required levels and gaps, and how well the items measure.

A domain score is the mean of the domain's answered skill items (attitude items
are reported, not scored) after reversing the reverse-keyed ones, computed only
when at least ``min_answered_share`` of those items are answered; otherwise the
score is missing and the person is flagged for reassessment in that domain
(never imputed). A "don't know" answer is no answer, or the lowest skill where
the item says ``dont_know = lowest``. Item statistics (item-rest correlation,
alpha if deleted) flag items that do not measure their domain, as a wrongly
keyed item does. Levels come from the
programme's thresholds, the required level is the maximum over the person's
tasks raised to their role's baseline and held to its cap (roles.csv), and the
gap is required − current level. The output follows the
``people`` contract in docs/data-contracts.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .columns import codes
from .programme import Programme

PERSON_COLUMNS = ["person_id", "row", "role", "site", "language", "hours", "formats"]


# Item statistics: an item is flagged when its item-rest correlation is below LOW_ITEM_REST (negative: it runs
# against its domain, as a wrongly keyed item does), or when the domain's alpha rises by more than ALPHA_RISE
# without it. Below MIN_COMPLETE complete answers the statistics are too unsteady to judge.
LOW_ITEM_REST = 0.2
ALPHA_RISE = 0.02
MIN_COMPLETE = 10

ITEM_STAT_COLUMNS = [
    "item", "domain", "kind", "reverse", "dont_know", "n_answered", "mean", "sd", "share_dont_know",
    "item_rest_r", "alpha_if_deleted", "flag", "reason",
]


@dataclass(frozen=True)
class Reliability:
    """Cronbach's alpha of one domain's skill score, on the people who answered all its skill items, and the
    standard error of measurement of the score (its sd · √(1 − alpha), NaN when alpha is not known)."""

    domain: str
    n_items: int
    n_complete: int
    alpha: float
    low: bool
    sem: float = float("nan")


def answer_matrix(people: pd.DataFrame, programme: Programme, items: tuple) -> np.ndarray:
    """Answers to ``items`` (n × k) as skill: reverse-keyed items reversed, "don't know" as each item counts it
    (the lowest skill, or NaN = no answer)."""

    lo, hi = programme.scale_min, programme.scale_max
    mat = people[[i.id for i in items]].to_numpy(dtype=np.float64, copy=True)
    rev = np.array([i.reverse for i in items], dtype=bool)
    mat[:, rev] = (lo + hi) - mat[:, rev]  # DONT_KNOW (-inf) reversed is +inf: still apart from every answer
    unknown = np.isinf(mat)
    lowest = np.array([i.dont_know == "lowest" for i in items], dtype=bool)
    mat[unknown] = np.nan
    mat[unknown & lowest[None, :]] = lo
    return mat


def _alpha(cov: np.ndarray, n: int) -> float:
    """Cronbach's alpha from the covariance matrix of ``n`` complete answers (items × items); NaN when it
    cannot be computed."""
    k = cov.shape[0]
    total_var = float(cov.sum())  # the variance of the sum of the items
    if k < 2 or n < 3 or not total_var > 0:
        return float("nan")
    return float(k / (k - 1) * (1 - float(np.trace(cov)) / total_var))


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
    req = np.asarray(programme.requirement_matrix(), dtype=np.int8).reshape(len(programme.tasks), len(programme.domains))
    out = np.zeros((len(people), len(programme.domains)), dtype=np.int8)
    if len(programme.tasks):
        does = np.empty((len(people), len(programme.tasks)), dtype=np.float32)
        for t, task in enumerate(programme.tasks):
            does[:, t] = people[f"task_{task.id}"].to_numpy(dtype=bool)
        # The highest level the ticked tasks require = the number of levels L that some ticked task
        # requires at least: one matrix product per level instead of a pass over the people per task.
        for level in range(1, int(req.max(initial=0)) + 1):
            out += (does @ (req >= level).astype(np.float32) > 0).astype(np.int8)
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
    return codes(people["role"], ids)[0]


@dataclass(frozen=True)
class Measurement:
    """What the survey measured: the people contract, each domain's reliability and each item's statistics."""

    people: pd.DataFrame
    reliability: tuple[Reliability, ...]
    item_stats: pd.DataFrame  # columns ITEM_STAT_COLUMNS


def measure(people: pd.DataFrame, programme: Programme) -> Measurement:
    """Score imported people (see :class:`~trainmatch.survey.ImportResult`) into the people contract, with
    Cronbach's alpha and the SEM per domain (the SEM says which scores are borderline) and the item statistics.

    Each domain's answers are read into one matrix, which gives the scores, alpha and the item statistics.
    """
    n = len(people)
    # .array, not .to_numpy(): Arrow-backed text stays Arrow (no Python str per cell).
    out: dict[str, object] = {c: people[c].array for c in PERSON_COLUMNS}
    if "support" in people.columns:  # willing to support colleagues (the sessions stage names support persons)
        out["support"] = people["support"].array
    for task in programme.tasks:
        out[f"task_{task.id}"] = people[f"task_{task.id}"].to_numpy(dtype=bool)
    required = required_levels(people, programme)
    reliability: list[Reliability] = []
    stats: list[dict[str, object]] = []
    for d, domain in enumerate(programme.domain_ids):
        skill = programme.skill_items_of(domain)
        mat = answer_matrix(people, programme, skill)
        answered = len(skill) - np.isnan(mat).sum(axis=1)
        complete = answered == len(skill)
        n_complete = int(complete.sum())
        # One covariance matrix of the complete answers gives alpha, every item-rest correlation and
        # alpha if deleted, without a pass over the people per item.
        cov = np.cov(mat[complete], rowvar=False, ddof=1).reshape(len(skill), len(skill)) if n_complete >= 2 \
            else np.full((len(skill), len(skill)), np.nan)
        alpha = _alpha(cov, n_complete)
        scores = _scores(mat, answered, programme)
        sem = _sem(scores, alpha)
        reliability.append(Reliability(domain, len(skill), n_complete, alpha,
                                       bool(np.isnan(alpha) or alpha < programme.alpha_warning), sem))
        stats += _item_rows(people, programme, domain, mat, complete, cov, alpha)

        level = levels_of(scores, programme)
        missing = np.isnan(scores)
        out[f"score_{domain}"] = scores
        out[f"answered_{domain}"] = answered.astype(np.int8)
        out[f"missing_{domain}"] = missing
        out[f"uncertain_{domain}"] = near_boundary(scores, sem, programme)
        level_arr = pd.array(level, dtype="Int8")
        level_arr[missing] = pd.NA
        out[f"level_{domain}"] = level_arr
        out[f"required_{domain}"] = required[:, d]
        gap = pd.array((required[:, d].astype(np.int16) - level).astype(np.int8), dtype="Int8")
        gap[missing] = pd.NA
        out[f"gap_{domain}"] = gap
    frame = pd.DataFrame(out, index=pd.RangeIndex(n))
    return Measurement(frame, tuple(reliability), pd.DataFrame(stats, columns=ITEM_STAT_COLUMNS))


def score(people: pd.DataFrame, programme: Programme) -> pd.DataFrame:
    """The people contract of imported people: :func:`measure`'s ``people``."""
    return measure(people, programme).people


def cronbach_alpha(people: pd.DataFrame, programme: Programme) -> list[Reliability]:
    """Cronbach's alpha per domain (skill items, complete cases) and the SEM of the domain score;
    ``low`` when alpha is below the programme's warning level: :func:`measure`'s ``reliability``."""
    return list(measure(people, programme).reliability)


def item_statistics(people: pd.DataFrame, programme: Programme) -> pd.DataFrame:
    """Per item (columns :data:`ITEM_STAT_COLUMNS`): answers, "don't know" share, mean and sd as answered,
    the correlation with the rest of its domain's skill score, alpha if deleted, and a flag with its reason:
    :func:`measure`'s ``item_stats``.

    The item-rest correlation and alpha if deleted use the people who answered every skill item of the
    domain (and the item); an attitude item is correlated with its domain's skill score but is not in it.
    """
    return measure(people, programme).item_stats


def _scores(mat: np.ndarray, answered: np.ndarray, programme: Programme) -> np.ndarray:
    """Domain scores from a skill-item matrix and the number of items each person answered: the mean of the
    answered items where enough are answered, else NaN."""
    enough = answered >= np.ceil(programme.min_answered_share * mat.shape[1] - 1e-9)
    sums = np.nansum(mat, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(enough & (answered > 0), sums / np.maximum(answered, 1), np.nan)


def _sem(scores: np.ndarray, alpha: float) -> float:
    """Standard error of measurement of a domain score: sd · √(1 − alpha); NaN when alpha is not known
    (a negative alpha gives an SEM above the sd: the score then says little)."""
    known = scores[~np.isnan(scores)]
    if np.isnan(alpha) or len(known) < 2:
        return float("nan")
    return float(known.std(ddof=1)) * float(np.sqrt(max(0.0, 1 - alpha)))


def near_boundary(scores: np.ndarray, sem: float, programme: Programme) -> np.ndarray:
    """Whether each score lies within one SEM of a boundary between two levels (False where the score or the
    SEM is unknown): one answer more or less could put the person in the next level."""
    bounds = np.asarray(programme.level_thresholds()[1:], dtype=np.float64)  # the lowest level has no lower boundary
    if np.isnan(sem) or not len(bounds):
        return np.zeros(len(scores), dtype=bool)
    near = np.zeros(len(scores), dtype=bool)
    with np.errstate(invalid="ignore"):
        for bound in bounds:  # a few boundaries: one pass each, no people × boundaries matrix
            near |= np.abs(scores - bound) <= sem
    return near


def _item_rows(people: pd.DataFrame, programme: Programme, domain: str, skill_mat: np.ndarray,
               complete: np.ndarray, cov: np.ndarray, alpha: float) -> list[dict[str, object]]:
    """:data:`ITEM_STAT_COLUMNS` rows of one domain's items, from its skill-item matrix and the covariance
    matrix of its complete answers."""
    from .answers import DONT_KNOW

    skill = programme.skill_items_of(domain)
    rows: list[dict[str, object]] = []
    totals = None
    for item in programme.items_of(domain):
        raw = people[item.id].to_numpy(dtype=np.float64)
        dont_know = raw == DONT_KNOW
        answered = np.isfinite(raw)
        n_ans, n_dk = int(answered.sum()), int(dont_know.sum())
        values = raw[answered]
        if item.attitude:
            if totals is None:
                totals = skill_mat.sum(axis=1)
            x = answer_matrix(people, programme, (item,))[:, 0]
            use = complete & ~np.isnan(x)
            n_use = int(use.sum())
            r = _correlation(x[use], totals[use])
            deleted = float("nan")
        else:
            n_use = int(complete.sum())
            r, deleted = _rest_statistics(cov, skill.index(item), n_use)
        flag, reason = _item_flag(item.attitude, n_use, r, alpha, deleted)
        rows.append({
            "item": item.id, "domain": domain, "kind": "attitude" if item.attitude else "skill",
            "reverse": "yes" if item.reverse else "no", "dont_know": item.dont_know,
            "n_answered": n_ans,
            "mean": round(float(values.mean()), 3) if n_ans else np.nan,
            "sd": round(float(values.std(ddof=1)), 3) if n_ans >= 2 else np.nan,
            "share_dont_know": round(n_dk / (n_ans + n_dk), 3) if n_ans + n_dk else np.nan,
            "item_rest_r": round(r, 3), "alpha_if_deleted": round(deleted, 3),
            "flag": "yes" if flag else "no", "reason": reason,
        })
    return rows


def _rest_statistics(cov: np.ndarray, j: int, n: int) -> tuple[float, float]:
    """Item ``j``'s correlation with the sum of the other items, and Cronbach's alpha without it, from the
    covariance matrix of ``n`` complete answers (NaN where they cannot be computed)."""
    k = cov.shape[0]
    keep = np.arange(k) != j
    rest_var = float(cov[np.ix_(keep, keep)].sum())
    item_var = float(cov[j, j])
    if n < 3 or not (rest_var > 0 and item_var > 0):
        r = float("nan")
    else:
        r = float(cov[j, keep].sum()) / float(np.sqrt(item_var * rest_var))
    if k - 1 < 2 or n < 3 or not rest_var > 0:
        deleted = float("nan")
    else:
        deleted = (k - 1) / (k - 2) * (1 - float(np.trace(cov[np.ix_(keep, keep)])) / rest_var)
    return r, deleted


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 3 or a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def _item_flag(attitude: bool, n: int, r: float, alpha: float, deleted: float) -> tuple[bool, str]:
    """Whether an item is flagged, and why in words (empty when all is well)."""
    if n < MIN_COMPLETE or np.isnan(r):
        return False, f"too few complete answers ({n}) to judge" if n < MIN_COMPLETE else "no variation to judge"
    if r < 0:
        return True, (f"negative item-rest correlation ({r:.2f}): the item runs against its domain; "
                      "check its reverse key in items.csv")
    if attitude:
        return False, ""  # an attitude item may well differ from the skill it sits with
    if r < LOW_ITEM_REST:
        return True, f"low item-rest correlation ({r:.2f} < {LOW_ITEM_REST}): the item measures something else than its domain"
    if not np.isnan(deleted) and not np.isnan(alpha) and deleted > alpha + ALPHA_RISE:
        return True, f"alpha rises from {alpha:.2f} to {deleted:.2f} without the item"
    return False, ""


def score_columns(programme: Programme) -> list[str]:
    return [f"score_{d}" for d in programme.domain_ids]
