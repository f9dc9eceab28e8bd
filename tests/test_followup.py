"""Follow-up rounds: `trainmatch followup PREVIOUS SURVEY -o OUT` and `synth --followup-of`.

A first round (a synthetic survey planned by assign) and a synthetic second round with planted
change are made once per session; the tests run the command on them and read its files as HR would.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import trainmatch.jobs as jobs


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"person_id": str}, keep_default_na=False, na_values=[""])


@pytest.fixture(scope="session")
def round1(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first round: 500 synthetic people planned by assign."""
    folder = tmp_path_factory.mktemp("round1")
    jobs.synth(folder / "survey1.csv", n=500, seed=11)
    jobs.assign(folder / "survey1.csv", folder / "out", seed=0, per_person="none", xlsx=False)
    return folder / "out"


def _second(folder: Path, round1: Path, seed: int, effect: float) -> dict[str, Path]:
    files = {"survey": folder / "survey2.csv", "completions": folder / "lms.csv", "feedback": folder / "ratings.csv",
             "truth": folder / "truth.csv"}
    jobs.synth(files["survey"], seed=seed, followup_of=round1, completions_out=files["completions"],
               feedback_out=files["feedback"], truth=files["truth"], effect=effect)
    return files


@pytest.fixture(scope="session")
def round2(tmp_path_factory: pytest.TempPathFactory, round1: Path) -> dict[str, Path]:
    """A second round of round1 with a planted effect of 0.5 and its follow-up run (letters included)."""
    folder = tmp_path_factory.mktemp("round2")
    files = _second(folder, round1, seed=12, effect=0.5)
    jobs.followup(round1, files["survey"], folder / "out", completions=files["completions"], feedback=files["feedback"],
                  xlsx=False)
    return {**files, "out": folder / "out"}


# --------------------------------------------------------------------------- the command and its counts


