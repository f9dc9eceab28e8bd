"""The HR report's charts: SVG drawn with matplotlib from the report's aggregates.

Each chart function takes the small, JSON-ready arguments that
:func:`trainmatch.report.report_data` puts under ``charts`` and returns a
:class:`Chart`: an SVG ``data:`` URI and a text alternative. matplotlib's
object API is used (no pyplot, no GUI backend), and its settings are changed
only inside :func:`_chart_style`, which restores them. Output is
byte-for-byte reproducible: the SVG hash salt is fixed per chart and the date
metadata dropped. Any Unicode text can be measured and drawn: a character the
font lacks is measured as one em (the browser draws it from a font that has
it), and control characters become visible symbols.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import functools
import io
import math
import re
import textwrap
import unicodedata
from typing import Any, Callable, Iterator, Mapping, Sequence

TOP = 20  # bars shown in the long charts (objectives, sites, reasons); the rest are summed as "other"
GAP_CATEGORIES = (
    ("not required", "#c9c9c9"),
    ("meets requirement", "#4c9a5b"),
    ("gap 1 level", "#f2c14e"),
    ("gap 2 levels", "#ec8a3a"),
    ("gap 3+ levels", "#c4412e"),
    ("not assessed", "#8a8fa3"),
)



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



def _wrap(label: str, width: int = 22) -> str:
    return "\n".join(textwrap.wrap(label, width)) or label


def _cut(label: str, width: int = 48) -> str:
    return label if len(label) <= width else label[: width - 1] + "…"


def _top(labels: Sequence[str], values: Sequence[float], n: int = TOP, other: str = "other") -> tuple[list[str], list[float]]:
    """The first ``n`` labels and values, the rest summed into one "other (k)" bar."""
    labels, values = list(labels), list(values)
    if len(labels) <= n:
        return labels, values
    rest = len(labels) - (n - 1)
    return labels[: n - 1] + [f"{other} ({rest})"], values[: n - 1] + [float(sum(values[n - 1 :]))]


def _svg(fig: Any) -> str:
    """The figure as a reproducible SVG ``data:`` URI."""
    buf = io.StringIO()  # text, not bytes: matplotlib writes to it directly, with no encoder wrapped around it
    fig.savefig(buf, format="svg", metadata={"Date": None})
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue().encode("utf-8")).decode("ascii")


# Fixed, reproducible chart settings: applied on top of matplotlib's defaults so a user's
# matplotlibrc or notebook style cannot change the bytes.
_RC = {
    # Text as SVG text, not shapes: selectable, searchable, read by screen readers, under a third of the
    # bytes and a third less drawing time. Laid out with DejaVu Sans; a browser without it uses its sans-serif.
    "svg.fonttype": "none",
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],
    "font.size": 9,
    # Labels are data (site, domain and format names): a pair of '$' in them is text, not mathtext to parse.
    "text.parse_math": False,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "axes.spines.top": False,
    "axes.spines.right": False,
}
_STYLE_DEPTH = 0  # > 0 while inside _chart_style(): the settings are already in place
EDGE = 5.0  # points of white space kept around each chart
TICK = 7.0  # points between an axis and its tick labels (tick length 3.5 + pad 3.5)
LABEL = 4.0 + 9 * 1.25  # points taken by an axis label (labelpad + one line of 9 pt text)
TITLE = 6.0 + 11 * 1.3  # points taken by the title (pad + one line of bold 11 pt text)


@contextlib.contextmanager
def _chart_style() -> Iterator[None]:
    """matplotlib's defaults plus :data:`_RC`, set once for all the charts of a report and undone after."""
    global _STYLE_DEPTH
    if _STYLE_DEPTH:
        yield
        return
    import matplotlib

    with matplotlib.rc_context():
        matplotlib.rcdefaults()
        matplotlib.rcParams.update(_RC)
        _STYLE_DEPTH += 1
        try:
            yield
        finally:
            _STYLE_DEPTH -= 1


