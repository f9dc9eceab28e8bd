"""The calendar: sessions placed in the plan period (properties: no overlaps, prerequisites first, site capacity,
every session placed or explained), .ics files read back with the icalendar library against sessions.csv,
due dates, the run without a start date, and bad schedule settings."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trainmatch.cli import main
from trainmatch.programme import Schedule

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data" / "survey.csv"
QUICK = ("--k", "2-3", "--seed", "1", "--per-person", "none", "--no-xlsx", "-q")


def run(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args])


def read_table(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def parts():
    from trainmatch.catalogue import load_catalogue
    from trainmatch.programme import load_programme

    programme = load_programme()
    return programme, load_catalogue(programme)


def _closure(catalogue) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}

    def before(o: str) -> set[str]:
        if o not in out:
            out[o] = set()
            for p in catalogue.objectives[o].prerequisites:
                out[o] |= {p} | before(p)
        return out[o]

    for o in catalogue.objectives:
        before(o)
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.data(),
    n_sessions=st.integers(min_value=0, max_value=40),
    days=st.sets(st.integers(min_value=0, max_value=6), min_size=1),
    times=st.sets(st.integers(min_value=7 * 60, max_value=17 * 60), min_size=1, max_size=4),
    parallel=st.integers(min_value=1, max_value=3),
    weeks=st.integers(min_value=1, max_value=3),
    minutes=st.integers(min_value=30, max_value=300),
)
def test_placed_sessions_never_clash_and_come_after_their_prerequisites(parts, data, n_sessions, days, times, parallel,
                                                                          weeks, minutes):
    from trainmatch.calendar import place

    programme, catalogue = parts
    start = dt.date(2027, 1, 11)
    blackout = tuple(data.draw(st.sets(st.integers(0, 7 * weeks - 1), max_size=3)))
    schedule = Schedule(start=None, days=tuple(sorted(days)), times=tuple(sorted(times)),
                        session_minutes={"workshop": minutes}, parallel_per_site=parallel, timezone="Europe/Helsinki",
                        blackout=tuple(sorted(start + dt.timedelta(days=k) for k in blackout)))
    programme = replace(programme, schedule=schedule, plan_weeks=weeks)
    group_modules = [m for m in catalogue.modules if m.group]
    rows, members = [], []
    for s in range(n_sessions):
        m = group_modules[data.draw(st.integers(0, len(group_modules) - 1))]
        people = data.draw(st.sets(st.integers(0, 11), min_size=1, max_size=6))
        rows.append({"session_id": f"G-S{s:02d}", "group": "G", "site": data.draw(st.sampled_from(["A", "B"])),
                     "objective": m.objective, "module": m.id, "format": m.format, "hours": m.hours,
                     "attendees": len(people), "reason": ""})
        members += [{"session_id": f"G-S{s:02d}", "person": p} for p in sorted(people)]
    sessions = pd.DataFrame(rows, columns=["session_id", "group", "site", "objective", "module", "format", "hours",
                                           "attendees", "reason"])
    members = pd.DataFrame(members, columns=["session_id", "person"])
    steps = pd.DataFrame({"person_id": pd.Series([], dtype=object), "step": pd.Series([], dtype="int16"),
                          "hours": pd.Series([], dtype=float), "session_id": pd.Series([], dtype=object)})
    placed = place(sessions, members, steps, catalogue, programme, start).sessions

    # every session placed or explained
    assert len(placed) == n_sessions
    unscheduled = placed[placed["status"] != "scheduled"]
    assert (unscheduled["reason"] != "").all() and (unscheduled["start"] == "").all()
    ok = placed[placed["status"] == "scheduled"].copy()
    if ok.empty:
        return
    ok["b"] = pd.to_datetime(ok["start"])
    ok["e"] = pd.to_datetime(ok["end"])
    last = start + dt.timedelta(days=7 * weeks - 1)
    assert all(start <= b.date() <= last and b.weekday() in days and b.date() not in schedule.blackout
               and b.hour * 60 + b.minute in times for b in ok["b"])
    # a site holds at most `parallel` sessions at once; nobody is in two sessions at once
    for _, at_site in ok.groupby("site"):
        for b in at_site["b"]:
            assert ((at_site["b"] <= b) & (at_site["e"] > b)).sum() <= parallel
    who = members.merge(ok, on="session_id")
    for _, own in who.groupby("person"):
        own = own.sort_values("b")
        assert (own["b"].to_numpy()[1:] >= own["e"].to_numpy()[:-1]).all()
    # prerequisites first, also across a person's sessions
    closure = _closure(catalogue)
    for _, own in who.groupby("person"):
        for later in own.itertuples():
            for earlier in own.itertuples():
                if earlier.objective in closure[later.objective]:
                    assert earlier.e <= later.b


@pytest.fixture(scope="module")
def dated_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("calendar") / "out"
    result = run("assign", SAMPLE, "-o", out, "--start", "2027-01-11", *QUICK)
    assert result.exit_code == 0, result.output
    return out


def test_every_ics_event_is_a_scheduled_session_of_sessions_csv(dated_run):
    import icalendar

    sessions = read_table(dated_run / "sessions.csv")
    scheduled = sessions[sessions["status"] == "scheduled"].set_index("session_id")
    assert len(scheduled)
    files = sorted((dated_run / "calendar").glob("*.ics"))
    assert [f.stem for f in files] == sorted(scheduled["group"].unique())
    tz = zoneinfo.ZoneInfo("Europe/Helsinki")
    seen = set()
    for path in files:
        raw = path.read_bytes()
        assert b"\r\n" in raw and all(len(line) <= 75 for line in raw.split(b"\r\n"))
        cal = icalendar.Calendar.from_ical(raw)
        assert [str(t["TZID"]) for t in cal.walk("VTIMEZONE")] == ["Europe/Helsinki"]
        for event in cal.walk("VEVENT"):
            sid = str(event["UID"]).split("-2027")[0]
            row = scheduled.loc[sid]
            assert row["group"] == path.stem
            assert event.decoded("DTSTART") == dt.datetime.strptime(row["start"], "%Y-%m-%d %H:%M").replace(tzinfo=tz)
            assert event.decoded("DTEND") == dt.datetime.strptime(row["end"], "%Y-%m-%d %H:%M").replace(tzinfo=tz)
            assert str(event["LOCATION"]) == row["site"]
            assert "DTSTAMP" in event and str(event["SUMMARY"])
            seen.add(sid)
    assert seen == set(scheduled.index)


def test_plans_show_dates_and_self_paced_steps_are_due_before_the_next_session(dated_run):
    plans = read_table(dated_run / "plans.csv")
    sessions = read_table(dated_run / "sessions.csv").set_index("session_id")
    in_session = plans[plans["session_id"] != ""]
    assert (in_session["start"].to_numpy() == sessions.loc[in_session["session_id"], "start"].to_numpy()).all()
    alone = plans[plans["session_id"] == ""]
    assert (alone["due"] != "").all() and (alone["start"] == "").all()
    assert alone["due"].between("2027-01-11", "2027-04-04").all()  # 12 weeks
    for _, path in plans.groupby("person_id"):
        path = path.assign(step=path["step"].astype(int)).sort_values("step")
        for row in path[path["session_id"] == ""].itertuples():
            later = path[(path["step"] > row.step) & (path["start"] != "")]
            if len(later):
                assert row.due < later["start"].min()[:10] or row.due == "2027-01-11"


def test_without_a_start_date_the_run_says_so_and_keeps_every_session(tmp_path):
    out = tmp_path / "out"
    result = run("assign", SAMPLE, "-o", out, *QUICK)
    assert result.exit_code == 0, result.output
    assert "No start date (assign --start or [schedule] start)" in result.stderr
    sessions = read_table(out / "sessions.csv")
    assert len(sessions) and set(sessions["status"]) == {"unscheduled"}
    assert sessions["reason"].str.contains("no start date").all()
    assert not (out / "calendar").exists()
    plans = read_table(out / "plans.csv")
    assert set(plans["start"]) == {""} and set(plans["due"]) == {""}


def _programme(tmp_path: Path, schedule: str) -> Path:
    folder = tmp_path / "prog"
    assert run("init", folder).exit_code == 0
    toml = folder / "programme.toml"
    text = toml.read_text(encoding="utf-8")
    start = text.index("[schedule]")
    end = text.index("[personal_data]")
    toml.write_text(text[:start] + "[schedule]\n" + schedule + "\n\n" + text[end:], encoding="utf-8")
    return folder


@pytest.mark.parametrize("schedule, message", [
    ('start = "2027-02-30"', "key schedule.start: must be a date as YYYY-MM-DD. Got '2027-02-30'."),
    ('days = ["tue", "caturday"]', "key schedule.days[2]: is not a weekday. Got 'caturday'. Use mon, tue, wed, thu, fri, sat or sun."),
    ('times = ["09:00", "25:00"]', "key schedule.times[2]: is not a time of day. Got '25:00'."),
    ('timezone = "Europe/Helsinky"', "key schedule.timezone: is not a known time zone. Got 'Europe/Helsinky'."),
    ('parallel_per_site = 0', "key schedule.parallel_per_site: must be a whole number of sessions between 1 and 1000. Got '0'."),
    ('session_minutes = { lecture = 60 }', "key schedule.session_minutes.lecture: is not a group format."),
    ('start = 2027-01-11\nblackout = [2026-12-24]',
     "key schedule.blackout[1]: is outside the plan period 2027-01-11 – 2027-04-04. Got '2026-12-24'."),
])
def test_bad_schedule_settings_name_the_key_and_value_and_write_nothing(tmp_path, schedule, message):
    folder = _programme(tmp_path, schedule)
    out = tmp_path / "out"
    result = run("assign", SAMPLE, "-o", out, "--programme", folder, *QUICK)
    assert result.exit_code == 1, result.output
    assert "programme.toml, " + message in result.stderr
    assert "Traceback" not in result.output and not out.exists()


def test_a_blackout_day_outside_the_period_of_start_is_refused(tmp_path):
    folder = _programme(tmp_path, "blackout = [2027-06-01]")
    out = tmp_path / "out"
    result = run("assign", SAMPLE, "-o", out, "--programme", folder, "--start", "2027-01-11", *QUICK)
    assert result.exit_code == 1
    assert "key schedule.blackout[1]: is outside the plan period 2027-01-11 – 2027-04-04. Got '2027-06-01'." in result.stderr
    assert not out.exists()


def test_an_invalid_start_option_is_a_usage_error(tmp_path):
    out = tmp_path / "out"
    result = run("assign", SAMPLE, "-o", out, "--start", "11.1.2027", *QUICK)
    assert result.exit_code == 2
    assert "Invalid value for '--start': '11.1.2027' is not a date. Write it as YYYY-MM-DD" in result.stderr
    assert not out.exists()


def test_session_longer_than_the_room_between_start_times_is_unscheduled_with_its_reason(parts):
    from trainmatch.calendar import place

    programme, catalogue = parts
    programme = replace(programme, schedule=Schedule(times=(9 * 60, 10 * 60), session_minutes={"workshop": 120},
                                                     days=(0,), timezone="UTC"))
    m = next(m for m in catalogue.modules if m.format == "workshop")
    sessions = pd.DataFrame([{"session_id": "G-S01", "group": "G", "site": "A", "objective": m.objective, "module": m.id,
                              "format": "workshop", "hours": m.hours, "attendees": 1, "reason": ""}])
    members = pd.DataFrame({"session_id": ["G-S01"], "person": np.array([0])})
    steps = pd.DataFrame({"person_id": ["p"], "step": np.array([1], dtype=np.int16), "hours": [m.hours],
                          "session_id": ["G-S01"]})
    placed = place(sessions, members, steps, catalogue, programme, dt.date(2027, 1, 11)).sessions
    # 09:00 has only an hour before 10:00, but 10:00 has the rest of the day
    assert placed["start"].tolist() == ["2027-01-11 10:00"]
    programme = replace(programme, schedule=replace(programme.schedule, session_minutes={"workshop": 24 * 60}))
    placed = place(sessions, members, steps, catalogue, programme, dt.date(2027, 1, 11)).sessions
    assert placed["status"].tolist() == ["unscheduled"]
    assert placed["reason"].tolist()[0].startswith("the session lasts 1440 minutes, longer than the time between")
