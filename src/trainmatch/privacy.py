"""Personal data on request: show what a run holds about one person, erase people, and retention.

- :func:`person` gathers every row, letter and mention of one person in a run
  (or a folder of runs), as one JSON-ready document (GDPR Art. 15).
- :func:`erase` removes people from every file of a run (Art. 17): table rows,
  their letter, enrolments and Moodle username; a support person becomes "to be
  named" in groups.csv, people.csv and the letters of the people they supported
  (found from people.csv's support_person, not by reading every letter); session
  attendees, calendar descriptions and Moodle cohorts are counted again (a session
  nobody is left in is removed, with its calendar event); the
  aggregates, the workbook and the report are rebuilt from what remains. The run is rewritten in a staged
  copy and swapped in only when complete; run.json records when and how many,
  never who.
- :func:`erase_expired` removes whole runs older than ``privacy.retain_months``.

Which files hold ids, and how, is :data:`trainmatch.runfiles.RUN_FILES`; a
file that no entry covers makes these commands refuse the folder.
"""

from __future__ import annotations

import json
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from .errors import DataError, OutputError, UsageError, closest_id
from .runfiles import RUN_FILES, RunFile, WORKBOOK_SHEETS, run_files

if TYPE_CHECKING:
    import pandas as pd

    from .programme import Programme

RUN_RECORD = "run.json"
# The derived files erase rebuilds from the remaining tables; any other derived file is kept as it is.
REBUILT = frozenset({"cohorts.csv", "groups.csv", "capacity.csv", "plans.xlsx", "report.html", "run.json"})
# Columns that hold person ids: read as text (an id such as 000017 is not the number 17).
ID_COLUMNS = tuple(dict.fromkeys(c for e in RUN_FILES for c in (*e.owner, *e.named, *e.lists)))
BUILT_IN = "built-in default programme"


# --------------------------------------------------------------------------- runs


def open_run(folder: str | Path) -> dict[str, Any]:
    """run.json of a run folder; DataError when ``folder`` is not a trainmatch run (or not a folder)."""
    from .staging import MARKER, is_output_folder

    folder = Path(folder)
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise DataError(f"{str(folder)!r} {what}. Give the output folder of `trainmatch assign`.")
    record_path = folder / RUN_RECORD
    if not is_output_folder(folder) or not record_path.is_file():
        raise DataError(
            f"{str(folder)!r} is not a trainmatch run: it has no {MARKER} and {RUN_RECORD}. "
            "Give the output folder of `trainmatch assign` (the one holding people.csv and run.json)."
        )
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeError) as exc:
        raise DataError(f"{record_path}: cannot be read as JSON ({exc}). Restore it from a backup of the run.") from None
    if not isinstance(record, dict) or not isinstance(record.get("counts"), dict):
        raise DataError(f"{record_path}: has no counts; it was not written by `trainmatch assign`.")
    return record


def check_outside(run: str | Path, path: str | Path, option: str) -> None:
    """Refuse an output inside the run folder: it would become a file of the run that erase must also search."""
    inside = Path(os.path.abspath(path))
    if Path(os.path.abspath(run)) in inside.parents:
        raise OutputError(f"{option} {str(path)!r} is inside the input run folder {str(run)!r}; "
                          "write it somewhere else, e.g. next to the run.")


def is_run(folder: Path) -> bool:
    from .staging import is_output_folder

    return folder.is_dir() and is_output_folder(folder) and (folder / RUN_RECORD).is_file()


def find_runs(folder: str | Path) -> list[Path]:
    """``folder`` when it is a run, else the runs inside it (any depth, sorted); DataError when there is none."""
    folder = Path(folder)
    if is_run(folder):
        return [folder]
    if not folder.is_dir():
        raise DataError(f"{str(folder)!r} is not a folder. Give a run folder (from `trainmatch assign`) or a folder of runs.")
    runs = []
    for here, dirs, _ in os.walk(folder):
        path = Path(here)
        if path != folder and is_run(path):
            runs.append(path)
            dirs.clear()
        dirs.sort()
    if not runs:
        open_run(folder)  # says why the folder is not a run
    return sorted(runs)


def clean_ids(ids: Iterable[object], option: str = "--id") -> list[str]:
    """The ids as given, stripped, without repeats; UsageError when none is left or one is empty."""
    out = []
    for raw in ids:
        text = str(raw).strip()
        if not text:
            raise UsageError(f"Invalid value for '{option}': an id must not be empty; give the person_id as in people.csv.")
        out.append(text)
    if not out:
        raise UsageError(f"Give at least one person: {option} ID (repeatable) or --ids-file FILE.")
    return list(dict.fromkeys(out))


