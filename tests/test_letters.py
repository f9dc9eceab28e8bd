"""Per-person plans: language, content, order, escaping, file names, speed."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from trainmatch.letters import TEXT, format_hours, plan_filename, render_plans, week_spans
from trainmatch.programme import Programme


@pytest.fixture(scope="module")
def programme(default_programme: Programme) -> Programme:
    return default_programme


def make_people(programme: Programme, specs: list[dict]) -> pd.DataFrame:
    """A people frame (docs/data-contracts.md plus cohort/group/hours) from short per-person specs.

    A spec gives ``person_id``, ``language``, ``tasks`` (ids), ``levels`` ({domain: 1-based level, None =
    missing}); levels not given are 2. Required levels follow from the tasks, as in scoring.
    """
    n = len(specs)
    cols: dict[str, object] = {
        "person_id": [s["person_id"] for s in specs],
        "row": np.arange(1, n + 1, dtype=np.int64),
        "role": [s.get("role", "nurse") for s in specs],
        "site": [s.get("site", "Keskussairaala") for s in specs],
        "language": [s.get("language", "") for s in specs],
        "hours": np.array([s.get("hours", 12.0) for s in specs], dtype=np.float64),
        "formats": [s.get("formats", "") for s in specs],
    }
    for task in programme.tasks:
        cols[f"task_{task.id}"] = np.array([task.id in s.get("tasks", ()) for s in specs], dtype=bool)
    for d in programme.domain_ids:
        lv = [s.get("levels", {}).get(d, 2) for s in specs]
        req = [max([t.requires.get(d, 0) for t in programme.tasks if t.id in s.get("tasks", ())] or [0]) for s in specs]
        missing = np.array([x is None for x in lv])
        score = np.array([np.nan if x is None else 1.0 + x for x in lv])
        cols[f"score_{d}"] = score
        cols[f"answered_{d}"] = np.where(missing, 0, 4).astype(np.int8)
        cols[f"missing_{d}"] = missing
        cols[f"level_{d}"] = pd.array(lv, dtype="Int8")
        cols[f"required_{d}"] = np.array(req, dtype=np.int8)
        cols[f"gap_{d}"] = pd.array([None if x is None else r - x for x, r in zip(lv, req)], dtype="Int8")
    cols["cohort"] = [s.get("cohort", "C1") for s in specs]
    cols["group"] = [s.get("group", "C1-G01") for s in specs]
    frame = pd.DataFrame(cols)
    return frame


def make_steps(rows: list[tuple]) -> pd.DataFrame:
    """Steps frame from (person_id, step, objective, format, hours, group, domain, level, required) tuples."""
    out = []
    for pid, step, objective, fmt, hours, group, domain, level, required in rows:
        module = f"{objective}.{fmt}"
        out.append(
            {
                "person_id": pid,
                "step": step,
                "objective": objective,
                "module": module,
                "title": f"Title of {module}",
                "format": fmt,
                "hours": float(hours),
                "group": group,
                "reason": f"rule R0{step}: {domain} gap — current {level}, required {required}",
                "rule_ids": f"R0{step}",
                "kind": "need",
                "domain": domain,
                "level": level,
                "required": required,
                "prerequisite_of": "",
            }
        )
    return pd.DataFrame(out, columns=["person_id", "step", "objective", "module", "title", "format", "hours", "group", "reason",
                                      "rule_ids", "kind", "domain", "level", "required", "prerequisite_of"])


def make_deferred(rows: list[tuple]) -> pd.DataFrame:
    """Deferred frame from (person_id, objective, hours, why) tuples: why is the hours left (a number, deferred
    for the budget) or the objective of the deferred prerequisite; the need is security, foundation → advanced."""
    cols = ["person_id", "objective", "module", "title", "hours", "reason", "kind", "domain", "level", "required",
            "deferred_because", "hours_left", "blocked_by"]
    return pd.DataFrame(
        [{"person_id": p, "objective": o, "module": f"{o}.elearning", "title": f"Deferred {o}", "hours": float(h),
          "reason": "(English reason for the tables)", "kind": "need", "domain": "security", "level": 1, "required": 3,
          "deferred_because": "prerequisite" if isinstance(why, str) else "budget",
          "hours_left": float("nan") if isinstance(why, str) else float(why), "blocked_by": why if isinstance(why, str) else ""}
         for p, o, h, why in rows],
        columns=cols,
    )


@pytest.fixture(scope="module")
def trio(programme: Programme) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    people = make_people(
        programme,
        [
            {"person_id": "fi-1", "language": "fi", "tasks": ["video_visits", "e_prescription"], "levels": {"remote_care": 1}, "group": "C1-G01"},
            {"person_id": "sv-2", "language": "sv", "tasks": ["chat_service"], "levels": {"remote_care": 2, "ehr": None}, "site": "Vårdcentralen Strand"},
            {"person_id": "en-3", "language": "en", "tasks": ["data_dashboards"], "levels": {"data_use": 1}, "hours": float("nan")},
        ],
    )
    # Steps deliberately out of order in the frame: the plan must follow the step number.
    steps = make_steps(
        [
            ("fi-1", 2, "remote_care.advanced", "workshop", 3, "C1-G01", "remote_care", 1, 3),
            ("sv-2", 1, "remote_care.advanced", "simulation", 4, "C1-G02", "remote_care", 2, 3),
            ("fi-1", 1, "remote_care.intermediate", "elearning", 1.5, "", "remote_care", 1, 3),
            ("en-3", 1, "data_use.intermediate", "video", 0.5, "", "data_use", 1, 3),
            ("en-3", 2, "data_use.advanced", "coaching", 2, "", "data_use", 1, 3),
            ("fi-1", 3, "ehr.advanced", "quick_guide", 0.5, "", "ehr", 2, 3),
        ]
    )
    deferred = make_deferred([("en-3", "security.advanced", 6, 1.5)])
    return people, steps, deferred


def render_all(programme: Programme, people: pd.DataFrame, steps: pd.DataFrame, deferred: pd.DataFrame, **kw: object) -> dict[str, str]:
    return dict(render_plans(people, steps, deferred, programme, **kw))


class _Checker(HTMLParser):
    """Collects the tags and whether any script or external resource appears."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.external: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("src", "href") and tag != "a" and value:
                self.external.append(value)


