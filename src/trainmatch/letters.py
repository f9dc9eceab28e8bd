"""Per-person training plans: one printable HTML letter per person, in their language.

Each plan reads like a letter from the organisation: why this training (the
services and tasks the person does), their current and required level per
domain, the ordered steps with format, hours and suggested weeks (and, for
group formats, the training group and site), what was deferred and why, where
to get support and how to give feedback. Finnish, Swedish and English text is
built in; names of levels, domains, tasks, roles and formats come from the
programme in the person's language.

Pure: :func:`render_plans` yields ``(person_id, html)`` pairs and writes no
files. It is built for national-scale runs: the template is compiled once per
language with its fixed texts filled in, steps and deferred items are indexed
by person once (one sort, then slices), people are converted to Python values
in blocks so memory stays bounded, and repeated texts (level tables, reasons,
week spans) are prepared once and reused.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence

from .programme import Programme

if TYPE_CHECKING:  # numpy, pandas and jinja2 are imported inside the functions that need them
    import jinja2
    import numpy as np
    import pandas as pd

    from .catalogue import Catalogue

PLAN_TEMPLATE = "plan.html.j2"

LANGUAGES = ("en", "fi", "sv")


def _load_texts() -> dict[str, dict[str, str]]:
    """The letter's texts per language, from data/letters/<lang>.toml (``{…}`` fields are filled in by
    :class:`_Language` once per run, or per person for hours and weeks; the rest is filled into the
    template at compile time)."""
    import tomllib
    from importlib.resources import files

    folder = files("trainmatch") / "data" / "letters"
    return {lang: tomllib.loads((folder / f"{lang}.toml").read_text(encoding="utf-8")) for lang in LANGUAGES}


TEXT: Mapping[str, Mapping[str, str]] = _load_texts()

_LINK = re.compile(r"(?:https?://|mailto:)\S+$", re.IGNORECASE)
_EMAIL = re.compile(r"[^@\s:/<>\"']+@[^@\s:/<>\"']+\.[A-Za-z]{2,}$")
_SAFE_ID = re.compile(r"[a-z0-9_\-]{1,100}")
_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9_\-]+")

# The catalogue objective a person with a borderline level is pointed to, to check their level.
SELF_CHECK_OBJECTIVE = "self_assessment"

# The facts each reason sentence is rendered from, in the order _Language.reason / deferred_reason take them.
_STEP_REASON = ("domain", "level", "required", "rule_ids", "prerequisite_of", "kind", "round_note")
_DEFERRED_REASON = ("deferred_because", "hours_left", "blocked_by", "kind", "domain", "level", "required")
# A plan renders each reason from its facts (trainmatch.paths.REASON_COLUMNS), never from the English text.
STEP_COLUMNS = ("step", "objective", "module", "title", "format", "hours", "group", "reason", "rule_ids",
                "kind", "domain", "level", "required", "prerequisite_of", "start", "end", "due",
                "round_note")  # a follow-up round: 1 deferred last round, 2 rated low, 3 both (0 when absent)
DEFERRED_COLUMNS = ("objective", "module", "title", "hours", "kind", "domain", "level", "required",
                    "deferred_because", "hours_left", "blocked_by")


# --------------------------------------------------------------------------- file names


def plan_filename(person_id: object) -> str:
    """A safe, unique, deterministic file name for one person's plan.

    Ids made only of lowercase ASCII letters, digits, ``_`` and ``-`` (at most
    100) give ``plan-<id>.html``. Any other id (path separators, dots, spaces,
    non-ASCII or upper-case letters, empty or very long) gives
    ``plan-<cleaned>~<hash>.html``, where the hash is of the exact id: no two
    ids share a name, even on case-insensitive file systems, and no name can
    leave its folder or be a reserved device name.
    """
    text = str(person_id)
    if _SAFE_ID.fullmatch(text):
        return f"plan-{text}.html"
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    stem = _UNSAFE_CHARS.sub("_", text).strip("_")[:60]
    return f"plan-{stem}~{digest}.html"


# --------------------------------------------------------------------------- helpers


@functools.lru_cache(maxsize=None)
def template_environment() -> "jinja2.Environment":
    """The jinja2 environment for trainmatch's packaged templates (autoescape on, compiled once)."""
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("trainmatch", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
        auto_reload=False,
    )


