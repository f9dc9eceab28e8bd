"""Synthetic second rounds: a follow-up survey, LMS completions and ratings that follow an earlier run.

For testing follow-up rounds with a known answer. About 8% of the previous
round's people leave and 8% new people join; each planned step is completed
with a probability that depends on its format (self-paced formats more
often than sessions); in each domain where a person completed a module their
competence rises by ``effect`` (the planted effect), everyone drifts a little,
and the answers carry measurement noise of the size :func:`trainmatch.synth.synthesize` uses, made so
that their expectation is the person's competence.
The truth table records each paired person's planted change per domain, so a
test can check that effects.csv recovers it (and finds nothing when
``effect`` is 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .followup import PreviousRun, read_run_table
from .programme import Programme
from .synth import ITEM_NOISE, synthesize

LEAVE_SHARE = 0.08
JOIN_SHARE = 0.08
DRIFT_SD = 0.1  # change on the answer scale of everyone, trained or not
# Share of planned steps completed per format: self-paced formats more often than sessions.
COMPLETION_BY_FORMAT = {"elearning": 0.75, "video": 0.8, "quick_guide": 0.85, "webinar": 0.65, "workshop": 0.6,
                        "simulation": 0.55, "coaching": 0.6, "shadowing": 0.5}
COMPLETION_DEFAULT = 0.6
RATING_SHARE = 0.4  # of completions rated
COMMENT_SHARE = 0.2  # of ratings with a comment
COMMENTS = ("Hyödyllinen kurssi.", "Useful, but too long.", "Bra övningar.", "Liian nopea tahti.")


@dataclass(frozen=True)
class SecondRound:
    """A synthetic second round: the survey (text cells), completions, feedback, and the planted truth."""

    survey: pd.DataFrame
    completions: pd.DataFrame
    feedback: pd.DataFrame
    truth: pd.DataFrame


def synthesize_followup(programme: Programme, previous: PreviousRun, catalogue: "object", seed: int = 0,
                        effect: float = 0.5) -> SecondRound:
    """A second round after ``previous`` (read with :func:`trainmatch.followup.read_previous`)."""
    rng = np.random.default_rng(seed)
    domains = programme.domain_ids
    D = len(domains)
    lo, hi = programme.scale_min, programme.scale_max
    people = previous.people
    P = len(people)
    facts = read_run_table(previous.folder / "people.csv",
                           ["person_id", "role", "site", "language", "formats", *[f"task_{t}" for t in programme.task_ids]],
                           ["hours"])
    stay = rng.random(P) >= LEAVE_SHARE
    stay_pos = np.flatnonzero(stay)
    ids = people["person_id"].to_numpy(dtype=object)

    # Completions: each planned step of a stayer, completed with its format's probability.
    plans = previous.plans
    who = pd.Index(ids).get_indexer(plans["person_id"].to_numpy(dtype=object))
    p_done = plans["format"].map(COMPLETION_BY_FORMAT).fillna(COMPLETION_DEFAULT).to_numpy(dtype=np.float64)
    done = (rng.random(len(plans)) < p_done) & (who >= 0) & stay[np.maximum(who, 0)]
    started = ~done & (rng.random(len(plans)) < 0.3) & (who >= 0) & stay[np.maximum(who, 0)]
    dom = pd.Index(list(domains)).get_indexer(plans["domain"].to_numpy(dtype=object))
    completed = np.zeros((P, D), dtype=np.int64)
    keep = done & (dom >= 0)
    np.add.at(completed, (who[keep], dom[keep]), 1)

    # Planted change: the effect where a module was completed, drift for everyone.
    change = effect * (completed > 0) + rng.normal(0, DRIFT_SD, size=(P, D))
    before = np.column_stack([people[f"score_{d}"].to_numpy(dtype=np.float64) for d in domains])
    means = np.nanmean(np.where(np.isnan(before), np.nan, before), axis=0) if P else np.zeros(D)
    before = np.where(np.isnan(before), np.nan_to_num(means)[None, :], before)
    latent = np.clip(before + change, lo, hi)[stay_pos]

    n = len(stay_pos)
    item_domain = np.array([domains.index(i.domain) for i in programme.items])
    reverse = np.array([i.reverse for i in programme.items])
    # Answers whose expectation is the latent score even near the ends of the scale (rounding and clipping
    # noisy answers would pull them inwards and hide part of the planted change): symmetric item noise that
    # stays on the scale, then rounding up with the probability of the fraction (dithering).
    at = latent[:, item_domain]
    width = np.minimum(np.minimum(at - lo, hi - at), ITEM_NOISE * np.sqrt(3))  # uniform noise of sd ITEM_NOISE inside
    raw = at + rng.uniform(-1, 1, size=at.shape) * width
    codes = np.clip(np.floor(raw + rng.random(raw.shape)), lo, hi).astype(np.int64)
    codes[:, reverse] = (lo + hi) - codes[:, reverse]
    text = np.asarray([str(c) for c in range(lo, hi + 1)], dtype=object)[codes - lo]
    text = np.where(rng.random(codes.shape) < 0.02, "", text)

    cols = programme.columns
    f = facts.iloc[stay_pos]
    survey = pd.DataFrame({
        "submitted_at": (previous.created.tz_localize(None) if previous.created.tzinfo else previous.created)
        .floor("s") + pd.to_timedelta(90 * 86400 + rng.integers(0, 30 * 86400, size=n), unit="s"),
        cols.id: f["person_id"].to_numpy(dtype=object), cols.role: f["role"].to_numpy(dtype=object),
        cols.site: f["site"].to_numpy(dtype=object), cols.language: f["language"].to_numpy(dtype=object),
    })
    survey["submitted_at"] = survey["submitted_at"].dt.strftime("%Y-%m-%d %H:%M:%S")
    for j, item in enumerate(programme.items):
        survey[item.id] = text[:, j]
    for task in programme.tasks:
        survey[task.id] = np.where(f[f"task_{task.id}"].to_numpy(dtype=object) == "yes", "1", "0")
    hours = f["hours"].to_numpy(dtype=np.float64)
    survey[cols.hours] = np.where(np.isnan(hours), "", pd.Series(hours).map("{:g}".format).to_numpy(dtype=object))
    survey[cols.formats] = f["formats"].to_numpy(dtype=object)

    n_join = int(round(JOIN_SHARE * P))
    if n_join:
        joiners, _ = synthesize(programme, n_join, seed=int(rng.integers(2**31)))
        joiners = joiners.drop(columns=[c for c in joiners.columns if c not in survey.columns])
        joiners[cols.id] = np.char.add("N", np.char.zfill(np.arange(1, n_join + 1).astype(str), 6)).astype(object)
        survey = pd.concat([survey, joiners[survey.columns]], ignore_index=True)

    # The LMS export: half the rows name the LMS course id, half the module id.
    mods = {m.id: m for m in catalogue.modules}  # type: ignore[attr-defined]
    rows = done | started
    module = plans["module"].to_numpy(dtype=object)[rows]
    as_course = rng.random(len(module)) < 0.5
    course = np.asarray([mods[m].lms_course or m if m in mods else m for m in module], dtype=object)
    created = previous.created.tz_localize(None) if previous.created.tzinfo else previous.created
    when = created.ceil("s") + pd.to_timedelta(rng.integers(60, 80 * 86400, size=len(module)), unit="s")
    is_done = done[rows]
    completions = pd.DataFrame({
        "module": module,
        "person_id": plans["person_id"].to_numpy(dtype=object)[rows],
        "lms_course": np.where(as_course, course, module),
        "status": np.where(is_done, "completed", "in progress"),
        "completed_at": np.where(is_done, when.strftime("%Y-%m-%d %H:%M:%S"), ""),
    })

    # Ratings of completed modules: each module has its own quality.
    done_rows = completions[is_done].reset_index(drop=True)
    rated = rng.random(len(done_rows)) < RATING_SHARE
    fb = done_rows[rated].reset_index(drop=True)
    quality = {m: q for m, q in zip(sorted(mods), rng.normal(3.8, 0.6, size=len(mods)))}
    base = fb["module"].map(quality).fillna(3.8).to_numpy(dtype=np.float64)
    ratings = np.clip(np.rint(base + rng.normal(0, 0.8, size=len(fb))), 1, 5).astype(np.int64)
    comment = np.where(rng.random(len(fb)) < COMMENT_SHARE, np.asarray(COMMENTS, dtype=object)[rng.integers(len(COMMENTS), size=len(fb))], "")
    feedback = pd.DataFrame({"person_id": fb["person_id"], "module": fb["lms_course"], "rating": ratings.astype(str), "comment": comment})

    completions = completions.drop(columns="module")
    truth = pd.DataFrame({
        "person_id": np.repeat(ids[stay_pos], D),
        "domain": np.tile(np.asarray(list(domains), dtype=object), n),
        "planted_change": change[stay_pos].ravel().round(4),
        "modules_completed": completed[stay_pos].ravel(),
    })
    return SecondRound(survey, completions, feedback, truth)
