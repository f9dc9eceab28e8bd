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
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from .errors import Problem, ProblemsError

if TYPE_CHECKING:
    import pandas as pd

    from .catalogue import Catalogue

ENROLMENT_COLUMNS = ("person_id", "module", "lms_course", "format", "group", "session_id", "start", "end")
# What enrol_flatfile cannot carry in a field: its separator, characters that other importers treat as
# separators or quotes, line breaks, and spaces it would trim away.
UNSAFE_CHARACTER = re.compile(r"[,;\"'\r\n]")
UNSAFE = re.compile(UNSAFE_CHARACTER.pattern + r"|^\s|\s$")
USERS_COLUMNS = ("person_id", "username")
MAX_USERS_BYTES = 512 * 1024 * 1024


class LmsUsersError(ProblemsError):
    """The --lms-users file (person_id → LMS username) is invalid; every problem is listed."""

    what = "The --lms-users file"


@dataclass(frozen=True)
class LmsFiles:
    """What goes into OUTDIR/lms/, plus what could not go where.

    The two large texts are made when called, from arrays already checked: the run calls them on the
    thread that writes lms/ (:func:`trainmatch.outputs.write_handoff`), beside the other tables' writing.
    """

    enrolments: "pd.DataFrame"
    make_flatfile: Callable[[], Any]  # moodle-flatfile.txt, bytes-like (an Arrow buffer, not copied)
    cohorts: bytes
    make_users: Callable[[], bytes] | None  # moodle-users.csv, with --lms-users
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
    clean = _clean_users(text, delimiter)
    if clean is not None:
        return clean
    # a lone carriage return ends a row (as in the survey reader and Arrow's reader above); one inside quotes is kept
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        rows = list(reader)
    except csv.Error as error:
        raise LmsUsersError([Problem(name, f"is not a CSV file that can be read ({error}).", row=max(reader.line_num - 1, 0) or None,
                                     hint="Save it again as CSV (UTF-8) from the spreadsheet or the LMS.")]) from None
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


