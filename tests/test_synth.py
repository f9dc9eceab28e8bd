"""Synthetic surveys: reproducible, realistic enough to exercise every import path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from trainmatch.io import read_survey
from trainmatch.columns import normalise
from trainmatch.survey import import_survey
from trainmatch.synth import synthesize


@pytest.fixture(scope="module")
def synth(default_programme):
    return synthesize(default_programme, 600, seed=5)


def test_same_seed_gives_identical_bytes(cli, tmp_path):
    a, b, c = tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "c.csv"
    assert cli("synth", "--n", "120", "--seed", "7", "-o", a).exit_code == 0
    assert cli("synth", "--n", "120", "--seed", "7", "-o", b).exit_code == 0
    assert cli("synth", "--n", "120", "--seed", "8", "-o", c).exit_code == 0
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()


def test_same_seed_gives_identical_frames(default_programme):
    s1, t1 = synthesize(default_programme, 50, seed=1)
    s2, t2 = synthesize(default_programme, 50, seed=1)
    pd.testing.assert_frame_equal(s1, s2)
    pd.testing.assert_frame_equal(t1, t2)


def test_it_looks_like_a_real_export(synth, default_programme):
    survey, truth = synth
    p = default_programme
    items = [i.id for i in p.items]
    answers = survey[items].to_numpy().ravel()
    keys = pd.Series(answers).map(normalise)
    dont_know = {normalise(x) for x in p.dont_know}
    assert keys.isin(dont_know).any()
    assert (keys == "").any()  # skipped answers
    labels = {normalise(x) for labels in p.scale_labels.values() for x in labels}
    with_labels = survey[items].map(normalise).isin(labels).any(axis=1)
    assert 0 < with_labels.sum() < len(survey)  # labels as text for some people only
    assert survey[p.columns.site].nunique() >= 4
    assert set(survey[p.columns.language]) == {"fi", "sv", "en"}
    assert survey[p.columns.id].str.match(r"^0+\d+$").all()  # ids with leading zeros
    assert survey[p.columns.id].is_unique
    assert "email" in survey.columns  # personal data to be dropped on import
    assert set(truth.columns) == {p.columns.id, *(f"latent_{d}" for d in p.domain_ids)}  # no profile: a continuum


def test_it_imports_cleanly(synth, default_programme):
    survey, _ = synth
    from trainmatch.io import RawSurvey

    raw = RawSurvey("s.csv", survey, np.arange(2, len(survey) + 2), "csv", "utf-8", ",", None, "")
    result = import_survey(raw, default_programme)
    assert result.n_accepted == len(survey)
    assert len(result.rejects) == 0
    assert result.dropped_personal == ("email",)


def test_truth_file_has_one_row_per_person(cli, tmp_path):
    out, truth = tmp_path / "s.csv", tmp_path / "truth.csv"
    result = cli("synth", "--n", "80", "--seed", "2", "-o", out, "--truth", truth)
    assert result.exit_code == 0, result.output
    survey = read_survey(out).frame
    planted = read_survey(truth).frame
    assert len(planted) == len(survey) == 80
    assert planted["person_id"].tolist() == survey["person_id"].tolist()
    assert list(planted.columns) == ["person_id", *(f"latent_{d}" for d in ("ict_basics", "ehr", "remote_care", "eservices", "security", "data_use"))]
    assert "latent domain scores" in result.output


def test_truth_of_planted_profiles_names_each_persons_profile(cli, tmp_path):
    out, truth = tmp_path / "s.csv", tmp_path / "truth.csv"
    result = cli("synth", "--n", "80", "--seed", "2", "--structure", "profiles", "-o", out, "--truth", truth)
    assert result.exit_code == 0, result.output
    planted = read_survey(truth).frame
    assert planted["profile"].str.match(r"^P\d$").all()
    assert planted["profile"].nunique() >= 3


def test_an_unknown_structure_is_a_usage_error(cli, tmp_path):
    result = cli("synth", "--n", "5", "--structure", "clusters", "-o", tmp_path / "s.csv")
    assert result.exit_code == 2
    assert "'clusters' is not one of 'continuous', 'profiles'" in result.output


def _scored(programme, n, seed, **kw):
    from trainmatch.io import RawSurvey
    from trainmatch.scoring import cronbach_alpha, score

    survey, truth = synthesize(programme, n, seed=seed, **kw)
    raw = RawSurvey("s.csv", survey, np.arange(2, n + 2), "csv", "utf-8", ",", None, "")
    imported = import_survey(raw, programme)
    people = score(imported.people, programme)
    return people, truth.set_index("person_id").loc[people["person_id"]], cronbach_alpha(imported.people, programme)


@pytest.mark.parametrize("seed", [8, 2026])
def test_default_survey_is_a_realistic_continuum(default_programme, seed):
    """A general factor: domain scores correlate 0.5–0.7, alpha 0.75–0.9, and the scores measure the latent ones."""
    p = default_programme
    people, latent, reliability = _scored(p, 3000, seed)
    scores = people[[f"score_{d}" for d in p.domain_ids]]
    corr = scores.corr().to_numpy()
    assert 0.5 <= corr[~np.eye(len(corr), dtype=bool)].mean() <= 0.7
    assert all(0.75 <= r.alpha <= 0.9 for r in reliability)
    for d in p.domain_ids:
        known = scores[f"score_{d}"].notna().to_numpy()
        r = np.corrcoef(scores[f"score_{d}"].to_numpy()[known], latent[f"latent_{d}"].to_numpy()[known])[0, 1]
        assert r >= 0.85, (d, r)


def test_default_survey_has_no_separated_groups(default_programme):
    """A continuum: the overall level is unimodal (no empty band between planted groups)."""
    p = default_programme
    people, latent, _ = _scored(p, 3000, 8)
    overall = latent[[f"latent_{d}" for d in p.domain_ids]].mean(axis=1).to_numpy()
    counts, _ = np.histogram(overall, bins=12)
    peak = int(np.argmax(counts))
    assert (np.diff(counts[: peak + 1]) >= -0.02 * len(overall)).all()
    assert (np.diff(counts[peak:]) <= 0.02 * len(overall)).all()


def test_xlsx_output_reads_back(cli, tmp_path):
    out = tmp_path / "s.xlsx"
    assert cli("synth", "--n", "30", "-o", out).exit_code == 0
    raw = read_survey(out)
    assert raw.sheet == "Responses"
    assert len(raw.frame) == 30
    assert raw.frame["person_id"].iloc[0] == "000001"  # written as text, zeros kept


def test_n_must_be_positive(default_programme):
    with pytest.raises(ValueError):
        synthesize(default_programme, 0)


def test_sample_data_is_what_the_readme_command_makes(tmp_path):
    # README: trainmatch synth --n 300 --seed 2026 -o sample_data/survey.csv --truth sample_data/truth.csv
    from click.testing import CliRunner

    from trainmatch.cli import main

    root = Path(__file__).resolve().parent.parent / "sample_data"
    out, truth = tmp_path / "survey.csv", tmp_path / "truth.csv"
    result = CliRunner().invoke(main, ["synth", "--n", "300", "--seed", "2026", "-o", str(out), "--truth", str(truth)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == (root / "survey.csv").read_bytes()
    assert truth.read_bytes() == (root / "truth.csv").read_bytes()


def test_planted_mixed_profiles_differ_in_at_least_two_domains():
    import numpy as np

    from trainmatch.synth import planted_profiles

    for seed in range(40):
        strong = planted_profiles(6, 5, np.random.default_rng(seed))[1:-1] > 3
        for i in range(len(strong)):
            for j in range(i + 1, len(strong)):
                assert (strong[i] != strong[j]).sum() >= 2, seed


def test_planted_profiles_work_for_a_programme_with_few_domains():
    import numpy as np

    from trainmatch.synth import planted_profiles

    assert planted_profiles(2, 5, np.random.default_rng(0)).shape == (5, 2)


def test_same_seed_gives_the_same_xlsx_bytes(tmp_path):
    from click.testing import CliRunner

    from trainmatch.cli import main

    for name in ("a.xlsx", "b.xlsx"):
        assert CliRunner().invoke(main, ["synth", "--n", "40", "--seed", "3", "-o", str(tmp_path / name)]).exit_code == 0
    assert (tmp_path / "a.xlsx").read_bytes() == (tmp_path / "b.xlsx").read_bytes()
