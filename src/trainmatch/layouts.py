"""Survey-tool layouts: recognise how an export was made and convert it to the programme's columns.

Every survey tool writes its own kind of file: Microsoft Forms puts the
statement of each Likert row in the header and joins multi-select answers with
``;``; Google Forms writes ``Question [Row]`` grid headers and joins checkbox
answers with ``", "``; LimeSurvey writes ``Q1[SQ001]`` headers, answer codes
``A1``…``A5`` and ``Y``/empty multiple-choice columns (or full question texts
and answers); Qualtrics writes up to three header rows; REDCap writes raw codes,
one ``field___code`` column per checkbox option and an ``<instrument>_complete``
status after each instrument's fields; SurveyMonkey heads a question's first
column only and labels each column in a second header row.
:func:`detect_layout` recognises the tool from the header row and a few cells
(a pure function), and :func:`convert` removes the header rows beyond the first
(in that one place), then renames and reshapes the columns into the
programme's wide format, so that :func:`trainmatch.survey.import_survey`
matches and validates every export the same way, once.

For any other tool, or to finish what a layout cannot know, a mapping file
(TOML, ``--mapping FILE``; ``trainmatch init`` writes an example) says where
each programme column is (by header, sub-header row or position, or several
columns), how each item's codes read (own codes, missing answers, a linear
rescale), what is the same for everyone, what was not asked, how ids are made
and which rows are complete. It is checked strictly when loaded: unknown keys
and targets are reported together with their location.

Conversion never guesses: a header is renamed only when its tool syntax names
an item, task or programme column exactly (ignoring case and spaces); a
multi-select column is split only against the declared options, longest first,
and an option that is not declared is a cell error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from .answers import scale_decoder
from .columns import factorize, header_key, normalise
from .errors import Problem
from .io import RawSurvey
from .mapping import ColumnMapping, ColumnScale, Source
from .programme import Programme

PLAIN = "plain"  # the programme's own columns, as `trainmatch synth` writes them
MS_FORMS, GOOGLE_FORMS, LIMESURVEY, QUALTRICS, REDCAP = "Microsoft Forms", "Google Forms", "LimeSurvey", "Qualtrics", "REDCap"
SURVEYMONKEY = "SurveyMonkey"
LAYOUTS = (MS_FORMS, GOOGLE_FORMS, LIMESURVEY, QUALTRICS, REDCAP, SURVEYMONKEY, PLAIN)


def _text_key(text: str) -> str:
    """A question or option text for comparison: normalised, trailing punctuation and spaces removed."""
    return normalise(text).rstrip(" .:?!*")


# --------------------------------------------------------------------------- detection


_MS_FORMS_HEAD = [("id", "tunnus"), ("starttime", "aloitusaika", "starttid"), ("completiontime", "valmistumisaika", "slutfört", "sluttid")]
_GOOGLE_TIMESTAMP = ("timestamp", "aikaleima", "tidstämpel", "tidsstämpel")
# LimeSurvey's first columns, with question-code headings or full-text headings (English, German);
# the submit date is empty for an incomplete response.
_LIMESURVEY_HEADS = (
    ("id", "submitdate", "lastpage", "startlanguage"),
    ("responseid", "datesubmitted", "lastpage", "startlanguage"),
    ("antwortid", "datumabgeschickt", "letzteseite", "startsprache"),
)
_LIMESURVEY_SUBMITTED = ("submitdate", "Date submitted", "Datum Abgeschickt")
_QUALTRICS = {"startdate", "enddate", "finished", "responseid"}
_SURVEYMONKEY = {"respondentid", "collectorid", "startdate", "enddate"}
_GRID = re.compile(r"^(?P<question>.*\S)\s*\[(?P<row>[^\[\]]+)\]\s*$")


def detect_layout(headers: Sequence[str], first_rows: Sequence[Sequence[str]] = ()) -> str:
    """Which survey tool wrote this export, from its header row (and the first rows for Qualtrics).

    Returns one of :data:`LAYOUTS`; ``"plain"`` when no tool's signature is present.
    """
    keys = [header_key(h) for h in headers]
    keyset = set(keys)
    if _QUALTRICS <= keyset:
        return QUALTRICS
    if len(keys) >= 3 and all(keys[j] in names for j, names in enumerate(_MS_FORMS_HEAD)):
        return MS_FORMS
    if keys and keys[0] in _GOOGLE_TIMESTAMP:
        return GOOGLE_FORMS
    if any(set(head) <= keyset for head in _LIMESURVEY_HEADS):
        return LIMESURVEY
    if _SURVEYMONKEY <= keyset:
        return SURVEYMONKEY
    if keys and (keys[0] == "recordid" or any(h.startswith("redcap_") for h in headers)):
        return REDCAP
    if any("___" in h for h in headers) and any(h.endswith("_complete") for h in headers):
        return REDCAP
    return PLAIN


# --------------------------------------------------------------------------- conversion


@dataclass(frozen=True)
class Converted:
    """An export converted to the programme's columns, with what the conversion learnt."""

    raw: RawSurvey
    layout: str
    timestamp: str | None = None  # header (in raw.frame) of the submission time, for --duplicates keep-latest
    timestamp_format: str | None = None
    personal: tuple[str, ...] = ()  # headers the tool is known to fill with personal data
    bad: tuple[tuple[np.ndarray, str, np.ndarray, str | np.ndarray], ...] = ()  # (positions, column, values, reasons)
    excluded: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # rows rejected as a whole (unfinished)
    notes: tuple[str, ...] = ()
    consumed: tuple[str, ...] = ()  # source headers turned into programme columns (not "ignored")
    completion: tuple[tuple[np.ndarray, str, np.ndarray, str | np.ndarray], ...] = ()  # incomplete responses, as ``bad``
    header_rows: int = 1  # header rows of the file (removed before conversion, in one place: convert)
    layout_source: str = "detected"  # "detected" from the header, or "mapping" (named by the mapping file)
    decoders: Mapping[str, Callable[[str], tuple[float, str | None]]] = field(default_factory=dict)  # item id -> its own decoder


