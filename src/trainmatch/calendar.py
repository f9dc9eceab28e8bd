"""The calendar: every group session on a date and time in the plan period, self-paced steps with due dates.

The plan period starts on ``--start`` (or ``[schedule] start``) and lasts
``[organisation] plan_weeks``. Session slots are the ``schedule.times`` of every
``schedule.days`` weekday in the period that is not a ``schedule.blackout``
day, in the programme's ``schedule.timezone``. Sessions are placed greedily,
prerequisites first (objectives in prerequisite order): each in the earliest
slot after every earlier session of each of its attendees (so nobody is in two
sessions at once, and a person's prerequisite sessions come first) where its
site has fewer than ``schedule.parallel_per_site`` sessions and the session
ends before the next start time of the day. A session that cannot be placed
keeps its row with status ``unscheduled`` and the reason. Self-paced steps get
due dates spread over the period by their hours, each before the person's
next session in the path.

The loop is per session (sessions are a few per ten people); everything per
person or step is vectorised. :func:`ics_text` writes a group's sessions as
RFC 5545 text; its VTIMEZONE comes from the ``icalendar`` library. Pure: no files.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .errors import Problem, ProgrammeError

if TYPE_CHECKING:
    import pandas as pd

    from .catalogue import Catalogue
    from .programme import Programme, Schedule

STATUSES = ("scheduled", "unscheduled")
NO_START = "no start date: give assign --start or [schedule] start to place the sessions in a calendar"


@dataclass(frozen=True)
class Placed:
    """Sessions with ``start``, ``end``, ``timezone`` and ``status``; steps with ``start``, ``end`` and ``due``."""

    sessions: "pd.DataFrame"
    steps: "pd.DataFrame"
    start: dt.date | None
    end: dt.date | None  # the last day of the period


def period(start: dt.date, weeks: int) -> tuple[dt.date, dt.date]:
    """First and last day of a plan period of ``weeks`` weeks."""
    return start, start + dt.timedelta(days=7 * weeks - 1)


def check_schedule(schedule: "Schedule", start: dt.date | None, weeks: int, source: str = "programme.toml") -> None:
    """ProgrammeError when a blackout day lies outside the plan period (named by key, value and the period)."""
    if start is None:
        return
    first, last = period(start, weeks)
    problems = [
        Problem(source, f"is outside the plan period {first.isoformat()} – {last.isoformat()}.", key=f"schedule.blackout[{n}]",
                value=day.isoformat(), hint="Remove it, or change the start date or [organisation] plan_weeks.")
        for n, day in enumerate(schedule.blackout, 1) if not first <= day <= last
    ]
    if problems:
        raise ProgrammeError(problems)


def session_minutes(sessions: "pd.DataFrame", schedule: "Schedule") -> np.ndarray:
    """Each session's length: ``schedule.session_minutes`` of its format, else its module's hours."""
    import pandas as pd

    codes, formats = pd.factorize(sessions["format"].astype(str))  # looked up per format, not per session
    per_format = np.asarray([schedule.session_minutes.get(f, 0) for f in formats.tolist()] + [0], dtype=np.int64)[codes]
    from_hours = np.rint(sessions["hours"].to_numpy(dtype=np.float64) * 60).astype(np.int64)
    return np.where(per_format > 0, per_format, np.maximum(from_hours, 1))


def slots(schedule: "Schedule", start: dt.date, weeks: int) -> tuple[list[dt.date], np.ndarray, np.ndarray]:
    """The session slots of the period in time order: their days, each slot's day index and time index."""
    first, last = period(start, weeks)
    blackout = set(schedule.blackout)
    days = [first + dt.timedelta(days=k) for k in range((last - first).days + 1)]
    days = [d for d in days if d.weekday() in schedule.days and d not in blackout]
    T = len(schedule.times)
    day_index = np.repeat(np.arange(len(days)), T)
    time_index = np.tile(np.arange(T), len(days))
    return days, day_index, time_index


