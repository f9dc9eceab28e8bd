"""Tests for trainmatch.cohorts: the estimator, fit report, descriptions and training groups."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.metrics import adjusted_rand_score, silhouette_score
from sklearn.utils.estimator_checks import parametrize_with_checks

from trainmatch.cohorts import (
    FitReport,
    cohort_table,
    describe_profile,
    format_fit_report,
    parse_k_range,
)
from trainmatch.groups import make_groups
from trainmatch.kmeans import CohortModel, silhouette_scores
from trainmatch.errors import DataError, UsageError

DOMAINS = ["ict_basics", "ehr", "remote_care", "eservices", "security", "data_use"]
NAMES = [
    "ICT basics",
    "EHR documentation",
    "Remote care and counselling",
    "Guiding clients to e-services",
    "Information security and ethics",
    "Using data and evaluating digital solutions",
]
# Planted profiles on the 1–5 scale: low everywhere, two mixed ones, high everywhere.
PROFILES = np.array(
    [
        [2.0, 2.0, 2.0, 2.0, 2.0, 2.0],
        [4.0, 4.0, 2.3, 2.3, 4.0, 2.3],
        [2.3, 2.3, 4.0, 4.0, 2.3, 4.0],
        [4.2, 4.2, 4.2, 4.2, 4.2, 4.2],
    ]
)


def planted(n: int, seed: int = 0, shares=(0.2, 0.3, 0.3, 0.2), profiles=PROFILES, noise=0.3, missing=0.05):
    """A scores frame (score_<domain>, 1–5, ~5% NaN) with each person's planted profile index."""
    rng = np.random.default_rng(seed)
    truth = rng.choice(len(profiles), size=n, p=np.asarray(shares) / np.sum(shares))
    scores = np.clip(profiles[truth] + rng.normal(0, noise, size=(n, profiles.shape[1])), 1, 5)
    scores[rng.random(scores.shape) < missing] = np.nan
    return pd.DataFrame(scores, columns=[f"score_{d}" for d in DOMAINS]), truth


# --------------------------------------------------------------------------- scikit-learn conventions

# check_fit2d_1sample wants a ValueError for a single sample. CohortModel raises
# trainmatch.errors.DataError instead (the project's error for unusable data,
# which the CLI turns into a clean message and exit 1); DataError is not a
# ValueError, and the message does say "there is 1 person".
EXPECTED_FAILED = {
    "check_fit2d_1sample": "raises trainmatch DataError (not ValueError) for fewer people than the smallest k",
}


@parametrize_with_checks([CohortModel()], expected_failed_checks=lambda est: EXPECTED_FAILED)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_one_person_is_a_data_error():
    with pytest.raises(DataError, match="there is 1 person, fewer than the smallest number of cohorts tried"):
        CohortModel().fit(np.array([[3.0, 4.0]]))


# --------------------------------------------------------------------------- silhouette


def test_silhouette_scores_match_scikit_learn():
    rng = np.random.default_rng(3)
    S = rng.normal(size=(700, 4))
    labelings = [rng.integers(0, k, 700) for k in (2, 3, 6)]
    labelings.append(np.r_[np.zeros(699, dtype=int), 1])  # a singleton cluster scores 0
    ours = silhouette_scores(S, labelings)
    theirs = [silhouette_score(S, lab) for lab in labelings]
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)


# --------------------------------------------------------------------------- fitting


def test_recovers_planted_profiles_and_orders_cohorts_by_level():
    X, truth = planted(2000)
    model = CohortModel().fit(X)
    assert model.n_clusters_ == 4
    assert adjusted_rand_score(truth, model.labels_) >= 0.95
    # C1 is the low profile (most support), C4 the high one
    levels = model.cluster_centers_.mean(axis=1)
    assert np.all(np.diff(levels) > 0)
    low = np.flatnonzero(truth == 0)
    high = np.flatnonzero(truth == 3)
    assert np.bincount(model.labels_[low]).argmax() == 0
    assert np.bincount(model.labels_[high]).argmax() == 3
    assert list(model.cohort_ids_) == ["C1", "C2", "C3", "C4"]
    assert list(model.predict_cohort(X.iloc[high[:3]])) == ["C4", "C4", "C4"]


def test_same_data_and_seed_give_identical_labels_and_centres():
    X, _ = planted(3000, seed=5)
    a = CohortModel(random_state=7).fit(X)
    b = CohortModel(random_state=7).fit(X.copy())
    np.testing.assert_array_equal(a.labels_, b.labels_)
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    assert a.fit_report_ == b.fit_report_