class _Targets:
    """Lookup from a tool's header fragment to a programme column, item id or task id."""

    def __init__(self, programme: Programme):
        cols = programme.columns
        self.programme = programme
        self.by_key: dict[str, str] = {}
        self.by_text: dict[str, str] = {}
        for c in (cols.id, cols.role, cols.site, cols.language, cols.hours, cols.formats):
            self.by_key[header_key(c)] = c
        for item in programme.items:
            self.by_key[header_key(item.id)] = item.id
            for t in item.texts.values():
                if t:
                    self.by_text[_text_key(t)] = item.id
        for task in programme.tasks:
            self.by_key[header_key(task.id)] = task.id
            for t in task.names.values():
                if t:
                    self.by_text[_text_key(t)] = task.id
        self.tasks = {t.id for t in programme.tasks}
        self.own_scale: set[str] = set()  # items read with the mapping file's own codes
        self.task_options = _options({t.id: (t.id, *t.names.values()) for t in programme.tasks})
        self.format_options = _options({f.id: (f.id, *f.names.values()) for f in programme.formats})

    def find(self, *fragments: str | None) -> str | None:
        for frag in fragments:
            if frag:
                hit = self.by_key.get(header_key(frag)) or self.by_text.get(_text_key(frag))
                if hit:
                    return hit
        return None


def _options(entries: Mapping[str, Iterable[str]]) -> dict[str, str]:
    return {_text_key(alias): ident for ident, aliases in entries.items() for alias in aliases if alias}


def split_options(value: str, options: Mapping[str, str], separator: str) -> tuple[list[str], str | None]:
    """Split a multi-select answer against the declared options, longest option first.

    Options may themselves hold the separator ("Peer, super-user coaching"), so
    the answer is not split blindly: at each position the longest declared
    option followed by the separator (or the end) is taken. Returns the ids and
    the first text that is not an option (or None).
    """
    rest = normalise(value)
    # The separator as the answer is normalised (case-folded, typographic dashes straightened): ", " and
    # ";" alike, spaces around it ignored; a separator of spaces only is the one space left between words.
    token = normalise(separator) or " "
    ordered = sorted(options, key=len, reverse=True)
    found: list[str] = []
    while rest:
        for opt in ordered:
            if not rest.startswith(opt):
                continue
            after = rest[len(opt):]
            if token == " ":  # the option must end at a space or at the end
                ends, following = not after or after.startswith(" "), after.lstrip()
            else:
                tail = after.lstrip()
                ends, following = not tail or tail.startswith(token), tail[len(token):].lstrip()
            if ends:
                found.append(options[opt])
                rest = following
                break
        else:
            # Options hold spaces, so with a space separator the rest as a whole is what is not an option.
            return found, rest if token == " " else rest.split(token, 1)[0].strip() or rest
    return found, None