def read_ids_file(path: str | Path) -> list[str]:
    """One person_id per line (blank lines and lines starting with # skipped); a CSV with a person_id column too."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise UsageError(f"Invalid value for '--ids-file': {str(path)!r} does not exist.") from None
    except UnicodeError:
        raise DataError(f"{path}: is not UTF-8 text. Save it as UTF-8 with one person_id per line.") from None
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line and not line.startswith("#")]
    if lines and lines[0].strip('"').lower() == "person_id":
        lines = [line.split(",")[0].strip().strip('"') for line in lines[1:]]
    if not lines:
        raise DataError(f"{path}: lists no person_id. Write one person_id per line.")
    return lines


def run_ids(folder: Path) -> "pd.Series":
    """Every person_id the run's survey tables hold (people.csv and rejects.csv), for suggestions."""
    import pandas as pd

    from .runfiles import read_columns

    parts = [read_columns(folder / name, ["person_id"])["person_id"] for name in ("people.csv", "rejects.csv") if (folder / name).is_file()]
    if not parts:
        return pd.Series([], dtype=object)
    ids = pd.concat(parts, ignore_index=True)
    return pd.Series(ids[ids.str.strip() != ""].unique())


def not_found(missing: list[str], folders: list[Path]) -> DataError:
    """The error for ids that no run holds, each with the closest id when there is one."""
    import pandas as pd

    candidates = pd.concat([run_ids(f) for f in folders], ignore_index=True).drop_duplicates() if folders else pd.Series([], dtype=object)
    where = str(folders[0]) if len(folders) == 1 else f"the {len(folders)} runs in it"
    lines = []
    for pid in missing:
        near = closest_id(pid, candidates.tolist())
        lines.append(f"person_id {pid!r} is not in {where}." + (f" Did you mean {near!r}?" if near else ""))
    lines.append("Nothing was changed. Check the id against people.csv (ids are compared exactly, case included).")
    return DataError("\n".join(lines))


def programme_for_run(record: dict[str, Any], programme: "Programme | str | Path | None", folder: Path) -> "Programme":
    """The programme the run was made with: the one given, else the run's own (built-in, or its folder if it is still
    there); its fingerprint must be the run's."""
    from .programme import Programme, load_programme

    made = record.get("programme", {}) or {}
    if isinstance(programme, Programme):
        loaded = programme
    elif programme is not None:
        loaded = load_programme(programme)
    elif made.get("source") == BUILT_IN:
        loaded = load_programme(None)
    elif made.get("source") and Path(str(made["source"])).is_dir():
        loaded = load_programme(str(made["source"]))
    else:
        raise UsageError(
            f"{folder}: the run was made with the programme {made.get('source')!r}, which is not there now. "
            "Give that programme folder with --programme."
        )
    if made.get("fingerprint") and loaded.fingerprint != made["fingerprint"]:
        raise DataError(
            f"{folder}: the run was made with programme fingerprint {made['fingerprint']}, but the programme "
            f"{loaded.source!r} has {loaded.fingerprint}. Give the programme folder the run was made with (--programme)."
        )
    return loaded


# --------------------------------------------------------------------------- person


def person(folder: str | Path, person_id: str, *, registry: Iterable[RunFile] = RUN_FILES) -> dict[str, Any]:
    """Everything the run (or each run in the folder) holds about one person, as a JSON-ready document.

    ``runs`` lists, per run that holds the person, ``files``: per file its rows
    (every column) or lines naming the person, and the person's letter.
    An id that no run holds is a DataError suggesting the closest id.
    """
    (person_id,) = clean_ids([person_id])
    registry = tuple(registry)
    runs = find_runs(folder)
    found = []
    for run in runs:
        files = run_about(run, person_id, registry)
        if files:
            found.append({"run": str(run), "files": files})
    if not found:
        raise not_found([person_id], runs)
    return {
        "person_id": person_id,
        "made": "trainmatch person",
        "note": "Rows are shown as the run's files hold them. The survey export the run was made from is not "
                "in the run folder; search it separately.",
        "runs": found,
    }


