"""Training groups: each cohort split into groups a trainer can teach together, keeping sites together.

See :func:`make_groups`. Pure: no files, no printing.
"""

from __future__ import annotations

import bisect
import math
import re

import numpy as np
import pandas as pd

from .errors import UsageError


def _cohort_key(label: str) -> tuple[str, int, str]:
    """Natural order for cohort ids: C2 before C10."""
    m = re.fullmatch(r"(.*?)(\d+)", label)
    return (m.group(1), int(m.group(2)), label) if m else (label, -1, label)


def _site_text(site: str) -> str:
    return site if site else "(no site)"


def make_groups(
    cohorts: pd.Series,
    sites: pd.Series,
    min_size: int = 6,
    max_size: int = 14,
) -> tuple[pd.Series, pd.DataFrame, list[str]]:
    """Split each cohort into training groups of ``min_size``–``max_size`` people, keeping sites together.

    Within a cohort, a site with at least ``min_size`` people gets its own groups:
    ``ceil(n / max_size)`` groups of near-equal size. People of smaller sites are
    pooled (ordered by site) into mixed-site groups of near-equal size, with cuts
    moved to a site boundary when that keeps every group within the bounds. If
    fewer than ``min_size`` such people are left over, they join the cohort's
    smallest groups that have room; a cohort smaller than ``min_size`` becomes one
    undersized group. Undersized or otherwise out-of-bounds groups are listed in
    the problems, never hidden.

    Returns the group id of each person (``"C2-G03"``, same index as ``cohorts``),
    a table of groups (``group``, ``cohort``, ``site`` — the site, or
    ``"mixed: A, B"`` —, ``members``, ``undersized``) and the problems as text.
    Groups are numbered within a cohort by their first member in (site, input) order.
    """
    import pandas as pd

    if isinstance(min_size, bool) or isinstance(max_size, bool) or not (1 <= int(min_size) <= int(max_size)):
        raise UsageError(f"Group sizes need 1 ≤ min_size ≤ max_size. Got min_size={min_size!r}, max_size={max_size!r}.")
    if len(cohorts) != len(sites):
        raise UsageError(f"cohorts and sites must have one entry per person; got {len(cohorts)} and {len(sites)}.")
    lo, hi = int(min_size), int(max_size)
    n = len(cohorts)
    group_cols = ["group", "cohort", "site", "members", "undersized"]
    if n == 0:
        empty = pd.DataFrame({c: pd.Series(dtype=object if c in ("group", "cohort", "site") else "int64") for c in group_cols})
        empty["undersized"] = empty["undersized"].astype(bool)
        return pd.Series([], index=cohorts.index, dtype=object, name="group"), empty, []

    raw_codes, raw_names = pd.factorize(cohorts)
    if (raw_codes < 0).any():
        raise UsageError(f"Every person needs a cohort to be grouped; {int((raw_codes < 0).sum())} have none.")
    cohort_names = sorted((str(c) for c in raw_names), key=_cohort_key)
    rank_of = {name: i for i, name in enumerate(cohort_names)}
    c_codes = np.array([rank_of[str(c)] for c in raw_names], dtype=np.int64)[raw_codes]
    s_codes, site_index = pd.factorize(sites.fillna("") if sites.hasnans else sites, sort=True)
    site_names = np.asarray(site_index.astype(str).to_numpy(dtype=object), dtype=object)
    n_sites = len(site_names)

    order = np.lexsort((np.arange(n), s_codes, c_codes))  # people in (cohort, site, input) order
    cs = c_codes[order]
    ss = s_codes[order].astype(np.int64)
    pair = cs * n_sites + ss
    new_pair = np.r_[True, pair[1:] != pair[:-1]]
    pair_start = np.flatnonzero(new_pair)
    pair_len = np.diff(np.r_[pair_start, n])
    pair_id = np.cumsum(new_pair) - 1
    rank = np.arange(n) - pair_start[pair_id]
    pair_cohort = cs[pair_start]
    pair_site = ss[pair_start]

    problems: list[str] = []
    gkey = np.full(n, -1, dtype=np.int64)
    # group-level facts, appended as groups are made
    g_cohort: list[np.ndarray] = []

    # 1. sites big enough for their own groups
    big = pair_len >= lo
    big_ids = np.flatnonzero(big)
    n_groups = np.ceil(pair_len[big_ids] / hi).astype(np.int64)
    first_key = np.r_[0, np.cumsum(n_groups)[:-1]]
    pair_groups = np.zeros(len(pair_len), dtype=np.int64)
    pair_first = np.zeros(len(pair_len), dtype=np.int64)
    pair_groups[big_ids] = n_groups
    pair_first[big_ids] = first_key
    in_big = big[pair_id]
    pg = pair_groups[pair_id[in_big]]
    gkey[in_big] = pair_first[pair_id[in_big]] + rank[in_big] * pg // pair_len[pair_id[in_big]]
    next_key = int(n_groups.sum())
    big_group_cohort = np.repeat(pair_cohort[big_ids], n_groups)
    g_cohort.append(big_group_cohort)
    tight = big_ids[n_groups * lo > pair_len[big_ids]]
    for p in tight[:5]:
        problems.append(
            f"Cohort {cohort_names[pair_cohort[p]]}, site {_site_text(site_names[pair_site[p]])!r}: {pair_len[p]} people "
            f"cannot be split into groups of {lo}–{hi}; made {pair_groups[p]} groups below {lo}."
        )
    if len(tight) > 5:
        problems.append(f"… and {len(tight) - 5} more sites with the same problem.")

    # 2. small sites: pool per cohort
    cohort_bounds = np.searchsorted(cs, np.arange(len(cohort_names) + 1))
    sizes_so_far = np.bincount(gkey[gkey >= 0], minlength=next_key)
    group_size: list[int] = sizes_so_far.tolist()
    for c, name in enumerate(cohort_names):
        a, b = cohort_bounds[c], cohort_bounds[c + 1]
        pool = a + np.flatnonzero(gkey[a:b] < 0)
        P = len(pool)
        if P == 0:
            continue
        if P >= lo:
            g = math.ceil(P / hi)
            cuts = _snap_cuts(ss[pool], P, g, lo, hi)
            idx_in_pool = np.searchsorted(cuts, np.arange(P), side="right")
            gkey[pool] = next_key + idx_in_pool
            new_sizes = np.diff(np.r_[0, cuts, P])
            group_size += new_sizes.tolist()
            g_cohort.append(np.full(g, c))
            if g * lo > P:
                problems.append(
                    f"Cohort {name}: {P} people from small sites cannot be split into groups of {lo}–{hi}; "
                    f"made {g} mixed-site groups below {lo}."
                )
            next_key += g
            continue
        cohort_keys = np.flatnonzero(big_group_cohort == c).tolist()  # only site groups exist in this cohort
        if not cohort_keys:
            gkey[pool] = next_key
            group_size.append(P)
            g_cohort.append(np.array([c]))
            next_key += 1
            problems.append(
                f"Cohort {name} has {P} {'person' if P == 1 else 'people'}, fewer than the minimum group size {lo}: "
                "they form one undersized group. Consider training them with a neighbouring cohort or individually."
            )
            continue
        unseated = _seat_leftovers(pool, ss[pool], cohort_keys, group_size, gkey, hi)
        if unseated:
            gkey[unseated] = next_key
            group_size.append(len(unseated))
            g_cohort.append(np.array([c]))
            next_key += 1
            problems.append(
                f"Cohort {name}: {len(unseated)} people from small sites did not fit into the cohort's full groups "
                f"(at most {hi}); they form one undersized group."
            )

    group_cohort = np.concatenate(g_cohort) if g_cohort else np.zeros(0, np.int64)
    sizes = np.bincount(gkey, minlength=next_key)
    by_group = np.argsort(gkey, kind="stable")  # positions ascending within each group
    group_start = np.searchsorted(gkey[by_group], np.arange(next_key))
    first_pos = by_group[group_start]
    # number groups within cohort by first member in (cohort, site, input) order
    g_order = np.argsort(first_pos, kind="stable")
    ordered_cohort = group_cohort[g_order]
    block_start = np.searchsorted(ordered_cohort, ordered_cohort, side="left")
    number = np.empty(next_key, dtype=np.int64)
    number[g_order] = np.arange(next_key) - block_start + 1
    width = max(2, len(str(int(number.max()))))
    group_ids = np.array(
        [f"{cohort_names[c]}-G{k:0{width}d}" for c, k in zip(group_cohort.tolist(), number.tolist())], dtype=object
    )

    site_label = _site_labels(gkey[by_group], ss[by_group], next_key, site_names)

    person_group = np.empty(n, dtype=np.int64)
    person_group[order] = gkey
    groups = pd.DataFrame(
        {
            "group": group_ids[g_order],
            "cohort": np.asarray(cohort_names, dtype=object)[group_cohort[g_order]],
            "site": site_label[g_order],
            "members": sizes[g_order].astype(np.int64),
            "undersized": sizes[g_order] < lo,
        }
    )
    from .columns import text_column

    return pd.Series(text_column(group_ids, person_group), index=cohorts.index, name="group"), groups, problems


