"""Synthetic surveys with known latent scores, for trying the tool and measuring it.

Two structures:

- ``continuous`` (the default, like real digital-competence data): each
  person's latent domain scores are a general digital-competence factor shared
  by all domains, plus a factor of the domain's own, plus an effect of the
  person's role. Domain scores then correlate about 0.5–0.7 and the people form
  a continuum, not separated groups.
- ``profiles``: each person belongs to one of a few well-separated planted
  competence profiles (the truth that the cohort step should recover), and
  roles depend on the profile.

Tasks depend on the role and on the person's skills in the domains the task
needs; answers are the latent score plus item noise, rounded to the Likert
scale (some as labels in the person's language), with a few percent missing
and "don't know" answers (likelier for people with low skill), and a handful
of people who skipped most of a domain. Same programme, size, structure and
seed → identical survey.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .programme import Programme

SITES = (
    "Keskussairaala",
    "Terveysasema Itä",
    "Terveysasema Länsi",
    "Kotihoito Pohjoinen",
    "Kotihoito Etelä",
    "Vårdcentralen Strand",
    "Sosiaalipalvelut Keskusta",
)
SITE_WEIGHTS = np.array([0.30, 0.15, 0.14, 0.12, 0.11, 0.08, 0.10])
LANGUAGE_WEIGHTS = {"fi": 0.75, "sv": 0.15, "en": 0.10}
HOURS = np.array(["4", "6", "8", "12", "16", "20", "24", "2,5", ""], dtype=object)
HOURS_WEIGHTS = np.array([0.10, 0.12, 0.20, 0.20, 0.12, 0.06, 0.06, 0.04, 0.10])
STRUCTURES = ("continuous", "profiles")

# The continuous structure, on the 1–5 scale. Latent domain scores have sd LATENT_SD; a share
# GENERAL_SHARE of their variance (role effects aside) is the general factor, so latent domains
# correlate about 0.75 and the scores, attenuated by item noise, about 0.55–0.6. Item noise ITEM_NOISE
# with 4–5 skill items per domain gives alpha about 0.77–0.85 (measured: see the commit that set them).
LATENT_SD = 0.75
GENERAL_SHARE = 0.82
ROLE_EFFECT_SD = 0.3
ITEM_NOISE = 0.7


def planted_profiles(n_domains: int, n_profiles: int, rng: np.random.Generator) -> np.ndarray:
    """Profile means (profiles × domains) on the 1–5 scale, well separated.

    The first profile is low everywhere, the last high everywhere; those in
    between are strong in a different subset of domains and weak in the rest.
    """
    low, high = 2.0, 4.2
    profiles = [np.full(n_domains, low)]
    masks: list[np.ndarray] = []
    attempts = 0
    while len(profiles) < n_profiles - 1:
        attempts += 1
        strong = rng.random(n_domains) < 0.5
        n_strong = int(strong.sum())
        # Each mixed profile is strong in at least 2 domains, weak in at least 2, and differs from
        # every other mixed profile in at least 2 domains, so that clusters are separable. A
        # programme with too few domains for that gets whatever the draws give.
        if attempts <= 10_000 and (
            min(n_strong, n_domains - n_strong) < 2 or any(int((strong != m).sum()) < 2 for m in masks)
        ):
            continue
        masks.append(strong)
        profiles.append(np.where(strong, 4.0, 2.3))
    profiles.append(np.full(n_domains, high))
    return np.vstack(profiles[:n_profiles])


def synthesize(programme: Programme, n: int, seed: int = 0, n_profiles: int = 5,
               structure: str = "continuous") -> tuple[pd.DataFrame, pd.DataFrame]:
    """A realistic survey of ``n`` people (all cells text) and the truth: each person's latent domain
    scores (``latent_<domain>``, on the answer scale) and, with ``structure="profiles"``, their planted
    profile (``profile``)."""
    if n < 1:
        raise ValueError("n must be at least 1")
    if structure not in STRUCTURES:
        raise ValueError(f"structure must be one of {', '.join(STRUCTURES)}, got {structure!r}")
    rng = np.random.default_rng(seed)
    domains = programme.domain_ids
    D = len(domains)
    lo, hi = programme.scale_min, programme.scale_max
    mid = (lo + hi) / 2
    R = len(programme.roles)
    if structure == "profiles":
        profiles = planted_profiles(D, n_profiles, rng)
        shares = rng.dirichlet(np.full(n_profiles, 8.0))
        profile = rng.choice(n_profiles, size=n, p=shares)
        latent = profiles[profile] + rng.normal(0, 0.3, size=(n, D))
        # Roles depend on the profile: each profile favours a few roles.
        role_weights = rng.dirichlet(np.full(R, 0.6), size=n_profiles) + 0.02
        role_weights /= role_weights.sum(axis=1, keepdims=True)
        role_idx = _choice_rows(rng, role_weights[profile])
        item_noise = 0.6
    else:
        profile = None
        latent, role_idx = _continuous_latent(rng, n, D, R, lo, hi)
        item_noise = ITEM_NOISE

    langs = [lang for lang in LANGUAGE_WEIGHTS if lang in programme.languages] or [programme.default_language]
    lw = np.array([LANGUAGE_WEIGHTS.get(lang, 1.0) for lang in langs])
    lang_idx = rng.choice(len(langs), size=n, p=lw / lw.sum())
    person_lang = np.asarray(langs, dtype=object)[lang_idx]

    cols: dict[str, object] = {}
    cols["submitted_at"] = (
        pd.Timestamp("2026-09-01 08:00") + pd.to_timedelta(rng.integers(0, 30 * 24 * 3600, size=n), unit="s")
    ).strftime("%Y-%m-%d %H:%M:%S")
    width = max(6, len(str(n)))
    cols[programme.columns.id] = np.char.zfill(np.arange(1, n + 1).astype(str), width)
    role_names = np.empty((len(langs), R), dtype=object)
    for li, lang in enumerate(langs):
        role_names[li] = [r.names.get(lang, r.id) for r in programme.roles]
    as_id = rng.random(n) < 0.5
    cols[programme.columns.role] = np.where(as_id, np.asarray([r.id for r in programme.roles], dtype=object)[role_idx], role_names[lang_idx, role_idx])
    cols[programme.columns.site] = np.asarray(SITES, dtype=object)[rng.choice(len(SITES), size=n, p=SITE_WEIGHTS)]
    cols[programme.columns.language] = person_lang

    # Item answers: latent + item noise, rounded to the scale, reversed where keyed so.
    item_domain = np.array([domains.index(i.domain) for i in programme.items])
    reverse = np.array([i.reverse for i in programme.items])
    raw = latent[:, item_domain] + rng.normal(0, item_noise, size=(n, len(programme.items)))
    codes = np.clip(np.rint(raw), lo, hi).astype(np.int64)
    codes[:, reverse] = (lo + hi) - codes[:, reverse]
    missing = rng.random(codes.shape) < 0.03
    if profile is None:
        # "Don't know" is itself a sign of low skill: about 4% at the bottom of the scale, 0.5% at the top.
        p_dont_know = 0.005 + 0.035 * np.clip((hi - latent[:, item_domain]) / (hi - lo), 0, 1)
    else:
        p_dont_know = 0.015
    dont_know = (rng.random(codes.shape) < p_dont_know) & ~missing
    # A few people skip most of one domain: they must be flagged, not imputed.
    skippers = np.flatnonzero(rng.random(n) < 0.01)
    skipped_domain = rng.integers(D, size=len(skippers))
    missing[skippers] |= item_domain[None, :] == skipped_domain[:, None]
    by_label = rng.random(n) < 0.08  # some tools export label text instead of codes
    text = np.asarray([str(c) for c in range(lo, hi + 1)], dtype=object)[codes - lo]
    label_lang = [lang for lang in langs if lang in programme.scale_labels]
    if label_lang:
        labels = np.array([[programme.scale_labels[lang][c - lo] for c in range(lo, hi + 1)] for lang in langs if lang in programme.scale_labels], dtype=object)
        lang_to_row = {lang: i for i, lang in enumerate(label_lang)}
        row_of_person = np.array([lang_to_row.get(lang, 0) for lang in langs])[lang_idx]
        label_text = labels[row_of_person[:, None], codes - lo]
        text = np.where(by_label[:, None], label_text, text)
    dk_labels = list(programme.dont_know) or [""]
    dk = np.asarray([dk_labels[min(i, len(dk_labels) - 1)] for i in range(len(langs))], dtype=object)[lang_idx]
    text = np.where(dont_know, dk[:, None], text)
    text = np.where(missing, "", text)
    for j, item in enumerate(programme.items):
        cols[item.id] = text[:, j]

    # Tasks: likelier for roles that do them and for people skilled in what the task needs.
    T = len(programme.tasks)
    req = np.asarray(programme.requirement_matrix(), dtype=np.float64)  # tasks × domains
    role_task = rng.normal(-0.4, 1.1, size=(R, T))
    weights = req / np.maximum(req.sum(axis=1, keepdims=True), 1)
    skill = (latent - mid) @ weights.T  # n × tasks
    logit = role_task[role_idx] + 1.2 * skill
    does = rng.random((n, T)) < 1 / (1 + np.exp(-logit))
    for t, task in enumerate(programme.tasks):
        cols[task.id] = np.where(does[:, t], "1", "0").astype(object)

    cols[programme.columns.hours] = HOURS[rng.choice(len(HOURS), size=n, p=HOURS_WEIGHTS)]
    F = len(programme.formats)
    fmt_ids = np.asarray([f.id for f in programme.formats], dtype=object)
    fmt_pick = rng.random((n, F)) < rng.uniform(0.1, 0.35, size=F)
    no_answer = rng.random(n) < 0.1
    fmt_pick[no_answer] = False
    # Each distinct set of formats is joined once, then looked up by its bit pattern.
    bits = fmt_pick.astype(np.int64) @ (np.int64(1) << np.arange(F, dtype=np.int64))
    combos, inverse = np.unique(bits, return_inverse=True)
    joined = np.array([";".join(fmt_ids[(c >> np.arange(F)) & 1 == 1]) for c in combos], dtype=object)
    cols[programme.columns.formats] = joined[inverse.reshape(-1)]
    # willing to support colleagues: drawn last, so the answers above stay as they were for a seed
    willing = rng.random(n)
    cols[programme.columns.support] = np.where(willing < 0.3, "yes", np.where(willing < 0.55, "no", "")).astype(object)
    cols["email"] = np.char.add(np.char.add("respondent", cols[programme.columns.id].astype(str)), "@example.org").astype(object)

    survey = pd.DataFrame(cols)
    truth = pd.DataFrame({programme.columns.id: cols[programme.columns.id]})
    if profile is not None:
        truth["profile"] = np.char.add("P", (profile + 1).astype(str))
    for d, domain in enumerate(domains):
        truth[f"latent_{domain}"] = np.round(latent[:, d], 3)
    return survey, truth


def _continuous_latent(rng: np.random.Generator, n: int, D: int, R: int, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
    """Latent domain scores (n × D) from a general factor, domain factors and role effects; and each person's role.

    Domain means differ (some domains are harder), each role is a little above or below the others per
    domain, and the scores are kept inside the answer scale.
    """
    role_share = rng.dirichlet(np.full(R, 3.0))
    role_idx = rng.choice(R, size=n, p=role_share)
    role_effect = rng.normal(0, ROLE_EFFECT_SD, size=(R, D))
    role_effect -= role_share @ role_effect  # effects around the population mean
    span = hi - lo
    means = lo + span * rng.uniform(0.45, 0.65, size=D)
    general = rng.standard_normal((n, 1))
    own = rng.standard_normal((n, D))
    factor = np.sqrt(GENERAL_SHARE) * general + np.sqrt(1 - GENERAL_SHARE) * own
    latent = means + LATENT_SD * (span / 4) * factor + role_effect[role_idx]
    return np.clip(latent, lo, hi), role_idx


def _choice_rows(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One categorical draw per row of ``probs`` (vectorised inverse CDF)."""
    cdf = probs.cumsum(axis=1)
    u = rng.random((len(probs), 1)) * cdf[:, -1:]
    return (u > cdf).sum(axis=1)