def test_one_plan_per_person_in_input_order(programme: Programme, trio: tuple) -> None:
    people, steps, deferred = trio
    out = list(render_plans(people, steps, deferred, programme))
    assert [pid for pid, _ in out] == ["fi-1", "sv-2", "en-3"]


@pytest.mark.parametrize("pid, lang", [("fi-1", "fi"), ("sv-2", "sv"), ("en-3", "en")])
def test_plan_is_in_the_persons_language(programme: Programme, trio: tuple, pid: str, lang: str) -> None:
    people, steps, deferred = trio
    html = render_all(programme, people, steps, deferred)[pid]
    assert f'<html lang="{lang}">' in html
    assert TEXT[lang]["title"] in html
    spec = people.set_index("person_id").loc[pid]
    # The person's tasks, in their language; no other task.
    for task in programme.tasks:
        name = task.names[lang]
        if spec[f"task_{task.id}"]:
            assert f"<li>{name}</li>" in html
        else:
            assert f"<li>{name}</li>" not in html
    # Level names and format names in their language.
    for d in programme.domain_ids:
        req = int(spec[f"required_{d}"])
        if req:
            assert programme.level_name(req, lang) in html
    for fmt in steps.loc[steps.person_id == pid, "format"]:
        name = next(f for f in programme.formats if f.id == fmt).names[lang]
        assert name in html
    # Domain names in their language.
    assert programme.domains[0].names[lang] in html