_TEXT_EXPR = re.compile(r"\{\{\s*t\.(\w+)\s*\}\}")


@functools.lru_cache(maxsize=None)
def plan_template(lang: str) -> "jinja2.Template":
    """The plan template with the fixed texts of ``lang`` filled in (escaped) at compile time."""
    from markupsafe import escape

    env = template_environment()
    source, _, _ = env.loader.get_source(env, PLAN_TEMPLATE)  # type: ignore[union-attr]
    texts = TEXT[lang]

    def bake(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in texts:
            return match.group(0)
        value = str(escape(texts[key]))
        if any(tok in value for tok in ("{{", "}}", "{%", "%}", "{#", "#}")):
            raise ValueError(f"Text {lang}.{key} must not contain template delimiters.")
        return value

    return env.from_string(_TEXT_EXPR.sub(bake, source))


def feedback_link(address: str) -> str:
    """A link target for a feedback address: web and mail links as given, a bare e-mail address as
    ``mailto:``; anything else (``javascript:`` …) gives '' and is shown as plain text."""
    if _LINK.match(address):
        return address
    if _EMAIL.match(address):
        return "mailto:" + address
    return ""


def format_hours(hours: float, lang: str) -> str:
    """Hours as short text: ``1.5`` (en) or ``1,5`` (fi, sv); whole numbers without decimals."""
    if hours is None or (isinstance(hours, float) and math.isnan(hours)):
        return "–"
    text = f"{round(float(hours), 2):g}"
    return text.replace(".", ",") if lang in ("fi", "sv") else text


@functools.lru_cache(maxsize=4096)
def _hours_text(hours: float, lang: str) -> str:
    return format_hours(hours, lang)


def week_spans(hours: Sequence[float], weeks: int) -> list[tuple[int, int]]:
    """Spread consecutive steps over ``weeks`` in proportion to their hours: (first, last) week of each step.

    Steps follow each other without overlapping where the weeks allow; short
    steps share a week when there are more steps than weeks.
    """
    total = math.fsum(h for h in hours if h == h and h > 0)
    if total <= 0 or weeks < 1:
        return [(1, max(weeks, 1))] * len(hours)
    spans = []
    done = 0.0
    last = 0
    for h in hours:
        start = min(weeks, int(math.floor(done / total * weeks + 1e-9)) + 1)
        done += h if h == h and h > 0 else 0.0
        end = max(start, min(weeks, int(math.ceil(done / total * weeks - 1e-9))))
        if last < end:
            start = max(start, last + 1)
        last = max(last, end)
        spans.append((start, end))
    return spans


def _person_language(value: object, programme: Programme, default: str) -> str:
    lang = value if isinstance(value, str) else ""
    if lang in TEXT and lang in programme.languages:
        return lang
    return default


class _PersonIndex:
    """Rows of a steps-like frame grouped by person once: sorted by (person, ``order_by``), sliced per block of people."""

    def __init__(self, frame: "pd.DataFrame", codes: "np.ndarray", person_codes: "np.ndarray", n_codes: int, order_by: str | None) -> None:
        import numpy as np

        self.frame = frame
        keys = (codes,) if order_by is None or order_by not in frame else (frame[order_by].to_numpy(dtype=np.float64, na_value=np.inf), codes)
        self.order = np.lexsort(keys) if len(codes) else np.zeros(0, dtype=np.int64)
        self.counts = np.bincount(codes, minlength=n_codes)
        self.starts = np.cumsum(self.counts) - self.counts
        self.person_codes = person_codes

    def block(self, b0: int, b1: int) -> tuple["pd.DataFrame", list[int], list[int]]:
        """Rows of people ``b0:b1`` (in person order) and each person's local (start, stop)."""
        import numpy as np

        pc = self.person_codes[b0:b1]
        count = self.counts[pc]
        stop = np.cumsum(count)
        start = stop - count
        positions = np.repeat(self.starts[pc] - start, count) + np.arange(int(stop[-1]) if len(stop) else 0)
        return self.frame.iloc[self.order[positions]], start.tolist(), stop.tolist()


def _text_list(series: "pd.Series") -> list[str]:
    return series.astype(object).where(series.notna(), "").astype(str).tolist()


def _int_list(series: "pd.Series") -> list[int]:
    import numpy as np

    return series.astype("Float64").fillna(0).to_numpy(dtype=np.float64).astype(np.int64).tolist()


def _columns(
    frame: "pd.DataFrame", names: Sequence[str], numeric: Sequence[str] = (), integer: Sequence[str] = ()
) -> dict[str, list[Any]]:
    """Columns of ``frame`` as Python lists (text '' for missing, hours as float, levels as int; absent → defaults)."""
    import numpy as np

    out: dict[str, list[Any]] = {}
    for c in names:
        if c not in frame:
            out[c] = [math.nan if c in numeric else 0 if c in integer else ""] * len(frame)
        elif c in numeric:
            out[c] = frame[c].to_numpy(dtype=np.float64, na_value=np.nan).tolist()
        elif c in integer:
            out[c] = _int_list(frame[c])
        else:
            out[c] = _text_list(frame[c])
    return out


class _Language:
    """Names and texts of one language, looked up once per run."""

    def __init__(self, lang: str, programme: Programme, organisation: str, support_contact: str, plan_weeks: int) -> None:
        t = dict(TEXT[lang])
        self.lang = lang
        self.t = t
        self.organisation = organisation or t["organisation"]
        self.intro = t["intro"].format(organisation=self.organisation)
        self.support = t["support"].format(contact=support_contact or t["support_default"])
        self.period = t["weeks_n"].format(n=plan_weeks)
        # ``hours`` is filled in per person; braces in the texts above are data, not fields.
        self.plan_intro = t["plan_intro"].replace("{weeks}", str(plan_weeks))
        self.footer = t["footer"].format(programme=f"{programme.name} {programme.version}".strip())
        self.levels = [programme.level_name(i, lang) for i in range(len(programme.levels) + 1)]
        self.domains = {d.id: d.names.get(lang) or d.id for d in programme.domains}
        self.domain_list = [self.domains[d] for d in programme.domain_ids]
        self.tasks = [t_.names.get(lang) or t_.id for t_ in programme.tasks]
        self.formats = {f.id: f.names.get(lang) or f.id for f in programme.formats}
        self.roles = {r.id: r.names.get(lang) or r.id for r in programme.roles}
        self.level_index = {lv.id: i + 1 for i, lv in enumerate(programme.levels)}

    def level(self, index: int) -> str:
        return self.levels[index] if 0 <= index < len(self.levels) else str(index)

    def level_rows(self, n_levels: int) -> list[list[list[list[tuple[str, ...]]]]]:
        """Every possible row of the current-vs-required table, ``[domain][level][required][missing]`` →
        (domain, current, required, status, css class)."""
        t = self.t
        table = []
        for name in self.domain_list:
            by_level = []
            for lv in range(n_levels + 1):
                by_required = []
                for rq in range(n_levels + 1):
                    cells = []
                    for miss in (False, True):
                        if miss:
                            status, cls = t["status_missing"], "missing"
                        elif rq <= 0:
                            status, cls = t["status_none"], "none"
                        elif lv >= rq:
                            status, cls = t["status_ok"], "ok"
                        else:
                            status, cls = t["status_gap"], "gap"
                        current = t["not_assessed"] if miss or lv <= 0 else self.level(lv)
                        cells.append((name, current, self.level(rq), status, cls))
                    by_required.append(cells)
                by_level.append(by_required)
            table.append(by_level)
        return table

    def reason(self, domain: str, level: int, required: int, rule_ids: str = "", before: str = "", kind: str = "need") -> str:
        """Why a step is in the plan, in this language: the domain with the person's level and the level
        required, then the rules that asked for it, or the training it prepares for (``before``, a title);
        task-specific practice on top of the area's own training says so (``kind`` task_practice)."""
        t = self.t
        if domain not in self.domains:
            return t["prerequisite_for"].format(title=before) if before else ""
        current = self.level(level) if level > 0 else t["not_assessed"]
        why = t["reason"].format(domain=self.domains[domain], current=current, required=self.level(required))
        if kind == "task_practice":
            why += "; " + t["task_practice"]
        if before:
            why += " (" + t["prerequisite_for"].format(title=before) + ")"
        elif rule_ids:
            why += " (" + t["rule"].format(rule=rule_ids.replace(";", ", ")) + ")"
        return why

    def deferred_reason(self, because: str, hours_left: float, blocked_by: str, kind: str, domain: str,
                        level: int, required: int) -> str:
        """Why an item was deferred, in this language: the time left, or the deferred prerequisite
        (``blocked_by``, a title), then the person's own need behind it."""
        t = self.t
        if because == "prerequisite":
            text = t["deferred_prerequisite"].format(title=blocked_by)
        else:
            text = t["deferred_budget"].format(hours=format_hours(hours_left, self.lang))
        if kind in ("need", "task_practice") and domain in self.domains:
            text += " " + self.reason(domain, level, required, kind=kind)
        return text

    def date(self, iso: str) -> str:
        """A date 'YYYY-MM-DD' as this language writes it."""
        return self.t["date"].format(y=int(iso[0:4]), m=int(iso[5:7]), d=int(iso[8:10]))

    def when(self, start: str, end: str, due: str) -> str:
        """A session's date and times ('YYYY-MM-DD HH:MM' each), or a self-paced step's due date; '' without."""
        if start:
            return self.t["session_when"].format(date=self.date(start), start=start[11:16], end=end[11:16])
        return self.t["due"].format(date=self.date(due)) if due else ""

    def where(self, group: str, site: str, members: int) -> str:
        """Where and with whom a group session is held."""
        t = self.t
        place = ", ".join(x for x in (site, t["members"].format(n=members) if members else "") if x)
        text = t["group_session"].format(group=group, where=place)
        return text if place else text.replace(" ()", "")


# --------------------------------------------------------------------------- plans


def render_plans(
    people: "pd.DataFrame",
    steps: "pd.DataFrame",
    deferred: "pd.DataFrame",
    programme: Programme,
    *,
    default_lang: str = "en",
    organisation: str = "",
    support_contact: str = "",
    feedback_url: str | None = None,
    plan_weeks: int = 12,
    groups: "pd.DataFrame | None" = None,
    catalogue: "Catalogue | None" = None,
    block_size: int = 20_000,
    progress: "pd.DataFrame | None" = None,
) -> Iterator[tuple[str, str]]:
    """Yield ``(person_id, html)``: one printable plan per person, in input order.

    The language is ``people.language`` when it is one of fi/sv/en and in the
    programme, else ``default_lang``. Empty ``organisation`` and
    ``support_contact`` become a neutral phrase in the person's language.
    ``plan_weeks`` is the plan period over which steps are spread. With
    ``groups`` (the group table), group sessions name the group's site and
    size; with ``catalogue``, module titles are shown in the person's language
    (else the ``title`` column as given). ``progress`` (a follow-up round: person_id,
    domain, level_before, level_after per domain whose level rose) opens the letter
    with the person's progress since the last survey. People are processed in blocks of
    ``block_size``, so memory stays bounded on national-scale runs.
    """
    writer = _PlanWriter(
        people, steps, deferred, programme, default_lang=default_lang, organisation=organisation,
        support_contact=support_contact, feedback_url=feedback_url, plan_weeks=plan_weeks, groups=groups, catalogue=catalogue,
        progress=progress,
    )
    for b0 in range(0, len(people), max(1, block_size)):
        yield from writer.block(b0, min(len(people), b0 + max(1, block_size)))


class _PlanWriter:
    """Everything shared by all plans of a run: templates, names, indexes of steps and deferred items, caches."""

    def __init__(
        self,
        people: "pd.DataFrame",
        steps: "pd.DataFrame",
        deferred: "pd.DataFrame",
        programme: Programme,
        *,
        default_lang: str,
        organisation: str,
        support_contact: str,
        feedback_url: str | None,
        plan_weeks: int,
        groups: "pd.DataFrame | None",
        catalogue: "Catalogue | None",
        progress: "pd.DataFrame | None" = None,
    ) -> None:
        import numpy as np
        import pandas as pd

        self.people = people
        self.programme = programme
        self.default_lang = default_lang if default_lang in TEXT else "en"
        self.plan_weeks = plan_weeks
        self.templates = {lang: plan_template(lang) for lang in TEXT}
        self.langs = {lang: _Language(lang, programme, organisation, support_contact, plan_weeks) for lang in TEXT}
        self.titles: dict[str, Mapping[str, str]] = {m.id: m.titles for m in catalogue.modules} if catalogue is not None else {}
        self.objective_titles: dict[str, Mapping[str, str]] = {}
        for m in catalogue.modules if catalogue is not None else ():
            self.objective_titles.setdefault(m.objective, m.titles)
        # the role of each support person (a few per group), for the letters that name them
        self.role_of: dict[str, str] = {}
        if "supports" in people.columns and "role" in people.columns:
            helpers = people[people["supports"].astype(str) != ""]
            self.role_of = dict(zip(_text_list(helpers["person_id"]), _text_list(helpers["role"])))
        self.group_info: dict[str, tuple[str, int]] = {}
        if groups is not None and len(groups):
            self.group_info = dict(zip(_text_list(groups["group"]), zip(_text_list(groups["site"]), _int_list(groups["members"]))))
        # Only web and mail addresses become links; anything else is shown as text.
        self.feedback_text = (feedback_url or "").strip()
        self.feedback_link = feedback_link(self.feedback_text)
        self.n_levels = len(programme.levels)
        self.task_cols = [f"task_{t}" for t in programme.task_ids]
        self.level_rows = {lang: L.level_rows(self.n_levels) for lang, L in self.langs.items()}

        # One code per distinct person id across the three frames (vectorised: no Python strings).
        n, m, k = len(people), len(steps), len(deferred)
        frames = (people, steps, deferred) if progress is None else (people, steps, deferred, progress)
        ids = pd.concat([f["person_id"].astype("str") for f in frames], ignore_index=True)
        codes, uniques = pd.factorize(ids)
        codes = np.asarray(codes, dtype=np.int64)
        self.steps = _PersonIndex(steps, codes[n : n + m], codes[:n], len(uniques), "step")
        self.deferred = _PersonIndex(deferred, codes[n + m : n + m + k], codes[:n], len(uniques), None)
        self.progress = None if progress is None else _PersonIndex(progress, codes[n + m + k :], codes[:n], len(uniques), None)

        # Caches of per-language text, shared by all blocks (bounded: few distinct keys).
        self.lang_of: dict[str, str] = {}
        self.reasons: dict[tuple, str] = {}
        self.wheres: dict[tuple, str] = {}
        self.spans: dict[tuple, list[str]] = {}
        self.deferred_reasons: dict[tuple, str] = {}

    def block(self, b0: int, b1: int) -> Iterator[tuple[str, str]]:
        """Plans of people ``b0:b1``."""
        import numpy as np

        programme, domains, n_levels = self.programme, self.programme.domain_ids, self.n_levels
        P = self.people.iloc[b0:b1]
        n = len(P)
        st, step_start, step_stop = self.steps.block(b0, b1)
        sc = _columns(st, STEP_COLUMNS, numeric=("hours",), integer=("step", "level", "required", "round_note"))
        df, def_start, def_stop = self.deferred.block(b0, b1)
        dc = _columns(df, DEFERRED_COLUMNS, numeric=("hours", "hours_left"), integer=("level", "required"))

        ids = _text_list(P["person_id"])
        language = _text_list(P["language"]) if "language" in P else [""] * n
        role = _text_list(P["role"]) if "role" in P else [""] * n
        site = _text_list(P["site"]) if "site" in P else [""] * n
        group = _text_list(P["group"]) if "group" in P else [""] * n
        support_person = _text_list(P["support_person"]) if "support_person" in P else [""] * n
        supports = _text_list(P["supports"]) if "supports" in P else [""] * n
        hours = P["hours"].to_numpy(dtype=np.float64, na_value=np.nan).tolist() if "hours" in P else [math.nan] * n
        task_cols = self.task_cols
        tasks = P[task_cols].to_numpy(dtype=bool).tolist() if all(c in P for c in task_cols) else [[False] * len(task_cols)] * n

        def matrix(prefix: str) -> list[list[int]]:
            cols = [P[f"{prefix}_{d}"].astype("Float64").fillna(0).to_numpy(dtype=np.float64) for d in domains]
            return np.clip(np.column_stack(cols), 0, n_levels).astype(np.int64).tolist()

        level, required = matrix("level"), matrix("required")
        missing = np.column_stack([P[f"missing_{d}"].to_numpy(dtype=bool) for d in domains]).tolist()
        uncertain = (np.column_stack([P[f"uncertain_{d}"].to_numpy(dtype=bool) for d in domains]).tolist()
                     if all(f"uncertain_{d}" in P for d in domains) else [[False] * len(domains)] * n)
        if self.progress is not None:
            pr, pr_start, pr_stop = self.progress.block(b0, b1)
            pc = _columns(pr, ("domain", "level_before", "level_after"), integer=("level_before", "level_after"))
        lang_of = self.lang_of
        for code in set(language) - lang_of.keys():
            lang_of[code] = _person_language(code, programme, self.default_lang)

        for i in range(n):
            lang = lang_of[language[i]]
            L = self.langs[lang]
            t = L.t
            # Why: the person's tasks and the current-vs-required table (rows prepared per language).
            cells = self.level_rows[lang]
            rows = [cells[j][lv][rq][ms] for j, (lv, rq, ms) in enumerate(zip(level[i], required[i], missing[i]))]
            reassess = ""
            if True in missing[i]:
                reassess = t["reassess"].format(domains=", ".join(L.domain_list[j] for j, ms in enumerate(missing[i]) if ms))
            borderline = self._borderline(L, uncertain[i]) if True in uncertain[i] else ""
            s0, s1 = step_start[i], step_stop[i]
            my_steps, planned = self._steps(L, sc, s0, s1, site[i])
            my_deferred = [  # (title, hours, reason)
                (self._title(dc["module"][k], dc["title"][k], lang) or dc["objective"][k], _hours_text(dc["hours"][k], lang), self._deferred_reason(L, dc, k))
                for k in range(def_start[i], def_stop[i])
            ]
            given = hours[i] == hours[i]
            available = _hours_text(hours[i] if given else programme.default_hours, lang)
            budget = (t["budget_given"] if given else t["budget_default"]).format(available=available)
            total = _hours_text(planned, lang)
            html = self.templates[lang].render(
                lang=lang,
                t=t,
                organisation=L.organisation,
                intro=L.intro,
                progress=self._progress(L, pc, pr_start[i], pr_stop[i]) if self.progress is not None else "",
                person_id=ids[i],
                role=L.roles.get(role[i], role[i]),
                site=site[i],
                group=group[i],
                period=L.period,
                tasks=[name for name, does in zip(L.tasks, tasks[i]) if does],
                domains=rows,
                # a gap or a missing score with nothing planned: the letter must not say all is met
                open_gaps=any(ms or lv < rq for lv, rq, ms in zip(level[i], required[i], missing[i])),
                reassess=reassess,
                borderline=borderline,
                steps=my_steps,
                plan_intro=L.plan_intro.format(hours=total) + " " + budget,
                total_hours=total,
                deferred=my_deferred,
                support=L.support,
                peer_support=self._peer_support(L, support_person[i], supports[i]),
                feedback_link=self.feedback_link,
                feedback_text=self.feedback_text,
                footer=L.footer,
            )
            yield ids[i], html

    def _progress(self, L: _Language, pc: Mapping[str, list[Any]], k0: int, k1: int) -> str:
        """The opening sentence of a follow-up round's letter: the domains whose level rose since the last survey."""
        if k0 == k1:
            return ""
        t = L.t
        items = [(L.domains.get(pc["domain"][k], pc["domain"][k]), L.level(pc["level_before"][k]), L.level(pc["level_after"][k]))
                 for k in range(k0, k1)]
        if len(items) == 1:
            domain, before, after = items[0]
            return t["progress_one"].format(domain=domain, before=before, after=after)
        return t["progress_many"].format(changes=", ".join(t["progress_item"].format(domain=d, before=b, after=a) for d, b, a in items))

    def _peer_support(self, L: _Language, person: str, groups: str) -> str:
        """Who the person's support person is (by id and role), and which groups they support themselves."""
        parts = []
        if person:
            role = self.role_of.get(person, "")
            parts.append(L.t["support_person"].format(person=person, role=L.roles.get(role, role)))
        if groups:
            parts.append(L.t["you_support"].format(groups=", ".join(groups.split(";"))))
        return " ".join(parts)

    def _borderline(self, L: _Language, uncertain: list[bool]) -> str:
        """The borderline note: which levels could be one higher or lower, and the self-check module if the catalogue has one."""
        text = L.t["borderline"].format(domains=", ".join(L.domain_list[j] for j, u in enumerate(uncertain) if u))
        if SELF_CHECK_OBJECTIVE in self.objective_titles:
            text += " " + L.t["borderline_check"].format(module=self._objective_title(SELF_CHECK_OBJECTIVE, L.lang))
        return text

    def _deferred_reason(self, L: _Language, dc: Mapping[str, list[Any]], k: int) -> str:
        key = (L.lang, *(dc[c][k] for c in _DEFERRED_REASON))
        text = self.deferred_reasons.get(key)
        if text is None:
            if len(self.deferred_reasons) > 100_000:  # bounded memory on national-scale runs
                self.deferred_reasons.clear()
            because, hours_left, blocked_by, kind, domain, level, required = key[1:]
            blocked = self._objective_title(blocked_by, L.lang) if blocked_by else ""
            text = self.deferred_reasons[key] = L.deferred_reason(because, hours_left, blocked, kind, domain, level, required)
        return text

    def _objective_title(self, objective: str, lang: str) -> str:
        """An objective's name in ``lang``: its first module's title without the format in brackets."""
        titles = self.objective_titles.get(objective, {})
        title = titles.get(lang) or titles.get("en") or ""
        return re.sub(r"\s*\([^()]*\)$", "", title) or objective

    def _title(self, module: str, title: str, lang: str) -> str:
        if module in self.titles:
            title = self.titles[module].get(lang) or title
        return title or module

    def _steps(self, L: _Language, sc: Mapping[str, list[Any]], s0: int, s1: int, site: str) -> tuple[list[tuple[str, ...]], float]:
        """One person's steps (rows ``s0:s1`` of the block), spread over the plan period by their hours:
        (step, title, where, format, hours, weeks, why, raw reason) each, and the total hours."""
        lang, t = L.lang, L.t
        step_hours = tuple(sc["hours"][s0:s1])
        when = self.spans.get((lang, step_hours))
        if when is None:
            if len(self.spans) > 100_000:  # bounded memory on national-scale runs
                self.spans.clear()
            when = self.spans[(lang, step_hours)] = [
                t["week"].format(a=a) if a == b else t["weeks"].format(a=a, b=b) for a, b in week_spans(step_hours, self.plan_weeks)
            ]
        out = []
        for k in range(s0, s1):
            rkey = (lang, *(sc[c][k] for c in _STEP_REASON))
            why = self.reasons.get(rkey)
            if why is None:
                if len(self.reasons) > 100_000:
                    self.reasons.clear()
                domain, level, required, rule_ids, before, kind, note = rkey[1:]
                why = L.reason(domain, level, required, rule_ids, self._objective_title(before, lang) if before else "", kind)
                if note:  # a follow-up round: why the step is where it is, or in this format
                    why += "".join(f" ({L.t[key]})" for bit, key in ((1, "carried_over"), (2, "demoted")) if note & bit)
                self.reasons[rkey] = why
            reason = sc["reason"][k]
            g = sc["group"][k]
            where = ""
            if g:
                wkey = (lang, g, site)
                where = self.wheres.get(wkey)
                if where is None:
                    if len(self.wheres) > 100_000:
                        self.wheres.clear()
                    where = self.wheres[wkey] = L.where(g, *self.group_info.get(g, (site, 0)))
            fmt = sc["format"][k]
            out.append(  # the order the template unpacks them in
                (
                    str(sc["step"][k]),
                    self._title(sc["module"][k], sc["title"][k], lang) or sc["objective"][k],
                    where,
                    L.formats.get(fmt, fmt),
                    _hours_text(sc["hours"][k], lang),
                    L.when(sc["start"][k], sc["end"][k], sc["due"][k]) or when[k - s0],
                    why,
                    reason,
                )
            )
        return out, math.fsum(h for h in step_hours if h == h)
