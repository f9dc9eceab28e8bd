"""The HR report's charts: small SVG documents written directly from the report's aggregates.

Each chart function takes the small, JSON-ready arguments that
:func:`trainmatch.report.report_data` puts under ``charts`` and returns a
:class:`Chart`: an SVG ``data:`` URI and a text alternative. The charts are
few and simple (labelled bars, dots on a scale, one heatmap), so they are
written as SVG text here rather than drawn by a plotting library: a report
costs milliseconds, the bytes depend only on the arguments, and text stays
text (selectable, read by screen readers).

Layout needs text widths without a font at hand: :func:`text_width` uses
DejaVu Sans's advance widths (Verdana's are close; both are named in the
SVG's style) and errs on the wide side for characters outside them. Any
Unicode text can be drawn: control characters become visible symbols and
everything is XML-escaped.
"""

from __future__ import annotations

import base64
import dataclasses
import math
import re
import textwrap
import unicodedata
from typing import Any, Callable, Mapping, Sequence

TOP = 20  # bars shown in the long charts (objectives, sites, reasons); the rest are summed as "other"
GAP_CATEGORIES = (
    ("not required", "#c9c9c9"),
    ("meets requirement", "#4c9a5b"),
    ("gap 1 level", "#f2c14e"),
    ("gap 2 levels", "#ec8a3a"),
    ("gap 3+ levels", "#c4412e"),
    ("not assessed", "#8a8fa3"),
)

WIDTH = 760  # every chart's width in px; the report scales it down to the page
FONT = 12  # px: labels and ticks
SMALL = 11  # px: texts at the bars, legends, heatmap cells
TITLE = 14  # px, bold
EDGE = 8  # px of white space around each chart
PAD = 4  # px between a bar and its text, a tick and its label
ROW = 22  # px per single-line row of a bar chart
LINE = 1.25  # line height, in font sizes
DARK, LIGHT, ACCENT, WARM = "#1f4e79", "#6a9ed1", "#c4412e", "#e0a800"

_STYLE = (
    "<style>text{font-family:'DejaVu Sans',Verdana,sans-serif;font-size:%dpx;fill:#222}"
    ".t{font-size:%dpx;font-weight:bold}.s{font-size:%dpx}.grid{stroke:#e4e4e4}.axis{stroke:#555}</style>"
) % (FONT, TITLE, SMALL)


@dataclasses.dataclass(frozen=True)
class Chart:
    """One embedded chart: an SVG ``data:`` URI and a text alternative."""

    name: str
    src: str
    alt: str


def number_text(x: Any, spec: str = ",.0f", missing: str = "n/a") -> str:
    """A number as report text (``spec`` a format spec; ``d`` rounds to a whole number), ``missing`` for none."""
    try:
        value = float(x)
    except (TypeError, ValueError):
        return missing
    if math.isnan(value):
        return missing
    return format(int(round(value)), spec) if spec.endswith("d") else format(value, spec)


# --------------------------------------------------------------------------- text


# Advance widths of DejaVu Sans for printable ASCII, in thousandths of an em.
_ASCII = (
    318, 401, 460, 838, 636, 950, 780, 275, 390, 390, 500, 838, 318, 361, 318, 337, 636, 636, 636, 636, 636, 636, 636,
    636, 636, 636, 337, 337, 838, 838, 838, 531, 1000, 684, 686, 698, 770, 632, 575, 775, 752, 295, 295, 656, 557, 863,
    748, 787, 603, 787, 695, 635, 611, 732, 684, 989, 685, 611, 685, 390, 337, 390, 838, 500, 500, 613, 635, 550, 635,
    615, 352, 635, 634, 278, 278, 579, 278, 974, 634, 612, 635, 635, 411, 521, 392, 634, 592, 818, 592, 592, 525, 636,
    337, 636, 838
)


def _advance(char: str) -> float:
    """Advance width of one character in ems: DejaVu Sans's for ASCII, its base letter's for an accented
    letter (ä as a), otherwise one em (1.2 for East Asian wide characters), so unknown text errs wide."""
    code = ord(char)
    if 32 <= code < 127:
        return _ASCII[code - 32] / 1000
    base = unicodedata.normalize("NFD", char)[0]
    if base != char and 32 <= ord(base) < 127:
        return _ASCII[ord(base) - 32] / 1000
    if unicodedata.combining(char):
        return 0.0
    return 1.2 if unicodedata.east_asian_width(char) in ("W", "F") else 1.0


