"""Saved cohort models: a folder with a human-readable ``model.json`` and its ``checksum.sha256``.

A saved model holds only parameters and statistics — standardisation means and
scales, cohort centres, ids and descriptions, the fit report, the settings it
was fitted with — never a person's data and never pickle. The checksum guards
against hand edits; the programme fingerprint guards against using the model
with a different instrument. Writing goes through a temporary folder that is
moved into place only when complete, so an existing model is never half
overwritten.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from . import __version__
from .cohorts import CohortCentres, FitReport
from .errors import ModelError, OutputError, UsageError
from .staging import SignalsHeld, check_can_create, check_name, protected_reason, staging_stem

MODEL_FILE = "model.json"
CHECKSUM_FILE = "checksum.sha256"
FORMAT = "trainmatch-cohort-model"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class SavedModel:
    """A verified model read back from a folder, with what it was made for."""

    model: CohortCentres
    domain_ids: tuple[str, ...]
    descriptions: tuple[str, ...]
    fit_report: FitReport
    programme_fingerprint: str
    versions: dict[str, str]
    folder: Path


def _versions() -> dict[str, str]:
    from importlib.metadata import version  # not `import sklearn`: that takes seconds, and a saved model is read without it

    return {"trainmatch": __version__, "numpy": np.__version__, "scikit-learn": version("scikit-learn"), "pandas": pd.__version__}


def model_document(
    model: "CohortCentres | Any",
    *,
    programme_fingerprint: str,
    domain_ids: Sequence[str],
    fit_report: FitReport,
    domain_names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The content of ``model.json`` for fitted cohorts (pure; see :func:`save_model`).

    ``model`` is a :class:`~trainmatch.cohorts.CohortCentres` or a fitted
    :class:`~trainmatch.kmeans.CohortModel`.
    """
    if hasattr(model, "centres"):  # the estimator: its fitted part
        if not hasattr(model, "cluster_centers_"):
            raise UsageError("Only a fitted cohort model can be saved; call fit() first.")
        model = model.centres()
    if not isinstance(model, CohortCentres):
        raise UsageError("Only a fitted cohort model can be saved; call fit() first.")
    d = int(model.n_features_in_)
    if len(domain_ids) != d:
        raise UsageError(f"save_model needs one domain id per model column ({d}); got {len(domain_ids)}.")
    names = list(domain_names) if domain_names is not None else [str(x) for x in domain_ids]
    descriptions = model.describe(names)
    shares = model.shares_
    centre_scores = model.mean_ + model.cluster_centers_ * model.scale_
    feature_names = getattr(model, "feature_names_in_", None)
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created_by": (
            f"trainmatch {__version__}: cohort model (standardisation and k-means centres only, no personal data). "
            f"Do not edit: {CHECKSUM_FILE} guards this file."
        ),
        "programme_fingerprint": programme_fingerprint,
        "versions": _versions(),
        "domain_ids": [str(x) for x in domain_ids],
        "feature_names": None if feature_names is None else [str(x) for x in feature_names],
        "parameters": model.params_document(),
        "k": int(model.n_clusters_),
        "standardisation": {"means": model.mean_.tolist(), "scales": model.scale_.tolist()},
        "centres": model.cluster_centers_.tolist(),
        "cohorts": [
            {
                "id": str(cid),
                "description": desc,
                "share": share,
                "mean_scores": {str(dom): float(v) for dom, v in zip(domain_ids, centre_scores[i])},
            }
            for i, (cid, desc, share) in enumerate(zip(model.cohort_ids_, descriptions, shares))
        ],
        "fit_report": fit_report.to_dict(),
    }