def test_followup_writes_the_round_and_every_count_reconciles(cli, round1: Path, round2: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = cli("followup", round1, round2["survey"], "-o", out, "--completions", round2["completions"],
                 "--feedback", round2["feedback"], "--per-person", "none", "--no-xlsx")
    assert result.exit_code == 0, result.output
    for name in ("people.csv", "plans.csv", "rejects.csv", "change.csv", "effects.csv", "modules.csv", "leavers.csv",
                 "completions-rejects.csv", "feedback-rejects.csv", "report.html", "run.json", "model/model.json"):
        assert (out / name).is_file(), name
    record = json.loads((out / "run.json").read_text())
    fu = record["followup"]
    people, rejects = _read(out / "people.csv"), _read(out / "rejects.csv")
    survey_rows = len(pd.read_csv(round2["survey"], dtype=str))
    assert len(people) + len(rejects) == survey_rows == record["counts"]["rows_read"]
    previous = _read(round1 / "people.csv")
    counts = fu["counts"]
    assert counts["paired"] + counts["leavers"] == len(previous) and counts["reconciles"]
    assert counts["joiners"] == (people["round"] == "joiner").sum() and counts["paired"] == (people["round"] == "paired").sum()
    assert 0.05 * len(previous) < counts["leavers"] < 0.12 * len(previous)
    leavers = _read(out / "leavers.csv")
    assert len(leavers) == counts["leavers"] and not leavers["person_id"].isin(people["person_id"]).any()
    # Joiners get an ordinary plan; paired people show their previous cohort.
    joiners = people[people["round"] == "joiner"]
    assert joiners["previous_cohort"].isna().all() and joiners["planned_hours"].sum() > 0
    assert people.loc[people["round"] == "paired", "previous_cohort"].notna().all()
    for name in ("completions", "feedback"):
        assert fu[name]["accepted"] + fu[name]["rejected"] == fu[name]["rows_read"]
    assert f"Paired {counts['paired']:,} people" in result.output


def test_the_previous_cohort_model_is_reused(round1: Path, round2: dict[str, Path]) -> None:
    record = json.loads((round2["out"] / "run.json").read_text())
    assert record["cohort_model"]["reused"] == str(round1 / "model")
    before = json.loads((round1 / "model" / "model.json").read_text())
    after = json.loads((round2["out"] / "model" / "model.json").read_text())
    assert before["centres"] == after["centres"]


def test_change_has_a_row_per_paired_person_and_domain_with_jacobson_truax(round1: Path, round2: dict[str, Path]) -> None:
    out = round2["out"]
    change = _read(out / "change.csv")
    record = json.loads((out / "run.json").read_text())
    domains = record["instrument"]["domains"]
    assert len(change) == record["followup"]["counts"]["paired"] * len(domains)
    sem = {d: json.loads((round1 / "run.json").read_text())["reliability"][d]["sem"] for d in domains}
    known = change.dropna(subset=["change"])
    threshold = known["domain"].map(sem) * 1.96 * math.sqrt(2)
    expected = np.where(known["change"] > threshold, "improved", np.where(known["change"] < -threshold, "declined", "no"))
    assert (known["reliable_change"].to_numpy() == expected).all()
    assert ((known["score_after"] - known["score_before"]).round(3) == known["change"]).all()
    closed = change[(change["gap_before"] > 0) & change["gap_after"].notna()]
    assert (closed["gap_closed"] == np.where(closed["gap_after"] <= 0, "yes", "no")).all()
    assert change.loc[change["gap_after"].isna(), "gap_closed"].isna().all()  # not assessed now: not known
    assert change.loc[change["gap_before"].fillna(0) <= 0, "gap_closed"].isna().all()
    # modules completed in the domain come from the completions file
    lms = _read(round2["completions"])
    person = change["person_id"].iloc[0]
    assert change.loc[change["person_id"] == person, "modules_completed"].sum() <= (
        (lms["person_id"] == person) & (lms["status"] == "completed")).sum()


# --------------------------------------------------------------------------- did the training work


@pytest.mark.parametrize("effect", [0.5, 0.0])
def test_effects_recover_the_planted_completer_difference(tmp_path: Path, round1: Path, effect: float) -> None:
    files = _second(tmp_path, round1, seed=21, effect=effect)
    run = jobs.followup(round1, files["survey"], tmp_path / "out", completions=files["completions"], per_person="none", xlsx=False)
    everyone = run.effects[run.effects["by"] == "all"]
    assert len(everyone) == 6 and everyone["completer_difference"].notna().all()
    inside = (everyone["difference_ci_low"] <= effect) & (effect <= everyone["difference_ci_high"])
    assert inside.all(), everyone[["domain", "completer_difference", "difference_ci_low", "difference_ci_high"]]
    assert abs(everyone["completer_difference"].mean() - effect) < 0.1
    assert (everyone["comparison"].str.startswith("observational")).all()


def test_intervals_are_scipys(tmp_path: Path) -> None:
    from scipy import stats

    from trainmatch.followup import mean_interval, welch_interval

    rng = np.random.default_rng(0)
    a, b = rng.normal(0.6, 1, 40), rng.normal(0.1, 2, 25)
    diff, lo, hi = welch_interval(np.array([40.0]), np.array([a.mean()]), np.array([a.var(ddof=1)]),
                                  np.array([25.0]), np.array([b.mean()]), np.array([b.var(ddof=1)]))
    ci = stats.ttest_ind(a, b, equal_var=False).confidence_interval()
    assert np.allclose([lo[0], hi[0]], [ci.low, ci.high]) and np.isclose(diff[0], a.mean() - b.mean())
    lo, hi = mean_interval(np.array([40.0]), np.array([a.mean()]), np.array([a.std(ddof=1)]))
    ci = stats.ttest_1samp(a, 0).confidence_interval()
    assert np.allclose([lo[0], hi[0]], [ci.low, ci.high])


def test_small_cells_are_suppressed(round2: dict[str, Path]) -> None:
    effects = _read(round2["out"] / "effects.csv")
    assert set(effects["by"]) == {"all", "cohort", "site", "role", "format"}
    shown = effects[effects["suppressed"] != "yes"]
    assert (shown["n"] >= 5).all()
    hidden = effects[effects["suppressed"] == "yes"]
    assert len(hidden) and hidden[["n", "mean_change", "ci_low", "ci_high", "srm"]].isna().all().all()
    compared = effects[effects["completer_difference"].notna()]
    assert (compared["n_completers"] >= 5).all() and (compared["n_non_completers"] >= 5).all()


def test_a_larger_min_cell_suppresses_more(tmp_path: Path, round1: Path, round2: dict[str, Path]) -> None:
    from trainmatch.programme import load_programme, write_programme

    folder = tmp_path / "prog"
    write_programme(folder)
    settings = folder / "programme.toml"
    settings.write_text(settings.read_text(encoding="utf-8") + "\n[privacy]\nmin_cell = 60\n", encoding="utf-8")
    run = jobs.followup(round1, round2["survey"], tmp_path / "out", programme=load_programme(folder), per_person="none",
                        xlsx=False, completions=round2["completions"])
    shown = run.effects[run.effects["suppressed"] != "yes"]
    assert (shown["n"] >= 60).all() and (run.effects["suppressed"] == "yes").sum() > 0


# --------------------------------------------------------------------------- completions and feedback


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_bad_completion_and_feedback_rows_are_rejected_with_their_reason(tmp_path: Path, round1: Path, round2: dict[str, Path]) -> None:
    people = _read(round1 / "people.csv")["person_id"]
    plans = _read(round1 / "plans.csv")
    a, b = people.iloc[0], people.iloc[1]
    module = plans.loc[plans["person_id"] == a, "module"].iloc[0]
    lms = _write(tmp_path / "lms.csv", "\n".join([
        "person_id,lms_course,status,completed_at",
        f"{a},{module},completed,2099-01-05 10:00",
        f"{a},{module},completed,2099-01-06 10:00",  # duplicate
        f"nobody,{module},completed,2099-01-05",  # unknown person
        f"{b},no.such.course,completed,2099-01-05",  # unknown module
        f"{b},{module},completed,31.13.2099",  # bad date
        f"{b},{module},completed,2001-01-01",  # before the previous run
        f"{b},{module},almost,2099-01-05",  # unknown status
        f" {b} ,{module},in progress,",  # accepted: not completed, id normalised
    ]) + "\n")
    ratings = _write(tmp_path / "ratings.csv", "\n".join([
        "person,module,rating,comment",
        f"{a},{module},5,Maija Meikäläinen explained it well",
        f"{b},{module},7,",
        f"{b},nope,3,",
        f"{b},{module},x,",
    ]) + "\n")
    run = jobs.followup(round1, round2["survey"], tmp_path / "out", completions=lms, feedback=ratings, per_person="none", xlsx=False)
    rejects = run.completions_rejects
    reasons = dict(zip(rejects["row"], rejects["reason"]))
    assert sorted(reasons) == [2, 3, 4, 5, 6, 7]
    assert reasons[2].startswith("duplicate: row 1") and reasons[3].startswith("unknown person")
    assert reasons[4].startswith("unknown module") and reasons[5].startswith("bad date")
    assert reasons[6].startswith("completed before the previous run") and reasons[7].startswith("unknown status")
    assert list(rejects.loc[rejects["row"] == 5, ["column", "value"]].iloc[0]) == ["completed_at", "31.13.2099"]
    fb = run.feedback_rejects
    assert sorted(fb["row"]) == [2, 3, 4]
    assert fb.loc[fb["row"] == 2, "reason"].iloc[0].startswith("rating outside 1-5")
    record = json.loads((tmp_path / "out" / "run.json").read_text())["followup"]
    assert record["completions"] == {"rows_read": 8, "accepted": 2, "rejected": 6, "completed": 1, "reconciles": True}
    assert record["feedback"]["accepted"] == 1 and record["feedback"]["reconciles"]
    # The comment may name people: it is counted, never copied.
    modules = run.modules.set_index("module")
    assert modules.loc[module, "n_comments"] == 1 and modules.loc[module, "n_ratings"] == 1
    for path in (tmp_path / "out").rglob("*"):
        if path.is_file():
            assert b"Meik" not in path.read_bytes(), path


def test_completions_without_a_module_column_stop_with_a_clear_message(cli, tmp_path: Path, round1: Path, round2: dict[str, Path]) -> None:
    lms = _write(tmp_path / "lms.csv", "person_id,what,status\nx,y,completed\n")
    result = cli("followup", round1, round2["survey"], "-o", tmp_path / "out", "--completions", lms)
    assert result.exit_code == 1
    assert "no column for the module" in result.output and "lms_course" in result.output
    assert not (tmp_path / "out").exists()


def test_modules_table_counts_plans_completions_and_ratings(round1: Path, round2: dict[str, Path]) -> None:
    modules = _read(round2["out"] / "modules.csv")
    plans = _read(round1 / "plans.csv")
    assert modules["planned"].sum() == len(plans)
    assert (modules["completed"] <= modules["planned"]).all()
    rate = modules[modules["planned"] > 0]
    assert np.allclose(rate["completion_rate"], (rate["completed"] / rate["planned"]).round(3))
    assert (modules.loc[modules["n_ratings"] < 5, "mean_rating"].isna()).all()
    assert modules["mean_rating"].dropna().between(1, 5).all()


# --------------------------------------------------------------------------- refusals


def test_a_folder_that_is_not_a_run_is_refused(cli, tmp_path: Path, round2: dict[str, Path]) -> None:
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "people.csv").write_text("person_id\n1\n")
    result = cli("followup", tmp_path / "notes", round2["survey"], "-o", tmp_path / "out")
    assert result.exit_code == 1
    assert "is not the output folder of a trainmatch assign or followup run: it holds no run.json" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "out").exists()