def run_about(run: Path, person_id: str, registry: tuple[RunFile, ...]) -> dict[str, Any]:
    """One run's files that hold the person: table rows, named rows, letter, flat-file lines, calendar lines."""
    from .letters import plan_filename
    from .runfiles import calendar_events, flatfile_match, header_of, ics_mentions, lms_user_rows, match_table, read_table

    ids = {person_id}
    letter = plan_filename(person_id)
    out: dict[str, Any] = {}
    own = _own(run, person_id)
    for relative, entry in run_files(run, registry):
        if entry.kind == "letter":
            if os.path.basename(relative) == letter:
                out[relative] = {"holds": entry.label or "a letter to the person", "file": relative}
            continue
        path = run / relative
        if entry.kind == "table":
            match = match_table(path, entry, ids)
            if not (match.owned.any() or match.named.any()):
                continue
            frame = read_table(path, ID_COLUMNS + (*entry.owner, *entry.named, *entry.lists))
            item: dict[str, Any] = {"holds": entry.label} if entry.label else {}
            if match.owned.any():
                item["rows"] = _records(frame[match.owned])
            if match.named.any():  # another person's row: only the columns that say how it names the person
                named = frame[match.named]
                shown = [c for c in entry.named_shows if c in named]
                item["named_in"] = _records(named[shown].drop_duplicates() if shown else named)
            out[relative] = item
        elif entry.kind == "flatfile":
            data = path.read_bytes()
            starts, ends, hit = flatfile_match(data, ids)
            if hit.any():
                out[relative] = {"lines": [data[s:e].decode("utf-8").rstrip("\r\n") for s, e in zip(starts[hit], ends[hit])]}
        elif entry.kind == "ics":
            lines = ics_mentions(path.read_text(encoding="utf-8"), ids)
            if lines:
                out[relative] = {"lines": lines}
        elif entry.kind == "sessions":
            sessions = read_table(path, ID_COLUMNS)
            mine = sessions[sessions["session_id"].astype(str).isin(own["sessions"])] if "session_id" in sessions else sessions[:0]
            if len(mine):
                out[relative] = {"holds": entry.label, "rows": _records(mine)}
        elif entry.kind == "calendar":
            if os.path.basename(relative)[:-len(".ics")] in own["groups"]:
                events = calendar_events(path.read_text(encoding="utf-8"), own["sessions"])
                if events:
                    out[relative] = {"holds": entry.label, "lines": events}
        elif entry.kind == "lms_cohorts":
            cohorts = read_table(path, ("idnumber",))
            mine = cohorts[cohorts["idnumber"].astype(str).isin(own["group"])] if "idnumber" in cohorts else cohorts[:0]
            if len(mine):
                out[relative] = {"holds": entry.label, "rows": _records(mine)}
        elif entry.kind == "lms_users":
            enrolments = run / os.path.dirname(relative) / "enrolments.csv"
            if enrolments.is_file():
                from .runfiles import read_columns

                try:
                    row = lms_user_rows(path, enrolments, [person_id])
                except DataError:  # usernames that cannot be told apart: say so rather than leave the file out
                    if (read_columns(enrolments, ["person_id"])["person_id"] == person_id).any():
                        out[relative] = {"holds": entry.label, "note": "its rows cannot be matched to people (the "
                                         "--lms-users file lacked some of them); look up the person's username there"}
                    continue
                if person_id in row:
                    users = read_columns(path, header_of(path))
                    out[relative] = {"holds": entry.label, "rows": _records(users.iloc[[row[person_id]]])}
    return out


def _own(run: Path, person_id: str) -> dict[str, set[str]]:
    """The person's sessions (plans.csv's session_id) and training group (people.csv's group), which the sessions,
    calendar and Moodle cohort files hold without naming them."""
    from .runfiles import read_columns

    out: dict[str, set[str]] = {"sessions": set(), "groups": set(), "group": set()}
    if (run / "plans.csv").is_file():
        steps = read_columns(run / "plans.csv", ["person_id", "session_id"])
        if "session_id" in steps:
            sids = steps.loc[steps["person_id"].str.strip() == person_id, "session_id"]
            out["sessions"] = set(sids[sids != ""])
    if out["sessions"] and (run / "sessions.csv").is_file():  # a group's calendar holds the group's sessions
        sessions = read_columns(run / "sessions.csv", ["session_id", "group"])
        if "group" in sessions:
            out["groups"] = set(sessions.loc[sessions["session_id"].isin(out["sessions"]), "group"])
    if (run / "people.csv").is_file():
        people = read_columns(run / "people.csv", ["person_id", "group"])
        if "group" in people:
            group = people.loc[people["person_id"].str.strip() == person_id, "group"]
            out["group"] = set(group[group != ""])
    return out


