"""The HR report: sections, charts, escaping, reproducibility."""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from trainmatch.programme import Programme
from trainmatch.report import SECTIONS, gap_counts, hours_by_objective, reason_kind, render_report
from trainmatch.scoring import Reliability


@pytest.fixture(scope="module")
def programme(default_programme: Programme) -> Programme:
    return default_programme


def make_inputs(programme: Programme, n: int = 400, seed: int = 0) -> dict:
    """Every input of the report, built to the contracts in docs/data-contracts.md and the report's docstring."""
    rng = np.random.default_rng(seed)
    sites = np.array(["Keskussairaala", "Terveysasema Itä", "Vårdcentralen Strand", "Kotihoito Etelä"], dtype=object)
    cols: dict[str, object] = {
        "person_id": np.char.zfill(np.arange(1, n + 1).astype(str), 6).astype(object),
        "row": np.arange(1, n + 1, dtype=np.int64) + np.arange(n) // 20,  # leaves gaps for rejected rows
        "role": np.array([r.id for r in programme.roles], dtype=object)[rng.integers(0, len(programme.roles), n)],
        "site": sites[rng.integers(0, len(sites), n)],
        "language": np.array(["fi", "sv", "en"], dtype=object)[rng.integers(0, 3, n)],
        "hours": rng.choice([4.0, 8.0, 12.0, np.nan], n),
        "formats": np.full(n, "", dtype=object),
    }
    for task in programme.tasks:
        cols[f"task_{task.id}"] = rng.random(n) < 0.3
    for d in programme.domain_ids:
        missing = rng.random(n) < 0.03
        level = rng.integers(1, 5, n)
        req = rng.integers(0, 5, n)
        cols[f"score_{d}"] = np.where(missing, np.nan, level + 0.3)
        cols[f"answered_{d}"] = np.where(missing, 1, 4).astype(np.int8)
        cols[f"missing_{d}"] = missing
        lv = pd.array(level, dtype="Int8")
        lv[missing] = pd.NA
        cols[f"level_{d}"] = lv
        cols[f"required_{d}"] = req.astype(np.int8)
        gap = pd.array((req - level).astype(np.int8), dtype="Int8")
        gap[missing] = pd.NA
        cols[f"gap_{d}"] = gap
    cohort = rng.integers(1, 5, n)
    cols["cohort"] = np.char.add("C", cohort.astype(str)).astype(object)
    cols["group"] = np.array([f"C{c}-G{g:02d}" for c, g in zip(cohort, rng.integers(1, 4, n))], dtype=object)
    people = pd.DataFrame(cols)

    fmt_ids = list(programme.format_ids)
    group_fmts = {f.id for f in programme.formats if f.group}
    step_rows, deferred_rows = [], []
    for pid, grp in zip(people["person_id"], people["group"]):
        for s in range(1, int(rng.integers(0, 5)) + 1):
            d = programme.domain_ids[int(rng.integers(len(programme.domain_ids)))]
            f = fmt_ids[int(rng.integers(len(fmt_ids)))]
            objective = f"{d}.advanced"
            step_rows.append((pid, s, objective, f"{objective}.{f}", f"Title {objective}", f, float(rng.choice([0.5, 1.5, 3.0])), grp if f in group_fmts else "", f"rule R01: {d} gap", d, 2, 3))
        if rng.random() < 0.2:
            deferred_rows.append((pid, "security.highly_specialised", "security.highly_specialised.elearning", "Deferred", 4.0, "does not fit the time budget"))
    steps = pd.DataFrame(step_rows, columns=["person_id", "step", "objective", "module", "title", "format", "hours", "group", "reason", "domain", "level", "required"])
    deferred = pd.DataFrame(deferred_rows, columns=["person_id", "objective", "module", "title", "hours", "reason"])
    people["planned_hours"] = people["person_id"].map(steps.groupby("person_id")["hours"].sum()).fillna(0.0)
    people["deferred_hours"] = people["person_id"].map(deferred.groupby("person_id")["hours"].sum()).fillna(0.0)

    sizes = people["cohort"].value_counts().sort_index()
    cohorts = pd.DataFrame({"cohort": sizes.index.astype(str), "size": sizes.to_numpy(), "share": sizes.to_numpy() / n})
    for j, d in enumerate(programme.domain_ids):
        cohorts[f"mean_{d}"] = 1.5 + (np.arange(len(cohorts)) + j) % 4 * 0.8
    cohorts["description"] = ["below the average in all domains", "above the average in ICT basics; below the average in remote care", "close to the average in all domains", "above the average in all domains"]
    g = people.groupby("group").agg(cohort=("cohort", "first"), site=("site", "first"), members=("person_id", "size")).reset_index()
    g["modules"] = "ehr.advanced.workshop;remote_care.advanced.simulation"
    fit_rows = pd.DataFrame({"k": [2, 3, 4, 5, 6], "silhouette": [0.21, 0.27, 0.31, 0.30, 0.24], "smallest_share": [0.4, 0.2, 0.15, 0.1, 0.05]})
    fit_rows["chosen"] = fit_rows["k"] == 4
    rejects = pd.DataFrame(
        {
            "row": [21, 21, 42, 63, 84],
            "line": [22, 22, 43, 64, 85],
            "person_id": ["000021", "000021", "", "000063", "000084"],
            "column": ["q1", "hours_available", "person_id", "role", "q3"],
            "value": ["7", "lots", "", "astronaut", "9"],
            "reason": [
                "Answer out of range. Allowed: 1–5 or a scale label.",
                "Not a number of hours. Write e.g. 8 or 2,5.",
                "The id is empty. Every row needs an id.",
                "Unknown role. Did you mean 'nurse'?",
                "Answer out of range. Allowed: 1–5 or a scale label.",
            ],
        }
    )
    reliability = [Reliability(d, 4, n - 20, 0.62 if j == 2 else 0.81, j == 2) for j, d in enumerate(programme.domain_ids)]
    return {
        "people": people,
        "steps": steps,
        "deferred": deferred,
        "cohorts": cohorts,
        "groups": g,
        "fit_rows": fit_rows,
        "warnings": ["The best k is at the edge of the range 2–6; try a wider range."],
        "rejects": rejects,
        "reliability": reliability,
    }