@pytest.mark.parametrize("damage, message", [
    ("missing", "plans.csv is missing"),
    ("rows", "has 499 rows but"),
    ("level", "is not a level of the run"),
])
def test_an_edited_previous_run_is_refused(cli, tmp_path: Path, round1: Path, round2: dict[str, Path], damage: str, message: str) -> None:
    copy = tmp_path / "round1"
    shutil.copytree(round1, copy)
    if damage == "missing":
        (copy / "plans.csv").unlink()
    elif damage == "rows":
        lines = (copy / "people.csv").read_text(encoding="utf-8").splitlines(keepends=True)
        (copy / "people.csv").write_text("".join(lines[:-1]), encoding="utf-8")
    else:
        text = (copy / "people.csv").read_text(encoding="utf-8")
        (copy / "people.csv").write_text(text.replace('"intermediate"', '"middling"', 1), encoding="utf-8")
    result = cli("followup", copy, round2["survey"], "-o", tmp_path / "out")
    assert result.exit_code == 1, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_another_instrument_is_refused_listing_the_differences(cli, tmp_path: Path, round1: Path, round2: dict[str, Path]) -> None:
    from trainmatch.programme import write_programme

    folder = tmp_path / "prog"
    write_programme(folder)
    items = folder / "items.csv"
    text = items.read_text(encoding="utf-8")
    items.write_text(text.replace("ict2,ict_basics,yes,", "ict2,ict_basics,no,", 1), encoding="utf-8")
    result = cli("followup", round1, round2["survey"], "-o", tmp_path / "out", "--programme", folder)
    assert result.exit_code == 1
    assert "does not measure what the run" in result.output and "item ict2: reverse True → False" in result.output
    assert not (tmp_path / "out").exists()


