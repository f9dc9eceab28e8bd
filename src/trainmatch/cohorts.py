"""Cohorts: fitted cohort centres, their fit report and descriptions (training groups: :mod:`trainmatch.groups`).

This module does not import scikit-learn: the estimator that *fits* the
cohorts, :class:`trainmatch.kmeans.CohortModel`, lives in its own module
because importing scikit-learn (and SciPy with it) takes seconds. Everything
that *uses* fitted cohorts is here: :class:`CohortCentres` (predict,
describe; what a saved model loads as), :class:`FitReport`,
:func:`cohort_table`.

* **Labels.** Cohorts are numbered ``C1..Ck`` by overall level (mean of the
  standardised centre, ascending), so C1 needs the most support.
* **Prediction.** A person belongs to the nearest centre in standardised
  units; a missing domain score counts as the domain mean.
* **Descriptions.** A domain whose centre is at least :data:`STRONG_Z`
  standard deviations above the population mean is "above the average", at
  least that far below "below the average"; otherwise the cohort is "close to
  the average". A difference from other people is never called a gap: a gap
  is what a person's tasks require beyond their level.
* **Natural groups.** When the cohorts are unstable (mean ARI of bootstrap
  refits below :data:`MIN_STABILITY`) or the silhouette is below
  :data:`MIN_SILHOUETTE`, the survey shows no natural groups and the cohorts
  are bands along overall competence; the fit report says so.

Everything here is pure: no files, no printing.
"""

from __future__ import annotations

import math
import re
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ContextManager, Mapping, Sequence

import numpy as np
from threadpoolctl import ThreadpoolController

from .errors import UsageError

if TYPE_CHECKING:  # imported where tables are made
    import pandas as pd

STRONG_Z = 0.5
"""|standardised centre| at or above this puts a domain above (+) or below (−) the average."""
MIN_STABILITY = 0.75
"""Mean ARI of bootstrap refits below this: the cohorts are not stable groups."""
MIN_SILHOUETTE = 0.25
"""Silhouette below this: no substantial cluster structure (Kaufman & Rousseeuw's rule of thumb)."""

_PREDICT_CHUNK = 131_072  # rows per block in predict: bounds memory at a few MB per block


def one_thread() -> ContextManager[Any]:
    """Run OpenMP/BLAS single-threaded inside: the blocks here are small, and spinning OpenMP threads
    on a machine with a busy core slow k-means down many times over (benchmarks/README.md).
    One thread also makes k-means' sums, and so the centres, the same on every machine.

    The libraries are looked up anew each time (a few ms): a controller made before scikit-learn
    was imported would not know its OpenMP runtime and would leave k-means multi-threaded.
    """
    return ThreadpoolController().limit(limits=1)


# --------------------------------------------------------------------------- fit report


@dataclass(frozen=True)
class FitRow:
    """Fit indices of one k: silhouette (higher is better), Calinski-Harabasz (higher), Davies-Bouldin (lower)."""

    k: int
    silhouette: float
    calinski_harabasz: float
    davies_bouldin: float
    smallest_share: float  # share of everybody in the smallest cohort


