"""The jobs the commands run, as library calls: one call runs what one command runs.

Each job reads its inputs, runs the pipeline (:mod:`trainmatch.pipeline`) and
writes its outputs, and returns what it made as DataFrames with its counts;
the CLI only parses options, calls the job and prints. A notebook user calls
the same functions::

    import trainmatch as tm
    run = tm.assign("survey.csv", "round1", seed=0)
    run.people, run.plans, run.counts

Errors are the library's own (:mod:`trainmatch.errors`): ``UsageError`` for
arguments that cannot work (the CLI's exit 2) and the others for bad files or
data (exit 1). Bad rows never stop a job: they are returned as ``rejects``.
"""

from __future__ import annotations

from datetime import date

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Protocol

from .errors import DataError, UsageError, unknown_person

if TYPE_CHECKING:
    import pandas as pd

    from .io import RawSurvey, XlsxLimits
    from .model_store import SavedModel
    from .pipeline import CohortStage
    from .programme import Programme
    from .scoring import Reliability
    from .survey import ImportResult


class Progress(Protocol):
    """What a job reports while it runs: stage names, and a bar over the per-person plans."""

    def stage(self, name: str) -> None: ...

    def bar(self, items: Iterable[Any], length: int) -> Any: ...


SEED_MAX = 2**32 - 1  # numpy's and scikit-learn's seeds: 0 to 2**32 - 1


class RowsRejected(DataError):
    """A job could not go on because of rejected rows (all of them, or any with ``strict``)."""

    def __init__(self, message: str, raw: "RawSurvey", imported: "ImportResult"):
        super().__init__(message)
        self.raw = raw
        self.imported = imported


@dataclass(frozen=True)
class Survey:
    """A survey file read and validated against a programme."""

    programme: "Programme"
    raw: "RawSurvey"  # the file's facts; its frame holds the header only (the cells are freed once decoded)
    imported: "ImportResult"
    seconds: dict[str, float] = field(default_factory=dict)  # reading the file, and validating its cells
    notes: tuple[str, ...] = ()  # what was cleared next to the outputs (leftovers of killed runs)


def read_and_import(
    survey: str | Path,
    programme: "Programme | str | Path | None" = None,
    *,
    mapping: str | Path | None = None,
    duplicates: str = "keep-latest",
    sheet: str | None = None,
    encoding: str | None = None,
    xlsx_limits: "XlsxLimits | str | None" = None,
) -> Survey:
    """Load the programme (a loaded one, a folder, or None for the built-in one) and the mapping file,
    then read the survey and validate every cell. The text cells are freed as they are decoded."""
    import dataclasses

    import pandas as pd

    from .io import XlsxLimits, read_survey
    from .mapping import load_mapping
    from .programme import Programme, load_programme
    from .survey import import_survey

    if duplicates not in ("keep-latest", "reject"):
        raise UsageError(f"duplicates must be 'keep-latest' or 'reject', got {duplicates!r}.")
    _check_reading(survey, sheet, encoding)
    if not isinstance(programme, Programme):
        programme = load_programme(programme)
    loaded_mapping = load_mapping(mapping, programme) if mapping is not None else None
    started = time.perf_counter()
    if isinstance(xlsx_limits, str):  # as the command line gives them
        xlsx_limits = XlsxLimits.parse(xlsx_limits)
    raw = read_survey(survey, sheet=sheet, encoding=encoding, xlsx_limits=xlsx_limits)
    read = time.perf_counter()
    header = raw.frame.columns
    imported = import_survey(raw, programme, mapping=loaded_mapping, duplicates=duplicates, consume=True)
    seconds = {"read": read - started, "validate": time.perf_counter() - read}
    return Survey(programme, dataclasses.replace(raw, frame=pd.DataFrame(columns=header)), imported, seconds)


def _check_reading(survey: str | Path, sheet: str | None, encoding: str | None) -> None:
    """Refuse reading options that cannot apply, before anything is read."""
    import codecs

    if encoding is not None:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise UsageError(f"Invalid value for --encoding: {encoding!r} is not an encoding Python knows; use e.g. utf-8, cp1252 or latin-1.") from None
    if sheet is not None and Path(survey).suffix.lower() not in (".xlsx", ".xlsm"):
        raise UsageError(f"Invalid value for --sheet: applies to XLSX files only, and {str(survey)!r} is read as CSV; leave --sheet out.")


def _check_seed(seed: int) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX:
        raise UsageError(f"Invalid value for '--seed': {seed!r} is not in the range 0<=x<={SEED_MAX}.")


def _inputs(*paths: Any) -> list[Path]:
    """A job's input files and folders (a loaded programme is none): outputs never replace them or their folders."""
    from .programme import Programme

    return [Path(p) for p in paths if p is not None and not isinstance(p, Programme)]


class _Outputs:
    """A job's outputs: each checked before any work, locked while the job runs (one run per output at a time),
    with what killed runs left next to it cleared; the locks are released when the job ends."""

    def __init__(self, inputs: list[Path], force: bool):
        self.inputs, self.force = inputs, force
        self.notes: list[str] = []
        self.locks: list[Any] = []
        self.folders: list[Any] = []
        self.made: list[Path] = []  # parent folders made for an output, deepest first

    def __enter__(self) -> "_Outputs":
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        for folder in self.folders:
            folder.close()
        for lock in self.locks:
            lock.release()
        if exc_type is not None:  # the job failed: take away the folders it made that stayed empty
            for made in self.made:
                try:
                    made.rmdir()
                except OSError:
                    break

    def files(self, **paths: str | Path | None) -> None:
        """Output files by option name (``errors_out=...``): refused if they exist (without force) or are inputs."""
        from .staging import check_distinct, check_output_file

        options = {_option(name): path for name, path in paths.items()}
        check_distinct(options)
        for option, path in options.items():
            if path is not None:
                check_output_file(path, force=self.force, inputs=self.inputs, option=option)
        for path in options.values():
            self._claim(path)

    def folder(self, path: str | Path) -> Any:
        """The staged output folder: replaced only if a trainmatch run wrote it, and only with force."""
        from .staging import StagedFolder

        staged = StagedFolder(path, force=self.force, inputs=self.inputs)
        self.folders.append(staged)
        self.notes += staged.prepare()
        return staged

    def model(self, path: str | Path | None, output: str | Path | None = None) -> None:
        """The --save-model folder: new, empty, or (with force) an earlier saved model."""
        import os

        from .model_store import check_model_target

        if path is None:
            return
        if output is not None and os.path.abspath(path) == os.path.abspath(output):
            raise UsageError("--save-model and -o name the same folder; give the model its own folder.")
        check_model_target(path, force=self.force, inputs=self.inputs)
        # The model folder's parents are made now, not when the model is saved, so that its lock is held
        # from the start like every other output's (and taken away again if the job fails).
        parent = Path(os.path.abspath(path)).parent
        missing = [p for p in [parent, *parent.parents] if not p.exists()]
        parent.mkdir(parents=True, exist_ok=True)
        self.made = missing + self.made
        self._claim(path)
        check_model_target(path, force=self.force, inputs=self.inputs)  # an earlier model may have been put back

    def _claim(self, path: str | Path | None) -> None:
        import os

        from .staging import claim_output

        if path is not None and Path(os.path.abspath(path)).parent.is_dir():  # else made later: nothing to clear
            lock, notes = claim_output(path, str(path))
            self.locks.append(lock)
            self.notes += notes