@functools.lru_cache(maxsize=None)
def _advance(char: str) -> float:
    """Advance width of one character of DejaVu Sans, in points per point of font size.

    Never fails: a character the font lacks (CJK, full-width forms, most emoji)
    counts one em (1.2 for East Asian wide characters: a CJK glyph is one em,
    an emoji a little more), so the margins err on the wide side. A browser
    shows it in a font that has it (the SVG keeps text as text).
    """
    from matplotlib import ft2font
    from matplotlib.font_manager import FontProperties, findfont, get_font

    font = get_font(findfont(FontProperties(family="DejaVu Sans")))
    if font.get_char_index(ord(char)) == 0:
        return 1.2 if unicodedata.east_asian_width(char) in ("W", "F") else 1.0
    no_hinting = ft2font.LoadFlags.NO_HINTING if hasattr(ft2font, "LoadFlags") else ft2font.LOAD_NO_HINTING  # matplotlib < 3.10
    font.set_size(100, 72)
    return font.load_char(ord(char), flags=no_hinting).linearHoriAdvance / 65536 / 100


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


def _text_size(text: str, size: float) -> tuple[float, float]:
    """Width and height in points of (possibly multi-line) text, from the font's advance widths (no drawing).

    Kerning is ignored and 3% added, so the width errs on the wide side.
    """
    lines = str(text).split("\n")
    width = max(sum(_advance(c) for c in line) for line in lines) * size * 1.03
    return width, size * (1.2 * len(lines) + 0.1)


def _title(ax: Any, text: str) -> None:
    """The axes title at a fixed place above the axes (skips matplotlib's costly automatic placement)."""
    ax.set_title(text, y=1.0)


def _tick_labels(axis: Any) -> list[str]:
    """The major tick labels an axis will draw (those within its limits), without drawing it."""
    locs = [float(v) for v in axis.get_majorticklocs()]
    labels = [str(t) for t in axis.get_major_formatter().format_ticks(locs)]
    lo, hi = sorted(float(v) for v in axis.get_view_interval())
    tol = (hi - lo) * 1e-6
    return [t for v, t in zip(locs, labels) if lo - tol <= v <= hi + tol] or labels


def _tick_extent(axis: Any, size: float = 9) -> tuple[float, float, float]:
    """(widest label, tallest label, half the width of the last label) in points."""
    labels = _tick_labels(axis)
    sizes = [_text_size(t, size) for t in labels] or [(0.0, 0.0)]
    return max(w for w, _ in sizes), max(h for _, h in sizes), sizes[-1][0] / 2


def _place(
    fig: Any,
    ax: Any,
    *,
    xsize: float = 9,
    ysize: float = 9,
    ylabel: bool = False,
    bottom: float = 0.0,
    right: float = 0.0,
) -> None:
    """Explicit margins (in place of a layout engine) from what the chart draws (an x label always).

    ``bottom``/``right``: extra points reserved below the x label / right of the
    axes (a legend, a colour bar). Measured twice: the tick labels may change
    once the axes have their final size.
    """
    w, h = (float(v) * 72 for v in fig.get_size_inches())
    for _ in range(2):
        yw, _yh, _ = _tick_extent(ax.yaxis, ysize)
        _xw, xh, xhalf = _tick_extent(ax.xaxis, xsize)
        left = EDGE + (LABEL if ylabel else 0.0) + TICK + yw
        low = EDGE + bottom + LABEL + TICK + xh
        fig.subplots_adjust(
            left=min(left / w, 0.6),
            right=1 - max(EDGE + right, EDGE + xhalf) / w,
            bottom=min(low / h, 0.6),
            top=1 - (EDGE + TITLE) / h,
        )