@pytest.fixture(scope="module")
def inputs(programme: Programme) -> dict:
    return make_inputs(programme)


def report_of(programme: Programme, inputs: dict, **kw: object) -> str:
    i = dict(inputs)
    return render_report(
        i.pop("people"), i.pop("steps"), i.pop("deferred"), programme, n_read=404, **i, **kw
    )


@pytest.fixture(scope="module")
def html(programme: Programme, inputs: dict) -> str:
    return report_of(programme, inputs, organisation="Hyvinvointialue X", run_info={"Input": "survey.csv", "Seed": "0"})


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.images: list[dict[str, str | None]] = []
        self.external: list[str] = []
        self.sections: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        a = dict(attrs)
        if tag == "img":
            self.images.append(a)
        if tag == "section" and a.get("id"):
            self.sections.append(a["id"] or "")
        for name in ("src", "href"):
            value = a.get(name) or ""
            if value and not value.startswith(("data:", "#")):
                self.external.append(value)


def parse(text: str) -> _Parser:
    p = _Parser()
    p.feed(text)
    return p


def test_every_section_is_present(html: str) -> None:
    p = parse(html)
    assert p.sections == [s for s, _ in SECTIONS]
    for _, title in SECTIONS:
        assert f"<h2>{title}</h2>" in html


def test_one_embedded_chart_per_topic(html: str) -> None:
    p = parse(html)
    ids = re.findall(r'<figure id="chart-([a-z-]+)">', html)
    assert ids == ["cohort-sizes", "cohort-profiles", "fit", "gaps", "hours-by-format", "hours-by-objective", "groups-by-site", "rejects", "reliability"]
    assert len(p.images) == len(ids)
    for img in p.images:
        src = img["src"] or ""
        assert src.startswith("data:image/svg+xml;base64,")
        svg = base64.b64decode(src.split(",", 1)[1]).decode("utf-8")
        assert "<svg" in svg and "<script" not in svg
        assert "<dc:date>" not in svg  # no timestamp
        assert img["alt"]


def test_charts_are_labelled_in_english(html: str, programme: Programme) -> None:
    alts = " ".join(img["alt"] or "" for img in parse(html).images)
    for d in programme.domains:
        assert d.names["en"] in alts
    svgs = [base64.b64decode((img["src"] or "").split(",", 1)[1]).decode() for img in parse(html).images]
    # Text is SVG text (selectable, read by screen readers), laid out for DejaVu Sans with fallbacks of similar widths.
    assert any(re.search(r"<text [^>]*>Cohort profiles: mean domain score</text>", s) for s in svgs)
    assert any("Cronbach" in s for s in svgs)
    families = {f for s in svgs for f in re.findall(r"font-family:([^;}]+)", s)}
    assert families == {"'DejaVu Sans',Verdana,sans-serif"}


def test_headline_counts(html: str, inputs: dict) -> None:
    people, steps, deferred = inputs["people"], inputs["steps"], inputs["deferred"]
    assert re.search(r"<td>Rows read</td><td class=\"num\">404</td>", html)
    assert re.search(rf"<td>Accepted</td><td class=\"num\">{len(people)}</td>", html)
    assert re.search(r"<td>Rejected</td><td class=\"num\">4</td>", html)
    assert f"{people['planned_hours'].sum():,.1f}" in html
    assert f"{people['deferred_hours'].sum():,.1f}" in html
    assert f"{len(steps):,}" in html and f"{len(deferred):,}" in html