def _option(name: str) -> str:
    return {"output": "-o"}.get(name, "--" + name.replace("_", "-"))


# --------------------------------------------------------------------------- synth


def synth(output: str | Path, *, n: int = 300, seed: int = 0, truth: str | Path | None = None,
          structure: str = "continuous", programme: "Programme | str | Path | None" = None,
          force: bool = False, followup_of: str | Path | None = None, completions_out: str | Path | None = None,
          feedback_out: str | Path | None = None, effect: float = 0.5) -> tuple["pd.DataFrame", "pd.DataFrame"]:
    """Write a synthetic survey of ``n`` people to ``output`` (.csv or .xlsx), and their latent domain scores
    (and planted profiles, with ``structure="profiles"``) to ``truth``; returns both frames. Existing files
    are replaced only with ``force``.

    With ``followup_of`` (an earlier run's output folder) the survey is that round's follow-up instead
    (:mod:`trainmatch.synth_followup`; ``n`` and ``structure`` do not apply): ``completions_out`` gets the
    LMS completions, ``feedback_out`` the ratings, and ``truth`` each paired person's planted change per
    domain (``effect`` where a module in the domain was completed, plus drift)."""
    if followup_of is not None:
        return _synth_followup(output, followup_of, seed=seed, truth=truth, programme=programme, force=force,
                               completions_out=completions_out, feedback_out=feedback_out, effect=effect)
    if completions_out is not None or feedback_out is not None:
        raise UsageError("--completions-out and --feedback-out need --followup-of PREVIOUS (the run the completions belong to).")
    from .outputs import write_csv, write_xlsx_table
    from .programme import Programme, load_programme
    from .synth import STRUCTURES, synthesize

    if structure not in STRUCTURES:
        raise UsageError(f"Invalid value for '--structure': {structure!r} is not one of {', '.join(STRUCTURES)}.")

    suffix = Path(output).suffix.lower()
    if suffix not in (".csv", ".xlsx"):
        raise UsageError(f"Invalid value for '-o' / '--output': must end in .csv or .xlsx, got {Path(output).name!r}.")
    _check_seed(seed)
    with _Outputs(_inputs(programme), force) as outputs:
        outputs.files(output=output, truth=truth)
        if not isinstance(programme, Programme):
            programme = load_programme(programme)
        survey, planted = synthesize(programme, n, seed, structure=structure)
        if suffix == ".xlsx":
            write_xlsx_table(survey, output, sheet="Responses")
        else:
            write_csv(survey, output)
        if truth is not None:
            write_csv(planted, truth)
    return survey, planted


def _synth_followup(output: str | Path, previous: str | Path, *, seed: int, truth: Any, programme: Any, force: bool,
                    completions_out: Any, feedback_out: Any, effect: float) -> tuple["pd.DataFrame", "pd.DataFrame"]:
    """:func:`synth` with ``followup_of``: a second round of the run in ``previous``."""
    import math

    from .followup import instrument_differences, read_previous
    from .outputs import write_csv, write_xlsx_table
    from .pipeline import load_plan
    from .programme import Programme, load_programme
    from .synth_followup import synthesize_followup

    suffix = Path(output).suffix.lower()
    if suffix not in (".csv", ".xlsx"):
        raise UsageError(f"Invalid value for '-o' / '--output': must end in .csv or .xlsx, got {Path(output).name!r}.")
    if completions_out is None:
        raise UsageError("Missing option '--completions-out': a follow-up round needs the LMS completions file to write.")
    if isinstance(effect, bool) or not isinstance(effect, (int, float)) or not math.isfinite(effect) or abs(effect) > 4:
        raise UsageError(f"Invalid value for '--effect': {effect!r} is not a number between -4 and 4 (points on the answer scale).")
    _check_seed(seed)
    with _Outputs(_inputs(programme, previous), force) as outputs:
        outputs.files(output=output, completions_out=completions_out, feedback_out=feedback_out, truth=truth)
        prev = read_previous(previous)
        if not isinstance(programme, Programme):
            programme = load_programme(programme)
        differences = instrument_differences(prev.record["instrument"], programme)
        if differences:
            raise DataError(f"The programme does not measure what the run in {previous} measured: " + "; ".join(differences)
                            + ". Pass that run's programme with --programme.")
        made = synthesize_followup(programme, prev, load_plan(programme).catalogue, seed=seed, effect=float(effect))
        if suffix == ".xlsx":
            write_xlsx_table(made.survey, output, sheet="Responses")
        else:
            write_csv(made.survey, output)
        write_csv(made.completions, completions_out)
        if feedback_out is not None:
            write_csv(made.feedback, feedback_out)
        if truth is not None:
            write_csv(made.truth, truth)
    return made.survey, made.truth


# --------------------------------------------------------------------------- validate


def validate(
    survey: str | Path,
    *,
    programme: "Programme | str | Path | None" = None,
    errors_out: str | Path | None = None,
    force: bool = False,
    mapping: str | Path | None = None,
    duplicates: str = "keep-latest",
    sheet: str | None = None,
    encoding: str | None = None,
    xlsx_limits: "XlsxLimits | str | None" = None,
) -> Survey:
    """Check the programme as :func:`assign` checks it (catalogue and rules too), then the survey against it;
    ``errors_out`` gets every problem (CSV; an existing file only with ``force``, and never an input)."""
    import dataclasses

    from .outputs import write_csv
    from .pipeline import load_plan
    from .programme import Programme, load_programme

    with _Outputs(_inputs(survey, programme, mapping), force) as outputs:
        outputs.files(errors_out=errors_out)
        if not isinstance(programme, Programme):
            programme = load_programme(programme)
        load_plan(programme)
        checked = read_and_import(survey, programme, mapping=mapping, duplicates=duplicates, sheet=sheet, encoding=encoding, xlsx_limits=xlsx_limits)
        if errors_out is not None:
            write_csv(checked.imported.rejects, errors_out)
    return dataclasses.replace(checked, notes=tuple(outputs.notes))


# --------------------------------------------------------------------------- score


@dataclass(frozen=True)
class Scored:
    """What :func:`score` wrote: one row per accepted person, the reliability of each domain, and the
    statistics of each item (see :func:`~trainmatch.scoring.item_statistics`)."""

    survey: Survey
    people: "pd.DataFrame"
    reliability: tuple["Reliability", ...]
    item_stats: "pd.DataFrame"

    @property
    def flagged_items(self) -> "pd.DataFrame":
        """The items flagged as not measuring their domain (item, domain, reason)."""
        flagged = self.item_stats[self.item_stats["flag"] == "yes"]
        return flagged[["item", "domain", "reason"]].reset_index(drop=True)


