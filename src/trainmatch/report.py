"""The HR report: one self-contained HTML page for HR and the steering group.

Headline counts (read / accepted / rejected, planned and deferred hours), the
cohorts (sizes, a heatmap of domain means, descriptions) and how their number
was chosen (fit table, chosen k, warnings), the gaps per domain, hours by
format and by learning objective, training groups by site, rejected rows by
reason, and the reliability (Cronbach's alpha) of each domain.

Everything is aggregated with pandas/numpy first (:func:`report_data`: small,
JSON-ready, free of any person's data); :mod:`trainmatch.charts` draws the
charts from the aggregates only, so a national-scale run costs little more
than a small one. Charts are embedded as SVG ``data:`` images: the page loads
nothing from outside and needs no JavaScript. Output is byte-for-byte
reproducible: every table is sorted explicitly.

Pure: :func:`render_report` (or :func:`report_data` then :func:`render_report_data`)
returns a string; the ``assign`` job writes it.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from .charts import GAP_CATEGORIES, draw_charts, number_text
from .letters import template_environment
from .programme import Programme

if TYPE_CHECKING:  # heavy imports happen inside the functions that need them
    import numpy as np
    import pandas as pd

    from .scoring import Reliability

REPORT_TEMPLATE = "report.html.j2"
SECTIONS = (
    ("summary", "Summary"),
    ("cohorts", "Cohorts"),
    ("fit", "Choosing the number of cohorts"),
    ("gaps", "Competence gaps"),
    ("hours", "Training hours"),
    ("time", "Time for training"),
    ("groups", "Training groups"),
    ("sessions", "Group sessions and support"),
    ("rejects", "Rejected rows"),
    ("reliability", "Reliability of the questionnaire"),
    ("items", "Item statistics"),
)
# --------------------------------------------------------------------------- helpers


def _english(names: Mapping[str, str], fallback: str) -> str:
    return names.get("en") or fallback


def _cohort_means(cohorts: "pd.DataFrame", programme: Programme) -> "np.ndarray":
    """cohorts × domains mean scores from ``mean_<domain>`` (or a column named by the domain id or English name)."""
    import numpy as np

    cols = []
    for d in programme.domains:
        for cand in (f"mean_{d.id}", d.id, _english(d.names, d.id)):
            if cand in cohorts.columns:
                cols.append(cohorts[cand].to_numpy(dtype=np.float64, na_value=np.nan))
                break
        else:
            cols.append(np.full(len(cohorts), np.nan))
    return np.column_stack(cols) if cols else np.zeros((len(cohorts), 0))


def reason_kind(reasons: "pd.Series") -> "pd.Series":
    """Group reject reasons into kinds: the first sentence, with row lists of duplicate ids cut."""
    kinds = reasons.astype(str).str.replace(r"(The same id appears in rows)[^;]*", r"\1 …", regex=True)
    return kinds.str.split(".").str[0].str.strip()


def _fit_frame(fit_rows: Any) -> tuple["pd.DataFrame", int | None, list[str]]:
    """The fit table, the chosen k and any warnings, from a DataFrame or a cohorts.FitReport."""
    import pandas as pd

    if fit_rows is None:
        return pd.DataFrame(columns=["k", "silhouette", "smallest_share", "chosen"]), None, []
    if hasattr(fit_rows, "rows") and hasattr(fit_rows, "chosen_k"):
        frame = pd.DataFrame([dataclasses.asdict(r) for r in fit_rows.rows])
        frame["chosen"] = frame["k"] == fit_rows.chosen_k
        return frame, int(fit_rows.chosen_k), list(fit_rows.warnings)
    frame = pd.DataFrame(fit_rows).sort_values("k", kind="stable").reset_index(drop=True)
    chosen = frame.loc[frame["chosen"].astype(bool), "k"] if "chosen" in frame else frame["k"].iloc[:0]
    return frame, (int(chosen.iloc[0]) if len(chosen) else None), []


def small_cell(count: float, min_cell: int) -> bool:
    """Whether a count of people is too small to show (privacy.min_cell): 1 to min_cell - 1 (none is shown as 0)."""
    return 0 < float(count) < min_cell


def small_text(min_cell: int) -> str:
    return f"< {min_cell}"


# --------------------------------------------------------------------------- aggregates


def _headline(people: "pd.DataFrame", steps: "pd.DataFrame", deferred: "pd.DataFrame", rejects: "pd.DataFrame | None", n_read: int | None, programme: Programme) -> list[tuple[str, str]]:
    import numpy as np

    accepted = len(people)
    rejected = int(rejects["row"].nunique()) if rejects is not None and len(rejects) else 0
    read = n_read if n_read is not None else accepted + rejected
    planned = float(people["planned_hours"].sum()) if "planned_hours" in people else float(steps["hours"].sum())
    deferred_h = float(people["deferred_hours"].sum()) if "deferred_hours" in people else float(deferred["hours"].sum())
    with_plan = int(steps["person_id"].nunique()) if len(steps) else 0
    missing_cols = [f"missing_{d}" for d in programme.domain_ids if f"missing_{d}" in people]
    reassess = int(np.any(people[missing_cols].to_numpy(dtype=bool), axis=1).sum()) if missing_cols and accepted else 0
    rows = [
        ("Rows read", f"{read:,}"),
        ("Accepted", f"{accepted:,}"),
        ("Rejected", f"{rejected:,}"),
        ("People with a plan", f"{with_plan:,}"),
        ("Planned steps", f"{len(steps):,}"),
        ("Planned hours", number_text(planned, ",.1f")),
        ("Mean planned hours per person", number_text(planned / accepted if accepted else float("nan"), ",.1f")),
        ("Deferred items", f"{len(deferred):,}"),
        ("Deferred hours", number_text(deferred_h, ",.1f")),
        ("People to reassess in at least one domain", f"{reassess:,}"),
    ]
    if read != accepted + rejected:
        rows.append(("Unaccounted rows (should be 0)", f"{read - accepted - rejected:,}"))
    return rows


def gap_counts(people: "pd.DataFrame", programme: Programme) -> "pd.DataFrame":
    """People per domain (rows, English names) and gap category (columns, :data:`GAP_CATEGORIES`)."""
    import numpy as np
    import pandas as pd

    out = []
    for d in programme.domains:
        gap = people[f"gap_{d.id}"].to_numpy(dtype=np.float64, na_value=np.nan)
        req = people[f"required_{d.id}"].to_numpy(dtype=np.float64, na_value=0)
        missing = np.isnan(gap)
        ok = ~missing
        out.append(
            [
                int((ok & (req <= 0)).sum()),
                int((ok & (req > 0) & (gap <= 0)).sum()),
                int((ok & (gap == 1)).sum()),
                int((ok & (gap == 2)).sum()),
                int((ok & (gap >= 3)).sum()),
                int(missing.sum()),
            ]
        )
    return pd.DataFrame(out, index=[_english(d.names, d.id) for d in programme.domains], columns=[c for c, _ in GAP_CATEGORIES])


def _by(frame: "pd.DataFrame", column: str) -> Any:
    """Group by a text column without converting millions of categorical cells to strings."""
    return frame.groupby(column, sort=True, observed=True)


def hours_by_format(steps: "pd.DataFrame", programme: Programme) -> "pd.DataFrame":
    """Planned steps and hours per format, in programme order (formats not in the programme last)."""
    import pandas as pd

    agg = _by(steps, "format").agg(steps=("hours", "size"), hours=("hours", "sum"))
    agg.index = agg.index.astype(str)
    agg = agg.groupby(level=0).sum()
    order = [f.id for f in programme.formats] + sorted(set(agg.index) - set(programme.format_ids))
    agg = agg.reindex(order, fill_value=0)
    names = {f.id: _english(f.names, f.id) for f in programme.formats}
    total = float(agg["hours"].sum())
    return pd.DataFrame(
        {
            "format": [names.get(f, f) for f in agg.index],
            "group": ["group" if f in {x.id for x in programme.formats if x.group} else "individual" for f in agg.index],
            "steps": agg["steps"].astype("int64").to_numpy(),
            "hours": agg["hours"].astype(float).to_numpy(),
            "share": (agg["hours"] / total).to_numpy() if total else [float("nan")] * len(agg),
        }
    )


def hours_by_objective(steps: "pd.DataFrame", deferred: "pd.DataFrame") -> "pd.DataFrame":
    """Planned and deferred steps and hours per objective, most hours first (ties by objective id)."""
    planned = _by(steps, "objective").agg(steps=("hours", "size"), planned_hours=("hours", "sum"))
    later = _by(deferred, "objective").agg(deferred=("hours", "size"), deferred_hours=("hours", "sum"))
    planned.index, later.index = planned.index.astype(str), later.index.astype(str)
    table = planned.join(later, how="outer").fillna(0)
    table.index.name = "objective"
    table = table.reset_index()
    table["total"] = table["planned_hours"] + table["deferred_hours"]
    table = table.sort_values(["total", "objective"], ascending=[False, True], kind="stable").reset_index(drop=True)
    for c in ("steps", "deferred"):
        table[c] = table[c].astype("int64")
    return table.drop(columns="total")


CAPACITY_ROWS = 40  # site-and-role rows the report shows; capacity.csv has them all


def capacity_section(capacity: "pd.DataFrame", min_cell: int = 1) -> dict[str, Any]:
    """The time-for-training table: the total, then the site-and-role rows with the most hours deferred
    (at most :data:`CAPACITY_ROWS`; ties by site and role), as texts. A row of fewer than ``min_cell``
    people shows its count as "< min_cell" and no other number (:func:`small_cell`)."""
    import pandas as pd

    total = capacity[(capacity["site"] == "all") & (capacity["role"] == "all")]
    rows = capacity.drop(total.index).sort_values(["hours_deferred", "site", "role"], ascending=[False, True, True], kind="stable")
    shown = pd.concat([total, rows.head(CAPACITY_ROWS)])
    fmt = {"people": ",d", "people_with_needs": ",d", "hours_available": ",.1f", "hours_needed": ",.1f",
           "hours_planned": ",.1f", "hours_deferred": ",.1f"}
    out = []
    for rec in shown.to_dict("records"):
        share = rec["share_all_gaps_closed"]
        if small_cell(rec["people"], min_cell):
            out.append([str(rec["site"]), str(rec["role"]), small_text(min_cell)] + ["–"] * len(fmt))
            continue
        out.append([str(rec["site"]), str(rec["role"])] + [format(rec[c], f) for c, f in fmt.items()]
                   + ["–" if share != share else f"{100 * share:.0f}%"])
    return {
        "head": ["site", "role", "people", "people with needs", "hours available", "hours needed", "hours planned",
                 "hours deferred", "plan closes all gaps"],
        "rows": out,
        "more": max(0, len(rows) - CAPACITY_ROWS),
    }


def groups_by_site(groups: "pd.DataFrame") -> "pd.DataFrame":
    """Training groups and members per site, most groups first."""
    agg = groups.groupby(groups["site"].astype(str), sort=True).agg(groups=("group", "size"), members=("members", "sum"))
    if "undersized" in groups:
        agg["undersized"] = groups.groupby(groups["site"].astype(str), sort=True)["undersized"].sum().astype("int64")
    agg.index.name = "site"
    agg = agg.reset_index()
    return agg.sort_values(["groups", "site"], ascending=[False, True], kind="stable").reset_index(drop=True)


def rejects_by_reason(rejects: "pd.DataFrame") -> "pd.DataFrame":
    """Rejected rows (a row counts once per kind) and bad cells per reason kind, most rows first."""
    import pandas as pd

    if rejects is None or not len(rejects):
        return pd.DataFrame({"reason": [], "rows": [], "cells": []})
    kinds = reason_kind(rejects["reason"])
    frame = pd.DataFrame({"reason": kinds.to_numpy(dtype=object), "row": rejects["row"].to_numpy()})
    agg = frame.groupby("reason", sort=True).agg(rows=("row", "nunique"), cells=("row", "size")).reset_index()
    return agg.sort_values(["rows", "reason"], ascending=[False, True], kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------- report


def _records(frame: "pd.DataFrame", formats: Mapping[str, str]) -> list[list[str]]:
    """A table's rows as text cells, numbers formatted by column."""
    cols = list(frame.columns)
    out = []
    for row in frame.itertuples(index=False):
        out.append([number_text(v, formats[c]) if c in formats else str(v) for c, v in zip(cols, row)])
    return out


