"""Answers: what the text of one cell means, as a decoder from text to a value or a reason.

Each decoder takes a cell's text and returns ``(value, None)`` or
``(missing value, reason)``; :mod:`trainmatch.survey` decodes each distinct
text of a column once and broadcasts the result. Items read codes or scale
labels in any language ("don't know" is kept apart, never a midpoint), tasks
read yes/no words, roles and formats read ids or names, hours read numbers.
A mapping file's column with codes of its own gets :func:`scale_decoder`.
"""

from __future__ import annotations

import difflib
import re
from typing import TYPE_CHECKING, Callable, Mapping

import numpy as np

from .columns import normalise
from .programme import Programme

if TYPE_CHECKING:
    from .mapping import ColumnScale


# A "don't know" answer, in the item columns: not a code on the scale (never the midpoint), but kept apart from
# an empty answer because it can be evidence (an item's dont_know = lowest); scoring decides how it counts.
DONT_KNOW = float("-inf")


def likert_decoder(programme: Programme) -> Callable[[str], tuple[float, str | None]]:
    """Decoder for item answers: codes, or labels in any language; "don't know" → :data:`DONT_KNOW`,
    an empty cell or a missing code → NaN."""
    lo, hi = programme.scale_min, programme.scale_max
    table: dict[str, float] = {}
    for labels in programme.scale_labels.values():
        for code, label in enumerate(labels, lo):
            table[normalise(label)] = float(code)
    missing = {normalise(x) for x in programme.missing_codes} | {""}
    dont_know = {normalise(x) for x in programme.dont_know} - missing
    example = next(iter(programme.scale_labels.values()), ("",))[-1]
    allowed = f"Allowed: codes {lo}–{hi}, the scale's labels (e.g. {example!r}), or a \"don't know\" answer."

    def decode(raw: str) -> tuple[float, str | None]:
        key = normalise(raw)
        if key in missing:
            return np.nan, None
        if key in dont_know:
            return DONT_KNOW, None
        if key in table:
            return table[key], None
        # "5 - Täysin samaa mieltä" / "5 = Strongly agree" / "5. Agree"
        # The label after the code must not start with a digit: "2.5" is not "2" labelled "5".
        m = re.match(r"^([+-]?\d+(?:[.,]0+)?)\s*(?:[-–=.:)]\s*(\D.*)?)?$", key)
        if m:
            code = float(m.group(1).replace(",", "."))
            label = m.group(2)
            if label and label in table and table[label] != code:
                return np.nan, f"The code and the label disagree. {allowed}"
            if lo <= code <= hi:
                return code, None
            return np.nan, f"Code is outside the scale {lo}–{hi}."
        if re.match(r"^[+-]?\d+[.,]\d+$", key):
            return np.nan, f"Answers must be whole codes {lo}–{hi}."
        return np.nan, f"Unknown answer. {allowed}"

    return decode


def yes_no_decoder(programme: Programme) -> Callable[[str], tuple[bool, str | None]]:
    yes = {normalise(x) for x in programme.yes}
    no = {normalise(x) for x in programme.no} | {""}
    allowed = f"Allowed: {', '.join(programme.yes[:4])} for yes; {', '.join(programme.no[:4])} or empty for no."

    def decode(raw: str) -> tuple[bool, str | None]:
        key = normalise(raw)
        if key in yes:
            return True, None
        if key in no:
            return False, None
        return False, f"Not a yes/no answer. {allowed}"

    return decode


def willing_decoder(programme: Programme) -> Callable[[str], tuple[str, str | None]]:
    """An optional yes/no question (e.g. willing to support colleagues): 'yes', 'no', or '' when not answered."""
    yes = {normalise(x) for x in programme.yes}
    no = {normalise(x) for x in programme.no}
    allowed = f"Allowed: {', '.join(programme.yes[:4])} for yes; {', '.join(programme.no[:4])} for no; empty when not answered."

    def decode(raw: str) -> tuple[str, str | None]:
        key = normalise(raw)
        if key == "":
            return "", None
        if key in yes:
            return "yes", None
        if key in no:
            return "no", None
        return "", f"Not a yes/no answer. {allowed}"

    return decode