def text_width(text: str, size: float = FONT) -> float:
    """Width in px of the widest line of ``text`` at ``size`` px (kerning ignored, 3% added)."""
    return max(sum(_advance(c) for c in line) for line in str(text).split("\n")) * size * 1.03


def _fit(text: str, width: float, size: float = FONT) -> str:
    """``text`` cut with an ellipsis to fit ``width`` px at ``size``."""
    if text_width(text, size) <= width:
        return text
    while text and text_width(text + "…", size) > width:
        text = text[:-1]
    return text + "…"


def _wrap(label: str, width: int = 22) -> str:
    return "\n".join(textwrap.wrap(label, width)) or label


def _cut(label: str, width: int = 48) -> str:
    return label if len(label) <= width else label[: width - 1] + "…"


# What an SVG (XML 1.0) cannot carry or a reader would not see: C0 and C1 controls but the line break,
# DEL, lone surrogates and the non-characters U+FFFE/U+FFFF.
_UNDRAWABLE = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code == 0x09:
        return " "
    return chr(0x2400 + code) if code < 0x20 else "\u2421" if code == 0x7F else "\ufffd"  # control pictures: ESC → ␛


def _chart_text(value: Any) -> Any:
    """``value`` (a chart's arguments) with every text drawable: control characters shown as their symbol
    (ESC as ␛, a tab as a space), lone surrogates as �. Numbers and structure unchanged."""
    if isinstance(value, str):
        return _UNDRAWABLE.sub(_visible, value)
    if isinstance(value, dict):
        return {k: _chart_text(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_chart_text(v) for v in value]
    return value


def _esc(text: Any) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _n(x: float) -> str:
    """A coordinate: two decimals at most, no trailing zeros."""
    return f"{x:.2f}".rstrip("0").rstrip(".")


def _text(x: float, y: float, text: str, *, anchor: str = "start", cls: str = "", fill: str = "") -> str:
    """One SVG text at (x, y) (y is the first line's middle); a multi-line text gets a tspan per line."""
    size = TITLE if cls == "t" else SMALL if cls == "s" else FONT
    lines = str(text).split("\n")
    attrs = f' text-anchor="{anchor}"' if anchor != "start" else ""
    attrs += f' class="{cls}"' if cls else ""
    attrs += f' style="fill:{fill}"' if fill else ""
    first = y - (len(lines) - 1) * size * LINE / 2 + size * 0.35  # baseline of the first line, block centred on y
    if len(lines) == 1:
        return f'<text x="{_n(x)}" y="{_n(first)}"{attrs}>{_esc(text)}</text>'
    spans = "".join(f'<tspan x="{_n(x)}" dy="{_n(0 if i == 0 else size * LINE)}">{_esc(line)}</tspan>' for i, line in enumerate(lines))
    return f'<text x="{_n(x)}" y="{_n(first)}"{attrs}>{spans}</text>'


def _svg(name: str, width: float, height: float, body: Sequence[str]) -> str:
    """The chart as a ``data:`` URI of a standalone SVG document."""
    doc = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{_n(width)}" height="{_n(height)}" '
           f'viewBox="0 0 {_n(width)} {_n(height)}" role="img" data-chart="{name}">{_STYLE}'
           f'<rect width="100%" height="100%" fill="#fff"/>{"".join(body)}</svg>')
    return "data:image/svg+xml;base64," + base64.b64encode(doc.encode("utf-8")).decode("ascii")


# --------------------------------------------------------------------------- scales


def _ticks(lo: float, hi: float, *, integer: bool = False, target: int = 5) -> list[float]:
    """Round tick values covering [lo, hi]: about ``target`` steps of 1, 2, 2.5 or 5 × 10ⁿ (with ``integer``,
    whole steps of 1, 2 or 5 × 10ⁿ)."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        hi = lo + 1
    raw = max((hi - lo) / target, 1.0) if integer else (hi - lo) / target
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in ((1, 2, 5, 10) if integer else (1, 2, 2.5, 5, 10)) if m * power >= raw)
    first, last = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
    return [round(i * step, 10) for i in range(first, last + 1)]


def _tick_text(value: float, step: float) -> str:
    """A tick's value with as many decimals as the step needs (0.25 steps: two)."""
    decimals = next((d for d in range(4) if abs(round(step, d) - step) < 1e-9), 3)
    return f"{value:,.{decimals}f}"


