"""Follow-up rounds: read an earlier run back, pair its people with a new survey, and measure what changed.

An output folder of ``assign`` (or ``followup``) holds what a later round needs:
people.csv (scores, levels, gaps, cohort), plans.csv and deferred.csv (what was
planned and put off), run.json (counts, the instrument, each domain's
reliability, when the run was made) and model/ (the cohort model, so the
next round's cohorts are comparable). :func:`read_previous` reads and checks
them; the rest are pure functions over DataFrames, vectorised over people:

* :func:`pair` — people of both rounds by person_id; leavers and joiners;
* :func:`change_table` — change.csv: one row per paired person and domain,
  with the Jacobson–Truax reliable-change flag;
* :func:`effects_table` — effects.csv: mean change with 95% intervals per
  domain and group, completers against non-completers (observational), small
  cells suppressed;
* :func:`modules_table` — modules.csv: planned, completed, ratings per module.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import pandas as pd

from .errors import DataError

if TYPE_CHECKING:
    from .catalogue import Catalogue
    from .programme import Programme
    from .scoring import Reliability

RUN_FILE = "run.json"
MODEL_FOLDER = "model"  # the cohort model an assign run saves next to its tables
PREVIOUS_FILES = ("run.json", "people.csv", "plans.csv", "deferred.csv", "model/model.json")
RELIABLE_Z = 1.96  # Jacobson–Truax: |change| > 1.96 · √2 · SEM is a reliable change (5% two-sided)
CHANGE_COLUMNS = ("person_id", "domain", "score_before", "score_after", "change", "level_before", "level_after",
                  "gap_before", "gap_after", "gap_closed", "modules_completed", "hours_completed", "reliable_change")
EFFECT_COLUMNS = ("domain", "by", "group", "n", "mean_change", "ci_low", "ci_high", "srm", "share_reliably_improved",
                  "n_gap", "share_gap_closed", "n_completers", "n_non_completers", "completer_difference",
                  "difference_ci_low", "difference_ci_high", "comparison", "suppressed")
EFFECT_GROUPS = ("all", "cohort", "site", "role", "format")  # by: previous cohort, site and role; format of completed modules
OBSERVATIONAL = "observational: completers chose to complete, so the difference is not a randomised effect"


# --------------------------------------------------------------------------- what a run records


def instrument_record(programme: "Programme") -> dict[str, Any]:
    """What a later round must share with this run for scores to compare: scale, levels, domains, items."""
    return {
        "scale": [programme.scale_min, programme.scale_max],
        "levels": [{"id": lv.id, "min_score": lv.min_score} for lv in programme.levels],
        "domains": list(programme.domain_ids),
        "items": [{"id": i.id, "domain": i.domain, "reverse": i.reverse, "attitude": i.attitude, "dont_know": i.dont_know}
                  for i in programme.items],
    }


def reliability_record(reliability: Sequence["Reliability"]) -> dict[str, Any]:
    """Each domain's alpha and SEM as run.json records them (None where not known)."""
    def num(x: float) -> float | None:
        return round(float(x), 6) if x is not None and math.isfinite(x) else None

    return {r.domain: {"alpha": num(r.alpha), "sem": num(r.sem), "n_complete": r.n_complete} for r in reliability}


def instrument_differences(recorded: Mapping[str, Any], programme: "Programme") -> list[str]:
    """How the programme's instrument differs from the one a previous run recorded (empty: comparable)."""
    now = instrument_record(programme)
    out: list[str] = []
    if list(recorded.get("scale", [])) != now["scale"]:
        out.append(f"answer scale: {recorded.get('scale')} then, {now['scale']} now")
    before_levels = [(lv.get("id"), lv.get("min_score")) for lv in recorded.get("levels", [])]
    now_levels = [(lv["id"], lv["min_score"]) for lv in now["levels"]]
    if before_levels != now_levels:
        out.append("levels: " + ", ".join(f"{i} from {s}" for i, s in before_levels) + " then; "
                   + ", ".join(f"{i} from {s}" for i, s in now_levels) + " now")
    before_domains, now_domains = list(recorded.get("domains", [])), now["domains"]
    if before_domains != now_domains:
        gone = [d for d in before_domains if d not in now_domains]
        new = [d for d in now_domains if d not in before_domains]
        parts = ([f"removed {', '.join(gone)}"] if gone else []) + ([f"added {', '.join(new)}"] if new else [])
        out.append("domains: " + ("; ".join(parts) if parts else "in another order"))
    before_items = {i.get("id"): i for i in recorded.get("items", [])}
    now_items = {i["id"]: i for i in now["items"]}
    gone = [i for i in before_items if i not in now_items]
    new = [i for i in now_items if i not in before_items]
    if gone:
        out.append(f"items removed: {', '.join(map(str, gone))}")
    if new:
        out.append(f"items added: {', '.join(new)}")
    for item, was in before_items.items():
        if item in now_items:
            changed = [f"{key} {was.get(key)!r} → {now_items[item][key]!r}" for key in ("domain", "reverse", "attitude", "dont_know")
                       if was.get(key) != now_items[item][key]]
            if changed:
                out.append(f"item {item}: {', '.join(changed)}")
    return out


# --------------------------------------------------------------------------- reading a previous run