def _chart(name: str, alt: str, draw: Callable[[Any], None], size: tuple[float, float]) -> Chart:
    """Draw one chart with fixed, reproducible settings and embed it.

    Uses matplotlib's object API with a headless Agg canvas: no pyplot, no GUI
    backend. Settings are scoped to :func:`_chart_style` (entered once per
    report; entering it here again costs nothing), which restores them after. ``draw`` places the axes itself (:func:`_place`):
    no layout engine, which would lay out all the text several times over.
    """
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    import warnings

    with _chart_style(), warnings.catch_warnings():
        # A glyph the font lacks is measured by _advance and drawn by the browser: no warning (it would
        # print the label, site names included, on stderr).
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from font", category=UserWarning)
        # Fixed ids → identical bytes; distinct per chart. Set in place (the style context restores it):
        # an rc_context per chart would copy and re-validate every setting.
        matplotlib.rcParams["svg.hashsalt"] = f"trainmatch-{name}"
        fig = Figure(figsize=size)
        FigureCanvasAgg(fig)
        draw(fig)
        return Chart(name, _svg(fig), alt)


def _count(n: float, one: str, many: str | None = None) -> str:
    """``1 group``, ``3 groups``: a count with its noun in the right number."""
    n = int(n)
    return f"{n:,} {one if n == 1 else (many or one + 's')}"


def _bar_labels(ax: Any, bars: Any, texts: Sequence[str]) -> None:
    ax.bar_label(bars, labels=list(texts), padding=2, fontsize=8)