def _split_column(
    values: pd.Series, options: Mapping[str, str], separator: str
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
    """Per option id, a bool array of who ticked it; and the bad cells (positions, values, reasons)."""
    codes, uniques = factorize(values)
    ids = sorted(set(options.values()))
    ticks = np.zeros((len(uniques), len(ids)), dtype=bool)
    reasons = np.full(len(uniques), None, dtype=object)
    index = {ident: j for j, ident in enumerate(ids)}
    shown = sorted({o for o in options})[:6]
    for u, text in enumerate(uniques):
        found, unknown = split_options(str(text), options, separator)
        for ident in found:
            ticks[u, index[ident]] = True
        if unknown is not None:
            reasons[u] = f"{unknown!r} is not one of the declared options of this multi-select question (e.g. {', '.join(shown)}). Add it to the mapping file's [[multi]] options."
    bad_u = np.array([r is not None for r in reasons], dtype=bool)
    pos = np.flatnonzero(bad_u[codes]) if bad_u.any() else np.zeros(0, np.int64)
    out = {ident: ticks[codes, j] if len(uniques) else np.zeros(len(values), bool) for ident, j in index.items()}
    bad_values = values.iloc[pos].astype(object).to_numpy(dtype=object) if len(pos) else np.zeros(0, object)
    return out, pos, bad_values, reasons[codes[pos]] if len(pos) else np.zeros(0, object)


def _map_values(values: pd.Series, table: Mapping[str, str], keep_unknown: bool = True) -> pd.Series:
    """Replace whole cell values via ``table`` (per distinct value); others stay as written."""
    codes, uniques = factorize(values)
    if not uniques:
        return values
    lookup = {normalise(k): v for k, v in table.items()}  # compared as every answer is: case, spaces, quotes
    out = np.asarray([lookup.get(normalise(str(u)), str(u) if keep_unknown else "") for u in uniques], dtype=object)
    return pd.Series(out[codes], index=values.index, dtype=object)


def _all_match(values: pd.Series, pattern: re.Pattern[str], extra: Iterable[str] = ()) -> bool:
    _, uniques = factorize(values)
    allowed = {""} | {str(x) for x in extra}
    hits = [u for u in uniques if str(u).strip() not in allowed]
    return bool(hits) and all(pattern.match(str(u).strip()) for u in hits)


def _is_multi(values: pd.Series, options: Mapping[str, str], separator: str) -> bool:
    """Every answer of the column splits fully into declared options (and at least one is given)."""
    _, uniques = factorize(values)
    given = [u for u in uniques if str(u).strip()]
    if not given or len(given) > 5000:
        return False
    return all(split_options(str(u), options, separator)[1] is None for u in given)


def _with_frame(raw: RawSurvey, frame: pd.DataFrame) -> RawSurvey:
    return replace(raw, frame=frame)


def convert(raw: RawSurvey, programme: Programme, mapping: ColumnMapping | None = None) -> Converted:
    """Recognise the export's layout and rename/reshape its columns to the programme's.

    Header rows beyond the first are removed here and only here, before any
    conversion: either those the layout shows by its own syntax (Qualtrics,
    SurveyMonkey) or the mapping file's ``header_rows``, never both.
    """
    headers = list(raw.frame.columns)
    head_rows = [[str(v) for v in raw.frame.iloc[i].tolist()] for i in range(min(2, len(raw.frame)))]
    layout = detect_layout(headers, head_rows)
    extra = _extra_header_rows(layout, raw, mapping)
    sub_headers = [[str(v).strip() for v in raw.frame.iloc[i].tolist()] for i in range(min(extra, len(raw.frame)))]
    raw = _drop_header_rows(raw, extra)
    targets = _Targets(programme)
    items = {i.id for i in programme.items}
    mapped_items: set[int] = set()
    if mapping is not None:
        # Items whose codes the mapping file reads: a layout leaves their answers as written.
        targets.own_scale = {i for i in items if mapping.scales.get(i, mapping.scale).active}
        mapped_items = {
            _locate(src, headers, sub_headers, raw.path, mapping, f"columns.{t}") for t, srcs in mapping.columns.items() if t in items for src in srcs
        }
    conv = {
        MS_FORMS: _ms_forms,
        GOOGLE_FORMS: _google_forms,
        LIMESURVEY: _limesurvey,
        QUALTRICS: _qualtrics,
        REDCAP: _redcap,
        SURVEYMONKEY: _surveymonkey,
    }.get(layout)
    result = conv(raw, targets, sub_headers, mapped_items) if conv else Converted(raw, PLAIN)
    result = replace(result, header_rows=1 + extra)
    if mapping is not None:
        result = _apply_mapping(result, mapping, programme, targets, headers, sub_headers)
    return result


def _layout_header_rows(layout: str, frame: pd.DataFrame) -> int | None:
    """Header rows after the first that the layout's own syntax shows; None for layouts without such rows."""
    keys = [header_key(h) for h in frame.columns]
    if layout == QUALTRICS:
        # Row 2: question texts ("Start Date" under StartDate); row 3: {"ImportId": …}. Either may be absent.
        first = frame.iloc[:2, keys.index("startdate")].astype(str).str.strip().tolist()
        if first and header_key(first[0]) == "startdate":
            return 2 if len(first) > 1 and first[1].startswith("{") else 1
        return 1 if first and first[0].startswith("{") else 0
    if layout == SURVEYMONKEY:
        # Row 2 labels each matrix row and checkbox option; it has no respondent id.
        return 1 if len(frame) and not str(frame.iloc[0, keys.index("respondentid")]).strip() else 0
    return None


def _extra_header_rows(layout: str, raw: RawSurvey, mapping: ColumnMapping | None) -> int:
    """How many rows after the header row are headers too: the layout's, or the mapping file's, never both."""
    from .errors import SurveyError

    own = _layout_header_rows(layout, raw.frame)
    declared = mapping.header_rows if mapping is not None else None
    if own is None:
        return (declared or 1) - 1
    if declared is not None and declared != 1 + own:
        raise SurveyError(
            Problem(
                raw.path,
                f"has {1 + own} header row(s), as its {layout} layout shows, but the mapping file {mapping.path} says "
                f"header_rows = {declared} (key survey.header_rows).",
                value=str(declared),
                hint=f"Remove header_rows from the mapping file: {layout} header rows are recognised from their contents, "
                "and a wrong count would read answers as headers or headers as people.",
            )
        )
    return own


def _drop_header_rows(raw: RawSurvey, extra: int) -> RawSurvey:
    """The survey without its first ``extra`` rows (header rows): record positions, lines and overflow move up."""
    if extra == 0:
        return raw
    overflow = raw.overflow
    if len(overflow):
        overflow = overflow[overflow.index >= extra]
        overflow.index = overflow.index - extra
    return replace(raw, frame=raw.frame.iloc[extra:].reset_index(drop=True), lines=raw.lines[extra:], overflow=overflow)


def _locate(src: Source, headers: Sequence[str], sub_headers: Sequence[Sequence[str]], path: str, mapping: ColumnMapping, key: str) -> int:
    """Position of the column a mapping file addresses; SurveyError naming the key when there is none or several."""
    from difflib import get_close_matches

    from .errors import SurveyError

    def fail(message: str, hint: str) -> SurveyError:
        return SurveyError(Problem(path, f"{message} (the mapping file {mapping.path} names it at {key}).", column=src.header, hint=hint))

    if src.number is not None:
        if src.number > len(headers):
            raise fail(f"has {len(headers)} columns, so no column number {src.number}", "Count the columns from 1 at the left, as Excel's A, B, C ….")
        return src.number - 1
    if src.row == 1:
        texts = [h.strip() for h in headers]
    elif src.row - 2 < len(sub_headers):
        texts = list(sub_headers[src.row - 2])
    else:
        raise fail(
            f"has {1 + len(sub_headers)} header row(s), so no header row {src.row}",
            "Give survey.header_rows in the mapping file, or address the column by its first-row header or column_number.",
        )
    hits = [j for j, t in enumerate(texts) if t == src.header]
    if not hits:
        close = get_close_matches(src.header, [t for t in texts if t], n=1, cutoff=0.6)
        where = "" if src.row == 1 else f" in header row {src.row}"
        raise fail(f"has no column {src.header!r}{where}", (f"Did you mean {close[0]!r}? " if close else "") + "Fix the header in the mapping file to match the export exactly.")
    if len(hits) > 1:
        raise fail(
            f"has {len(hits)} columns headed {src.header!r} in header row {src.row} (columns {', '.join(str(j + 1) for j in hits[:5])})",
            "Address the one you mean by column_number = N.",
        )
    return hits[0]


def _rename(frame: pd.DataFrame, renames: Mapping[int, str]) -> pd.DataFrame:
    """Rename columns by position (duplicate target names are left for match_columns to refuse)."""
    if not renames:
        return frame
    frame = frame.copy(deep=False)
    frame.columns = [renames.get(j, h) for j, h in enumerate(frame.columns)]
    return frame


def _multi_columns(
    frame: pd.DataFrame, targets: _Targets, separator: str, skip: set[str]
) -> tuple[pd.DataFrame, list[tuple[np.ndarray, str, np.ndarray, np.ndarray]], list[str], list[str]]:
    """Find multi-select columns whose every answer is a list of task (or format) names and expand them."""
    programme = targets.programme
    bad: list[tuple[np.ndarray, str, np.ndarray, np.ndarray]] = []
    notes: list[str] = []
    consumed: list[str] = []
    present = {header_key(h) for h in frame.columns}
    for h in list(frame.columns):
        if h in skip or not isinstance(frame[h], pd.Series) or header_key(h) in targets.by_key:
            continue
        values = frame[h]
        if not any(header_key(t) in present for t in targets.tasks) and _is_multi(values, targets.task_options, separator):
            ticked, pos, vals, reasons = _split_column(values, targets.task_options, separator)
            for task in programme.tasks:
                frame[task.id] = np.where(ticked.get(task.id, np.zeros(len(frame), bool)), "1", "0").astype(object)
            bad.append((pos, h, vals, reasons))
            notes.append(f"the multi-select question {h!r} lists the tasks")
            consumed.append(h)
            present |= {header_key(t) for t in targets.tasks}
        elif header_key(programme.columns.formats) not in present and _is_multi(values, targets.format_options, separator):
            frame[programme.columns.formats] = _joined(values, targets.format_options, separator, programme)
            notes.append(f"the multi-select question {h!r} lists the preferred formats")
            consumed.append(h)
            present.add(header_key(programme.columns.formats))
    return frame, bad, notes, consumed


def _joined(values: pd.Series, options: Mapping[str, str], separator: str, programme: Programme) -> pd.Series:
    """Format answers re-joined with ``;`` as ids (unknown answers are kept for the decoder to report)."""
    codes, uniques = factorize(values)
    order = {f.id: n for n, f in enumerate(programme.formats)}
    out = []
    for u in uniques:
        found, unknown = split_options(str(u), options, separator)
        out.append(str(u) if unknown is not None else ";".join(sorted(set(found), key=order.__getitem__)))
    return pd.Series(np.asarray(out, dtype=object)[codes] if len(uniques) else np.full(len(values), "", object), index=values.index)


def _timestamp(frame: pd.DataFrame, *names: str) -> str | None:
    keys = {header_key(h): h for h in frame.columns}
    for n in names:
        if header_key(n) in keys:
            return keys[header_key(n)]
    return None


def _ms_forms(raw: RawSurvey, targets: _Targets, sub_headers: Sequence[Sequence[str]] = (), mapped_items: Iterable[int] = ()) -> Converted:
    frame = raw.frame
    renames = {}
    for j, h in enumerate(frame.columns):
        if j >= 3:
            hit = targets.find(h)
            if hit and header_key(h) != header_key(hit):
                renames[j] = hit
    frame = _rename(frame, renames)
    personal = tuple(h for h in frame.columns if header_key(h) in {"email", "name", "sähköposti", "nimi", "epost", "namn"})
    frame, bad, notes, consumed = _multi_columns(frame.copy(), targets, ";", set(personal) | set(frame.columns[:5]))
    ts = _timestamp(frame, "Completion time", "Valmistumisaika", "Tid för slutförande", "Sluttid")
    return Converted(_with_frame(raw, frame), MS_FORMS, ts, None, personal, tuple(bad), notes=tuple(notes), consumed=tuple(consumed))


def _rename_grid_rows(frame: pd.DataFrame, targets: _Targets) -> pd.DataFrame:
    """Rename ``Question [row]`` grid headers (and plain ones) that name a programme column."""
    renames = {}
    for j, h in enumerate(frame.columns):
        m = _GRID.match(h)
        hit = targets.find(m.group("row")) if m else targets.find(h)
        if hit and header_key(h) != header_key(hit):
            renames[j] = hit
    return _rename(frame, renames)


def _google_forms(raw: RawSurvey, targets: _Targets, sub_headers: Sequence[Sequence[str]] = (), mapped_items: Iterable[int] = ()) -> Converted:
    frame = raw.frame
    frame = _rename_grid_rows(frame, targets)
    personal = tuple(h for h in frame.columns if header_key(h) in {"emailaddress", "sähköpostiosoite", "epostadress", "email"})
    frame, bad, notes, consumed = _multi_columns(frame.copy(), targets, ", ", set(personal) | {frame.columns[0]})
    fmt_col = targets.programme.columns.formats
    if fmt_col in frame.columns and isinstance(frame[fmt_col], pd.Series):
        frame[fmt_col] = _joined(frame[fmt_col], targets.format_options, ", ", targets.programme)
    return Converted(
        _with_frame(raw, frame), GOOGLE_FORMS, frame.columns[0], None, personal, tuple(bad), notes=tuple(notes), consumed=tuple(consumed)
    )


_LIME_CODE = re.compile(r"^A(\d+)$")


def _limesurvey(raw: RawSurvey, targets: _Targets, sub_headers: Sequence[Sequence[str]] = (), mapped_items: Iterable[int] = ()) -> Converted:
    programme = targets.programme
    frame = raw.frame.copy(deep=False)
    frame = _rename_grid_rows(frame, targets)
    items = {i.id for i in programme.items}
    notes = []
    for h in frame.columns:
        col = frame[h] if isinstance(frame[h], pd.Series) else None
        if col is None:
            continue
        if h in items and h not in targets.own_scale and _all_match(col, _LIME_CODE, programme.missing_codes):
            # Answer codes A1…An are the scale's positions: A1 = the lowest answer.
            lo = programme.scale_min
            table = {f"A{k}": str(lo + k - 1) for k in range(1, programme.scale_max - lo + 2)}
            frame[h] = _map_values(col, table)
            notes.append("answer codes A1…A%d read as %d…%d" % (programme.scale_max - lo + 1, lo, programme.scale_max))
        elif h in targets.tasks:
            # Multiple choice: "Y" when ticked, empty when not ("Yes" with full-text answers).
            frame[h] = _map_values(col, {"Y": "1", "N": "0"})
    personal = tuple(h for h in frame.columns if header_key(h) in {"ipaddr", "ipaddress", "refurl", "referrerurl", "email", "firstname", "lastname", "token", "accesscode"})
    ts = _timestamp(frame, *_LIMESURVEY_SUBMITTED)
    excluded = np.zeros(0, np.int64)
    completion = []
    if ts is not None:
        unsubmitted = np.flatnonzero((frame[ts].astype(str).str.strip() == "").to_numpy())
        if len(unsubmitted):
            excluded = unsubmitted
            completion.append((unsubmitted, ts, np.full(len(unsubmitted), "", object),
                               "Incomplete response: LimeSurvey has no submit date for it (the person left the survey before the end). "
                               "Incomplete responses are not used; export only completed responses, or ask the person to finish."))
    return Converted(_with_frame(raw, frame), LIMESURVEY, ts, None, personal, excluded=excluded, notes=tuple(dict.fromkeys(notes)),
                     completion=tuple(completion))


_QUALTRICS_META = {
    "startdate", "enddate", "status", "ipaddress", "progress", "durationinseconds", "finished", "recordeddate", "responseid",
    "recipientlastname", "recipientfirstname", "recipientemail", "externalreference", "locationlatitude", "locationlongitude",
    "distributionchannel", "userlanguage",
}


def _qualtrics(raw: RawSurvey, targets: _Targets, sub_headers: Sequence[Sequence[str]] = (), mapped_items: Iterable[int] = ()) -> Converted:
    frame = raw.frame
    # Header row 2, when the export has it, holds the question texts ("How much … - statement"); the
    # header rows were removed by convert.
    start = [header_key(h) for h in frame.columns].index("startdate")
    texts: Sequence[str] = [""] * frame.shape[1]
    if sub_headers and header_key(sub_headers[0][start]) == "startdate":
        texts = sub_headers[0]
    renames = {}
    for j, h in enumerate(frame.columns):
        if header_key(h) in _QUALTRICS_META:
            continue
        statement = texts[j].rsplit(" - ", 1)[-1] if texts[j] else None
        hit = targets.find(h, statement)
        if hit and header_key(h) != header_key(hit):
            renames[j] = hit
    frame = _rename(frame, renames)
    personal = tuple(h for h in frame.columns if header_key(h) in {"ipaddress", "recipientlastname", "recipientfirstname", "recipientemail", "locationlatitude", "locationlongitude"})
    finished = _timestamp(frame, "Finished")
    completion = []
    excluded = np.zeros(0, np.int64)
    if finished is not None:
        flag = frame[finished].astype(str).str.strip().str.casefold()
        unfinished = np.flatnonzero(flag.isin(["false", "0"]).to_numpy())
        if len(unfinished):
            progress = _timestamp(frame, "Progress")
            shown = (" (progress " + frame[progress].iloc[unfinished].astype(str) + "%)") if progress else pd.Series("", index=unfinished)
            reasons = ("Unfinished response: Qualtrics marks it Finished = False" + shown.astype(object)
                       + ". Unfinished responses are not used (stated policy); close them in Qualtrics or export finished responses only.")
            reasons = reasons.to_numpy(dtype=object)
            excluded = unfinished
            completion.append((unfinished, finished, frame[finished].iloc[unfinished].astype(object).to_numpy(dtype=object), reasons))
    ts = _timestamp(frame, "RecordedDate", "EndDate")
    return Converted(_with_frame(raw, frame), QUALTRICS, ts, None, personal, excluded=excluded, completion=tuple(completion))


def _redcap(raw: RawSurvey, targets: _Targets, sub_headers: Sequence[Sequence[str]] = (), mapped_items: Iterable[int] = ()) -> Converted:
    programme = targets.programme
    cols = programme.columns
    frame = raw.frame
    items = {i.id for i in programme.items}
    renames = {}
    checkbox: dict[str, list[tuple[str, str]]] = {}
    item_at = set(mapped_items)
    for j, h in enumerate(frame.columns):
        if "___" in h:
            field_name, code = h.rsplit("___", 1)
            checkbox.setdefault(field_name, []).append((h, code))
            hit = targets.find(code)
            if hit in targets.tasks:
                renames[j] = hit
            continue
        hit = targets.find(h)
        if hit in items:
            item_at.add(j)
        if hit and header_key(h) != header_key(hit):
            renames[j] = hit
    if frame.columns[0] == "record_id" and not any(header_key(h) == header_key(cols.id) for h in frame.columns):
        renames[0] = cols.id
    headers = list(frame.columns)
    frame = _rename(frame, renames).copy(deep=False)
    fmt_ids = {f.id for f in programme.formats}
    notes: list[str] = []
    consumed: list[str] = []
    for field_name, parts in checkbox.items():
        codes = [(h, c) for h, c in parts if c in fmt_ids]
        if codes and len(codes) == len(parts) and cols.formats not in frame.columns:
            # formats___workshop = 1 ticks "workshop": join the ticked ids in programme order.
            order = [f.id for f in programme.formats]
            codes.sort(key=lambda hc: order.index(hc[1]))
            joined = pd.Series("", index=frame.index, dtype=object)
            for h, c in codes:
                ticked = (frame[h].astype(str).str.strip() == "1").to_numpy()
                joined = joined.where(~ticked, joined + np.where(joined == "", "", ";") + c)
            frame[cols.formats] = joined
            notes.append(f"checkbox field {field_name!r} lists the preferred formats")
            consumed += [h for h, _ in codes]
    ts = next((h for h in frame.columns if h.endswith("_timestamp")), None)
    # REDCap writes each instrument's fields, then its `<instrument>_complete` status. The status that
    # counts is that of the instrument(s) holding the items; other instruments (a screening form) are ignored.
    ends = [j for j, h in enumerate(headers) if h.endswith("_complete")]
    starts = [0] + [e + 1 for e in ends[:-1]]
    holding = [e for s0, e in zip(starts, ends) if any(s0 <= j < e for j in item_at)] or ends
    completion = []
    excluded = np.zeros(0, np.int64)
    for j in holding:
        h = headers[j]
        status = frame.iloc[:, j].astype(str).str.strip()
        incomplete = np.flatnonzero((status != "2").to_numpy())
        if len(incomplete):
            excluded = np.union1d(excluded, incomplete)
            instrument = h[: -len("_complete")]
            completion.append((incomplete, h, status.iloc[incomplete].to_numpy(dtype=object),
                               f"The instrument {instrument!r}, which holds the answers, is not marked Complete in REDCap "
                               "(0 = Incomplete, 1 = Unverified, 2 = Complete). "
                               "Only complete records are used; complete or verify the record in REDCap."))
    stamps = [f"{headers[j][: -len('_complete')]}_timestamp" for j in holding]
    ts = next((h for h in stamps if h in frame.columns), ts)  # the submission time of the questionnaire itself
    if len(ends) > len(holding):
        others = ", ".join(repr(headers[e][: -len("_complete")]) for e in ends if e not in holding)
        notes.append(f"completion is read from {', '.join(repr(headers[j]) for j in holding)}; other instruments ({others}) are not checked")
    personal = tuple(h for h in frame.columns if header_key(h) in {"redcapsurveyidentifier"})
    return Converted(_with_frame(raw, frame), REDCAP, ts, None, personal, (), excluded, tuple(notes), tuple(consumed), tuple(completion))


_SM_META = {"respondentid", "collectorid", "startdate", "enddate", "ipaddress", "emailaddress", "firstname", "lastname", "customdata1", "customdata"}
_SM_RESPONSE = {"response", "openendedresponse", ""}


def _surveymonkey(raw: RawSurvey, targets: _Targets, sub_headers: Sequence[Sequence[str]] = (), mapped_items: Iterable[int] = ()) -> Converted:
    """SurveyMonkey: a question's text heads its first column only; header row 2 labels each
    column (matrix rows, checkbox options, or "Response"). A ticked checkbox holds the option's text."""
    frame = raw.frame
    labels = sub_headers[0] if sub_headers else [""] * frame.shape[1]
    renames: dict[int, str] = {}
    options: dict[int, str] = {}
    question = ""
    for j, h in enumerate(frame.columns):
        question = h or question  # a blank header continues the question before it
        if header_key(h) in _SM_META:
            continue
        label = labels[j]
        if header_key(label).startswith("other("):
            continue  # "Other (please specify)": free text beside a choice
        hit = targets.find(question) if header_key(label) in _SM_RESPONSE else targets.find(label)
        if hit:
            renames[j] = hit
            if hit in targets.tasks:
                options[j] = label
    frame = _rename(frame, renames).copy(deep=False)
    for j, label in options.items():
        # The option's own text when ticked, empty when not.
        values = frame.iloc[:, j]
        codes, uniques = factorize(values)
        out = np.asarray(["1" if _text_key(str(u)) == _text_key(label) else "0" if not str(u).strip() else str(u) for u in uniques] or [""], dtype=object)
        frame.isetitem(j, pd.Series(out[codes], index=frame.index, dtype=object))
    personal = tuple(h for h in frame.columns if header_key(h) in {"ipaddress", "emailaddress", "firstname", "lastname"})
    ts = _timestamp(frame, "End Date")
    notes = ("header row 2 labels the matrix rows and options",) if sub_headers else ()
    return Converted(_with_frame(raw, frame), SURVEYMONKEY, ts, None, personal, notes=notes)


# --------------------------------------------------------------------------- mapping file


def _apply_mapping(
    conv: Converted, mapping: ColumnMapping, programme: Programme, targets: _Targets, headers: Sequence[str], sub_headers: Sequence[Sequence[str]]
) -> Converted:
    """Apply a mapping file to a converted export. Columns are addressed in the export as read
    (``headers``, ``sub_headers``), by position, so a layout's renaming never hides them."""

    raw = conv.raw
    frame = raw.frame
    n = len(frame)
    cols = programme.columns

    def at(src: Source, key: str) -> int:
        return _locate(src, headers, sub_headers, raw.path, mapping, key)

    renames = {at(srcs[0], f"columns.{t}"): t for t, srcs in mapping.columns.items() if len(srcs) == 1}
    combined = {t: [at(src, f"columns.{t}") for src in srcs] for t, srcs in mapping.columns.items() if len(srcs) > 1}
    # Columns made by the mapping (constants, items and tasks not asked, generated ids).
    made: dict[str, np.ndarray] = {}
    for target, value in mapping.constants.items():
        made[target] = np.full(n, value, dtype=object)
    for ident in mapping.not_asked:
        made[ident] = np.full(n, "0" if ident in targets.tasks else "", dtype=object)
    if mapping.generate_ids is not None:
        made[cols.id] = (mapping.generate_ids + pd.Series(np.arange(1, n + 1)).astype(str)).to_numpy(dtype=object)
    # A column already named like a mapped or made target, but not the mapped one, would compete with it.
    current = list(frame.columns)
    bad = list(conv.bad)
    for target, positions in combined.items():
        made[target], conflicts = _one_of(frame, positions, target)
        bad.append(conflicts)
    aside = {j: h + " (not used: mapped elsewhere)" for j, h in enumerate(current) if h in mapping.columns and j not in renames}
    aside |= {j: h + " (not used: set by the mapping file)" for j, h in enumerate(current) if h in made and j not in renames}
    aside |= {j: current[j] + f" (combined into {t})" for t, positions in combined.items() for j in positions}
    frame = _rename(frame, aside | renames).copy(deep=False)
    for target, values in made.items():
        frame[target] = values
    notes = list(conv.notes) + [f"columns mapped by {mapping.path}"]
    notes += _not_asked_notes(mapping, programme)
    if mapping.generate_ids is not None:
        notes.append(f"person ids made from the row number: {mapping.generate_ids}1 … {mapping.generate_ids}{n} (the same for the same file)")
    if mapping.constants:
        notes.append("the same for everyone (mapping file): " + ", ".join(f"{k} = {v!r}" for k, v in mapping.constants.items()))

    decoders: dict[str, Callable[[str], tuple[float, str | None]]] = {}
    for item in programme.items:
        scale = mapping.scales.get(item.id, mapping.scale)
        if not scale.active or item.id not in frame.columns or item.id in mapping.not_asked or not isinstance(frame[item.id], pd.Series):
            continue
        j = list(frame.columns).index(item.id)
        header = headers[j] if j < len(headers) and headers[j] else item.id  # as the export names it (columns keep their places)
        _check_range(frame[item.id], scale, item.id, header, raw.path, mapping)
        decoders[item.id] = scale_decoder(programme, scale)
    for target, table in mapping.values.items():
        if target in frame.columns:
            frame[target] = _map_values(frame[target], table)
    for multi in mapping.multi:
        j = at(Source(multi.column), "multi.column")
        values = frame.iloc[:, j]
        target = multi.target
        options = {_text_key(k): v for k, v in multi.options.items()} or (targets.task_options if target == "tasks" else targets.format_options)
        if target == "tasks":
            ticked, pos, vals, reasons = _split_column(values, options, multi.separator)
            for task in programme.tasks:
                if task.id not in made:  # a task declared a constant or not asked keeps that value
                    frame[task.id] = np.where(ticked.get(task.id, np.zeros(len(frame), bool)), "1", "0").astype(object)
            bad.append((pos, multi.column, vals, reasons))
        else:
            frame[programme.columns.formats] = _joined(values, options, multi.separator, programme)
    ts = conv.timestamp
    if mapping.timestamp:
        ts = frame.columns[at(Source(mapping.timestamp), "survey.timestamp")]
    personal = tuple(conv.personal) + tuple(frame.columns[at(Source(h), "survey.personal")] for h in mapping.personal)
    completion, excluded = conv.completion, conv.excluded
    if mapping.complete is not None:
        # The mapping's completion filter replaces the layout's own.
        j = at(mapping.complete.source, "survey.complete")
        status = frame.iloc[:, j]
        codes, uniques = factorize(status)
        accepted = {normalise(v) for v in mapping.complete.values}
        no = np.asarray([normalise(str(u)) not in accepted for u in uniques] or [False], dtype=bool)
        excluded = np.flatnonzero(no[codes]) if len(uniques) else np.zeros(0, np.int64)
        shown = ", ".join(repr(v) for v in mapping.complete.values)
        completion = ((excluded, headers[j] or str(mapping.complete.source), status.iloc[excluded].astype(object).to_numpy(dtype=object),
                       f"Not a complete response: the mapping file accepts only {shown} in this column (survey.complete). "
                       "Incomplete responses are not used; export complete responses only, or fix survey.complete."),)
        notes.append(f"complete responses: {headers[j] or str(mapping.complete.source)!r} is one of {shown}")
    if conv.layout == PLAIN:
        layout, source = mapping.tool, "mapping"
    else:
        layout, source = f"{conv.layout}, with mapping file", conv.layout_source
    return replace(
        conv,
        raw=_with_frame(raw, frame),
        layout=layout,
        layout_source=source,
        timestamp=ts,
        timestamp_format=mapping.timestamp_format or conv.timestamp_format,
        personal=personal,
        bad=tuple(bad),
        excluded=excluded,
        completion=completion,
        notes=tuple(notes),
        consumed=conv.consumed + tuple(m.column for m in mapping.multi) + tuple(aside[j] for positions in combined.values() for j in positions),
        decoders=decoders,
    )


def _one_of(frame: pd.DataFrame, positions: list[int], target: str) -> tuple[np.ndarray, tuple[np.ndarray, str, np.ndarray, np.ndarray]]:
    """One column from several that ask the same question: each row's answer from the column it is in.

    A row with different answers in two of them is a cell error (never a guess).
    """
    texts = np.column_stack([frame.iloc[:, j].astype(str).str.strip().to_numpy(dtype=object) for j in positions])
    filled = texts != ""
    first = filled.argmax(axis=1)
    values = texts[np.arange(len(texts)), first]
    differ = (filled & (texts != values[:, None])).any(axis=1)
    pos = np.flatnonzero(differ)
    headers = [str(frame.columns[j]) for j in positions]
    shown = np.asarray([" | ".join(f"{h}: {v}" for h, v, f in zip(headers, row, on) if f) for row, on in zip(texts[pos], filled[pos])], dtype=object)
    reason = (f"Answered differently in the columns that the mapping file combines into {target!r}; "
              "each person must answer in one of them. Correct or clear one of the answers.")
    return values, (pos, target, shown, np.full(len(pos), reason, dtype=object))


def _not_asked_notes(mapping: ColumnMapping, programme: Programme) -> list[str]:
    """What the items and tasks not asked mean for scoring, domain by domain (the minimum-answered rule still applies)."""
    from math import ceil

    notes = []
    skipped = set(mapping.not_asked)
    for domain in programme.domains:
        items = programme.items_of(domain.id)
        gone = [i.id for i in items if i.id in skipped]
        if not gone:
            continue
        asked, need = len(items) - len(gone), ceil(programme.min_answered_share * len(items) - 1e-9)
        name = domain.names.get("en", domain.id)
        if asked < need:
            notes.append(f"{name}: {', '.join(gone)} not asked; only {asked} of {len(items)} items asked and a score needs {need} answered, "
                         "so no one gets a score there (everyone is flagged for reassessment)")
        else:
            notes.append(f"{name}: {', '.join(gone)} not asked; scored from the {asked} items asked, of which {need} must be answered")
    tasks = [t for t in mapping.not_asked if t in {t.id for t in programme.tasks}]
    if tasks:
        notes.append(f"tasks not asked, counted as no for everyone: {', '.join(tasks)}")
    return notes


def _check_range(values: pd.Series, scale: ColumnScale, item: str, header: str, path: str, mapping: ColumnMapping) -> None:
    """A rescaled column's numeric codes must lie in its `from` range: otherwise the range, not the cell, is wrong."""
    from .errors import SurveyError

    if scale.source_range is None:
        return
    a, b = scale.source_range
    codes, uniques = factorize(values)
    missing = {normalise(m) for m in scale.missing}
    for k, u in enumerate(uniques):
        t = normalise(str(u))
        if t in scale.codes or t in missing:
            continue
        m = re.fullmatch(r"[+-]?\d+(?:[.,]0+)?", t)
        if m and not a <= float(t.replace(",", ".")) <= b:
            raise SurveyError(
                Problem(
                    path,
                    f"holds the answer {str(u).strip()!r} in the column mapped to {item!r}, outside the range {a}–{b} that the mapping file "
                    f"{mapping.path} gives at {scale.key}.from.",
                    row=int(np.flatnonzero(codes == k)[0]) + 1,
                    column=header,
                    value=str(u).strip(),
                    hint="Set from to the tool's lowest and highest answer code (e.g. [1, 7] or [0, 10]), or list codes such as 99 in missing.",
                )
            )


# --------------------------------------------------------------------------- timestamps