def test_finnish_plan_texts(programme: Programme, trio: tuple) -> None:
    people, steps, deferred = trio
    html = render_all(programme, people, steps, deferred, organisation="Hyvinvointialue X")["fi-1"]
    assert "Hyvinvointialue X ottaa digitaalisia palveluja" in html
    assert "Videovastaanotot" in html and "Sähköinen lääkemääräys" in html
    assert "Perustaso" in html and "Edistynyt taso" in html
    assert "Verkkokurssi" in html and "Työpaja" in html and "Pikaohje" in html
    assert "1,5" in html  # decimal comma
    assert "viikot " in html or "viikko " in html


def test_swedish_plan_marks_reassessment(programme: Programme, trio: tuple) -> None:
    people, steps, deferred = trio
    html = render_all(programme, people, steps, deferred)["sv-2"]
    assert "Chattjänst" in html and "Simuleringsövning" in html
    assert "Mellannivå" in html and "Avancerad nivå" in html
    assert TEXT["sv"]["status_missing"] in html
    assert "Journaldokumentation" in TEXT["sv"]["reassess"].format(domains="Journaldokumentation") and "Vi kunde inte bedöma din nivå inom Journaldokumentation" in html


def test_steps_in_order_with_hours_and_weeks(programme: Programme, trio: tuple) -> None:
    people, steps, deferred = trio
    html = render_all(programme, people, steps, deferred)["fi-1"]
    titles = ["remote_care.intermediate.elearning", "remote_care.advanced.workshop", "ehr.advanced.quick_guide"]
    positions = [html.index(f"Title of {t}") for t in titles]
    assert positions == sorted(positions)
    rows = re.findall(r'<tr><td class="num">(\d+)</td>.*?<td class="num">([\d,.]+)</td><td class="when">([^<]+)</td>', html)
    assert [(n, h) for n, h, _ in rows] == [("1", "1,5"), ("2", "3"), ("3", "0,5")]
    assert [w for _, _, w in rows] == ["viikot 1–4", "viikot 5–11", "viikko 12"]
    assert ">5<" in html  # total hours
    # Group session: where and with whom.
    assert "C1-G01" in html and "Keskussairaala" in html


def test_group_table_gives_site_and_size(programme: Programme, trio: tuple) -> None:
    people, steps, deferred = trio
    groups = pd.DataFrame({"group": ["C1-G02"], "cohort": ["C1"], "site": ["mixed: A, B"], "members": [9], "modules": ["x"]})
    html = render_all(programme, people, steps, deferred, groups=groups)["sv-2"]
    assert "Gruppträff med din utbildningsgrupp C1-G02 (mixed: A, B, 9 deltagare)." in html


def test_deferred_listed_with_reason_and_budget(programme: Programme, trio: tuple) -> None:
    people, steps, deferred = trio
    plans = render_all(programme, people, steps, deferred)
    html = plans["en-3"]
    assert "Deferred to a later period" in html
    assert "Deferred security.advanced" in html
    assert "Did not fit into the time left in this period (1.5 h). Information security and ethics: now Foundation, required Advanced" in html
    assert "standard 12 hours" in html  # hours not given → default budget
    assert "Deferred to a later period" not in plans["fi-1"]


def test_no_steps_and_no_tasks(programme: Programme) -> None:
    people = make_people(programme, [{"person_id": "x", "language": "de"}])
    html = render_all(programme, people, make_steps([]), make_deferred([]), default_lang="sv")["x"]
    assert '<html lang="sv">' in html  # unknown language → default
    assert TEXT["sv"]["no_steps"] in html and TEXT["sv"]["why_no_tasks"] in html


def test_support_and_feedback(programme: Programme, trio: tuple) -> None:
    people, steps, deferred = trio
    plans = render_all(programme, people, steps, deferred, support_contact="Anna, tel. 040 123", feedback_url="https://example.org/fb?a=1&b=2")
    html = plans["en-3"]
    assert "contact Anna, tel. 040 123." in html
    assert '<a href="https://example.org/fb?a=1&amp;b=2">' in html
    plans = render_all(programme, people, steps, deferred, feedback_url="javascript:alert(1)")
    assert 'href="javascript' not in plans["en-3"] and "javascript:alert(1)" in plans["en-3"]
    plans = render_all(programme, people, steps, deferred, feedback_url="palaute@example.fi")
    assert '<a href="mailto:palaute@example.fi">palaute@example.fi</a>' in plans["fi-1"]
    assert "contact the training coordinator." in render_all(programme, people, steps, deferred)["en-3"]