def score(
    survey: str | Path,
    output: str | Path,
    *,
    programme: "Programme | str | Path | None" = None,
    rejects_out: str | Path | None = None,
    item_stats: str | Path | None = None,
    force: bool = False,
    mapping: str | Path | None = None,
    duplicates: str = "keep-latest",
    sheet: str | None = None,
    encoding: str | None = None,
    xlsx_limits: "XlsxLimits | str | None" = None,
) -> Scored:
    """Score each accepted person per domain (score, level, required level, gap) and write ``output`` (CSV);
    ``item_stats`` gets the statistics of each item (CSV).

    Existing output files are replaced only with ``force``; an input never is.
    """
    import dataclasses

    from .exports import people_table
    from .outputs import write_csv
    from .scoring import measure

    with _Outputs(_inputs(survey, programme, mapping), force) as outputs:
        outputs.files(output=output, rejects_out=rejects_out, item_stats=item_stats)
        checked = read_and_import(survey, programme, mapping=mapping, duplicates=duplicates, sheet=sheet, encoding=encoding, xlsx_limits=xlsx_limits)
        imported = checked.imported
        if imported.n_accepted == 0:
            raise RowsRejected(f"All {imported.n_read} rows were rejected, so there is nothing to score; fix the problems listed above.",
                               checked.raw, imported)
        measured = measure(imported.people, checked.programme)
        people = people_table(measured.people, checked.programme)
        write_csv(people, output)
        if rejects_out is not None:
            write_csv(imported.rejects, rejects_out)
        if item_stats is not None:
            write_csv(measured.item_stats, item_stats)
    checked = dataclasses.replace(checked, notes=tuple(outputs.notes))
    return Scored(checked, people, measured.reliability, measured.item_stats)


# --------------------------------------------------------------------------- cohorts


def parse_model_options(programme: "Programme", model: str | Path | None, save_model: str | Path | None,
                        k: str) -> tuple["SavedModel | None", tuple[int, int]]:
    """Check ``model``/``save_model``/``k`` and load a saved model: (saved model or None, k range)."""
    from .cohorts import parse_k_range
    from .model_store import load_model

    if model is not None and save_model is not None:
        raise UsageError("Use either --model (reuse a saved model) or --save-model (fit and save), not both.")
    try:
        k_range = parse_k_range(k)
    except Exception as exc:
        raise UsageError(f"Invalid value for '--k': {exc}") from None
    saved = load_model(model, programme_fingerprint=programme.fingerprint) if model is not None else None
    return saved, k_range


def _save_model(stage: "CohortStage", programme: "Programme", folder: str | Path) -> None:
    from .model_store import save_model

    save_model(
        stage.model,
        folder,
        programme_fingerprint=programme.fingerprint,
        domain_ids=programme.domain_ids,
        fit_report=stage.fit_report,
        domain_names=[d.names.get("en", d.id) for d in programme.domains],
    )


@dataclass(frozen=True)
class Cohorts:
    """What :func:`cohorts` wrote: the cohort stage (people with cohort and group, tables, fit report)."""

    survey: Survey
    stage: "CohortStage"


def cohorts(
    survey: str | Path,
    output: str | Path,
    *,
    programme: "Programme | str | Path | None" = None,
    model: str | Path | None = None,
    save_model: str | Path | None = None,
    k: str = "2-8",
    seed: int = 0,
    force: bool = False,
    mapping: str | Path | None = None,
    duplicates: str = "keep-latest",
    sheet: str | None = None,
    encoding: str | None = None,
    xlsx_limits: "XlsxLimits | str | None" = None,
) -> Cohorts:
    """Form cohorts and training groups and write cohorts.csv, groups.csv, people.csv and rejects.csv to ``output``.

    ``output`` (and ``save_model``) are checked before any work: an existing folder is replaced only with
    ``force`` and only when a trainmatch run wrote it, never when it is or holds an input or the working folder.
    """
    import dataclasses

    from .outputs import write_csvs
    from .pipeline import assign_cohorts
    from .programme import Programme, load_programme
    from .scoring import score as score_people

    _check_seed(seed)
    with _Outputs(_inputs(survey, programme, mapping, model), force) as outputs:
        staged = outputs.folder(output)
        outputs.model(save_model, output)
        if not isinstance(programme, Programme):
            programme = load_programme(programme)
        saved, k_range = parse_model_options(programme, model, save_model, k)
        checked = read_and_import(survey, programme, mapping=mapping, duplicates=duplicates, sheet=sheet, encoding=encoding, xlsx_limits=xlsx_limits)
        imported = checked.imported
        if imported.n_accepted == 0:
            raise RowsRejected(f"All {imported.n_read} rows were rejected, so there is nothing to group; fix the problems listed above.",
                               checked.raw, imported)
        people = score_people(imported.people, programme)
        stage = assign_cohorts(people, programme, saved=saved, k_range=k_range, seed=seed)
        with staged as tmp:
            write_csvs({
                tmp / "cohorts.csv": stage.cohorts,
                tmp / "groups.csv": stage.groups,
                tmp / "people.csv": stage.people[["person_id", "role", "site", "cohort", "group"]],
                tmp / "rejects.csv": imported.rejects,
            })
            if save_model is not None:  # inside: a model that cannot be saved leaves the earlier output in place
                _save_model(stage, programme, save_model)
    return Cohorts(dataclasses.replace(checked, notes=tuple(outputs.notes)), stage)


# --------------------------------------------------------------------------- assign


@dataclass(frozen=True)
class AssignRun:
    """What :func:`assign` wrote to ``output``, as the tables of its files."""

    output: Path
    survey: Survey
    people: "pd.DataFrame"  # people.csv
    plans: "pd.DataFrame"  # plans.csv
    deferred: "pd.DataFrame"  # deferred.csv
    rejects: "pd.DataFrame"  # rejects.csv
    cohorts: "pd.DataFrame"  # cohorts.csv
    groups: "pd.DataFrame"  # groups.csv
    capacity: "pd.DataFrame"  # capacity.csv: hours available, needed, planned and deferred per site and role
    record: dict[str, Any]  # run.json: counts (read, accepted, rejected, reconciled), programme, options, seconds
    warnings: tuple[str, ...] = field(default=())
    notes: tuple[str, ...] = field(default=())  # what was cleared next to the outputs (leftovers of killed runs)
    sessions: "pd.DataFrame | None" = None  # sessions.csv: group sessions with date, time, status and reason
    enrolments: "pd.DataFrame | None" = None  # lms/enrolments.csv

    @property
    def counts(self) -> dict[str, Any]:
        return self.record["counts"]


_REPORT_MODULES = ("trainmatch.report",)


def _import_in_background(*modules: str) -> None:
    """Import ``modules`` on another thread. scikit-learn takes over a second to import; reading the survey
    and building the plans run largely outside the GIL (pyarrow, numpy), so the imports overlap with them."""
    import importlib
    import threading

    def load() -> None:
        for name in modules:
            try:
                importlib.import_module(name)
            except Exception:  # the stage that needs it imports it again and reports the problem there
                return

    threading.Thread(target=load, name="trainmatch-imports", daemon=True).start()