def _seat_leftovers(pool: np.ndarray, pool_sites: np.ndarray, cohort_keys: list[int], group_size: list[int],
                    gkey: np.ndarray, hi: int) -> list[int]:
    """Seat fewer than min_size people left over (``pool``, ordered by site) in the cohort's groups with room:
    a whole site into the smallest group it fits, else one person at a time into the smallest with room.
    Updates ``gkey`` and ``group_size``; returns the people no group had room for."""
    starts = np.flatnonzero(np.r_[True, pool_sites[1:] != pool_sites[:-1]])
    ends = np.r_[starts[1:], len(pool)]
    unseated: list[int] = []
    for s0, s1 in zip(starts, ends):
        people = pool[s0:s1]
        fits = [g for g in cohort_keys if group_size[g] + len(people) <= hi]
        if fits:
            target = min(fits, key=lambda g: (group_size[g], g))
            gkey[people] = target
            group_size[target] += len(people)
            continue
        for person in people:
            room = [g for g in cohort_keys if group_size[g] < hi]
            if not room:
                unseated.append(int(person))
                continue
            target = min(room, key=lambda g: (group_size[g], g))
            gkey[person] = target
            group_size[target] += 1
    return unseated


def _site_labels(pg: np.ndarray, ps: np.ndarray, n_groups: int, site_names: np.ndarray) -> np.ndarray:
    """Each group's site: its one site's name, or "mixed: A, B" in site order. ``pg`` and ``ps`` are the
    people's groups and site codes sorted by group, sites ascending within a group."""
    # distinct (group, site) pairs are where either changes
    change = np.r_[True, (pg[1:] != pg[:-1]) | (ps[1:] != ps[:-1])]
    gs_group, gs_site = pg[change], ps[change]
    n_site_in_group = np.bincount(gs_group, minlength=n_groups)
    first_site_idx = np.searchsorted(gs_group, np.arange(n_groups))
    site_label = np.empty(n_groups, dtype=object)
    single = n_site_in_group == 1
    site_label[single] = site_names[gs_site[first_site_idx[single]]]
    texts = [_site_text(str(x)) for x in site_names]
    flat = gs_site.tolist()
    for g in np.flatnonzero(~single).tolist():
        a = int(first_site_idx[g])
        site_label[g] = "mixed: " + ", ".join(map(texts.__getitem__, flat[a : a + int(n_site_in_group[g])]))
    return site_label