def name_decoder(entries: Mapping[str, tuple[str, ...]], what: str, required: bool) -> Callable[[str], tuple[str, str | None]]:
    table = {normalise(alias): ident for ident, aliases in entries.items() for alias in aliases}
    ids = list(entries)

    def decode(raw: str) -> tuple[str, str | None]:
        key = normalise(raw)
        if not key:
            return "", (f"The {what} is empty; it is required." if required else None)
        if key in table:
            return table[key], None
        close = difflib.get_close_matches(key, list(table), n=1, cutoff=0.75)
        hint = f" Did you mean {table[close[0]]!r}?" if close else ""
        return "", f"Unknown {what}.{hint} Allowed: {', '.join(ids)} (or their names)."

    return decode


def hours_decoder(programme: Programme) -> Callable[[str], tuple[float, str | None]]:
    top = programme.max_hours

    def decode(raw: str) -> tuple[float, str | None]:
        text = normalise(raw).removesuffix("h").strip()
        if not text:
            return np.nan, None
        text = text.replace(" ", "")
        if "," in text and "." not in text:
            text = text.replace(",", ".")
        try:
            value = float(text)
        except ValueError:
            return np.nan, "Hours must be a number such as 8 or 2,5."
        if not np.isfinite(value) or value < 0:
            return np.nan, "Hours must be zero or more."
        if value > top:
            return np.nan, f"More than the programme's maximum of {top:g} hours (budget.max_hours)."
        return value, None

    return decode


def formats_decoder(programme: Programme) -> Callable[[str], tuple[str, str | None]]:
    aliases = {f.id: (f.id, *f.names.values()) for f in programme.formats}
    single = name_decoder(aliases, "training format", required=False)
    order = {f.id: n for n, f in enumerate(programme.formats)}

    def decode(raw: str) -> tuple[str, str | None]:
        parts = [p for p in re.split(r"[;,|]", raw) if p.strip()]
        found = set()
        for p in parts:
            ident, reason = single(p)
            if reason:
                return "", f"{p.strip()!r}: {reason}"
            found.add(ident)
        return ";".join(sorted(found, key=order.__getitem__)), None

    return decode


# "Not applicable" answers some tools add beside a scale: no answer, never a score (a mapping's codes may say otherwise).
_NOT_APPLICABLE = ("n/a", "na", "not applicable", "does not apply")


def scale_decoder(programme: Programme, scale: ColumnScale) -> Callable[[str], tuple[float, str | None]]:
    """Decoder for one item column with the mapping file's own codes: its table first, then
    numeric codes (rescaled linearly from ``from`` or reversed), then the programme's codes and labels."""
    base = likert_decoder(programme)
    lo, hi = programme.scale_min, programme.scale_max
    table = dict(scale.codes)
    missing = {normalise(m) for m in scale.missing} | {m for m in _NOT_APPLICABLE if m not in table}
    number = re.compile(r"^[+-]?\d+(?:[.,]0+)?$")

    def decode(raw: str) -> tuple[float, str | None]:
        key = normalise(raw)
        if key in missing:
            return np.nan, None
        if key in table:
            return table[key], None
        if number.match(key) and (scale.source_range or scale.reverse):
            x = float(key.replace(",", "."))
            if scale.source_range:
                a, b = scale.source_range
                if not a <= x <= b:
                    return np.nan, f"Code is outside this column's scale {a}–{b} ({scale.key}.from in the mapping file)."
                x = lo + (x - a) * (hi - lo) / (b - a)
            elif not lo <= x <= hi:
                return base(raw)
            return (lo + hi - x if scale.reverse else x), None  # reverse: the tool numbers from agree to disagree
        return base(raw)

    return decode