def _legend(entries: Sequence[tuple[str, str, str]], x0: float, y: float) -> tuple[list[str], float]:
    """A legend from (x0, y) on, in as many rows as the width needs: entries (label, colour, kind), kind
    "box", "dash", "dot" or "ring". Returns the SVG elements and the y below the legend."""
    out, x = [], x0
    for label, colour, kind in entries:
        width = 16 + text_width(label, SMALL) + 14
        if x > x0 and x + width - 14 > WIDTH - EDGE:
            x, y = x0, y + SMALL * 1.6
        if kind == "box":
            out.append(f'<rect x="{_n(x)}" y="{_n(y - 5)}" width="10" height="10" fill="{colour}"/>')
        elif kind == "dash":
            out.append(f'<line x1="{_n(x)}" y1="{_n(y)}" x2="{_n(x + 12)}" y2="{_n(y)}" stroke="{colour}" stroke-width="1.5" stroke-dasharray="4 2"/>')
        else:
            fill = colour if kind == "dot" else "#fff"
            out.append(f'<circle cx="{_n(x + 5)}" cy="{_n(y)}" r="4.5" fill="{fill}" stroke="{colour}" stroke-width="1.5"/>')
        out.append(_text(x + 16, y, label, cls="s"))
        x += width
    return out, y + SMALL * 1.4


# --------------------------------------------------------------------------- the two chart shapes


@dataclasses.dataclass(frozen=True)
class Row:
    """One row of a :func:`_rows_chart`: a label on the left and marks on the value axis."""

    label: str
    bars: tuple[tuple[float, float, str], ...] = ()  # (from, to, colour), drawn in order
    text: str = ""  # written after the row's marks
    dots: tuple[tuple[float, str], ...] = ()  # (value, "dot" or "ring"), joined by a line when two
    tip: str = ""  # the row's tooltip (an SVG title)