def test_malicious_cells_are_escaped(programme: Programme) -> None:
    evil = '<script>alert("x")</script>'
    people = make_people(programme, [{"person_id": evil, "language": "en", "site": evil, "role": evil, "tasks": ["video_visits"], "group": evil}])
    steps = make_steps([(evil, 1, "remote_care.advanced", "workshop", 2, evil, "remote_care", 1, 3)])
    steps["title"] = evil
    steps["reason"] = evil
    deferred = make_deferred([(evil, evil, 1, evil)])
    deferred["reason"] = evil
    [(pid, html)] = list(render_plans(people, steps, deferred, programme, organisation=evil, support_contact=evil))
    assert pid == evil
    assert "<script" not in html
    assert "&lt;script&gt;" in html
    checker = _Checker()
    checker.feed(html)
    assert "script" not in checker.tags
    assert checker.external == []


def test_print_css_and_self_contained(programme: Programme, trio: tuple) -> None:
    people, steps, deferred = trio
    html = render_all(programme, people, steps, deferred)["fi-1"]
    assert "@page { size: A4; margin: 18mm; }" in html
    assert "@media print" in html
    checker = _Checker()
    checker.feed(html)
    assert "script" not in checker.tags and "link" not in checker.tags
    assert checker.external == []


def test_plans_are_deterministic(programme: Programme, trio: tuple) -> None:
    people, steps, deferred = trio
    assert render_all(programme, people, steps, deferred) == render_all(programme, people, steps, deferred)


def test_blocks_and_stray_rows_do_not_change_plans(programme: Programme, trio: tuple) -> None:
    people, steps, deferred = trio
    stray = make_steps([("not-a-person", 1, "ehr.advanced", "video", 1, "", "ehr", 1, 3)])
    whole = render_all(programme, people, steps, deferred)
    assert render_all(programme, people, pd.concat([stray, steps]), deferred, block_size=2) == whole
    assert render_all(programme, people.iloc[::-1], steps, deferred) == whole


def test_other_programme(tiny_programme: Programme) -> None:
    people = make_people(tiny_programme, [{"person_id": "7", "language": "sv", "tasks": ["video_visits"], "levels": {"remote": 1}}])
    steps = make_steps([("7", 1, "remote.advanced", "workshop", 2, "C1-G01", "remote", 1, 3)])
    html = render_all(tiny_programme, people, steps, make_deferred([]))["7"]
    assert "Videomottagningar" in html and "Distansvård: nu Grundnivå, krävs Avancerad nivå (regel R01)" in html


def test_catalogue_titles_in_persons_language(programme: Programme) -> None:
    from trainmatch.catalogue import load_catalogue

    catalogue = load_catalogue(programme)
    module = catalogue.modules[0]
    people = make_people(programme, [{"person_id": "1", "language": "sv"}])
    steps = make_steps([("1", 1, module.objective, module.format, module.hours, "", module.domain, 1, 2)])
    steps["module"] = module.id
    html = render_all(programme, people, steps, make_deferred([]), catalogue=catalogue)["1"]
    assert module.titles["sv"] in html


# --------------------------------------------------------------------------- helpers


def test_week_spans_cover_the_period_in_order() -> None:
    spans = week_spans([1.5, 3.0, 0.5, 7.0], 12)
    assert spans[0][0] == 1 and spans[-1][1] == 12
    assert all(a <= b for a, b in spans)
    assert [a for a, _ in spans] == sorted(a for a, _ in spans)
    assert week_spans([2, 3, 0.5], 12) == [(1, 5), (6, 11), (12, 12)]  # no overlap when weeks allow
    many = week_spans([1.0] * 20, 12)
    assert many[0] == (1, 1) and many[-1] == (12, 12) and all(b1 <= a2 + 1 for (_, b1), (a2, _) in zip(many, many[1:]))
    assert week_spans([], 12) == []
    assert week_spans([0.0], 8) == [(1, 8)]