def _integer_axis(axis: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


# --------------------------------------------------------------------------- the charts


def _cohort_size_chart(ids: list[str], sizes: list[float], shares: list[float]) -> Chart:
    def draw(fig: Any) -> None:
        ax = fig.add_subplot()
        bars = ax.bar(ids, sizes, color="#1f4e79")
        _bar_labels(ax, bars, [f"{int(s):,}\n{100 * sh:.1f}%" for s, sh in zip(sizes, shares)])
        _title(ax, "Cohort sizes")
        ax.set_xlabel("cohort (C1 needs the most support)")
        ax.set_ylabel("people")
        ax.margins(y=0.18)
        _integer_axis(ax.yaxis)
        _place(fig, ax, ylabel=True)

    alt = "Cohort sizes: " + ", ".join(f"{c} {int(s):,} people" for c, s in zip(ids, sizes))
    return _chart("cohort-sizes", alt, draw, (7.0, 3.2))


def _heatmap_chart(ids: list[str], domains: list[str], means: list[list[float | None]], lo: float, hi: float) -> Chart:
    import numpy as np

    names = [_wrap(d, 18) for d in domains]
    means = np.array(means, dtype=float)  # None (no scores) → NaN

    def draw(fig: Any) -> None:
        ax = fig.add_subplot()
        masked = np.ma.masked_invalid(means)
        mesh = ax.pcolormesh(masked, cmap="RdYlGn", vmin=lo, vmax=hi, edgecolors="white", linewidth=1)
        for i in range(means.shape[0]):
            for j in range(means.shape[1]):
                v = means[i, j]
                ax.text(j + 0.5, i + 0.5, "n/a" if np.isnan(v) else f"{v:.2f}", ha="center", va="center", fontsize=8, color="#111111")
        ax.set_xticks(np.arange(len(names)) + 0.5, names, fontsize=8)
        ax.set_yticks(np.arange(len(ids)) + 0.5, ids)
        ax.invert_yaxis()
        _title(ax, "Cohort profiles: mean domain score")
        ax.set_xlabel("domain")
        ax.set_ylabel("cohort")
        # The colour bar in its own axes right of the heatmap: bar, tick labels, label.
        bar_w, bar_gap = 10.0, 14.0
        tick_w = max(_text_size(f"{v:.1f}", 9)[0] for v in (lo, hi, (lo + hi) / 2))
        _place(fig, ax, xsize=8, ylabel=True, right=bar_gap + bar_w + TICK + tick_w + LABEL)
        w, h = (float(v) * 72 for v in fig.get_size_inches())
        box = ax.get_position()
        cax = fig.add_axes((box.x1 + bar_gap / w, box.y0 + 0.05 * box.height, bar_w / w, 0.9 * box.height))
        cbar = fig.colorbar(mesh, cax=cax)
        cbar.set_label(f"mean score ({lo}–{hi})")

    alt = "Heatmap of mean domain scores by cohort. " + "; ".join(
        f"{c}: " + ", ".join(f"{d} {number_text(v, '.2f')}" for d, v in zip(domains, row)) for c, row in zip(ids, means)
    )
    return _chart("cohort-profiles", alt, draw, (8.5, 1.6 + 0.45 * max(len(ids), 2)))


def _gap_chart(domains: list[str], counts: list[list[int]]) -> Chart:
    import numpy as np

    gaps = np.array(counts, dtype=float).reshape(len(domains), len(GAP_CATEGORIES))  # domains × gap categories

    def draw(fig: Any) -> None:
        ax = fig.add_subplot()
        y = np.arange(len(domains))
        left = np.zeros(len(domains))
        for j, (cat, color) in enumerate(GAP_CATEGORIES):
            vals = gaps[:, j]
            ax.barh(y, vals, left=left, color=color, label=cat, edgecolor="white", linewidth=0.5)
            left += vals
        ax.set_yticks(y, [_wrap(n, 30) for n in domains])
        ax.invert_yaxis()
        _title(ax, "Required vs current level, by domain")
        ax.set_xlabel("people")
        rows = math.ceil(len(GAP_CATEGORIES) / 3)
        legend_h = 8 * (1.25 * rows + 0.5 * (rows - 1) + 0.8)  # rows of 8 pt text, label spacing, border pad
        _place(fig, ax, bottom=legend_h + 4)
        box = ax.get_position()
        h = float(fig.get_size_inches()[1]) * 72
        ax.legend(ncols=3, fontsize=8, loc="lower center", bbox_to_anchor=((box.x0 + box.x1) / 2, EDGE / h), bbox_transform=fig.transFigure, frameon=False)

    alt = "Stacked bars of people per gap category for each domain. " + "; ".join(
        f"{d}: " + ", ".join(f"{c} {int(v):,}" for (c, _), v in zip(GAP_CATEGORIES, row)) for d, row in zip(domains, gaps)
    )
    return _chart("gaps", alt, draw, (8.5, 1.6 + 0.42 * max(len(domains), 2)))


def _format_chart(rows: list[dict[str, Any]]) -> Chart:
    formats = [r["format"] for r in rows]
    hours = [float(r["hours"]) for r in rows]

    def draw(fig: Any) -> None:
        ax = fig.add_subplot()
        colors = ["#1f4e79" if r["group"] == "group" else "#6a9ed1" for r in rows]
        bars = ax.barh([_wrap(f, 26) for f in formats], hours, color=colors)
        _bar_labels(ax, bars, [f"{h:,.0f} h · {int(r['steps']):,} steps" for h, r in zip(hours, rows)])
        ax.invert_yaxis()
        _title(ax, "Planned hours by format (dark: group formats)")
        ax.set_xlabel("planned hours")
        ax.margins(x=0.25)
        _place(fig, ax)

    alt = "Planned hours by format: " + ", ".join(f"{f} {h:,.1f} h" for f, h in zip(formats, hours))
    return _chart("hours-by-format", alt, draw, (8.0, 1.2 + 0.38 * max(len(rows), 2)))


def _objective_chart(rows: list[dict[str, Any]]) -> Chart:
    import numpy as np

    objectives = [r["objective"] for r in rows]
    labels, planned = _top(objectives, [r["planned_hours"] for r in rows], other="other objectives")
    _, deferred = _top(objectives, [r["deferred_hours"] for r in rows], other="other objectives")

    def draw(fig: Any) -> None:
        ax = fig.add_subplot()
        y = np.arange(len(labels))
        ax.barh(y, planned, color="#1f4e79", label="planned")
        ax.barh(y, deferred, left=planned, color="#e0a800", label="deferred")
        ax.set_yticks(y, [_cut(lb, 40) for lb in labels], fontsize=8)
        ax.invert_yaxis()
        _title(ax, "Planned and deferred hours by learning objective")
        ax.set_xlabel("hours")
        ax.legend(loc="lower right", frameon=False)
        _place(fig, ax, ysize=8)

    alt = "Hours by learning objective (planned + deferred): " + ", ".join(
        f"{lb} {p:,.1f} + {d:,.1f} h" for lb, p, d in zip(labels, planned, deferred)
    )
    return _chart("hours-by-objective", alt, draw, (8.5, 1.2 + 0.3 * max(len(labels), 2)))


def _ranked_bars(
    name: str,
    labels: Sequence[str],
    values: Sequence[float],
    *,
    tick_labels: Sequence[str],
    bar_texts: Sequence[str],
    color: str,
    title: str,
    xlabel: str,
    margin: float,
    size: tuple[float, float],
    alt: str,
) -> Chart:
    """Horizontal bars of counts, largest first, a text at each bar (groups by site, rejects by reason)."""

    def draw(fig: Any) -> None:
        ax = fig.add_subplot()
        # Positions, not the (cut) labels: two labels that share their first characters stay two bars.
        y = list(range(len(labels)))
        bars = ax.barh(y, values, color=color)
        ax.set_yticks(y, list(tick_labels))
        _bar_labels(ax, bars, bar_texts)
        ax.invert_yaxis()
        _title(ax, title)
        ax.set_xlabel(xlabel)
        _integer_axis(ax.xaxis)
        ax.margins(x=margin)
        _place(fig, ax)

    return _chart(name, alt, draw, size)


def _site_chart(rows: list[dict[str, Any]]) -> Chart:
    sites = [r["site"] for r in rows]
    labels, counts = _top(sites, [float(r["groups"]) for r in rows], other="other sites")
    _, members = _top(sites, [float(r["members"]) for r in rows], other="other sites")
    return _ranked_bars(
        "groups-by-site", labels, counts,
        tick_labels=[_cut(s, 40) for s in labels],
        bar_texts=[f"{_count(c, 'group')} · {_count(m, 'person', 'people')}" for c, m in zip(counts, members)],
        color="#1f4e79", title="Training groups by site", xlabel="training groups", margin=0.3,
        size=(8.0, 1.2 + 0.34 * max(len(labels), 2)),
        alt="Training groups by site: " + ", ".join(f"{s} {_count(c, 'group')}" for s, c in zip(labels, counts)),
    )


def _rejects_chart(rows: list[dict[str, Any]]) -> Chart:
    labels, counts = _top([r["reason"] for r in rows], [float(r["rows"]) for r in rows], other="other reasons")
    return _ranked_bars(
        "rejects", labels, counts,
        tick_labels=[_wrap(_cut(r, 90), 45) for r in labels],
        bar_texts=[f"{int(r):,}" for r in counts],
        color="#c4412e", title="Rejected rows by reason", xlabel="rows (a row with several problems counts under each)",
        margin=0.12, size=(8.5, 1.2 + 0.5 * max(len(labels), 2)),
        alt="Rejected rows by reason: " + "; ".join(f"{r}: {int(n):,}" for r, n in zip(labels, counts)),
    )


def _reliability_chart(domains: list[str], alphas: list[float | None], low: list[bool], warn: float) -> Chart:
    import numpy as np

    labels = [_wrap(d, 26) for d in domains]
    alphas = np.array(alphas, dtype=float)  # None (not computable) → NaN

    def draw(fig: Any) -> None:
        ax = fig.add_subplot()
        y = np.arange(len(labels))
        colors = ["#c4412e" if is_low else "#4c9a5b" for is_low in low]
        bars = ax.barh(y, np.nan_to_num(alphas), color=colors)
        _bar_labels(ax, bars, ["n/a" if np.isnan(a) else f"{a:.2f}" for a in alphas])
        ax.axvline(warn, color="#333333", linestyle="--", linewidth=1, label=f"warning below {warn:g}")
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, fontsize=8)
        ax.set_yticks(y, labels)
        ax.invert_yaxis()
        finite = alphas[np.isfinite(alphas)]
        ax.set_xlim(min(0.0, float(finite.min()) - 0.05) if finite.size else 0.0, 1.08)
        _title(ax, "Reliability: Cronbach's alpha by domain")
        ax.set_xlabel("Cronbach's alpha (complete responses)")
        legend_w = 8 * (0.4 + 2.0 + 0.8 + 0.4) + _text_size(f"warning below {warn:g}", 8)[0]  # pad, handle, gap, pad + text
        _place(fig, ax, right=legend_w + 4)

    alt = "Cronbach's alpha by domain: " + ", ".join(f"{d} {number_text(a, '.2f')}" for d, a in zip(domains, alphas))
    return _chart("reliability", alt, draw, (8.0, 1.4 + 0.42 * max(len(labels), 2)))


