"""Rules: a decision table that maps each person-and-domain need to learning objectives.

``rules.csv`` has one rule per row: a ``rule_id``, condition columns on one fact
each and the outcome (``objective``, ``priority``, optional ``note``). A
condition cell is a DMN-style unary test:

==========================  ==================================================
``-`` or empty              any value
``< 2.5`` ``<= 2`` ``>= 1``  comparison (also ``> 0``, ``= 3``, ``!= 1``)
``[2..3]`` ``]2..3[``       range; ``[``/``]`` inward = closed, outward or
``[1..3[`` ``(1..3)``       ``(``/``)`` = open end
``foundation,intermediate``  a list: any element matches (elements may be
                            comparisons or ranges too; ``;`` also separates)
``not(nurse)``              negation of a list
``true`` / ``false``        the ``missing`` flag
==========================  ==================================================

Level names (``foundation`` …) stand for their 1-based index in the ``level``
and ``required`` columns (``required`` also takes ``none`` = 0). The ``task``
column lists task ids and matches people who do *any* of them. Numeric tests
never match a missing score, level or gap, even under ``not(…)``.

Each cell is tokenised and parsed by hand into a small typed AST (the
dataclasses below); nothing is ever evaluated as code. Rules are evaluated
vectorised: one boolean numpy mask per condition column per rule over every
need at once.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping, Union

import numpy as np

from .columns import level_matrix, person_id_column, text_codes
from .errors import Problem, ProgrammeError

if TYPE_CHECKING:  # pandas is imported inside the functions that need it
    import pandas as pd

    from .catalogue import Catalogue
    from .programme import Programme

# fact column -> kind of value
FACTS: dict[str, str] = {
    "domain": "domain",
    "level": "level",
    "score": "number",
    "required": "level",
    "gap": "number",
    "task": "task",
    "role": "role",
    "cohort": "name",
    "missing": "bool",
}
OUTCOMES = ("objective", "priority", "note")


# --------------------------------------------------------------------------- AST


@dataclass(frozen=True)
class AnyValue:
    """``-`` or an empty cell: matches everything, including missing values."""


@dataclass(frozen=True)
class Compare:
    """``op value`` on a numeric fact (levels resolved to their index)."""

    op: str  # one of < <= > >= = !=
    value: float


@dataclass(frozen=True)
class Between:
    """A range with open or closed ends, e.g. ``[1..3[``."""

    low: float
    high: float
    low_closed: bool
    high_closed: bool


@dataclass(frozen=True)
class OneOf:
    """Membership in a list of ids (domain, role, cohort; for task: does any of them)."""

    values: tuple[str, ...]


@dataclass(frozen=True)
class AnyOf:
    """A list of numeric tests: matches when any matches."""

    tests: tuple[Union[Compare, Between], ...]


@dataclass(frozen=True)
class Not:
    """``not(…)``: the negation of a list (numeric: only where the value is present)."""

    test: Union[OneOf, AnyOf, "Flag"]


@dataclass(frozen=True)
class Flag:
    """``true``/``false`` on a boolean fact."""

    value: bool


Test = Union[AnyValue, Compare, Between, OneOf, AnyOf, Not, Flag]


@dataclass(frozen=True)
class Rule:
    """One row of the decision table with its parsed conditions."""

    id: str
    row: int
    conditions: Mapping[str, Test]  # only the columns that are not ``-``
    objective: str
    priority: int
    note: str
    cells: Mapping[str, str]  # the cells as written, for explanations


@dataclass(frozen=True)
class RuleTable:
    """A validated decision table. Build it with :func:`load_rules`."""

    rules: tuple[Rule, ...]
    columns: tuple[str, ...]  # condition columns present in the file

    @property
    def rule_ids(self) -> tuple[str, ...]:
        return tuple(r.id for r in self.rules)

    def uses(self, fact: str) -> bool:
        """Whether any rule has a condition on ``fact`` (e.g. ``"cohort"``: then the rules wait for the cohorts)."""
        return any(fact in rule.conditions for rule in self.rules)


# --------------------------------------------------------------------------- tokenizer and parser


class CellError(ValueError):
    """A condition cell that does not follow the grammar."""


@dataclass(frozen=True)
class _Tok:
    kind: str  # num name op lb rb lp rp dots comma end
    text: str
    pos: int


_OPS = {"<=": "<=", ">=": ">=", "!=": "!=", "<>": "!=", "==": "=", "<": "<", ">": ">", "=": "=",
        "≤": "<=", "≥": ">=", "≠": "!="}
_PUNCT = {"[": "lb", "]": "rb", "(": "lp", ")": "rp", ",": "comma", ";": "comma"}


def tokenize(text: str) -> list[_Tok]:
    """Split a condition cell into tokens; raises CellError on a character outside the grammar."""
    toks: list[_Tok] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
        elif text.startswith("..", i):
            toks.append(_Tok("dots", "..", i))
            i += 2
        elif text[i:i + 2] in _OPS:
            toks.append(_Tok("op", _OPS[text[i:i + 2]], i))
            i += 2
        elif ch in _OPS:
            toks.append(_Tok("op", _OPS[ch], i))
            i += 1
        elif ch in _PUNCT:
            toks.append(_Tok(_PUNCT[ch], ch, i))
            i += 1
        elif ch.isdigit() or (ch in "-+." and i + 1 < n and text[i + 1].isdigit()):
            j = i + 1
            while j < n and text[j].isdigit():
                j += 1
            if j + 1 < n and text[j] == "." and text[j + 1].isdigit():
                j += 1
                while j < n and text[j].isdigit():
                    j += 1
            toks.append(_Tok("num", text[i:j], i))
            i = j
        elif ch.isalpha() or ch == "_":
            j = i + 1
            while j < n and (text[j].isalnum() or text[j] in "_-"):
                j += 1
            toks.append(_Tok("name", text[i:j], i))
            i = j
        elif ch in "\"'":
            j = text.find(ch, i + 1)
            if j < 0:
                raise CellError(f"a quote opened at character {i + 1} is not closed")
            toks.append(_Tok("name", text[i + 1:j], i))
            i = j + 1
        else:
            raise CellError(f"unexpected character {ch!r} at character {i + 1}")
    toks.append(_Tok("end", "", n))
    return toks


# Syntax tree before the column's types are applied.
@dataclass(frozen=True)
class _Lit:
    kind: str  # num | name
    text: str


@dataclass(frozen=True)
class _Cmp:
    op: str
    lit: _Lit


@dataclass(frozen=True)
class _Rng:
    low: _Lit
    high: _Lit
    low_closed: bool
    high_closed: bool


@dataclass(frozen=True)
class _List:
    items: tuple[Union[_Lit, _Cmp, _Rng], ...]
    negated: bool


def parse_cell(text: str) -> _List | None:
    """Parse one condition cell; None for ``-``/empty (any). Raises CellError."""
    text = text.strip()
    if text in ("", "-"):
        return None
    toks = tokenize(text)
    pos = 0

    def peek() -> _Tok:
        return toks[pos]

    def take(kind: str, what: str) -> _Tok:
        nonlocal pos
        tok = toks[pos]
        if tok.kind != kind:
            found = "the end of the cell" if tok.kind == "end" else repr(tok.text)
            raise CellError(f"expected {what} at character {tok.pos + 1}, found {found}")
        pos += 1
        return tok

    def literal() -> _Lit:
        tok = peek()
        if tok.kind in ("num", "name"):
            take(tok.kind, "a value")
            return _Lit(tok.kind, tok.text)
        found = "the end of the cell" if tok.kind == "end" else repr(tok.text)
        raise CellError(f"expected a value at character {tok.pos + 1}, found {found}")

    def item() -> Union[_Lit, _Cmp, _Rng]:
        nonlocal pos
        tok = peek()
        if tok.kind == "op":
            pos += 1
            return _Cmp(tok.text, literal())
        if tok.kind in ("lb", "rb", "lp"):
            pos += 1
            low = literal()
            take("dots", "'..'")
            high = literal()
            end = peek()
            if end.kind not in ("rb", "lb", "rp"):
                found = "the end of the cell" if end.kind == "end" else repr(end.text)
                raise CellError(f"expected ']', '[' or ')' to close the range at character {end.pos + 1}, found {found}")
            pos += 1
            return _Rng(low, high, tok.kind == "lb", end.kind == "rb")
        return literal()

    def items() -> tuple[Union[_Lit, _Cmp, _Rng], ...]:
        nonlocal pos
        out = [item()]
        while peek().kind == "comma":
            pos += 1
            out.append(item())
        return tuple(out)

    negated = False
    if peek().kind == "name" and peek().text.lower() == "not" and toks[1].kind == "lp":
        pos = 2
        negated = True
        result = items()
        take("rp", "')' to close not(")
    else:
        result = items()
    if peek().kind != "end":
        raise CellError(f"unexpected {peek().text!r} at character {peek().pos + 1}")
    return _List(result, negated)


_ALLOWED = {
    "number": "'-', a number, a comparison like '< 2.5' or '>= 1', a range like '[1..3]' or ']2..3[', "
              "a list '1,2', or not(…)",
    "level": "'-', a level ({levels}) or its number, a comparison like '>= intermediate', a range like "
             "'[foundation..advanced]', a list 'foundation,intermediate', or not(…)",
    "domain": "'-', a domain ({choices}), a list of domains, or not(…)",
    "role": "'-', a role ({choices}), a list of roles, or not(…)",
    "task": "'-', a task ({choices}) or a list of tasks (the person does any of them), or not(…)",
    "name": "'-', a cohort id like C1, a list of ids, or not(…)",
    "bool": "'-', true or false",
}


def _resolve(column: str, syntax: _List | None, programme: "Programme") -> Test:
    """Apply the column's type to a parsed cell: check values and resolve level names to indexes."""
    if syntax is None:
        return AnyValue()
    kind = FACTS[column]
    if kind in ("number", "level"):
        levels = {lv: i for i, lv in enumerate(programme.level_ids, 1)}
        if column == "required":
            levels["none"] = 0

        def num(lit: _Lit) -> float:
            if lit.kind == "num":
                try:  # digits in any script are digits to the tokenizer; float() reads only some ('²' is not)
                    value = float(lit.text)
                except ValueError:
                    raise CellError(f"{lit.text!r} is not a number") from None
                if not math.isfinite(value):
                    raise CellError(f"{lit.text[:20]!r}… is too large a number")
                return value
            if kind == "level" and lit.text.lower() in levels:
                return float(levels[lit.text.lower()])
            if kind == "level":
                close = difflib.get_close_matches(lit.text, list(levels), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise CellError(f"{lit.text!r} is not a level{hint}")
            raise CellError(f"{lit.text!r} is not a number")

        tests: list[Union[Compare, Between]] = []
        for it in syntax.items:
            if isinstance(it, _Lit):
                tests.append(Compare("=", num(it)))
            elif isinstance(it, _Cmp):
                tests.append(Compare(it.op, num(it.lit)))
            else:
                low, high = num(it.low), num(it.high)
                if low > high:
                    raise CellError(f"the range starts above its end ({it.low.text} > {it.high.text})")
                tests.append(Between(low, high, it.low_closed, it.high_closed))
        test: Test = tests[0] if len(tests) == 1 and not syntax.negated else AnyOf(tuple(tests))
        return Not(test) if syntax.negated else test  # type: ignore[arg-type]

    if kind == "bool":
        if len(syntax.items) != 1 or not isinstance(syntax.items[0], _Lit):
            raise CellError("write true or false")
        word = syntax.items[0].text.lower()
        truth = {"true": True, "false": False, "yes": True, "no": False, "1": True, "0": False}
        if word not in truth:
            raise CellError(f"{syntax.items[0].text!r} is not true or false")
        return Flag(truth[word] != syntax.negated)

    choices: list[str] | None = {
        "domain": list(programme.domain_ids),
        "role": [r.id for r in programme.roles],
        "task": list(programme.task_ids),
    }.get(kind)
    values = []
    for it in syntax.items:
        if not isinstance(it, _Lit):
            raise CellError(f"comparisons and ranges are not allowed in the {column} column")
        if choices is not None and it.text not in choices:
            close = difflib.get_close_matches(it.text, choices, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise CellError(f"{it.text!r} is not a known {kind}{hint}")
        values.append(it.text)
    one = OneOf(tuple(dict.fromkeys(values)))
    return Not(one) if syntax.negated else one


def parse_test(column: str, text: str, programme: "Programme") -> Test:
    """Parse and type-check one condition cell of ``column``. Raises CellError with what is wrong."""
    if column not in FACTS:
        raise CellError(f"{column!r} is not a condition column")
    return _resolve(column, parse_cell(text), programme)


def allowed_text(column: str, programme: "Programme") -> str:
    """What a cell of ``column`` may contain, for error messages."""
    kind = FACTS[column]
    choices = {
        "domain": programme.domain_ids,
        "role": tuple(r.id for r in programme.roles),
        "task": programme.task_ids,
    }.get(kind, ())
    return "Allowed: " + _ALLOWED[kind].format(levels=", ".join(programme.level_ids), choices=", ".join(choices)) + "."


# --------------------------------------------------------------------------- loading


def load_rules(programme: "Programme", catalogue: "Catalogue") -> RuleTable:
    """Validate ``rules.csv`` of the programme against the catalogue; raise ProgrammeError listing every problem."""
    from .programme import MAX_ID, RULES_FILE, header_problems, programme_table, suggest

    name = RULES_FILE
    header, rows = programme_table(programme, name, limits={"rule_id": MAX_ID, "objective": MAX_ID, "priority": MAX_ID})
    problems: list[Problem] = []
    known = ["rule_id", *FACTS, *OUTCOMES]
    problems += header_problems(name, header, ("rule_id", "objective", "priority"), known,
                                " Condition columns: " + ", ".join(FACTS) + ".")
    seen_cols: set[str] = set()
    for col in header:
        if col in seen_cols and col in known:
            problems.append(Problem(name, "duplicate column.", column=col))
        seen_cols.add(col)
    if problems:
        raise ProgrammeError(problems)
    conditions = tuple(c for c in FACTS if c in header)
    rules: list[Rule] = []
    ids: set[str] = set()
    objectives = list(catalogue.objectives)
    for n, r in enumerate(rows, 1):
        rid = r["rule_id"]
        label = rid or f"row {n}"
        if not rid:
            problems.append(Problem(name, "rule_id is empty.", row=n, column="rule_id", hint="Give every rule a unique id."))
        elif rid in ids:
            problems.append(Problem(name, "duplicate rule_id.", row=n, column="rule_id", value=rid, hint="Rule ids must be unique."))
        ids.add(rid)
        conds: dict[str, Test] = {}
        for col in conditions:
            try:
                test = parse_test(col, r[col], programme)
            except CellError as exc:
                problems.append(Problem(name, f"rule {label}: invalid condition: {exc}.", row=n, column=col,
                                        value=r[col], hint=allowed_text(col, programme)))
                continue
            if not isinstance(test, AnyValue):
                conds[col] = test
        obj = r["objective"]
        if obj not in catalogue.objectives:
            problems.append(Problem(name, f"rule {label}: unknown objective (not in catalogue.csv).", row=n,
                                    column="objective", value=obj, hint=suggest(obj, objectives)))
        prio_text = r["priority"]
        try:
            priority = int(prio_text)
            if priority < 1:
                raise ValueError
        except ValueError:
            problems.append(Problem(name, f"rule {label}: priority must be a whole number ≥ 1 (1 = most urgent).",
                                    row=n, column="priority", value=prio_text))
            priority = 0
        rules.append(Rule(rid, n, conds, obj, priority, r.get("note", ""), {c: r[c] for c in conditions}))
    if not rows:
        problems.append(Problem(name, "has no rules.", hint="Add at least one rule that maps a gap to an objective."))
    if problems:
        raise ProgrammeError(problems)
    return RuleTable(tuple(rules), conditions)


# --------------------------------------------------------------------------- needs


def build_needs(people: "pd.DataFrame", programme: "Programme") -> "pd.DataFrame":
    """One row per person × domain where the gap is positive or the score is missing.

    Columns: ``need`` (row number), ``person`` (position in ``people``), ``person_id``,
    ``domain`` (categorical), ``level`` and ``gap`` (Int8, NA when missing), ``score``,
    ``required`` (int8), ``missing``, ``role``, ``cohort``. Task facts stay in
    ``people`` and are reached through ``person``. Rows are person-major.
    """
    import pandas as pd

    domains = programme.domain_ids
    level = level_matrix(people, "level_", domains)
    score = np.column_stack([people[f"score_{d}"].to_numpy(dtype="float64") for d in domains])
    required = np.column_stack([people[f"required_{d}"].to_numpy(dtype="int64") for d in domains])
    missing = np.column_stack([people[f"missing_{d}"].to_numpy(dtype=bool) for d in domains]) | np.isnan(level)
    gap = required - level
    need = missing | (gap > 0)
    person, dom = np.nonzero(need)
    lv = level[person, dom]
    gp = gap[person, dom]
    na = np.isnan(lv)
    role_codes, role_uniques = text_codes(people, "role")
    cohort_codes, cohort_uniques = text_codes(people, "cohort")
    out = pd.DataFrame({
        "need": np.arange(len(person), dtype=np.int64),
        "person": person.astype(np.int64),
        "person_id": person_id_column(people)(person),
        "domain": pd.Categorical.from_codes(dom, categories=list(domains)),
        "level": pd.arrays.IntegerArray(np.where(na, 0, lv).astype(np.int8), na),
        "score": score[person, dom],
        "required": required[person, dom].astype(np.int8),
        "gap": pd.arrays.IntegerArray(np.where(na, 0, gp).astype(np.int8), na),
        "missing": missing[person, dom],
        "role": pd.Categorical.from_codes(role_codes[person], categories=list(role_uniques)),
        "cohort": pd.Categorical.from_codes(cohort_codes[person], categories=cohort_uniques),
    })
    return out


# --------------------------------------------------------------------------- evaluation


def _numeric_mask(test: Test, values: np.ndarray) -> np.ndarray:
    if isinstance(test, Compare):
        v = test.value
        with np.errstate(invalid="ignore"):
            if test.op == "<":
                return values < v
            if test.op == "<=":
                return values <= v
            if test.op == ">":
                return values > v
            if test.op == ">=":
                return values >= v
            if test.op == "=":
                return values == v
            return (values != v) & ~np.isnan(values)
    if isinstance(test, Between):
        with np.errstate(invalid="ignore"):
            lo = values >= test.low if test.low_closed else values > test.low
            hi = values <= test.high if test.high_closed else values < test.high
        return lo & hi
    if isinstance(test, AnyOf):
        mask = np.zeros(len(values), dtype=bool)
        for t in test.tests:
            mask |= _numeric_mask(t, values)
        return mask
    if isinstance(test, Not):
        return ~_numeric_mask(test.test, values) & ~np.isnan(values)
    raise TypeError(f"not a numeric test: {test!r}")


def _codes_mask(test: Test, codes: np.ndarray, uniques: list[str]) -> np.ndarray:
    if isinstance(test, Not):
        return ~_codes_mask(test.test, codes, uniques)
    assert isinstance(test, OneOf)
    wanted = [i for i, u in enumerate(uniques) if u in test.values]
    return np.isin(codes, np.asarray(wanted, dtype=codes.dtype))


class _Facts:
    """Lazy fact arrays over needs; per-person facts are computed per person then spread to needs."""

    def __init__(self, needs: "pd.DataFrame", people: "pd.DataFrame", programme: "Programme") -> None:
        self.needs, self.people, self.programme = needs, people, programme
        self.person = needs["person"].to_numpy(dtype=np.int64)
        self._cache: dict[object, np.ndarray] = {}

    def values(self, column: str) -> np.ndarray:
        import pandas as pd

        if column not in self._cache:
            s = self.needs[column]
            if column == "missing":
                arr = s.to_numpy(dtype=bool)
            elif isinstance(s.dtype, pd.api.extensions.ExtensionDtype):
                arr = s.to_numpy(dtype="float64", na_value=np.nan)
            else:
                arr = s.to_numpy(dtype="float64")
            self._cache[column] = arr
        return self._cache[column]

    def mask(self, column: str, test: Test) -> np.ndarray:
        import pandas as pd

        key = (column, test)
        if key in self._cache:
            return self._cache[key]
        kind = FACTS[column]
        if kind in ("number", "level"):
            m = _numeric_mask(test, self.values(column))
        elif kind == "bool":
            assert isinstance(test, Flag)
            v = self.values(column)
            m = v if test.value else ~v
        elif kind == "task":
            neg = isinstance(test, Not)
            inner = test.test if isinstance(test, Not) else test
            assert isinstance(inner, OneOf)
            does = np.zeros(len(self.people), dtype=bool)
            for t in inner.values:
                does |= self.people[f"task_{t}"].to_numpy(dtype=bool)
            m = (~does if neg else does)[self.person]
        elif column == "domain":
            s = self.needs["domain"]
            if isinstance(s.dtype, pd.CategoricalDtype):
                codes, uniques = s.cat.codes.to_numpy(), [str(c) for c in s.cat.categories]
            else:
                c, u = pd.factorize(s)
                codes, uniques = c, [str(x) for x in u]
            m = _codes_mask(test, codes, uniques)
        else:  # role, cohort: factorise the people column once
            ck = ("codes", column)
            if ck not in self._cache:
                c, u = text_codes(self.people, column)
                self._cache[ck] = c
                self._cache[("uniques", column)] = np.asarray(u, dtype=object)
            m = _codes_mask(test, self._cache[ck], list(self._cache[("uniques", column)]))[self.person]
        self._cache[key] = m
        return m


def evaluate(rules: RuleTable, needs: "pd.DataFrame", people: "pd.DataFrame", programme: "Programme") -> "pd.DataFrame":
    """Every rule that matches every need (all matching rules fire).

    Returns one row per (need, rule) with ``need``, ``person``, ``person_id``,
    ``domain``, ``rule_id``, ``objective``, ``priority`` and ``note``, sorted by
    need then by the rule's position in the table. ``rule_id``/``objective``/``note``
    are categoricals whose categories follow the rule table.
    """
    import pandas as pd

    facts = _Facts(needs, people, programme)
    n = len(needs)
    hits_need: list[np.ndarray] = []
    hits_rule: list[np.ndarray] = []
    for r, rule in enumerate(rules.rules):
        mask = np.ones(n, dtype=bool)
        for column, test in rule.conditions.items():
            mask &= facts.mask(column, test)
        idx = np.flatnonzero(mask)
        hits_need.append(idx)
        hits_rule.append(np.full(len(idx), r, dtype=np.int32))
    need_idx = np.concatenate(hits_need) if hits_need else np.zeros(0, dtype=np.int64)
    rule_idx = np.concatenate(hits_rule) if hits_rule else np.zeros(0, dtype=np.int32)
    order = np.argsort(need_idx, kind="stable")
    need_idx, rule_idx = need_idx[order], rule_idx[order]

    rule_ids = list(rules.rule_ids)
    objectives = list(dict.fromkeys(r.objective for r in rules.rules))
    obj_code = np.asarray([objectives.index(r.objective) for r in rules.rules], dtype=np.int32)
    notes = list(dict.fromkeys(r.note for r in rules.rules))
    note_code = np.asarray([notes.index(r.note) for r in rules.rules], dtype=np.int32)
    prio = np.asarray([r.priority for r in rules.rules], dtype=np.int16)
    domain = needs["domain"]
    if not isinstance(domain.dtype, pd.CategoricalDtype):
        domain = pd.Categorical(domain, categories=list(programme.domain_ids))
    else:
        domain = domain.array
    return pd.DataFrame({
        "need": needs["need"].to_numpy()[need_idx] if "need" in needs.columns else need_idx,
        "person": facts.person[need_idx],
        "person_id": needs["person_id"].array.take(need_idx),
        "domain": domain.take(need_idx),
        "rule_id": pd.Categorical.from_codes(rule_idx, categories=rule_ids),
        "objective": pd.Categorical.from_codes(obj_code[rule_idx], categories=objectives),
        "priority": prio[rule_idx],
        "note": pd.Categorical.from_codes(note_code[rule_idx], categories=notes),
    })