def save_model(
    model: "CohortCentres | Any",
    folder: str | Path,
    *,
    programme_fingerprint: str,
    domain_ids: Sequence[str],
    fit_report: FitReport,
    domain_names: Sequence[str] | None = None,
) -> Path:
    """Write ``model.json`` and ``checksum.sha256`` into ``folder``; returns the folder.

    ``domain_names`` (display names, default the ids) are used for the cohort
    descriptions. An existing model folder is replaced as a whole; a folder
    holding anything else is refused (UsageError).
    """
    target = Path(folder)
    doc = model_document(
        model, programme_fingerprint=programme_fingerprint, domain_ids=domain_ids, fit_report=fit_report, domain_names=domain_names
    )
    data = (json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")
    checksum = f"{hashlib.sha256(data).hexdigest()}  {MODEL_FILE}\n".encode("ascii")

    if target.exists():
        if not target.is_dir():
            raise UsageError(f"{target} exists and is a file; give a folder name for the model.")
        extra = sorted(p.name for p in target.iterdir() if p.name not in (MODEL_FILE, CHECKSUM_FILE))
        if extra:
            raise UsageError(
                f"{target} exists and is not a trainmatch model folder (it holds {', '.join(extra[:3])}"
                f"{', …' if len(extra) > 3 else ''}); choose a new or empty folder for the model."
            )
    target.parent.mkdir(parents=True, exist_ok=True)
    stem = staging_stem(target.name)
    staging = Path(tempfile.mkdtemp(prefix=f"{stem}.", suffix=".partial", dir=target.parent))  # names staging.clean_leftovers knows
    try:
        (staging / MODEL_FILE).write_bytes(data)
        (staging / CHECKSUM_FILE).write_bytes(checksum)
        with SignalsHeld():  # an interrupt waits until the earlier model is replaced or back in place
            if not target.exists():
                os.replace(staging, target)
            else:
                backup = target.with_name(f"{stem}.{os.getpid()}.{os.urandom(4).hex()}.old")
                os.replace(target, backup)
                try:
                    os.replace(staging, target)
                except BaseException:
                    os.replace(backup, target)
                    raise
                shutil.rmtree(backup, ignore_errors=True)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target


MAX_MODEL_BYTES = 1_000_000
"""The largest model.json read: a usual model is 6 kB; 30 cohorts over 200 domains (the most allowed) about 0.5 MB."""
MAX_DEPTH = 8  # containers inside containers; a model.json needs 4
MAX_DOMAINS = 200
MAX_TEXT = 1_000  # characters in a warning or version
MAX_DESCRIPTION = 50_000  # characters in a cohort description: it may name every domain (200 names of 200 characters)
MAX_ID = 100  # characters in a domain or cohort id (cohort ids are written on every person's row)


def _read_bounded(path: Path, limit: int) -> bytes:
    """The bytes of ``path``, ModelError when it holds more than ``limit`` (read no further than that)."""
    with open(path, "rb") as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise ModelError(
            f"{path} is larger than {limit:,} bytes, far more than a saved cohort model holds, so it is not read. "
            "Pass the folder written by --save-model, or refit the cohorts with --save-model."
        )
    return data


def check_model_target(folder: str | Path, *, force: bool = False, inputs: Iterable[str | Path | None] = ()) -> None:
    """Refuse, before any work, a ``--save-model`` folder that :func:`save_model` would refuse or should not replace.

    A new folder, an empty one, or (with ``force``) an earlier saved model is
    fine. A file, a folder holding anything else, or a folder that is or
    holds the working folder or an input is refused (OutputError); an
    existing model without ``force`` is a UsageError.
    """
    target = Path(folder)
    option = "--save-model"
    check_name(target, option)
    reason = protected_reason(target, inputs)
    if reason:
        raise OutputError(f"{option} {str(target)!r} cannot hold the model: {reason}. Choose a new folder, e.g. models/round1.")
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise OutputError(f"{option} {str(target)!r} exists and is not a folder; give a new folder name for the model.")
    if target.is_dir():
        names = sorted(p.name for p in target.iterdir())
        extra = [name for name in names if name not in (MODEL_FILE, CHECKSUM_FILE)]
        if extra:
            raise OutputError(
                f"{option} {str(target)!r} exists and is not a trainmatch model folder (it holds {', '.join(extra[:3])}"
                f"{', …' if len(extra) > 3 else ''}), so it is never replaced. Choose a new or empty folder for the model."
            )
        if names and not force:
            raise UsageError(f"{option} {str(target)!r} already holds a saved model. Use --force to replace it, or choose another folder.")
    check_can_create(target, option, make_parents=True)


def load_model(folder: str | Path, *, programme_fingerprint: str) -> SavedModel:
    """Read a saved model, verifying its checksum, that it was made for this programme, and that it makes sense.

    Raises ModelError when the folder is not a model folder, the file was
    modified, the programme fingerprint differs, or the content is not a model
    trainmatch could have written (even when its checksum matches): k outside
    2..:data:`~trainmatch.cohorts.MAX_K` or its own k range, empty or
    duplicate ids, scales that are not finite and positive, centres or means
    that are not finite, sizes that disagree, nesting deeper than
    :data:`MAX_DEPTH` or a file over :data:`MAX_MODEL_BYTES`; the message names
    the file and the field. The returned model predicts exactly like the one
    that was saved (it has no ``labels_``: no people are stored).
    """
    path = Path(folder)
    model_file = path / MODEL_FILE
    if not model_file.is_file():
        raise ModelError(f"{path} is not a trainmatch model folder: no {MODEL_FILE}. Pass the folder written by --save-model.")
    data = _read_bounded(model_file, MAX_MODEL_BYTES)
    checksum_file = path / CHECKSUM_FILE
    if not checksum_file.is_file():
        raise ModelError(
            f"{path} has no {CHECKSUM_FILE}, so the model cannot be verified. Refit the cohorts and save the model again."
        )
    expected = _read_bounded(checksum_file, 4096).decode("ascii", errors="replace").split()
    actual = hashlib.sha256(data).hexdigest()
    if not expected or expected[0].lower() != actual:
        raise ModelError(
            f"{model_file} was modified after it was saved (its sha256 does not match {CHECKSUM_FILE}). "
            "A saved model must not be edited; refit the cohorts with --save-model."
        )
    invalid = f"{model_file} is not a valid trainmatch model"
    refit = "Refit the cohorts with --save-model."
    try:
        doc = json.loads(data.decode("utf-8"))
    except RecursionError:
        raise ModelError(f"{invalid}: its JSON is nested too deeply to read (a model needs 4 levels). {refit}") from None
    except ValueError as exc:  # bad JSON or UTF-8, or an integer too long to convert
        raise ModelError(f"{invalid} ({exc}). {refit}") from None
    try:
        if not isinstance(doc, dict):
            raise _FieldError("(top level)", "must be a JSON object", type(doc).__name__)
        _check_depth(doc)
        if doc.get("format") != FORMAT:
            raise _FieldError("format", f"must be {FORMAT!r}", doc.get("format"))
        if doc.get("format_version") != FORMAT_VERSION:
            raise _FieldError("format_version", f"is not supported (this trainmatch reads {FORMAT_VERSION})", doc.get("format_version"))
        saved_fp = _check_text(_get(doc, "programme_fingerprint"), "programme_fingerprint", limit=MAX_ID)
    except _FieldError as exc:
        raise ModelError(f"{invalid}: {exc} {refit}") from None
    if saved_fp != programme_fingerprint:
        raise ModelError(
            f"The model in {path} was made for programme {saved_fp}, but the programme in use is {programme_fingerprint}. "
            "Refit the cohorts with --save-model, or pass the programme the model was made with."
        )
    try:
        model, domain_ids, descriptions, report = _model_from_document(doc)
        versions = doc.get("versions", {})
        if not isinstance(versions, dict) or not all(isinstance(v, str) and len(v) <= MAX_TEXT for v in versions.values()):
            raise _FieldError("versions", "must be an object of short texts", None)
    except _FieldError as exc:
        raise ModelError(f"{invalid}: {exc} {refit}") from None
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise ModelError(f"{invalid} ({exc}). {refit}") from None
    return SavedModel(
        model=model,
        domain_ids=domain_ids,
        descriptions=descriptions,
        fit_report=report,
        programme_fingerprint=saved_fp,
        versions={str(k): str(v) for k, v in versions.items()},
        folder=path,
    )


class _FieldError(ValueError):
    """One field of model.json that makes no sense: its path, what is allowed, what it holds."""

    def __init__(self, field: str, allowed: str, value: Any, shown: str | None = None) -> None:
        shown = shown or repr(value)
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        super().__init__(f"field {field} {allowed}; it holds {shown}.")


def _check_depth(doc: Any) -> None:
    """_FieldError when containers nest deeper than :data:`MAX_DEPTH` (iterative: no recursion)."""
    stack: list[tuple[Any, str, int]] = [(doc, "", 1)]
    while stack:
        value, where, depth = stack.pop()
        children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        for key, child in children:
            if isinstance(child, (dict, list)):
                path = f"{where}.{key}" if isinstance(key, str) else f"{where}[{key}]"
                if depth + 1 > MAX_DEPTH:
                    raise _FieldError(path.lstrip("."), f"nests more than {MAX_DEPTH} levels deep (a model needs 4)", "…")
                stack.append((child, path, depth + 1))


def _get(doc: Any, field: str) -> Any:
    """The value at a dotted ``field`` path; _FieldError when a part is missing."""
    value = doc
    for part in field.split("."):
        if not isinstance(value, dict) or part not in value:
            raise _FieldError(field, "is missing", None)
        value = value[part]
    return value


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _check_text(value: Any, field: str, *, empty: bool = False, limit: int = MAX_TEXT) -> str:
    """Text of at most ``limit`` characters (non-empty unless ``empty``); an id (``limit`` = MAX_ID) has no control characters."""
    if not isinstance(value, str) or (not empty and not value.strip()) or len(value) > limit or (limit == MAX_ID and _CONTROL.search(value)):
        what = "text" if empty else "non-empty text"
        extra = " without control characters" if limit == MAX_ID else ""
        raise _FieldError(field, f"must be {what} of at most {limit:,} characters{extra}", value)
    return value


def _whole(value: Any, field: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise _FieldError(field, f"must be a whole number from {lo:,} to {hi:,}", value)
    return value


def _numbers(value: Any, field: str, shape: tuple[int, ...], *, positive: bool = False) -> np.ndarray:
    """A finite float array of ``shape`` (scales: also above 0), or _FieldError naming the field."""
    size = " × ".join(str(n) for n in shape)
    rows = value if len(shape) == 2 and isinstance(value, list) else [value]
    ok = isinstance(value, list) and all(isinstance(row, list) for row in rows)
    for i, row in enumerate(rows if ok else ()):
        for j, x in enumerate(row):
            if isinstance(x, bool) or not isinstance(x, (int, float)):
                index = f"[{i}][{j}]" if len(shape) == 2 else f"[{j}]"
                raise _FieldError(f"{field}{index}", "must be a number", x)
    try:
        array = np.asarray(value, dtype=np.float64) if ok else None
    except (OverflowError, ValueError):  # an integer beyond float range; rows of different lengths
        array = None
    if array is None or array.shape != shape:
        held = f"{' × '.join(str(n) for n in array.shape)} numbers" if array is not None else None
        raise _FieldError(field, f"must be {size} numbers", value, held)
    bad = ~np.isfinite(array) | ((array <= 0) if positive else False)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        index = "".join(f"[{i}]" for i in where)
        raise _FieldError(f"{field}{index}", "must be a finite number above 0" if positive else "must be a finite number", array[where].item())
    return array


def _ids(value: Any, field: str, n: int, item: str = "{field}[{i}]") -> list[str]:
    """``n`` non-empty, distinct, short texts; ``item`` names one of them in a message."""
    if not isinstance(value, list) or len(value) != n:
        raise _FieldError(field, f"must list {n} ids", value)
    seen: set[str] = set()
    for i, v in enumerate(value):
        where = item.format(field=field, i=i)
        _check_text(v, where, limit=MAX_ID)
        if v in seen:
            raise _FieldError(where, "must be unique (each id once)", v)
        seen.add(v)
    return list(value)


def _model_from_document(doc: dict[str, Any]) -> tuple[CohortCentres, tuple[str, ...], tuple[str, ...], FitReport]:
    """Rebuild fitted cohorts from ``model.json`` content, checking every field for sense (_FieldError)."""
    from .cohorts import MAX_K

    raw_domains = _get(doc, "domain_ids")
    if not isinstance(raw_domains, list) or not 1 <= len(raw_domains) <= MAX_DOMAINS:
        raise _FieldError("domain_ids", f"must list 1 to {MAX_DOMAINS} domain ids", raw_domains)
    domain_ids = tuple(_ids(raw_domains, "domain_ids", len(raw_domains)))
    d = len(domain_ids)
    params = _get(doc, "parameters")
    k_range = _get(doc, "parameters.k_range")
    if not isinstance(k_range, list) or len(k_range) != 2:
        raise _FieldError("parameters.k_range", f"must be a pair [FROM, TO] with 2 ≤ FROM ≤ TO ≤ {MAX_K}", k_range)
    lo = _whole(k_range[0], "parameters.k_range[0]", 2, MAX_K)
    hi = _whole(k_range[1], "parameters.k_range[1]", lo, MAX_K)
    k = _get(doc, "k")
    if isinstance(k, bool) or not isinstance(k, int) or not lo <= k <= hi:
        raise _FieldError("k", f"must be a whole number within the k range the model was fitted with ({lo}–{hi}; trainmatch fits 2 to {MAX_K} cohorts)", k)
    for key, low, high in (("sample_size", 1, 10**9), ("n_init", 1, 1000)):
        _whole(_get(doc, f"parameters.{key}"), f"parameters.{key}", low, high)
    for key in ("tie_tolerance", "min_share"):
        _numbers([_get(doc, f"parameters.{key}")], f"parameters.{key}", (1,))
    random_state = _get(doc, "parameters.random_state")
    if random_state is not None:
        _whole(random_state, "parameters.random_state", 0, 2**32 - 1)

    mean = _numbers(_get(doc, "standardisation.means"), "standardisation.means", (d,))
    scale = _numbers(_get(doc, "standardisation.scales"), "standardisation.scales", (d,), positive=True)
    centres = _numbers(_get(doc, "centres"), "centres", (k, d))
    feature_names = doc.get("feature_names")
    if feature_names is not None:
        _ids(feature_names, "feature_names", d)

    cohorts = _get(doc, "cohorts")
    if not isinstance(cohorts, list) or len(cohorts) != k or not all(isinstance(c, dict) for c in cohorts):
        raise _FieldError("cohorts", f"must list k = {k} cohorts", cohorts)
    ids = _ids([c.get("id") for c in cohorts], "cohorts", k, item="cohorts[{i}].id")
    descriptions = tuple(
        _check_text(c.get("description"), f"cohorts[{i}].description", empty=True, limit=MAX_DESCRIPTION) for i, c in enumerate(cohorts)
    )
    shares = []
    for i, c in enumerate(cohorts):
        share = c.get("share")
        if share is not None:
            share = float(_numbers([share], f"cohorts[{i}].share", (1,))[0])
            if not 0 <= share <= 1:
                raise _FieldError(f"cohorts[{i}].share", "must be a share from 0 to 1", share)
        shares.append(share)

    fit = _get(doc, "fit_report")
    rows = _get(doc, "fit_report.rows")
    if not isinstance(rows, list) or not 1 <= len(rows) <= MAX_K or not all(isinstance(r, dict) for r in rows):
        raise _FieldError("fit_report.rows", f"must list 1 to {MAX_K} rows, one per k tried", rows)
    for i, r in enumerate(rows):
        _whole(r.get("k"), f"fit_report.rows[{i}].k", 2, MAX_K)
        for key in ("silhouette", "calinski_harabasz", "davies_bouldin", "smallest_share"):
            if r.get(key) is not None:
                _numbers([r.get(key)], f"fit_report.rows[{i}].{key}", (1,))
    if _get(doc, "fit_report.chosen_k") != k:
        raise _FieldError("fit_report.chosen_k", f"must equal k ({k})", fit.get("chosen_k"))
    warnings = _get(doc, "fit_report.warnings")
    if not isinstance(warnings, list) or len(warnings) > 100:
        raise _FieldError("fit_report.warnings", "must list at most 100 warnings", warnings)
    for i, w in enumerate(warnings):
        _check_text(w, f"fit_report.warnings[{i}]", empty=True)
    for key in ("n_people", "n_sample", "n_imputed"):
        _whole(_get(doc, f"fit_report.{key}"), f"fit_report.{key}", 0, 10**12)
    _numbers([_get(doc, "fit_report.tie_tolerance")], "fit_report.tie_tolerance", (1,))
    if fit.get("stability_ari") is not None:  # absent in models saved before stability was measured
        _numbers([fit.get("stability_ari")], "fit_report.stability_ari", (1,))
    if "n_bootstrap" in fit:
        _whole(fit.get("n_bootstrap"), "fit_report.n_bootstrap", 0, 1000)

    report = FitReport.from_dict(fit)
    model = CohortCentres(
        mean=mean,
        scale=scale,
        centres=centres,
        cohort_ids=ids,
        fit_report=report,
        params=params,
        shares=shares,
        feature_names=feature_names,
    )
    return model, domain_ids, descriptions, report