def _clean_users(text: str, delimiter: str) -> dict[str, str] | None:
    """The map when the users file has no problem at all, read by Arrow's CSV reader and checked column by
    column (a million rows in about a second); None at any doubt, and the row-by-row reading says what is wrong where."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    try:
        data = pa.py_buffer(text.encode("utf-8"))
        width = len(pacsv.open_csv(data, read_options=pacsv.ReadOptions(autogenerate_column_names=True),
                                   parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True)).schema)
        table = pacsv.read_csv(
            data,
            read_options=pacsv.ReadOptions(autogenerate_column_names=True),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(column_types={f"f{n}": pa.string() for n in range(width)},
                                                 strings_can_be_null=False, quoted_strings_can_be_null=False),
        )
    except (pa.ArrowInvalid, UnicodeError):
        return None
    header = [table.column(n)[0].as_py().strip() if table.num_rows else "" for n in range(table.num_columns)]
    if any(c not in header for c in USERS_COLUMNS):
        return None
    pids = [p.strip() for p in table.column(header.index("person_id")).to_pylist()[1:]]
    names = table.column(header.index("username")).to_pylist()[1:]
    if (all(pids) and len(set(pids)) == len(pids) and all(n and n == n.strip() for n in names)
            and not UNSAFE_CHARACTER.search("\0".join(names))):
        return dict(zip(pids, names))
    return None


def check_users_known(users: dict[str, str], known: "pd.Series", name: str) -> None:
    """LmsUsersError naming the rows of ids that are not people of the survey."""
    import pandas as pd

    ids = pd.Index(list(users), dtype=object)  # object, not Arrow strings: pandas' Arrow isin goes per value in Python
    unknown = ids[pd.Index(known.astype(str).to_numpy(dtype=object), dtype=object).get_indexer(ids) < 0]
    if len(unknown):
        rows = {pid: n for n, pid in enumerate(users, 1)}
        problems = [Problem(name, "is not a person of the survey.", row=rows[pid], column="person_id", value=pid,
                            hint="Remove the row, or check the id against the survey's id column.")
                    for pid in unknown[:20].tolist()]
        if len(unknown) > 20:
            problems.append(Problem(name, f"… and {len(unknown) - 20} more ids that are not people of the survey."))
        raise LmsUsersError(problems)


def lms_files(steps: "pd.DataFrame", groups: "pd.DataFrame", catalogue: "Catalogue", *, zone: str,
              start: dt.date | None, end: dt.date | None, users: dict[str, str] | None = None,
              people: "pd.DataFrame | None" = None, sessions: "pd.DataFrame | None" = None) -> LmsFiles:
    """Build the LMS files from the planned steps (with session_id, start, end, due) and the training groups.

    With a plan period, flat-file lines carry the enrolment's start (the session's start, else the period's
    first day at midnight in ``zone``) and end (midnight after the period's last day). Vectorised: ids are
    checked once per distinct id and the lines are joined in Arrow.
    """
    import zoneinfo

    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    from .columns import codes
    from .sessions import codes_into

    module_ids = list(catalogue.module_ids)
    course_of = [m.lms_course or m.id for m in catalogue.modules]  # unique: the catalogue checks it
    without = tuple(m.id for m in catalogue.modules if (m.lms_course or m.id) == m.id)
    mcode, _ = codes(steps["module"], module_ids)
    mcode = np.maximum(mcode, 0)

    def column(name: str) -> "pd.Series | str":
        return steps[name].array if name in steps.columns else ""

    end_col = _end_or_due(steps) if "end" in steps.columns and "due" in steps.columns else ""
    enrol = pd.DataFrame({
        "person_id": steps["person_id"].array,
        "module": steps["module"].array,
        "lms_course": pd.Categorical.from_codes(mcode, categories=course_of),
        "format": steps["format"].array,
        "group": column("group"),
        "session_id": column("session_id"),
        "start": column("start"),
        "end": end_col,
    })

    # people and courses a flat-file line cannot carry: checked once per distinct id
    pid = steps["person_id"]
    if isinstance(pid.dtype, pd.CategoricalDtype):
        pid_codes, pid_uniq = pid.cat.codes.to_numpy().astype(np.int64), pid.cat.categories.astype(str)
    else:
        found, uniq = pd.factorize(pid.astype(str))
        pid_codes, pid_uniq = found.astype(np.int64), pd.Index(uniq).astype(str)
    uniq_arrow = pc.cast(pa.array(pid_uniq.array), pa.string())  # Arrow-backed ids: no Python string per id
    bad_pid = pc.match_substring_regex(uniq_arrow, UNSAFE.pattern).to_numpy(zero_copy_only=False) | \
        (pc.utf8_length(uniq_arrow).to_numpy(zero_copy_only=False) == 0)
    bad_course_set = sorted({c for c in course_of if UNSAFE.search(c)})
    bad_course = np.asarray([c in bad_course_set for c in course_of] or [False], dtype=bool)
    ok = ~bad_pid[pid_codes] & ~bad_course[mcode] if len(steps) else np.zeros(0, dtype=bool)
    rows = np.flatnonzero(ok)
    # each enrolment's session (-1: none) and the sessions' starts in unix seconds, for the flat file's lines
    session_of = np.full(len(steps), -1, dtype=np.int64)
    seconds = np.zeros(0, dtype=np.int64)
    period: tuple[int, int] | None = None
    if start is not None and end is not None:
        tz = zoneinfo.ZoneInfo(zone)
        period = (int(dt.datetime.combine(start, dt.time(), tz).timestamp()),
                  int(dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), tz).timestamp()))
        if sessions is not None and len(sessions) and "session_id" in steps.columns:
            # one conversion per distinct start time (a few hundred), not per session
            start_codes, start_texts = pd.factorize(sessions["start"].astype(str))
            seconds = np.asarray([int(dt.datetime.strptime(t, "%Y-%m-%d %H:%M").replace(tzinfo=tz).timestamp()) if t else period[0]
                                  for t in start_texts.tolist()], dtype=np.int64)[start_codes]
            session_of = codes_into(steps["session_id"], pd.Index(sessions["session_id"].astype(str)))
    make_flatfile = partial(_flatfile, uniq_arrow, pid_codes[rows], mcode[rows], session_of[rows], seconds, period, course_of)

    # cohorts: one per training group
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["name", "idnumber", "description"])
    for g, site, n in zip(groups["group"].tolist(), groups["site"].tolist(), groups["members"].tolist()):
        w.writerow([f"Training group {g}", g, f"{n} members at {site or 'no site'}"])
    cohorts = buf.getvalue().encode("utf-8")

    make_users = None
    missing: tuple[str, ...] = ()
    if users is not None:
        seen, ids, at = _user_rows(pid_codes, uniq_arrow, users)
        missing = tuple(sorted(ids.filter(pa.array(at < 0)).to_pylist()))
        make_users = partial(_users_csv, seen, ids, at, users, mcode, course_of, enrol["group"], people)
    return LmsFiles(enrol, make_flatfile, cohorts, make_users, tuple(str(x) for x in pid_uniq[bad_pid].tolist()),
                    tuple(bad_course_set), without, missing)


def _flatfile(person_ids: "Any", person: np.ndarray, module: np.ndarray, session: np.ndarray, seconds: np.ndarray,
              period: tuple[int, int] | None, course_of: list[str]) -> "Any":
    """moodle-flatfile.txt's lines for the enrolments of ``person`` (codes into the Arrow text ``person_ids``),
    ``module`` and ``session`` (-1: none; ``seconds`` are the sessions' starts)."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    # A line is "add, student, <person_id>" and a tail ", <course>[, <start>, <end>]" with its line break. The
    # tail depends only on the module and the session (or none): it is made once per distinct (session, module),
    # so Arrow joins three parts per line instead of converting and joining five.
    M = len(course_of)
    tail_code, tail_keys = pd.factorize((session + 1) * M + module)
    tails = []
    second_list = seconds.tolist()
    for key in tail_keys.tolist():
        s, m = key // M - 1, key % M
        if period is None:
            tails.append(f", {course_of[m]}\n")
        else:
            tails.append(f", {course_of[m]}, {second_list[s] if s >= 0 else period[0]}, {period[1]}\n")
    people_col = pc.take(person_ids, pa.array(person))
    tail_col = pc.take(pa.array(tails, type=pa.string()), pa.array(tail_code.astype(np.int64)))
    return _joined_lines(pc.binary_join_element_wise(pa.scalar("add, student, "), people_col, tail_col, ""))


def _end_or_due(steps: "pd.DataFrame") -> "pd.Categorical":
    """A session step's end, else a self-paced step's due date, as one categorical (per category, not per step)."""
    import pandas as pd

    end = pd.Categorical(steps["end"]) if not isinstance(steps["end"].dtype, pd.CategoricalDtype) else steps["end"].array
    due = pd.Categorical(steps["due"]) if not isinstance(steps["due"].dtype, pd.CategoricalDtype) else steps["due"].array
    e_labels, d_labels = [str(x) for x in end.categories], [str(x) for x in due.categories]
    codes, labels = pd.factorize(np.asarray([*e_labels, *d_labels, ""], dtype=object))
    ec, dc = np.asarray(end.codes, dtype=np.int64), np.asarray(due.codes, dtype=np.int64)
    e_codes = np.where(ec >= 0, ec, len(e_labels) + len(d_labels))
    d_codes = np.where(dc >= 0, dc + len(e_labels), len(e_labels) + len(d_labels))
    empty_end = np.asarray([x == "" for x in e_labels] + [True] * (len(d_labels) + 1), dtype=bool)
    return pd.Categorical.from_codes(np.where(empty_end[e_codes], codes[d_codes], codes[e_codes]), categories=labels)


def _joined_lines(lines: "Any") -> "bytes | Any":
    """Arrow text lines (each already ending in a line break) as one UTF-8 text: the data buffer, sliced
    (bytes-like, no copy and no Python string per line: 240 MB at a million people)."""
    import pyarrow as pa

    if len(lines) == 0:
        return b""
    text = lines.combine_chunks() if isinstance(lines, pa.ChunkedArray) else lines
    offsets = np.frombuffer(text.buffers()[1], dtype=np.int32)[text.offset: text.offset + len(text) + 1]
    return text.buffers()[2].slice(int(offsets[0]), int(offsets[-1] - offsets[0]))


def _user_rows(pid_codes: np.ndarray, person_ids: "Any", users: dict[str, str]) -> tuple[np.ndarray, "Any", np.ndarray]:
    """Each enrolment's person numbered in first-seen order, those people's ids (Arrow text) and each one's
    row in the --lms-users map (-1: not in it)."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    from .columns import index_in

    seen, order = pd.factorize(pid_codes)
    ids = pc.take(person_ids, order)  # person_ids: Arrow text, the steps' distinct ids
    return seen, ids, index_in(ids, pa.array(list(users), type=pa.string()))


def _users_csv(seen: np.ndarray, ids: "Any", at: np.ndarray, users: dict[str, str], mcode: np.ndarray, course_of: list[str],
               group: "pd.Series", people: "pd.DataFrame | None") -> bytes:
    """Moodle upload-users rows: username, cohort1 (the person's training group), course1/group1… (the group
    whose session the person attends in that course), people in the order the steps first name them.

    Built in Arrow, without a Python string per person: each person's enrolments are joined in path order
    and padded to the widest path, and the fields are quoted as ``csv.writer`` quotes them. ``seen``, ``ids``
    and ``at`` are :func:`_user_rows`'s."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    from .columns import codes, index_in, text_array

    known = at >= 0
    names = _csv_field(pc.take(pa.array(list(users.values()), type=pa.string()), at[known]))
    own = pa.array(np.full(int(known.sum()), "", dtype=object), type=pa.string())
    if people is not None and "group" in people.columns:
        own_at = index_in(ids.filter(pa.array(known)), text_array(people["person_id"]))
        own_codes, own_groups = codes(people["group"])
        labels = _csv_field(pa.array([*own_groups, ""], type=pa.string()))  # quoted once per group
        group_of = np.append(own_codes, -1)[own_at]  # -1: not in people.csv, or no group
        own = pc.take(labels, np.where(group_of >= 0, group_of, len(own_groups)))  # no group: ""
    keep = np.flatnonzero(known[seen])  # the enrolments of people with a username
    row = (np.cumsum(known) - 1)[seen[keep]]  # their person's row
    by = np.argsort(row, kind="stable")  # path order within each person
    count = np.bincount(row, minlength=len(names))
    width = int(count.max()) if len(count) else 0
    # Each enrolment is the text ",<course>,<group>", made once per distinct (course, group); a person's
    # enrolments are joined as one list and the columns they do not fill are padded with ",,".
    gcode, glabels = codes(group)
    courses = _csv_field(pa.array(course_of, type=pa.string())).to_pylist()
    groups = _csv_field(pa.array([*glabels, ""], type=pa.string())).to_pylist()
    e = keep[by]
    pair_code, pairs = pd.factorize(mcode[e] * (len(glabels) + 1) + np.where(gcode[e] >= 0, gcode[e], len(glabels)))
    texts = pa.array([f",{courses[p // (len(glabels) + 1)]},{groups[p % (len(glabels) + 1)]}" for p in pairs.tolist()],
                     type=pa.string())
    offsets = pa.array(np.concatenate([[0], np.cumsum(count)]).astype(np.int32))
    paths = pc.binary_join(pa.ListArray.from_arrays(offsets, pc.take(texts, pair_code)), "")
    pad = pc.take(pa.array([",," * (width - n) for n in range(width + 1)], type=pa.string()), count)
    header = ["username", "cohort1"] + [x for n in range(1, width + 1) for x in (f"course{n}", f"group{n}")]
    body = _joined_lines(pc.binary_join_element_wise(names, ",", own, paths, pad, "\n", ""))
    return (",".join(header) + "\n").encode("utf-8") + bytes(body)


def _csv_field(values: "Any") -> "Any":
    """Arrow text as ``csv.writer`` writes a field with "\\n" line ends: quoted (quotes doubled) when it holds a
    comma, a quote or a line feed."""
    import pyarrow.compute as pc

    quoted = pc.binary_join_element_wise('"', pc.replace_substring(values, '"', '""'), '"', "")
    return pc.if_else(pc.match_substring_regex(values, '[,"\n]'), quoted, values)
