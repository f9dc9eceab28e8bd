"""The hand-off to the LMS: moodle-flatfile.txt read the way Moodle's enrol_flatfile reads it, ids it cannot carry,
moodle-cohorts.csv, moodle-users.csv with --lms-users, enrolments.csv, and a bad --lms-users file."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trainmatch.cli import main

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data" / "survey.csv"
QUICK = ("--k", "2-3", "--seed", "1", "--per-person", "none", "--no-xlsx", "-q")


def run(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args])


def read_table(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def enrol_flatfile(text: str) -> list[tuple[str, str, str, str, int, int]]:
    """Lines as Moodle's enrol_flatfile reads them: trim the line, split on commas (no quoting), keep lines of
    4 to 6 fields, trim every field, lower-case the operation and role, read the times as integers (0 when absent)."""
    out = []
    for line in text.split("\n"):
        line = line.strip()
        if not line:
            continue
        fields = line.split(",")
        if not 4 <= len(fields) <= 6:
            continue
        op, role, user, course = fields[0].strip().lower(), fields[1].strip().lower(), fields[2].strip(), fields[3].strip()
        start = int(fields[4].strip()) if len(fields) > 4 else 0
        end = int(fields[5].strip()) if len(fields) > 5 else 0
        out.append((op, role, user, course, start, end))
    return out


@pytest.fixture(scope="module")
def lms_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lms")
    out = folder / "out"
    result = run("assign", SAMPLE, "-o", out, "--start", "2027-01-11", *QUICK)
    assert result.exit_code == 0, result.output
    return out


def test_the_flat_file_holds_exactly_the_planned_person_course_pairs(lms_run):
    from trainmatch.catalogue import load_catalogue
    from trainmatch.programme import load_programme

    catalogue = load_catalogue(load_programme())
    course = {m.id: m.lms_course or m.id for m in catalogue.modules}
    plans = read_table(lms_run / "plans.csv")
    lines = enrol_flatfile((lms_run / "lms" / "moodle-flatfile.txt").read_text(encoding="utf-8"))
    assert {(op, role) for op, role, *_ in lines} == {("add", "student")}
    assert sorted((u, c) for _, _, u, c, _, _ in lines) == sorted(zip(plans["person_id"], plans["module"].map(course)))
    assert len(lines) == len(plans)
    # every line has a start and an end inside the plan period (Europe/Helsinki midnight), start before end
    first, after = 1799618400, 1799618400 + 12 * 7 * 86400
    assert all(first <= s < e <= after for *_, s, e in lines)


def test_enrolments_csv_is_one_row_per_step_with_its_session(lms_run):
    plans = read_table(lms_run / "plans.csv")
    enrol = read_table(lms_run / "lms" / "enrolments.csv")
    assert list(enrol.columns) == ["person_id", "module", "lms_course", "format", "group", "session_id", "start", "end"]
    assert len(enrol) == len(plans)
    assert (enrol["session_id"].to_numpy() == plans["session_id"].to_numpy()).all()
    assert (enrol["end"].to_numpy() == plans["end"].where(plans["end"] != "", plans["due"]).to_numpy()).all()


def test_cohort_upload_has_one_cohort_per_training_group(lms_run):
    groups = read_table(lms_run / "groups.csv")
    cohorts = read_table(lms_run / "lms" / "moodle-cohorts.csv")
    assert list(cohorts.columns) == ["name", "idnumber", "description"]
    assert cohorts["idnumber"].tolist() == groups["group"].tolist()


def _survey_with_ids(tmp_path: Path, ids: dict[int, str]) -> Path:
    with open(SAMPLE, encoding="utf-8-sig", newline="") as fh:
        header, *rows = list(csv.reader(fh))
    col = header.index("person_id")
    for row, value in ids.items():
        rows[row][col] = value
    path = tmp_path / "survey.csv"
    with open(path, "w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows([header, *rows])
    return path


def test_ids_a_flat_file_line_cannot_carry_go_only_to_the_generic_file(tmp_path):
    survey = _survey_with_ids(tmp_path, {0: "A,1", 1: 'B"2', 2: "C;3"})
    out = tmp_path / "out"
    result = run("assign", survey, "-o", out, *QUICK)
    assert result.exit_code == 0, result.output
    accepted = set(read_table(out / "people.csv")["person_id"])
    unsafe = {"A,1", 'B"2', "C;3"} & accepted
    assert unsafe, "the survey accepted none of the odd ids"
    assert f"{len(unsafe)} people have an id that a Moodle flat-file line cannot carry" in result.stderr
    lines = enrol_flatfile((out / "lms" / "moodle-flatfile.txt").read_text(encoding="utf-8"))
    users = {u for _, _, u, *_ in lines}
    assert not users & {"A", "1", 'B"2', "C;3"}
    assert all(len(line.split(",")) == 4 for line in (out / "lms" / "moodle-flatfile.txt").read_text().splitlines())
    enrol = read_table(out / "lms" / "enrolments.csv")
    plans = read_table(out / "plans.csv")
    for pid in unsafe:
        assert (enrol["person_id"] == pid).sum() == (plans["person_id"] == pid).sum() > 0


def test_lms_users_writes_moodles_upload_users_and_lists_who_is_missing(tmp_path, lms_run):
    people = read_table(lms_run / "people.csv")["person_id"].tolist()
    users = tmp_path / "users.csv"
    users.write_text("person_id,username\n" + "".join(f"{p},user{p}\n" for p in people[1:]), encoding="utf-8")
    out = tmp_path / "out"
    result = run("assign", SAMPLE, "-o", out, "--start", "2027-01-11", "--lms-users", users, *QUICK)
    assert result.exit_code == 0, result.output
    assert f"1 planned people are not in the --lms-users file and are not in lms/moodle-users.csv: '{people[0]}'." in result.stderr
    rows = list(csv.reader(io.StringIO((out / "lms" / "moodle-users.csv").read_text(encoding="utf-8"))))
    header, body = rows[0], rows[1:]
    assert header[:4] == ["username", "cohort1", "course1", "group1"]
    assert f"user{people[0]}" not in {r[0] for r in body}
    plans = read_table(out / "plans.csv")
    person = read_table(out / "people.csv").set_index("person_id")
    for r in body[:20]:
        pid = r[0][len("user"):]
        courses = [c for c in r[2::2] if c]
        assert courses == plans.loc[plans["person_id"] == pid, "module"].tolist()
        assert r[1] == person.loc[pid, "group"]


@pytest.mark.parametrize("text, message", [
    ("person_id,username\nP001,anna\nP001,bert\n", ", row 2, column 'person_id': duplicate person_id (also on row 1). Got 'P001'."),
    ("person_id,username\nNOBODY,anna\n", ", row 1, column 'person_id': is not a person of the survey. Got 'NOBODY'."),
    ("person_id,username\nP001,\"an,na\"\n", ", row 1, column 'username': is not a username Moodle's upload can carry. Got 'an,na'."),
    ("id,user\nP001,anna\n", ": has no column person_id, username. Got 'id,user'."),
])
def test_a_bad_lms_users_file_names_row_column_value_and_writes_nothing(tmp_path, text, message):
    people = read_table(SAMPLE)["person_id"].tolist()
    users = tmp_path / "users.csv"
    users.write_text(text.replace("P001", people[0]), encoding="utf-8")
    out = tmp_path / "out"
    result = run("assign", SAMPLE, "-o", out, "--lms-users", users, *QUICK)
    assert result.exit_code == 1, result.output
    assert "The --lms-users file is invalid" in result.stderr
    assert f"{users}" + message.replace("P001", people[0]) in result.stderr
    assert "Traceback" not in result.output and not out.exists()


def _users_by_the_rules(text: str) -> dict[str, str] | None:
    """What --lms-users promises, row by row with the csv module: any line break ends a row, blank rows skipped, ids trimmed, non-empty
    and unique, usernames that a Moodle upload can carry; None where the file must be refused."""
    first = text.split("\n", 1)[0]
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=max([",", ";", "\t"], key=first.count)))
    header = [h.strip() for h in rows[0]] if rows else []
    if "person_id" not in header or "username" not in header:
        return None
    ip, iu = header.index("person_id"), header.index("username")
    out: dict[str, str] = {}
    for row in rows[1:]:
        if not any(cell.strip() for cell in row):
            continue
        pid, user = (row[ip].strip() if ip < len(row) else ""), (row[iu] if iu < len(row) else "")
        if not pid or pid in out or not user.strip() or user != user.strip() or any(c in user for c in ",;\"'\r\n"):
            return None
        out[pid] = user
    return out


cell = st.text(alphabet=st.sampled_from(list("ab1 ,;\"'\t\n\r\x1c\u00a0é")), max_size=4)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(st.one_of(st.sampled_from(["p1", "p2", "p3", "p4"]), cell),
                               st.one_of(st.sampled_from(["u1", "u2"]), cell)), max_size=8),
       delimiter=st.sampled_from([",", ";"]), extra=st.booleans())
def test_an_lms_users_file_is_read_as_its_rules_say_whatever_it_holds(tmp_path, rows, delimiter, extra):
    """Whatever the file holds, the users map is what the row-by-row rules give, or the file is refused with
    a listed problem (the quick whole-column check and the row-by-row reading agree)."""
    from trainmatch.lms import LmsUsersError, read_lms_users

    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delimiter, lineterminator="\n")
    writer.writerow(["person_id", "username", *(["note"] if extra else [])])
    writer.writerows([[p, u, *(["x"] if extra else [])] for p, u in rows])
    path = tmp_path / "users.csv"
    path.write_text(buf.getvalue(), encoding="utf-8")
    expected = _users_by_the_rules(buf.getvalue())
    if expected is None:
        with pytest.raises(LmsUsersError):
            read_lms_users(path)
    else:
        assert read_lms_users(path) == expected


def test_a_catalogue_with_lms_course_for_only_some_modules_is_warned_about(tmp_path):
    """The shipped catalogue gives no lms_course: the module ids are the course ids, without a warning on every
    run. A catalogue that gives it for some modules but not all is likely unfinished: the run says how many lack it."""
    default = run("assign", SAMPLE, "-o", tmp_path / "default", "--start", "2027-01-11", "--k", "2-3", "--seed", "1",
                  "--per-person", "none", "--no-xlsx")
    assert default.exit_code == 0 and "lms_course" not in default.output
    assert run("init", tmp_path / "prog").exit_code == 0
    catalogue = pd.read_csv(tmp_path / "prog" / "catalogue.csv", dtype=str, keep_default_na=False)
    catalogue["lms_course"] = ""
    catalogue.loc[0, "lms_course"] = "COURSE-1"
    catalogue.to_csv(tmp_path / "prog" / "catalogue.csv", index=False)
    partial = run("assign", SAMPLE, "-o", tmp_path / "partial", "--programme", tmp_path / "prog", "--start", "2027-01-11",
                  "--k", "2-3", "--seed", "1", "--per-person", "none", "--no-xlsx")
    assert partial.exit_code == 0, partial.output
    assert f"{len(catalogue) - 1} catalogue modules have no lms_course" in partial.output


def test_upload_users_fields_are_quoted_as_csv_and_every_row_matches_the_plans(tmp_path, lms_run):
    """Course ids with a comma or a quote reach moodle-users.csv intact (read back with the csv module), and every
    person's row lists their plan's courses in path order with the group of each course's session."""
    assert run("init", tmp_path / "prog").exit_code == 0
    catalogue = pd.read_csv(tmp_path / "prog" / "catalogue.csv", dtype=str, keep_default_na=False)
    catalogue["lms_course"] = [f'C,"{m}"' if n % 2 else f"C-{m}" for n, m in enumerate(catalogue["module_id"])]
    catalogue.to_csv(tmp_path / "prog" / "catalogue.csv", index=False)
    course = dict(zip(catalogue["module_id"], catalogue["lms_course"]))
    people = read_table(lms_run / "people.csv")["person_id"].tolist()
    users = tmp_path / "users.csv"
    users.write_text("person_id,username\n" + "".join(f"{p},user{p}\n" for p in people), encoding="utf-8")
    out = tmp_path / "out"
    result = run("assign", SAMPLE, "-o", out, "--programme", tmp_path / "prog", "--start", "2027-01-11", "--lms-users", users, *QUICK)
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO((out / "lms" / "moodle-users.csv").read_text(encoding="utf-8"))))
    header, body = rows[0], rows[1:]
    plans = read_table(out / "plans.csv")
    group = read_table(out / "people.csv").set_index("person_id")["group"]
    assert [r[0] for r in body] == [f"user{p}" for p in dict.fromkeys(plans["person_id"])]
    assert len(header) == 2 + 2 * plans.groupby("person_id").size().max()
    for r in body:
        pid = r[0][len("user"):]
        mine = plans[plans["person_id"] == pid]
        width = 2 * len(mine)
        assert r[2:2 + width:2] == [course[m] for m in mine["module"]]
        assert r[3:3 + width:2] == mine["group"].tolist()
        assert r[2 + width:] == [""] * (len(header) - 2 - width)
        assert r[1] == group[pid]