def _records(frame: "pd.DataFrame") -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts: missing values as null, numbers as numbers."""
    import math

    rows = frame.astype(object).where(frame.notna(), None).to_dict("records")
    return [{str(k): (None if isinstance(v, float) and not math.isfinite(v) else _plain(v)) for k, v in row.items()} for row in rows]


def _plain(value: Any) -> Any:
    import datetime as dt

    if isinstance(value, dt.datetime):  # a session's start or end, written to the minute
        return value.isoformat(sep=" ", timespec="minutes")
    if isinstance(value, dt.date):
        return value.isoformat()
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return value.item()
    return value


def person_json(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def person_html(doc: dict[str, Any]) -> str:
    """The document as a readable, self-contained HTML page (autoescaped)."""
    from .letters import template_environment

    return template_environment().get_template("person.html.j2").render(doc=doc)


def write_person(doc: dict[str, Any], path: str | Path, *, force: bool = False) -> Path:
    """Write the document as JSON (``.json``) or an HTML page (``.html``), atomically."""
    from .staging import check_output_file, staged_file

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".json", ".html", ".htm"):
        raise UsageError(f"Invalid value for '-o': must end in .json or .html, got {path.name!r}.")
    check_output_file(path, force=force, option="-o")
    text = person_json(doc) if suffix == ".json" else person_html(doc)
    with staged_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


# --------------------------------------------------------------------------- erase


@dataclass(frozen=True)
class Erasure:
    """What :func:`erase` did: how many people, and the rows or lines removed per file (no ids)."""

    folder: Path
    people: int
    removed: dict[str, int] = field(default_factory=dict)
    changed: dict[str, int] = field(default_factory=dict)  # rows or lines where a person was named and now is not
    at: str = ""
    recounted: dict[str, int] = field(default_factory=dict)  # rows or lines whose count of people was updated


def erase(folder: str | Path, ids: Iterable[object], *, programme: "Programme | str | Path | None" = None,
          registry: Iterable[RunFile] = RUN_FILES, now: datetime | None = None) -> Erasure:
    """Remove the people from every file of the run, atomically; see the module's description.

    Every id must be in the run (else DataError with the closest id, and
    nothing is changed). ``programme`` is needed only when the run's own
    programme folder has moved: the report is rebuilt with it.
    """
    from .staging import StagedFolder

    folder = Path(folder)
    record = open_run(folder)
    wanted = clean_ids(ids)
    staged = StagedFolder(folder, force=True, option="OUTDIR")
    staged.prepare()  # the run is locked from here: no other run replaces it while it is read and rewritten
    try:
        return _erase(folder, record, wanted, staged, programme=programme, registry=tuple(registry), now=now)
    finally:
        staged.close()


def _erase(folder: Path, record: dict[str, Any], wanted: list[str], staged: Any, *, programme: Any,
           registry: tuple[RunFile, ...], now: datetime | None) -> Erasure:
    """:func:`erase` once the run is locked."""
    from .letters import plan_filename
    from .runfiles import erase_ics, erase_lines, erase_table, flatfile_match, match_table
    from .staging import MARKER

    ids = set(wanted)
    files = run_files(folder, registry)
    letters = {plan_filename(i) for i in ids}
    supported, rounds = _people_facts(folder, ids)
    if not any(e.kind == "letter" for _, e in files):
        supported = []
    rewrite = {plan_filename(i) for i in supported}  # their letters name an erased support person
    matches: dict[str, Any] = {}
    present: set[str] = set()
    for relative, entry in files:
        if entry.kind == "table":
            matches[relative] = match_table(folder / relative, entry, ids)
            present |= matches[relative].found
        elif entry.kind == "letter" and os.path.basename(relative) in letters:
            present |= {i for i in ids if plan_filename(i) == os.path.basename(relative)}
    missing = [i for i in wanted if i not in present]
    if missing:
        raise not_found(missing, [folder])
    if "people.csv" in matches and matches["people.csv"].owned.all():
        raise DataError(f"{folder}: these are all the people the run planned, so nothing would remain. Nothing was changed; "
                        "to erase everyone, delete the run folder.")
    loaded = programme_for_run(record, programme, folder)
    at = (now or datetime.now(timezone.utc)).astimezone(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    removed: dict[str, int] = {}
    changed: dict[str, int] = {}
    recounted: dict[str, int] = {}
    derived: set[str] = set()
    times = os.stat(folder / RUN_RECORD)
    with staged as tmp, ThreadPoolExecutor(max_workers=1) as linker:
        for parent in sorted({os.path.dirname(relative) for relative, _ in files} - {""}):
            (tmp / parent).mkdir(parents=True, exist_ok=True)
        kept = []
        later: list[tuple[str, RunFile]] = []
        removed_steps: list[dict[str, str]] = []  # the people's plan steps: their sessions lose an attendee each
        source, staging = str(folder), str(tmp)  # strings: a Path per letter costs seconds at 100,000 letters
        for relative, entry in files:
            if entry.kind == "letter":
                name = os.path.basename(relative)
                if name in letters:  # counted by pattern: a letter's name holds its person's id
                    removed[entry.pattern] = removed.get(entry.pattern, 0) + 1
                elif name in rewrite:
                    changed[entry.pattern] = changed.get(entry.pattern, 0) + 1
                    _unname_letter(folder / relative, tmp / relative, ids)
                else:
                    kept.append((f"{source}/{relative}", f"{staging}/{relative}"))
        linking = linker.submit(_link_all, kept)  # system calls, outside the GIL: meanwhile the tables and report are rebuilt
        for relative, entry in files:
            if entry.kind == "letter":
                continue
            path, target = folder / relative, tmp / relative
            if entry.kind == "table":
                match = matches[relative]
                removed[relative] = erase_table(path, target, entry, ids, match,
                                                removed_steps if relative == "plans.csv" else None)
                if match.named.any():
                    changed[relative] = int(match.named.sum())
                if relative in REBUILT:  # groups.csv: its members are counted again from the staged copy
                    derived.add(relative)
            elif entry.kind in ("sessions", "calendar", "lms_cohorts", "lms_users"):
                later.append((relative, entry))  # counted again from the tables once they are written
            elif entry.kind == "flatfile":
                data = path.read_bytes()
                starts, ends, hit = flatfile_match(data, ids)
                target.write_bytes(erase_lines(data, starts, ends, hit))
                removed[relative] = int(hit.sum())
            elif entry.kind == "ics":
                with open(path, encoding="utf-8", newline="") as fh:
                    text, n = erase_ics(fh.read(), entry, ids)
                with open(target, "w", encoding="utf-8", newline="") as fh:
                    fh.write(text)
                changed[relative] = n
            elif entry.kind == "derived" and relative in REBUILT:
                derived.add(relative)
            elif entry.kind == "derived":  # holds no ids and erase cannot rebuild it: kept as it is
                _link_or_copy(path, target)
            elif relative != MARKER:
                _link_or_copy(path, target)
        _erase_handoff(folder, tmp, later, ids, removed, recounted, removed_steps)
        record = _record_after_erasure(record, removed, _rejected_rows(folder, ids), rounds, at, len(ids))
        erasures = record["erasures"]
        note = (f"{sum(e['people'] for e in erasures)} person(s) were erased from this run on request "
                f"({', '.join(e['at'][:10] for e in erasures)}); the tables, workbook and this report were rebuilt "
                "from the people who remain. Reliability, item statistics and the fit table need the survey answers "
                "and are not shown after an erasure.")
        rebuild(tmp, loaded, record, derived, notes=[note], source=folder)
        _recount_cohorts(folder, tmp, [relative for relative, entry in later if entry.kind == "lms_cohorts"], recounted)
        os.utime(tmp / RUN_RECORD, ns=(times.st_atime_ns, times.st_mtime_ns))  # the run's date, for retention
        linking.result()
    return Erasure(folder, len(ids), removed, changed, at, recounted)


def _recount_cohorts(folder: Path, tmp: Path, files: list[str], recounted: dict[str, int]) -> None:
    """The Moodle cohort files with each cohort's member count from the rebuilt groups.csv in ``tmp``."""
    from .runfiles import lms_cohort_counts, read_table

    groups = read_table(tmp / "groups.csv", ID_COLUMNS, columns=("group", "members")) \
        if files and (tmp / "groups.csv").is_file() else None
    for relative in files:
        if groups is None:
            _link_or_copy(folder / relative, tmp / relative)
            continue
        data, n = lms_cohort_counts(folder / relative, groups)
        (tmp / relative).write_bytes(data)
        recounted[relative] = n