def assign(
    survey: str | Path,
    output: str | Path,
    *,
    programme: "Programme | str | Path | None" = None,
    model: str | Path | None = None,
    save_model: str | Path | None = None,
    k: str = "2-8",
    seed: int = 0,
    strict: bool = False,
    force: bool = False,
    per_person: str = "html",
    xlsx: bool | None = None,
    lang: str | None = None,
    mapping: str | Path | None = None,
    duplicates: str = "keep-latest",
    sheet: str | None = None,
    encoding: str | None = None,
    xlsx_limits: "XlsxLimits | str | None" = None,
    progress: Progress | None = None,
    start: "str | date | None" = None,
    lms_users: str | Path | None = None,
) -> AssignRun:
    """The main job: plans per person, tables for the LMS, a report for HR, all in ``output``.

    Reads and validates the survey, scores competence against each person's
    tasks, forms cohorts and training groups (or reuses the saved ``model``),
    fires the programme's rules and builds each person's path. ``output`` gets
    people.csv, plans.csv, deferred.csv, rejects.csv, cohorts.csv, groups.csv,
    capacity.csv, sessions.csv, calendar/ (one .ics per training group, with a start date:
    ``start`` or the programme's ``[schedule] start``), lms/ (Moodle flat-file enrolment,
    cohort upload and, with ``lms_users``, upload users; enrolments.csv for any LMS),
    run.json, report.html, plans.xlsx (``xlsx``: default up to 20,000 people)
    and, with ``per_person="html"``, plans/ with one letter per person. The
    folder is written to a staging folder and moved into place only when
    complete; an existing one is replaced only with ``force``. Every input row
    is in people.csv or rejects.csv; with ``strict`` any rejected row stops
    the job before anything is written.
    """
    import dataclasses

    start_date = _check_run_options(per_person, lang, seed, start)
    started = time.perf_counter()
    with _Outputs(_inputs(survey, programme, mapping, model, lms_users), force) as outputs:
        staged = outputs.folder(output)  # every output checked and locked before any work, not after it
        outputs.model(save_model, output)
        run = _assign(survey, staged, programme=programme, model=model, save_model=save_model, k=k, seed=seed, strict=strict,
                      per_person=per_person, xlsx=xlsx, lang=lang, mapping=mapping, duplicates=duplicates, sheet=sheet,
                      encoding=encoding, xlsx_limits=xlsx_limits, progress=progress, started=started,
                      start=start_date, lms_users=lms_users)
    return dataclasses.replace(run, notes=tuple(outputs.notes))


def _assign(survey: str | Path, staged: Any, *, programme: Any, model: Any, save_model: Any, k: str, seed: int, strict: bool,
            per_person: str, xlsx: bool | None, lang: str | None, mapping: Any, duplicates: str, sheet: str | None,
            encoding: str | None, xlsx_limits: Any, progress: Progress | None, started: float,
            start: "date | None" = None, lms_users: str | Path | None = None) -> AssignRun:
    """:func:`assign` once its outputs are checked and locked: load, read, then plan and write."""
    from .programme import Programme, load_programme

    _import_in_background(*([] if model is not None else ["trainmatch.kmeans"]), *_REPORT_MODULES)

    stage = _stage_of(progress)
    stage("loading the programme")
    if not isinstance(programme, Programme):
        programme = load_programme(programme)
    from .pipeline import load_plan

    plan = load_plan(programme)
    saved, k_range = parse_model_options(programme, model, save_model, k)
    start, users = _schedule_and_users(programme, start, lms_users)
    stage("reading the survey")
    checked = read_and_import(survey, programme, mapping=mapping, duplicates=duplicates, sheet=sheet, encoding=encoding, xlsx_limits=xlsx_limits)
    _check_read(checked, strict, users, lms_users)
    return _plan_and_write(checked, plan, staged, saved=saved, k_range=k_range, seed=seed, per_person=per_person, xlsx=xlsx,
                           lang=lang, model=model, save_model=save_model, k=k, strict=strict, stage=stage, progress=progress,
                           started=started, start=start, users=users)


def _stage_of(progress: Progress | None) -> Callable[[str], None]:
    """``progress.stage``, or a function that does nothing without a progress display."""
    return progress.stage if progress is not None else (lambda name: None)


def _check_run_options(per_person: str, lang: str | None, seed: int, start: "str | date | None") -> "date | None":
    """UsageError for an option assign and followup cannot take; the plan period's start as a date."""
    if per_person not in ("html", "none"):
        raise UsageError(f"per_person must be 'html' or 'none', got {per_person!r}.")
    if lang not in (None, "fi", "sv", "en"):
        raise UsageError(f"lang must be one of fi, sv, en, got {lang!r}.")
    _check_seed(seed)
    return parse_start(start)


def _check_read(checked: Survey, strict: bool, users: dict[str, str] | None, lms_users: str | Path | None) -> None:
    """Before planning: the --lms-users ids are people of the survey, and there is something to plan (all of it
    with ``strict``)."""
    imported = checked.imported
    if users is not None:
        from .lms import check_users_known

        check_users_known(users, imported.people["person_id"], str(lms_users))
    if strict and imported.n_rejected:
        raise RowsRejected(f"--strict: {imported.n_rejected} of {imported.n_read} rows were rejected, so nothing was written.",
                           checked.raw, imported)
    if imported.n_accepted == 0:
        raise RowsRejected(f"All {imported.n_read} rows were rejected, so there is nothing to plan; fix the problems listed above.",
                           checked.raw, imported)


def _schedule_and_users(programme: "Programme", start: "date | None", lms_users: str | Path | None
                        ) -> tuple["date | None", dict[str, str] | None]:
    """The plan period's start (``start`` or the programme's) with the schedule checked against it, and the
    ``--lms-users`` map (person_id → username) when given; both before any survey is read."""
    from .calendar import check_schedule
    from .lms import read_lms_users

    start = start if start is not None else programme.schedule.start
    check_schedule(programme.schedule, start, programme.plan_weeks,
                   source=str(Path(programme.source) / "programme.toml") if not programme.source.startswith("built-in") else "programme.toml")
    return start, read_lms_users(lms_users) if lms_users is not None else None


MODEL_FOLDER = "model"  # in every assign output: the cohort model, so that a follow-up round's cohorts compare


def _round_record(programme: "Programme", reliability: Any) -> dict[str, Any]:
    """What a later follow-up round needs of this run in run.json: when it was made, the instrument, reliability."""
    from datetime import datetime, timezone

    from .followup import instrument_record, reliability_record

    return {"created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "instrument": instrument_record(programme),
            "reliability": reliability_record(reliability)}


