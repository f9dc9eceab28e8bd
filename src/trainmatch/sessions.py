"""Group sessions: group-format steps become sessions planned per training group, not per person.

After the paths are built, people with group-format steps are put into training
groups by site and by the group-format objectives they need
(:func:`trainmatch.groups.need_groups`), so members share needs. Then, per
group and objective, one module (format) is chosen for the group (the one most
members were planned in; a member switches when their hours allow) and the
members who need it form one session, or several when the group exceeds
``groups.max_size``. A session needs ``groups.min_attendees`` people: members of
a smaller piece join another group's session of the same module at the same
site, or several small pieces at a site meet together; a need that still
cannot reach the minimum is met in the objective's cheapest self-paced format
when the person's hours allow, and otherwise stays a session below the
minimum with its reason. Every change is said in the step's ``session_note``
and the session's ``reason``; nothing is dropped.

Vectorised over steps (groupby on integer keys); the only Python loops are
per objective, per module and per session. Pure: no files, no printing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from .catalogue import Catalogue
    from .paths import PlannerHints
    from .programme import Programme

SESSION_COLUMNS = ("session_id", "group", "site", "objective", "module", "format", "hours", "attendees", "reason")
# What happened to a group-format need, as plans.csv's session_note says it.
NOTE_JOINED = "joins a session of group {group} at the same site: too few in the own group"
NOTE_POOLED = "meets with people of other groups at the same site: too few in each group"
NOTE_SELF_PACED = "self-paced instead of a {format}: fewer than {minimum} people at the site need it"
NOTE_BELOW = "session below the minimum of {minimum}: {why}"
_EPS = 1e-9


@dataclass(frozen=True)
class SessionPlan:
    """Sessions of one run.

    ``people`` has ``group`` replaced by the need-based training group ('' for
    people with no group session); ``steps`` has module, title, format, hours
    and group updated and ``session_id`` and ``session_note`` added;
    ``sessions`` has SESSION_COLUMNS plus ``status`` (``planned``) and
    ``attendees`` per session; ``members`` is one row per (session, person);
    ``groups`` is the group table (group, cohort, site, members, undersized).
    """

    people: "pd.DataFrame"
    steps: "pd.DataFrame"
    sessions: "pd.DataFrame"
    members: "pd.DataFrame"
    groups: "pd.DataFrame"
    warnings: tuple[str, ...]


def _person_index(people: "pd.DataFrame", steps: "pd.DataFrame") -> np.ndarray:
    """Each step's position in ``people`` (by person_id): per category for the paths' categorical ids."""
    return codes_into(steps["person_id"], people["person_id"])


def codes_into(values: "pd.Series", ids: "pd.Series | pd.Index | list[str]") -> np.ndarray:
    """Positions of ``values`` in ``ids`` (-1 where absent); a categorical is looked up once per category."""
    import pandas as pd

    index = ids if isinstance(ids, pd.Index) else pd.Index(ids)
    if isinstance(values.dtype, pd.CategoricalDtype):
        pos = np.r_[index.get_indexer(values.cat.categories), -1]
        codes = values.cat.codes.to_numpy().astype(np.int64)
        return pos[np.where(codes >= 0, codes, len(pos) - 1)]
    return index.get_indexer(values)


def _titles(steps: "pd.DataFrame", people: "pd.DataFrame", who: np.ndarray, mcode: np.ndarray,
            catalogue: "Catalogue", programme: "Programme") -> "pd.Categorical":
    """Each step's title in its person's language (as paths.build_paths makes it)."""
    import pandas as pd

    from .columns import text_codes

    langs = list(programme.languages)
    lang_codes, lang_labels = text_codes(people, "language")
    lang_map = np.asarray([langs.index(x) if x in langs else langs.index(programme.default_language) for x in lang_labels],
                          dtype=np.int64)
    labels: dict[str, int] = {}
    matrix = np.asarray([[labels.setdefault(m.title(lang), len(labels)) for lang in langs] for m in catalogue.modules],
                        dtype=np.int64).reshape(len(catalogue.modules), len(langs))
    return pd.Categorical.from_codes(matrix[mcode, lang_map[lang_codes[who]]], categories=list(labels))


def plan_sessions(people: "pd.DataFrame", steps: "pd.DataFrame", catalogue: "Catalogue", programme: "Programme",
                  budget: np.ndarray, hints: "PlannerHints | None" = None) -> SessionPlan:
    """Form need-based groups and plan the group sessions (see the module docstring).

    ``people`` are the planned people (person_id, site, cohort, language);
    ``steps`` the paths' steps; ``budget`` each person's hours (paths.budgets). With ``hints`` (a
    follow-up round) nobody is moved to a module they completed or to a demoted one.
    """
    import pandas as pd

    from .columns import text_codes
    from .groups import need_groups
    from .paths import hint_keys, in_sorted

    n = len(people)
    minimum = int(programme.min_attendees)
    cap = max(int(programme.group_max_size), minimum)
    module_ids = list(catalogue.module_ids)
    objective_ids = list(catalogue.objective_ids)
    mod_hours = np.asarray([m.hours for m in catalogue.modules], dtype=np.float64)
    mod_group = np.asarray([m.group for m in catalogue.modules], dtype=bool)
    mod_obj = np.asarray([objective_ids.index(m.objective) for m in catalogue.modules], dtype=np.int64)
    fmt_ids = list(programme.format_ids)
    mod_fmt = np.asarray([fmt_ids.index(m.format) for m in catalogue.modules], dtype=np.int64)
    # the self-paced modules of each objective, cheapest first (catalogue order breaks ties), -1 padded
    alone_of = [sorted((module_ids.index(m.id) for m in catalogue.objectives[oid].modules if not m.group),
                       key=lambda k: (mod_hours[k], k)) for oid in objective_ids]
    self_paced = np.full((len(objective_ids), max([len(a) for a in alone_of] + [1])), -1, dtype=np.int64)
    for o, alone in enumerate(alone_of):
        self_paced[o, : len(alone)] = alone

    done, _, demoted = hint_keys(hints, people, objective_ids, module_ids) if hints is not None else (None, None, None)
    done = done if done is not None else np.zeros(0, dtype=np.int64)  # person × modules + module, sorted
    demoted = demoted if demoted is not None else np.zeros(len(module_ids), dtype=bool)
    M = len(module_ids)
    who = _person_index(people, steps)
    mcode = steps["module"].cat.codes.to_numpy().astype(np.int64) if isinstance(steps["module"].dtype, pd.CategoricalDtype) \
        else pd.Index(module_ids).get_indexer(steps["module"].astype(str))
    if isinstance(steps["module"].dtype, pd.CategoricalDtype) and list(steps["module"].cat.categories) != module_ids:
        mcode = pd.Index(module_ids).get_indexer(steps["module"].astype(str))
    hours = steps["hours"].to_numpy(dtype=np.float64).copy()
    slack = budget - np.bincount(who, weights=hours, minlength=n)  # hours each person has left
    site_codes, site_names = text_codes(people, "site")

    rows = np.flatnonzero(mod_group[mcode])  # the group-format steps
    r_who, r_mod = who[rows], mcode[rows].copy()
    r_obj = mod_obj[r_mod]

    # 1. groups from site and shared needs: a signature of the group-format objectives each person needs,
    #    the most common objective as the highest bit, so people next to each other share the common needs
    obj_count = np.bincount(r_obj, minlength=len(objective_ids))
    rank = np.empty(len(objective_ids), dtype=np.int64)
    rank[np.argsort(-obj_count, kind="stable")] = np.arange(len(objective_ids))
    weight = np.where(rank < 52, np.ldexp(1.0, 51 - np.minimum(rank, 51)), 0.0)
    signature = np.bincount(r_who, weights=weight[r_obj], minlength=n).astype(np.int64)
    grouped = np.flatnonzero(signature > 0)
    person_group, groups = need_groups(site_codes[grouped], [site_names[i] for i in range(len(site_names))],
                                       signature[grouped], min_size=programme.group_min_size, max_size=programme.group_max_size)
    gcode = np.full(n, -1, dtype=np.int64)
    gcode[grouped] = person_group
    G = len(groups)
    g_site = groups["site_code"].to_numpy(dtype=np.int64)
    r_grp = gcode[r_who]
    warnings: list[str] = []

    # 2. one module per group and objective: the one most members were planned in; others switch when their hours allow
    O = len(objective_ids)
    go = r_grp * O + r_obj
    pair = go * M + r_mod
    uniq, counts = np.unique(pair, return_counts=True)
    order = np.lexsort((uniq % M, -counts, uniq // M))
    best_pairs = uniq[order]
    first = _new_run(best_pairs // M)
    chosen_go, chosen_mod = best_pairs[first] // M, best_pairs[first] % M
    want = chosen_mod[np.searchsorted(chosen_go, go)]
    # nobody leaves a format they said they prefer for one they did not
    pref_codes, pref_uniques = text_codes(people, "formats")
    pref_bits_of = np.asarray([sum(1 << fmt_ids.index(f) for f in set(str(u).split(";")) if f in fmt_ids)
                               for u in pref_uniques] or [0], dtype=np.int64)
    prefs = pref_bits_of[pref_codes][r_who] if n else np.zeros(0, dtype=np.int64)
    likes_own = (prefs >> mod_fmt[r_mod]) & 1 == 1
    likes_new = (prefs >> mod_fmt[want]) & 1 == 1
    switch = (want != r_mod) & (~likes_own | likes_new)
    switch &= ~in_sorted(done, r_who * M + want) & ~(demoted[want] & ~demoted[r_mod])  # not back to what was done
    # nor leaves the only step of a format for a format the path already has (the path stays varied)
    F = len(fmt_ids)
    fmt_count = np.bincount(who * F + mod_fmt[mcode], minlength=n * F).reshape(n, F) if n else np.zeros((0, F), np.int64)
    own_f, new_f = mod_fmt[r_mod], mod_fmt[want]
    switch &= ~((fmt_count[r_who, own_f] == 1) & (fmt_count[r_who, new_f] > 0) & (own_f != new_f))
    extra = np.where(switch, mod_hours[want] - mod_hours[r_mod], 0.0)
    person_extra = np.bincount(r_who, weights=extra, minlength=n)
    ok = person_extra <= slack + _EPS
    switch &= ok[r_who]
    slack = slack - np.where(ok, person_extra, 0.0)
    r_mod = np.where(switch, want, r_mod)

    # 3. pieces: the members of a group needing the same module; viable at the minimum
    piece_key = (r_grp * M + r_mod)
    p_uniq, p_inv, p_n = np.unique(piece_key, return_inverse=True, return_counts=True)
    p_grp, p_mod = p_uniq // M, p_uniq % M
    p_site = g_site[p_grp]
    viable = p_n >= minimum
    host = np.arange(len(p_uniq))  # the piece whose session each piece's members attend
    kind = np.zeros(len(p_uniq), dtype=np.int8)  # 0 own, 1 joined, 2 pooled, 3 self-paced, 4 below minimum
    # per (site, module): the largest viable piece (ties: lowest group), and the pooled size of the small ones
    sm = p_site * M + p_mod
    sm_uniq, sm_inv = np.unique(sm, return_inverse=True)
    best_viable = np.full(len(sm_uniq), -1, dtype=np.int64)
    best_small = np.full(len(sm_uniq), -1, dtype=np.int64)
    by_size = np.lexsort((p_grp, -p_n))  # largest first
    for mask, best in ((viable, best_viable), (~viable, best_small)):
        idx = by_size[mask[by_size]]
        slot = sm_inv[idx]
        firsts = idx[~_seen_before(slot, len(sm_uniq))]
        best[sm_inv[firsts]] = firsts
    small_total = np.bincount(sm_inv, weights=np.where(viable, 0, p_n), minlength=len(sm_uniq))
    small = ~viable
    join = small & (best_viable[sm_inv] >= 0)
    host[join] = best_viable[sm_inv[join]]
    kind[join] = 1
    pool = small & ~join & (small_total[sm_inv] >= minimum)
    host[pool] = best_small[sm_inv[pool]]
    kind[pool] = 2

    # 4. what is left below the minimum goes self-paced where the objective has such a format and the hours allow
    left = small & ~join & ~pool
    r_left = left[p_inv]
    # the cheapest self-paced format new to the person's path that fits their hours, else the cheapest
    alt = self_paced[r_obj, 0]
    for k in range(self_paced.shape[1] - 1, -1, -1):
        cand = self_paced[r_obj, k]
        good = (cand >= 0) & (mod_hours[np.maximum(cand, 0)] - mod_hours[r_mod] <= slack[r_who] + _EPS)
        good &= fmt_count[r_who, mod_fmt[np.maximum(cand, 0)]] == 0
        good &= ~in_sorted(done, r_who * M + cand)
        alt = np.where(good, cand, alt)
    alt = np.where((alt >= 0) & in_sorted(done, r_who * M + alt), -1, alt)  # never a module the person completed
    can = r_left & (alt >= 0)
    extra = np.where(can, mod_hours[np.maximum(alt, 0)] - mod_hours[r_mod], 0.0)
    person_extra = np.bincount(r_who, weights=extra, minlength=n)
    fits = person_extra <= slack + _EPS
    to_self = can & fits[r_who]
    below = r_left & ~to_self
    # pieces below the minimum at a (site, module) meet together: the largest of them hosts
    if below.any():
        b_piece = np.unique(p_inv[below])
        host[b_piece] = best_small[sm_inv[b_piece]]
        kind[b_piece] = 4
    no_format = below & (alt < 0)

    # 5. sessions: each hosting piece's attendees, split when more than the capacity
    r_host = np.where(to_self, -1, host[p_inv])
    in_session = r_host >= 0
    s_rows = np.flatnonzero(in_session)
    h_uniq, h_inv, h_n = np.unique(r_host[s_rows], return_inverse=True, return_counts=True)
    parts = -(-h_n // cap)
    order = np.lexsort((r_who[s_rows], r_grp[s_rows], h_inv))
    rank_in_host = np.empty(len(s_rows), dtype=np.int64)
    starts = np.cumsum(h_n) - h_n
    rank_in_host[order] = np.arange(len(s_rows)) - np.repeat(starts, h_n)
    part = rank_in_host * parts[h_inv] // h_n[h_inv]
    first_session = np.cumsum(parts) - parts
    r_session = first_session[h_inv] + part
    S = int(parts.sum())
    s_host = np.repeat(h_uniq, parts)
    s_part = np.arange(S) - np.repeat(first_session, parts)
    s_grp, s_mod = p_grp[s_host], p_mod[s_host]
    s_size = np.bincount(r_session, minlength=S)
    group_ids = groups["group"].tolist()
    seq, session_ids = _session_ids(s_grp, s_mod, s_part, topological_rank(catalogue)[mod_obj], group_ids)

    r_kind = kind[p_inv]
    s_reason = _session_reasons(s_size, s_grp, r_session, r_grp[s_rows], r_kind[s_rows], no_format[s_rows],
                                group_ids, minimum)

    # 6. the steps, updated
    new_mod = mcode.copy()
    new_mod[rows] = np.where(to_self, alt, r_mod)
    step_session = np.full(len(steps), -1, dtype=np.int64)
    step_session[rows[s_rows]] = r_session
    note_codes = np.zeros(len(steps), dtype=np.int64)
    notes = ["", NOTE_JOINED, NOTE_POOLED, NOTE_SELF_PACED, NOTE_BELOW]
    note_codes[rows] = np.where(to_self, 3, np.where(below, 4, r_kind.astype(np.int64) * (r_kind < 3)))
    # texts of notes per (kind, group or format): few distinct, built once
    note_text = _note_texts(note_codes, rows, to_self, r_session, s_rows, session_ids, s_grp, group_ids, s_reason,
                            fmt_ids, mod_fmt, mcode, minimum, notes)
    out = steps.copy()
    out["module"] = pd.Categorical.from_codes(new_mod, categories=module_ids)
    out["title"] = _titles(steps, people, who, new_mod, catalogue, programme)
    out["format"] = pd.Categorical.from_codes(mod_fmt[new_mod], categories=fmt_ids)
    out["hours"] = mod_hours[new_mod]
    group_of_step = np.r_[s_grp, G][np.where(step_session >= 0, step_session, S)]  # G: no group
    out["group"] = pd.Categorical.from_codes(group_of_step, categories=[*group_ids, ""])
    sid_labels = [*session_ids.tolist(), ""]
    out["session_id"] = pd.Categorical.from_codes(np.where(step_session >= 0, step_session, S), categories=sid_labels)
    out["session_note"] = note_text

    # 7. people: only groups in which they have a session; the group table counts them
    final = _final_groups(gcode, r_who[s_rows], r_grp[s_rows], s_grp, r_session)
    members = np.bincount(final[final >= 0], minlength=G)
    self_paced_only = int(((gcode >= 0) & (final < 0)).sum())
    if self_paced_only:
        warnings.append(f"{self_paced_only} people needed group training but learn self-paced instead (too few at "
                        "their site needed the same); they are in no training group. plans.csv's session_note says why.")
    from .columns import text_column

    people_out = people.copy(deep=False)  # only columns are set: the data need not be copied
    people_out["group"] = text_column([*group_ids, ""], np.where(final >= 0, final, G))
    cohort_codes, cohort_names = text_codes(people, "cohort")
    table = _group_table(groups, final, cohort_codes, cohort_names, members, programme.group_min_size)
    undersized = int(table["undersized"].sum())
    if undersized:
        warnings.append(f"{undersized} training groups have fewer than {programme.group_min_size} members "
                        "(too few people at the site share their needs).")

    sessions = pd.DataFrame({
        "session_id": session_ids,
        "group": np.asarray(group_ids, dtype=object)[s_grp],
        "site": np.asarray([site_names[i] for i in range(len(site_names))], dtype=object)[g_site[s_grp]]
        if S else np.zeros(0, dtype=object),
        "objective": np.asarray(objective_ids, dtype=object)[mod_obj[s_mod]],
        "module": np.asarray(module_ids, dtype=object)[s_mod],
        "format": np.asarray(fmt_ids, dtype=object)[mod_fmt[s_mod]],
        "hours": mod_hours[s_mod],
        "attendees": s_size.astype(np.int64),
        "reason": s_reason,
    })
    sessions = sessions.iloc[np.lexsort((seq, s_grp))].reset_index(drop=True) if S else sessions
    members_table = pd.DataFrame({
        "session_id": pd.Categorical.from_codes(r_session, categories=session_ids.tolist()),
        "person": r_who[s_rows],
    })
    people_out, table = support_persons(people_out, table, sessions, catalogue, programme)
    return SessionPlan(people_out, out, sessions, members_table, table, tuple(warnings))


def _final_groups(gcode: np.ndarray, who: np.ndarray, grp: np.ndarray, s_grp: np.ndarray, session: np.ndarray) -> np.ndarray:
    """Each person's training group (-1: none): the need-based group ``gcode`` where they attend a session of it,
    else the group of their first session, which is another group's. ``who``, ``grp`` and ``session`` are per
    attending step (its person, the person's need-based group, its session)."""
    own = grp == s_grp[session]
    has_own = np.zeros(len(gcode), dtype=bool)
    has_own[who[own]] = True
    host_group = np.full(len(gcode), -1, dtype=np.int64)
    host_group[who[~own][::-1]] = s_grp[session[~own][::-1]]  # reversed: a person's first row is written last
    return np.where(has_own, gcode, host_group)


def _session_ids(s_grp: np.ndarray, s_mod: np.ndarray, s_part: np.ndarray, module_rank: np.ndarray,
                 group_ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Each session's number within its group (0-based: prerequisite order of the objectives by ``module_rank``,
    then module, then part) and its id "<group>-S<number + 1, zero-padded>" (made in Arrow, not per session)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    S = len(s_grp)
    s_order = np.lexsort((s_part, s_mod, module_rank[s_mod], s_grp))
    seq = np.empty(S, dtype=np.int64)
    gstart = _new_run(s_grp[s_order])
    seq[s_order] = np.arange(S) - np.maximum.accumulate(np.where(gstart, np.arange(S), 0))
    width = max(2, len(str(int(seq.max()) + 1))) if S else 2
    numbers = pc.utf8_lpad(pc.cast(pa.array(seq + 1, type=pa.int64()), pa.string()), width=width, padding="0")
    ids = pc.binary_join_element_wise(pc.take(pa.array(group_ids, type=pa.string()), pa.array(s_grp)), numbers, "-S")
    return seq, np.asarray(ids.to_numpy(zero_copy_only=False), dtype=object)


def _session_reasons(s_size: np.ndarray, s_grp: np.ndarray, session: np.ndarray, grp: np.ndarray,
                     kind: np.ndarray, no_format: np.ndarray, group_ids: list[str], minimum: int) -> np.ndarray:
    """Each session's reason: who joined it from other groups, or why it is below the minimum.

    ``session``, ``grp``, ``kind`` and ``no_format`` are per attending step: its session, its person's group,
    how its piece found the session (1 joined, 2 pooled, 4 below the minimum) and whether its objective has
    no self-paced format."""
    S, G = len(s_size), max(len(group_ids), 1)
    reason = np.full(S, "", dtype=object)
    foreign = grp != s_grp[session]
    if foreign.any():
        sess_of = session[foreign]
        # per session: how many came from other groups, from which groups (ids sort as their codes do), and how
        count = np.bincount(sess_of, minlength=S)
        kind_max = np.zeros(S, dtype=np.int64)
        np.maximum.at(kind_max, sess_of, kind[foreign].astype(np.int64))
        pairs = np.unique(sess_of * G + grp[foreign])
        p_s, p_g = pairs // G, pairs % G
        bounds = np.searchsorted(p_s, np.arange(S + 1)).tolist()
        for s in np.unique(sess_of).tolist():
            names = [group_ids[g] for g in p_g[bounds[s]:bounds[s + 1]].tolist()]
            shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
            joiners = f"{count[s]} {'person' if count[s] == 1 else 'people'}"
            reason[s] = (f"joined by {joiners} of {shown}, whose groups had fewer than {minimum} for it"
                         if kind_max[s] <= 1 else
                         f"people of {len(names) + 1} groups at the site meet together: no group had {minimum} for it")
    short = np.flatnonzero(s_size < minimum)
    if len(short):
        lacks_format = np.zeros(S, dtype=bool)
        lacks_format[session[no_format]] = True
        for s in short.tolist():
            why = (f"only {s_size[s]} at the site need it and it has no self-paced format" if lacks_format[s] else
                   f"only {s_size[s]} at the site need it and the self-paced format does not fit their hours")
            reason[s] = f"below the minimum of {minimum}: {why}"
    return reason


def support_level(programme: "Programme") -> int:
    """The level a support person has in the group's main domains: advanced or above (1-based level index)."""
    ids = list(programme.level_ids)
    return ids.index("advanced") + 1 if "advanced" in ids else max(len(ids) - 1, 1)


def support_persons(people: "pd.DataFrame", groups: "pd.DataFrame", sessions: "pd.DataFrame", catalogue: "Catalogue",
                    programme: "Programme") -> tuple["pd.DataFrame", "pd.DataFrame"]:
    """Up to two support persons per group (practice 6): people at the group's site at ``support_level`` or above in
    the group's main domains (the domains of most of its sessions, at most two), who said yes where the survey
    asks whether they are willing to support colleagues (``support``: yes/no/''). The groups of a site and main
    domains take the qualifying people in turn, strongest first (round robin), so the load is shared.

    Adds ``main_domains``, ``support_1`` and ``support_2`` to the groups and ``support_person`` (the own group's
    first support person) and ``supports`` (the groups a person supports) to the people.
    """

    from .columns import text_codes

    groups = groups.copy()
    people = people.copy(deep=False)  # only columns are added: the data need not be copied
    G, n = len(groups), len(people)
    domains = list(programme.domain_ids)
    obj_domain = {o: obj.domain for o, obj in catalogue.objectives.items()}
    D = len(domains)
    top = np.full((G, 2), -1, dtype=np.int64)  # the group's main domains (indexes), most attendees first
    if G and len(sessions) and D:
        gpos = codes_into(sessions["group"], groups["group"].astype(str).tolist())
        dom_of = np.asarray([domains.index(obj_domain[o]) if obj_domain.get(o) in domains else -1 for o in catalogue.objectives],
                            dtype=np.int64)
        dpos = dom_of[codes_into(sessions["objective"], list(catalogue.objectives))]
        keep = (gpos >= 0) & (dpos >= 0)
        weight = np.bincount(gpos[keep] * D + dpos[keep], weights=sessions["attendees"].to_numpy(dtype=np.float64)[keep],
                             minlength=G * D).reshape(G, D)
        order = np.argsort(-weight, axis=1, kind="stable")[:, :2]
        best = np.take_along_axis(weight, order, axis=1)
        top = np.where(best > 0, order, -1)
    need = support_level(programme)
    # levels are small integers: int8 (a fraction of the memory; sums of two fit int16, which sorts by radix)
    levels = np.column_stack([people[f"level_{d}"].astype("Int16").fillna(0).to_numpy(dtype=np.int8)
                              if f"level_{d}" in people.columns else np.zeros(n, dtype=np.int8) for d in domains]) \
        if n and domains else np.zeros((n, len(domains)), dtype=np.int8)
    willing = np.ones(n, dtype=bool)
    if "support" in people.columns:
        answers, labels = text_codes(people, "support")
        asked = np.asarray([lab != "" for lab in labels], dtype=bool)
        if asked[answers].any():  # the survey has the question: only those who said yes
            yes = np.asarray([lab == "yes" for lab in labels], dtype=bool)
            willing = yes[answers]
    site_codes, site_names = text_codes(people, "site")
    site_of = {name: i for i, name in enumerate(site_names)}
    g_site = [site_of.get(x, -1) for x in groups["site"].astype(str).tolist()]
    # per (site, main domains): the qualifying people, strongest first; groups take them in turn (round robin),
    # so each supports about as many groups as the others
    chosen = np.full((G, 2), -1, dtype=np.int64)
    g_site_arr = np.asarray(g_site, dtype=np.int64)
    key = (g_site_arr * (D + 1) + (top[:, 0] + 1)) * (D + 1) + (top[:, 1] + 1) if G else np.zeros(0, dtype=np.int64)
    usable = (g_site_arr >= 0) & (top[:, 0] >= 0) if G else np.zeros(0, dtype=bool)
    keys, key_inv = np.unique(key[usable], return_inverse=True)
    usable_groups = np.flatnonzero(usable)
    by_key = np.argsort(key_inv, kind="stable")
    key_bounds = np.searchsorted(key_inv[by_key], np.arange(len(keys) + 1)).tolist()
    # the willing people of each site, found once (not one scan of everybody per site and domains)
    willing_pos = np.flatnonzero(willing)
    by_site = willing_pos[np.argsort(site_codes[willing_pos], kind="stable")]
    site_bounds = np.searchsorted(site_codes[by_site], np.arange(len(site_names) + 1)).tolist()
    # the levels of each site's willing people at or above the support level, gathered once per site (a site
    # has several keys); a key then reads only the columns of its domains
    site_levels: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for k in range(len(keys)):
        gk = usable_groups[by_key[key_bounds[k]:key_bounds[k + 1]]]
        site, d_idx = int(g_site_arr[gk[0]]), [d for d in top[gk[0]].tolist() if d >= 0]
        if site not in site_levels:
            at_site = by_site[site_bounds[site]:site_bounds[site + 1]]
            lv = levels[at_site]
            strong = (lv >= need).any(axis=1)
            site_levels[site] = (at_site[strong], lv[strong])
        at_site, lv = site_levels[site]
        sub = lv[:, d_idx]
        hit = (sub >= need).all(axis=1)
        ok = at_site[hit]
        m = len(ok)
        if m == 0:
            continue
        cand = ok[np.argsort(-sub[hit].sum(axis=1, dtype=np.int16), kind="stable")]
        turn = 2 * np.arange(len(gk)) if m >= 2 else np.zeros(len(gk), dtype=np.int64)
        chosen[gk, 0] = cand[turn % m]
        if m >= 2:
            chosen[gk, 1] = cand[(turn + 1) % m]
    picked = np.unique(chosen[chosen >= 0])
    names = dict(zip(picked.tolist(), people["person_id"].iloc[picked].astype(str).tolist())) if len(picked) else {}
    first = [names.get(w, "") for w in chosen[:, 0].tolist()]
    second = [names.get(w, "") for w in chosen[:, 1].tolist()]
    # main domains as text: one label per (first, second) pair, taken per group
    pair_label = [";".join(domains[d] for d in (a, b) if d >= 0) for a in range(-1, D) for b in range(-1, D)]
    main_text = np.asarray(pair_label, dtype=object)[(top[:, 0] + 1) * (D + 1) + (top[:, 1] + 1)] if G \
        else np.zeros(0, dtype=object)
    groups["main_domains"] = main_text
    groups["support_1"] = first
    groups["support_2"] = second
    # people: their group's first support person, and the groups they support
    # each person's group looked up in Arrow (no factorising of a million strings); '' for no group
    import pyarrow as pa
    import pyarrow.compute as pc

    group_text = pc.cast(pa.array(people["group"], from_pandas=True) if "group" in people.columns else pa.nulls(n), pa.string())
    at = pc.index_in(group_text, value_set=pa.array(groups["group"].astype(str).tolist(), type=pa.string()))
    at = at.to_numpy(zero_copy_only=False)
    at = np.where(np.isnan(at), G, at).astype(np.int64) if at.dtype.kind == "f" else at.astype(np.int64)
    people["support_person"] = np.asarray([*first, ""], dtype=object)[at]
    group_names = groups["group"].astype(str).tolist()
    # the groups each support person supports, in group order, joined in Arrow (one list per support person)
    flat_w, flat_g = chosen.ravel(), np.repeat(np.arange(G, dtype=np.int64), 2)
    keep = flat_w >= 0
    by_w = np.argsort(flat_w[keep], kind="stable")
    ws, gs = flat_w[keep][by_w], flat_g[keep][by_w]
    run_starts = np.flatnonzero(_new_run(ws))
    lists = pa.ListArray.from_arrays(pa.array(np.r_[run_starts, len(ws)].astype(np.int32)),
                                     pc.take(pa.array(group_names, type=pa.string()), pa.array(gs)))
    column = np.full(n, "", dtype=object)
    column[ws[run_starts]] = pc.binary_join(lists, ";").to_pylist()
    people["supports"] = column
    return people, groups


def _new_run(x: np.ndarray) -> np.ndarray:
    """True where a sorted array's value differs from the one before (the first too); empty for an empty array."""
    return np.r_[True, x[1:] != x[:-1]] if len(x) else np.zeros(0, dtype=bool)


def _seen_before(slot: np.ndarray, k: int) -> np.ndarray:
    """True where a value of ``slot`` already occurred earlier in the array (vectorised first-occurrence)."""
    first = np.full(k, len(slot), dtype=np.int64)
    np.minimum.at(first, slot, np.arange(len(slot), dtype=np.int64))
    return first[slot] != np.arange(len(slot))


def topological_rank(catalogue: "Catalogue") -> np.ndarray:
    """Each objective's position with every prerequisite before what needs it (catalogue order otherwise)."""
    from .paths import topological

    ids = list(catalogue.objective_ids)
    rank = np.empty(len(ids), dtype=np.int64)
    rank[[ids.index(o) for o in topological(catalogue)]] = np.arange(len(ids))
    return rank


def _note_texts(note_codes: np.ndarray, rows: np.ndarray, to_self: np.ndarray, r_session: np.ndarray, s_rows: np.ndarray,
                session_ids: np.ndarray, s_grp: np.ndarray, group_ids: list[str], s_reason: np.ndarray,
                fmt_ids: list[str], mod_fmt: np.ndarray, mcode: np.ndarray, minimum: int, notes: list[str]) -> "pd.Categorical":
    """plans.csv's session_note: '' for a session of the own group, else what happened, as a short sentence."""
    import pandas as pd

    key = np.zeros(len(note_codes), dtype=np.int64)  # 0: no note
    labels: dict[str, int] = {"": 0}
    step_session = np.full(len(note_codes), -1, dtype=np.int64)
    step_session[rows[s_rows]] = r_session
    for code in (1, 2, 4):
        idx = np.flatnonzero(note_codes == code)
        if not len(idx):
            continue
        sess = step_session[idx]
        u, inv = np.unique(sess, return_inverse=True)
        texts = []
        for s in u.tolist():
            if code == 1:
                texts.append(notes[1].format(group=group_ids[s_grp[s]]))
            elif code == 2:
                texts.append(notes[2])
            else:
                texts.append(notes[4].format(minimum=minimum, why=str(s_reason[s]).split(": ", 1)[-1]))
        codes_ = np.asarray([labels.setdefault(t, len(labels)) for t in texts], dtype=np.int64)
        key[idx] = codes_[inv]
    idx = np.flatnonzero(note_codes == 3)
    if len(idx):
        f = mod_fmt[mcode[idx]]
        u, inv = np.unique(f, return_inverse=True)
        codes_ = np.asarray([labels.setdefault(notes[3].format(format=fmt_ids[x], minimum=minimum), len(labels))
                             for x in u.tolist()], dtype=np.int64)
        key[idx] = codes_[inv]
    return pd.Categorical.from_codes(key, categories=list(labels))


def _group_table(groups: "pd.DataFrame", final: np.ndarray, cohort_codes: np.ndarray, cohort_names: list[str],
                 members: np.ndarray, min_size: int) -> "pd.DataFrame":
    """group, cohort (the most common of the members'), site, members, undersized: groups with members only."""
    import pandas as pd

    G = len(groups)
    cohort = np.full(G, "", dtype=object)
    inside = final >= 0
    if inside.any():
        C = max(len(cohort_names), 1)
        pairs, counts = np.unique(final[inside] * C + cohort_codes[inside], return_counts=True)
        order = np.lexsort((pairs % C, -counts, pairs // C))
        best = pairs[order]
        first = _new_run(best // C)
        cohort[best[first] // C] = np.asarray(cohort_names, dtype=object)[best[first] % C]
    table = pd.DataFrame({
        "group": groups["group"].to_numpy(dtype=object),
        "cohort": cohort,
        "site": groups["site"].to_numpy(dtype=object),
        "members": members.astype(np.int64),
        "undersized": members < min_size,
    })
    return table[table["members"] > 0].reset_index(drop=True)
