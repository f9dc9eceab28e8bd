"""Cohorts: cluster standardised domain-score profiles, describe them, split them into training groups.

Method (DESIGN.md, step 4):

* **Standardise.** Each domain score is centred on the population mean and
  divided by the population standard deviation (ddof=0); both are stored on the
  fitted model. A constant domain keeps scale 1.
* **Missing scores.** A missing domain score is set to 0 in standardised units
  (the population mean of that domain) *for clustering only*, so the person is
  placed by the domains they did answer. The scores themselves are never
  changed; ``n_imputed_`` counts the cells treated this way.
* **Choosing k.** For every k in ``k_range``, k-means (k-means++ with
  ``n_init`` starts) is fitted on one seeded random sample of at most
  ``sample_size`` people, and the mean silhouette is computed on that same
  sample. The smallest k whose silhouette is within ``tie_tolerance`` of the
  best is chosen (fewer cohorts are easier to run when the fit is as good).
  The chosen k is then refined with Lloyd iterations on everybody.
  Calinski-Harabasz and Davies-Bouldin on the same sample, and the smallest
  cohort's share of everybody, are reported for every k.
* **Labels.** Cohorts are numbered ``C1..Ck`` by overall level (mean of the
  standardised centre, ascending), so C1 needs the most support; equal levels
  are ordered by the centre's domain values. Same data and seed → same labels.
* **Descriptions.** A domain whose centre is at least :data:`STRONG_Z`
  standard deviations above the population mean is "strong", at least that
  far below is a "gap"; otherwise the cohort is "close to average".

Groups: see :func:`make_groups`. Everything here is pure: no files, no printing.
"""

from __future__ import annotations

import bisect
import math
import re
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any, ContextManager, Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.cluster import KMeans
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data
from threadpoolctl import ThreadpoolController

from .errors import DataError, UsageError

STRONG_Z = 0.5
"""|standardised centre| at or above this makes a domain a strength (+) or a gap (−)."""

_PREDICT_CHUNK = 131_072  # rows per block in predict: bounds memory at a few MB per block
_SILHOUETTE_BLOCK = 2_000_000  # distance-matrix cells per block in the silhouette


@lru_cache(maxsize=1)
def _controller() -> ThreadpoolController:
    return ThreadpoolController()


def _one_thread() -> ContextManager[Any]:
    """Run OpenMP/BLAS single-threaded inside: the blocks here are small, and on a machine with a busy
    core k-means' spinning OpenMP threads were measured 30× slower (4 s instead of 0.13 s per 7 k's)."""
    return _controller().limit(limits=1)


# --------------------------------------------------------------------------- fit report


@dataclass(frozen=True)
class FitRow:
    """Fit indices of one k: silhouette (higher is better), Calinski-Harabasz (higher), Davies-Bouldin (lower)."""

    k: int
    silhouette: float
    calinski_harabasz: float
    davies_bouldin: float
    smallest_share: float  # share of everybody in the smallest cohort