def _versions() -> dict[str, str]:
    import sys
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": sys.version.split()[0]}
    for name in ("trainmatch", "numpy", "pandas", "scikit-learn", "pyarrow", "jinja2", "fastexcel"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:  # pragma: no cover - an editable dev install
            out[name] = "unknown"
    return out


def _plan_and_write(checked: Survey, plan: Any, staged: Any, *, saved: "SavedModel | None", k_range: tuple[int, int],
                    seed: int, per_person: str, xlsx: bool | None, lang: str | None, model: Any, save_model: Any, k: str,
                    strict: bool, stage: Any, progress: Progress | None, started: float, start: "date | None" = None,
                    users: dict[str, str] | None = None, extend: Any = None, planner: Any = None) -> AssignRun:
    """:func:`assign` once the survey is read: plan everyone, then write every file into the staged folder.

    ``extend`` (a follow-up round) is called with the assignment and people.csv's table and returns a
    :class:`FollowupExtra`: its people table replaces people.csv's, its tables are written next to the
    others, its record goes into run.json, its report section into the report and its progress into the
    letters. ``planner`` (:class:`trainmatch.paths.PlannerHints`) is passed to the planner.
    """
    import dataclasses
    from concurrent.futures import ThreadPoolExecutor

    from . import outputs
    from .exports import capacity_table, deferred_table, people_table, plans_table
    from .letters import render_plans
    from .outputs import write_assignment, write_handoff, write_json
    from .pipeline import group_modules, run_assignment, run_record
    from .survey import give_back_memory

    programme, raw, imported = checked.programme, checked.raw, checked.imported
    result = run_assignment(imported, programme, plan, saved=saved, k_range=k_range, seed=seed, progress=stage, hints=planner)
    clock = {"plan": time.perf_counter()}
    # The decoded answers are scored: keep only their ids (the accepted count), not a second copy of the survey.
    imported = dataclasses.replace(imported, people=imported.people[["person_id"]])
    give_back_memory()
    result = dataclasses.replace(result, imported=imported)
    handoff = _sessions_and_handoff(result, plan.catalogue, programme, start, users, stage)
    clock["handoff"] = time.perf_counter()
    result = dataclasses.replace(result, steps=handoff.steps)

    people = people_table(result.people, programme)
    plans = plans_table(result.steps, programme)
    deferred = deferred_table(result.deferred, programme)
    capacity = capacity_table(result.people, programme)
    groups = group_modules(result.cohorts.groups, result.steps)
    extra = extend(result, people, plans, deferred) if extend is not None else None
    if extra is not None:
        people, plans, deferred = extra.people, extra.plans, extra.deferred
        result = dataclasses.replace(result, steps=extra.steps)
    write_xlsx = xlsx if xlsx is not None else len(people) <= outputs.XLSX_AUTO_LIMIT
    record = run_record(
        raw, imported, result, programme, n_steps=len(plans), n_groups=len(groups), seed=seed,
        model={"reused": str(model) if model is not None else None, "saved": str(save_model) if save_model is not None else None},
        options={"k": k, "per_person": per_person, "xlsx": write_xlsx, "lang": lang, "strict": strict, "duplicates": imported.duplicates,
                 "start": start.isoformat() if start is not None else None, "lms_users": users is not None},
        versions=_versions(),
    )
    record = {**record, **_round_record(programme, result.reliability)}
    if extra is not None:
        record["followup"] = extra.record
    record["counts"].update(handoff.counts)
    pages = None
    if per_person == "html":
        pages = render_plans(
            result.people, result.steps, result.deferred, programme, default_lang=lang or programme.default_language,
            organisation=programme.organisation, support_contact=programme.support_contact,
            feedback_url=programme.feedback or None, plan_weeks=programme.plan_weeks, groups=groups, catalogue=plan.catalogue,
            **({"progress": extra.progress} if extra is not None else {}),
        )
    stage("writing the outputs")
    # The tables, and beside them the sessions, calendars and LMS files (the large LMS texts made there), are
    # written on two other threads (pyarrow's CSV writer and compute functions and file writes run mostly
    # outside the GIL) while the report is aggregated and drawn here; the pool is left, waiting for both,
    # before the folder moves.
    with staged as tmp, ThreadPoolExecutor(max_workers=2) as writer:
        tables = writer.submit(
            write_assignment, tmp, people=people, plans=plans, deferred=deferred, rejects=imported.rejects,
            cohorts=result.cohorts.cohorts, groups=groups, capacity=capacity, xlsx=write_xlsx, plan_pages=pages, n_plans=len(people),
            progress=stage, bar=progress.bar if progress is not None else None,
        )
        handoff_written = writer.submit(write_handoff, tmp, sessions=handoff.sessions, calendars=handoff.calendars, lms=handoff.lms)
        if extra is not None:  # on this thread while the writer threads write assign's files
            outputs.write_csvs({tmp / name: frame for name, frame in extra.tables.items()})
        (tmp / "report.html").write_text(_report_html(result, programme, groups, capacity, handoff.sessions, record, seed, extra),
                                         encoding="utf-8")
        clock["report"] = time.perf_counter()
        tables.result()
        handoff_written.result()
        clock["write"] = time.perf_counter()
        seconds = {
            **checked.seconds,
            **result.timings,
            "calendar_lms": clock["handoff"] - clock["plan"],
            "report": clock["report"] - clock["handoff"],
            "write": clock["write"] - clock["handoff"],
            "total": clock["write"] - started,
        }
        record = {**record, "seconds": {name: round(value, 3) for name, value in seconds.items()}}
        write_json(record, tmp / "run.json")
        _save_model(result.cohorts, programme, tmp / MODEL_FOLDER)  # a later follow-up round reuses it
        if save_model is not None:  # inside: a model that cannot be saved leaves the earlier output in place
            _save_model(result.cohorts, programme, save_model)
    return AssignRun(
        output=Path(staged.target), survey=dataclasses.replace(checked, imported=imported), people=people, plans=plans,
        deferred=deferred, rejects=imported.rejects, cohorts=result.cohorts.cohorts, groups=groups, capacity=capacity, record=record,
        warnings=tuple(result.cohorts.warnings) + handoff.warnings, sessions=handoff.sessions, enrolments=handoff.lms.enrolments,
    )


def _report_html(result: Any, programme: "Programme", groups: "pd.DataFrame", capacity: "pd.DataFrame",
                 sessions: "pd.DataFrame", record: dict[str, Any], seed: int, extra: Any) -> str:
    """The HR report of a planned run (and a follow-up round's section, with ``extra``)."""
    from .report import render_report_data, report_data

    imported = result.imported
    report = report_data(
        result.people, result.steps, result.deferred, programme, cohorts=result.cohorts.cohorts, groups=groups,
        fit_rows=result.cohorts.fit_report, warnings=result.cohorts.warnings, rejects=imported.rejects,
        reliability=result.reliability, item_stats=result.item_stats, n_read=imported.n_read, capacity=capacity,
        sessions=sessions,
        run_info={"Input file": record["input"]["file"], "Programme": f"{programme.name} ({programme.fingerprint})", "Seed": str(seed)},
    )
    if extra is not None:
        report["tables"]["followup"] = extra.report
        report["charts"].update(extra.charts)
    return render_report_data(report)


def parse_start(start: "str | date | None") -> "date | None":
    """The plan period's first day from ``--start`` (YYYY-MM-DD); UsageError naming the value otherwise."""
    import datetime as dt

    from .programme import parse_date

    if start is None or (isinstance(start, dt.date) and not isinstance(start, dt.datetime)):
        return start
    try:
        return parse_date(start)
    except ValueError:
        raise UsageError(f"Invalid value for '--start': {str(start)[:40]!r} is not a date. Write it as YYYY-MM-DD, e.g. 2027-01-11.") from None


@dataclass(frozen=True)
class _Handoff:
    """The calendar and LMS stage of an assign run: what :func:`trainmatch.outputs.write_handoff` writes."""

    steps: "pd.DataFrame"
    sessions: "pd.DataFrame"
    calendars: dict[str, str]
    lms: Any
    warnings: tuple[str, ...]
    counts: dict[str, Any]


def _sessions_and_handoff(result: Any, catalogue: Any, programme: Any, start: "date | None", users: dict[str, str] | None,
                          stage: Any) -> _Handoff:
    """Place the sessions in the calendar, make the .ics texts and the LMS files; say what could not go where."""
    from .calendar import ics_files, place, vtimezone
    from .lms import lms_files

    stage("placing the sessions in the calendar")
    placed = place(result.sessions, result.members, result.steps, catalogue, programme, start)
    sessions = placed.sessions
    warnings: list[str] = []
    calendars: dict[str, str] = {}
    if start is None:
        warnings.append("No start date (assign --start or [schedule] start): sessions have no dates and the plans show "
                        "weeks; sessions.csv lists the sessions as unscheduled.")
    else:
        block = vtimezone(programme.schedule.timezone, placed.start, placed.end)
        lang = programme.default_language
        titles = {m.id: m.title(lang) for m in catalogue.modules}
        calendars = ics_files(sessions, titles, programme.schedule.timezone, placed.start, placed.end, block)
        unscheduled = int((sessions["status"] != "scheduled").sum())
        if unscheduled:
            warnings.append(f"{unscheduled} of {len(sessions)} sessions could not be placed in the plan period; "
                            "sessions.csv says why for each.")
    stage("writing the LMS files")
    lms = lms_files(placed.steps, result.cohorts.groups, catalogue, zone=programme.schedule.timezone, start=placed.start,
                    end=placed.end, users=users, people=result.people, sessions=sessions)
    if lms.unsafe_people:
        shown = ", ".join(repr(p) for p in lms.unsafe_people[:5]) + (" …" if len(lms.unsafe_people) > 5 else "")
        warnings.append(f"{len(lms.unsafe_people)} people have an id that a Moodle flat-file line cannot carry (a comma, "
                        f"semicolon, quote, line break or edge space): {shown}. They are only in lms/enrolments.csv.")
    if lms.unsafe_courses:
        warnings.append(f"{len(lms.unsafe_courses)} lms_course ids cannot go into a Moodle flat-file line: "
                        f"{', '.join(map(repr, lms.unsafe_courses[:5]))}. Their enrolments are only in lms/enrolments.csv.")
    if lms.without_course and len(lms.without_course) < len(catalogue.modules):  # some filled in: the rest likely missed
        warnings.append(f"{len(lms.without_course)} catalogue modules have no lms_course; the LMS files use their module id "
                        "as the course id. Add an lms_course column to the catalogue to use the LMS's own ids.")
    if lms.missing_users:
        shown = ", ".join(repr(p) for p in lms.missing_users[:5]) + (" …" if len(lms.missing_users) > 5 else "")
        warnings.append(f"{len(lms.missing_users)} planned people are not in the --lms-users file and are not in "
                        f"lms/moodle-users.csv: {shown}.")
    counts = {
        "sessions": len(sessions),
        "sessions_scheduled": int((sessions["status"] == "scheduled").sum()),
        "enrolments": len(lms.enrolments),
    }
    return _Handoff(placed.steps, sessions, calendars, lms, tuple(warnings), counts)


# --------------------------------------------------------------------------- explain


def explain(
    survey: str | Path,
    person_id: str,
    *,
    programme: "Programme | str | Path | None" = None,
    model: str | Path | None = None,
    k: str = "2-8",
    seed: int = 0,
    lang: str = "en",
    mapping: str | Path | None = None,
    duplicates: str = "keep-latest",
    sheet: str | None = None,
    encoding: str | None = None,
    xlsx_limits: "XlsxLimits | str | None" = None,
) -> str:
    """One person's plan explained as text: facts, the rules that fired, the path and what was deferred.

    Runs the same pipeline as :func:`assign` (the same ``seed``, ``k`` and
    ``model`` give the same cohorts). A person whose row was rejected gets a
    DataError listing the reasons; an unknown id suggests the closest one.
    """
    from .paths import Paths, explain_person
    from .pipeline import load_plan, run_assignment
    from .programme import Programme, load_programme

    _check_seed(seed)
    person_id = str(person_id).strip()
    if not person_id:
        raise UsageError("Invalid value for '--person': must not be empty; give the person_id as written in the survey.")
    if not isinstance(programme, Programme):
        programme = load_programme(programme)
    plan = load_plan(programme)
    saved, k_range = parse_model_options(programme, model, None, k)
    imported = read_and_import(survey, programme, mapping=mapping, duplicates=duplicates, sheet=sheet, encoding=encoding, xlsx_limits=xlsx_limits).imported
    accepted = (imported.people["person_id"].astype(str) == person_id).any()
    rejected = imported.rejects[imported.rejects["person_id"].astype(str) == person_id]
    if len(rejected) and not accepted:  # a superseded copy of an accepted person is not an error
        rows = sorted({int(row) for row in rejected["row"]})
        where = f"Row {rows[0]}" if len(rows) == 1 else "Rows " + ", ".join(map(str, rows))
        lines = [f"{where} (person {person_id}) {'was' if len(rows) == 1 else 'were'} rejected, so there is no plan:"]
        lines += [f"  row {int(r.row)}, column {r.column!r}, value {r.value!r}: {r.reason}" for r in rejected.itertuples()]
        raise DataError("\n".join(lines))
    if not accepted:  # said before the cohorts are fitted and everyone is planned
        raise unknown_person(person_id, imported.people["person_id"].astype(str).tolist())
    result = run_assignment(imported, programme, plan, saved=saved, k_range=k_range, seed=seed)
    return explain_person(person_id, result.people, result.fired, Paths(result.steps, result.deferred), programme, lang=lang)


# --------------------------------------------------------------------------- followup


@dataclass(frozen=True)
class FollowupExtra:
    """What a follow-up round adds to an assign run's outputs (see :func:`_plan_and_write`)."""

    people: "pd.DataFrame"  # people.csv with round and previous_cohort
    tables: dict[str, "pd.DataFrame"]  # change.csv, effects.csv, modules.csv, leavers.csv, the rejects of completions and feedback
    record: dict[str, Any]  # run.json's followup section: previous run, pairing and file counts
    report: dict[str, Any]  # the report's follow-up section
    charts: dict[str, Any]  # its charts' arguments
    progress: "pd.DataFrame"  # per person the domains whose level rose (the letters' opening sentence)
    plans: "pd.DataFrame"  # plans.csv, its reasons saying what the round changed
    deferred: "pd.DataFrame"  # deferred.csv, likewise
    steps: "pd.DataFrame"  # the planner's steps with round_note, for the letters


@dataclass(frozen=True)
class FollowupRun:
    """What :func:`followup` wrote: the assign run of the new survey and the follow-up tables."""

    run: AssignRun
    change: "pd.DataFrame"  # change.csv
    effects: "pd.DataFrame"  # effects.csv
    modules: "pd.DataFrame"  # modules.csv
    leavers: "pd.DataFrame"  # leavers.csv
    completions_rejects: "pd.DataFrame"
    feedback_rejects: "pd.DataFrame"
    warnings: tuple[str, ...] = ()

    @property
    def counts(self) -> dict[str, Any]:
        return {**self.run.counts, **self.run.record["followup"]["counts"]}

    @property
    def notes(self) -> tuple[str, ...]:
        return self.run.notes


def followup(
    previous: str | Path,
    survey: str | Path,
    output: str | Path,
    *,
    completions: str | Path | None = None,
    feedback: str | Path | None = None,
    completions_mapping: str | Path | None = None,
    feedback_mapping: str | Path | None = None,
    refit: bool = False,
    programme: "Programme | str | Path | None" = None,
    model: str | Path | None = None,
    save_model: str | Path | None = None,
    k: str = "2-8",
    seed: int = 0,
    strict: bool = False,
    force: bool = False,
    per_person: str = "html",
    xlsx: bool | None = None,
    lang: str | None = None,
    mapping: str | Path | None = None,
    duplicates: str = "keep-latest",
    sheet: str | None = None,
    encoding: str | None = None,
    xlsx_limits: "XlsxLimits | str | None" = None,
    progress: Progress | None = None,
    start: "str | date | None" = None,
    lms_users: str | Path | None = None,
) -> FollowupRun:
    """A follow-up round: plan ``survey`` as :func:`assign` does and compare it with the run in ``previous``.

    ``previous`` is the output folder of an earlier assign or followup. Its
    programme's instrument (scale, levels, domains, items) must be the one in
    use (a changed catalogue or rules are fine and reported); its cohort model
    is reused unless ``model`` names another or ``refit`` is set. People are
    paired by person_id. ``completions`` (an LMS export) and ``feedback``
    (module ratings) are read against the previous round's people and the
    catalogue; ``completions_mapping`` / ``feedback_mapping`` name their columns
    when the headers are not recognised. ``output`` gets everything assign writes plus change.csv,
    effects.csv, modules.csv, leavers.csv, completions-rejects.csv and
    feedback-rejects.csv; the next round's plans skip completed modules,
    bring last round's deferred needs forward and demote poorly rated modules.
    """
    import dataclasses

    from .followup import instrument_differences, read_previous
    from .programme import Programme, load_programme

    start_date = _check_run_options(per_person, lang, seed, start)
    if refit and model is not None:
        raise UsageError("Use either --model (reuse that model) or --refit (fit new cohorts), not both.")
    for option, value, needs in (("--completions-mapping", completions_mapping, completions), ("--feedback-mapping", feedback_mapping, feedback)):
        if value is not None and needs is None:
            raise UsageError(f"{option} maps the columns of the {option.split('-')[2]} file; give that file too ({option.rsplit('-', 1)[0]} FILE).")
    started = time.perf_counter()
    with _Outputs(_inputs(previous, survey, programme, mapping, model, completions, feedback, completions_mapping, feedback_mapping,
                          lms_users), force) as outputs:
        staged = outputs.folder(output)
        outputs.model(save_model, output)
        _stage_of(progress)("reading the previous run")
        prev = read_previous(previous, tables=False)  # run.json; its tables are read below, while the survey is read
        if not isinstance(programme, Programme):
            programme = load_programme(programme)
        differences = instrument_differences(prev.record["instrument"], programme)
        if differences:
            raise DataError(
                f"The programme in use does not measure what the run in {previous} measured, so the rounds cannot be compared:\n"
                + "\n".join(f"  - {d}" for d in differences)
                + "\nUse that run's programme (--programme), or start a new series with `trainmatch assign`."
            )
        from .pipeline import load_plan

        plan = load_plan(programme)
        warnings: list[str] = []
        if prev.record.get("programme", {}).get("fingerprint") != programme.fingerprint:
            warnings.append(f"The catalogue, rules or settings changed since the run in {previous} "
                            f"(programme {prev.record.get('programme', {}).get('fingerprint')} then, {programme.fingerprint} now); "
                            "the scores still compare.")
        saved, k_range = _followup_model(prev, programme, model, save_model, k, refit)
        start_date, users = _schedule_and_users(programme, start_date, lms_users)
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=1) as pool:  # Arrow reads PREVIOUS's tables mostly outside the GIL
            later = pool.submit(_previous_round, prev, plan, programme, completions, feedback, completions_mapping, feedback_mapping)
            checked = read_and_import(survey, programme, mapping=mapping, duplicates=duplicates, sheet=sheet, encoding=encoding,
                                      xlsx_limits=xlsx_limits)
            prev, round_inputs = later.result()
        if checked.raw.sha256 == prev.record.get("input", {}).get("sha256"):
            warnings.append(f"{Path(survey).name} is byte for byte the survey of the previous run, so nothing can have changed; "
                            "pass the new round's export.")
        _check_read(checked, strict, users, lms_users)
        extend = _followup_extension(prev, programme, plan, round_inputs, previous)
        run = _plan_and_write(checked, plan, staged, saved=saved, k_range=k_range, seed=seed, per_person=per_person, xlsx=xlsx,
                              lang=lang, model=str(model) if model is not None else (None if refit else str(prev.model_folder)),
                              save_model=save_model, k=k, strict=strict, stage=_stage_of(progress), progress=progress, started=started,
                              start=start_date, users=users, extend=extend, planner=round_inputs.hints)
    run = dataclasses.replace(run, notes=tuple(outputs.notes), warnings=(*warnings, *run.warnings))
    made = extend.made
    return FollowupRun(run, made["change.csv"], made["effects.csv"], made["modules.csv"], made["leavers.csv"],
                       round_inputs.completions.rejects, round_inputs.feedback.rejects, tuple(warnings))


