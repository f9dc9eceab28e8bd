"""Fitting cohorts: :class:`CohortModel`, a scikit-learn estimator over standardised domain scores.

The fit is its own concern: :mod:`trainmatch.cohorts` holds the fitted centres
that assign people, the fit report and the training groups, and never needs
scikit-learn.

Method:

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
* **Stability.** At the chosen k, k-means is refitted on ``n_bootstrap``
  seeded bootstrap resamples of the sample; each refit labels the whole sample
  and is compared with the fit by the adjusted Rand index. The mean is the
  fit report's ``stability_ari`` (1 = the same cohorts every time). Being on
  the sample, it costs the same at a million people as at five thousand.
* **Labels.** Cohorts are numbered ``C1..Ck`` by overall level (mean of the
  standardised centre, ascending), so C1 needs the most support; equal levels
  are ordered by the centre's domain values. Same data and seed → same labels.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any, Sequence

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.cluster import KMeans
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from .cohorts import CohortCentres, FitReport, FitRow, check_k_range, nearest, no_natural_groups_message, one_thread, standardise
from .errors import DataError, UsageError

_SILHOUETTE_BLOCK = 2_000_000  # distance-matrix cells per block in the silhouette


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
        n_bootstrap: int = 10,
    ) -> None:
        self.k_range = k_range
        self.random_state = random_state
        self.sample_size = sample_size
        self.tie_tolerance = tie_tolerance
        self.min_share = min_share
        self.n_init = n_init
        self.n_bootstrap = n_bootstrap

    def __sklearn_tags__(self):  # noqa: D105 - scikit-learn protocol
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    # ---------------------------------------------------------------- fit

    def fit(self, X: Any, y: Any = None) -> "CohortModel":
        """Standardise, try every k in ``k_range``, keep the chosen one. Raises DataError for unusable data."""
        k_min, k_max = check_k_range(self.k_range)
        self._check_params()
        X = validate_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan")
        with one_thread():
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
        Z = standardise(X, mean, scale)

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
            sample_labels.append(nearest(S, km.cluster_centers_))
        silhouettes = silhouette_scores(S, sample_labels)

        rows = []
        for k, labels_s, sil in zip(ks, sample_labels, silhouettes):
            labels_all = labels_s if m == n else nearest(Z, centres_by_k[k])
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
        stability = _stability(S, sample_labels[ks.index(chosen)], chosen, int(self.n_bootstrap), int(self.n_init), seed)

        centres = centres_by_k[chosen]
        if m < n:  # refine on everybody, starting from the sample's centres
            centres = KMeans(n_clusters=chosen, init=centres, n_init=1, random_state=seed).fit(Z).cluster_centers_
        centres = centres[_level_order(centres)]
        labels = nearest(Z, centres)
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
            stability_ari=stability,
            n_bootstrap=int(self.n_bootstrap),
        )
        plain = no_natural_groups_message(self.fit_report_)
        if plain:  # said first: it changes how every other number is read
            self.fit_report_ = replace(self.fit_report_, warnings=(plain, *self.fit_report_.warnings))
        # The fitted part on its own: predict() and describe() go through it, and it is what is saved.
        self.centres_ = CohortCentres(
            mean=mean,
            scale=scale,
            centres=centres,
            cohort_ids=list(self.cohort_ids_),
            fit_report=self.fit_report_,
            params=self.get_params(),
            shares=(sizes / n).tolist(),
            feature_names=getattr(self, "feature_names_in_", None),
        )
        return self

    def _check_params(self) -> None:
        if isinstance(self.n_bootstrap, bool) or not isinstance(self.n_bootstrap, (int, np.integer)) or self.n_bootstrap < 0:
            raise UsageError(f"n_bootstrap must be a whole number of at least 0. Got {self.n_bootstrap!r}.")
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
        return self.centres_.predict(X)

    def predict_cohort(self, X: Any) -> np.ndarray:
        """Cohort id (``"C1"``…) of each row, as an object array of str."""
        return self.cohort_ids_[self.predict(X)]

    def describe(self, domain_names: Sequence[str]) -> list[str]:
        """A readable description of each cohort (C1 first) from its standardised centre."""
        check_is_fitted(self, "cluster_centers_")
        return self.centres_.describe(domain_names)

    def centres(self) -> CohortCentres:
        """The fitted cohorts without the estimator (for predicting and saving without scikit-learn)."""
        check_is_fitted(self, "cluster_centers_")
        return self.centres_


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
    step = max(1, _SILHOUETTE_BLOCK // max(m, 1))

    def block_totals(start: int) -> np.ndarray:
        """Sum of the silhouettes of rows start..start+step, per labeling."""
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
        out = np.zeros(len(label_sets))
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
            out[i] = s.sum()
        return out

    # Blocks two at a time (numpy releases the GIL in the products and the square roots); the
    # block sums are added in block order, so the result does not depend on the threads.
    with ThreadPoolExecutor(max_workers=2) as pool:
        totals = np.zeros(len(label_sets))
        for block in pool.map(block_totals, range(0, m, step)):
            totals += block
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


def _stability(S: np.ndarray, labels: np.ndarray, k: int, n_bootstrap: int, n_init: int, seed: int) -> float:
    """Mean adjusted Rand index between the fit's labels of the sample and those of k-means refitted on
    ``n_bootstrap`` bootstrap resamples of it (seeded); NaN when no refit is asked for."""
    from sklearn.metrics import adjusted_rand_score

    if n_bootstrap < 1:
        return float("nan")
    rng = np.random.default_rng(seed)
    m = len(S)
    scores = []
    for b in range(n_bootstrap):
        pick = rng.integers(0, m, size=m)
        refit = KMeans(n_clusters=k, n_init=n_init, random_state=seed + b + 1).fit(S[pick])
        scores.append(adjusted_rand_score(labels, nearest(S, refit.cluster_centers_)))
    return float(np.mean(scores))


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


def fit_centres(X: np.ndarray, *, k_range: tuple[int, int], seed: int) -> CohortCentres:
    """Fit :class:`CohortModel` on domain scores (people × domains) and keep its centres."""
    return CohortModel(k_range=k_range, random_state=seed).fit(X).centres()