@dataclass(frozen=True)
class PreviousRun:
    """An earlier run's folder, read and checked.

    ``people``: person_id, role, site, cohort, and per domain ``score_<d>``
    (float), ``level_<d>`` (level index, 0 = none) and ``gap_<d>`` (float,
    NaN where unknown); ``plans``: person_id, module, domain, format, hours;
    ``deferred``: person_id, objective, module, domain. The person_id of plans and deferred is a categorical
    whose categories are ``person_ids`` (its codes: positions in ``people``).
    """

    folder: Path
    record: dict[str, Any]
    people: pd.DataFrame
    plans: pd.DataFrame
    deferred: pd.DataFrame
    person_ids: pd.Index | None = None  # people's person_id (unique); plans' and deferred's person_id are categoricals of it

    @property
    def created(self) -> pd.Timestamp:
        return pd.Timestamp(self.record["created"])

    @property
    def model_folder(self) -> Path:
        return self.folder / MODEL_FOLDER

    @property
    def sem(self) -> dict[str, float]:
        """Each domain's SEM in that run (NaN where not known)."""
        rel = self.record.get("reliability", {})
        return {d: float(rel.get(d, {}).get("sem") if rel.get(d, {}).get("sem") is not None else "nan")
                for d in self.record["instrument"]["domains"]}


def _not_a_run(folder: Path, why: str) -> DataError:
    return DataError(
        f"PREVIOUS {str(folder)!r} is not the output folder of a trainmatch assign or followup run: {why}. "
        "Pass the folder an earlier `trainmatch assign ... -o FOLDER` (or followup) wrote, unchanged."
    )


def _csv_header(path: Path) -> list[str]:
    import csv

    with open(path, newline="", encoding="utf-8-sig") as fh:
        return next(csv.reader(fh), [])