def _rows_chart(name: str, alt: str, title: str, rows: Sequence[Row], *, xlabel: str, legend: Sequence[tuple[str, str, str]] = (),
                xlim: tuple[float, float] | None = None, vline: tuple[float, str] | None = None, integer: bool = False,
                label_size: float = FONT) -> Chart:
    """Rows of labelled marks on one value axis (bars, stacked bars, dumbbells), top to bottom.

    The value axis runs from ``xlim`` or from round ticks around the values and zero; it is scaled so that
    every row's text fits after its marks. ``vline``: a dashed line at a value, in a colour.
    """
    values = [v for r in rows for b in r.bars for v in b[:2]] + [v for r in rows for v, _ in r.dots]
    finite = [v for v in values if math.isfinite(v)] or [0.0]
    lo, hi = xlim if xlim is not None else (min(0.0, *finite), max(0.0, *finite))
    ticks = [t for t in _ticks(lo, hi, integer=integer) if xlim is None or lo - 1e-9 <= t <= hi + 1e-9]
    if xlim is None:
        lo, hi = min(ticks[0], lo), max(ticks[-1], hi)
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    tick_texts = [_tick_text(t, step) for t in ticks]

    labels = [r.label for r in rows]
    left = EDGE + min(max((text_width(lb, label_size) for lb in labels), default=0.0), WIDTH * 0.45) + PAD + 3
    labels = ["\n".join(_fit(line, left - EDGE - PAD - 3, label_size) for line in lb.split("\n")) for lb in labels]
    right = WIDTH - EDGE - max(text_width(tick_texts[-1], FONT) / 2, 0.0)
    span = hi - lo
    width = right - left
    for r in rows:  # room for each row's text after its furthest mark
        ends = [max(b[:2]) for b in r.bars] + [v for v, _ in r.dots]
        end = max((e for e in ends if math.isfinite(e)), default=lo)
        if r.text and end > lo:
            width = min(width, (WIDTH - EDGE - PAD - text_width(r.text, SMALL) - left) * span / (end - lo))
    width = max(width, 120.0)

    def x(v: float) -> float:
        return left + (min(max(v, lo), hi) - lo) / span * width

    heights = [max(ROW, FONT * LINE * (lb.count("\n") + 1) + 8) for lb in labels]
    body = [_text(EDGE, EDGE + TITLE * 0.6, title, cls="t")]
    top = EDGE + TITLE * 1.6
    if legend:
        keys, top = _legend(legend, left, top + SMALL * 0.6)
        body += keys
    bottom = top + sum(heights)
    for t in ticks:
        body.append(f'<line class="grid" x1="{_n(x(t))}" y1="{_n(top)}" x2="{_n(x(t))}" y2="{_n(bottom)}"/>')
    y = top
    for r, lb, h in zip(rows, labels, heights):
        mid = y + h / 2
        marks = []
        for a, b, colour in r.bars:
            if math.isfinite(a) and math.isfinite(b) and b != a:
                x0, x1 = sorted((x(a), x(b)))
                marks.append(f'<rect x="{_n(x0)}" y="{_n(mid - 7)}" width="{_n(x1 - x0)}" height="14" fill="{colour}"/>')
        dots = [(v, kind) for v, kind in r.dots if math.isfinite(v)]
        if len(dots) == 2:
            marks.append(f'<line x1="{_n(x(dots[0][0]))}" y1="{_n(mid)}" x2="{_n(x(dots[1][0]))}" y2="{_n(mid)}" stroke="#9db3cc" stroke-width="2.5"/>')
        for v, kind in dots:
            marks.append(f'<circle cx="{_n(x(v))}" cy="{_n(mid)}" r="4.5" fill="{DARK if kind == "dot" else "#fff"}" stroke="{DARK}" stroke-width="1.5"/>')
        ends = [max(x(a), x(b)) for a, b, _ in r.bars if math.isfinite(a) and math.isfinite(b)] + [x(v) for v, _ in dots]
        if r.text:
            marks.append(_text(max(ends, default=x(lo)) + PAD, mid, r.text, cls="s"))
        tip = f"<title>{_esc(r.tip)}</title>" if r.tip else ""
        body.append(f"<g>{tip}{_text(left - PAD - 3, mid, lb, anchor='end', cls='s' if label_size == SMALL else '')}{''.join(marks)}</g>")
        y += h
    if vline is not None:
        value, colour = vline
        body.append(f'<line x1="{_n(x(value))}" y1="{_n(top - 2)}" x2="{_n(x(value))}" y2="{_n(bottom)}" stroke="{colour}" '
                    'stroke-width="1.5" stroke-dasharray="4 2"/>')
    body.append(f'<line class="axis" x1="{_n(left)}" y1="{_n(top)}" x2="{_n(left)}" y2="{_n(bottom)}"/>')
    body.append(f'<line class="axis" x1="{_n(left)}" y1="{_n(bottom)}" x2="{_n(left + width)}" y2="{_n(bottom)}"/>')
    for t, label in zip(ticks, tick_texts):
        body.append(f'<line class="axis" x1="{_n(x(t))}" y1="{_n(bottom)}" x2="{_n(x(t))}" y2="{_n(bottom + 4)}"/>')
        body.append(_text(x(t), bottom + 4 + FONT * 0.8, label, anchor="middle"))
    body.append(_text(left + width / 2, bottom + 4 + FONT * 2.3, xlabel, anchor="middle"))
    return Chart(name, _svg(name, WIDTH, bottom + 4 + FONT * 3 + EDGE, body), alt)


# ColorBrewer's RdYlGn (11 classes): low scores red, high green.
_RDYLGN = ("#a50026", "#d73027", "#f46d43", "#fdae61", "#fee08b", "#ffffbf", "#d9ef8b", "#a6d96a", "#66bd63", "#1a9850", "#006837")


def _colour(t: float) -> str:
    """The colour at ``t`` (0–1) of :data:`_RDYLGN`, interpolated."""
    t = min(max(t, 0.0), 1.0) * (len(_RDYLGN) - 1)
    i = min(int(t), len(_RDYLGN) - 2)
    a, b = (tuple(int(c[k : k + 2], 16) for k in (1, 3, 5)) for c in _RDYLGN[i : i + 2])
    f = t - i
    return "#" + "".join(f"{round(p + (q - p) * f):02x}" for p, q in zip(a, b))


