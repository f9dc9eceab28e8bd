"""The ``trainmatch`` command line: thin adapters over the library.

Each command parses its options, loads, calls one library function, writes,
and maps library errors to exit codes: 1 for bad files or data
(:class:`click.ClickException`), 2 for a wrong invocation (:class:`click.UsageError`).
Heavy libraries are imported inside the commands so that ``--help`` is instant.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from typing import Any, Callable

import click

from . import __version__

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def handle_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn library errors into clean messages and exit codes; never show a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from .errors import TrainmatchError, UsageError

        try:
            return func(*args, **kwargs)
        except click.ClickException:
            raise
        except UsageError as exc:
            raise click.UsageError(str(exc)) from None
        except TrainmatchError as exc:
            raise click.ClickException(str(exc)) from None
        except (KeyboardInterrupt, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except OSError as exc:
            raise click.ClickException(f"{exc.filename or ''}: {exc.strerror or exc}") from None
        except Exception as exc:  # a bug: say so plainly, keep the traceback behind a switch
            if os.environ.get("TRAINMATCH_DEBUG"):
                raise
            raise click.ClickException(
                f"Internal error ({type(exc).__name__}). This is a bug in trainmatch, not in your data; "
                "re-run with TRAINMATCH_DEBUG=1 to see the details and report them."
            ) from None

    return wrapper


def programme_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--programme",
        "programme_dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Programme folder (from `trainmatch init`). Default: the built-in programme.",
    )(func)


def survey_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--sheet and --encoding (passed to the command), --mapping and --duplicates (kept for _load_survey)."""

    command = func

    @functools.wraps(command)
    def wrapper(*args: Any, mapping: Path | None = None, duplicates: str = "keep-latest", xlsx_limits: Any = None, **kwargs: Any) -> Any:
        ctx = click.get_current_context(silent=True)
        if ctx is not None:
            ctx.meta["trainmatch.survey"] = {"mapping": mapping, "duplicates": duplicates, "xlsx_limits": xlsx_limits}
        return command(*args, **kwargs)

    def parse_limits(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
        from .errors import UsageError
        from .io import XlsxLimits

        try:
            return XlsxLimits.parse(value) if value else None
        except UsageError as exc:
            raise click.BadParameter(str(exc)) from None

    func = wrapper
    func = click.option(
        "--xlsx-limits",
        default=None,
        callback=parse_limits,
        metavar="rows=N,columns=N,cells=N,inflated=SIZE",
        help="Refuse a workbook past these before reading it (defaults rows=2000000,columns=2000,cells=100000000,inflated=2GB).",
    )(func)
    func = click.option(
        "--duplicates",
        type=click.Choice(["keep-latest", "reject"]),
        default="keep-latest",
        show_default=True,
        help="Several rows with one id: keep the latest by submission time (every copy is rejected when the file "
        "has no times), or reject every copy. Replaced rows are listed with the rejects.",
    )(func)
    func = click.option(
        "--mapping",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Column-mapping file (TOML) for exports of other survey tools; `trainmatch init` writes an example.",
    )(func)
    func = click.option("--sheet", default=None, help="XLSX sheet holding the answers (default: the first).")(func)
    func = click.option("--encoding", default=None, help="Force the CSV encoding, e.g. cp1252 or utf-8.")(func)
    return func


def echo_err(message: str = "") -> None:
    click.echo(message, err=True)


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, prog_name="trainmatch")
def main() -> None:
    """Turn a digital-competence survey into individualised training plans.

    \b
    Typical session:
      trainmatch init my-programme           # write the default programme to edit
      trainmatch synth --n 300 -o survey.csv # or use your survey export
      trainmatch validate survey.csv         # check the file, list bad cells
      trainmatch score survey.csv -o scores.csv
    """


