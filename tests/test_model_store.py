"""Tests for trainmatch.model_store: saving and verifying cohort model folders."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import trainmatch
from trainmatch.kmeans import CohortModel
from trainmatch.errors import ModelError, UsageError
from trainmatch.model_store import CHECKSUM_FILE, MODEL_FILE, load_model, save_model

DOMAINS = ["ict_basics", "ehr", "remote_care", "eservices", "security", "data_use"]
NAMES = [
    "ICT basics",
    "EHR documentation",
    "Remote care and counselling",
    "Guiding clients to e-services",
    "Information security and ethics",
    "Using data and evaluating digital solutions",
]
FINGERPRINT = "0123456789abcdef"


@pytest.fixture(scope="module")
def people() -> pd.DataFrame:
    """A people-like frame: ids that must never reach the model, and scores with planted structure."""
    rng = np.random.default_rng(0)
    profiles = np.array([[2.0] * 6, [4.0, 4.0, 2.3, 2.3, 4.0, 2.3], [4.2] * 6])
    truth = rng.integers(0, 3, 1500)
    scores = np.clip(profiles[truth] + rng.normal(0, 0.3, (1500, 6)), 1, 5)
    scores[rng.random(scores.shape) < 0.05] = np.nan
    frame = pd.DataFrame(scores, columns=[f"score_{d}" for d in DOMAINS])
    frame.insert(0, "person_id", [f"PX{i:06d}" for i in range(1500)])
    return frame


@pytest.fixture(scope="module")
def fitted(people) -> CohortModel:
    return CohortModel(random_state=3).fit(people[[f"score_{d}" for d in DOMAINS]])


def save(model: CohortModel, folder: Path, **kw) -> Path:
    args = dict(programme_fingerprint=FINGERPRINT, domain_ids=DOMAINS, fit_report=model.fit_report_, domain_names=NAMES)
    args.update(kw)
    return save_model(model, folder, **args)


def test_saved_folder_holds_readable_json_and_its_checksum(fitted, tmp_path):
    folder = save(fitted, tmp_path / "models" / "round1")
    assert sorted(p.name for p in folder.iterdir()) == [CHECKSUM_FILE, MODEL_FILE]
    data = (folder / MODEL_FILE).read_bytes()
    assert (folder / CHECKSUM_FILE).read_text() == f"{hashlib.sha256(data).hexdigest()}  {MODEL_FILE}\n"
    doc = json.loads(data)
    assert doc["format"] == "trainmatch-cohort-model"
    assert doc["programme_fingerprint"] == FINGERPRINT
    assert doc["domain_ids"] == DOMAINS
    assert doc["k"] == fitted.n_clusters_ == 3
    assert doc["centres"] == fitted.cluster_centers_.tolist()
    assert doc["standardisation"] == {"means": fitted.mean_.tolist(), "scales": fitted.scale_.tolist()}
    assert doc["parameters"] == {
        "k_range": [2, 8],
        "random_state": 3,
        "sample_size": 5000,
        "tie_tolerance": 0.01,
        "min_share": 0.05,
        "n_init": 4,
    }
    assert [c["id"] for c in doc["cohorts"]] == ["C1", "C2", "C3"]
    assert [c["description"] for c in doc["cohorts"]] == fitted.describe(NAMES)
    assert doc["cohorts"][0]["description"] == "below the average in all domains"
    assert doc["cohorts"][0]["mean_scores"]["ehr"] == pytest.approx(2.0, abs=0.15)
    assert doc["fit_report"]["chosen_k"] == 3
    assert [r["k"] for r in doc["fit_report"]["rows"]] == list(range(2, 9))
    assert set(doc["versions"]) == {"trainmatch", "numpy", "scikit-learn", "pandas"}
    assert doc["versions"]["trainmatch"] == trainmatch.__version__
    assert doc["created_by"].startswith(f"trainmatch {trainmatch.__version__}: cohort model")
    assert data.decode("utf-8").count("\n") > 50  # indented for people to read


def test_loaded_model_predicts_exactly_like_the_original(fitted, people, tmp_path):
    folder = save(fitted, tmp_path / "m")
    saved = load_model(folder, programme_fingerprint=FINGERPRINT)
    X = people[[f"score_{d}" for d in DOMAINS]]
    np.testing.assert_array_equal(saved.model.predict(X), fitted.predict(X))
    np.testing.assert_array_equal(saved.model.predict(X), fitted.labels_)
    rng = np.random.default_rng(1)
    fresh = pd.DataFrame(rng.uniform(1, 5, (20_000, 6)), columns=X.columns)
    fresh.iloc[::13, 4] = np.nan
    np.testing.assert_array_equal(saved.model.predict(fresh), fitted.predict(fresh))
    assert list(saved.model.predict_cohort(X.head(3))) == list(fitted.predict_cohort(X.head(3)))
    assert saved.domain_ids == tuple(DOMAINS)
    assert saved.descriptions == tuple(fitted.describe(NAMES))
    assert saved.model.describe(NAMES) == fitted.describe(NAMES)
    assert saved.fit_report == fitted.fit_report_
    assert saved.programme_fingerprint == FINGERPRINT
    assert saved.versions["numpy"] == np.__version__
    assert list(saved.model.feature_names_in_) == list(X.columns)
    assert not hasattr(saved.model, "labels_")  # no people are stored


def test_model_holds_no_personal_data(fitted, people, tmp_path):
    folder = save(fitted, tmp_path / "m")
    text = (folder / MODEL_FILE).read_text(encoding="utf-8")
    assert "PX0" not in text
    assert not any(pid in text for pid in people["person_id"])
    # nothing per person: the file does not grow with the number of people
    assert len(text) < 20_000


def test_not_a_model_folder(tmp_path):
    with pytest.raises(ModelError) as err:
        load_model(tmp_path / "nowhere", programme_fingerprint=FINGERPRINT)
    assert str(err.value) == (
        f"{tmp_path / 'nowhere'} is not a trainmatch model folder: no model.json. Pass the folder written by --save-model."
    )
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="is not a trainmatch model folder: no model.json"):
        load_model(tmp_path / "empty", programme_fingerprint=FINGERPRINT)


def test_a_modified_model_is_rejected(fitted, tmp_path):
    folder = save(fitted, tmp_path / "m")
    path = folder / MODEL_FILE
    path.write_text(path.read_text(encoding="utf-8").replace('"k": 3', '"k": 4'), encoding="utf-8")
    with pytest.raises(ModelError) as err:
        load_model(folder, programme_fingerprint=FINGERPRINT)
    assert str(err.value) == (
        f"{path} was modified after it was saved (its sha256 does not match checksum.sha256). "
        "A saved model must not be edited; refit the cohorts with --save-model."
    )


def test_a_missing_checksum_is_rejected(fitted, tmp_path):
    folder = save(fitted, tmp_path / "m")
    (folder / CHECKSUM_FILE).unlink()
    with pytest.raises(ModelError, match="has no checksum.sha256, so the model cannot be verified"):
        load_model(folder, programme_fingerprint=FINGERPRINT)


def test_a_model_for_another_programme_is_rejected(fitted, tmp_path):
    folder = save(fitted, tmp_path / "m")
    with pytest.raises(ModelError) as err:
        load_model(folder, programme_fingerprint="fedcba9876543210")
    assert str(err.value) == (
        f"The model in {folder} was made for programme 0123456789abcdef, but the programme in use is fedcba9876543210. "
        "Refit the cohorts with --save-model, or pass the programme the model was made with."
    )


def test_an_inconsistent_model_file_with_a_matching_checksum_is_rejected(fitted, tmp_path):
    folder = save(fitted, tmp_path / "m")
    doc = json.loads((folder / MODEL_FILE).read_text(encoding="utf-8"))
    doc["centres"] = doc["centres"][:2]
    data = json.dumps(doc).encode()
    (folder / MODEL_FILE).write_bytes(data)
    (folder / CHECKSUM_FILE).write_text(f"{hashlib.sha256(data).hexdigest()}  {MODEL_FILE}\n")
    with pytest.raises(ModelError, match=r"is not a valid trainmatch model: field centres must be 3 × 6 numbers; it holds 2 × 6 numbers"):
        load_model(folder, programme_fingerprint=FINGERPRINT)


def test_saving_again_replaces_the_model_as_a_whole(fitted, people, tmp_path):
    folder = save(fitted, tmp_path / "m")
    other = CohortModel(k_range=(2, 2)).fit(people[[f"score_{d}" for d in DOMAINS]])
    save(other, folder)
    assert load_model(folder, programme_fingerprint=FINGERPRINT).model.n_clusters_ == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no staging or backup folders left


def test_refuses_to_write_into_a_folder_that_is_not_a_model(fitted, tmp_path):
    (tmp_path / "outputs").mkdir()
    (tmp_path / "outputs" / "people.csv").write_text("x\n")
    with pytest.raises(UsageError, match="outputs exists and is not a trainmatch model folder \\(it holds people.csv\\)"):
        save(fitted, tmp_path / "outputs")
    assert sorted(p.name for p in (tmp_path / "outputs").iterdir()) == ["people.csv"]


def test_bad_save_arguments(fitted, tmp_path):
    with pytest.raises(UsageError, match="Only a fitted cohort model can be saved"):
        save_model(CohortModel(), tmp_path / "m", programme_fingerprint=FINGERPRINT, domain_ids=DOMAINS, fit_report=fitted.fit_report_)
    with pytest.raises(UsageError, match="one domain id per model column \\(6\\); got 2"):
        save(fitted, tmp_path / "m", domain_ids=DOMAINS[:2])


def test_descriptions_default_to_domain_ids(fitted, tmp_path):
    folder = save_model(fitted, tmp_path / "m", programme_fingerprint=FINGERPRINT, domain_ids=DOMAINS, fit_report=fitted.fit_report_)
    saved = load_model(folder, programme_fingerprint=FINGERPRINT)
    assert saved.descriptions == tuple(fitted.describe(DOMAINS))


def test_no_pickle_joblib_or_eval_anywhere_in_the_package():
    import re

    import trainmatch

    banned = re.compile(r"\bimport pickle\b|\bjoblib\b|\bpickle\.loads?\(|(?<![\w.])(eval|exec)\(")
    sources = sorted(Path(trainmatch.__file__).parent.rglob("*.py"))
    assert len(sources) > 10
    offenders = [f"{p.name}: {m.group(0)}" for p in sources for m in banned.finditer(p.read_text(encoding="utf-8"))]
    assert offenders == []