def place(sessions: "pd.DataFrame", members: "pd.DataFrame", steps: "pd.DataFrame", catalogue: "Catalogue",
          programme: "Programme", start: dt.date | None) -> Placed:
    """Place every session (see the module docstring); without ``start`` nothing gets a date and the rows say why."""
    import pandas as pd

    schedule = programme.schedule
    S = len(sessions)
    out = sessions.copy()
    steps = steps.copy()
    if start is None:
        out["start"] = ""
        out["end"] = ""
        out["timezone"] = ""
        out["status"] = "unscheduled"
        out["reason"] = [_join(r, NO_START) for r in out["reason"].tolist()]
        for column in ("start", "end", "due"):
            steps[column] = pd.Categorical.from_codes(np.zeros(len(steps), dtype=np.int64), categories=[""])
        return Placed(out, steps, None, None)
    weeks = programme.plan_weeks
    check_schedule(schedule, start, weeks)
    days, day_index, time_index = slots(schedule, start, weeks)
    n_slots = len(day_index)
    times = np.asarray(schedule.times, dtype=np.int64)
    room = np.r_[times[1:], 24 * 60] - times  # minutes from each start time to the next (or to midnight)
    minutes = session_minutes(out, schedule)

    objective_ids = list(catalogue.objective_ids)
    from .sessions import topological_rank

    rank = topological_rank(catalogue)
    obj_code = pd.Index(objective_ids).get_indexer(out["objective"].astype(str))
    site_codes, site_names = pd.factorize(out["site"].astype(str))
    order = np.lexsort((np.arange(S), rank[obj_code] if S else np.zeros(0, dtype=np.int64)))
    # attendees of each session as lists of person codes
    from .sessions import codes_into

    session_index = pd.Index(out["session_id"].astype(str))
    sid = codes_into(members["session_id"], session_index)
    person = members["person"].to_numpy(dtype=np.int64)
    by = np.argsort(sid, kind="stable")
    bounds = np.searchsorted(sid[by], np.arange(S + 1)).tolist()

    P = int(schedule.parallel_per_site)
    n_people = int(person.max()) + 1 if len(person) else 0
    used = np.zeros((len(site_names), n_slots + 1), dtype=np.int64)
    nxt = [list(range(n_slots + 1)) for _ in range(len(site_names))]  # next slot with room, per site (union-find)

    def find(parent: list[int], s: int) -> int:
        while parent[s] != s:
            parent[s] = parent[parent[s]]
            s = parent[s]
        return s

    slot_of = np.full(S, -1, dtype=np.int64)
    why = np.full(S, "", dtype=object)
    # which start times a session fits depends only on its length: one row per distinct length
    lengths, length_of = np.unique(minutes, return_inverse=True)
    fits_time = room[None, :] >= lengths[:, None]
    allowed_rows = [row.tolist() for row in fits_time]
    fits_any = fits_time.any(axis=1)[length_of].tolist() if S else []
    length_list = length_of.tolist()
    time_of = time_index.tolist()
    too_long = ("the session lasts {} minutes, longer than the time between the start times in [schedule] times; "
                "add a start time with more room or shorten schedule.session_minutes")
    no_slot = (f"no free slot in the plan period: the site holds at most {P} sessions at a time "
               "([schedule] parallel_per_site) and the attendees' earlier sessions come first; "
               "add days or times, allow more parallel sessions, or lengthen the plan period")
    # Sessions of one objective (one rank) share no attendee in practice: their earliest slots then depend only on
    # the objectives before, so they are found per objective with numpy (the largest slot of each session's
    # attendees so far), and only the site's free slot is looked up per session. An objective whose sessions do
    # share an attendee is placed one session after another, reading the slots as they are taken.
    last_arr = np.full(n_people + 1, -1, dtype=np.int64)  # the slot of each person's latest placed session
    ranks = rank[obj_code][order] if S else np.zeros(0, dtype=np.int64)
    cuts = np.flatnonzero(np.r_[True, ranks[1:] != ranks[:-1], True]) if S else np.zeros(1, dtype=np.int64)
    bounds_arr = np.asarray(bounds, dtype=np.int64)
    people_arr = person[by]
    size_of = np.diff(bounds_arr)
    site_list = site_codes.tolist()
    for a, b in zip(cuts[:-1].tolist(), cuts[1:].tolist()):
        batch = order[a:b]
        # the attendees of the batch's sessions, in batch order
        counts = size_of[batch]
        starts_ = np.repeat(bounds_arr[batch], counts)
        within = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
        att = people_arr[starts_ + within]
        session_of_att = np.repeat(batch, counts)
        shared = bool(len(att)) and int(np.bincount(att).max()) > 1
        if not shared:
            top = np.full(len(batch), -1, dtype=np.int64)
            nonempty = counts > 0
            if len(att):
                top[nonempty] = np.maximum.reduceat(last_arr[att], (np.cumsum(counts) - counts)[nonempty])
            earliest_of = (top + 1).tolist()
        for j, s in enumerate(batch.tolist()):
            if not fits_any[s]:
                why[s] = too_long.format(minutes[s])
                continue
            if shared:
                earliest = int(last_arr[people_arr[bounds[s]:bounds[s + 1]]].max(initial=-1)) + 1
            else:
                earliest = earliest_of[j]
            allowed = allowed_rows[length_list[s]]
            site = site_list[s]
            parent = nxt[site]
            k = min(earliest, n_slots)
            if parent[k] != k:
                k = find(parent, k)
            while k < n_slots and not allowed[time_of[k]]:
                k = find(parent, k + 1)
            if k >= n_slots:
                why[s] = no_slot
                continue
            slot_of[s] = k
            used[site, k] += 1
            if used[site, k] >= P:
                parent[k] = k + 1
            if shared:
                last_arr[people_arr[bounds[s]:bounds[s + 1]]] = k
        if not shared and len(att):
            took = slot_of[session_of_att] >= 0
            last_arr[att[took]] = slot_of[session_of_att[took]]

    placed = slot_of >= 0
    start_min = np.where(placed, times[time_index[np.maximum(slot_of, 0)]] if n_slots else 0, 0)
    day_of = np.where(placed, day_index[np.maximum(slot_of, 0)] if n_slots else 0, 0)
    starts, ends = _time_texts(placed, day_of, start_min, minutes, days)
    out["start"] = np.asarray(starts, dtype=object)
    out["end"] = np.asarray(ends, dtype=object)
    out["timezone"] = schedule.timezone
    out["status"] = np.where(placed, "scheduled", "unscheduled").astype(object)
    out["reason"] = [_join(r, w) for r, w in zip(out["reason"].tolist(), why.tolist())]

    # steps: a session step gets its session's times; a self-paced one a due date (categoricals: no string per step)
    step_sid = codes_into(steps["session_id"], session_index) if S else np.full(len(steps), -1, dtype=np.int64)
    at = np.where(step_sid >= 0, step_sid, S)
    for column, texts in (("start", starts), ("end", ends)):
        codes, labels = pd.factorize(np.asarray([*texts, ""], dtype=object))
        steps[column] = pd.Categorical.from_codes(codes[at], categories=labels)
    steps["due"] = _due_dates(steps, step_sid, placed, day_of, days, start, weeks)
    return Placed(out, steps, start, period(start, weeks)[1])


