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
from .outputs import check_can_create, check_name, protected_reason, staging_stem

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
    staging = Path(tempfile.mkdtemp(prefix=f"{stem}.", suffix=".partial", dir=target.parent))  # names outputs.clean_leftovers knows
    try:
        (staging / MODEL_FILE).write_bytes(data)
        (staging / CHECKSUM_FILE).write_bytes(checksum)
        if not target.exists():
            os.replace(staging, target)
        else:
            backup = target.with_name(f"{stem}.{os.getpid()}.{os.urandom(4).hex()}.old")
            os.replace(target, backup)
            try:
                os.replace(staging, target)
            except OSError:
                os.replace(backup, target)
                raise
            shutil.rmtree(backup, ignore_errors=True)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target


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
    """Read a saved model, verifying its checksum and that it was made for this programme.

    Raises ModelError when the folder is not a model folder, the file was
    modified, or the programme fingerprint differs. The returned model predicts
    exactly like the one that was saved (it has no ``labels_``: no people are stored).
    """
    path = Path(folder)
    model_file = path / MODEL_FILE
    if not model_file.is_file():
        raise ModelError(f"{path} is not a trainmatch model folder: no {MODEL_FILE}. Pass the folder written by --save-model.")
    data = model_file.read_bytes()
    checksum_file = path / CHECKSUM_FILE
    if not checksum_file.is_file():
        raise ModelError(
            f"{path} has no {CHECKSUM_FILE}, so the model cannot be verified. Refit the cohorts and save the model again."
        )
    expected = checksum_file.read_text(encoding="ascii", errors="replace").split()
    actual = hashlib.sha256(data).hexdigest()
    if not expected or expected[0].lower() != actual:
        raise ModelError(
            f"{model_file} was modified after it was saved (its sha256 does not match {CHECKSUM_FILE}). "
            "A saved model must not be edited; refit the cohorts with --save-model."
        )
    try:
        doc = json.loads(data.decode("utf-8"))
        if doc.get("format") != FORMAT:
            raise ValueError(f"format is {doc.get('format')!r}, not {FORMAT!r}")
        if doc.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"format_version {doc.get('format_version')!r} is not supported (this trainmatch reads {FORMAT_VERSION})")
        saved_fp = str(doc["programme_fingerprint"])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ModelError(f"{model_file} is not a valid trainmatch model ({exc}). Refit the cohorts with --save-model.") from None
    if saved_fp != programme_fingerprint:
        raise ModelError(
            f"The model in {path} was made for programme {saved_fp}, but the programme in use is {programme_fingerprint}. "
            "Refit the cohorts with --save-model, or pass the programme the model was made with."
        )
    try:
        model, domain_ids, descriptions, report = _model_from_document(doc)
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise ModelError(f"{model_file} is not a valid trainmatch model ({exc}). Refit the cohorts with --save-model.") from None
    return SavedModel(
        model=model,
        domain_ids=domain_ids,
        descriptions=descriptions,
        fit_report=report,
        programme_fingerprint=saved_fp,
        versions={str(k): str(v) for k, v in doc.get("versions", {}).items()},
        folder=path,
    )


def _model_from_document(doc: dict[str, Any]) -> tuple[CohortCentres, tuple[str, ...], tuple[str, ...], FitReport]:
    """Rebuild fitted cohorts from ``model.json`` content; ValueError/KeyError when inconsistent."""
    domain_ids = tuple(str(x) for x in doc["domain_ids"])
    d = len(domain_ids)
    k = int(doc["k"])
    mean = np.asarray(doc["standardisation"]["means"], dtype=np.float64)
    scale = np.asarray(doc["standardisation"]["scales"], dtype=np.float64)
    centres = np.asarray(doc["centres"], dtype=np.float64)
    if mean.shape != (d,) or scale.shape != (d,) or centres.shape != (k, d):
        raise ValueError(f"expected {k} centres of {d} domains and {d} means and scales")
    if not (np.isfinite(mean).all() and np.isfinite(centres).all() and (scale > 0).all()):
        raise ValueError("means, scales and centres must be finite numbers, scales above 0")
    cohorts = doc["cohorts"]
    if len(cohorts) != k:
        raise ValueError(f"expected {k} cohorts, found {len(cohorts)}")
    report = FitReport.from_dict(doc["fit_report"])
    model = CohortCentres(
        mean=mean,
        scale=scale,
        centres=centres,
        cohort_ids=[str(c["id"]) for c in cohorts],
        fit_report=report,
        params=doc["parameters"],
        shares=[None if c.get("share") is None else float(c["share"]) for c in cohorts],
        feature_names=doc.get("feature_names"),
    )
    descriptions = tuple(str(c["description"]) for c in cohorts)
    return model, domain_ids, descriptions, report