# Counts of run.json kept by a table's rows: each goes down by the rows erase took out of the table.
_COUNTED_ROWS = (("plans.csv", "steps"), ("deferred.csv", "deferred"), ("lms/enrolments.csv", "enrolments"),
                 ("sessions.csv", "sessions"))


def _record_after_erasure(record: dict[str, Any], removed: dict[str, int], rejected_rows: int, rounds: dict[str, int],
                          at: str, n_people: int) -> dict[str, Any]:
    """run.json after an erasure: its counts less what was removed (still reconciling), the erasure listed (when,
    how many, never who), and a follow-up round's pairing counts less the erased people."""
    people_removed = removed.get("people.csv", 0)
    counts = dict(record["counts"])
    counts["accepted"] = counts.get("accepted", 0) - people_removed
    counts["rejected"] = counts.get("rejected", 0) - rejected_rows
    counts["rows_read"] = counts.get("rows_read", 0) - people_removed - rejected_rows
    counts["reconciles"] = counts["accepted"] + counts["rejected"] == counts["rows_read"]
    for name, key in _COUNTED_ROWS:
        if key in counts:
            counts[key] = counts[key] - removed.get(name, 0)
    out = {**record, "counts": counts, "erasures": [*record.get("erasures", []), {"at": at, "people": n_people}]}
    if isinstance(record.get("followup"), dict) and isinstance(record["followup"].get("counts"), dict):
        fu = dict(record["followup"]["counts"])  # the pairing with the previous round, without the people
        leavers = removed.get("leavers.csv", 0)
        for key, n in (("paired", rounds.get("paired", 0)), ("joiners", rounds.get("joiner", 0)), ("leavers", leavers),
                       ("previous_people", rounds.get("paired", 0) + leavers)):
            if key in fu:
                fu[key] = fu[key] - n
        if {"paired", "leavers", "joiners", "previous_people"} <= set(fu):
            fu["reconciles"] = (fu["paired"] + fu["leavers"] == fu["previous_people"]
                                and fu["paired"] + fu["joiners"] == counts["accepted"])
        out["followup"] = {**record["followup"], "counts": fu}
    return out


def _people_facts(folder: Path, ids: set[str]) -> tuple[list[str], dict[str, int]]:
    """From one read of people.csv: the people (not themselves erased) whose support person is one of ``ids``
    (their letters name that person), and how many of ``ids`` people.csv lists per ``round`` (paired, joiner)
    in a follow-up."""
    from .runfiles import read_columns

    path = folder / "people.csv"
    if not path.is_file():
        return [], {}
    frame = read_columns(path, ["person_id", "support_person", "round"])
    erased = frame["person_id"].str.strip().isin(ids)
    supported = []
    if "support_person" in frame:
        supported = frame.loc[frame["support_person"].str.strip().isin(ids) & ~erased, "person_id"].tolist()
    rounds = frame.loc[erased, "round"].value_counts().to_dict() if "round" in frame else {}
    return supported, rounds