def _num(x: float | None) -> float | None:
    """``x`` as a JSON number: None where it is missing or not finite."""
    return None if x is None or not math.isfinite(x) else float(x)


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
    stability_ari: float = float("nan")  # mean ARI of bootstrap refits at the chosen k against the fit (1 = same cohorts)
    n_bootstrap: int = 0

    @property
    def silhouette(self) -> float:
        """The silhouette of the chosen k."""
        return next((r.silhouette for r in self.rows if r.k == self.chosen_k), float("nan"))

    @property
    def no_natural_groups(self) -> bool:
        """The cohorts are bands along overall competence, not natural groups (unstable, or a low silhouette)."""
        return bool(self.stability_ari < MIN_STABILITY or self.silhouette < MIN_SILHOUETTE)

    def quality(self) -> dict[str, Any]:
        """How well the cohorts are grounded, as run.json records it: stability (mean ARI of bootstrap refits)
        and the silhouette of the chosen k, rounded (None where not known, e.g. a model saved before
        stability was measured), and whether the survey shows no natural groups."""
        rounded = lambda x: None if _num(x) is None else round(float(x), 4)  # noqa: E731
        return {"stability_ari": rounded(self.stability_ari), "silhouette": rounded(self.silhouette),
                "no_natural_groups": bool(self.no_natural_groups)}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (NaN becomes None)."""
        return {
            "rows": [
                {
                    "k": r.k,
                    "silhouette": _num(r.silhouette),
                    "calinski_harabasz": _num(r.calinski_harabasz),
                    "davies_bouldin": _num(r.davies_bouldin),
                    "smallest_share": _num(r.smallest_share),
                }
                for r in self.rows
            ],
            "chosen_k": self.chosen_k,
            "warnings": list(self.warnings),
            "n_people": self.n_people,
            "n_sample": self.n_sample,
            "n_imputed": self.n_imputed,
            "tie_tolerance": self.tie_tolerance,
            "stability_ari": _num(self.stability_ari),
            "n_bootstrap": self.n_bootstrap,
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
            stability_ari=num(data.get("stability_ari")),  # absent in models saved before stability was measured
            n_bootstrap=int(data.get("n_bootstrap", 0)),
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
    if report.n_bootstrap:
        lines.append(
            f"Stability: mean adjusted Rand index {fmt(report.stability_ari, '.2f')} over {report.n_bootstrap} bootstrap refits "
            f"on the sample (1 = the same cohorts every time; below {MIN_STABILITY:g} they are not stable); "
            f"silhouette {fmt(report.silhouette, '.3f')} (below {MIN_SILHOUETTE:g}: no substantial structure)."
        )
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
MAX_K = 30
"""The most cohorts trainmatch fits (and a saved model may hold): cohorts describe a handful of profiles
(studies of health professionals found 3–7), and the cost of a fit and of predicting grows with k."""


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
    if hi > MAX_K:
        raise UsageError(f"The k range {text!r} is not valid: trainmatch fits at most {MAX_K} cohorts. {how}")
    return lo, hi


def check_k_range(k_range: Any) -> tuple[int, int]:
    """Validate a ``k_range`` parameter (a pair of ints, 2 ≤ lo ≤ hi)."""
    try:
        lo, hi = (int(k) for k in k_range)
        ok = lo == k_range[0] and hi == k_range[1]
    except (TypeError, ValueError):
        ok = False
    if not ok or not 2 <= lo <= hi <= MAX_K:
        raise UsageError(f"k_range must be a pair (FROM, TO) of whole numbers with 2 ≤ FROM ≤ TO ≤ {MAX_K}, e.g. (2, 8). Got {k_range!r}.")
    return lo, hi


# --------------------------------------------------------------------------- fitted centres

class CohortCentres:
    """Fitted cohorts without scikit-learn: standardisation, centres, ids and the fit report.

    What :meth:`trainmatch.kmeans.CohortModel.centres` returns after a fit and
    what :func:`trainmatch.model_store.load_model` reads back; it predicts
    exactly like the estimator it came from. The attribute names follow
    scikit-learn's (``mean_``, ``scale_``, ``cluster_centers_`` in standardised
    units, row i is cohort ``cohort_ids_[i]``, ``n_clusters_``,
    ``n_features_in_``, ``feature_names_in_`` when fitted on a DataFrame).
    ``shares_`` is each cohort's share of the people it was fitted on (None
    when unknown) and ``params`` the estimator's settings. No person's data.
    """

    def __init__(
        self,
        *,
        mean: Any,
        scale: Any,
        centres: Any,
        cohort_ids: Sequence[str],
        fit_report: FitReport,
        params: Mapping[str, Any],
        shares: Sequence[float | None] | None = None,
        feature_names: Sequence[str] | None = None,
    ) -> None:
        self.mean_ = np.asarray(mean, dtype=np.float64)
        self.scale_ = np.asarray(scale, dtype=np.float64)
        self.cluster_centers_ = np.asarray(centres, dtype=np.float64)
        k, d = self.cluster_centers_.shape
        if self.mean_.shape != (d,) or self.scale_.shape != (d,) or len(cohort_ids) != k:
            raise ValueError(f"expected {k} cohort ids and {d} means and scales for {k} centres of {d} domains")
        self.n_clusters_ = k
        self.n_features_in_ = d
        self.cohort_ids_ = np.array([str(c) for c in cohort_ids], dtype=object)
        self.fit_report_ = fit_report
        self.n_imputed_ = fit_report.n_imputed
        self.params = _plain_params(params)
        self.shares_ = list(shares) if shares is not None else [None] * k
        if feature_names is not None:
            if len(feature_names) != d:
                raise ValueError(f"expected {d} feature names")
            self.feature_names_in_ = np.asarray([str(x) for x in feature_names], dtype=object)

    def predict(self, X: Any) -> np.ndarray:
        """Index (0 = C1) of the nearest cohort centre for each row; missing scores count as the domain mean."""
        names = getattr(self, "feature_names_in_", None)
        if _is_frame(X) and names is not None and list(X.columns) != list(names):
            raise UsageError(f"The cohorts were fitted on columns {', '.join(names)}; got {', '.join(map(str, X.columns))}.")
        values = _as_float_array(X)
        if values.ndim != 2 or values.shape[1] != self.n_features_in_:
            raise UsageError(f"Expected a table of {self.n_features_in_} domain scores per person; got shape {values.shape}.")
        with one_thread():
            return nearest(values, self.cluster_centers_, mean=self.mean_, scale=self.scale_)

    def predict_cohort(self, X: Any) -> np.ndarray:
        """Cohort id (``"C1"``…) of each row, as an object array of str."""
        return self.cohort_ids_[self.predict(X)]

    def describe(self, domain_names: Sequence[str]) -> list[str]:
        """A readable description of each cohort (C1 first) from its standardised centre."""
        return describe_centres(self.cluster_centers_, domain_names)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (floats round-trip exactly through JSON); inverse of :meth:`from_dict`."""
        names = getattr(self, "feature_names_in_", None)
        return {
            "mean": self.mean_.tolist(),
            "scale": self.scale_.tolist(),
            "centres": self.cluster_centers_.tolist(),
            "cohort_ids": [str(c) for c in self.cohort_ids_],
            "shares": self.shares_,
            "fit_report": self.fit_report_.to_dict(),
            "params": self.params_document(),
            "feature_names": None if names is None else [str(x) for x in names],
        }

    def params_document(self) -> dict[str, Any]:
        """:attr:`params` as JSON (``k_range`` a list)."""
        return {**self.params, "k_range": list(self.params["k_range"])}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "CohortCentres":
        return cls(
            mean=data["mean"],
            scale=data["scale"],
            centres=data["centres"],
            cohort_ids=data["cohort_ids"],
            fit_report=FitReport.from_dict(data["fit_report"]),
            params=data["params"],
            shares=data.get("shares"),
            feature_names=data.get("feature_names"),
        )