def _ink(colour: str) -> str:
    """Text colour readable on ``colour``: white on dark fills."""
    r, g, b = (int(colour[k : k + 2], 16) for k in (1, 3, 5))
    return "#fff" if 0.299 * r + 0.587 * g + 0.114 * b < 110 else "#111"


# --------------------------------------------------------------------------- the charts


def _count(n: float, one: str, many: str | None = None) -> str:
    """``1 group``, ``3 groups``: a count with its noun in the right number."""
    n = int(n)
    return f"{n:,} {one if n == 1 else (many or one + 's')}"


def _top(labels: Sequence[str], values: Sequence[float], n: int = TOP, other: str = "other") -> tuple[list[str], list[float]]:
    """The first ``n`` labels and values, the rest summed into one "other (k)" bar."""
    labels, values = list(labels), list(values)
    if len(labels) <= n:
        return labels, values
    rest = len(labels) - (n - 1)
    return labels[: n - 1] + [f"{other} ({rest})"], values[: n - 1] + [float(sum(values[n - 1 :]))]


def _cohort_size_chart(ids: list[str], sizes: list[float], shares: list[float]) -> Chart:
    rows = [Row(c, ((0.0, float(s), DARK),), f"{int(s):,} · {100 * sh:.1f}%", tip=f"{c}: {int(s):,} people")
            for c, s, sh in zip(ids, sizes, shares)]
    alt = "Cohort sizes: " + ", ".join(f"{c} {int(s):,} people" for c, s in zip(ids, sizes))
    return _rows_chart("cohort-sizes", alt, "Cohort sizes (C1 needs the most support)", rows, xlabel="people", integer=True)


def _heatmap_chart(ids: list[str], domains: list[str], means: list[list[float | None]], lo: float, hi: float) -> Chart:
    """Cohorts × domains, each cell coloured by its mean score (red low, green high) and labelled with it."""
    left = EDGE + max((text_width(c) for c in ids), default=0.0) + 2 * PAD
    cell_w = (WIDTH - EDGE - left) / max(len(domains), 1)
    heads = ["\n".join(_fit(line, cell_w - PAD, SMALL) for line in textwrap.wrap(d, max(4, int(cell_w / (SMALL * 0.6))))[:3]) or d
             for d in domains]
    head_h = max((h.count("\n") + 1 for h in heads), default=1) * SMALL * LINE + PAD
    top = EDGE + TITLE * 1.6
    cell_h = 26
    body = [_text(EDGE, EDGE + TITLE * 0.6, "Cohort profiles: mean domain score", cls="t")]
    for j, h in enumerate(heads):
        body.append(_text(left + (j + 0.5) * cell_w, top + head_h / 2, h, anchor="middle", cls="s"))
    y = top + head_h
    for c, row in zip(ids, means):
        body.append(_text(left - 2 * PAD, y + cell_h / 2, c, anchor="end"))
        for j, (d, v) in enumerate(zip(domains, row)):
            missing = v is None or not math.isfinite(float(v))
            fill = "#eeeeee" if missing else _colour((float(v) - lo) / ((hi - lo) or 1))
            value = "n/a" if missing else f"{float(v):.2f}"
            body.append(f'<g><title>{_esc(f"{c}, {d}: {value}")}</title><rect x="{_n(left + j * cell_w)}" y="{_n(y)}" '
                        f'width="{_n(cell_w - 2)}" height="{cell_h - 2}" fill="{fill}"/>'
                        f'{_text(left + (j + 0.5) * cell_w - 1, y + cell_h / 2 - 1, value, anchor="middle", cls="s", fill=_ink(fill))}</g>')
        y += cell_h
    # The colour scale: a gradient from lo to hi, with its ends labelled.
    y += 2 * PAD + SMALL / 2
    scale_x, scale_w = left + text_width(f"mean score ({lo}–{hi})", SMALL) + 3 * PAD, 200
    stops = "".join(f'<stop offset="{_n(i / (len(_RDYLGN) - 1))}" stop-color="{c}"/>' for i, c in enumerate(_RDYLGN))
    body += [f'<defs><linearGradient id="scale">{stops}</linearGradient></defs>',
             _text(left, y, f"mean score ({lo}–{hi})", cls="s"),
             _text(scale_x - PAD, y, f"{lo:g}", anchor="end", cls="s"),
             f'<rect x="{_n(scale_x)}" y="{_n(y - 5)}" width="{scale_w}" height="10" fill="url(#scale)"/>',
             _text(scale_x + scale_w + PAD, y, f"{hi:g}", cls="s")]
    alt = "Heatmap of mean domain scores by cohort. " + "; ".join(
        f"{c}: " + ", ".join(f"{d} {number_text(v, '.2f')}" for d, v in zip(domains, row)) for c, row in zip(ids, means)
    )
    return Chart("cohort-profiles", _svg("cohort-profiles", WIDTH, y + SMALL / 2 + EDGE, body), alt)