def _unname_letter(source: Path, target: Path, ids: set[str]) -> None:
    """A letter with an erased support person's id (and the role after it, which would point to them) replaced by
    "to be named" in the letter's language (groups.csv says it in English)."""
    import html
    import re

    from .letters import TEXT

    alternatives = "|".join(re.escape(html.escape(i)) for i in sorted(ids, key=len, reverse=True))
    pattern = re.compile(rf"(?<![0-9A-Za-z])(?:{alternatives})(?![0-9A-Za-z])(?: \([^()<>]*\))?")
    with open(source, encoding="utf-8", newline="") as fh:
        text = fh.read()
    lang = re.search(r'<html lang="([a-z]+)"', text[:1000])
    phrase = TEXT.get(lang.group(1) if lang else "en", TEXT["en"])["to_be_named"]
    with open(target, "w", encoding="utf-8", newline="") as fh:
        fh.write(pattern.sub(html.escape(phrase), text))


def _erase_handoff(folder: Path, tmp: Path, files: list[tuple[str, RunFile]], ids: set[str], removed: dict[str, int],
                   recounted: dict[str, int], removed_steps: list[dict[str, str]]) -> None:
    """sessions.csv's attendee counts less the removed plan steps, the calendars of the sessions whose count changed,
    and the people's rows of lms/moodle-users.csv (the Moodle cohorts wait for the rebuilt groups.csv)."""
    from .runfiles import calendar_counts, erase_lines, line_bounds, lms_user_rows, session_counts

    counts: dict[str, str] = {}
    groups: set[str] = set()
    for relative, entry in files:
        if entry.kind == "sessions":
            from .runfiles import set_cells

            counts, group_of = session_counts(folder / relative, removed_steps)
            groups = set(group_of.values())
            empty = {sid for sid, n in counts.items() if n == "0"}  # a session nobody is left in is no session
            data, n = set_cells(folder / relative, "session_id", "attendees", counts, drop=empty)
            (tmp / relative).write_bytes(data)
            recounted[relative] = n - len(empty)
            removed[relative] = len(empty)
    for relative, entry in files:
        path, target = folder / relative, tmp / relative
        if entry.kind == "calendar":
            if os.path.basename(relative)[:-len(".ics")] not in groups:  # a group's calendar holds its sessions
                _link_or_copy(path, target)
                continue
            with open(path, encoding="utf-8", newline="") as fh:
                text, n, events = calendar_counts(fh.read(), counts)
            if not events:  # every session of the group is gone: so is its calendar (one needs an event)
                removed[relative] = 1
                continue
            with open(target, "w", encoding="utf-8", newline="") as fh:
                fh.write(text)
            recounted[relative] = n
        elif entry.kind == "lms_users":
            enrolments = folder / os.path.dirname(relative) / "enrolments.csv"
            if not enrolments.is_file():
                raise DataError(f"{path}: lms/enrolments.csv is not next to it, so its rows cannot be matched to people. "
                                "Nothing was changed. Restore the run's lms folder and run again.")
            import numpy as np

            rows = lms_user_rows(path, enrolments, ids)
            data = path.read_bytes()
            starts, ends = line_bounds(data)  # one line per row: lms_user_rows has checked it
            drop = np.zeros(len(starts), dtype=bool)
            drop[[r + 1 for r in rows.values()]] = True
            target.write_bytes(erase_lines(data, starts, ends, drop))
            removed[relative] = len(rows)


def _link_all(pairs: list[tuple[str, str]]) -> None:
    for source, target in pairs:
        _link_or_copy(source, target)