def test_a_changed_catalogue_is_fine_and_reported(cli, tmp_path: Path, round1: Path, round2: dict[str, Path]) -> None:
    from trainmatch.programme import write_programme

    folder = tmp_path / "prog"
    write_programme(folder)
    settings = folder / "programme.toml"
    settings.write_text(settings.read_text(encoding="utf-8") + "\n[feedback]\ndemote_below = 3.0\n", encoding="utf-8")
    result = cli("followup", round1, round2["survey"], "-o", tmp_path / "out", "--programme", folder, "--per-person", "none", "-q")
    assert result.exit_code == 0, result.output
    assert "Warning: The catalogue, rules or settings changed since the run" in result.output


def test_the_same_survey_again_is_a_warning(cli, tmp_path: Path, round1: Path) -> None:
    survey = round1.parent / "survey1.csv"
    result = cli("followup", round1, survey, "-o", tmp_path / "out", "--per-person", "none", "-q")
    assert result.exit_code == 0, result.output
    assert "is byte for byte the survey of the previous run" in result.output


def test_refit_and_model_together_are_a_usage_error(cli, tmp_path: Path, round1: Path, round2: dict[str, Path]) -> None:
    result = cli("followup", round1, round2["survey"], "-o", tmp_path / "out", "--refit", "--model", round1 / "model")
    assert result.exit_code == 2 and "not both" in result.output