def test_labels_do_not_depend_on_the_seed_for_clear_structure():
    X, _ = planted(1500, seed=2)
    labels = {tuple(CohortModel(random_state=s).fit(X).labels_) for s in range(3)}
    assert len(labels) == 1


def test_sampling_path_matches_truth_and_predict_matches_labels():
    # more people than sample_size: k-means on a sample, refined on everybody
    X, truth = planted(6000, seed=4)
    model = CohortModel(sample_size=1000).fit(X)
    assert model.fit_report_.n_sample == 1000
    assert model.fit_report_.n_people == 6000
    assert adjusted_rand_score(truth, model.labels_) >= 0.95
    np.testing.assert_array_equal(model.predict(X), model.labels_)


def test_missing_scores_are_counted_and_the_input_is_not_changed():
    X, _ = planted(1000, seed=1, missing=0.1)
    before = X.copy()
    model = CohortModel().fit(X)
    assert model.n_imputed_ == int(X.isna().sum().sum())
    assert model.fit_report_.n_imputed == model.n_imputed_
    pd.testing.assert_frame_equal(X, before)
    # standardisation uses the answered scores only
    np.testing.assert_allclose(model.mean_, X.mean().to_numpy())
    np.testing.assert_allclose(model.scale_, X.std(ddof=0).to_numpy())


def test_a_person_with_every_score_missing_goes_to_the_cohort_nearest_the_mean():
    X, _ = planted(2000, seed=1)
    model = CohortModel().fit(X)
    blank = pd.DataFrame([[np.nan] * 6], columns=X.columns)
    nearest = np.argmin((model.cluster_centers_**2).sum(axis=1))
    assert model.predict(blank)[0] == nearest


def test_predict_on_arrays_of_many_rows_matches_brute_force():
    X, _ = planted(2000, seed=8)
    model = CohortModel().fit(X.to_numpy())
    Y, _ = planted(300_000, seed=9)
    Y = Y.to_numpy()
    Z = (Y - model.mean_) / model.scale_
    Z[np.isnan(Z)] = 0
    brute = ((Z[:, None, :] - model.cluster_centers_[None, :, :]) ** 2).sum(axis=2).argmin(axis=1)
    np.testing.assert_array_equal(model.predict(Y), brute)


# --------------------------------------------------------------------------- fit report


def test_fit_report_has_a_row_per_k_and_marks_the_chosen_k():
    X, _ = planted(2000, seed=3)
    report = CohortModel(k_range=(2, 6)).fit(X).fit_report_
    assert isinstance(report, FitReport)
    assert [r.k for r in report.rows] == [2, 3, 4, 5, 6]
    assert report.chosen_k == 4
    best = max(report.rows, key=lambda r: r.silhouette)
    assert best.k == 4
    for r in report.rows:
        assert -1 <= r.silhouette <= 1
        assert r.calinski_harabasz > 0 and r.davies_bouldin > 0
        assert 0 < r.smallest_share <= 1 / r.k
    assert report.warnings == ()
    text = format_fit_report(report)
    assert "k  silhouette  Calinski-Harabasz  Davies-Bouldin  smallest cohort" in text
    assert "*   4" in text
    assert "Chosen: k = 4." in text
    assert FitReport.from_dict(report.to_dict()) == report


def test_tie_tolerance_prefers_the_smaller_k():
    X, _ = planted(2000, seed=3)
    report = CohortModel(k_range=(3, 6), tie_tolerance=0.99).fit(X).fit_report_
    assert report.chosen_k == 3


def test_warns_when_the_chosen_k_is_the_largest_tried():
    X, _ = planted(2000, seed=3)
    report = CohortModel(k_range=(2, 3)).fit(X).fit_report_
    assert report.chosen_k == 3
    assert report.warnings[0] == (
        "The chosen k = 3 is the largest k tried (2-3); more cohorts might fit better. Try a wider range, e.g. 2-6."
    )
    assert "Warnings:\n  - The chosen k = 3 is the largest k tried" in format_fit_report(report)


def test_warns_when_the_chosen_k_is_the_smallest_tried():
    X, _ = planted(2000, seed=3, profiles=PROFILES[[0, 3]], shares=(0.5, 0.5))
    report = CohortModel(k_range=(2, 5)).fit(X).fit_report_
    assert report.chosen_k == 2
    assert "is the smallest k tried (2-5); the data may have no clear cohort structure" in report.warnings[0]