@main.command(context_settings=CONTEXT)
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite files in an existing folder.")
@click.option(
    "--mapping",
    "mapping_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write the example column-mapping file (default: FOLDER/mapping-example.toml).",
)
@handle_errors
def init(folder: Path, force: bool, mapping_file: Path | None) -> None:
    """Write the built-in programme to FOLDER for editing.

    The folder holds programme.toml (settings, levels, domains, roles, formats)
    and tables to edit in Excel: items.csv (the questionnaire) and tasks.csv
    (the level each work task requires per domain).

    It also writes mapping-example.toml (or --mapping FILE): an example
    column-mapping file for exports of survey tools that trainmatch does not
    recognise by itself. It is not part of the programme.

    \b
    Example:
      trainmatch init my-programme --mapping my-tool.toml
      trainmatch validate survey.csv --programme my-programme --mapping my-tool.toml
    """
    from .layouts import MAPPING_EXAMPLE, mapping_example
    from .programme import default_programme_files, write_programme

    files = default_programme_files()
    mapping_target = mapping_file or folder / MAPPING_EXAMPLE
    clash = [name for name in files if (folder / name).exists()]
    if mapping_target.exists():
        clash.append(str(mapping_target))
    if clash and not force:
        raise click.UsageError(f"{folder} already has {', '.join(sorted(clash))}. Use --force to overwrite them.")
    written = write_programme(folder, files)
    click.echo(f"Wrote the default programme to {folder}/ ({len(written)} files):")
    for path in written:
        click.echo(f"  {path.name}")
    mapping_target.parent.mkdir(parents=True, exist_ok=True)
    mapping_target.write_bytes(mapping_example())
    click.echo(f"Wrote an example column mapping for other survey tools to {mapping_target}; edit it and pass it with --mapping.")


