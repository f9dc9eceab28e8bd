"""The hand-off to the LMS: enrolments in Moodle's own import formats and a generic CSV.

- ``moodle-flatfile.txt``: Moodle's flat-file enrolment (enrol_flatfile), one line
  ``add, student, <person_id>, <lms_course>[, <start>, <end>]`` per person and
  course (unix seconds). enrol_flatfile splits a line on commas with no quoting and
  trims each field, so a value with a comma, semicolon, quote, line break or a
  leading or trailing space cannot be carried: such people are listed and go to
  the generic file only.
- ``moodle-cohorts.csv``: Moodle's cohort upload (name, idnumber, description),
  one cohort per training group.
- ``moodle-users.csv`` (with ``--lms-users``): Moodle's upload-users format,
  username plus cohort1 and course1/group1… per person.
- ``enrolments.csv``: person_id, module, lms_course, format, group, session_id,
  start, end, for any LMS.

These files are read by an LMS, not a spreadsheet: values are not
formula-neutralised, they are checked. Vectorised with pyarrow compute; the
``--lms-users`` file is read here (the only file this module touches).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .errors import Problem, ProblemsError

if TYPE_CHECKING:
    import pandas as pd

    from .catalogue import Catalogue

ENROLMENT_COLUMNS = ("person_id", "module", "lms_course", "format", "group", "session_id", "start", "end")
# What enrol_flatfile cannot carry in a field: its separator, characters that other importers treat as
# separators or quotes, line breaks, and spaces it would trim away.
UNSAFE = re.compile(r"[,;\"'\r\n]|^\s|\s$")
USERS_COLUMNS = ("person_id", "username")
MAX_USERS_BYTES = 512 * 1024 * 1024


class LmsUsersError(ProblemsError):
    """The --lms-users file (person_id → LMS username) is invalid; every problem is listed."""

    what = "The --lms-users file"


@dataclass(frozen=True)
class LmsFiles:
    """What goes into OUTDIR/lms/, plus what could not go where."""

    enrolments: "pd.DataFrame"
    flatfile: bytes
    cohorts: bytes
    users: bytes | None
    unsafe_people: tuple[str, ...]  # ids a flat-file line cannot carry (only in enrolments.csv)
    unsafe_courses: tuple[str, ...]
    without_course: tuple[str, ...]  # modules whose catalogue row gives no lms_course (the module id is used)
    missing_users: tuple[str, ...] = field(default=())  # planned people the --lms-users file does not map


def read_lms_users(path: str | Path) -> dict[str, str]:
    """person_id → username from a CSV with columns person_id and username; LmsUsersError lists every problem."""
    from .programme import decode_text, read_bounded

    name = str(path)
    text = decode_text(read_bounded(Path(path), MAX_USERS_BYTES, LmsUsersError), name, error=LmsUsersError)
    first = text.split("\n", 1)[0]
    delimiter = max([",", ";", "\t"], key=first.count)
    rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    if not rows:
        raise LmsUsersError([Problem(name, "is empty.", hint="Write a header person_id,username and one row per person.")])
    header = [h.strip() for h in rows[0]]
    missing = [c for c in USERS_COLUMNS if c not in header]
    if missing:
        raise LmsUsersError([Problem(name, f"has no column {', '.join(missing)}.", value=",".join(header)[:80],
                                     hint="The first row must name the columns person_id and username.")])
    ip, iu = header.index("person_id"), header.index("username")
    out: dict[str, str] = {}
    first_row: dict[str, int] = {}
    problems: list[Problem] = []
    for n, row in enumerate(rows[1:], 1):
        if not any(cell.strip() for cell in row):
            continue
        pid = row[ip].strip() if ip < len(row) else ""
        user = row[iu] if iu < len(row) else ""
        if not pid:
            problems.append(Problem(name, "person_id is empty.", row=n, column="person_id"))
            continue
        if pid in first_row:
            problems.append(Problem(name, f"duplicate person_id (also on row {first_row[pid]}).", row=n, column="person_id",
                                    value=pid, hint="Give each person one username."))
            continue
        first_row[pid] = n
        if not user.strip() or UNSAFE.search(user) or user != user.strip():
            problems.append(Problem(name, "is not a username Moodle's upload can carry.", row=n, column="username", value=user,
                                    hint="A username must not be empty nor hold commas, semicolons, quotes, line breaks "
                                         "or leading or trailing spaces."))
            continue
        out[pid] = user
        if len(problems) >= 100:
            break
    if problems:
        raise LmsUsersError(problems)
    return out


def check_users_known(users: dict[str, str], known: "pd.Series", name: str) -> None:
    """LmsUsersError naming the rows of ids that are not people of the survey."""
    import pandas as pd

    ids = pd.Index(list(users))
    unknown = ids[~ids.isin(pd.Index(known.astype(str)))]
    if len(unknown):
        rows = {pid: n for n, pid in enumerate(users, 1)}
        problems = [Problem(name, "is not a person of the survey.", row=rows[pid], column="person_id", value=pid,
                            hint="Remove the row, or check the id against the survey's id column.")
                    for pid in unknown[:20].tolist()]
        if len(unknown) > 20:
            problems.append(Problem(name, f"… and {len(unknown) - 20} more ids that are not people of the survey."))
        raise LmsUsersError(problems)


def _unix(text: "np.ndarray", zone: str) -> np.ndarray:
    """Unix seconds of local 'YYYY-MM-DD HH:MM' texts ('' → 0), converted once per distinct text."""
    import zoneinfo

    import pandas as pd

    codes, uniq = pd.factorize(pd.Series(text, dtype=object))
    tz = zoneinfo.ZoneInfo(zone)
    values = np.asarray([int(dt.datetime.strptime(u, "%Y-%m-%d %H:%M").replace(tzinfo=tz).timestamp()) if u else 0
                         for u in uniq] or [0], dtype=np.int64)
    return values[codes]


def lms_files(steps: "pd.DataFrame", groups: "pd.DataFrame", catalogue: "Catalogue", *, zone: str,
              start: dt.date | None, end: dt.date | None, users: dict[str, str] | None = None,
              people: "pd.DataFrame | None" = None) -> LmsFiles:
    """Build the LMS files from the planned steps (with session_id, start, end, due) and the training groups.

    With a plan period, flat-file lines carry the enrolment's start (the session's start, else the period's
    first day) and end (the day after the period's last day), at midnight in ``zone``.
    """
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    from .columns import codes

    module_ids = list(catalogue.module_ids)
    course_of = np.asarray([m.lms_course or m.id for m in catalogue.modules] or [""], dtype=object)
    without = tuple(m.id for m in catalogue.modules if (m.lms_course or m.id) == m.id)
    mcode, _ = codes(steps["module"], module_ids)
    course = course_of[np.maximum(mcode, 0)]
    person = steps["person_id"].astype(str).to_numpy(dtype=object)
    has_dates = start is not None and "start" in steps.columns
    step_start = steps["start"].to_numpy(dtype=object) if "start" in steps.columns else np.full(len(steps), "", dtype=object)
    step_end = steps["end"].to_numpy(dtype=object) if "end" in steps.columns else np.full(len(steps), "", dtype=object)
    due = steps["due"].astype(str).to_numpy(dtype=object) if "due" in steps.columns else np.full(len(steps), "", dtype=object)
    enrol = pd.DataFrame({
        "person_id": steps["person_id"].to_numpy(),
        "module": steps["module"].to_numpy(),
        "lms_course": pd.Categorical.from_codes(np.maximum(mcode, 0), categories=list(dict.fromkeys(course_of.tolist())))
        if len(set(course_of.tolist())) == len(course_of) else course,
        "format": steps["format"].to_numpy(),
        "group": steps["group"].to_numpy() if "group" in steps.columns else "",
        "session_id": steps["session_id"].to_numpy() if "session_id" in steps.columns else "",
        "start": step_start,
        "end": np.where(step_end != "", step_end, due),
    })

    # people and courses a flat-file line cannot carry
    pid_codes, pid_uniq = pd.factorize(pd.Series(person, dtype=object))
    bad_pid = np.asarray([bool(UNSAFE.search(p)) or not p for p in pid_uniq] or [False], dtype=bool)
    bad_course_set = sorted({c for c in course_of.tolist() if UNSAFE.search(c)})
    bad_course = np.isin(course, bad_course_set) if bad_course_set else np.zeros(len(course), dtype=bool)
    ok = ~bad_pid[pid_codes] & ~bad_course if len(person) else np.zeros(0, dtype=bool)
    table = pa.table({"p": pa.array(person[ok], type=pa.string()), "c": pa.array(course[ok].astype(str), type=pa.string())})
    parts = [pa.array(np.full(int(ok.sum()), "add, student"), type=pa.string()), table["p"], table["c"]]
    if has_dates:
        assert start is not None and end is not None
        import zoneinfo

        tz = zoneinfo.ZoneInfo(zone)
        period_start = int(dt.datetime.combine(start, dt.time(), tz).timestamp())
        period_end = int(dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), tz).timestamp())
        begin = _unix(step_start[ok], zone)
        begin = np.where(begin > 0, begin, period_start)
        parts += [pa.array(begin.astype(str), type=pa.string()),
                  pa.array(np.full(int(ok.sum()), str(period_end)), type=pa.string())]
    lines = pc.binary_join_element_wise(*parts, ", ")
    flat = ("\n".join(lines.to_pylist()) + "\n").encode("utf-8") if len(lines) else b""

    # cohorts: one per training group
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["name", "idnumber", "description"])
    for g, site, n in zip(groups["group"].tolist(), groups["site"].tolist(), groups["members"].tolist()):
        w.writerow([f"Training group {g}", g, f"{n} members at {site or 'no site'}"])
    cohorts = buf.getvalue().encode("utf-8")

    users_bytes = None
    missing: tuple[str, ...] = ()
    if users is not None:
        own = (dict(zip(people["person_id"].astype(str).tolist(), people["group"].astype(str).tolist()))
               if people is not None and "group" in people.columns else {})
        users_bytes, missing = _users_csv(person, course, enrol, users, own)
    return LmsFiles(enrol, flat, cohorts, users_bytes, tuple(str(pid_uniq[i]) for i in np.flatnonzero(bad_pid[: len(pid_uniq)])),
                    tuple(bad_course_set), without, missing)


def _users_csv(person: np.ndarray, course: np.ndarray, enrol: "pd.DataFrame", users: dict[str, str],
               own_group: dict[str, str]) -> tuple[bytes, tuple[str, ...]]:
    """Moodle upload-users rows: username, cohort1 (the person's training group), course1/group1… (the group
    whose session the person attends in that course)."""
    import pandas as pd

    frame = pd.DataFrame({"p": person, "c": course, "g": enrol["group"].astype(str).to_numpy(dtype=object)})
    frame["u"] = frame["p"].map(users)
    missing = tuple(sorted(set(frame.loc[frame["u"].isna(), "p"].tolist())))
    frame = frame[frame["u"].notna()]
    frame["k"] = frame.groupby("p", sort=False).cumcount()
    width = int(frame["k"].max()) + 1 if len(frame) else 0
    wide_c = frame.pivot(index="p", columns="k", values="c")
    wide_g = frame.pivot(index="p", columns="k", values="g")
    header = ["username", "cohort1"] + [x for k in range(1, width + 1) for x in (f"course{k}", f"group{k}")]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    order = list(dict.fromkeys(frame["p"].tolist()))
    for p in order:
        row = [users[p], own_group.get(p, "")]
        cs, gs = wide_c.loc[p].tolist(), wide_g.loc[p].tolist()
        for c, g in zip(cs, gs):
            row += ["" if not isinstance(c, str) else c, "" if not isinstance(g, str) else g]
        w.writerow(row)
    return buf.getvalue().encode("utf-8"), missing