def _gap_chart(domains: list[str], counts: list[list[int]]) -> Chart:
    rows = []
    for d, row in zip(domains, counts):
        edges = [0.0]
        for v in row:
            edges.append(edges[-1] + float(v))
        bars = tuple((a, b, colour) for a, b, (_, colour) in zip(edges, edges[1:], GAP_CATEGORIES))
        rows.append(Row(_wrap(d, 30), bars, tip=f"{d}: " + ", ".join(f"{c} {int(v):,}" for (c, _), v in zip(GAP_CATEGORIES, row))))
    alt = "Stacked bars of people per gap category for each domain. " + "; ".join(
        f"{d}: " + ", ".join(f"{c} {int(v):,}" for (c, _), v in zip(GAP_CATEGORIES, row)) for d, row in zip(domains, counts)
    )
    return _rows_chart("gaps", alt, "Required vs current level, by domain", rows, xlabel="people", integer=True,
                       legend=[(c, colour, "box") for c, colour in GAP_CATEGORIES])


def _format_chart(rows: list[dict[str, Any]]) -> Chart:
    marks = [Row(_wrap(r["format"], 26), ((0.0, float(r["hours"]), DARK if r["group"] == "group" else LIGHT),),
                 f"{float(r['hours']):,.0f} h · {int(r['steps']):,} steps", tip=f"{r['format']} ({r['group']})")
             for r in rows]
    alt = "Planned hours by format: " + ", ".join(f"{r['format']} {float(r['hours']):,.1f} h" for r in rows)
    return _rows_chart("hours-by-format", alt, "Planned hours by format", marks, xlabel="planned hours",
                       legend=[("group formats", DARK, "box"), ("self-paced formats", LIGHT, "box")])


def _objective_chart(rows: list[dict[str, Any]]) -> Chart:
    objectives = [r["objective"] for r in rows]
    labels, planned = _top(objectives, [float(r["planned_hours"]) for r in rows], other="other objectives")
    _, deferred = _top(objectives, [float(r["deferred_hours"]) for r in rows], other="other objectives")
    marks = [Row(_cut(lb, 40), ((0.0, p, DARK), (p, p + d, WARM)), tip=f"{lb}: {p:,.1f} h planned, {d:,.1f} h deferred")
             for lb, p, d in zip(labels, planned, deferred)]
    alt = "Hours by learning objective (planned + deferred): " + ", ".join(
        f"{lb} {p:,.1f} + {d:,.1f} h" for lb, p, d in zip(labels, planned, deferred)
    )
    return _rows_chart("hours-by-objective", alt, "Planned and deferred hours by learning objective", marks, xlabel="hours",
                       legend=[("planned", DARK, "box"), ("deferred", WARM, "box")], label_size=SMALL)


def _site_chart(rows: list[dict[str, Any]]) -> Chart:
    sites = [r["site"] for r in rows]
    labels, counts = _top(sites, [float(r["groups"]) for r in rows], other="other sites")
    _, members = _top(sites, [float(r["members"]) for r in rows], other="other sites")
    marks = [Row(_cut(s, 40), ((0.0, c, DARK),), f"{_count(c, 'group')} · {_count(m, 'person', 'people')}", tip=s)
             for s, c, m in zip(labels, counts, members)]
    alt = "Training groups by site: " + ", ".join(f"{s} {_count(c, 'group')}" for s, c in zip(labels, counts))
    return _rows_chart("groups-by-site", alt, "Training groups by site", marks, xlabel="training groups", integer=True)