def _time_texts(placed: np.ndarray, day_of: np.ndarray, start_min: np.ndarray, minutes: np.ndarray,
                days: list[dt.date]) -> tuple[list[str], list[str]]:
    """Each session's start and end as "YYYY-MM-DD HH:MM" ("" when not placed), made once per distinct
    (day, start, length): a few hundred, not one strftime per session."""
    texts: dict[tuple[int, int, int], tuple[str, str]] = {}
    starts, ends = [], []
    for ok, d, m, length in zip(placed.tolist(), day_of.tolist(), start_min.tolist(), minutes.tolist()):
        if not ok:
            starts.append("")
            ends.append("")
            continue
        pair = texts.get((d, m, length))
        if pair is None:
            begin = dt.datetime.combine(days[d], dt.time()) + dt.timedelta(minutes=m)
            pair = texts[(d, m, length)] = (begin.strftime("%Y-%m-%d %H:%M"),
                                            (begin + dt.timedelta(minutes=length)).strftime("%Y-%m-%d %H:%M"))
        starts.append(pair[0])
        ends.append(pair[1])
    return starts, ends


def _join(a: str, b: str) -> str:
    return f"{a}; {b}" if a and b else (a or b)


def _due_dates(steps: "pd.DataFrame", step_sid: np.ndarray, placed: np.ndarray, day_of: np.ndarray, days: list[dt.date],
               start: dt.date, weeks: int) -> "pd.Categorical":
    """Due date of each self-paced step: spread over the period by the person's self-paced hours (the last
    one due on the period's last day), and before the person's next placed session later in the path."""
    import pandas as pd

    n = len(steps)
    total_days = 7 * weeks
    labels = [(start + dt.timedelta(days=k)).isoformat() for k in range(total_days)] + [""]
    if n == 0:
        return pd.Categorical.from_codes(np.zeros(0, dtype=np.int64), categories=labels)
    big = np.iinfo(np.int64).max
    person, _ = pd.factorize(steps["person_id"])
    alone = step_sid < 0
    order = np.lexsort((steps["step"].to_numpy(), person))
    p = person[order]
    h = np.where(alone, steps["hours"].to_numpy(dtype=np.float64), 0.0)[order]
    first = np.r_[True, p[1:] != p[:-1]]
    grp = np.cumsum(first) - 1
    first_idx = np.flatnonzero(first)
    cum = np.cumsum(h)
    done = cum - (cum - h)[first_idx][grp]  # the person's self-paced hours up to and including this step
    total = done[np.r_[first_idx[1:], n] - 1][grp]
    frac = np.where(total > 0, done / np.where(total > 0, total, 1.0), 1.0)
    due_day = np.clip(np.ceil(frac * total_days - 1e-9).astype(np.int64) - 1, 0, total_days - 1)
    # the day of the person's next placed session later in the path: a running minimum from the path's end
    sid = step_sid[order]
    has = sid >= 0
    if len(placed):
        has &= placed[np.maximum(sid, 0)]
    offset = np.asarray([(d - start).days for d in days] or [0], dtype=np.int64)
    session_day = np.full(n, big, dtype=np.int64)
    session_day[has] = offset[day_of[sid[has]]]
    rev, rp = session_day[::-1], p[::-1]
    # a running minimum per person, in one pass: each person's days are lifted above every later person's
    # (people are contiguous), so np.minimum.accumulate starts afresh at each person (no group-by)
    sentinel = total_days  # stands for "no session": above every day
    segment = np.cumsum(np.r_[True, rp[1:] != rp[:-1]])
    base = (segment[-1] - segment) * (sentinel + 1)
    running = np.minimum.accumulate(np.where(rev == big, sentinel, rev) + base) - base
    running = np.where(running == sentinel, big, running)
    later_rev = np.r_[big, running[:-1]]
    later_rev[np.r_[True, rp[1:] != rp[:-1]]] = big
    later = later_rev[::-1]
    due_sorted = np.where(later < big, np.minimum(due_day, np.maximum(later - 1, 0)), due_day)
    due = np.full(n, total_days, dtype=np.int64)
    due[order] = np.where(sid < 0, due_sorted, total_days)
    return pd.Categorical.from_codes(due, categories=labels)