def test_format_hours() -> None:
    assert format_hours(1.5, "fi") == "1,5"
    assert format_hours(1.5, "en") == "1.5"
    assert format_hours(12.0, "sv") == "12"
    assert format_hours(float("nan"), "en") == "–"


@pytest.mark.parametrize(
    "pid",
    ["../../etc/passwd", "a/b", "a\\b", "..", ".", "", "CON", "nul", "x" * 500, "ä-id", "id with space", "C:\\x", "\x00", "-rf"],
)
def test_plan_filename_is_safe(pid: str) -> None:
    name = plan_filename(pid)
    assert re.fullmatch(r"plan-[A-Za-z0-9_\-]*(~[0-9a-f]{16})?\.html", name), name
    assert "/" not in name and "\\" not in name and ".." not in name
    assert len(name) <= 120
    assert plan_filename(pid) == name


def test_plan_filename_keeps_simple_ids_and_is_unique() -> None:
    assert plan_filename("000123") == "plan-000123.html"
    assert plan_filename(123) == "plan-123.html"
    ids = ["a/b", "a_b", "a\\b", "a b", "A_B", "a_b~", "AB", "ab", "Ab", "x" * 200, "x" * 201, "", " ", "_", "a.b"]
    names = [plan_filename(i) for i in ids]
    assert len(set(n.casefold() for n in names)) == len(ids)  # unique even on case-insensitive file systems


# --------------------------------------------------------------------------- volume


def test_many_plans_in_blocks_keep_every_step_in_order(programme: Programme) -> None:
    """3,000 plans with 1–8 steps each, steps shuffled, rendered in blocks: every plan, every step, in order."""
    n = 3000
    rng = np.random.default_rng(1)
    langs = ["fi", "sv", "en"]
    task_ids = programme.task_ids
    specs = [
        {
            "person_id": f"{i:07d}",
            "language": langs[i % 3],
            "tasks": [t for t in task_ids if rng.random() < 0.3],
            "levels": {d: int(rng.integers(1, 4)) for d in programme.domain_ids},
            "group": f"C{i % 5 + 1}-G{i % 7 + 1:02d}",
        }
        for i in range(n)
    ]
    people = make_people(programme, specs)
    fmts = programme.format_ids
    group_fmt = {f.id for f in programme.formats if f.group}
    rows = []
    deferred_rows = []
    for i in range(n):
        pid = f"{i:07d}"
        for s in range(1, int(rng.integers(1, 9)) + 1):
            d = programme.domain_ids[s % len(programme.domain_ids)]
            f = fmts[int(rng.integers(len(fmts)))]
            rows.append((pid, s, f"{d}.advanced", f, float(rng.choice([0.5, 1.5, 2, 3])), specs[i]["group"] if f in group_fmt else "", d, 1, 3))
        if i % 3 == 0:
            deferred_rows.append((pid, "security.advanced", 6, "does not fit the time budget"))
    steps = make_steps(rows).sample(frac=1.0, random_state=0)  # shuffled: grouping must not rely on order
    deferred = make_deferred(deferred_rows)
    plans = dict(render_plans(people, steps, deferred, programme, block_size=997))  # blocks that split no pattern
    assert list(plans) == [s["person_id"] for s in specs]
    for pid in (specs[0]["person_id"], specs[-1]["person_id"]):
        numbers = [int(x) for x in re.findall(r'<tr><td class="num">(\d+)</td>', plans[pid])]
        assert numbers == list(range(1, len(numbers) + 1)) and numbers, pid  # every step, in step order


