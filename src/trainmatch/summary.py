"""Plain-text summaries for the terminal: what was read, what was wrong, how reliable.

Pure functions that return strings; the CLI decides where to print them.
Values from the survey are shown only in the problem table (they are the
cells the user must fix); personal-data columns are named, never shown.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

import pandas as pd

from .io import ENCODING_LABELS
from .programme import Programme
from .scoring import Reliability


# Characters a terminal acts on or hides (C0 and C1 controls, text-direction and invisible
# formatting characters): shown escaped, so a value cannot move the cursor, recolour or
# rewrite the terminal, or hide text.
_UNSAFE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")


def terminal_safe(text: object) -> str:
    """``text`` with control and invisible characters escaped: ESC reads ``\\x1b``, a right-to-left override ``\\u202e``."""
    return _UNSAFE.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100 else f"\\u{ord(m.group()):04x}", str(text))


def text_table(frame: pd.DataFrame, max_width: int = 60) -> str:
    """Render a small frame as an aligned text table, cutting long cells; control characters are escaped."""
    if frame.empty:
        return ""
    cells = frame.astype(str).map(lambda s: terminal_safe(s.replace("\r", "").replace("\n", "⏎"))).map(
        lambda s: s if len(s) <= max_width else s[: max_width - 1] + "…"
    )
    widths = [max(len(terminal_safe(c)), cells[c].str.len().max()) for c in cells.columns]
    head = "  ".join(terminal_safe(c).ljust(w) for c, w in zip(cells.columns, widths))
    rule = "  ".join("-" * w for w in widths)
    body = ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells.itertuples(index=False)]
    return "\n".join([head, rule, *body])


ENCODING_NAMES = ENCODING_LABELS  # the reader's names for the encodings it detects


def import_summary(raw: Any, result: Any, show: int = 10) -> str:
    """What was read from a survey file, which columns were used, and the first problems."""
    lines = [f"Read {raw.path}: {result.n_read} rows, {raw.frame.shape[1]} columns"]
    if raw.kind == "csv":
        delim = {"\t": "tab"}.get(raw.delimiter, repr(raw.delimiter))
        lines[0] += f" (CSV, {raw.encoding}, delimiter {delim})"
        lines.append(f"  encoding: {ENCODING_NAMES.get(str(raw.encoding).lower(), raw.encoding)}")
    else:
        lines[0] += f" (XLSX, sheet {raw.sheet!r})"
    layout = getattr(result, "layout", "plain")
    if getattr(result, "layout_source", "detected") == "mapping":
        lines.append(f"Layout from the mapping file: {layout}")
    else:
        lines.append(f"Detected layout: {layout if layout != 'plain' else 'plain (the programme’s own column names)'}")
    for note in getattr(result, "notes", ()):
        lines.append(f"  {terminal_safe(note)}")
    skipped = getattr(raw, "skipped_empty", 0)
    if skipped:
        lines.append(f"  empty rows skipped (not people): {skipped}")
    lines.append(f"  columns matched: {len(result.matched)}")
    if result.dropped_personal:
        lines.append(f"  personal data dropped ({len(result.dropped_personal)}): {terminal_safe(', '.join(result.dropped_personal))}")
    if result.ignored:
        lines.append(f"  ignored, not in the programme ({len(result.ignored)}): {terminal_safe(', '.join(result.ignored))}")
    if result.absent_optional:
        lines.append(f"  optional columns absent: {', '.join(result.absent_optional)}")
    policy = getattr(result, "duplicates", "reject")
    if policy == "keep-latest":
        basis = f"by {result.timestamp!r}" if getattr(result, "timestamp", None) else "(no usable submission time: copies are rejected)"
        lines.append(f"  duplicate ids: keep the latest submission {basis}; superseded rows: {getattr(result, 'n_superseded', 0)}")
    else:
        lines.append("  duplicate ids: every copy is rejected (--duplicates reject)")
    lines.append(f"  accepted: {result.n_accepted}, rejected: {result.n_rejected}")
    warnings = getattr(result, "warnings", None)
    if warnings is not None and len(warnings):
        excel = warnings["reason"].str.startswith("The id looks changed by Excel").to_numpy(dtype=bool)
        if excel.any():
            rows = ", ".join(str(r) for r in warnings["row"][excel].head(show or 10))
            more = f" and {int(excel.sum()) - (show or 10)} more" if excel.sum() > (show or 10) else ""
            lines.append(f"Warning: {int(excel.sum())} id(s) look changed by Excel (a date or 1.23E+11), in rows {rows}{more}.")
            lines.append("  Check them against the source and export the id column as text.")
        if (~excel).any():
            changed = warnings[~excel]
            lines.append(f"Warning: {len(changed)} id(s) were normalised (full-width or compatibility characters made plain, "
                         "invisible characters removed) before duplicates were judged:")
            shown = changed.head(show or 10)
            lines += [f"  row {r}: {v!r} -> {p!r}" for r, v, p in zip(shown["row"], shown["value"], shown["person_id"])]
            if len(changed) > len(shown):
                lines.append(f"  and {len(changed) - len(shown)} more")
    if len(result.rejects):
        kinds = result.rejects["reason"].str.replace(r"(The same id appears in rows|Ids in rows)[^;]*", r"\1 …", regex=True)
        kinds = kinds.str.replace(r"^superseded by row \d+.*", "superseded by a later submission of the same id (--duplicates keep-latest)", regex=True)
        kinds = kinds.str.split(".").str[0]
        counts = kinds.value_counts()
        lines.append(f"Problems by kind ({len(result.rejects)} cells in {result.n_rejected} rows):")
        lines += [f"  {n:>6}  {terminal_safe(k)}" for k, n in counts.items()]
        if show:
            first = result.rejects.head(show)
            lines.append(f"First {len(first)} problem(s):")
            lines.append(text_table(first))
    return "\n".join(lines)


def reliability_table(rel: Sequence[Reliability], programme: Programme) -> str:
    """Cronbach's alpha and the standard error of measurement per domain, with a warning mark below the
    programme's threshold."""
    names = {d.id: d.names.get("en", d.id) for d in programme.domains}
    rows = []
    for r in rel:
        alpha = "n/a" if r.alpha != r.alpha else f"{r.alpha:.2f}"
        sem = "n/a" if r.sem != r.sem else f"{r.sem:.2f}"
        rows.append({"domain": names[r.domain], "items": r.n_items, "complete": r.n_complete, "alpha": alpha, "SEM": sem,
                     "": "LOW" if r.low else ""})
    text = "Reliability (Cronbach's alpha of the skill items; SEM = standard error of measurement of the score):\n" + text_table(pd.DataFrame(rows))
    low = [names[r.domain] for r in rel if r.low]
    if low:
        text += (
            f"\nWarning: alpha below {programme.alpha_warning:g} in {', '.join(low)}; "
            "scores there are less trustworthy. Check reverse-keyed items and translations."
        )
    return text


def flagged_items_text(flagged: pd.DataFrame) -> str:
    """A warning listing the items flagged by the item statistics (item, domain, reason); empty when none."""
    if flagged.empty:
        return ""
    lines = [f"Warning: {len(flagged)} item(s) may not measure their domain:"]
    lines += [f"  - {row.item} ({row.domain}): {row.reason}" for row in flagged.itertuples(index=False)]
    lines.append("Check the item's wording, translation and reverse key in items.csv; --item-stats FILE writes every item's statistics.")
    return "\n".join(lines)