def test_single_k_gives_no_edge_warning():
    X, _ = planted(1000, seed=3)
    report = CohortModel(k_range=(4, 4)).fit(X).fit_report_
    assert [r.k for r in report.rows] == [4]
    assert report.warnings == ()


def test_warns_about_a_cohort_below_min_share():
    X, truth = planted(3000, seed=6, shares=(0.03, 0.47, 0.3, 0.2))
    model = CohortModel(k_range=(4, 4)).fit(X)
    small = np.bincount(model.labels_).min()
    assert [w for w in model.fit_report_.warnings if "below the minimum share of 5%" in w] == [
        f"Cohort C1 has {small} people ({100 * small / 3000:.1f}%), below the minimum share of 5%. "
        "Consider a smaller k, or plan this cohort's training individually."
    ]


# --------------------------------------------------------------------------- bad input


def test_fewer_people_than_the_smallest_k():
    X, _ = planted(3, seed=1, missing=0)
    with pytest.raises(DataError) as err:
        CohortModel(k_range=(4, 6)).fit(X)
    assert str(err.value) == (
        "Cannot form cohorts: there are 3 people, fewer than the smallest number of cohorts tried (k = 4). "
        "Include more people, or lower the k range (e.g. '2-3')."
    )


def test_all_identical_profiles():
    X = pd.DataFrame(np.full((50, 6), 3.0), columns=[f"score_{d}" for d in DOMAINS])
    X.iloc[::7, 2] = np.nan
    with pytest.raises(DataError, match="all 50 people have the same domain-score profile"):
        CohortModel().fit(X)


def test_a_domain_without_scores_is_named():
    X, _ = planted(100, seed=1)
    X["score_ehr"] = np.nan
    with pytest.raises(DataError) as err:
        CohortModel().fit(X)
    assert str(err.value).startswith(
        "Cannot form cohorts: domain 'ehr' (column 'score_ehr') has no scores at all (every person's score is missing)."
    )
    with pytest.raises(DataError, match="column 2 has no scores at all"):
        CohortModel().fit(X.to_numpy())


def test_too_few_distinct_profiles():
    X = np.repeat([[1.0, 2.0], [3.0, 4.0]], 20, axis=0)
    with pytest.raises(DataError, match="only 2 different score profiles among 40 people"):
        CohortModel(k_range=(3, 5)).fit(X)
    report = CohortModel(k_range=(2, 5)).fit(X).fit_report_
    assert [r.k for r in report.rows] == [2]
    assert report.warnings[0] == "k above 2 was not tried: only 2 different score profiles in the sample."


@pytest.mark.parametrize(
    "params, message",
    [
        ({"k_range": (1, 4)}, "k_range must be a pair"),
        ({"k_range": (5, 3)}, "k_range must be a pair"),
        ({"k_range": "2-8"}, "k_range must be a pair"),
        ({"sample_size": 1}, "sample_size must be a whole number of at least 2"),
        ({"n_init": 0}, "n_init must be a whole number of at least 1"),
        ({"min_share": 1.5}, "min_share must be a number at least 0 and below 1"),
    ],
)
def test_bad_parameters_are_usage_errors(params, message):
    X, _ = planted(50)
    with pytest.raises(UsageError, match=message):
        CohortModel(**params).fit(X)


@pytest.mark.parametrize("text, expected", [("2-8", (2, 8)), ("4", (4, 4)), (" 3 - 5 ", (3, 5)), ("2–6", (2, 6)), ("2..7", (2, 7))])
def test_parse_k_range(text, expected):
    assert parse_k_range(text) == expected


@pytest.mark.parametrize(
    "text, message",
    [
        ("8-2", "The k range '8-2' is not valid: 8 is larger than 2."),
        ("x", "The k range 'x' is not valid."),
        ("1-3", "The k range '1-3' is not valid: k must be at least 2"),
        ("", "The k range '' is not valid."),
        ("2-", "The k range '2-' is not valid."),
    ],
)
def test_parse_k_range_rejects(text, message):
    with pytest.raises(UsageError) as err:
        parse_k_range(text)
    assert str(err.value).startswith(message)
    assert str(err.value).endswith("Write it as FROM-TO with 2 ≤ FROM ≤ TO, e.g. '2-8', or one number such as '4'.")


# --------------------------------------------------------------------------- descriptions and table