def render_report(
    people: "pd.DataFrame",
    steps: "pd.DataFrame",
    deferred: "pd.DataFrame",
    programme: Programme,
    **options: Any,
) -> str:
    """The self-contained HR report as one HTML string: :func:`report_data`, then :func:`render_report_data`.

    Takes the same keyword options as :func:`report_data`.
    """
    return render_report_data(report_data(people, steps, deferred, programme, **options))


def report_data(
    people: "pd.DataFrame",
    steps: "pd.DataFrame",
    deferred: "pd.DataFrame",
    programme: Programme,
    *,
    cohorts: "pd.DataFrame | None" = None,
    groups: "pd.DataFrame | None" = None,
    fit_rows: Any = None,
    warnings: Iterable[str] = (),
    rejects: "pd.DataFrame | None" = None,
    reliability: Sequence["Reliability"] = (),
    item_stats: "pd.DataFrame | None" = None,
    n_read: int | None = None,
    title: str = "Digital competence and training plans",
    organisation: str = "",
    run_info: Mapping[str, str] | None = None,
    capacity: "pd.DataFrame | None" = None,
    sessions: "pd.DataFrame | None" = None,
    min_cell: int | None = None,
) -> dict[str, Any]:
    """Everything the report shows, aggregated: small, JSON-ready, and free of any person's data.

    ``fit_rows`` is the fit table (columns ``k``, ``silhouette``,
    ``smallest_share``, ``chosen``; other index columns are shown too) or a
    :class:`trainmatch.cohorts.FitReport`. ``n_read`` is the number of data rows
    read (default: accepted + rejected rows). ``item_stats`` is
    :func:`trainmatch.scoring.item_statistics`' table. ``run_info`` (e.g. input file,
    programme fingerprint, seed) is listed as given; pass no timestamps if the
    report must be reproducible. ``capacity`` is capacity.csv's table
    (:func:`trainmatch.exports.capacity_table`). Sections without data say so. ``min_cell``
    (default: the programme's ``privacy.min_cell``) suppresses small cells: a cohort, site, or site and role
    of fewer people shows "< min_cell" and none of its means or hours, and is left out of the charts.

    The result holds the text tables and, under ``charts``, the arguments of
    each chart; :func:`render_report_data` draws the charts and fills the
    template.
    """
    domain_names = [_english(d.names, d.id) for d in programme.domains]
    charts: dict[str, dict[str, Any]] = {}
    tables: dict[str, Any] = {}

    # Summary
    tables["headline"] = _headline(people, steps, deferred, rejects, n_read, programme)

    # Cohorts
    min_cell = programme.min_cell if min_cell is None else int(min_cell)
    if cohorts is not None and len(cohorts):
        cohort_charts, tables["cohorts"] = _cohorts_section(cohorts, programme, domain_names, min_cell)
        charts.update(cohort_charts)

    # Fit
    fit_charts, fit_tables, fit_warnings = _fit_section(fit_rows)
    charts.update(fit_charts)
    tables.update(fit_tables)
    all_warnings = list(dict.fromkeys([*fit_warnings, *[str(w) for w in warnings]]))
    tables.update(_cohort_stability(fit_rows))

    # Gaps
    gaps = gap_counts(people, programme)
    charts["gaps"] = {"domains": [str(d) for d in gaps.index], "counts": gaps.to_numpy().tolist()}
    tables["gaps"] = {"head": ["domain", *gaps.columns], "rows": [[d, *(f"{int(v):,}" for v in row)] for d, row in zip(gaps.index, gaps.to_numpy())]}

    # Hours
    if len(steps):
        by_format = hours_by_format(steps, programme)
        charts["hours_format"] = {"rows": by_format.to_dict("records")}
        shown = by_format.assign(share=by_format["share"] * 100)
        tables["hours_format"] = {
            "head": ["format", "delivery", "steps", "planned hours", "share of hours (%)"],
            "rows": _records(shown, {"steps": ",d", "hours": ",.1f", "share": ".1f"}),
        }
    if len(steps) or len(deferred):
        by_objective = hours_by_objective(steps, deferred)
        charts["hours_objective"] = {"rows": by_objective.to_dict("records")}
        tables["hours_objective"] = {
            "head": ["objective", "planned steps", "planned hours", "deferred items", "deferred hours"],
            "rows": _records(by_objective, {"steps": ",d", "planned_hours": ",.1f", "deferred": ",d", "deferred_hours": ",.1f"}),
        }

    # Time for training
    if capacity is not None and len(capacity):
        tables["capacity"] = capacity_section(capacity, min_cell)
    if sessions is not None:
        tables["sessions"] = sessions_section(sessions, steps, groups, programme)

    # Groups
    if groups is not None and len(groups):
        charts["groups_site"], tables["groups_site"], tables["groups_summary"] = _groups_section(groups, programme, min_cell)

    # Rejects
    by_reason = rejects_by_reason(rejects)
    if len(by_reason):
        charts["rejects"] = {"rows": by_reason.to_dict("records")}
        tables["rejects"] = {"head": ["reason", "rows", "problem cells"], "rows": _records(by_reason, {"rows": ",d", "cells": ",d"})}

    # Reliability
    rel = list(reliability)
    if rel:
        charts["reliability"], tables["reliability"] = _reliability_section(rel, programme, domain_names)
    if item_stats is not None and len(item_stats):
        tables["items"] = _item_stats_table(item_stats, dict(zip(programme.domain_ids, domain_names)), programme)

    return {
        "title": title,
        "organisation": organisation,
        "programme": f"{programme.name} {programme.version}".strip(),
        "fingerprint": programme.fingerprint,
        "run_info": [[str(k), str(v)] for k, v in (run_info or {}).items()],
        "charts": charts,
        "tables": tables,
        "warnings": all_warnings,
        "alpha_warning": f"{programme.alpha_warning:g}",
        "n_people": len(people),
    }