# --------------------------------------------------------------------------- iCalendar


def _escape(text: str) -> str:
    """RFC 5545 TEXT: backslash, semicolon, comma and newlines escaped."""
    return (text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
            .replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\n"))


def _fold(line: str) -> str:
    """RFC 5545 folding: lines of at most 75 octets, continued with CRLF and a space, never inside a character."""
    data = line.encode("utf-8")
    if len(data) <= 75:
        return line
    parts, current, size, limit = [], [], 0, 75
    for ch in line:
        n = len(ch.encode("utf-8"))
        if size + n > limit:
            parts.append("".join(current))
            current, size, limit = [], 0, 74  # continuation lines start with a space
        current.append(ch)
        size += n
    parts.append("".join(current))
    return "\r\n ".join(parts)


def vtimezone(zone: str, first: dt.date, last: dt.date) -> str:
    """The VTIMEZONE block of ``zone`` for the period, from the icalendar library (which reads zoneinfo)."""
    import zoneinfo

    import icalendar

    tz = icalendar.Timezone.from_tzinfo(zoneinfo.ZoneInfo(zone), first_date=first - dt.timedelta(days=1),
                                        last_date=last + dt.timedelta(days=2))
    return tz.to_ical().decode("utf-8").replace("\r\n", "\n").strip().replace("\n", "\r\n")


def ics_files(sessions: "pd.DataFrame", titles: dict[str, str], zone: str, start: dt.date, end: dt.date,
              timezone_block: str | None = None) -> dict[str, str]:
    """One VCALENDAR per group with a VEVENT per scheduled session of the group (UID, DTSTAMP, DTSTART/DTEND
    with TZID, SUMMARY = the module's title, LOCATION = the site, a VTIMEZONE). DTSTAMP is the period's first
    day at midnight UTC, so the same run gives the same files. Columns are read once; no per-row pandas."""
    block = timezone_block if timezone_block is not None else vtimezone(zone, start, end)
    head = "\r\n".join(["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//trainmatch//training sessions//EN",
                         "CALSCALE:GREGORIAN", "METHOD:PUBLISH", block]) + "\r\n"
    stamp = start.strftime("%Y%m%dT000000Z")
    day = start.strftime("%Y%m%d")
    summary = {m: _fold("SUMMARY:" + _escape(t)) for m, t in titles.items()}
    location: dict[str, str] = {}
    events: dict[str, list[str]] = {}
    cols = [sessions[c].astype(str).tolist() for c in ("session_id", "group", "module", "site", "start", "end", "status")]
    for sid, group, module, site, begin, finish, status, n in zip(*cols, sessions["attendees"].tolist()):
        if status != "scheduled":
            continue
        if site not in location:
            location[site] = _fold("LOCATION:" + _escape(site)) + "\r\n" if site else ""
        events.setdefault(group, []).append(
            f"BEGIN:VEVENT\r\nUID:{sid}-{day}@trainmatch\r\nDTSTAMP:{stamp}\r\n"
            f"DTSTART;TZID={zone}:{_ics_time(begin)}\r\nDTEND;TZID={zone}:{_ics_time(finish)}\r\n"
            f"{summary.get(module) or _fold('SUMMARY:' + _escape(module))}\r\n{location[site]}"
            f"{_fold('DESCRIPTION:' + _escape(f'Session {sid}, group {group}, {n} attendees'))}\r\nEND:VEVENT\r\n"
        )
    return {group: head + "".join(parts) + "END:VCALENDAR\r\n" for group, parts in sorted(events.items())}


def _ics_time(text: str) -> str:
    """'2027-01-12 09:00' → '20270112T090000' (local time of the TZID)."""
    return text[0:4] + text[5:7] + text[8:10] + "T" + text[11:13] + text[14:16] + "00"