def test_describe_profile():
    assert describe_profile([0.9, 0.6, -0.7, 0.1, 0.0, -0.5], NAMES) == (
        "above the average in ICT basics and EHR documentation; below the average in remote care and counselling "
        "and using data and evaluating digital solutions"
    )
    assert describe_profile([0.49, -0.49, 0, 0, 0, 0], NAMES) == "close to the average in all domains"
    assert describe_profile([-1] * 6, NAMES) == "below the average in all domains"
    assert describe_profile([1] * 6, NAMES) == "above the average in all domains"
    assert describe_profile([1, 1, 1, 0, 0, 0], NAMES) == (
        "above the average in ICT basics, EHR documentation and remote care and counselling"
    )


@given(st.lists(st.floats(-3, 3), min_size=6, max_size=6))
def test_a_difference_from_other_people_is_never_called_a_gap(z):
    # A gap is what a person's tasks require beyond their level; cohorts are compared with the average only.
    assert "gap" not in describe_profile(z, NAMES)


def test_model_descriptions_follow_the_planted_profiles():
    X, _ = planted(2000, seed=3)
    descriptions = CohortModel().fit(X).describe(NAMES)
    assert descriptions[0] == "below the average in all domains"
    assert descriptions[3] == "above the average in all domains"
    # the two mixed profiles have the same overall level: either may be C2, but each is described by its pattern
    assert sorted(descriptions[1:3]) == [
        "above the average in ICT basics, EHR documentation and information security and ethics; "
        "below the average in remote care and counselling, guiding clients to e-services and using data and evaluating digital solutions",
        "above the average in remote care and counselling, guiding clients to e-services and using data and evaluating digital solutions; "
        "below the average in ICT basics, EHR documentation and information security and ethics",
    ]
    with pytest.raises(UsageError, match="one name per domain"):
        CohortModel().fit(X).describe(NAMES[:2])


def test_cohort_table():
    X, _ = planted(2000, seed=3)
    model = CohortModel().fit(X)
    table = cohort_table(model, X, NAMES)
    assert list(table.columns) == ["cohort", "size", "share", *NAMES, "description"]
    assert list(table["cohort"]) == ["C1", "C2", "C3", "C4"]
    assert table["size"].sum() == 2000
    np.testing.assert_array_equal(table["size"], np.bincount(model.labels_))
    np.testing.assert_allclose(table["share"], table["size"] / 2000)
    expected = X[model.labels_ == 1]["score_ehr"].mean()  # NaN left out
    assert table.loc[1, "EHR documentation"] == pytest.approx(expected)
    assert table.loc[0, "ICT basics"] == pytest.approx(2.0, abs=0.1)
    assert list(table["description"]) == model.describe(NAMES)


# --------------------------------------------------------------------------- training groups


def groups_of(cohorts, sites, **kw):
    return make_groups(pd.Series(cohorts), pd.Series(sites), **kw)


def test_a_big_site_is_split_into_near_equal_groups():
    ids, groups, problems = groups_of(["C1"] * 30, ["A"] * 30)
    assert list(groups["group"]) == ["C1-G01", "C1-G02", "C1-G03"]
    assert list(groups["members"]) == [10, 10, 10]
    assert list(groups["site"]) == ["A", "A", "A"]
    assert list(ids) == ["C1-G01"] * 10 + ["C1-G02"] * 10 + ["C1-G03"] * 10
    assert problems == []


def test_small_sites_are_pooled_into_mixed_groups():
    ids, groups, problems = groups_of(["C2"] * 10, ["B", "A", "B", "A", "B", "A", "C", "C", "B", "A"])
    assert groups.to_dict("records") == [
        {"group": "C2-G01", "cohort": "C2", "site": "mixed: A, B, C", "members": 10, "undersized": False}
    ]
    assert problems == []


def test_mixed_group_cuts_move_to_site_boundaries_when_bounds_allow():
    # 24 people from sites of 5, 4, 5, 5, 5: two groups of 12 ideally; a cut at the A|B…
    sites = ["A"] * 5 + ["B"] * 4 + ["C"] * 5 + ["D"] * 5 + ["E"] * 5
    ids, groups, problems = groups_of(["C1"] * 24, sites, min_size=6, max_size=14)
    # ideal cut 12, nearest site boundary 14 (C|D), within the slack of 2: groups 14 and 10
    assert list(groups["members"]) == [14, 10]
    assert list(groups["site"]) == ["mixed: A, B, C", "mixed: D, E"]


def test_a_small_leftover_joins_the_cohorts_site_group():
    ids, groups, problems = groups_of(["C1"] * 14, ["A"] * 12 + ["B"] * 2)
    assert groups.to_dict("records") == [
        {"group": "C1-G01", "cohort": "C1", "site": "mixed: A, B", "members": 14, "undersized": False}
    ]
    assert problems == []