def _followup_model(prev: Any, programme: "Programme", model: Any, save_model: Any, k: str, refit: bool) -> tuple[Any, tuple[int, int]]:
    """The cohort model of a follow-up round: ``model``, a new fit (``refit``), or the previous run's."""
    from .model_store import load_model

    if model is not None or refit:
        return parse_model_options(programme, model, save_model, k)
    _, k_range = parse_model_options(programme, None, save_model, k)
    # The previous run's model was made for its programme; its instrument was checked to be this one's.
    return load_model(prev.model_folder, programme_fingerprint=prev.record["programme"]["fingerprint"]), k_range


@dataclass(frozen=True)
class _RoundInputs:
    completions: Any  # completions.Completions
    feedback: Any  # completions.Feedback
    demoted: list[str]
    hints: Any  # paths.PlannerHints or None


def _previous_round(prev: Any, plan: Any, programme: "Programme", completions: Any, feedback: Any, completions_mapping: Any,
                    feedback_mapping: Any) -> tuple[Any, _RoundInputs]:
    """PREVIOUS's tables, then the completions and feedback read against them (on a thread while the survey is read)."""
    from .followup import read_tables

    prev = read_tables(prev)
    inputs = _round_inputs(prev, plan, programme, completions, feedback, completions_mapping, feedback_mapping)
    import scipy.special  # noqa: F401  (the effects' t quantiles; 0.4 s of import, here off the main thread)

    return prev, inputs