@dataclass(frozen=True)
class FitReport:
    """How k was chosen: one row per k tried, the chosen k, and warnings for the user."""

    rows: tuple[FitRow, ...]
    chosen_k: int
    warnings: tuple[str, ...]
    n_people: int
    n_sample: int
    n_imputed: int
    tie_tolerance: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (NaN becomes None)."""

        def num(x: float) -> float | None:
            return None if x is None or not math.isfinite(x) else float(x)

        return {
            "rows": [
                {
                    "k": r.k,
                    "silhouette": num(r.silhouette),
                    "calinski_harabasz": num(r.calinski_harabasz),
                    "davies_bouldin": num(r.davies_bouldin),
                    "smallest_share": num(r.smallest_share),
                }
                for r in self.rows
            ],
            "chosen_k": self.chosen_k,
            "warnings": list(self.warnings),
            "n_people": self.n_people,
            "n_sample": self.n_sample,
            "n_imputed": self.n_imputed,
            "tie_tolerance": self.tie_tolerance,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "FitReport":
        """Inverse of :meth:`to_dict`."""

        def num(x: Any) -> float:
            return float("nan") if x is None else float(x)

        rows = tuple(
            FitRow(
                k=int(r["k"]),
                silhouette=num(r["silhouette"]),
                calinski_harabasz=num(r["calinski_harabasz"]),
                davies_bouldin=num(r["davies_bouldin"]),
                smallest_share=num(r["smallest_share"]),
            )
            for r in data["rows"]
        )
        return cls(
            rows=rows,
            chosen_k=int(data["chosen_k"]),
            warnings=tuple(str(w) for w in data["warnings"]),
            n_people=int(data["n_people"]),
            n_sample=int(data["n_sample"]),
            n_imputed=int(data["n_imputed"]),
            tie_tolerance=float(data["tie_tolerance"]),
        )


def format_fit_report(report: FitReport) -> str:
    """The fit report as a plain-text table, chosen k marked with ``*``, then notes and warnings."""

    def fmt(x: float, spec: str) -> str:
        return "n/a" if not math.isfinite(x) else format(x, spec)

    lines = [
        f"Choosing the number of cohorts: silhouette on a random sample of {report.n_sample:,} "
        f"of {report.n_people:,} people; the smallest k within {report.tie_tolerance:g} of the best silhouette is chosen.",
        "",
        f"  {'k':>3}  {'silhouette':>10}  {'Calinski-Harabasz':>17}  {'Davies-Bouldin':>14}  {'smallest cohort':>15}",
    ]
    for r in report.rows:
        mark = "*" if r.k == report.chosen_k else " "
        share = "n/a" if not math.isfinite(r.smallest_share) else f"{100 * r.smallest_share:.1f}%"
        lines.append(
            f"{mark} {r.k:>3}  {fmt(r.silhouette, '.3f'):>10}  {fmt(r.calinski_harabasz, '.1f'):>17}  "
            f"{fmt(r.davies_bouldin, '.3f'):>14}  {share:>15}"
        )
    lines += ["", f"Chosen: k = {report.chosen_k}."]
    if report.n_imputed:
        lines.append(
            f"{report.n_imputed:,} missing domain score(s) were placed at the domain mean for clustering only; "
            "the scores themselves are unchanged."
        )
    if report.warnings:
        lines += ["", "Warnings:"] + [f"  - {w}" for w in report.warnings]
    return "\n".join(lines)


# --------------------------------------------------------------------------- k range


_K_RANGE = re.compile(r"\s*(\d+)\s*(?:(?:-|–|\.\.)\s*(\d+)\s*)?")


def parse_k_range(text: str) -> tuple[int, int]:
    """Parse ``"2-8"`` → ``(2, 8)`` or ``"4"`` → ``(4, 4)``; raise UsageError for anything else."""
    how = "Write it as FROM-TO with 2 ≤ FROM ≤ TO, e.g. '2-8', or one number such as '4'."
    m = _K_RANGE.fullmatch(str(text))
    if not m:
        raise UsageError(f"The k range {text!r} is not valid. {how}")
    lo = int(m.group(1))
    hi = int(m.group(2)) if m.group(2) is not None else lo
    if lo > hi:
        raise UsageError(f"The k range {text!r} is not valid: {lo} is larger than {hi}. {how}")
    if lo < 2:
        raise UsageError(f"The k range {text!r} is not valid: k must be at least 2 (one cohort is no grouping). {how}")
    return lo, hi


def _check_k_range(k_range: Any) -> tuple[int, int]:
    """Validate a ``k_range`` parameter (a pair of ints, 2 ≤ lo ≤ hi)."""
    try:
        lo, hi = (int(k) for k in k_range)
        ok = lo == k_range[0] and hi == k_range[1]
    except (TypeError, ValueError):
        ok = False
    if not ok or not 2 <= lo <= hi:
        raise UsageError(f"k_range must be a pair (FROM, TO) of whole numbers with 2 ≤ FROM ≤ TO, e.g. (2, 8). Got {k_range!r}.")
    return lo, hi


# --------------------------------------------------------------------------- estimator


class CohortModel(ClusterMixin, BaseEstimator):
    """k-means cohorts of standardised domain-score profiles, with k chosen by silhouette.

    Parameters
    ----------
    k_range : (int, int)
        Smallest and largest number of cohorts to try (inclusive).
    random_state : int, RandomState or None
        Seed for the sample and the k-means starts. Same data + seed → same cohorts.
    sample_size : int
        People sampled (seeded) for fitting the candidate k-means and for the silhouette.
    tie_tolerance : float
        A smaller k is preferred when its silhouette is within this of the best.
    min_share : float
        A cohort with a smaller share of everybody is reported as a warning.
    n_init : int
        k-means++ starts per k (the best inertia is kept).

    Fitted attributes: ``mean_``, ``scale_`` (standardisation), ``cluster_centers_``
    (standardised, row i is cohort ``C{i+1}``), ``n_clusters_``, ``cohort_ids_``,
    ``labels_``, ``n_imputed_``, ``fit_report_``, ``n_features_in_`` (and
    ``feature_names_in_`` for a DataFrame).
    """

    def __init__(
        self,
        k_range: tuple[int, int] = (2, 8),
        random_state: int | np.random.RandomState | None = 0,
        sample_size: int = 5000,
        tie_tolerance: float = 0.01,
        min_share: float = 0.05,
        n_init: int = 4,
    ) -> None:
        self.k_range = k_range
        self.random_state = random_state
        self.sample_size = sample_size
        self.tie_tolerance = tie_tolerance
        self.min_share = min_share
        self.n_init = n_init

    def __sklearn_tags__(self):  # noqa: D105 - scikit-learn protocol
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    # ---------------------------------------------------------------- fit

    def fit(self, X: Any, y: Any = None) -> "CohortModel":
        """Standardise, try every k in ``k_range``, keep the chosen one. Raises DataError for unusable data."""
        k_min, k_max = _check_k_range(self.k_range)
        self._check_params()
        X = validate_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan")
        with _one_thread():
            return self._fit(X, k_min, k_max)

    def _fit(self, X: np.ndarray, k_min: int, k_max: int) -> "CohortModel":
        n, d = X.shape
        names = _column_names(self, d)

        missing = np.isnan(X)
        empty = np.flatnonzero(missing.all(axis=0))
        if len(empty):
            listed = ", ".join(names[j] for j in empty)
            raise DataError(
                f"Cannot form cohorts: {listed} {'has' if len(empty) == 1 else 'have'} no scores at all "
                "(every person's score is missing). "
                "Cohorts compare people across all domains, so every domain needs some scores. "
                "Check that the survey contains the domain's items, or remove the domain from the programme."
            )
        if n < k_min:
            raise DataError(
                f"Cannot form cohorts: there {'is 1 person' if n == 1 else f'are {n} people'}, fewer than the "
                f"smallest number of cohorts tried "
                f"(k = {k_min}). Include more people, or lower the k range"
                + (f" (e.g. '2-{n}')." if n >= 2 else "; at least 2 people are needed.")
            )
        mean = np.nanmean(X, axis=0)
        scale = np.nanstd(X, axis=0)
        if not (scale > 0).any():
            raise DataError(
                f"Cannot form cohorts: all {n} people have the same domain-score profile, so nothing tells cohorts "
                "apart. Check that the right score columns were read and that the answers vary."
            )
        scale = np.where(scale > 0, scale, 1.0)
        Z = _standardise(X, mean, scale)

        rng = check_random_state(self.random_state)
        m = min(n, int(self.sample_size))
        idx = np.sort(rng.choice(n, size=m, replace=False)) if m < n else np.arange(n)
        S = Z[idx]
        seed = int(rng.randint(np.iinfo(np.int32).max))
        n_distinct = len(np.unique(S, axis=0))
        ks = [k for k in range(k_min, k_max + 1) if k <= n_distinct]
        if not ks:
            raise DataError(
                f"Cannot form cohorts: only {n_distinct} different score profiles among {m} people, fewer than the "
                f"smallest number of cohorts tried (k = {k_min}). Lower the k range or include more people."
            )
        notes: list[str] = []
        if ks[-1] < k_max:
            notes.append(
                f"k above {ks[-1]} was not tried: only {n_distinct} different score profiles in the sample."
            )

        centres_by_k: dict[int, np.ndarray] = {}
        sample_labels: list[np.ndarray] = []
        for k in ks:
            km = KMeans(n_clusters=k, n_init=int(self.n_init), random_state=seed).fit(S)
            centres_by_k[k] = km.cluster_centers_
            sample_labels.append(_nearest(S, km.cluster_centers_))
        silhouettes = silhouette_scores(S, sample_labels)

        rows = []
        for k, labels_s, sil in zip(ks, sample_labels, silhouettes):
            labels_all = labels_s if m == n else _nearest(Z, centres_by_k[k])
            rows.append(
                FitRow(
                    k=k,
                    silhouette=float(sil),
                    calinski_harabasz=_safe_index(calinski_harabasz_score, S, labels_s),
                    davies_bouldin=_safe_index(davies_bouldin_score, S, labels_s),
                    smallest_share=float(np.bincount(labels_all, minlength=k).min() / n),
                )
            )
        chosen = _choose_k(rows, float(self.tie_tolerance))

        centres = centres_by_k[chosen]
        if m < n:  # refine on everybody, starting from the sample's centres
            centres = KMeans(n_clusters=chosen, init=centres, n_init=1, random_state=seed).fit(Z).cluster_centers_
        centres = centres[_level_order(centres)]
        labels = _nearest(Z, centres)
        sizes = np.bincount(labels, minlength=chosen)
        rows = [replace(r, smallest_share=float(sizes.min() / n)) if r.k == chosen else r for r in rows]

        self.mean_ = mean
        self.scale_ = scale
        self.cluster_centers_ = centres
        self.n_clusters_ = chosen
        self.cohort_ids_ = np.array([f"C{i + 1}" for i in range(chosen)], dtype=object)
        self.labels_ = labels
        self.n_imputed_ = int(missing.sum())
        self.fit_report_ = FitReport(
            rows=tuple(rows),
            chosen_k=chosen,
            warnings=tuple(notes + _fit_warnings(chosen, (k_min, k_max), sizes, n, float(self.min_share))),
            n_people=n,
            n_sample=m,
            n_imputed=self.n_imputed_,
            tie_tolerance=float(self.tie_tolerance),
        )
        return self

    def _check_params(self) -> None:
        if isinstance(self.sample_size, bool) or not isinstance(self.sample_size, (int, np.integer)) or self.sample_size < 2:
            raise UsageError(f"sample_size must be a whole number of at least 2. Got {self.sample_size!r}.")
        if isinstance(self.n_init, bool) or not isinstance(self.n_init, (int, np.integer)) or self.n_init < 1:
            raise UsageError(f"n_init must be a whole number of at least 1. Got {self.n_init!r}.")
        for name in ("tie_tolerance", "min_share"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not 0 <= value < 1:
                raise UsageError(f"{name} must be a number at least 0 and below 1. Got {value!r}.")

    # ---------------------------------------------------------------- predict

    def predict(self, X: Any) -> np.ndarray:
        """Index (0 = C1) of the nearest cohort centre for each row; missing scores count as the domain mean."""
        check_is_fitted(self, "cluster_centers_")
        X = validate_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan", reset=False)
        with _one_thread():
            return _nearest(X, self.cluster_centers_, mean=self.mean_, scale=self.scale_)

    def predict_cohort(self, X: Any) -> np.ndarray:
        """Cohort id (``"C1"``…) of each row, as an object array of str."""
        return self.cohort_ids_[self.predict(X)]

    def describe(self, domain_names: Sequence[str]) -> list[str]:
        """A readable description of each cohort (C1 first) from its standardised centre."""
        check_is_fitted(self, "cluster_centers_")
        if len(domain_names) != self.cluster_centers_.shape[1]:
            raise UsageError(
                f"describe() needs one name per domain ({self.cluster_centers_.shape[1]}); got {len(domain_names)}."
            )
        return [describe_profile(c, domain_names) for c in self.cluster_centers_]


def _column_names(model: CohortModel, d: int) -> list[str]:
    """How to name each input column in messages: the DataFrame column, else 'column N'."""
    names = getattr(model, "feature_names_in_", None)
    if names is None:
        return [f"column {j + 1}" for j in range(d)]
    out = []
    for name in names:
        name = str(name)
        out.append(f"domain {name[6:]!r} (column {name!r})" if name.startswith("score_") else f"column {name!r}")
    return out


def _standardise(X: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """(X − mean) / scale as a new array, missing → 0 (the domain mean)."""
    Z = (X - mean) / scale
    Z[np.isnan(Z)] = 0.0
    return Z


def _nearest(
    X: np.ndarray,
    centres: np.ndarray,
    *,
    mean: np.ndarray | None = None,
    scale: np.ndarray | None = None,
) -> np.ndarray:
    """Index of the nearest centre per row (ties → lowest index), in row blocks.

    With ``mean``/``scale`` the rows are raw scores and are standardised block by
    block. ‖z − c‖² = ‖z‖² − 2 z·c + ‖c‖², and ‖z‖² does not change the argmin.
    """
    n = len(X)
    out = np.empty(n, dtype=np.intp)
    cc = np.einsum("ij,ij->i", centres, centres)
    ct = np.ascontiguousarray(centres.T)
    for start in range(0, n, _PREDICT_CHUNK):
        block = X[start : start + _PREDICT_CHUNK]
        if mean is not None:
            block = _standardise(block, mean, scale)
        d2 = block @ ct
        d2 *= -2.0
        d2 += cc
        out[start : start + len(block)] = d2.argmin(axis=1)
    return out


def silhouette_scores(S: np.ndarray, label_sets: Sequence[np.ndarray]) -> np.ndarray:
    """Mean silhouette (Euclidean) of several labelings of the same points, sharing one distance pass.

    Same definition as :func:`sklearn.metrics.silhouette_score` (a point alone in
    its cluster scores 0), but the distance matrix is built once, in blocks, and
    multiplied by the one-hot labels of every k at once. NaN when a labeling has
    fewer than 2 clusters.
    """
    m = len(S)
    sizes = [int(lab.max()) + 1 for lab in label_sets]
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    H = np.zeros((m, int(offsets[-1])))
    rows = np.arange(m)
    for i, lab in enumerate(label_sets):
        H[rows, offsets[i] + lab] = 1.0
    counts = H.sum(axis=0)
    sq = np.einsum("ij,ij->i", S, S)
    totals = np.zeros(len(label_sets))
    step = max(1, _SILHOUETTE_BLOCK // max(m, 1))
    for start in range(0, m, step):
        stop = min(m, start + step)
        D = S[start:stop] @ S.T
        D *= -2.0
        D += sq[start:stop, None]
        D += sq[None, :]
        np.maximum(D, 0.0, out=D)
        np.sqrt(D, out=D)
        local = np.arange(stop - start)
        D[local, start + local] = 0.0
        sums = D @ H  # block × (all clusters of all labelings)
        for i, lab in enumerate(label_sets):
            part = sums[:, offsets[i] : offsets[i + 1]]
            n_k = counts[offsets[i] : offsets[i + 1]]
            own = lab[start:stop]
            n_own = n_k[own]
            a = part[local, own] / np.maximum(n_own - 1, 1)
            with np.errstate(divide="ignore", invalid="ignore"):
                other = part / n_k
            other[:, n_k == 0] = np.inf
            other[local, own] = np.inf
            b = other.min(axis=1)
            with np.errstate(divide="ignore", invalid="ignore"):
                s = (b - a) / np.maximum(a, b)
            s[(n_own <= 1) | ~np.isfinite(s)] = 0.0
            totals[i] += s.sum()
    result = totals / m
    for i, lab in enumerate(label_sets):
        if len(np.unique(lab)) < 2:
            result[i] = np.nan
    return result


def _safe_index(index: Any, S: np.ndarray, labels: np.ndarray) -> float:
    """A scikit-learn cluster index, NaN where it is undefined (1 cluster, or one point per cluster)."""
    n_labels = len(np.unique(labels))
    if not 2 <= n_labels < len(S):
        return float("nan")
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(index(S, labels))


def _choose_k(rows: Sequence[FitRow], tolerance: float) -> int:
    """The smallest k whose silhouette is within ``tolerance`` of the best (the smallest k if none is defined)."""
    sil = np.array([r.silhouette for r in rows])
    if not np.isfinite(sil).any():
        return rows[0].k
    best = np.nanmax(sil)
    for r in rows:
        if math.isfinite(r.silhouette) and r.silhouette >= best - tolerance - 1e-12:
            return r.k
    return rows[0].k  # unreachable: the best row itself qualifies


def _level_order(centres: np.ndarray) -> np.ndarray:
    """Centre order C1..Ck: overall level ascending, then domain values ascending (rounded, so noise cannot flip it)."""
    rounded = np.round(centres, 9)
    level = np.round(centres.mean(axis=1), 9)
    keys = [rounded[:, j] for j in reversed(range(centres.shape[1]))] + [level]
    return np.lexsort(keys)


def _fit_warnings(chosen: int, k_range: tuple[int, int], sizes: np.ndarray, n: int, min_share: float) -> list[str]:
    """Warnings for the user: chosen k at the edge of the range; cohorts below ``min_share``."""
    lo, hi = k_range
    out = []
    if hi > lo and chosen == hi:
        out.append(
            f"The chosen k = {chosen} is the largest k tried ({lo}-{hi}); more cohorts might fit better. "
            f"Try a wider range, e.g. {lo}-{hi + 3}."
        )
    elif hi > lo and chosen == lo:
        if lo == 2:
            out.append(
                f"The chosen k = 2 is the smallest k tried ({lo}-{hi}); the data may have no clear cohort "
                "structure. Check the silhouette values before relying on the cohorts."
            )
        else:
            out.append(
                f"The chosen k = {chosen} is the smallest k tried ({lo}-{hi}); fewer cohorts might fit better. "
                f"Try a wider range, e.g. {max(2, lo - 3)}-{hi}."
            )
    for i, size in enumerate(sizes):
        share = size / n
        if share < min_share:
            out.append(
                f"Cohort C{i + 1} has {size} people ({100 * share:.1f}%), below the minimum share of "
                f"{100 * min_share:g}%. Consider a smaller k, or plan this cohort's training individually."
            )
    return out


# --------------------------------------------------------------------------- descriptions


def _display(name: str) -> str:
    """A domain name for use mid-sentence: 'Remote care' → 'remote care', 'ICT basics' stays."""
    if len(name) >= 2 and name[0].isupper() and name[1].islower():
        return name[0].lower() + name[1:]
    return name


def _join(names: Sequence[str]) -> str:
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def describe_profile(z: Sequence[float], domain_names: Sequence[str], threshold: float = STRONG_Z) -> str:
    """Describe one standardised profile: strengths (z ≥ threshold) and gaps (z ≤ −threshold), in domain order."""
    z = np.asarray(z, dtype=np.float64)
    names = [_display(str(nm)) for nm in domain_names]
    strong = [nm for nm, v in zip(names, z) if v >= threshold]
    gaps = [nm for nm, v in zip(names, z) if v <= -threshold]
    parts = []
    if strong:
        parts.append("strong across all domains" if len(strong) == len(names) > 1 else "strong " + _join(strong))
    if gaps:
        parts.append("gaps across all domains" if len(gaps) == len(names) > 1 else "gaps in " + _join(gaps))
    return "; ".join(parts) if parts else "close to average across domains"


def _as_float_array(X: Any) -> np.ndarray:
    if isinstance(X, pd.DataFrame):
        return X.to_numpy(dtype=np.float64, na_value=np.nan)
    return np.asarray(X, dtype=np.float64)


def cohort_table(model: CohortModel, X: Any, domain_names: Sequence[str]) -> pd.DataFrame:
    """One row per cohort: ``cohort``, ``size``, ``share``, the mean score per domain (columns named by
    ``domain_names``; missing scores left out of the mean) and ``description``."""
    labels = model.predict(X)
    values = _as_float_array(X)
    k = model.n_clusters_
    n = len(labels)
    sizes = np.bincount(labels, minlength=k)
    table: dict[str, Any] = {
        "cohort": model.cohort_ids_.astype(str),
        "size": sizes.astype(np.int64),
        "share": sizes / n if n else np.full(k, np.nan),
    }
    for j, name in enumerate(domain_names):
        col = values[:, j]
        ok = ~np.isnan(col)
        sums = np.bincount(labels[ok], weights=col[ok], minlength=k)
        counts = np.bincount(labels[ok], minlength=k)
        with np.errstate(divide="ignore", invalid="ignore"):
            table[str(name)] = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    table["description"] = model.describe(domain_names)
    return pd.DataFrame(table)


# --------------------------------------------------------------------------- training groups


def _cohort_key(label: str) -> tuple[str, int, str]:
    """Natural order for cohort ids: C2 before C10."""
    m = re.fullmatch(r"(.*?)(\d+)", label)
    return (m.group(1), int(m.group(2)), label) if m else (label, -1, label)


def _site_text(site: str) -> str:
    return site if site else "(no site)"


def make_groups(
    cohorts: pd.Series,
    sites: pd.Series,
    min_size: int = 6,
    max_size: int = 14,
) -> tuple[pd.Series, pd.DataFrame, list[str]]:
    """Split each cohort into training groups of ``min_size``–``max_size`` people, keeping sites together.

    Within a cohort, a site with at least ``min_size`` people gets its own groups:
    ``ceil(n / max_size)`` groups of near-equal size. People of smaller sites are
    pooled (ordered by site) into mixed-site groups of near-equal size, with cuts
    moved to a site boundary when that keeps every group within the bounds. If
    fewer than ``min_size`` such people are left over, they join the cohort's
    smallest groups that have room; a cohort smaller than ``min_size`` becomes one
    undersized group. Undersized or otherwise out-of-bounds groups are listed in
    the problems, never hidden.

    Returns the group id of each person (``"C2-G03"``, same index as ``cohorts``),
    a table of groups (``group``, ``cohort``, ``site`` — the site, or
    ``"mixed: A, B"`` —, ``members``, ``undersized``) and the problems as text.
    Groups are numbered within a cohort by their first member in (site, input) order.
    """
    if isinstance(min_size, bool) or isinstance(max_size, bool) or not (1 <= int(min_size) <= int(max_size)):
        raise UsageError(f"Group sizes need 1 ≤ min_size ≤ max_size. Got min_size={min_size!r}, max_size={max_size!r}.")
    if len(cohorts) != len(sites):
        raise UsageError(f"cohorts and sites must have one entry per person; got {len(cohorts)} and {len(sites)}.")
    lo, hi = int(min_size), int(max_size)
    n = len(cohorts)
    group_cols = ["group", "cohort", "site", "members", "undersized"]
    if n == 0:
        empty = pd.DataFrame({c: pd.Series(dtype=object if c in ("group", "cohort", "site") else "int64") for c in group_cols})
        empty["undersized"] = empty["undersized"].astype(bool)
        return pd.Series([], index=cohorts.index, dtype=object, name="group"), empty, []

    raw_codes, raw_names = pd.factorize(cohorts)
    if (raw_codes < 0).any():
        raise UsageError(f"Every person needs a cohort to be grouped; {int((raw_codes < 0).sum())} have none.")
    cohort_names = sorted((str(c) for c in raw_names), key=_cohort_key)
    rank_of = {name: i for i, name in enumerate(cohort_names)}
    c_codes = np.array([rank_of[str(c)] for c in raw_names], dtype=np.int64)[raw_codes]
    s_codes, site_index = pd.factorize(sites.fillna("") if sites.hasnans else sites, sort=True)
    site_names = np.asarray(site_index.astype(str).to_numpy(dtype=object), dtype=object)
    n_sites = len(site_names)

    order = np.lexsort((np.arange(n), s_codes, c_codes))  # people in (cohort, site, input) order
    cs = c_codes[order]
    ss = s_codes[order].astype(np.int64)
    pair = cs * n_sites + ss
    new_pair = np.r_[True, pair[1:] != pair[:-1]]
    pair_start = np.flatnonzero(new_pair)
    pair_len = np.diff(np.r_[pair_start, n])
    pair_id = np.cumsum(new_pair) - 1
    rank = np.arange(n) - pair_start[pair_id]
    pair_cohort = cs[pair_start]
    pair_site = ss[pair_start]

    problems: list[str] = []
    gkey = np.full(n, -1, dtype=np.int64)
    # group-level facts, appended as groups are made
    g_cohort: list[np.ndarray] = []

    # 1. sites big enough for their own groups
    big = pair_len >= lo
    big_ids = np.flatnonzero(big)
    n_groups = np.ceil(pair_len[big_ids] / hi).astype(np.int64)
    first_key = np.r_[0, np.cumsum(n_groups)[:-1]]
    pair_groups = np.zeros(len(pair_len), dtype=np.int64)
    pair_first = np.zeros(len(pair_len), dtype=np.int64)
    pair_groups[big_ids] = n_groups
    pair_first[big_ids] = first_key
    in_big = big[pair_id]
    pg = pair_groups[pair_id[in_big]]
    gkey[in_big] = pair_first[pair_id[in_big]] + rank[in_big] * pg // pair_len[pair_id[in_big]]
    next_key = int(n_groups.sum())
    big_group_cohort = np.repeat(pair_cohort[big_ids], n_groups)
    g_cohort.append(big_group_cohort)
    tight = big_ids[n_groups * lo > pair_len[big_ids]]
    for p in tight[:5]:
        problems.append(
            f"Cohort {cohort_names[pair_cohort[p]]}, site {_site_text(site_names[pair_site[p]])!r}: {pair_len[p]} people "
            f"cannot be split into groups of {lo}–{hi}; made {pair_groups[p]} groups below {lo}."
        )
    if len(tight) > 5:
        problems.append(f"… and {len(tight) - 5} more sites with the same problem.")

    # 2. small sites: pool per cohort
    cohort_bounds = np.searchsorted(cs, np.arange(len(cohort_names) + 1))
    sizes_so_far = np.bincount(gkey[gkey >= 0], minlength=next_key)
    group_size: list[int] = sizes_so_far.tolist()
    for c, name in enumerate(cohort_names):
        a, b = cohort_bounds[c], cohort_bounds[c + 1]
        pool = a + np.flatnonzero(gkey[a:b] < 0)
        P = len(pool)
        if P == 0:
            continue
        if P >= lo:
            g = math.ceil(P / hi)
            cuts = _snap_cuts(ss[pool], P, g, lo, hi)
            idx_in_pool = np.searchsorted(cuts, np.arange(P), side="right")
            gkey[pool] = next_key + idx_in_pool
            new_sizes = np.diff(np.r_[0, cuts, P])
            group_size += new_sizes.tolist()
            g_cohort.append(np.full(g, c))
            if g * lo > P:
                problems.append(
                    f"Cohort {name}: {P} people from small sites cannot be split into groups of {lo}–{hi}; "
                    f"made {g} mixed-site groups below {lo}."
                )
            next_key += g
            continue
        cohort_keys = np.flatnonzero(big_group_cohort == c).tolist()  # only site groups exist in this cohort
        if not cohort_keys:
            gkey[pool] = next_key
            group_size.append(P)
            g_cohort.append(np.array([c]))
            next_key += 1
            problems.append(
                f"Cohort {name} has {P} {'person' if P == 1 else 'people'}, fewer than the minimum group size {lo}: "
                "they form one undersized group. Consider training them with a neighbouring cohort or individually."
            )
            continue
        # fewer than lo left over: seat them in the cohort's groups with room, a site at a time where possible
        leftover_sites = ss[pool]
        starts = np.flatnonzero(np.r_[True, leftover_sites[1:] != leftover_sites[:-1]])
        ends = np.r_[starts[1:], P]
        unseated: list[int] = []
        for s0, s1 in zip(starts, ends):
            people = pool[s0:s1]
            fits = [g for g in cohort_keys if group_size[g] + len(people) <= hi]
            if fits:
                target = min(fits, key=lambda g: (group_size[g], g))
                gkey[people] = target
                group_size[target] += len(people)
                continue
            for person in people:
                room = [g for g in cohort_keys if group_size[g] < hi]
                if not room:
                    unseated.append(int(person))
                    continue
                target = min(room, key=lambda g: (group_size[g], g))
                gkey[person] = target
                group_size[target] += 1
        if unseated:
            gkey[unseated] = next_key
            group_size.append(len(unseated))
            g_cohort.append(np.array([c]))
            next_key += 1
            problems.append(
                f"Cohort {name}: {len(unseated)} people from small sites did not fit into the cohort's full groups "
                f"(at most {hi}); they form one undersized group."
            )

    group_cohort = np.concatenate(g_cohort) if g_cohort else np.zeros(0, np.int64)
    sizes = np.bincount(gkey, minlength=next_key)
    by_group = np.argsort(gkey, kind="stable")  # positions ascending within each group
    group_start = np.searchsorted(gkey[by_group], np.arange(next_key))
    first_pos = by_group[group_start]
    # number groups within cohort by first member in (cohort, site, input) order
    g_order = np.argsort(first_pos, kind="stable")
    ordered_cohort = group_cohort[g_order]
    block_start = np.searchsorted(ordered_cohort, ordered_cohort, side="left")
    number = np.empty(next_key, dtype=np.int64)
    number[g_order] = np.arange(next_key) - block_start + 1
    width = max(2, len(str(int(number.max()))))
    group_ids = np.array(
        [f"{cohort_names[c]}-G{k:0{width}d}" for c, k in zip(group_cohort.tolist(), number.tolist())], dtype=object
    )

    # site label per group
    # sites are ascending within a group in this order, so distinct (group, site) pairs are where either changes
    pg, ps = gkey[by_group], ss[by_group]
    change = np.r_[True, (pg[1:] != pg[:-1]) | (ps[1:] != ps[:-1])]
    gs_group, gs_site = pg[change], ps[change]
    n_site_in_group = np.bincount(gs_group, minlength=next_key)
    first_site_idx = np.searchsorted(gs_group, np.arange(next_key))
    site_label = np.empty(next_key, dtype=object)
    single = n_site_in_group == 1
    site_label[single] = site_names[gs_site[first_site_idx[single]]]
    texts = [_site_text(str(x)) for x in site_names]
    flat = gs_site.tolist()
    for g in np.flatnonzero(~single).tolist():
        a = int(first_site_idx[g])
        site_label[g] = "mixed: " + ", ".join(map(texts.__getitem__, flat[a : a + int(n_site_in_group[g])]))

    result = np.empty(n, dtype=object)
    result[order] = group_ids[gkey]
    groups = pd.DataFrame(
        {
            "group": group_ids[g_order],
            "cohort": np.asarray(cohort_names, dtype=object)[group_cohort[g_order]],
            "site": site_label[g_order],
            "members": sizes[g_order].astype(np.int64),
            "undersized": sizes[g_order] < lo,
        }
    )
    return pd.Series(result, index=cohorts.index, name="group"), groups, problems


def _snap_cuts(pool_sites: np.ndarray, P: int, g: int, lo: int, hi: int) -> np.ndarray:
    """Cut positions (g − 1, ascending) splitting a pool of P people (ordered by site) into g groups.

    Cut by cut, the target is an equal share of the people still to place; the
    cut moves to the nearest site boundary that keeps this group and all the
    remaining ones within [lo, hi], so sites stay together where the bounds
    allow. When the bounds cannot all be met, the groups are near-equal.
    """
    if g <= 1:
        return np.zeros(0, dtype=np.int64)
    if g * lo > P:
        return -(-np.arange(1, g) * P // g)  # ceil(j * P / g): near-equal
    boundaries = (np.flatnonzero(pool_sites[1:] != pool_sites[:-1]) + 1).tolist()
    cuts = []
    prev = 0
    for left in range(g - 1, 0, -1):  # groups still to make after this cut
        target = prev + round((P - prev) / (left + 1))
        low = max(prev + lo, P - left * hi)
        high = min(prev + hi, P - left * lo)
        i = bisect.bisect_left(boundaries, low)
        j = bisect.bisect_right(boundaries, high)
        if i < j:
            k = bisect.bisect_left(boundaries, target, i, j)
            below, above = boundaries[max(i, k - 1)], boundaries[min(j - 1, k)]
            cut = below if target - below <= above - target else above
        else:
            cut = min(max(target, low), high)
        cuts.append(cut)
        prev = cut
    return np.asarray(cuts, dtype=np.int64)
