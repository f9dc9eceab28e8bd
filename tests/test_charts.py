"""The report's charts as SVG documents: well-formed for any text, every label inside the picture,
every value drawn where it belongs."""

from __future__ import annotations

import base64
import re
import xml.etree.ElementTree as ET

from hypothesis import given, settings
from hypothesis import strategies as st

from trainmatch.charts import WIDTH, draw_charts, text_width

SVG = "{http://www.w3.org/2000/svg}"


def svg_of(name: str, args: dict) -> ET.Element:
    chart = draw_charts({name: args})[name]
    return ET.fromstring(base64.b64decode(chart.src.split(",", 1)[1]).decode("utf-8"))


def texts(root: ET.Element) -> list[tuple[float, str, str]]:
    """(x, anchor, text) of every one-line text."""
    return [(float(t.get("x")), t.get("text-anchor", "start"), t.text or "") for t in root.iter(f"{SVG}text") if t.text]


def assert_inside(root: ET.Element) -> None:
    """Every text, by its measured width, lies inside the chart's width."""
    width = float(root.get("width"))
    assert width == WIDTH
    for t in root.iter(f"{SVG}text"):
        size = 14 if t.get("class") == "t" else 11 if t.get("class") == "s" else 12
        lines = [s.text or "" for s in t.iter(f"{SVG}tspan")] or [t.text or ""]
        x = float(t.get("x"))
        for line in lines:
            w = text_width(line, size)
            lo = {"start": x, "middle": x - w / 2, "end": x - w}[t.get("text-anchor", "start")]
            assert -0.5 <= lo and lo + w <= width + 0.5, (line, lo, lo + w)


labels = st.text(min_size=1, max_size=60)
counts = st.integers(min_value=0, max_value=10**7)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(labels, counts, counts), min_size=1, max_size=30))
def test_ranked_bars_keep_every_text_inside_and_every_bar_in_order(rows) -> None:
    args = {"rows": [{"site": s, "groups": g, "members": m} for s, g, m in rows]}
    root = svg_of("groups_site", args)
    assert_inside(root)
    values = [g for _, g, _ in rows]
    if len(values) > 20:  # the first 19, then "other sites" with the rest summed
        values = values[:19] + [sum(values[19:])]
    bars = sorted((float(r.get("y")), float(r.get("width"))) for r in root.iter(f"{SVG}rect") if r.get("fill") == "#1f4e79")
    drawn = [v for v in values if v]
    assert len(bars) == len(drawn)  # a bar per non-zero value, top to bottom in the rows' order
    if drawn:
        scale = max(w for _, w in bars) / max(drawn)
        for (_, w), v in zip(bars, drawn):
            assert abs(w - v * scale) <= 0.011, (w, v * scale)  # every bar's length in proportion to its value


@settings(max_examples=100, deadline=None)
@given(st.lists(labels, min_size=1, max_size=8, unique=True), st.data())
def test_heatmap_and_stacked_bars_draw_any_text(domains, data) -> None:
    ids = [f"C{i + 1}" for i in range(data.draw(st.integers(1, 6)))]
    means = [[data.draw(st.one_of(st.none(), st.floats(1, 5))) for _ in domains] for _ in ids]
    assert_inside(svg_of("cohort_profiles", {"ids": ids, "domains": domains, "means": means, "lo": 1, "hi": 5}))
    gaps = [[data.draw(st.integers(0, 10**6)) for _ in range(6)] for _ in domains]
    root = svg_of("gaps", {"domains": domains, "counts": gaps})
    assert_inside(root)


def test_values_sit_on_the_axis_where_its_ticks_say() -> None:
    """A bar of 40 on an axis with a tick at 40 ends exactly at that tick."""
    rows = [{"format": "Workshop", "hours": 40, "steps": 4, "group": "group"}, {"format": "Video", "hours": 10, "steps": 9, "group": "self"}]
    root = svg_of("hours_format", {"rows": rows})
    ticks = {t: x for x, _, t in texts(root) if re.fullmatch(r"\d+", t)}
    bars = {r.get("fill"): r for r in root.iter(f"{SVG}rect") if r.get("fill") in ("#1f4e79", "#6a9ed1") and r.get("height") == "14"}
    workshop = bars["#1f4e79"]
    assert abs(float(workshop.get("x")) + float(workshop.get("width")) - ticks["40"]) < 0.02
    assert abs(float(workshop.get("x")) - ticks["0"]) < 0.02
    assert "40 h · 4 steps" in [t for _, _, t in texts(root)]


def test_text_widths_follow_the_font() -> None:
    assert text_width("iiii") < text_width("MMMM")
    assert text_width("Vårdcentralen Strand") == text_width("Vardcentralen Strand")  # accents: the base letter's width
    assert text_width("漢字") > text_width("ab")  # wide characters err wide


def test_dumbbells_show_before_and_after() -> None:
    root = svg_of("followup_change", {"labels": ["ICT basics · C1"], "before": [2.0], "after": [3.5], "lo": 1, "hi": 5})
    circles = [c for c in root.iter(f"{SVG}circle") if c.get("cy") != circles_legend_y(root)]
    ring, dot = sorted(circles, key=lambda c: c.get("fill") != "#fff")
    assert float(ring.get("cx")) < float(dot.get("cx"))  # the score rose: this round's dot right of the previous ring
    assert_inside(root)


def circles_legend_y(root: ET.Element) -> str:
    """The y of the legend's circles (the first circles drawn)."""
    return next(root.iter(f"{SVG}circle")).get("cy")