def _fit_chart(ks: list[int], sil: list[float | None], chosen: int | None) -> Chart:
    sil = [float("nan") if v is None else float(v) for v in sil]

    def draw(fig: Any) -> None:
        ax = fig.add_subplot()
        ax.plot(ks, sil, marker="o", color="#1f4e79")
        if chosen is not None and chosen in ks:
            ax.plot([chosen], [sil[ks.index(chosen)]], marker="o", markersize=12, markerfacecolor="none", markeredgecolor="#c4412e", markeredgewidth=2)
            ax.axvline(chosen, color="#c4412e", linestyle="--", linewidth=1, label=f"chosen k = {chosen}")
            ax.legend(frameon=False, loc="best")
        ax.set_xticks(ks)
        _title(ax, "Cohort fit: silhouette by number of cohorts")
        ax.set_xlabel("number of cohorts (k)")
        ax.set_ylabel("mean silhouette (higher is better)")
        _place(fig, ax, ylabel=True)

    alt = "Silhouette by k: " + ", ".join(f"k={k} {number_text(s, '.3f')}" for k, s in zip(ks, sil)) + (f". Chosen k = {chosen}." if chosen is not None else "")
    return _chart("fit", alt, draw, (6.5, 3.0))


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
}


def draw_charts(charts: Mapping[str, Mapping[str, Any]]) -> dict[str, Chart]:
    """Draw charts given as ``{name: arguments}`` (the ``charts`` of :func:`report_data`)."""
    with _chart_style():  # the chart settings, once for all the charts
        return {name: _DRAW[name](**_chart_text(dict(args))) for name, args in charts.items()}