def test_a_leftover_with_no_room_forms_an_undersized_group():
    ids, groups, problems = groups_of(["C1"] * 16, ["A"] * 14 + ["B"] * 2)
    assert list(groups["members"]) == [14, 2]
    assert list(groups["undersized"]) == [False, True]
    assert problems == [
        "Cohort C1: 2 people from small sites did not fit into the cohort's full groups (at most 14); "
        "they form one undersized group."
    ]


def test_a_cohort_smaller_than_min_size_is_reported():
    cohorts = ["C1"] * 4 + ["C2"] * 8
    ids, groups, problems = groups_of(cohorts, ["A", "B", "A", "B"] + ["A"] * 8)
    assert list(groups["group"]) == ["C1-G01", "C2-G01"]
    assert list(groups["undersized"]) == [True, False]
    assert list(groups["site"]) == ["mixed: A, B", "A"]
    assert problems == [
        "Cohort C1 has 4 people, fewer than the minimum group size 6: they form one undersized group. "
        "Consider training them with a neighbouring cohort or individually."
    ]


def test_groups_follow_cohort_then_site_then_input_order_and_keep_the_index():
    cohorts = pd.Series(["C10", "C2", "C2", "C10"] * 6, index=range(100, 124))
    sites = pd.Series(["Y", "X", "Y", "X"] * 6, index=range(100, 124))
    ids, groups, problems = make_groups(cohorts, sites)
    assert list(groups["group"]) == ["C2-G01", "C2-G02", "C10-G01", "C10-G02"]  # C2 before C10
    assert list(groups["site"]) == ["X", "Y", "X", "Y"]
    assert ids.index.equals(cohorts.index)
    assert ids.loc[101] == "C2-G01" and ids.loc[102] == "C2-G02" and ids.loc[103] == "C10-G01"
    assert problems == []


def test_groups_cover_everybody_within_bounds_at_scale():
    rng = np.random.default_rng(0)
    n = 200_000
    cohorts = pd.Series(np.char.add("C", rng.integers(1, 6, n).astype(str)))
    sites = pd.Series(np.char.add("site", rng.zipf(1.6, n).clip(max=3000).astype(str)))
    ids, groups, problems = make_groups(cohorts, sites, min_size=6, max_size=14)
    assert ids.notna().all()
    counts = ids.value_counts()
    assert counts.sum() == n
    assert groups.set_index("group")["members"].sort_index().equals(counts.sort_index().rename("members").rename_axis("group"))
    assert groups["members"].between(6, 14).all()
    assert problems == []
    # single-site groups hold one site only
    single = groups.loc[~groups["site"].str.startswith("mixed: "), "group"]
    per_group_sites = sites.groupby(ids).nunique()
    assert (per_group_sites.loc[single] == 1).all()
    # the same input gives the same groups
    again, _, _ = make_groups(cohorts, sites, min_size=6, max_size=14)
    assert again.equals(ids)


def test_tight_bounds_are_reported():
    ids, groups, problems = groups_of(["C1"] * 13, ["A"] * 13, min_size=10, max_size=12)
    assert list(groups["members"]) == [7, 6]
    assert problems == ["Cohort C1, site 'A': 13 people cannot be split into groups of 10–12; made 2 groups below 10."]


def test_group_size_arguments_are_checked():
    with pytest.raises(UsageError, match="1 ≤ min_size ≤ max_size"):
        groups_of(["C1"], ["A"], min_size=8, max_size=4)
    with pytest.raises(UsageError, match="one entry per person"):
        make_groups(pd.Series(["C1", "C1"]), pd.Series(["A"]))


def test_no_people_no_groups():
    ids, groups, problems = groups_of([], [])
    assert len(ids) == 0 and len(groups) == 0 and problems == []
    assert list(groups.columns) == ["group", "cohort", "site", "members", "undersized"]


# --------------------------------------------------------------------------- recovery on a synthetic survey