def test_synth_completions_out_needs_followup_of(cli, tmp_path: Path) -> None:
    result = cli("synth", "-o", tmp_path / "s.csv", "--completions-out", tmp_path / "c.csv")
    assert result.exit_code == 2 and "need --followup-of" in result.output


# --------------------------------------------------------------------------- letters and report


def test_letters_open_with_the_persons_progress(round2: dict[str, Path]) -> None:
    out = round2["out"]
    change = _read(out / "change.csv")
    people = _read(out / "people.csv").set_index("person_id")
    rose = change[(change["level_before"].notna()) & (change["level_after"] != change["level_before"])]
    from trainmatch.programme import load_programme

    programme = load_programme()
    order = {lv: i for i, lv in enumerate(programme.level_ids)}
    up = rose[rose["level_after"].map(order) > rose["level_before"].map(order)]
    openings = {"en": "Since the last survey your level", "fi": "Edellisen kyselyn jälkeen osaamistasosi",
                "sv": "Sedan den förra enkäten har din nivå"}
    seen = set()
    for person in up["person_id"].unique()[:40]:
        lang = people.loc[person, "language"]
        lang = lang if lang in openings else "fi"
        html = (out / "plans" / f"plan-{person}.html").read_text(encoding="utf-8")
        assert openings[lang] in html, person
        seen.add(lang)
    assert {"en", "fi"} <= seen
    steady = set(change["person_id"]) - set(up["person_id"])
    if steady:
        html = (out / "plans" / f"plan-{sorted(steady)[0]}.html").read_text(encoding="utf-8")
        assert not any(text in html for text in openings.values())


def test_the_report_has_a_followup_section(round2: dict[str, Path]) -> None:
    html = (round2["out"] / "report.html").read_text(encoding="utf-8")
    assert '<section id="followup">' in html and 'href="#followup"' in html
    assert "Completers against non-completers" in html and "observational comparison" in html
    assert 'id="chart-followup-change"' in html and "Completion rate by format" in html


# --------------------------------------------------------------------------- the next round's plans


def test_completed_modules_are_not_planned_again(round2: dict[str, Path]) -> None:
    plans = _read(round2["out"] / "plans.csv")
    lms = _read(round2["completions"])
    done = lms[lms["status"] == "completed"]
    from trainmatch.completions import module_lookup
    from trainmatch.pipeline import load_plan
    from trainmatch.programme import load_programme

    lookup = module_lookup(load_plan(load_programme()).catalogue)
    done_pairs = set(zip(done["person_id"], done["lms_course"].str.casefold().map(lookup)))
    planned_pairs = set(zip(plans["person_id"], plans["module"]))
    assert len(done_pairs) > 100 and not done_pairs & planned_pairs