def _cohorts_section(cohorts: "pd.DataFrame", programme: Programme, domain_names: list[str], min_cell: int
                     ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The cohort charts (sizes, profiles) and table; a cohort of fewer than ``min_cell`` shows no means."""
    import numpy as np

    cohorts = cohorts.reset_index(drop=True)
    means = _cohort_means(cohorts, programme)
    sizes = cohorts["size"].astype(float).tolist()
    small = [small_cell(v, min_cell) for v in sizes]
    means[np.asarray(small, dtype=bool)] = np.nan  # a small cohort's means are not shown
    shares = cohorts["share"].astype(float).tolist() if "share" in cohorts else [v / (sum(sizes) or 1) for v in sizes]
    charts: dict[str, Any] = {}
    charts["cohort_sizes"] = {
        "ids": [c for c, s in zip(cohorts["cohort"].astype(str), small) if not s],
        "sizes": [v for v, s in zip(sizes, small) if not s],
        "shares": [v for v, s in zip(shares, small) if not s],
    }
    charts["cohort_profiles"] = {
        "ids": cohorts["cohort"].astype(str).tolist(),
        "domains": domain_names,
        "means": [[None if math.isnan(v) else float(v) for v in row] for row in means],
        "lo": programme.scale_min,
        "hi": programme.scale_max,
    }
    rows = []
    for i, r in enumerate(cohorts.itertuples(index=False)):
        rec = r._asdict()
        if small[i]:
            rows.append([str(rec["cohort"]), small_text(min_cell), "–"] + ["–"] * len(domain_names) + [str(rec.get("description", ""))])
            continue
        rows.append(
            [str(rec["cohort"]), f"{int(rec['size']):,}", number_text(100 * float(rec.get("share", float("nan"))), ".1f") + "%"]
            + [number_text(v, ".2f") for v in means[i]]
            + [str(rec.get("description", ""))]
        )
    return charts, {"head": ["cohort", "people", "share"] + domain_names + ["description"], "rows": rows}


def _fit_section(fit_rows: Any) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """The fit chart and table for k, and the fit's warnings."""
    fit, chosen, fit_warnings = _fit_frame(fit_rows)
    charts: dict[str, Any] = {}
    tables: dict[str, Any] = {}
    if len(fit):
        charts["fit"] = {
            "ks": fit["k"].astype(int).tolist(),
            "sil": [None if math.isnan(v) else v for v in fit["silhouette"].astype(float).tolist()],
            "chosen": chosen,
        }
        cols = [c for c in ("k", "silhouette", "calinski_harabasz", "davies_bouldin", "smallest_share") if c in fit]
        shown = fit[cols].copy()
        if "smallest_share" in shown:
            shown["smallest_share"] = shown["smallest_share"].astype(float) * 100
        head = {"k": "k", "silhouette": "silhouette", "calinski_harabasz": "Calinski-Harabasz", "davies_bouldin": "Davies-Bouldin", "smallest_share": "smallest cohort (%)"}
        rows = _records(shown, {"k": "d", "silhouette": ".3f", "calinski_harabasz": ",.1f", "davies_bouldin": ".3f", "smallest_share": ".1f"})
        marks = fit["k"].astype(int).eq(chosen).tolist() if chosen is not None else [False] * len(fit)
        tables["fit"] = {"head": [head[c] for c in cols] + ["chosen"], "rows": [r + ["✔" if m else ""] for r, m in zip(rows, marks)], "chosen": chosen}
    return charts, tables, fit_warnings


def _groups_section(groups: "pd.DataFrame", programme: Programme, min_cell: int) -> tuple[dict[str, Any], dict[str, Any], list]:
    """Training groups per site (chart and table; a site of fewer than ``min_cell`` shows no count) and the summary."""
    by_site = groups_by_site(groups)
    site_small = [small_cell(v, min_cell) for v in by_site["members"]]
    shown_sites = by_site[[not s for s in site_small]]
    chart = {"rows": shown_sites[["site", "groups", "members"]].to_dict("records")}
    head = ["site", "groups", "people"] + (["undersized groups"] if "undersized" in by_site else [])
    site_rows = _records(by_site, {"groups": ",d", "members": ",d", "undersized": ",d"})
    for row, s in zip(site_rows, site_small):
        if s:  # a site of few people: their count not shown
            row[2] = small_text(min_cell)
    table = {"head": head, "rows": site_rows}
    group_sizes = groups["members"].astype(float)
    smallest = int(group_sizes.min())
    summary = [
        ("Training groups", f"{len(groups):,}"),
        ("People in groups", f"{int(group_sizes.sum()):,}"),
        ("Group size (min / median / max)", f"{small_text(min_cell) if small_cell(smallest, min_cell) else smallest} / "
         f"{number_text(group_sizes.median(), 'g')} / {int(group_sizes.max())}"),
        ("Allowed size", f"{programme.group_min_size}–{programme.group_max_size}"),
    ]
    return chart, table, summary


def _reliability_section(rel: list["Reliability"], programme: Programme, domain_names: list[str]
                         ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Cronbach's alpha per domain: the chart and the table (low ones flagged)."""
    names = dict(zip(programme.domain_ids, domain_names))
    chart = {
        "domains": [names.get(r.domain, r.domain) for r in rel],
        "alphas": [None if r.alpha is None or math.isnan(r.alpha) else float(r.alpha) for r in rel],
        "low": [bool(r.low) for r in rel],
        "warn": float(programme.alpha_warning),
    }
    table = {
        "head": ["domain", "skill items", "complete responses", "alpha", "SEM", ""],
        "rows": [[names.get(r.domain, r.domain), str(r.n_items), f"{r.n_complete:,}", number_text(r.alpha, ".2f"),
                  number_text(r.sem, ".2f"), "LOW" if r.low else ""] for r in rel],
        "low": [names.get(r.domain, r.domain) for r in rel if r.low],
    }
    return chart, table


def _cohort_stability(fit_rows: Any) -> dict[str, Any]:
    """Stability next to the silhouette, and how to read cohorts that are bands rather than natural groups."""
    from .cohorts import MIN_SILHOUETTE, MIN_STABILITY, no_natural_groups_message

    if not hasattr(fit_rows, "stability_ari") or not fit_rows.n_bootstrap:
        return {}
    return {
        "stability": {
            "ari": number_text(fit_rows.stability_ari, ".2f"), "silhouette": number_text(fit_rows.silhouette, ".3f"),
            "n": fit_rows.n_bootstrap, "min_ari": f"{MIN_STABILITY:g}", "min_silhouette": f"{MIN_SILHOUETTE:g}",
        },
        "bands": no_natural_groups_message(fit_rows),
    }


def _item_stats_table(stats: "pd.DataFrame", names: Mapping[str, str], programme: Programme) -> dict[str, Any]:
    """The item statistics as a report table, with each item's note from items.csv, and the flagged items."""
    notes = {i.id: i.note for i in programme.items}
    def kind(r: Any) -> str:  # how the item counts, in one cell (the page is too narrow for three)
        parts = [r.kind] + (["reversed"] if r.reverse == "yes" else []) + (["don't know = lowest"] if r.dont_know == "lowest" else [])
        return ", ".join(parts)

    rows = [
        [r.item, names.get(r.domain, r.domain), kind(r), f"{int(r.n_answered):,}", number_text(r.mean, ".2f"),
         number_text(r.sd, ".2f"), number_text(100 * float(r.share_dont_know), ".1f"), number_text(r.item_rest_r, ".2f"),
         number_text(r.alpha_if_deleted, ".2f"), "FLAG" if r.flag == "yes" else "", "; ".join(x for x in (r.reason, notes.get(r.item, "")) if x)]
        for r in stats.itertuples(index=False)
    ]
    head = ["item", "domain", "counts as", "answered", "mean", "sd", "don't know (%)", "item-rest r", "alpha if deleted", "", "why"]
    flagged = [f"{r.item} ({names.get(r.domain, r.domain)}): {r.reason}" for r in stats.itertuples(index=False) if r.flag == "yes"]
    return {"head": head, "rows": rows, "flagged": flagged}


def render_report_data(data: Mapping[str, Any]) -> str:
    """Draw the charts of :func:`report_data`'s result and fill the report template: the HTML page."""
    charts = draw_charts(data["charts"])
    template = template_environment().get_template(REPORT_TEMPLATE)
    return template.render(
        title=data["title"],
        organisation=data["organisation"],
        programme=data["programme"],
        fingerprint=data["fingerprint"],
        run_info=[tuple(kv) for kv in data["run_info"]],
        sections=SECTIONS + ((("followup", "Follow-up"),) if "followup" in data["tables"] else ()),
        charts=charts,
        tables=data["tables"],
        warnings=data["warnings"],
        alpha_warning=data["alpha_warning"],
        n_people=data["n_people"],
    )


# --------------------------------------------------------------------------- follow-up rounds


def followup_section(effects: "pd.DataFrame", modules: "pd.DataFrame", means: "pd.DataFrame", record: Mapping[str, Any],
                     programme: Programme) -> tuple[dict[str, Any], dict[str, Any]]:
    """The report's follow-up section (tables) and its chart's arguments, from effects.csv, modules.csv and the
    before/after means (:func:`trainmatch.followup.before_after`); aggregated, small cells already suppressed."""

    names = {d.id: _english(d.names, d.id) for d in programme.domains}
    counts = record["counts"]
    comp, fb = record["completions"], record["feedback"]
    summary = [
        ("People in both rounds (paired)", f"{counts['paired']:,}"),
        ("Leavers (only in the previous round; leavers.csv)", f"{counts['leavers']:,}"),
        ("Joiners (only in this survey; planned as usual)", f"{counts['joiners']:,}"),
        ("Completion rows read / used / rejected", f"{comp['rows_read']:,} / {comp['accepted']:,} / {comp['rejected']:,}"),
        ("Feedback rows read / used / rejected", f"{fb['rows_read']:,} / {fb['accepted']:,} / {fb['rejected']:,}"),
        ("Modules demoted for low ratings", ", ".join(record["demoted_modules"]) or "none"),
    ]

    def num(x: Any, spec: str = ".2f") -> str:
        return number_text(x, spec, missing="–")

    def share(x: Any) -> str:
        return "–" if x is None or x != x else f"{100 * float(x):.0f}%"

    everyone = effects[effects["by"] == "all"]
    change_rows = [[names.get(r.domain, r.domain), num(r.n, ",.0f"), num(r.mean_change),
                    f"{num(r.ci_low)} to {num(r.ci_high)}", num(r.srm), share(r.share_reliably_improved), share(r.share_gap_closed)]
                   for r in everyone.itertuples(index=False)]
    compare_rows = [[names.get(r.domain, r.domain), num(r.n_completers, ",.0f"), num(r.n_non_completers, ",.0f"),
                     num(r.completer_difference), f"{num(r.difference_ci_low)} to {num(r.difference_ci_high)}"]
                    for r in everyone.itertuples(index=False)]
    by_format = modules.groupby("format", sort=False)[["planned", "completed"]].sum()
    by_format = by_format[by_format["planned"] > 0]
    format_rows = [[fmt, f"{int(r.planned):,}", f"{int(r.completed):,}", share(r.completed / r.planned)]
                   for fmt, r in by_format.iterrows()]
    rated = modules[modules["n_ratings"] > 0]
    rating_rows = [[r.module, r.format, f"{int(r.n_ratings):,}", num(r.mean_rating), f"{int(r.n_comments):,}", "yes" if r.demoted == "yes" else ""]
                   for r in rated.itertuples(index=False)]
    section = {
        "summary": summary,
        "min_cell": programme.min_cell,
        "change": {"head": ["domain", "paired", "mean change", "95% CI", "SRM", "reliably improved", "gaps closed"], "rows": change_rows},
        "compare": {"head": ["domain", "completers", "non-completers", "difference in mean change", "95% CI"], "rows": compare_rows},
        "formats": {"head": ["format", "planned", "completed", "completion rate"], "rows": format_rows},
        "ratings": {"head": ["module", "format", "ratings", "mean rating", "comments", "demoted"], "rows": rating_rows},
        "chart": False,  # no paired group large enough to show
    }
    charts: dict[str, Any] = {}
    if len(means):
        labels = [f"{names.get(d, d)} · {c}" for d, c in zip(means["domain"], means["cohort"])]
        charts["followup_change"] = {"labels": labels, "before": [float(x) for x in means["before"]],
                                     "after": [float(x) for x in means["after"]],
                                     "lo": float(programme.scale_min), "hi": float(programme.scale_max)}
        section["chart"] = True
    return section, charts


def sessions_section(sessions: "pd.DataFrame", steps: "pd.DataFrame", groups: "pd.DataFrame | None",
                     programme: Programme) -> dict[str, Any]:
    """The sessions section: headline figures, sessions per site and week (trainer load), the unscheduled
    sessions with their reasons and the groups without a support person. Group and session ids only."""
    import numpy as np
    import pandas as pd

    from .columns import codes

    # by codes (a format and a session per step, no text per step): -1, no format or no session, picks the last
    group_formats = {f.id for f in programme.formats if f.group}
    fmt, formats = codes(steps["format"])
    in_group = np.asarray([f in group_formats for f in formats] + [False], dtype=bool)[fmt]
    at = (codes(steps["session_id"], sessions["session_id"].astype(str).tolist())[0] if "session_id" in steps.columns
          else np.full(len(steps), -1, dtype=np.int64))
    attendees = np.r_[sessions["attendees"].to_numpy(dtype=np.int64), 0][at[in_group]]
    viable = float((attendees >= programme.min_attendees).mean()) if len(attendees) else 1.0
    scheduled = sessions["status"].astype(str) == "scheduled"
    no_support = groups[groups["support_1"].astype(str) == ""] if groups is not None and "support_1" in groups else None
    out: dict[str, Any] = {
        "summary": [
            ("Group sessions", f"{len(sessions):,}"),
            ("Scheduled", f"{int(scheduled.sum()):,}"),
            ("Unscheduled (see the reasons below)", f"{int((~scheduled).sum()):,}"),
            (f"Group-format steps in sessions of at least {programme.min_attendees}", f"{viable:.1%}"),
            ("Median attendees per session", f"{float(sessions['attendees'].median()) if len(sessions) else 0:g}"),
            ("Groups without a support person", f"{len(no_support) if no_support is not None else 0:,}"),
        ],
    }
    dated = sessions[scheduled]
    if len(dated):
        day = pd.to_datetime(dated["start"].str.slice(0, 10))
        week = ((day - day.min()).dt.days // 7 + 1).to_numpy()
        load = pd.crosstab(dated["site"].astype(str).to_numpy(), week)
        out["load"] = {"head": ["site"] + [f"week {w}" for w in load.columns],
                       "rows": [[site, *(f"{int(v):,}" for v in row)] for site, row in zip(load.index, load.to_numpy())]}
    late = sessions[~scheduled & (sessions["start"].astype(str) == "")] if "start" in sessions else sessions.iloc[:0]
    if len(late) and len(dated):
        shown = late.head(30)
        out["unscheduled"] = {"head": ["session", "group", "site", "module", "reason"],
                              "rows": shown[["session_id", "group", "site", "module", "reason"]].astype(str).values.tolist(),
                              "more": max(len(late) - 30, 0)}
    if no_support is not None and len(no_support):
        shown = no_support.head(30)
        out["no_support"] = {"head": ["group", "site", "main domains"],
                             "rows": shown[["group", "site", "main_domains"]].astype(str).values.tolist(),
                             "more": max(len(no_support) - 30, 0)}
    return out