@main.command(context_settings=CONTEXT)
@click.option("--n", "n", type=click.IntRange(min=1), default=300, show_default=True, help="Number of people.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed; same seed, same file.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Survey file to write (.csv or .xlsx).")
@click.option("--truth", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Also write each person's planted profile (CSV).")
@programme_option
@handle_errors
def synth(n: int, seed: int, output: Path, truth: Path | None, programme_dir: Path | None) -> None:
    """Write a realistic synthetic survey for the programme.

    People belong to planted competence profiles, roles and tasks follow their
    skills, and a few percent of answers are missing or "don't know".

    \b
    Example:
      trainmatch synth --n 5000 --seed 7 -o survey.csv --truth truth.csv
    """
    from .io import write_csv, write_xlsx_table
    from .programme import load_programme
    from .synth import synthesize

    suffix = output.suffix.lower()
    if suffix not in (".csv", ".xlsx"):
        raise click.BadParameter(f"must end in .csv or .xlsx, got {output.name!r}.", param_hint="--output")
    programme = load_programme(programme_dir)
    survey, planted = synthesize(programme, n, seed)
    if suffix == ".xlsx":
        write_xlsx_table(survey, output, sheet="Responses")
    else:
        write_csv(survey, output)
    click.echo(f"Wrote {n} synthetic responses to {output} (seed {seed}).")
    if truth is not None:
        write_csv(planted, truth)
        click.echo(f"Wrote the planted profiles to {truth}.")


def _read_and_import(path: Path, programme: Any, sheet: str | None, encoding: str | None, clock: dict[str, float] | None = None):  # noqa: ANN202
    """Read a survey and validate it against the programme, honouring --mapping and --duplicates.

    The mapping file is checked before the survey is read. ``clock["read"]``,
    when given, is set once the file is read (before validation). The text
    cells are freed as they are decoded: the survey returned has its header
    and no cells (the commands need only its name, header, format and hash).
    """
    import dataclasses
    import time

    import pandas as pd

    from .io import read_survey
    from .layouts import load_mapping
    from .survey import import_survey

    ctx = click.get_current_context(silent=True)
    options = ctx.meta.get("trainmatch.survey", {}) if ctx is not None else {}
    mapping = load_mapping(options["mapping"], programme) if options.get("mapping") else None
    raw = read_survey(path, sheet=sheet, encoding=encoding, xlsx_limits=options.get("xlsx_limits"))
    if clock is not None:
        clock["read"] = time.perf_counter()
    header = raw.frame.columns
    imported = import_survey(raw, programme, mapping=mapping, duplicates=options.get("duplicates", "keep-latest"), release_text=True)
    return dataclasses.replace(raw, frame=pd.DataFrame(columns=header)), imported


def _load_survey(path: Path, programme_dir: Path | None, sheet: str | None, encoding: str | None):  # noqa: ANN202
    from .programme import load_programme

    programme = load_programme(programme_dir)
    return (programme, *_read_and_import(path, programme, sheet, encoding))


def _summary(raw: Any, result: Any, show: int = 10) -> None:
    """Print what was read and the first problems to stderr."""
    from .summary import import_summary

    echo_err(import_summary(raw, result, show=show))


@main.command(context_settings=CONTEXT)
@click.argument("survey", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--errors-out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write every problem to this CSV file.")
@click.option("--show", type=click.IntRange(min=0), default=10, show_default=True, help="How many problems to list.")
@programme_option
@survey_options
@handle_errors
def validate(survey: Path, errors_out: Path | None, show: int, programme_dir: Path | None, sheet: str | None, encoding: str | None) -> None:
    """Check a survey file against the programme without writing results.

    Prints rows read, columns matched, ignored and dropped, and problems by
    kind. Exits 0 when every row is usable and 1 when any row would be
    rejected.

    \b
    Example:
      trainmatch validate survey.csv --errors-out problems.csv
    """
    from .io import write_csv

    programme, raw, result = _load_survey(survey, programme_dir, sheet, encoding)
    _summary(raw, result, show=show)
    if errors_out is not None:
        write_csv(result.rejects, errors_out)
        echo_err(f"Wrote {len(result.rejects)} problem(s) to {errors_out}.")
    if result.n_rejected:
        raise click.ClickException(f"{result.n_rejected} of {result.n_read} rows would be rejected; see the problems above.")
    echo_err("OK: every row can be used.")


@main.command(context_settings=CONTEXT)
@click.argument("survey", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Scores CSV to write.")
@click.option("--rejects-out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write rejected cells to this CSV file.")
@programme_option
@survey_options
@handle_errors
def score(survey: Path, output: Path, rejects_out: Path | None, programme_dir: Path | None, sheet: str | None, encoding: str | None) -> None:
    """Score each person's digital competence against what their work needs.

    Writes one row per accepted person: per domain the score (mean of the
    answered items after reversal), its level, the level the person's tasks
    require, the gap, and a flag where too few items were answered. Prints
    Cronbach's alpha per domain. Rejected rows are listed, not scored.

    \b
    Example:
      trainmatch score survey.csv -o scores.csv --rejects-out rejects.csv
    """
    from .io import write_csv
    from .exports import people_table
    from .summary import reliability_table
    from .scoring import cronbach_alpha
    from .scoring import score as score_people

    programme, raw, result = _load_survey(survey, programme_dir, sheet, encoding)
    _summary(raw, result)
    if result.n_accepted == 0:
        raise click.ClickException(f"All {result.n_read} rows were rejected, so there is nothing to score; fix the problems listed above.")
    people = score_people(result.people, programme)
    write_csv(people_table(people, programme), output)
    if rejects_out is not None:
        write_csv(result.rejects, rejects_out)
    echo_err(reliability_table(cronbach_alpha(result.people, programme), programme))
    echo_err(f"Wrote scores of {len(people)} people to {output}.")
    if result.n_rejected:
        echo_err(f"Warning: {result.n_rejected} row(s) were rejected and not scored" + ("." if rejects_out else "; use --rejects-out to list them."))


def model_options(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option("--seed", type=int, default=0, show_default=True, help="Random seed for the cohort fit.")(func)
    func = click.option("--k", "k_text", default="2-8", show_default=True, help="Range of cohort counts to try, e.g. 2-8 or 4.")(func)
    func = click.option(
        "--save-model", type=click.Path(file_okay=False, path_type=Path), default=None, help="Save the fitted cohort model to this folder."
    )(func)
    func = click.option(
        "--model",
        "model_dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Assign people to the cohorts of a saved model instead of fitting.",
    )(func)
    return func


def _cohort_stage(people: Any, programme: Any, model_dir: Path | None, save_model: Path | None, k_text: str, seed: int) -> Any:
    """Fit or reuse the cohort model for the `cohorts` command."""
    from .pipeline import assign_cohorts

    options = _cohort_stage_options(model_dir, save_model, k_text, programme)
    return assign_cohorts(people, programme, saved=options["saved"], k_range=options["k_range"], seed=seed)


def _save_model(stage: Any, programme: Any, save_model: Path | None) -> None:
    if save_model is None:
        return
    from .model_store import save_model as save

    save(
        stage.model,
        save_model,
        programme_fingerprint=programme.fingerprint,
        domain_ids=programme.domain_ids,
        fit_report=stage.fit_report,
        domain_names=[d.names.get("en", d.id) for d in programme.domains],
    )
    echo_err(f"Saved the cohort model to {save_model}/.")


@main.command(context_settings=CONTEXT)
@click.argument("survey", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), required=True, help="Folder to write (refused if it exists, unless --force).")
@click.option("--force", is_flag=True, help="Replace an existing output folder (only once the new one is complete).")
@model_options
@programme_option
@survey_options
@handle_errors
def cohorts(
    survey: Path,
    output: Path,
    force: bool,
    model_dir: Path | None,
    save_model: Path | None,
    k_text: str,
    seed: int,
    programme_dir: Path | None,
    sheet: str | None,
    encoding: str | None,
) -> None:
    """Group people with similar competence profiles into cohorts and training groups.

    Standardised domain profiles are clustered with k-means; k is chosen from
    the --k range by silhouette (the smaller k on a near tie) and every k's fit
    is reported. Cohorts are numbered by overall level (C1 needs the most
    support) and described in words; each is split into training groups of
    bounded size, kept by site where possible. OUTPUT gets cohorts.csv,
    groups.csv and people.csv (the cohort and group of every person).

    \b
    Examples:
      trainmatch cohorts survey.csv -o cohorts-out --save-model models/round1
      trainmatch cohorts later.csv -o later-out --model models/round1
    """
    from .cohorts import format_fit_report
    from .outputs import StagedFolder, write_csvs
    from .scoring import score as score_people
    from .summary import text_table

    staged = StagedFolder(output, force=force)
    staged.check()
    programme, raw, result = _load_survey(survey, programme_dir, sheet, encoding)
    _summary(raw, result, show=5)
    people = score_people(result.people, programme)
    stage = _cohort_stage(people, programme, model_dir, save_model, k_text, seed)
    with staged as tmp:
        write_csvs(
            {
                tmp / "cohorts.csv": stage.cohorts,
                tmp / "groups.csv": stage.groups,
                tmp / "people.csv": stage.people[["person_id", "role", "site", "cohort", "group"]],
                tmp / "rejects.csv": result.rejects,
            }
        )
    _save_model(stage, programme, save_model)
    if stage.reused_model:
        echo_err(f"Assigned {len(people)} people to the {len(stage.cohorts)} cohorts of the saved model {model_dir}.")
    else:
        echo_err(format_fit_report(stage.fit_report))
    for warning in stage.warnings:
        echo_err(f"Warning: {warning}")
    shown = stage.cohorts[["cohort", "size", "share", "description"]].assign(share=stage.cohorts["share"].map("{:.1%}".format))
    click.echo(text_table(shown, max_width=120))
    echo_err(f"Wrote cohorts.csv, groups.csv, people.csv and rejects.csv to {output}/.")


class Progress:
    """Stage names and a bar on stderr, only when stderr is a terminal and not --quiet."""

    def __init__(self, quiet: bool):
        self.enabled = not quiet and sys.stderr.isatty()

    def stage(self, name: str) -> None:
        if self.enabled:
            click.echo(f"… {name}", err=True)

    def bar(self, items: Any, length: int) -> Any:
        if not self.enabled:
            from contextlib import nullcontext

            return nullcontext(items)
        # Redraw about every 0.1% rather than for each of a million plans.
        return click.progressbar(items, length=length, label="plans", file=sys.stderr, update_min_steps=max(1, length // 1000))


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": sys.version.split()[0]}
    for name in ("trainmatch", "numpy", "pandas", "scikit-learn", "pyarrow", "jinja2", "matplotlib", "fastexcel"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:  # pragma: no cover - an editable dev install
            out[name] = "unknown"
    return out


@main.command(context_settings=CONTEXT)
@click.argument("survey", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), required=True, help="Folder to write (refused if it exists, unless --force).")
@click.option("--force", is_flag=True, help="Replace an existing output folder (only once the new one is complete).")
@click.option("--strict", is_flag=True, help="Fail (exit 1, write nothing) if any row is rejected.")
@click.option("--per-person", type=click.Choice(["html", "none"]), default="html", show_default=True, help="Write one printable plan per person into plans/.")
@click.option("--xlsx/--no-xlsx", "xlsx", default=None, help=f"Write plans.xlsx (default: only up to {20_000:,} people).")
@click.option("--lang", type=click.Choice(["fi", "sv", "en"]), default=None, help="Language of plans for people whose survey row gives none (default: the programme's).")
@click.option("--quiet", "-q", is_flag=True, help="Print only errors and warnings.")
@model_options
@programme_option
@survey_options
@handle_errors
def assign(
    survey: Path,
    output: Path,
    force: bool,
    strict: bool,
    per_person: str,
    xlsx: bool | None,
    lang: str | None,
    quiet: bool,
    model_dir: Path | None,
    save_model: Path | None,
    k_text: str,
    seed: int,
    programme_dir: Path | None,
    sheet: str | None,
    encoding: str | None,
) -> None:
    """Run the whole pipeline: plans per person, tables for the LMS, and a report for HR.

    Reads and validates the survey, scores competence against each person's
    tasks, forms cohorts and training groups, fires the programme's rules and
    builds an ordered, mixed-format path per person within their hours.
    OUTPUT gets people.csv, plans.csv, deferred.csv, rejects.csv, cohorts.csv,
    groups.csv, run.json, report.html, plans.xlsx (up to 20,000 people unless
    --xlsx) and plans/ with one printable plan per person. Every input row is in
    people.csv or rejects.csv. The folder appears only when complete.

    \b
    Examples:
      trainmatch assign survey.csv -o round1 --save-model models/round1
      trainmatch assign later.xlsx -o round2 --model models/round1 --lang fi
      trainmatch assign national.csv -o out --per-person none --no-xlsx --quiet
    """
    import dataclasses
    import time
    from concurrent.futures import ThreadPoolExecutor

    from .outputs import StagedFolder
    from .sidecar import Sidecar

    staged = StagedFolder(output, force=force)
    staged.check()  # fail before any work, not after it
    clock = {"start": time.perf_counter()}
    # First of all: the helper process imports scikit-learn on the second core while this one reads.
    # It is stopped when the command ends, also on an error.
    helper = Sidecar(jobs=("report",) if model_dir is not None else ("fit", "report"))
    click.get_current_context().call_on_close(helper.close)

    from .exports import people_table
    from .letters import render_plans
    from .outputs import XLSX_AUTO_LIMIT, plans_table, write_assignment, write_json
    from .paths import DEFERRED_COLUMNS
    from .pipeline import group_modules, load_plan, run_assignment, run_record
    from .programme import load_programme
    from .report import early_chart_args, report_data
    from .survey import give_back_memory

    progress = Progress(quiet)
    say = (lambda text: None) if quiet else echo_err
    progress.stage("loading the programme")
    programme = load_programme(programme_dir)
    plan = load_plan(programme)
    stage = _cohort_stage_options(model_dir, save_model, k_text, programme)
    progress.stage("reading the survey")
    raw, imported = _read_and_import(survey, programme, sheet, encoding, clock)
    clock["validate"] = time.perf_counter()
    if not quiet:
        _summary(raw, imported, show=10 if strict else 5)
    if strict and imported.n_rejected:
        raise click.ClickException(f"--strict: {imported.n_rejected} of {imported.n_read} rows were rejected, so nothing was written.")
    if imported.n_accepted == 0:
        raise click.ClickException(f"All {imported.n_read} rows were rejected, so there is nothing to plan; fix the problems listed above.")
    def cohorts_ready(cohorts: Any, reliability: Any) -> None:
        if helper.running:  # the helper draws most of the report while this process finishes the tables
            helper.draw_charts(
                early_chart_args(
                    cohorts.people, programme, cohorts=cohorts.cohorts, groups=cohorts.groups, fit_rows=cohorts.fit_report,
                    rejects=imported.rejects, reliability=reliability, n_read=imported.n_read,
                )
            )

    result = run_assignment(
        imported, programme, plan, saved=stage["saved"], k_range=stage["k_range"], seed=seed, progress=progress.stage,
        start_fit=helper.start_fit, after_cohorts=cohorts_ready,
    )
    clock["plan"] = time.perf_counter()
    # The decoded answers are scored: keep only their ids (the accepted count), not a second copy of the survey.
    imported = dataclasses.replace(imported, people=imported.people[["person_id"]])
    give_back_memory()
    result = dataclasses.replace(result, imported=imported)

    people = people_table(result.people, programme)
    plans = plans_table(result.steps)
    groups = group_modules(result.cohorts.groups, result.steps)
    write_xlsx = xlsx if xlsx is not None else len(people) <= XLSX_AUTO_LIMIT
    run_info = run_record(
        raw,
        imported,
        result,
        programme,
        n_steps=len(plans),
        n_groups=len(groups),
        seed=seed,
        model={"reused": str(model_dir) if model_dir else None, "saved": str(save_model) if save_model else None},
        options={"k": k_text, "per_person": per_person, "xlsx": write_xlsx, "lang": lang, "strict": strict, "duplicates": imported.duplicates},
        versions=_versions(),
    )
    pages = None
    if per_person == "html":
        pages = render_plans(
            result.people,
            result.steps,
            result.deferred,
            programme,
            default_lang=lang or programme.default_language,
            organisation=programme.organisation,
            support_contact=programme.support_contact,
            feedback_url=programme.feedback or None,
            plan_weeks=programme.plan_weeks,
            groups=groups,
            catalogue=plan.catalogue,
        )
    progress.stage("writing the outputs")
    # Both write into the staged folder: the pool is left (waiting for the tables) before the folder is moved.
    with staged as tmp, ThreadPoolExecutor(max_workers=1) as writer:
        # The tables are written on other threads (pyarrow's CSV writer mostly without the GIL) while the
        # report is aggregated here; the helper then draws it.
        tables = writer.submit(
            write_assignment,
            tmp,
            people=people,
            plans=plans,
            deferred=result.deferred[list(DEFERRED_COLUMNS)],
            rejects=imported.rejects,
            cohorts=result.cohorts.cohorts,
            groups=groups,
            xlsx=write_xlsx,
            plan_pages=pages,
            n_plans=len(people),
            progress=progress.stage,
            bar=progress.bar,
        )
        report_started = time.perf_counter()
        report = report_data(
            result.people,
            result.steps,
            result.deferred,
            programme,
            cohorts=result.cohorts.cohorts,
            groups=groups,
            fit_rows=result.cohorts.fit_report,
            warnings=result.cohorts.warnings,
            rejects=imported.rejects,
            reliability=result.reliability,
            n_read=imported.n_read,
            run_info={"Input file": run_info["input"]["file"], "Programme": f"{programme.name} ({programme.fingerprint})", "Seed": str(seed)},
        )
        report_seconds = time.perf_counter() - report_started
        report_written = helper.write_report(report, tmp / "report.html")
        try:
            tables.result()
        finally:  # the helper writes into the staged folder too: let it finish
            report_seconds += report_written()
        clock["write"] = time.perf_counter()
        seconds = {
            "read": clock["read"] - clock["start"],
            "validate": clock["validate"] - clock["read"],
            **result.timings,
            "report": report_seconds,
            "write": clock["write"] - clock["plan"],
            "total": clock["write"] - clock["start"],
        }
        write_json({**run_info, "seconds": {k: round(v, 3) for k, v in seconds.items()}}, tmp / "run.json")
    _save_model(result.cohorts, programme, save_model)
    for warning in result.cohorts.warnings:
        echo_err(f"Warning: {warning}")
    if imported.n_rejected:
        echo_err(f"Warning: {imported.n_rejected} of {imported.n_read} rows were rejected; see {output / 'rejects.csv'}.")
    say(
        f"Planned {len(people)} people in {len(result.cohorts.cohorts)} cohorts and {len(groups)} groups: "
        f"{len(plans)} steps, {people['planned_hours'].sum():,.1f} h planned, {people['deferred_hours'].sum():,.1f} h deferred."
    )
    say(f"Wrote {output}/ in {seconds['total']:.1f} s.")


@main.command(context_settings=CONTEXT)
@click.argument("survey", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--person", "person_id", required=True, help="The person_id to explain, as in the survey.")
@click.option("--lang", type=click.Choice(["fi", "sv", "en"]), default="en", show_default=True, help="Language of the labels.")
@model_options
@programme_option
@survey_options
@handle_errors
def explain(
    survey: Path,
    person_id: str,
    lang: str,
    model_dir: Path | None,
    save_model: Path | None,
    k_text: str,
    seed: int,
    programme_dir: Path | None,
    sheet: str | None,
    encoding: str | None,
) -> None:
    """Explain one person's plan: their facts, the rules that fired, and the path.

    Runs the same pipeline as `assign` (use the same --seed, --k and --model
    to get the same cohorts) and prints, for HR answering "why did I get
    this?", the person's role, tasks and per-domain score, level, required
    level and gap; every rule that fired with its objective and priority; the
    ordered steps with format, hours and reason; and what was deferred and why.
    A person whose row was rejected gets the reasons instead.

    \b
    Example:
      trainmatch explain survey.csv --person 000123
      trainmatch explain survey.csv --person 000123 --model models/round1 --lang fi
    """
    from .paths import Paths, explain_person
    from .pipeline import load_plan, run_assignment
    from .programme import load_programme

    if save_model is not None:
        raise click.UsageError("explain does not save models; use --model to reuse one, or `trainmatch assign --save-model`.")
    programme = load_programme(programme_dir)
    plan = load_plan(programme)
    options = _cohort_stage_options(model_dir, None, k_text, programme)
    if not person_id.strip():
        raise click.BadParameter("must not be empty; give the person_id as written in the survey.", param_hint="--person")
    _, imported = _read_and_import(survey, programme, sheet, encoding)
    accepted = (imported.people["person_id"].astype(str) == person_id.strip()).any()
    rejected = imported.rejects[imported.rejects["person_id"].astype(str) == person_id.strip()]
    if len(rejected) and not accepted:  # a superseded copy of an accepted person is not an error
        rows = sorted({int(row) for row in rejected["row"]})
        where = f"Row {rows[0]}" if len(rows) == 1 else "Rows " + ", ".join(map(str, rows))
        lines = [f"{where} (person {person_id.strip()}) {'was' if len(rows) == 1 else 'were'} rejected, so there is no plan:"]
        lines += [f"  row {int(r.row)}, column {r.column!r}, value {r.value!r}: {r.reason}" for r in rejected.itertuples()]
        raise click.ClickException("\n".join(lines))
    result = run_assignment(imported, programme, plan, saved=options["saved"], k_range=options["k_range"], seed=seed)
    paths = Paths(result.steps, result.deferred)
    click.echo(explain_person(person_id.strip(), result.people, result.fired, paths, programme, lang=lang))


def _cohort_stage_options(model_dir: Path | None, save_model: Path | None, k_text: str, programme: Any) -> dict[str, Any]:
    """Validate --model/--save-model/--k and load a saved model (shared by `cohorts` and `assign`)."""
    from .cohorts import parse_k_range
    from .model_store import load_model

    if model_dir is not None and save_model is not None:
        raise click.UsageError("Use either --model (reuse a saved model) or --save-model (fit and save), not both.")
    try:
        k_range = parse_k_range(k_text)
    except Exception as exc:
        raise click.BadParameter(str(exc), param_hint="--k") from None
    saved = load_model(model_dir, programme_fingerprint=programme.fingerprint) if model_dir is not None else None
    return {"saved": saved, "k_range": k_range}


def run() -> None:
    """The ``trainmatch`` console script: :func:`main`, then exit at once.

    Tearing the interpreter down (modules, thread pools, a run's worth of
    objects) takes over half a second after a large run and achieves
    nothing for a finished command: every file is closed and in place by
    then. So the process ends with ``os._exit`` once the output is flushed.
    Library callers and tests call :func:`main` and are not affected.
    """
    import os

    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if not isinstance(exc.code, (int, type(None))):
            click.echo(exc.code, err=True)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`| head`) or stream: nothing more can be shown
            pass
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    run()