def _followup_chart(labels: list[str], before: list[float], after: list[float], lo: float, hi: float) -> Chart:
    """A dumbbell per domain and cohort: the mean score before (hollow) and after (filled) training."""
    import numpy as np

    def draw(fig: Any) -> None:
        ax = fig.add_subplot()
        y = np.arange(len(labels))
        ax.hlines(y, before, after, color="#9db3cc", linewidth=2)
        ax.plot(before, y, "o", markerfacecolor="white", markeredgecolor="#1f4e79", label="previous round")
        ax.plot(after, y, "o", color="#1f4e79", label="this round")
        ax.set_yticks(y, [_wrap(x, 30) for x in labels])
        ax.invert_yaxis()
        ax.set_xlim(lo, hi)
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, fontsize=8)
        _title(ax, "Mean score before and after, by domain and cohort")
        ax.set_xlabel("mean domain score")
        _place(fig, ax, right=8 * 3.6 + _text_size("previous round", 8)[0] + 4)

    alt = "Mean score before and after: " + "; ".join(f"{x} {b:.2f} to {a:.2f}" for x, b, a in zip(labels, before, after))
    return _chart("followup-change", alt, draw, (8.0, 1.4 + 0.3 * max(len(labels), 2)))


_DRAW["followup_change"] = _followup_chart