def _round_inputs(prev: Any, plan: Any, programme: "Programme", completions: Any, feedback: Any,
                  completions_mapping: Any = None, feedback_mapping: Any = None) -> _RoundInputs:
    """Read the completions and feedback against the previous round; what the planner is to do with them."""
    import pandas as pd

    from .completions import empty_completions, empty_feedback, read_completions, read_feedback
    from .followup import demoted_modules

    known = prev.person_ids if prev.person_ids is not None else pd.Index(prev.people["person_id"].to_numpy(dtype=object))
    done = (read_completions(completions, plan.catalogue, known, prev.created, mapping=completions_mapping)
            if completions is not None else empty_completions())
    rated = read_feedback(feedback, plan.catalogue, known, mapping=feedback_mapping) if feedback is not None else empty_feedback()
    demoted = demoted_modules(rated.table, programme)
    hints = _planner_hints(prev, done, demoted)
    return _RoundInputs(done, rated, demoted, hints)


def _planner_hints(prev: Any, done: Any, demoted: list[str]) -> Any:
    """What the next round's planner is told: completed modules per person, last round's deferred objectives, demoted modules."""
    try:
        from .paths import PlannerHints
    except ImportError:  # a planner without follow-up hints
        return None
    table = done.table[done.table["completed"].to_numpy(dtype=bool)]
    return PlannerHints(completed=table[["person_id", "module"]], deferred=prev.deferred[["person_id", "objective"]],
                        demoted=tuple(demoted))