def test_reasons_are_rendered_from_their_facts_not_from_the_english_text(programme: Programme, trio: tuple) -> None:
    """Each plan sentence comes from the reason's fields; the English text of the tables is never read back."""
    from trainmatch.pipeline import load_plan

    catalogue = load_plan(programme).catalogue
    people, steps, _ = trio
    steps = steps.copy()
    prerequisite = steps["objective"] == "remote_care.intermediate"
    steps.loc[prerequisite, ["kind", "prerequisite_of", "required"]] = ["prerequisite", "remote_care.advanced", 2]
    deferred = make_deferred([("fi-1", "security.advanced", 6, "security.intermediate"), ("sv-2", "security.advanced", 6, 0.5)])
    plans = render_all(programme, people, steps, deferred, catalogue=catalogue)
    garbled = render_all(programme, people, steps.assign(reason="x"), deferred.assign(reason="x"), catalogue=catalogue)
    strip = lambda html: re.sub(r' title="[^"]*"', "", html)  # the English text is kept only as a tooltip
    assert {k: strip(v) for k, v in plans.items()} == {k: strip(v) for k, v in garbled.items()}
    fi, sv = plans["fi-1"], plans["sv-2"]
    before = catalogue.objectives["security.intermediate"].modules[0].titles["fi"].rsplit(" (", 1)[0]
    assert f"Edellyttää ensin koulutusta {before}, joka siirrettiin myöhemmäksi. Tietoturva" in fi
    advanced = catalogue.objectives["remote_care.advanced"].modules[0].titles["fi"].rsplit(" (", 1)[0]
    assert f"(pohjaksi koulutukselle {advanced})" in fi
    assert "(sääntö R01)" not in fi and "(sääntö R02)" in fi  # a prerequisite names what it prepares for, a need its rule
    assert "Rymdes inte inom den tid som återstår under perioden (0,5 h)." in sv


def test_every_language_file_has_the_same_texts_and_fields() -> None:
    """data/letters/<lang>.toml: a translation may reword a text but not drop it or its {fields}."""
    import string

    def fields(text: str) -> set[str]:
        return {name for _, name, _, _ in string.Formatter().parse(text) if name}

    english = TEXT["en"]
    for lang, texts in TEXT.items():
        assert set(texts) == set(english), lang
        assert {k: fields(v) for k, v in texts.items()} == {k: fields(v) for k, v in english.items()}, lang


@pytest.mark.parametrize("lang", ["fi", "sv", "en"])
def test_every_branch_of_the_letter_renders_without_contradicting_itself(programme: Programme, lang: str) -> None:
    """Tasks or none × steps / only deferred / nothing with an open gap / nothing and all met × a score to
    reassess or not, in each language: each letter says one thing about its tasks and one about its plan,
    and never that all is met while its own table shows something to develop or reassess."""
    t = TEXT[lang]
    specs, steps, deferred = [], [], []
    for tasks in ((), ("video_visits",)):
        for plan in ("steps", "deferred", "open", "met"):
            for reassess in (False, True):
                pid = f"{len(tasks)}-{plan}-{int(reassess)}"
                levels = {"remote_care": 3 if plan == "met" else 1}
                if reassess:
                    levels["ehr"] = None
                if plan == "open" and not tasks and not reassess:
                    levels["remote_care"] = 1
                    specs.append({"person_id": pid, "language": lang, "tasks": ("video_visits",), "levels": levels})
                else:
                    specs.append({"person_id": pid, "language": lang, "tasks": tasks, "levels": levels})
                if plan == "steps":
                    steps.append((pid, 1, "remote_care.intermediate", "elearning", 1.5, "", "remote_care", 1, 3))
                elif plan == "deferred":
                    deferred.append((pid, "security.advanced", 1.5, 0.5))
    people = make_people(programme, specs)
    plans = render_all(programme, people, make_steps(steps), make_deferred(deferred))
    assert len(plans) == 16
    plan_texts = {"steps": t["plan_intro"].split("{weeks}")[0], "deferred": t["no_steps_deferred"],
                  "open": t["no_steps_open"], "met": t["no_steps"]}
    for pid, html in plans.items():
        n_tasks, plan, reassess = pid.split("-")
        has_tasks = n_tasks == "1" or (plan == "open" and reassess == "0")
        assert (t["why_tasks"] in html) == has_tasks and (t["why_no_tasks"] in html) != has_tasks, pid
        said = [k for k, text in plan_texts.items() if text in html]
        assert said == [plan] or (plan == "met" and reassess == "1" and said == ["open"]), (pid, said)
        if t["no_steps"] in html:  # "meets the level required of you": nothing in the table may say otherwise
            assert 'class="gap"' not in html and 'class="missing"' not in html and t["reassess"][:20] not in html, pid
        assert "{" not in html.split("<body>")[1].replace("{ ", ""), pid  # every field filled in
    if lang == "en":
        no_tasks = plans["0-met-0"]
        assert "own assessment only" not in no_tasks and "what your tasks require" not in no_tasks