def test_needs_deferred_last_round_come_first_and_say_so(round1: Path, round2: dict[str, Path]) -> None:
    plans = _read(round2["out"] / "plans.csv")
    before = _read(round1 / "deferred.csv")
    carried = plans["reason"].str.contains("deferred last round, so planned first")
    assert carried.sum() > 10
    pairs = set(zip(before["person_id"], before["objective"]))
    assert all(pair in pairs for pair in zip(plans.loc[carried, "person_id"], plans.loc[carried, "objective"]))
    # Before a person's last carried-over need come only carried-over needs and what they build on.
    from trainmatch.pipeline import load_plan
    from trainmatch.programme import load_programme

    objectives = load_plan(load_programme()).catalogue.objectives

    def below(objective: str) -> set[str]:
        out, todo = set(), [objective]
        while todo:
            for p in objectives[todo.pop()].prerequisites:
                if p not in out:
                    out.add(p)
                    todo.append(p)
        return out

    deferred = _read(round2["out"] / "deferred.csv")  # a carried-over need deferred again still pulls its prerequisites first
    carried_deferred = deferred[[pair in pairs for pair in zip(deferred["person_id"], deferred["objective"])]]
    still = carried_deferred.groupby("person_id")["objective"].agg(set)
    checked = 0
    for person, steps in plans.assign(carried=carried).groupby("person_id"):
        if not steps["carried"].any() or steps["carried"].all():
            continue
        last = steps.loc[steps["carried"], "step"].max()
        roots = set(steps.loc[steps["carried"], "objective"]) | still.get(person, set())
        allowed = set().union(*(below(o) for o in roots))
        earlier = steps[(steps["step"] < last) & ~steps["carried"]]
        assert earlier["objective"].isin(allowed).all(), (person, earlier["objective"].tolist())
        checked += 1
    assert checked > 5
    # The letter says so too, in the person's language.
    said = {"en": "kept from your last plan, so it comes first", "fi": "siirtyi edellisestä suunnitelmastasi",
            "sv": "flyttad från din förra plan"}
    people = _read(round2["out"] / "people.csv").set_index("person_id")
    for person in plans.loc[carried, "person_id"].unique()[:10]:
        lang = people.loc[person, "language"] if people.loc[person, "language"] in said else "fi"
        assert said[lang] in (round2["out"] / "plans" / f"plan-{person}.html").read_text(encoding="utf-8"), person


def test_poorly_rated_modules_are_demoted(tmp_path: Path, round1: Path, round2: dict[str, Path]) -> None:
    plans = _read(round1 / "plans.csv")
    module = plans["module"].value_counts().index[0]
    raters = plans.loc[plans["module"] == module, "person_id"].unique()[:6]
    ratings = _write(tmp_path / "ratings.csv", "person_id,module,rating\n" + "".join(f"{p},{module},1\n" for p in raters))
    plain = jobs.followup(round1, round2["survey"], tmp_path / "plain", per_person="none", xlsx=False)
    run = jobs.followup(round1, round2["survey"], tmp_path / "out", feedback=ratings, per_person="none", xlsx=False)
    assert run.run.record["followup"]["demoted_modules"] == [module]
    assert run.modules.set_index("module").loc[module, "demoted"] == "yes"
    before = (plain.run.plans["module"] == module).sum()
    after = run.run.plans[run.run.plans["module"] == module]
    assert before > 20 and len(after) < before / 2
    assert after["reason"].astype(str).str.contains("rated low in feedback, chosen as no other format fits").all()


def test_a_followup_round_can_be_the_previous_one(tmp_path: Path, round2: dict[str, Path]) -> None:
    """A third round follows the second: PREVIOUS may be a followup's folder."""
    files = _second(tmp_path, round2["out"], seed=31, effect=0.5)
    run = jobs.followup(round2["out"], files["survey"], tmp_path / "out", completions=files["completions"], per_person="none", xlsx=False)
    counts = run.run.record["followup"]["counts"]
    assert counts["reconciles"] and counts["paired"] > 0.8 * len(_read(round2["out"] / "people.csv"))
    assert run.run.record["followup"]["completions"]["rejected"] == 0