def _plain_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """The estimator's settings in plain types: ``k_range`` a pair of ints, ``random_state`` an int or None."""
    rs = params["random_state"]
    return {
        "k_range": tuple(int(k) for k in params["k_range"]),
        "random_state": int(rs) if isinstance(rs, (int, np.integer)) and not isinstance(rs, bool) else None,
        "sample_size": int(params["sample_size"]),
        "tie_tolerance": float(params["tie_tolerance"]),
        "min_share": float(params["min_share"]),
        "n_init": int(params["n_init"]),
    }


def describe_centres(centres: np.ndarray, domain_names: Sequence[str]) -> list[str]:
    """:func:`describe_profile` of each standardised centre (C1 first)."""
    if len(domain_names) != centres.shape[1]:
        raise UsageError(f"describe() needs one name per domain ({centres.shape[1]}); got {len(domain_names)}.")
    return [describe_profile(c, domain_names) for c in centres]


def standardise(X: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """(X − mean) / scale as a new array, missing → 0 (the domain mean)."""
    Z = (X - mean) / scale
    Z[np.isnan(Z)] = 0.0
    return Z


def nearest(
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
            block = standardise(block, mean, scale)
        d2 = block @ ct
        d2 *= -2.0
        d2 += cc
        out[start : start + len(block)] = d2.argmin(axis=1)
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
    """Describe one standardised profile against the average of everybody: above (z ≥ threshold) and below
    (z ≤ −threshold), in domain order. Never "gap": a gap is a requirement not met, not a difference from others."""
    z = np.asarray(z, dtype=np.float64)
    names = [_display(str(nm)) for nm in domain_names]
    above = [nm for nm, v in zip(names, z) if v >= threshold]
    below = [nm for nm, v in zip(names, z) if v <= -threshold]
    parts = []
    if above:
        parts.append("above the average in all domains" if len(above) == len(names) > 1 else "above the average in " + _join(above))
    if below:
        parts.append("below the average in all domains" if len(below) == len(names) > 1 else "below the average in " + _join(below))
    return "; ".join(parts) if parts else "close to the average in all domains"


def no_natural_groups_message(report: FitReport) -> str:
    """The plain words for a fit without natural groups ("" when the cohorts are stable, separated groups)."""
    if not report.no_natural_groups:
        return ""
    why = []
    if report.stability_ari < MIN_STABILITY:
        why.append(f"the cohorts change between bootstrap refits (stability {report.stability_ari:.2f} < {MIN_STABILITY:g})")
    if report.silhouette < MIN_SILHOUETTE:
        why.append(f"people are hardly closer to their own cohort than to the next (silhouette {report.silhouette:.2f} < {MIN_SILHOUETTE:g})")
    return (
        f"The survey shows no natural groups: {' and '.join(why)}. The {report.chosen_k} cohorts are bands along "
        "overall competence (C1 lowest), not types of people: use them to put people of a similar overall level "
        "together, and read each person's needs from their own gaps, not from their cohort."
    )


def _is_frame(X: Any) -> bool:
    """Whether ``X`` is a pandas DataFrame, without importing pandas (a DataFrame means pandas is loaded)."""
    pd = sys.modules.get("pandas")
    return pd is not None and isinstance(X, pd.DataFrame)


def _as_float_array(X: Any) -> np.ndarray:
    if _is_frame(X):
        return X.to_numpy(dtype=np.float64, na_value=np.nan)
    return np.asarray(X, dtype=np.float64)


def cohort_table(model: "CohortCentres | Any", X: Any, domain_names: Sequence[str], *, labels: np.ndarray | None = None) -> pd.DataFrame:
    """One row per cohort: ``cohort``, ``size``, ``share``, the mean score per domain (columns named by
    ``domain_names``; missing scores left out of the mean) and ``description``.

    ``labels``: ``model.predict(X)`` when the caller has it already.
    """
    import pandas as pd

    labels = model.predict(X) if labels is None else labels
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