def _link_or_copy(source: str | Path, target: str | Path) -> None:
    """A hard link (the old folder is removed after the swap, so the file is not shared for long), else a copy."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _rejected_rows(folder: Path, ids: set[str]) -> int:
    """How many distinct survey rows of rejects.csv belong to the people (rows, not cells)."""
    from .runfiles import read_columns

    path = folder / "rejects.csv"
    if not path.is_file():
        return 0
    frame = read_columns(path, ["row", "person_id"])
    if "row" not in frame or "person_id" not in frame:
        return 0
    return int(frame.loc[frame["person_id"].str.strip().isin(ids), "row"].nunique())


def rebuild(folder: Path, programme: "Programme", record: dict[str, Any], derived: set[str], *, notes: list[str],
            source: Path, min_cell: int | None = None) -> None:
    """Rebuild a run's derived files in ``folder`` from its tables and ``source``'s (the run before): cohort sizes
    and means, group members, capacity, the workbook (when the run had one), the report, and run.json (``record``)."""
    from .outputs import write_csv_fast, write_json, write_workbook
    from .runfiles import read_table

    people = read_table(folder / "people.csv", ID_COLUMNS)
    if "cohorts.csv" in derived:
        write_csv_fast(cohort_table(read_table(source / "cohorts.csv"), people, programme), folder / "cohorts.csv")
    if "groups.csv" in derived:  # the staged copy when erase has written it (support persons taken out), else the run's
        groups = folder / "groups.csv" if (folder / "groups.csv").is_file() else source / "groups.csv"
        write_csv_fast(group_table(read_table(groups, ID_COLUMNS), people, programme), folder / "groups.csv")
    if "capacity.csv" in derived:
        from .exports import capacity_table

        write_csv_fast(capacity_table(people, programme), folder / "capacity.csv")
    counts = record["counts"]
    for name, key in (("cohorts.csv", "cohorts"), ("groups.csv", "groups")):
        if (folder / name).is_file() and key in counts:
            counts[key] = len(read_table(folder / name, ID_COLUMNS))
    if "plans.xlsx" in derived:
        sheets = {sheet: read_table(folder / name, ID_COLUMNS) for sheet, name in WORKBOOK_SHEETS.items() if (folder / name).is_file()}
        write_workbook(sheets, folder / "plans.xlsx")
    if "report.html" in derived:
        (folder / "report.html").write_text(render_run_report(folder, programme, record, notes=notes, min_cell=min_cell, people=people),
                                            encoding="utf-8")
    write_json(record, folder / RUN_RECORD)


def cohort_table(cohorts: "pd.DataFrame", people: "pd.DataFrame", programme: "Programme") -> "pd.DataFrame":
    """cohorts.csv for the people who remain: sizes and shares counted again; a cohort that lost people gets the
    means of its remaining members' scores; an empty cohort is left out."""
    import numpy as np

    sizes = people["cohort"].astype(str).value_counts()
    out = cohorts.copy()
    ids = out["cohort"].astype(str)
    new = ids.map(sizes).fillna(0).astype(np.int64)
    lost = new.to_numpy() != out["size"].to_numpy()
    for d in programme.domain_ids:
        if f"mean_{d}" in out and f"score_{d}" in people:
            means = people.groupby(people["cohort"].astype(str))[f"score_{d}"].mean().round(3)
            out.loc[lost, f"mean_{d}"] = ids[lost].map(means).to_numpy()
    out["size"] = new
    total = int(new.sum())
    if "share" in out:
        out["share"] = new / total if total else np.nan
    return out[new.to_numpy() > 0].reset_index(drop=True)


def group_table(groups: "pd.DataFrame", people: "pd.DataFrame", programme: "Programme") -> "pd.DataFrame":
    """groups.csv for the people who remain: members counted again, an empty group left out."""
    import numpy as np

    sizes = people["group"].astype(str).value_counts()
    out = groups.copy()
    members = out["group"].astype(str).map(sizes).fillna(0).astype(np.int64)
    lost = members.to_numpy() != out["members"].to_numpy()
    out["members"] = members
    if "undersized" in out:
        out.loc[lost, "undersized"] = members[lost] < programme.group_min_size
    return out[members.to_numpy() > 0].reset_index(drop=True)


REPORT_STEP_COLUMNS = ("person_id", "format", "objective", "hours")  # what the report aggregates of steps and deferred items


def render_run_report(folder: Path, programme: "Programme", record: dict[str, Any], *, notes: list[str],
                      min_cell: int | None = None, people: "pd.DataFrame | None" = None, steps: "pd.DataFrame | None" = None,
                      deferred: "pd.DataFrame | None" = None) -> str:
    """The HR report of a run, from its files (as :func:`trainmatch.jobs.assign` renders it from the pipeline);
    ``people``, ``steps`` and ``deferred`` are its people.csv and the :data:`REPORT_STEP_COLUMNS` of plans.csv and
    deferred.csv when the caller has read them already."""
    import pandas as pd

    from .columns import positions
    from .report import render_report_data, report_data
    from .runfiles import read_table

    def table(name: str) -> "pd.DataFrame | None":
        return read_table(folder / name, ID_COLUMNS) if (folder / name).is_file() else None

    def steps_of(name: str, given: "pd.DataFrame | None") -> "pd.DataFrame | None":
        frame = given.copy() if given is not None else \
            read_table(folder / name, columns=REPORT_STEP_COLUMNS) if (folder / name).is_file() else None
        if frame is not None and "hours" in frame:
            frame["hours"] = frame["hours"].astype(float)
        return frame

    people = read_table(folder / "people.csv", ID_COLUMNS) if people is None else people.copy()
    levels = pd.Index(programme.level_ids)
    for d in programme.domain_ids:
        if f"required_{d}" in people:  # level names as 1-based indices, 0 for none
            people[f"required_{d}"] = positions(people[f"required_{d}"], levels) + 1
        if f"reassess_{d}" in people:
            people[f"missing_{d}"] = people[f"reassess_{d}"].astype(str).eq("yes")
    steps, deferred = steps_of("plans.csv", steps), steps_of("deferred.csv", deferred)
    source = record.get("input", {}) or {}
    made = record.get("programme", {}) or {}
    data = report_data(
        people, steps, deferred, programme, cohorts=table("cohorts.csv"), groups=table("groups.csv"),
        rejects=table("rejects.csv"), n_read=record["counts"].get("rows_read"), capacity=table("capacity.csv"), warnings=notes,
        run_info={"Input file": str(source.get("file", "")), "Programme": f"{made.get('name', programme.name)} ({programme.fingerprint})",
                  "Seed": str(record.get("seed", ""))},
        **({"min_cell": min_cell} if min_cell is not None else {}),
    )
    followup = _followup_report(folder, programme, record, people)
    if followup is not None:
        data["tables"]["followup"], charts = followup
        data["charts"].update(charts)
    return render_report_data(data)