def test_an_empty_completions_file_names_the_file(cli, tmp_path: Path, round1: Path, round2: dict[str, Path]) -> None:
    lms = _write(tmp_path / "lms.csv", "")
    result = cli("followup", round1, round2["survey"], "-o", tmp_path / "out", "--completions", lms)
    assert result.exit_code == 1 and "lms.csv" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_a_mapping_names_the_columns_of_an_lms_export(cli, tmp_path: Path, round1: Path, round2: dict[str, Path]) -> None:
    people = _read(round1 / "people.csv")["person_id"]
    plans = _read(round1 / "plans.csv")
    module = plans.loc[plans["person_id"] == people.iloc[0], "module"].iloc[0]
    lms = _write(tmp_path / "lms.csv", f"Työntekijä;Kurssi;Tila\n{people.iloc[0]};{module};suoritettu\n")
    mapping = _write(tmp_path / "lms.toml", '[columns]\nperson_id = "Työntekijä"\nmodule = "Kurssi"\nstatus = "Tila"\n')
    out = tmp_path / "out"
    result = cli("followup", round1, round2["survey"], "-o", out, "--completions", lms, "--completions-mapping", mapping,
                 "--per-person", "none", "-q")
    assert result.exit_code == 0, result.output
    assert json.loads((out / "run.json").read_text())["followup"]["completions"]["completed"] == 1
    bad = _write(tmp_path / "bad.toml", '[columns]\nperson_id = "Tyontekija"\nmodul = "Kurssi"\n')
    result = cli("followup", round1, round2["survey"], "-o", tmp_path / "out2", "--completions", lms, "--completions-mapping", bad)
    assert result.exit_code == 1 and not (tmp_path / "out2").exists()
    assert "key columns.person_id: is not a header of the file. Got 'Tyontekija'. Did you mean 'Työntekijä'?" in result.output
    assert "key columns.modul: unknown key. Did you mean 'module'?" in result.output
    result = cli("followup", round1, round2["survey"], "-o", tmp_path / "out3", "--feedback-mapping", mapping)
    assert result.exit_code == 2 and "give that file too (--feedback FILE)" in result.output


def test_a_survey_of_new_people_only_pairs_no_one(cli, tmp_path: Path, round1: Path, round2: dict[str, Path]) -> None:
    survey = pd.read_csv(round2["survey"], dtype=str, keep_default_na=False)
    survey["person_id"] = "X" + survey["person_id"]
    survey.to_csv(tmp_path / "new.csv", index=False)
    out = tmp_path / "out"
    result = cli("followup", round1, tmp_path / "new.csv", "-o", out, "--completions", round2["completions"], "--no-xlsx", "-q")
    assert result.exit_code == 0, result.output
    counts = json.loads((out / "run.json").read_text())["followup"]["counts"]
    assert counts["paired"] == 0 and counts["joiners"] == len(survey) and counts["leavers"] == len(_read(round1 / "people.csv"))
    assert len(_read(out / "change.csv")) == 0 and len(_read(out / "effects.csv")) == 0
    assert (_read(out / "people.csv")["round"] == "joiner").all()


def test_a_followup_round_gets_dates_and_lms_users_like_assign(cli, round1: Path, round2: dict[str, Path], tmp_path: Path) -> None:
    """Every option of assign applies to the new round: --start dates its sessions, --lms-users names its LMS users."""
    import csv

    people = [row["person_id"] for row in csv.DictReader(round2["survey"].open(encoding="utf-8"))]
    users = tmp_path / "users.csv"
    users.write_text("person_id,username\n" + "".join(f"{p},u{p}\n" for p in people), encoding="utf-8")
    out = tmp_path / "dated"
    result = cli("followup", round1, round2["survey"], "-o", out, "--completions", round2["completions"],
                 "--start", "2027-09-06", "--lms-users", users, "--per-person", "none", "--no-xlsx")
    assert result.exit_code == 0, result.output
    sessions = list(csv.DictReader((out / "sessions.csv").open(encoding="utf-8")))
    assert sessions and all(s["start"] >= "2027-09-06" for s in sessions if s["status"] == "scheduled")
    assert any((out / "calendar").glob("*.ics")) and (out / "lms" / "moodle-users.csv").is_file()
    bad = cli("followup", round1, round2["survey"], "-o", tmp_path / "x", "--start", "next monday")
    assert bad.exit_code == 2 and "--start" in bad.output and not (tmp_path / "x").exists()