def _snap_cuts(pool_sites: np.ndarray, P: int, g: int, lo: int, hi: int) -> np.ndarray:
    """Cut positions (g − 1, ascending) splitting a pool of P people (ordered by site) into g groups.

    Cut by cut, the target is an equal share of the people still to place; the
    cut moves to the nearest site boundary that keeps this group and all the
    remaining ones within [lo, hi], so sites stay together where the bounds
    allow. When the bounds cannot all be met, the groups are near-equal.
    """
    if g <= 1:
        return np.zeros(0, dtype=np.int64)
    if g * lo > P:
        return -(-np.arange(1, g) * P // g)  # ceil(j * P / g): near-equal
    boundaries = (np.flatnonzero(pool_sites[1:] != pool_sites[:-1]) + 1).tolist()
    cuts = []
    prev = 0
    for left in range(g - 1, 0, -1):  # groups still to make after this cut
        target = prev + round((P - prev) / (left + 1))
        low = max(prev + lo, P - left * hi)
        high = min(prev + hi, P - left * lo)
        i = bisect.bisect_left(boundaries, low)
        j = bisect.bisect_right(boundaries, high)
        if i < j:
            k = bisect.bisect_left(boundaries, target, i, j)
            below, above = boundaries[max(i, k - 1)], boundaries[min(j - 1, k)]
            cut = below if target - below <= above - target else above
        else:
            cut = min(max(target, low), high)
        cuts.append(cut)
        prev = cut
    return np.asarray(cuts, dtype=np.int64)


def need_groups(
    site_codes: np.ndarray,
    site_names: list[str],
    needs: np.ndarray,
    min_size: int = 6,
    max_size: int = 14,
) -> tuple[np.ndarray, pd.DataFrame]:
    """Training groups of people at the same site who share needs: :func:`make_groups` with the site in the
    cohort's place and a need signature (an integer per person, e.g. bits of the objectives they need) in the
    site's, so people with the same needs get their own groups and the rest are pooled in order of their needs.

    Returns each person's group code (0..G-1, aligned with ``site_codes``) and the groups: ``group``
    (``S2-G03``: the site's number in sorted site order, then the group), ``site`` (the site's name),
    ``site_code`` and ``members``.
    """
    import pandas as pd

    n = len(site_codes)
    if n == 0:
        return np.zeros(0, dtype=np.int64), pd.DataFrame({"group": pd.Series([], dtype=object), "site": pd.Series([], dtype=object),
                                                           "site_code": pd.Series([], dtype="int64"), "members": pd.Series([], dtype="int64")})
    order = sorted(range(len(site_names)), key=lambda i: site_names[i])
    number = np.empty(len(site_names), dtype=np.int64)
    number[order] = np.arange(1, len(site_names) + 1)
    labels = np.asarray([f"S{k}" for k in number.tolist()], dtype=object)
    cohorts = pd.Series(labels[site_codes])
    ids, table, _ = make_groups(cohorts, pd.Series(np.asarray(needs, dtype=np.int64)), min_size=min_size, max_size=max_size)
    import pyarrow as pa
    import pyarrow.compute as pc

    # each person's group by its id, hashed in Arrow (pandas' get_indexer on a million strings is several times slower)
    found = pc.index_in(pa.array(ids, from_pandas=True), value_set=pa.array(table["group"].astype(str).tolist(), type=pa.string()))
    code = np.asarray(found.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)
    site_of_label = {lab: i for i, lab in enumerate(labels.tolist())}
    site_code = np.asarray([site_of_label[c] for c in table["cohort"].tolist()], dtype=np.int64)
    out = pd.DataFrame({"group": table["group"].to_numpy(dtype=object),
                        "site": np.asarray(site_names, dtype=object)[site_code] if len(site_code) else np.zeros(0, dtype=object),
                        "site_code": site_code, "members": table["members"].to_numpy(dtype=np.int64)})
    return code.astype(np.int64), out