def test_fit_table_chosen_k_and_warnings(html: str) -> None:
    assert "Chosen: k = 4." in html
    assert "The best k is at the edge of the range 2–6; try a wider range." in html
    rows = re.findall(r"<tr><td class=\"num\">(\d)</td><td class=\"num\">([\d.]+)</td>.*?<td class=\"num\">(✔?)</td></tr>", html)
    assert [(k, mark) for k, _, mark in rows] == [("2", ""), ("3", ""), ("4", "✔"), ("5", ""), ("6", "")]


def test_rejects_reliability_and_cohort_tables(html: str) -> None:
    assert "Answer out of range" in html and "Unknown role" in html
    assert "LOW" in html and "Low reliability in Remote care and counselling" in html
    assert "above the average in ICT basics; below the average in remote care" in html
    assert "Keskussairaala" in html and "Vårdcentralen Strand" in html


def test_same_inputs_give_identical_bytes(programme: Programme, inputs: dict, html: str) -> None:
    again = report_of(programme, make_inputs(programme), organisation="Hyvinvointialue X", run_info={"Input": "survey.csv", "Seed": "0"})
    assert again.encode() == html.encode()


def test_different_inputs_give_different_charts(programme: Programme, html: str) -> None:
    other = report_of(programme, make_inputs(programme, seed=1), organisation="Hyvinvointialue X", run_info={"Input": "survey.csv", "Seed": "0"})
    assert other != html


def test_self_contained_without_scripts(html: str) -> None:
    p = parse(html)
    assert "script" not in p.tags and "link" not in p.tags and "iframe" not in p.tags
    assert p.external == []


def test_malicious_cells_are_escaped(programme: Programme) -> None:
    evil = "<script>alert(1)</script>"
    i = make_inputs(programme, n=60)
    i["groups"].loc[0, "site"] = evil
    i["rejects"].loc[0, "reason"] = evil
    i["cohorts"].loc[0, "description"] = evil
    i["warnings"] = [evil]
    text = report_of(programme, i, organisation=evil, run_info={evil: evil})
    assert "<script" not in text
    assert "&lt;script&gt;" in text
    for img in parse(text).images:
        svg = base64.b64decode((img["src"] or "").split(",", 1)[1]).decode()
        assert "<script" not in svg


def test_empty_optional_inputs(programme: Programme) -> None:
    i = make_inputs(programme, n=30)
    text = render_report(i["people"], i["steps"].iloc[:0], i["deferred"].iloc[:0], programme)
    for s, _ in SECTIONS:
        assert f'<section id="{s}">' in text
    assert "No cohorts in this run." in text and "No rows were rejected." in text
    assert "Reliability was not computed" in text and "No steps were planned." in text


def test_fit_report_object_is_accepted(programme: Programme, inputs: dict) -> None:
    from trainmatch.cohorts import FitReport, FitRow

    report = FitReport(
        rows=tuple(FitRow(k, s, 100.0 + k, 1.0 - s, 0.1) for k, s in [(3, 0.2), (4, 0.3)]),
        chosen_k=4,
        warnings=("edge of range",),
        n_people=400,
        n_sample=400,
        n_imputed=0,
        tie_tolerance=0.01,
    )
    i = dict(inputs, fit_rows=report, warnings=[])
    text = report_of(programme, i)
    assert "Chosen: k = 4." in text and "edge of range" in text and "Calinski-Harabasz" in text


def test_other_programme(tiny_programme: Programme) -> None:
    i = make_inputs(tiny_programme, n=80)
    text = report_of(tiny_programme, i)
    assert "Remote care" in text and "Tiny test programme" in text
    assert len(parse(text).images) == 9


# --------------------------------------------------------------------------- aggregates


def test_gap_counts_add_up(programme: Programme, inputs: dict) -> None:
    gaps = gap_counts(inputs["people"], programme)
    assert (gaps.sum(axis=1) == len(inputs["people"])).all()
    assert list(gaps.index) == [d.names["en"] for d in programme.domains]


def test_hours_by_objective_totals(inputs: dict) -> None:
    table = hours_by_objective(inputs["steps"], inputs["deferred"])
    assert table["planned_hours"].sum() == pytest.approx(inputs["steps"]["hours"].sum())
    assert table["deferred_hours"].sum() == pytest.approx(inputs["deferred"]["hours"].sum())


def test_reason_kind_groups_duplicates() -> None:
    kinds = reason_kind(pd.Series(["The same id appears in rows 3, 9 and 12. Give each person one id.", "Unknown role. Allowed: x."]))
    assert kinds.tolist() == ["The same id appears in rows …", "Unknown role"]