@pytest.mark.parametrize("seed", [1, 2])
def test_recovers_the_synthetic_surveys_planted_profiles(seed, default_programme):
    """End to end: synth --structure profiles → import → score → cohorts; adjusted Rand index against the planted
    profile ≥ 0.9."""
    from trainmatch.io import RawSurvey
    from trainmatch.scoring import score, score_columns
    from trainmatch.survey import import_survey
    from trainmatch.synth import planted_profiles, synthesize

    programme = default_programme
    # Precondition: every two planted profiles differ clearly in at least two domains. (Profiles that
    # differ in one domain only are merged by the silhouette criterion, e.g. synth seeds 0 and 11.)
    profiles = planted_profiles(len(programme.domains), 5, np.random.default_rng(seed))
    differing = (np.abs(profiles[:, None, :] - profiles[None, :, :]) > 1).sum(axis=2)
    assert differing[~np.eye(5, dtype=bool)].min() >= 2

    survey, truth = synthesize(programme, 5000, seed=seed, structure="profiles")
    raw = RawSurvey(
        path="synthetic.csv",
        frame=survey,
        lines=np.arange(2, len(survey) + 2),
        kind="csv",
        encoding="utf-8",
        delimiter=",",
        sheet=None,
        sha256="",
    )
    people = score(import_survey(raw, programme).people, programme)
    model = CohortModel(random_state=0).fit(people[score_columns(programme)])
    planted_profile = truth.set_index(programme.columns.id).loc[people["person_id"], "profile"].to_numpy()
    assert model.n_clusters_ == 5
    assert adjusted_rand_score(planted_profile, model.labels_) >= 0.9


# --------------------------------------------------------------------------- honest cohorts: stability


def test_planted_profiles_are_stable_and_said_to_be_groups():
    X, _ = planted(3000, seed=2)
    report = CohortModel(random_state=0).fit(X).fit_report_
    assert report.n_bootstrap == 10
    assert report.stability_ari >= 0.95
    assert not report.no_natural_groups
    assert not any("no natural groups" in w for w in report.warnings)
    assert "Stability: mean adjusted Rand index" in format_fit_report(report)


def test_a_continuum_cut_into_four_is_said_to_have_no_natural_groups(default_programme):
    """synth's default structure: one general factor. At k = 4 the cohorts are bands, and the fit says so first."""
    from trainmatch.io import RawSurvey
    from trainmatch.scoring import score, score_columns
    from trainmatch.survey import import_survey
    from trainmatch.synth import synthesize

    survey, _ = synthesize(default_programme, 3000, seed=8)
    raw = RawSurvey("s.csv", survey, np.arange(2, 3002), "csv", "utf-8", ",", None, "")
    people = score(import_survey(raw, default_programme).people, default_programme)
    report = CohortModel(k_range=(4, 4), random_state=0).fit(people[score_columns(default_programme)]).fit_report_
    assert 0 <= report.stability_ari <= 1
    assert report.silhouette < 0.25 and report.no_natural_groups
    assert report.warnings[0].startswith("The survey shows no natural groups: people are hardly closer to their own cohort")
    assert "The 4 cohorts are bands along overall competence (C1 lowest)" in report.warnings[0]


def test_stability_is_measured_on_the_sample_and_seeded(monkeypatch):
    import trainmatch.kmeans as kmeans_module

    X, _ = planted(4000, seed=5)
    fitted_on: list[int] = []
    real = kmeans_module.KMeans

    class Recording(real):  # every k-means fit, with the number of people it saw
        def fit(self, X, y=None, sample_weight=None):
            fitted_on.append(len(X))
            return super().fit(X, y, sample_weight)

    monkeypatch.setattr(kmeans_module, "KMeans", Recording)
    report = CohortModel(random_state=3, sample_size=1000, k_range=(2, 4), n_bootstrap=10).fit(X).fit_report_
    # 3 ks tried, 10 bootstrap refits, all on the sample of 1,000; one last refinement on all 4,000
    assert fitted_on == [1000] * (3 + 10) + [4000] and report.n_bootstrap == 10
    monkeypatch.setattr(kmeans_module, "KMeans", real)
    a = CohortModel(random_state=3, sample_size=1000).fit(X).fit_report_
    b = CohortModel(random_state=3, sample_size=1000).fit(X).fit_report_
    assert a.stability_ari == b.stability_ari and a.n_sample == 1000
    assert np.isnan(CohortModel(random_state=3, n_bootstrap=0).fit(X).fit_report_.stability_ari)


def test_the_fit_report_keeps_its_stability_through_a_saved_model():
    X, _ = planted(1500, seed=1)
    report = CohortModel(random_state=0).fit(X).fit_report_
    again = FitReport.from_dict(report.to_dict())
    assert again == report
    old = report.to_dict()
    del old["stability_ari"], old["n_bootstrap"]  # a model saved before stability was measured
    assert np.isnan(FitReport.from_dict(old).stability_ari) and not FitReport.from_dict(old).no_natural_groups