def _followup_report(folder: Path, programme: "Programme", record: dict[str, Any],
                     people: "pd.DataFrame") -> "tuple[dict[str, Any], dict[str, Any]] | None":
    """The follow-up section of a follow-up round's report, from effects.csv, modules.csv and change.csv (the
    before/after means per domain, for everyone and per previous cohort of ``min_cell`` people or more)."""
    import pandas as pd

    from .report import followup_section
    from .runfiles import read_table

    names = ("effects.csv", "modules.csv", "change.csv")
    if not isinstance(record.get("followup"), dict) or not all((folder / n).is_file() for n in names):
        return None
    effects, modules = read_table(folder / "effects.csv"), read_table(folder / "modules.csv")
    change = read_table(folder / "change.csv", ID_COLUMNS, columns=("person_id", "domain", "score_before", "score_after"))
    cohort = people.set_index(people["person_id"].astype(str))["previous_cohort"] if "previous_cohort" in people else None
    change = change.dropna(subset=["score_before", "score_after"])
    change["cohort"] = change["person_id"].astype(str).map(cohort) if cohort is not None else ""
    order = {d: i for i, d in enumerate(programme.domain_ids)}
    parts = []
    for by in (None, "cohort"):
        keys = ["domain"] if by is None else ["domain", by]
        g = change.groupby(keys, sort=True)[["score_before", "score_after"]].agg(["count", "mean"])
        frame = pd.DataFrame({"domain": g.index.get_level_values("domain"),
                              "cohort": "everyone" if by is None else g.index.get_level_values("cohort").astype(str),
                              "n": g[("score_before", "count")].to_numpy(), "before": g[("score_before", "mean")].to_numpy(),
                              "after": g[("score_after", "mean")].to_numpy()})
        parts.append(frame)
    means = pd.concat(parts, ignore_index=True)
    means = means[means["n"] >= max(programme.min_cell, 1)]
    means = means.assign(o=means["domain"].map(order), e=means["cohort"] != "everyone").sort_values(["o", "e", "cohort"])
    return followup_section(effects, modules, means.drop(columns=["o", "e"]).reset_index(drop=True), record["followup"], programme)


# --------------------------------------------------------------------------- retention


@dataclass(frozen=True)
class Expired:
    """A run :func:`erase_expired` removed: its folder and when it was made."""

    folder: Path
    made: str


def erase_expired(root: str | Path, *, programme: "Programme | str | Path | None" = None,
                  now: datetime | None = None) -> list[Expired]:
    """Remove every run under ``root`` older than the programme's ``privacy.retain_months``.

    A run's date is when its run.json was written (erase keeps that date). Only
    folders a trainmatch run wrote are removed, each moved aside first and then deleted.
    """
    from .programme import Programme, load_programme
    from .staging import claim_output, protected_reason

    loaded = programme if isinstance(programme, Programme) else load_programme(programme)
    if not loaded.retain_months:
        raise UsageError(
            "The programme sets no privacy.retain_months, so no run is expired. Add e.g. `[privacy] retain_months = 24` "
            "to the programme's programme.toml and give it with --programme."
        )
    now = now or datetime.now(timezone.utc)
    limit = _months_before(now, loaded.retain_months)
    out = []
    for run in find_runs(root):
        made = datetime.fromtimestamp((run / RUN_RECORD).stat().st_mtime, timezone.utc)
        if made >= limit:
            continue
        reason = protected_reason(run)
        if reason:
            raise OutputError(f"{run}: is expired but cannot be removed: {reason}. Run from another folder.")
        lock, _ = claim_output(run, str(run))
        try:
            aside = run.with_name(f".{run.name}.{os.getpid()}.expired")
            os.replace(run, aside)
            shutil.rmtree(aside)
        finally:
            lock.release()
        out.append(Expired(run, made.replace(microsecond=0).isoformat()))
    return out


def _months_before(now: datetime, months: int) -> datetime:
    year, month = divmod(now.year * 12 + now.month - 1 - months, 12)
    day = min(now.day, 28)
    return now.replace(year=year, month=month + 1, day=day)
