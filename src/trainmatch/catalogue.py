"""The training catalogue: modules that teach learning objectives in different formats.

``catalogue.csv`` in the programme folder lists one module per row. Several
modules teach the same *objective* (``remote_care.advanced``,
``video_visit_practice``, …) in different formats, so a path can honour a
person's preferred formats and still be diverse. An objective has one domain
(``-`` for cross-domain objectives such as the guided self-assessment), one
level (the level it brings a person to) and prerequisites (other objectives).

Loading is strict, like the rest of the programme: every problem is collected
with its row, column and value and raised together as one ProgrammeError.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Mapping

from .columns import FORMULA_PATTERN
from .errors import Problem, ProgrammeError
from .programme import CATALOGUE_FILE, FORMULA_ID, FORMULA_ID_HINT, MAX_ID, Programme, header_problems, programme_table, suggest

ANY_DOMAIN = "-"
DELIVERIES = ("group", "individual")
REQUIRED_COLUMNS = ("module_id", "objective", "domain", "level", "format", "hours", "delivery")
OPTIONAL_COLUMNS = ("prerequisites", "languages", "lms_course")


@dataclass(frozen=True)
class Module:
    """One deliverable module: an objective taught in one format."""

    id: str
    objective: str
    titles: Mapping[str, str]
    domain: str  # '' for cross-domain objectives
    level: int  # 1-based level index the module brings a person to
    format: str
    hours: float
    group: bool
    prerequisites: tuple[str, ...]
    languages: tuple[str, ...]
    lms_course: str = ""  # the course id in the organisation's LMS; the module id where the catalogue gives none

    def title(self, lang: str) -> str:
        return self.titles.get(lang) or next((t for t in self.titles.values() if t), self.id)


@dataclass(frozen=True)
class Objective:
    """A learning objective and the modules (formats) that teach it, in catalogue order."""

    id: str
    domain: str  # '' for cross-domain objectives
    level: int
    prerequisites: tuple[str, ...]
    modules: tuple[Module, ...]

    @property
    def formats(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(m.format for m in self.modules))


@dataclass(frozen=True)
class Catalogue:
    """A validated catalogue. Build it with :func:`load_catalogue`."""

    modules: tuple[Module, ...]
    objectives: Mapping[str, Objective]

    @property
    def objective_ids(self) -> tuple[str, ...]:
        return tuple(self.objectives)

    @property
    def module_ids(self) -> tuple[str, ...]:
        return tuple(m.id for m in self.modules)

    def module(self, module_id: str) -> Module:
        for m in self.modules:
            if m.id == module_id:
                return m
        raise KeyError(module_id)


def _split(cell: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in cell.replace(",", ";").split(";") if p.strip())


def find_cycle(graph: Mapping[str, tuple[str, ...]]) -> list[str] | None:
    """A cycle in a dependency graph as ``[a, b, …, a]``, or None. Iterative DFS, deterministic."""
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    for start in graph:
        if state.get(start):
            continue
        stack: list[tuple[str, int]] = [(start, 0)]
        path: list[str] = [start]
        state[start] = 1
        while stack:
            node, i = stack[-1]
            children = graph.get(node, ())
            if i < len(children):
                stack[-1] = (node, i + 1)
                child = children[i]
                if state.get(child) == 1:
                    return path[path.index(child):] + [child]
                if not state.get(child):
                    state[child] = 1
                    stack.append((child, 0))
                    path.append(child)
            else:
                state[node] = 2
                stack.pop()
                path.pop()
    return None


def load_catalogue(programme: Programme) -> Catalogue:
    """Validate ``catalogue.csv`` of the programme and build a :class:`Catalogue`, or raise ProgrammeError."""
    name = CATALOGUE_FILE
    header, rows = programme_table(programme, name, limits={c: MAX_ID for c in REQUIRED_COLUMNS})
    problems: list[Problem] = []
    add = lambda msg, **kw: problems.append(Problem(name, msg, **kw))  # noqa: E731

    title_cols = [f"title_{lang}" for lang in programme.languages]
    known = list(REQUIRED_COLUMNS) + title_cols + list(OPTIONAL_COLUMNS)
    problems += header_problems(name, header, list(REQUIRED_COLUMNS) + title_cols, known)
    if problems:
        raise ProgrammeError(problems)
    if not rows:
        raise ProgrammeError([Problem(name, "has no modules.", hint="List at least one module per learning objective.")])

    domains = list(programme.domain_ids)
    level_index = {lv: i for i, lv in enumerate(programme.level_ids, 1)}
    formats = {f.id: f for f in programme.formats}
    modules: list[Module] = []
    seen: set[str] = set()
    courses: dict[str, str] = {}
    for n, r in enumerate(rows, 1):
        ok = True
        mid = r["module_id"]
        if not mid:
            add("module_id is empty.", row=n, column="module_id", hint="Give every module a unique id.")
            continue
        if mid in seen:
            add("duplicate module_id.", row=n, column="module_id", value=mid, hint="Module ids must be unique.")
            continue
        seen.add(mid)
        objective = r["objective"]
        if not objective:
            add("objective is empty.", row=n, column="objective", hint="Name the learning objective the module teaches.")
            ok = False
        course = r.get("lms_course", "") or mid
        if courses.setdefault(course, mid) != mid:
            add(f"lms_course is also the course of module {courses[course]!r}.", row=n, column="lms_course", value=course,
                hint="Give each module its own LMS course id (an empty cell uses the module id).")
            ok = False
        for column, ident in (("module_id", mid), ("objective", objective), ("lms_course", course)):
            # Ids go to plans.csv, the workbook and the LMS files unchanged, so none may read as a formula.
            if re.match(FORMULA_PATTERN, ident):
                add(FORMULA_ID, row=n, column=column, value=ident, hint=FORMULA_ID_HINT)
                ok = False
        domain = r["domain"] or ANY_DOMAIN
        if domain != ANY_DOMAIN and domain not in domains:
            add("unknown domain.", row=n, column="domain", value=domain,
                hint=suggest(domain, domains + [ANY_DOMAIN]) + " Use '-' for a cross-domain objective.")
            ok = False
        level = r["level"]
        if level not in level_index:
            add("unknown level.", row=n, column="level", value=level, hint=suggest(level, list(level_index)))
            ok = False
        fmt = formats.get(r["format"])
        if fmt is None:
            add("unknown format.", row=n, column="format", value=r["format"], hint=suggest(r["format"], list(formats)))
            ok = False
        try:
            hours = float(r["hours"].replace(",", "."))
            if not math.isfinite(hours) or hours <= 0:
                raise ValueError
        except ValueError:
            add("hours must be a positive number.", row=n, column="hours", value=r["hours"], hint="Write e.g. 1.5.")
            ok = False
            hours = 0.0
        delivery = r["delivery"].lower()
        if delivery not in DELIVERIES:
            add("delivery must be group or individual.", row=n, column="delivery", value=r["delivery"])
            ok = False
        elif fmt is not None and (delivery == "group") != fmt.group:
            want = "group" if fmt.group else "individual"
            add(f"delivery does not match the format: {fmt.id!r} is a {want} format in programme.toml.",
                row=n, column="delivery", value=r["delivery"], hint=f"Write {want!r}, or change the format.")
            ok = False
        langs = _split(r.get("languages", ""))
        for lang in langs:
            if lang not in programme.languages:
                add("unknown language.", row=n, column="languages", value=lang,
                    hint=suggest(lang, list(programme.languages)))
                ok = False
        titles = {lang: r.get(f"title_{lang}", "") for lang in programme.languages}
        if not any(titles.values()):
            add("the module has no title.", row=n, column=title_cols[0], hint="Give at least one title.")
            ok = False
        if ok:
            modules.append(Module(
                id=mid, objective=objective, titles=titles,
                domain="" if domain == ANY_DOMAIN else domain, level=level_index[level],
                format=fmt.id, hours=hours, group=fmt.group,  # type: ignore[union-attr]
                prerequisites=_split(r.get("prerequisites", "")),
                languages=langs or tuple(programme.languages),
                lms_course=course,
            ))

    # objectives: consistent domain and level; prerequisites known and acyclic
    grouped: dict[str, list[Module]] = {}
    for m in modules:
        grouped.setdefault(m.objective, []).append(m)
    row_of = {r["module_id"]: n for n, r in enumerate(rows, 1)}
    objectives: dict[str, Objective] = {}
    for oid, mods in grouped.items():
        first = mods[0]
        for m in mods[1:]:
            if m.domain != first.domain:
                add(f"objective {oid!r} has modules in different domains ({first.domain or '-'} and {m.domain or '-'}).",
                    row=row_of[m.id], column="domain", value=m.domain or "-", hint="All modules of one objective share its domain.")
            if m.level != first.level:
                add(f"objective {oid!r} has modules at different levels.", row=row_of[m.id], column="level",
                    value=programme.level_ids[m.level - 1], hint="All modules of one objective share its level.")
        prereqs = tuple(dict.fromkeys(p for m in mods for p in m.prerequisites))
        objectives[oid] = Objective(oid, first.domain, first.level, prereqs, tuple(mods))
    for m in modules:
        for p in m.prerequisites:
            if p not in objectives:
                add("unknown prerequisite objective.", row=row_of[m.id], column="prerequisites", value=p,
                    hint=suggest(p, list(objectives)))
    cycle = find_cycle({o.id: tuple(p for p in o.prerequisites if p in objectives) for o in objectives.values()})
    if cycle:
        add("prerequisites form a cycle: " + " → ".join(cycle) + ".", column="prerequisites",
            hint="Remove one of these prerequisites so that the objectives can be ordered.")
    if problems:
        raise ProgrammeError(problems)
    return Catalogue(tuple(modules), objectives)