@pytest.mark.parametrize("lang", ["fi", "sv", "en"])
def test_task_practice_says_it_comes_on_top_of_the_areas_training(programme: Programme, lang: str) -> None:
    people = make_people(programme, [{"person_id": "p", "language": lang, "tasks": ["video_visits"], "levels": {"remote_care": 2}}])
    steps = make_steps([("p", 1, "remote_care.advanced", "coaching", 2, "", "remote_care", 2, 3),
                        ("p", 2, "video_visit_practice", "video", 0.5, "", "remote_care", 2, 3)])
    steps.loc[1, "kind"] = "task_practice"
    html = render_all(programme, people, steps, make_deferred([]))["p"]
    assert html.count(TEXT[lang]["task_practice"]) == 1


# --------------------------------------------------------------------------- borderline levels


@pytest.mark.parametrize("lang, module", [
    ("en", "Guided self-assessment of digital skills"),
    ("fi", "Ohjattu digitaitojen itsearviointi"),
    ("sv", "Handledd självskattning av digitala färdigheter"),
])
def test_a_borderline_level_is_said_and_the_self_check_module_suggested(programme: Programme, trio: tuple, lang: str, module: str) -> None:
    from trainmatch.catalogue import load_catalogue

    people, steps, deferred = trio
    people = people.assign(**{f"uncertain_{d}": False for d in programme.domain_ids})
    pid = {"fi": "fi-1", "sv": "sv-2", "en": "en-3"}[lang]
    people.loc[people["person_id"] == pid, "uncertain_remote_care"] = True
    people.loc[people["person_id"] == pid, "uncertain_security"] = True
    catalogue = load_catalogue(programme)
    plans = render_all(programme, people, steps, deferred, catalogue=catalogue)
    html = plans[pid]
    domains = [programme.domains[programme.domain_ids.index(d)].names[lang] for d in ("remote_care", "security")]
    note = TEXT[lang]["borderline"].format(domains=", ".join(domains)) + " " + TEXT[lang]["borderline_check"].format(module=module)
    assert f'<p class="note">{note}</p>' in html
    # The plan is still made: without the flags the letter is the same but for the note.
    plain = render_all(programme, trio[0], steps, deferred, catalogue=catalogue)[pid]
    assert html.replace(f'<p class="note">{note}</p>', "") == plain
    first = TEXT[lang]["borderline"].split("{")[0]
    assert all(first not in other for p, other in plans.items() if p != pid)  # only where a level is borderline


def test_a_borderline_level_without_a_self_check_module_is_said_plainly(programme: Programme, trio: tuple) -> None:
    people, steps, deferred = trio
    people = people.assign(**{f"uncertain_{d}": d == "ehr" for d in programme.domain_ids})
    html = render_all(programme, people, steps, deferred)["en-3"]  # no catalogue: no module to suggest
    assert TEXT["en"]["borderline"].format(domains="EHR documentation") in html
    assert TEXT["en"]["borderline_check"].split("{")[0] not in html