def _rejects_chart(rows: list[dict[str, Any]]) -> Chart:
    labels, counts = _top([r["reason"] for r in rows], [float(r["rows"]) for r in rows], other="other reasons")
    marks = [Row(_wrap(_cut(r, 90), 45), ((0.0, n, ACCENT),), f"{int(n):,}", tip=r) for r, n in zip(labels, counts)]
    alt = "Rejected rows by reason: " + "; ".join(f"{r}: {int(n):,}" for r, n in zip(labels, counts))
    return _rows_chart("rejects", alt, "Rejected rows by reason", marks, integer=True,
                       xlabel="rows (a row with several problems counts under each)")


def _reliability_chart(domains: list[str], alphas: list[float | None], low: list[bool], warn: float) -> Chart:
    values = [float("nan") if a is None else float(a) for a in alphas]
    marks = [Row(_wrap(d, 26), ((0.0, a, ACCENT if is_low else "#4c9a5b"),) if math.isfinite(a) else (),
                 number_text(a, ".2f"), tip=f"{d}: alpha {number_text(a, '.2f')}")
             for d, a, is_low in zip(domains, values, low)]
    finite = [a for a in values if math.isfinite(a)]
    lo = min(0.0, min(finite) - 0.05) if finite else 0.0
    alt = "Cronbach's alpha by domain: " + ", ".join(f"{d} {number_text(a, '.2f')}" for d, a in zip(domains, values))
    return _rows_chart("reliability", alt, "Reliability: Cronbach's alpha by domain", marks, xlim=(lo, 1.0),
                       xlabel="Cronbach's alpha (complete responses)", vline=(warn, "#333333"),
                       legend=[("alpha at or above the warning level", "#4c9a5b", "box"), ("below", ACCENT, "box"),
                               (f"warning below {warn:g}", "#333333", "dash")])


def _fit_chart(ks: list[int], sil: list[float | None], chosen: int | None) -> Chart:
    values = [float("nan") if v is None else float(v) for v in sil]
    marks = [Row(f"k = {k}" + (" (chosen)" if k == chosen else ""), ((0.0, s, ACCENT if k == chosen else DARK),) if math.isfinite(s) else (),
                 number_text(s, ".3f"), tip=f"k = {k}: silhouette {number_text(s, '.3f')}")
             for k, s in zip(ks, values)]
    alt = "Silhouette by k: " + ", ".join(f"k={k} {number_text(s, '.3f')}" for k, s in zip(ks, values)) + (f". Chosen k = {chosen}." if chosen is not None else "")
    return _rows_chart("fit", alt, "Cohort fit: silhouette by number of cohorts", marks, xlabel="mean silhouette (higher is better)")


def _followup_chart(labels: list[str], before: list[float], after: list[float], lo: float, hi: float) -> Chart:
    """A dumbbell per domain and cohort: the mean score before (hollow) and after (filled) training."""
    marks = [Row(_wrap(x, 30), dots=((float(b), "ring"), (float(a), "dot")), tip=f"{x}: {b:.2f} to {a:.2f}")
             for x, b, a in zip(labels, before, after)]
    alt = "Mean score before and after: " + "; ".join(f"{x} {b:.2f} to {a:.2f}" for x, b, a in zip(labels, before, after))
    return _rows_chart("followup-change", alt, "Mean score before and after, by domain and cohort", marks, xlim=(lo, hi),
                       xlabel="mean domain score", legend=[("previous round", DARK, "ring"), ("this round", DARK, "dot")])


_DRAW: dict[str, Callable[..., Chart]] = {
    "cohort_sizes": _cohort_size_chart,
    "cohort_profiles": _heatmap_chart,
    "fit": _fit_chart,
    "gaps": _gap_chart,
    "hours_format": _format_chart,
    "hours_objective": _objective_chart,
    "groups_site": _site_chart,
    "rejects": _rejects_chart,
    "reliability": _reliability_chart,
    "followup_change": _followup_chart,
}


def draw_charts(charts: Mapping[str, Mapping[str, Any]]) -> dict[str, Chart]:
    """Draw charts given as ``{name: arguments}`` (the ``charts`` of :func:`report_data`)."""
    return {name: _DRAW[name](**_chart_text(dict(args))) for name, args in charts.items()}