class _followup_extension:
    """The follow-up tables, made once the new round is planned (see :class:`FollowupExtra`)."""

    def __init__(self, prev: Any, programme: "Programme", plan: Any, inputs: _RoundInputs, previous: Any):
        self.prev, self.programme, self.plan, self.inputs, self.previous = prev, programme, plan, inputs, previous
        self.made: dict[str, Any] = {}

    def __call__(self, result: Any, people: "pd.DataFrame", plans: "pd.DataFrame", deferred: "pd.DataFrame") -> FollowupExtra:
        from . import followup as fu
        from .columns import level_matrix

        prev, programme, inputs = self.prev, self.programme, self.inputs
        domains = programme.domain_ids
        current = result.people
        pairing = fu.pair(prev.people["person_id"], current["person_id"])
        count, hours = fu.completed_by_domain(inputs.completions.table, prev.person_ids, self.plan.catalogue, domains,
                                              rows=pairing.rows_of_previous())
        scored = current[["person_id", *[f"score_{d}" for d in domains], *[f"gap_{d}" for d in domains]]].copy()
        levels = level_matrix(current, "level_", domains)
        for j, d in enumerate(domains):
            scored[f"level_{d}"] = levels[:, j]
        change = fu.change_table(prev, scored, pairing, domains, count, hours, programme.level_ids)
        pp = prev.people.iloc[pairing.previous]
        keys = {"cohort": pp["cohort"].array, "site": pp["site"].array, "role": pp["role"].array}  # categoricals
        formats = self._formats(pairing, domains)
        effects = fu.effects_table(change, keys, formats, domains, programme.min_cell)
        modules = fu.modules_table(self.plan.catalogue, prev.plans, inputs.completions.table, inputs.feedback.table,
                                   programme.min_cell, inputs.demoted)
        leavers = fu.leavers_table(prev, pairing)
        progress = fu.progress_facts(change, pairing, current["person_id"], domains, prev, scored)
        tables = {"change.csv": change.table, "effects.csv": effects, "modules.csv": modules, "leavers.csv": leavers,
                  "completions-rejects.csv": inputs.completions.rejects, "feedback-rejects.csv": inputs.feedback.rejects}
        self.made = tables
        record = {
            "previous": {"folder": Path(self.previous).name, "created": prev.record["created"],
                         "input_sha256": prev.record.get("input", {}).get("sha256"),
                         "programme": prev.record.get("programme", {}).get("fingerprint")},
            "counts": {**pairing.counts, "previous_people": len(prev.people),
                       "reconciles": pairing.counts["paired"] + pairing.counts["leavers"] == len(prev.people)
                       and pairing.counts["paired"] + pairing.counts["joiners"] == len(current)},
            "completions": inputs.completions.counts,
            "feedback": inputs.feedback.counts,
            "demoted_modules": list(inputs.demoted),
        }
        from .report import followup_section

        means = fu.before_after(change, keys["cohort"], domains, programme.min_cell)
        report, charts = followup_section(effects, modules, means, record, programme)
        notes = fu.round_notes(result.steps, prev.deferred, inputs.demoted)
        steps = result.steps.assign(round_note=notes.astype("int8"))
        plans = fu.note_reasons(plans, prev.deferred, inputs.demoted, note=notes)  # plans.csv: the steps' rows, in order
        deferred = fu.note_reasons(deferred, prev.deferred, inputs.demoted)
        return FollowupExtra(fu.followup_columns(people, prev, pairing), tables, record, report, charts, progress, plans, deferred,
                             steps)

    def _formats(self, pairing: Any, domains: tuple[str, ...]) -> "pd.DataFrame":
        """One row per paired person (position ``who``), domain (``dom``) and format of a module completed there."""
        import numpy as np
        import pandas as pd

        table = self.inputs.completions.table
        table = table[table["completed"].to_numpy(dtype=bool)]
        from .columns import positions
        from .followup import module_positions

        modules = self.plan.catalogue.modules
        who = positions(table["person_id"], self.prev.person_ids)  # previous people, then paired rows
        who = np.where(who >= 0, pairing.rows_of_previous()[np.maximum(who, 0)], -1) if len(who) else who
        pos = module_positions(table["module"], self.plan.catalogue)
        dom_of = np.asarray([domains.index(m.domain) if m.domain in domains else -1 for m in modules] + [-1], dtype=np.int64)
        fmt_of = np.asarray([m.format for m in modules] + [""], dtype=object)
        out = pd.DataFrame({"who": who, "dom": dom_of[pos], "format": fmt_of[pos]})
        return out[(out["who"] >= 0) & (out["dom"] >= 0)].reset_index(drop=True)