def _read_arrow(path: Path, text: Sequence[str], numbers: Sequence[str] = (), categories: Sequence[str] = ()) -> Any:
    """The columns of a CSV table trainmatch wrote, as an Arrow table (see :func:`read_run_table`)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    header = _csv_header(path)
    missing = [c for c in (*text, *numbers) if c not in header]
    if missing:
        raise DataError(f"{path}: column{'s' if len(missing) > 1 else ''} {', '.join(missing)} missing; "
                        "the folder was edited after the run wrote it. Use the folder as the run left it, or run that round again.")
    try:
        return pacsv.read_csv(
            path,
            convert_options=pacsv.ConvertOptions(
                include_columns=[*text, *numbers],
                column_types={**{c: pa.dictionary(pa.int32(), pa.string()) if c in categories else pa.string() for c in text},
                              **{c: pa.float64() for c in numbers}},
                strings_can_be_null=False, quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise DataError(f"{path} cannot be read as the table a trainmatch run wrote ({str(exc).splitlines()[0]}). "
                        "Use the folder as the run left it, or run that round again.") from None


def read_run_table(path: Path, text: Sequence[str], numbers: Sequence[str] = (), categories: Sequence[str] = (),
                   people: "tuple[Any, pd.CategoricalDtype] | None" = None) -> pd.DataFrame:
    """Columns of a CSV table trainmatch wrote (text as str with '' for empty, numbers as float with NaN); the
    ``categories`` among ``text`` (few distinct values: levels, sites, modules) come as categoricals.

    With ``people`` (the run's person_ids as an Arrow array, and a categorical dtype of the same ids),
    person_id comes as a categorical of those ids, matched in Arrow (no Python string per row); a
    person_id that is not among them is a DataError, as is a missing column.
    """
    import pyarrow.compute as pc

    table = _read_arrow(path, text, numbers, categories)
    out = pd.DataFrame({c: table.column(c).to_pandas() if c in categories else None if people is not None and c == "person_id"
                        else table.column(c).to_numpy() for c in text})
    if people is not None and "person_id" in text:
        ids = table.column("person_id")
        where = pc.index_in(ids, value_set=people[0]).fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
        if (where < 0).any():
            row = int(np.flatnonzero(where < 0)[0])
            raise DataError(f"{path}, row {row + 1}: person_id {ids[row].as_py()!r} is not in people.csv; "
                            "the folder was edited after the run wrote it. Use the folder as the run left it, or run that round again.")
        out["person_id"] = pd.Categorical.from_codes(where, dtype=people[1])
    for c in numbers:
        out[c] = table.column(c).to_numpy(zero_copy_only=False).astype(np.float64)
    return out[[*text, *numbers]]


def read_previous(folder: str | Path, *, tables: bool = True) -> PreviousRun:
    """Read PREVIOUS and check it is a run's folder whose tables still match its run.json (DataError if not).

    With ``tables=False`` only run.json is read and checked (people, plans and deferred are None):
    :func:`read_tables` reads the tables later, e.g. on a thread while the new survey is read.
    """
    from .staging import MARKER

    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"PREVIOUS {str(folder)!r} is not a folder. Pass the output folder of an earlier assign or followup run.")
    if not (folder / MARKER).is_file() and not (folder / RUN_FILE).is_file():
        raise _not_a_run(folder, f"it holds no {RUN_FILE}")
    missing = [name for name in PREVIOUS_FILES if not (folder / name).is_file()]
    if missing:
        raise _not_a_run(folder, f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing"
                         + ("; runs made before follow-up rounds existed save no cohort model, so run that round's assign again"
                            if missing == ["model/model.json"] else ""))
    try:
        record = json.loads((folder / RUN_FILE).read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise _not_a_run(folder, f"{RUN_FILE} is not valid JSON ({exc})") from None
    if not isinstance(record, dict) or not isinstance(record.get("counts"), dict):
        raise _not_a_run(folder, f"{RUN_FILE} has no counts")
    for key in ("instrument", "reliability", "created"):
        if key not in record:
            raise _not_a_run(folder, f"{RUN_FILE} has no {key!r}; runs made before follow-up rounds existed lack it, so run that round's assign again")
    try:
        pd.Timestamp(record["created"])
        if not isinstance(record["instrument"]["domains"], list) or not all(
                isinstance(level["id"], str) for level in record["instrument"]["levels"]):
            raise TypeError("instrument")
    except (KeyError, TypeError, ValueError):
        raise _not_a_run(folder, f"{RUN_FILE} was edited (its created time or instrument cannot be read)") from None
    run = PreviousRun(folder, record, None, None, None)  # type: ignore[arg-type]
    return read_tables(run) if tables else run


def read_tables(run: PreviousRun) -> PreviousRun:
    """``run`` (from ``read_previous(..., tables=False)``) with its people, plans and deferred read and checked."""
    import pyarrow as pa

    folder, record = run.folder, run.record
    domains = [str(d) for d in record["instrument"]["domains"]]
    levels = [str(lv["id"]) for lv in record["instrument"]["levels"]]

    few = ["role", "site", "cohort", "module", "domain", "format", "objective", *[f"level_{d}" for d in domains]]
    people = read_run_table(folder / "people.csv", ["person_id", "role", "site", "cohort", *[f"level_{d}" for d in domains]],
                            [*[f"score_{d}" for d in domains], *[f"gap_{d}" for d in domains]], categories=few)
    counts = record["counts"]
    if counts.get("accepted") != len(people):
        raise _edited(folder, "people.csv", len(people), counts.get("accepted"), "accepted")
    ids = pd.Index(people["person_id"].to_numpy(dtype=object))
    if not ids.is_unique:
        dup = people["person_id"].duplicated()
        raise DataError(f"{folder / 'people.csv'}: person_id {people['person_id'][dup].iloc[0]!r} appears more than once; "
                        "the folder was edited after the run wrote it.")
    # plans.csv and deferred.csv name people by person_id: categoricals of the people's ids (codes = positions)
    known = (pa.array(ids.to_numpy(), type=pa.string()), pd.CategoricalDtype(ids))
    plans = read_run_table(folder / "plans.csv", ["person_id", "module", "domain", "format"], ["hours"], categories=few, people=known)
    deferred = read_run_table(folder / "deferred.csv", ["person_id", "objective", "module", "domain"], categories=few, people=known)
    for name, table, key in (("plans.csv", plans, "steps"), ("deferred.csv", deferred, "deferred")):
        if counts.get(key) != len(table):
            raise _edited(folder, name, len(table), counts.get(key), key)
    index = {"": 0, **{lv: i + 1 for i, lv in enumerate(levels)}}
    for d in domains:
        col = people[f"level_{d}"].array  # categorical: each distinct level looked up once
        labels = np.asarray(col.categories, dtype=object)
        code_of = np.asarray([index.get(str(c), -1) for c in labels] or [0], dtype=np.int64)
        codes = code_of[col.codes] if len(col) else np.zeros(0, dtype=np.int64)
        if (codes < 0).any():
            bad = labels[col.codes[np.flatnonzero(codes < 0)[0]]]
            raise DataError(f"{folder / 'people.csv'}, column level_{d}: {bad!r} is not a level of the run "
                            f"({', '.join(levels)}); the folder was edited after the run wrote it.")
        people[f"level_{d}"] = codes
    return PreviousRun(folder, record, people, plans, deferred, ids)


def _edited(folder: Path, name: str, rows: int, recorded: Any, key: str) -> DataError:
    return DataError(
        f"{folder / name} has {rows:,} rows but {folder / RUN_FILE} records {recorded!r} ({key}): "
        "the folder was edited after the run wrote it. Use the folder as the run left it, or run that round again."
    )


# --------------------------------------------------------------------------- pairing


@dataclass(frozen=True)
class Pairing:
    """Who is in both rounds: positions in the previous and current people, and who left or joined."""

    previous: np.ndarray  # position in the previous people of each paired person
    current: np.ndarray  # position in the current people of each paired person (same order)
    leavers: np.ndarray  # positions in the previous people of people not in the current survey
    joiners: np.ndarray  # positions in the current people of people not in the previous run

    @property
    def counts(self) -> dict[str, int]:
        return {"paired": len(self.previous), "leavers": len(self.leavers), "joiners": len(self.joiners)}

    def rows_of_previous(self) -> np.ndarray:
        """Per previous person, their row among the paired (-1: a leaver)."""
        rows = np.full(len(self.previous) + len(self.leavers), -1, dtype=np.int64)
        rows[self.previous] = np.arange(len(self.previous))
        return rows


def pair(previous_ids: pd.Series, current_ids: pd.Series) -> Pairing:
    """Pair people by person_id (both normalised as imported: the previous ones as its run wrote them)."""
    import pyarrow.compute as pc

    where = pc.index_in(_arrow_ids(current_ids), value_set=_arrow_ids(previous_ids)).fill_null(-1).to_numpy(zero_copy_only=False)
    where = where.astype(np.int64)
    cur = np.flatnonzero(where >= 0)
    prev = where[cur]
    seen = np.zeros(len(previous_ids), dtype=bool)
    seen[prev] = True
    return Pairing(prev.astype(np.int64), cur.astype(np.int64), np.flatnonzero(~seen), np.flatnonzero(where < 0))


def _arrow_ids(ids: pd.Series) -> Any:
    """Ids as one Arrow string array (zero-copy for Arrow-backed text), to be matched in Arrow."""
    import pyarrow as pa

    if isinstance(ids.dtype, (pd.ArrowDtype, pd.StringDtype)) and not isinstance(ids.dtype, pd.CategoricalDtype):
        try:
            array = pa.array(ids.array)
            if pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
                return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array
        except (TypeError, pa.ArrowInvalid):
            pass
    return pa.array(ids.astype(str).to_numpy(dtype=object), type=pa.string())


# --------------------------------------------------------------------------- completions per person and domain


def completed_by_domain(completions: pd.DataFrame, person_ids: pd.Series | pd.Index, catalogue: "Catalogue",
                        domains: Sequence[str], rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Modules and hours completed per person (rows of ``person_ids``) and domain: two n × D matrices.

    ``completions``: person_id, module (catalogue module ids), completed (bool). With ``rows`` (the matrix row of
    each of ``person_ids``, -1 for none) the matrices have ``rows.max() + 1`` rows.
    """
    n, D = (len(person_ids) if rows is None else int(rows.max(initial=-1)) + 1), len(domains)
    count = np.zeros((n, D), dtype=np.int64)
    hours = np.zeros((n, D), dtype=np.float64)
    done = completions[completions["completed"].to_numpy(dtype=bool)] if len(completions) else completions
    if len(done) == 0:
        return count, hours
    index = person_ids if isinstance(person_ids, pd.Index) else pd.Index(person_ids.astype(str).to_numpy(dtype=object))
    who = _positions(done["person_id"], index)
    if rows is not None:
        who = np.where(who >= 0, rows[np.maximum(who, 0)], -1) if len(who) else who
    pos = module_positions(done["module"], catalogue)  # -1 (not in the catalogue) takes the last entries below
    dom = np.asarray([list(domains).index(m.domain) if m.domain in domains else -1 for m in catalogue.modules] + [-1],
                     dtype=np.int64)[pos]
    hrs = np.asarray([m.hours for m in catalogue.modules] + [0.0], dtype=np.float64)[pos]
    keep = (who >= 0) & (dom >= 0)
    np.add.at(count, (who[keep], dom[keep]), 1)
    np.add.at(hours, (who[keep], dom[keep]), hrs[keep])
    return count, hours


# --------------------------------------------------------------------------- change.csv


@dataclass(frozen=True)
class Change:
    """Paired people's change per domain as matrices (paired × domains), and the change.csv table."""

    table: pd.DataFrame
    change: np.ndarray
    improved: np.ndarray  # reliably improved
    had_gap: np.ndarray
    closed: np.ndarray
    completed: np.ndarray  # modules completed in the domain


def change_table(previous: PreviousRun, current: pd.DataFrame, pairing: Pairing, domains: Sequence[str],
                 completed: np.ndarray, hours: np.ndarray, level_ids: Sequence[str]) -> Change:
    """change.csv: one row per paired person and domain (person-major, domains in programme order).

    ``current`` is the scored people of this round (``score_<d>``, ``level_<d>`` as level indexes, ``gap_<d>``);
    ``completed`` and ``hours`` are per paired person and domain (:func:`completed_by_domain`).
    Reliable change (Jacobson–Truax): |change| > 1.96 · √2 · SEM, the SEM of the previous round.
    """
    P, D = len(pairing.previous), len(domains)

    def mat(frame: pd.DataFrame, prefix: str, rows: np.ndarray) -> np.ndarray:  # the paired rows of a family of columns
        return np.column_stack([pd.to_numeric(frame[f"{prefix}{d}"], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)[rows]
                                for d in domains]) if D else np.zeros((P, 0))

    people, was, now = previous.people, pairing.previous, pairing.current
    # Scores as people.csv shows them (3 decimals), so that change.csv adds up and no change is float noise.
    before, after = mat(people, "score_", was).round(3), mat(current, "score_", now).round(3)
    lv_before, lv_after = mat(people, "level_", was), mat(current, "level_", now)
    gap_before, gap_after = mat(people, "gap_", was), mat(current, "gap_", now)
    change = (after - before).round(3) + 0.0  # + 0.0: no "-0"
    sem = np.asarray([previous.sem.get(d, np.nan) for d in domains], dtype=np.float64)
    threshold = RELIABLE_Z * math.sqrt(2) * sem
    known = ~np.isnan(change) & ~np.isnan(threshold)[None, :]
    improved = known & (change > threshold)
    declined = known & (change < -threshold)
    reliable = np.where(~known, 0, np.where(improved, 1, np.where(declined, 2, 3)))
    had_gap = gap_before > 0
    closed = had_gap & ~np.isnan(gap_after) & (gap_after <= 0)
    closed_code = np.where(~had_gap | np.isnan(gap_after), 0, np.where(closed, 2, 1))
    levels = ["", *level_ids]

    def level_text(x: np.ndarray) -> pd.Categorical:
        return pd.Categorical.from_codes(np.nan_to_num(x, nan=0).astype(np.int64).ravel(), categories=levels)

    ids = people["person_id"].to_numpy(dtype=object)[was]
    table = pd.DataFrame({
        "person_id": pd.Categorical.from_codes(np.repeat(np.arange(P), D), categories=pd.Index(ids, dtype=object)) if P else
        pd.Categorical([]),
        "domain": pd.Categorical.from_codes(np.tile(np.arange(D), P), categories=list(domains)),
        "score_before": before.ravel().round(3),
        "score_after": after.ravel().round(3),
        "change": change.ravel().round(3),
        "level_before": level_text(lv_before),
        "level_after": level_text(lv_after),
        "gap_before": pd.arrays.IntegerArray(np.where(np.isnan(gap_before), 0, gap_before).ravel().astype(np.int64),
                                             np.isnan(gap_before).ravel()),
        "gap_after": pd.arrays.IntegerArray(np.where(np.isnan(gap_after), 0, gap_after).ravel().astype(np.int64),
                                            np.isnan(gap_after).ravel()),
        "gap_closed": pd.Categorical.from_codes(closed_code.ravel(), categories=["", "no", "yes"]),
        "modules_completed": completed.ravel(),
        "hours_completed": hours.ravel().round(2),
        "reliable_change": pd.Categorical.from_codes(reliable.ravel(), categories=["", "improved", "declined", "no"]),
    })
    return Change(table, change, improved, had_gap, closed, completed)


# --------------------------------------------------------------------------- effects.csv


def _t_quantile(df: np.ndarray) -> np.ndarray:
    """The 97.5% quantile of Student's t (scipy.special: the same function as scipy.stats.t.ppf, a tenth of its import)."""
    from scipy.special import stdtrit

    df = np.asarray(df, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.where(df > 0, stdtrit(np.where(df > 0, df, 1.0), 0.975), np.nan)


def mean_interval(n: np.ndarray, mean: np.ndarray, sd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """95% t-interval of a mean (NaN below two people)."""
    n = np.asarray(n, dtype=np.float64)
    half = _t_quantile(np.where(n > 1, n - 1, np.nan)) * sd / np.sqrt(np.where(n > 0, n, np.nan))
    return mean - half, mean + half


def welch_interval(n1: np.ndarray, m1: np.ndarray, v1: np.ndarray, n0: np.ndarray, m0: np.ndarray,
                   v0: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Difference of two means (1 − 0) with its 95% Welch interval, as scipy.stats.ttest_ind(equal_var=False) gives it."""
    with np.errstate(invalid="ignore", divide="ignore"):
        a, b = v1 / n1, v0 / n0
        se = np.sqrt(a + b)
        df = (a + b) ** 2 / (a**2 / (n1 - 1) + b**2 / (n0 - 1))
        diff = m1 - m0
        half = _t_quantile(df) * se
    return diff, diff - half, diff + half


def effects_table(change: Change, keys: Mapping[str, np.ndarray], formats: pd.DataFrame, domains: Sequence[str],
                  min_cell: int) -> pd.DataFrame:
    """effects.csv: per domain and group (everyone, previous cohort, site, role, format of modules completed).

    ``keys`` maps ``cohort``/``site``/``role`` to one label per paired person; ``formats`` has one row per paired
    person (position ``who``), domain (index ``dom``) and ``format`` completed there. Groups of fewer than
    ``min_cell`` people show no figures (``suppressed`` yes), and a comparison needs ``min_cell`` on each side.
    Sums per group are counted with bincount over integer codes: no grouping of text, at any size.
    """
    P, D = change.change.shape
    flat = {
        "change": change.change.ravel(), "improved": change.improved.ravel(), "gap": change.had_gap.ravel(),
        "closed": change.closed.ravel(), "completer": change.completed.ravel() > 0,
    }
    # The (person, domain) rows with a change, and what every grouping of people sums over them: made once.
    everyone = _effect_rows(flat, np.tile(np.arange(D, dtype=np.int64), P))
    person = np.repeat(np.arange(P, dtype=np.int64), D)[everyone["known"]]
    parts = []
    for by in EFFECT_GROUPS:
        if by == "format":
            pairs = formats[["who", "dom", "format"]].drop_duplicates()
            rows = pairs["who"].to_numpy(np.int64) * D + pairs["dom"].to_numpy(np.int64)
            codes, labels = pd.factorize(pairs["format"].to_numpy(dtype=object), sort=True)
            base = _effect_rows({k: v[rows] for k, v in flat.items()}, pairs["dom"].to_numpy(np.int64))
            codes = codes.astype(np.int64)[base["known"]]
        elif by == "all":
            base, codes, labels = everyone, np.zeros(len(person), dtype=np.int64), np.asarray(["all"], dtype=object)
        else:
            person_codes, labels = sorted_codes(keys[by])
            base, codes = everyone, person_codes.astype(np.int64)[person]
        parts.append(_group_effects(base, codes, np.asarray(labels, dtype=object), D, by, min_cell, compare=by != "format"))
    out = pd.concat(parts, ignore_index=True)
    out["domain"] = np.asarray(list(domains), dtype=object)[out["dom"].to_numpy()]
    order = {by: i for i, by in enumerate(EFFECT_GROUPS)}
    out = out.assign(_by=out["by"].map(order)).sort_values(["dom", "_by", "group"], kind="stable")
    return out[list(EFFECT_COLUMNS)].reset_index(drop=True)


def sorted_codes(values: Any) -> tuple[np.ndarray, np.ndarray]:
    """Codes and labels (sorted) of text values, as ``pd.factorize(..., sort=True)``; a categorical keeps its
    codes (labels that no value uses may be among the labels)."""
    if isinstance(getattr(values, "dtype", None), pd.CategoricalDtype):
        cat = values.array if isinstance(values, pd.Series) else values
        labels = np.asarray(cat.categories, dtype=object)
        order = np.argsort(labels, kind="stable")
        rank = np.empty(len(labels), dtype=np.int64)
        rank[order] = np.arange(len(labels))
        codes = np.asarray(cat.codes, dtype=np.int64)
        return (np.where(codes >= 0, rank[np.maximum(codes, 0)], -1) if len(codes) else codes), labels[order]
    codes, labels = pd.factorize(np.asarray(values, dtype=object), sort=True)
    return codes.astype(np.int64), np.asarray(labels, dtype=object)


def _sums(key: np.ndarray, size: int, values: np.ndarray | None = None) -> np.ndarray:
    return np.bincount(key, weights=values, minlength=size).astype(np.float64)


def _effect_rows(rows: Mapping[str, np.ndarray], dom: np.ndarray) -> dict[str, np.ndarray]:
    """The rows (person, domain pairs) with a known change, and the values a grouping sums over them."""
    known = ~np.isnan(rows["change"])
    x = rows["change"][known]
    gap = rows["gap"][known]
    y = x[gap]
    return {"known": known, "dom": dom[known], "x": x, "xx": x * x, "improved": rows["improved"][known].astype(np.float64),
            "gap": gap, "closed": rows["closed"][known][gap].astype(np.float64), "side": rows["completer"][known][gap],
            "y": y, "yy": y * y}


def _group_effects(base: Mapping[str, np.ndarray], codes: np.ndarray, labels: np.ndarray, D: int, by: str,
                   min_cell: int, compare: bool) -> pd.DataFrame:
    """The effects of one grouping: ``base`` from :func:`_effect_rows`, ``codes`` each of its rows' group."""
    G = max(len(labels), 1)
    key = base["dom"] * G + codes
    x = base["x"]
    size = D * G
    n = _sums(key, size)
    total, squares = _sums(key, size, x), _sums(key, size, base["xx"])
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / n
        var = np.maximum(squares - total * mean, 0) / (n - 1)
        sd = np.sqrt(var)
        improved = _sums(key, size, base["improved"]) / n
        gap = base["gap"]
        key_gap = key[gap]
        n_gap = _sums(key_gap, size)
        closed = _sums(key_gap, size, base["closed"]) / n_gap
        low, high = mean_interval(n, mean, sd)
        srm = np.where(sd > 0, mean / sd, np.nan)
    out = pd.DataFrame({"dom": np.arange(size) // G, "group": labels[np.arange(size) % G] if len(labels) else "",
                        "n": n, "mean_change": mean, "ci_low": low, "ci_high": high, "srm": srm,
                        "share_reliably_improved": improved, "n_gap": n_gap, "share_gap_closed": closed})
    nan = np.full(size, np.nan)
    out["n_completers"], out["n_non_completers"] = nan, nan
    out["completer_difference"], out["difference_ci_low"], out["difference_ci_high"] = nan, nan, nan
    if compare:
        k2 = key_gap * 2 + base["side"]
        n2, t2, q2 = _sums(k2, 2 * size), _sums(k2, 2 * size, base["y"]), _sums(k2, 2 * size, base["yy"])
        with np.errstate(invalid="ignore", divide="ignore"):
            m2 = t2 / n2
            v2 = np.maximum(q2 - t2 * m2, 0) / (n2 - 1)
        n0, n1, m0, m1, v0, v1 = n2[0::2], n2[1::2], m2[0::2], m2[1::2], v2[0::2], v2[1::2]
        diff, lo, hi = welch_interval(n1, m1, v1, n0, m0, v0)
        small = (n1 < min_cell) | (n0 < min_cell)
        out["n_completers"], out["n_non_completers"] = n1, n0
        out["completer_difference"] = np.where(small, np.nan, diff)
        out["difference_ci_low"] = np.where(small, np.nan, lo)
        out["difference_ci_high"] = np.where(small, np.nan, hi)
    out = out[out["n"] > 0].copy()
    out["comparison"] = np.where(out["completer_difference"].notna(), OBSERVATIONAL, "")
    out["by"] = by
    suppressed = (out["n"] < min_cell).to_numpy()
    figures = ["n", "mean_change", "ci_low", "ci_high", "srm", "share_reliably_improved", "n_gap", "share_gap_closed",
               "n_completers", "n_non_completers", "completer_difference", "difference_ci_low", "difference_ci_high"]
    out.loc[suppressed, figures] = np.nan
    out.loc[suppressed, "comparison"] = ""
    out["suppressed"] = np.where(suppressed, "yes", "")
    for col in ("mean_change", "ci_low", "ci_high", "srm", "completer_difference", "difference_ci_low", "difference_ci_high",
                "share_reliably_improved", "share_gap_closed"):
        out[col] = out[col].round(3) + 0.0
    for col in ("n", "n_gap", "n_completers", "n_non_completers"):
        out[col] = pd.array(out[col].round().astype("Int64"))
    return out


# --------------------------------------------------------------------------- modules.csv


MODULE_COLUMNS = ("module", "lms_course", "objective", "domain", "format", "planned", "completed", "completion_rate",
                  "n_ratings", "mean_rating", "n_comments", "demoted")


def modules_table(catalogue: "Catalogue", plans: pd.DataFrame, completions: pd.DataFrame, feedback: pd.DataFrame,
                  min_cell: int, demoted: Sequence[str] = ()) -> pd.DataFrame:
    """modules.csv: per catalogue module, how often the previous round planned it, how often it was completed
    (of those plans), its ratings (the mean shown from ``min_cell`` ratings) and how many comments it got."""
    ids = [m.id for m in catalogue.modules]
    index = pd.Index(ids)

    def count(values: pd.Series) -> np.ndarray:
        pos = _positions(values, index)
        return np.bincount(pos[pos >= 0], minlength=len(ids))

    planned = count(plans["module"]) if len(plans) else np.zeros(len(ids), np.int64)
    done = completions[completions["completed"].to_numpy(dtype=bool)] if len(completions) else completions
    if len(done):  # completions of what was planned for that person (pairs as integer keys)
        people = plans["person_id"].cat.categories if isinstance(plans["person_id"].dtype, pd.CategoricalDtype) else \
            pd.Index(pd.unique(plans["person_id"].astype(str).to_numpy(dtype=object)))
        M = max(len(ids), 1)
        planned_keys = _positions(plans["person_id"], people).astype(np.int64) * M + _positions(plans["module"], index)
        done_who = _positions(done["person_id"], people).astype(np.int64)
        done_keys = done_who * M + _positions(done["module"], index)
        of_plan = (done_who >= 0) & _member(done_keys, planned_keys)
        completed = count(done["module"][of_plan])
    else:
        completed = np.zeros(len(ids), np.int64)
    n_ratings = count(feedback["module"]) if len(feedback) else np.zeros(len(ids), np.int64)
    sums = np.zeros(len(ids))
    n_comments = np.zeros(len(ids), np.int64)
    if len(feedback):
        pos = _positions(feedback["module"], index)
        np.add.at(sums, pos, feedback["rating"].to_numpy(dtype=np.float64))
        np.add.at(n_comments, pos, feedback["has_comment"].to_numpy(dtype=np.int64))
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(planned > 0, completed / np.maximum(planned, 1), np.nan)
        mean = np.where(n_ratings >= min_cell, sums / np.maximum(n_ratings, 1), np.nan)
    return pd.DataFrame({
        "module": ids,
        "lms_course": [m.lms_course or m.id for m in catalogue.modules],
        "objective": [m.objective for m in catalogue.modules],
        "domain": [m.domain for m in catalogue.modules],
        "format": [m.format for m in catalogue.modules],
        "planned": planned,
        "completed": completed,
        "completion_rate": np.round(rate, 3),
        "n_ratings": n_ratings,
        "mean_rating": np.round(mean, 2),
        "n_comments": n_comments,
        "demoted": np.where(np.isin(ids, list(demoted)), "yes", ""),
    })


def demoted_modules(feedback: pd.DataFrame, programme: "Programme") -> list[str]:
    """Modules rated below ``feedback.demote_below`` on average by at least ``feedback.min_ratings`` people."""
    if len(feedback) == 0:
        return []
    g = feedback.groupby(feedback["module"].astype(str))["rating"].agg(["size", "mean"])
    return sorted(g.index[(g["size"] >= programme.demote_min_ratings) & (g["mean"] < programme.demote_below)])


# --------------------------------------------------------------------------- the people table and leavers


def leavers_table(previous: PreviousRun, pairing: Pairing) -> pd.DataFrame:
    """leavers.csv: people planned in the previous round who are not in this survey."""
    return previous.people.iloc[pairing.leavers][["person_id", "role", "site", "cohort"]].rename(
        columns={"cohort": "previous_cohort"}).reset_index(drop=True)


def followup_columns(people: pd.DataFrame, previous: PreviousRun, pairing: Pairing) -> pd.DataFrame:
    """people.csv of a follow-up round: ``round`` (paired or joiner) and ``previous_cohort`` after ``cohort``."""
    n = len(people)
    status = np.ones(n, dtype=np.int8)
    status[pairing.current] = 0
    cohort = previous.people["cohort"]
    if isinstance(cohort.dtype, pd.CategoricalDtype):  # codes, not a Python string per person
        labels = list(cohort.cat.categories)
        blank = labels.index("") if "" in labels else len(labels)
        codes = np.full(n, blank, dtype=np.int64)
        codes[pairing.current] = cohort.cat.codes.to_numpy()[pairing.previous]
        prev_cohort = pd.Categorical.from_codes(codes, categories=labels + ([""] if blank == len(labels) else []))
    else:
        prev_cohort = np.full(n, "", dtype=object)
        prev_cohort[pairing.current] = cohort.to_numpy(dtype=object)[pairing.previous]
    out = people.copy(deep=False)  # the columns are shared, not copied (pandas copies on write)
    at = list(out.columns).index("cohort") + 1 if "cohort" in out.columns else len(out.columns)
    out.insert(at, "previous_cohort", prev_cohort)
    out.insert(at, "round", pd.Categorical.from_codes(status, categories=["paired", "joiner"]))
    return out


def progress_facts(change: Change, pairing: Pairing, people_ids: pd.Series, domains: Sequence[str],
                   previous: PreviousRun, current: pd.DataFrame) -> pd.DataFrame:
    """Each paired person's domains whose level rose: person_id, domain, level_before, level_after (indexes)."""
    P, D = change.change.shape
    prev = previous.people.iloc[pairing.previous]
    cur = current.iloc[pairing.current]
    before = np.column_stack([prev[f"level_{d}"].to_numpy(dtype=np.int64) for d in domains]) if D else np.zeros((P, 0), np.int64)
    after = np.column_stack([pd.to_numeric(cur[f"level_{d}"], errors="coerce").fillna(0).to_numpy(dtype=np.int64) for d in domains]) \
        if D else np.zeros((P, 0), np.int64)
    who, dom = np.nonzero((after > before) & (before > 0))
    return pd.DataFrame({
        "person_id": people_ids.iloc[pairing.current[who]].to_numpy(dtype=object) if len(who) else np.zeros(0, dtype=object),
        "domain": np.asarray(list(domains), dtype=object)[dom],
        "level_before": before[who, dom],
        "level_after": after[who, dom],
    })


def before_after(change: Change, cohorts: np.ndarray, domains: Sequence[str], min_cell: int) -> pd.DataFrame:
    """Mean score before and after per domain and previous cohort (and everyone), groups of ``min_cell`` or more."""
    P, D = change.change.shape
    t = change.table
    codes, labels = sorted_codes(cohorts)
    G = len(labels) + 1  # group 0: everyone
    before, after = t["score_before"].to_numpy(np.float64), t["score_after"].to_numpy(np.float64)
    known = ~np.isnan(before) & ~np.isnan(after)
    dom = np.tile(np.arange(D), P)[known]
    group = np.repeat(codes.astype(np.int64) + 1, D)[known]
    rows = []
    for g in (np.zeros_like(group), group):  # everyone, then per cohort
        key = dom * G + g
        n = np.bincount(key, minlength=D * G)
        with np.errstate(invalid="ignore", divide="ignore"):
            rows.append(pd.DataFrame({"key": np.arange(D * G), "n": n,
                                      "before": np.bincount(key, before[known], minlength=D * G) / n,
                                      "after": np.bincount(key, after[known], minlength=D * G) / n}))
    out = pd.concat(rows)
    out = out[out["n"] > 0].sort_values("key")  # each key is counted in one of the two (everyone: group 0)
    out = out[out["n"] >= max(min_cell, 1)]
    names = np.asarray(["everyone", *labels], dtype=object)
    return pd.DataFrame({"domain": np.asarray(list(domains), dtype=object)[out["key"].to_numpy() // G],
                         "cohort": names[out["key"].to_numpy() % G], "n": out["n"].to_numpy(),
                         "before": out["before"].to_numpy(), "after": out["after"].to_numpy()})


def _positions(values: pd.Series, index: pd.Index) -> np.ndarray:
    """Position in ``index`` of each value (-1 if absent), looked up once per distinct value."""
    from .columns import positions

    return positions(values, index)


def _member(keys: np.ndarray, among: np.ndarray) -> np.ndarray:
    """Whether each of ``keys`` is in ``among`` (integer keys): one sort and a binary search, as np.isin
    without its table of the keys' whole range (a hundred million entries at a million people)."""
    if len(among) == 0 or len(keys) == 0:
        return np.zeros(len(keys), dtype=bool)
    ordered = np.sort(among)
    at = np.minimum(np.searchsorted(ordered, keys), len(ordered) - 1)
    return ordered[at] == keys


def module_positions(values: pd.Series, catalogue: "Catalogue") -> np.ndarray:
    """Position of each module id in the catalogue's modules (-1 if not there)."""
    return _positions(values, pd.Index([m.id for m in catalogue.modules]))


CARRIED_NOTE = "deferred last round, so planned first"
DEMOTED_NOTE = "rated low in feedback, chosen as no other format fits"


def round_notes(table: pd.DataFrame, previous_deferred: pd.DataFrame, demoted: Sequence[str]) -> np.ndarray:
    """Per row of steps or deferred items: 1 when deferred last round (and not task practice, which ranks after
    every need), 2 when its module is demoted for low ratings, 3 both, 0 neither."""
    if len(table) == 0:
        return np.zeros(0, dtype=np.int64)
    prev_ids, obj_ids = previous_deferred["person_id"], previous_deferred["objective"]
    pid = prev_ids.cat.categories if isinstance(prev_ids.dtype, pd.CategoricalDtype) else \
        pd.Index(pd.unique(prev_ids.astype(str).to_numpy(dtype=object)))
    oid = obj_ids.cat.categories if isinstance(obj_ids.dtype, pd.CategoricalDtype) else \
        pd.Index(pd.unique(obj_ids.astype(str).to_numpy(dtype=object)))
    O = max(len(oid), 1)
    before = _positions(prev_ids, pid) * O + _positions(obj_ids, oid)
    who = _positions(table["person_id"], pid)
    obj = _positions(table["objective"], oid)
    carried = (who >= 0) & (obj >= 0) & _member(who * O + obj, before)
    if "kind" in table.columns:  # task-specific practice ranks after every need, carried over or not
        carried &= (table["kind"] != "task_practice").to_numpy()
    low = table["module"].isin(list(demoted)).to_numpy() if len(demoted) else np.zeros(len(table), dtype=bool)
    return carried.astype(np.int64) + 2 * low


def note_reasons(table: pd.DataFrame, previous_deferred: pd.DataFrame, demoted: Sequence[str],
                 note: np.ndarray | None = None) -> pd.DataFrame:
    """plans.csv or deferred.csv of a follow-up round with its reasons saying why the round changed them:
    needs deferred last round (planned first) and modules demoted for low ratings (:func:`round_notes`,
    or ``note`` when already known for these rows)."""
    note = round_notes(table, previous_deferred, demoted) if note is None else note
    if not note.any():
        return table
    reason = pd.Categorical(table["reason"])
    combo = reason.codes.astype(np.int64) * 4 + note
    # The combinations used, ascending (as np.unique gives them), found by counting: no sort of every row.
    uniques = np.flatnonzero(np.bincount(combo, minlength=4 * max(len(reason.categories), 1)))
    lookup = np.zeros(4 * max(len(reason.categories), 1), dtype=np.int64)
    lookup[uniques] = np.arange(len(uniques))
    inverse = lookup[combo]
    labels = np.asarray(reason.categories, dtype=object)
    texts = []
    for c in uniques.tolist():
        text, n = str(labels[c // 4]), c % 4
        texts.append("; ".join([text] + ([CARRIED_NOTE] if n & 1 else []) + ([DEMOTED_NOTE] if n & 2 else [])))
    out = table.copy(deep=False)  # only the reason column changes
    cats, where = np.unique(np.asarray(texts, dtype=object), return_inverse=True)
    out["reason"] = pd.Categorical.from_codes(where[inverse.reshape(-1)], categories=list(cats))
    return out
