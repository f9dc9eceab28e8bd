"""The ``trainmatch`` command line: thin adapters over the library.

Each command parses its options, calls one job of :mod:`trainmatch.jobs` (which
reads, runs and writes), prints what it did, and maps library errors to exit
codes: 1 for bad files or data (:class:`click.ClickException`), 2 for a wrong
invocation (:class:`click.UsageError`); a signal stops it cleanly with 128 +
the signal's number. Heavy libraries are imported inside the commands so that
``--help`` is instant.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from typing import Any, Callable

import click

from . import __version__
from .jobs import SEED_MAX  # jobs.py imports nothing heavy at its top: --help stays instant

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
            raise click.ClickException(_os_error_message(exc)) from None
        except Exception as exc:  # a bug: say so plainly, keep the traceback behind a switch
            if os.environ.get("TRAINMATCH_DEBUG"):
                raise
            raise click.ClickException(
                f"Internal error ({type(exc).__name__}). This is a bug in trainmatch, not in your data; "
                "re-run with TRAINMATCH_DEBUG=1 to see the details and report them."
            ) from None

    return wrapper


def _os_error_message(exc: OSError) -> str:
    """The file and what went wrong; a full disk also says what to do."""
    import errno

    text = f"{exc.filename}: {exc.strerror or exc}" if exc.filename else f"{exc.strerror or exc}"
    if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        text += ". Free some space on that disk (or choose another output) and run again; no earlier output was replaced"
    return text + ("" if text.endswith(".") else ".")


SEED = click.IntRange(0, SEED_MAX)


def _notes(notes: Any) -> None:
    for note in notes:
        echo_err(f"Note: {note}")


def programme_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--programme",
        "programme_dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Programme folder (from `trainmatch init`). Default: the built-in programme.",
    )(func)


def survey_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--sheet, --encoding, --mapping, --duplicates and --xlsx-limits: how to read the survey, passed on to the job."""
    func = click.option(
        "--xlsx-limits",
        default=None,
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
@click.option("--force", is_flag=True, help="Overwrite the files of an existing programme folder, and an existing --mapping file.")
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
    and tables to edit in Excel: items.csv (the questionnaire), tasks.csv
    (the level each work task requires per domain) and roles.csv (each role's
    baseline and cap per domain).

    It also writes mapping-example.toml (or --mapping FILE): an example
    column-mapping file for exports of survey tools that trainmatch does not
    recognise by itself. It is not part of the programme.

    \b
    Example:
      trainmatch init my-programme --mapping my-tool.toml
      trainmatch validate survey.csv --programme my-programme --mapping my-tool.toml
    """
    from .errors import OutputError
    from .mapping import MAPPING_EXAMPLE, mapping_example
    from .staging import check_can_create, check_output_file, staged_file
    from .programme import default_programme_files, write_programme

    files = default_programme_files()
    mapping_target = mapping_file or folder / MAPPING_EXAMPLE
    if mapping_target.suffix.lower() != ".toml":
        raise click.BadParameter(f"must end in .toml, got {mapping_target.name!r}.", param_hint="--mapping")
    if mapping_target.resolve() in {(folder / name).resolve() for name in files}:
        raise click.BadParameter(f"{str(mapping_target)!r} is a file of the programme; give the mapping its own name.", param_hint="--mapping")
    clash = [name for name in files if os.path.lexists(folder / name)]
    if clash and not (folder / "programme.toml").is_file():
        raise OutputError(
            f"{str(folder)!r} holds {', '.join(sorted(clash))} but no programme.toml: it is not a trainmatch programme folder, "
            "so init does not overwrite its files, also not with --force. Choose a new folder."
        )
    if os.path.lexists(mapping_target):
        clash.append(str(mapping_target))
    if clash and not force:
        raise click.UsageError(f"{folder} already has {', '.join(sorted(clash))}. Use --force to overwrite them.")
    check_can_create(folder / "programme.toml", "FOLDER", make_parents=True)
    check_output_file(mapping_target, force=force, option="--mapping", make_parents=True)
    written = write_programme(folder, files)
    click.echo(f"Wrote the default programme to {folder}/ ({len(written)} files):")
    for path in written:
        click.echo(f"  {path.name}")
    mapping_target.parent.mkdir(parents=True, exist_ok=True)
    with staged_file(mapping_target) as tmp:
        tmp.write_bytes(mapping_example())
    click.echo(f"Wrote an example column mapping for other survey tools to {mapping_target}; edit it and pass it with --mapping.")


@main.command(context_settings=CONTEXT)
@click.option("--n", "n", type=click.IntRange(min=1), default=300, show_default=True, help="Number of people.")
@click.option("--seed", type=SEED, default=0, show_default=True, help=f"Random seed (0 to {SEED_MAX}); same seed, same file.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Survey file to write (.csv or .xlsx).")
@click.option("--truth", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write each person's latent domain scores (and planted profile) (CSV).")
@click.option("--structure", type=click.Choice(["continuous", "profiles"]), default="continuous", show_default=True,
              help="continuous: a general competence factor plus domain factors and role effects; "
                   "profiles: well-separated planted profiles (for cohort recovery tests).")
@click.option("--force", is_flag=True, help="Overwrite existing files.")
@click.option("--followup-of", "followup_of", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write the follow-up round of this run's output folder instead (about 8% leavers and 8% joiners).")
@click.option("--completions-out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="With --followup-of: write the LMS completions of the previous round's plans here (CSV).")
@click.option("--feedback-out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="With --followup-of: write module ratings here (CSV).")
@click.option("--effect", type=float, default=0.5, show_default=True,
              help="With --followup-of: the planted rise of a domain's score for people who completed a module in it.")
@programme_option
@handle_errors
def synth(n: int, seed: int, output: Path, truth: Path | None, structure: str, force: bool, programme_dir: Path | None,
          followup_of: Path | None, completions_out: Path | None, feedback_out: Path | None, effect: float) -> None:
    """Write a realistic synthetic survey for the programme.

    Competence is a continuum (a general factor shared by all domains, plus
    domain factors and role effects) unless --structure profiles plants
    separated profiles; roles and tasks follow skills, and a few percent of
    answers are missing or "don't know".

    With --followup-of PREVIOUS it writes a second round of that run
    instead: the survey, the LMS completions (--completions-out), ratings
    (--feedback-out), and with --truth each person's planted change per domain.

    \b
    Examples:
      trainmatch synth --n 5000 --seed 7 -o survey.csv --truth truth.csv
      trainmatch synth --followup-of round1 --seed 8 -o survey2.csv --completions-out lms.csv --truth change.csv
    """
    from .jobs import synth as synthesize

    if followup_of is not None:
        survey, _ = synthesize(output, seed=seed, truth=truth, programme=programme_dir, force=force, followup_of=followup_of,
                               completions_out=completions_out, feedback_out=feedback_out, effect=effect)
        click.echo(f"Wrote a follow-up round of {followup_of}/ with {len(survey)} responses to {output} (seed {seed}); "
                   f"completions to {completions_out}.")
        if feedback_out is not None:
            click.echo(f"Wrote module ratings to {feedback_out}.")
        if truth is not None:
            click.echo(f"Wrote each person's planted change per domain to {truth}.")
        return
    synthesize(output, n=n, seed=seed, truth=truth, structure=structure, programme=programme_dir, force=force,
               completions_out=completions_out, feedback_out=feedback_out)
    click.echo(f"Wrote {n} synthetic responses to {output} (seed {seed}, {structure}).")
    if truth is not None:
        what = "latent domain scores and planted profiles" if structure == "profiles" else "latent domain scores"
        click.echo(f"Wrote the {what} to {truth}.")


def _summary(checked: Any, show: int = 10) -> None:
    """What was read and the first problems, on stderr."""
    from .summary import import_summary

    echo_err(import_summary(checked.raw, checked.imported, show=show))


def _job(run: Callable[[], Any], show: int = 10) -> Any:
    """Run a job; when rejected rows stop it, show what was read and the problems before its message."""
    from .jobs import RowsRejected
    from .summary import import_summary

    try:
        return run()
    except RowsRejected as exc:
        echo_err(import_summary(exc.raw, exc.imported, show=show))
        raise


@main.command(context_settings=CONTEXT)
@click.argument("survey", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--errors-out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write every problem to this CSV file.")
@click.option("--show", type=click.IntRange(min=0), default=10, show_default=True, help="How many problems to list.")
@click.option("--force", is_flag=True, help="Overwrite an existing --errors-out file.")
@programme_option
@survey_options
@handle_errors
def validate(survey: Path, errors_out: Path | None, show: int, force: bool, programme_dir: Path | None, **reading: Any) -> None:
    """Check a survey file against the programme without writing results.

    The programme is checked first, as `assign` checks it (settings, items,
    tasks, catalogue, rules). Prints rows read, columns matched, ignored and
    dropped, and problems by kind. Exits 0 when every row is usable and 1 when any row would be
    rejected.

    \b
    Example:
      trainmatch validate survey.csv --errors-out problems.csv
    """
    from .jobs import validate as validate_survey

    checked = validate_survey(survey, programme=programme_dir, errors_out=errors_out, force=force, **reading)
    _notes(checked.notes)
    _summary(checked, show=show)
    result = checked.imported
    if errors_out is not None:
        echo_err(f"Wrote {len(result.rejects)} problem(s) to {errors_out}.")
    if result.n_rejected:
        raise click.ClickException(f"{result.n_rejected} of {result.n_read} rows would be rejected; see the problems above.")
    echo_err("OK: every row can be used.")


@main.command(context_settings=CONTEXT)
@click.argument("survey", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Scores CSV to write.")
@click.option("--rejects-out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write rejected cells to this CSV file.")
@click.option("--item-stats", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write per-item statistics (item-rest correlation, alpha if deleted, flags) to this CSV file.")
@click.option("--force", is_flag=True, help="Overwrite existing files.")
@programme_option
@survey_options
@handle_errors
def score(survey: Path, output: Path, rejects_out: Path | None, item_stats: Path | None, force: bool,
          programme_dir: Path | None, **reading: Any) -> None:
    """Score each person's digital competence against what their work needs.

    Writes one row per accepted person: per domain the score (mean of the
    answered skill items after reversal), its level, the level the person's
    tasks require, the gap, and a flag where too few items were answered.
    Prints Cronbach's alpha and the standard error of measurement per domain,
    and warns about items that do not measure their domain (e.g. a wrongly
    keyed item). Rejected rows are listed, not scored.

    \b
    Example:
      trainmatch score survey.csv -o scores.csv --rejects-out rejects.csv --item-stats items.csv
    """
    from .jobs import score as score_survey
    from .summary import flagged_items_text, reliability_table

    scored = _job(lambda: score_survey(survey, output, programme=programme_dir, rejects_out=rejects_out,
                                       item_stats=item_stats, force=force, **reading))
    _notes(scored.survey.notes)
    _summary(scored.survey)
    echo_err(reliability_table(scored.reliability, scored.survey.programme))
    flagged = flagged_items_text(scored.flagged_items)
    if flagged:
        echo_err(flagged)
    if item_stats is not None:
        echo_err(f"Wrote the statistics of {len(scored.item_stats)} items to {item_stats}.")
    echo_err(f"Wrote scores of {len(scored.people)} people to {output}.")
    rejected = scored.survey.imported.n_rejected
    if rejected:
        echo_err(f"Warning: {rejected} row(s) were rejected and not scored" + ("." if rejects_out else "; use --rejects-out to list them."))


def model_options(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option("--seed", type=SEED, default=0, show_default=True, help=f"Random seed for the cohort fit (0 to {SEED_MAX}).")(func)
    func = click.option("--k", "k", default="2-8", show_default=True, help="Range of cohort counts to try, e.g. 2-8 or 4.")(func)
    func = click.option(
        "--save-model",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Save the fitted cohort model to this folder (a new or empty one; an earlier model only with --force).",
    )(func)
    func = click.option(
        "--model",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Assign people to the cohorts of a saved model instead of fitting.",
    )(func)
    return func


@main.command(context_settings=CONTEXT)
@click.argument("survey", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), required=True, help="Folder to write (an existing one only with --force, and only if a trainmatch run wrote it).")
@click.option(
    "--force",
    is_flag=True,
    help="Replace an output folder that an earlier run wrote (only once the new one is complete), and an earlier --save-model.",
)
@model_options
@programme_option
@survey_options
@handle_errors
def cohorts(survey: Path, output: Path, programme_dir: Path | None, **options: Any) -> None:
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
    from .jobs import cohorts as cohort_survey
    from .summary import text_table

    done = _job(lambda: cohort_survey(survey, output, programme=programme_dir, **options), show=5)
    stage = done.stage
    _notes(done.survey.notes)
    _summary(done.survey, show=5)
    if options["save_model"] is not None:
        echo_err(f"Saved the cohort model to {options['save_model']}/.")
    if stage.reused_model:
        echo_err(f"Assigned {len(stage.people)} people to the {len(stage.cohorts)} cohorts of the saved model {options['model']}.")
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


def run_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options of a planning run, shared by assign and followup (followup plans the new round as assign does)."""
    for option in reversed((
        click.option(
            "--force",
            is_flag=True,
            help="Replace an output folder that an earlier run wrote (only once the new one is complete), and an earlier --save-model.",
        ),
        click.option("--strict", is_flag=True, help="Fail (exit 1, write nothing) if any row is rejected."),
        click.option("--per-person", type=click.Choice(["html", "none"]), default="html", show_default=True,
                     help="Write one printable plan per person into plans/."),
        click.option("--xlsx/--no-xlsx", "xlsx", default=None, help=f"Write plans.xlsx (default: only up to {20_000:,} people)."),
        click.option("--lang", type=click.Choice(["fi", "sv", "en"]), default=None,
                     help="Language of plans for people whose survey row gives none (default: the programme's)."),
        click.option("--start", default=None, metavar="DATE",
                     help="First day of the plan period (YYYY-MM-DD): sessions get dates and times, self-paced steps due dates "
                          "(default: [schedule] start in the programme; without one, plans show weeks)."),
        click.option("--lms-users", type=click.Path(dir_okay=False, path_type=Path), default=None,
                     help="CSV with columns person_id and username: also write lms/moodle-users.csv for Moodle's upload users."),
        click.option("--quiet", "-q", is_flag=True, help="Print only errors and warnings."),
        model_options,
        programme_option,
        survey_options,
        handle_errors,
    )):
        command = option(command)
    return command


@main.command(context_settings=CONTEXT)
@click.argument("survey", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), required=True, help="Folder to write (an existing one only with --force, and only if a trainmatch run wrote it).")
@run_options
def assign(survey: Path, output: Path, programme_dir: Path | None, quiet: bool, **options: Any) -> None:
    """Run the whole pipeline: plans per person, tables for the LMS, and a report for HR.

    Reads and validates the survey, scores competence against each person's
    tasks, forms cohorts and training groups, fires the programme's rules and
    builds an ordered, mixed-format path per person within their hours.
    Group formats become sessions per training group (people at one site who
    share needs), each with at least [groups] min_attendees people.
    OUTPUT gets people.csv, plans.csv, deferred.csv, rejects.csv, cohorts.csv,
    groups.csv, capacity.csv (time for training per site and role),
    sessions.csv, calendar/ (one .ics per group, with --start), lms/ (Moodle
    flat-file enrolment, cohort upload, upload users with --lms-users, and
    enrolments.csv for any LMS), run.json, report.html, plans.xlsx (up to
    20,000 people unless --xlsx) and plans/ with one printable plan per
    person. Every input row is in people.csv or rejects.csv. The folder
    appears only when complete.

    \b
    Examples:
      trainmatch assign survey.csv -o round1 --save-model models/round1
      trainmatch assign later.xlsx -o round2 --model models/round1 --lang fi
      trainmatch assign national.csv -o out --per-person none --no-xlsx --quiet
      trainmatch assign survey.csv -o round1 --start 2027-01-11 --lms-users users.csv
    """
    from .jobs import assign as assign_survey

    show = 10 if options["strict"] else 5
    run = _job(lambda: assign_survey(survey, output, programme=programme_dir, progress=Progress(quiet), **options), show=show)
    _notes(run.notes)
    if not quiet:
        _summary(run.survey, show=show)
    if options["save_model"] is not None:
        echo_err(f"Saved the cohort model to {options['save_model']}/.")
    for warning in run.warnings:
        echo_err(f"Warning: {warning}")
    counts = run.counts
    if counts["rejected"]:
        echo_err(f"Warning: {counts['rejected']} of {counts['rows_read']} rows were rejected; see {output / 'rejects.csv'}.")
    if not quiet:
        echo_err(
            f"Planned {counts['accepted']} people in {counts['cohorts']} cohorts and {counts['groups']} groups: "
            f"{counts['steps']} steps, {run.people['planned_hours'].sum():,.1f} h planned, {run.people['deferred_hours'].sum():,.1f} h deferred."
        )
        echo_err(f"Wrote {output}/ in {run.record['seconds']['total']:.1f} s.")


@main.command(context_settings=CONTEXT)
@click.argument("previous", type=click.Path(file_okay=False, path_type=Path))
@click.argument("survey", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), required=True, help="Folder to write (an existing one only with --force, and only if a trainmatch run wrote it).")
@click.option("--completions", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="LMS completion export (CSV or XLSX): person, module or lms_course, status or completion time.")
@click.option("--feedback", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Module ratings (CSV or XLSX): person, module or lms_course, rating 1-5, optional comment (only counted).")
@click.option("--completions-mapping", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="TOML naming the --completions file's columns: [columns] person_id, module, status, completed_at = \"header\".")
@click.option("--feedback-mapping", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="TOML naming the --feedback file's columns: [columns] person_id, module, rating, comment = \"header\".")
@click.option("--refit", is_flag=True, help="Fit new cohorts instead of reusing the previous round's model.")
@run_options
def followup(previous: Path, survey: Path, output: Path, programme_dir: Path | None, quiet: bool, **options: Any) -> None:
    """A follow-up round: what changed since PREVIOUS, did the training work, and the next plans.

    PREVIOUS is the output folder of an earlier assign or followup; SURVEY is
    the new round's export, read and planned as `assign` does (same options),
    with the previous round's cohort model unless --model or --refit. People
    are paired by person_id. OUTPUT gets everything assign writes plus
    change.csv (per person and domain, with reliable change), effects.csv
    (mean change with 95% intervals; completers against non-completers),
    modules.csv, leavers.csv and the rejects of --completions and --feedback.
    The new plans skip completed modules, bring deferred needs forward and
    demote poorly rated modules.

    \b
    Examples:
      trainmatch followup round1 survey2.csv -o round2 --completions lms.csv
      trainmatch followup round1 survey2.xlsx -o round2 --completions lms.xlsx --feedback ratings.csv
    """
    from .jobs import followup as run_followup

    show = 10 if options["strict"] else 5
    done = _job(lambda: run_followup(previous, survey, output, programme=programme_dir, progress=Progress(quiet), **options), show=show)
    run = done.run
    _notes(run.notes)
    if not quiet:
        _summary(run.survey, show=show)
    for warning in run.warnings:
        echo_err(f"Warning: {warning}")
    counts, fu = run.counts, run.record["followup"]
    if counts["rejected"]:
        echo_err(f"Warning: {counts['rejected']} of {counts['rows_read']} rows were rejected; see {output / 'rejects.csv'}.")
    for name, what in (("completions", "completions-rejects.csv"), ("feedback", "feedback-rejects.csv")):
        if fu[name]["rejected"]:
            echo_err(f"Warning: {fu[name]['rejected']} of {fu[name]['rows_read']} {name} rows were rejected; see {output / what}.")
    if not quiet:
        pairs = fu["counts"]
        echo_err(f"Paired {pairs['paired']:,} people with {previous}/; {pairs['leavers']:,} leavers (leavers.csv), "
                 f"{pairs['joiners']:,} joiners (planned as usual).")
        echo_err(f"Planned {counts['accepted']} people: {counts['steps']} steps. Wrote {output}/ in {run.record['seconds']['total']:.1f} s.")


@main.command(context_settings=CONTEXT)
@click.argument("survey", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--person", "person_id", required=True, help="The person_id to explain, as in the survey.")
@click.option("--lang", type=click.Choice(["fi", "sv", "en"]), default="en", show_default=True, help="Language of the labels.")
@model_options
@programme_option
@survey_options
@handle_errors
def explain(survey: Path, person_id: str, programme_dir: Path | None, save_model: Path | None, **options: Any) -> None:
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
    from .jobs import explain as explain_person

    if save_model is not None:
        raise click.UsageError("explain does not save models; use --model to reuse one, or `trainmatch assign --save-model`.")
    click.echo(explain_person(survey, person_id, programme=programme_dir, **options))


@main.command(context_settings=CONTEXT)
@click.argument("outdir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--id", "person_id", required=True, help="The person_id, as in people.csv.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write to this file instead: .json, or .html for a readable page.")
@click.option("--force", is_flag=True, help="Overwrite an existing -o file.")
@handle_errors
def person(outdir: Path, person_id: str, output: Path | None, force: bool) -> None:
    """Show everything a run holds about one person (an access request).

    OUTDIR is a run folder (from `assign`) or a folder of runs. Gathers the
    person's rows from every file (scores, levels, cohort and group, plan
    steps, deferred items, rejected cells, and the files of later issues'
    sessions, enrolments and follow-up), their letter, and the lines that name
    them, as one JSON document on standard output. An unknown id suggests
    the closest one.

    \b
    Examples:
      trainmatch person round1 --id 000123
      trainmatch person runs/ --id 000123 -o 000123.html
    """
    from .privacy import person as gather, person_json, write_person

    if output is not None:
        from .staging import check_output_file

        if output.suffix.lower() not in (".json", ".html", ".htm"):
            raise click.BadParameter(f"must end in .json or .html, got {output.name!r}.", param_hint="'-o' / '--output'")
        from .privacy import check_outside

        check_outside(outdir, output, "-o")
        check_output_file(output, force=force, inputs=[outdir], option="-o")
    doc = gather(outdir, person_id)
    if output is None:
        click.echo(person_json(doc), nl=False)
    else:
        write_person(doc, output, force=True)
        echo_err(f"Wrote {output} ({sum(len(r['files']) for r in doc['runs'])} file(s) in {len(doc['runs'])} run(s) hold the person).")


@main.command(context_settings=CONTEXT)
@click.argument("outdir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--id", "ids", multiple=True, help="A person_id to erase (repeat for several).")
@click.option("--ids-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="A file with one person_id per line.")
@click.option("--expired", is_flag=True, help="OUTDIR is a folder of runs: remove every run older than the programme's privacy.retain_months.")
@programme_option
@handle_errors
def erase(outdir: Path, ids: tuple[str, ...], ids_file: Path | None, expired: bool, programme_dir: Path | None) -> None:
    """Erase people from a run (an erasure request), or remove expired runs.

    Removes the people's rows from every file of OUTDIR (the CSV tables, the
    workbook, their letter, enrolments and calendar mentions), and rebuilds the
    cohort and group counts, the capacity table, the workbook and the report
    from the people who remain. The run is rewritten in a staged copy and
    swapped in only when complete. run.json records when and how many, never
    who. --programme is needed only when the run's programme folder has moved.

    \b
    Examples:
      trainmatch erase round1 --id 000123
      trainmatch erase round1 --ids-file leavers.txt
      trainmatch erase --expired runs/ --programme my-programme
    """
    from .privacy import erase as erase_people, erase_expired, read_ids_file

    if expired:
        if ids or ids_file is not None:
            raise click.UsageError("--expired removes whole runs; leave out --id and --ids-file.")
        removed = erase_expired(outdir, programme=programme_dir)
        for run in removed:
            echo_err(f"Removed {run.folder} (made {run.made}).")
        echo_err(f"Removed {len(removed)} expired run(s) under {outdir}.")
        return
    if ids and ids_file is not None:
        raise click.UsageError("Use either --id or --ids-file, not both.")
    wanted = list(ids) if ids else (read_ids_file(ids_file) if ids_file is not None else [])
    if not wanted:
        raise click.UsageError("Give the people to erase: --id ID (repeatable) or --ids-file FILE.")
    done = erase_people(outdir, wanted, programme=programme_dir)
    removed = sum(done.removed.values())
    echo_err(f"Erased {done.people} person(s) from {outdir}: {removed} row(s) and file(s) removed, "
             f"{sum(done.changed.values())} mention(s) replaced; the report was rebuilt.")


@main.command(context_settings=CONTEXT)
@click.argument("outdir", type=click.Path(file_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder to write (an existing one only with --force, and only if trainmatch wrote it).")
@click.option("--key", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The organisation's key file (from `trainmatch keygen`); the same key gives the same pseudonyms.")
@click.option("--min-cell", type=click.IntRange(min=1), default=None,
              help="Suppress aggregates of fewer people (default: the programme's privacy.min_cell, 5).")
@click.option("--force", is_flag=True, help="Replace an output folder that trainmatch wrote.")
@programme_option
@handle_errors
def share(outdir: Path, output: Path, key: Path, min_cell: int | None, force: bool, programme_dir: Path | None) -> None:
    """Write a copy of a run without identities, for a steering group or a researcher.

    Person ids become keyed pseudonyms (HMAC-SHA256 with KEY: the same key
    gives the same pseudonym in every round, so rounds still pair; without
    the key nothing maps them back). Sites of fewer than --min-cell people are
    merged, rejected cells lose their values, and every count or mean of fewer
    than --min-cell people is suppressed in the tables and the report. Letters,
    LMS and calendar files are left out.

    \b
    Example:
      trainmatch keygen ~/secure/trainmatch.key
      trainmatch share round1 -o round1-shared --key ~/secure/trainmatch.key
    """
    from .sharing import share as share_run

    done = share_run(outdir, output, key, force=force, programme=programme_dir, min_cell=min_cell)
    echo_err(f"Wrote {output}/: {len(done.files)} file(s), ids pseudonymised, {done.sites_merged} small site(s) merged, "
             f"cells under {done.min_cell} people suppressed" + (f"; left out {', '.join(done.left_out)}." if done.left_out else "."))


@main.command(context_settings=CONTEXT)
@click.argument("keyfile", type=click.Path(dir_okay=False, path_type=Path))
@handle_errors
def keygen(keyfile: Path) -> None:
    """Make a secret key for `trainmatch share` (readable by you only; never overwritten).

    Keep the key where the organisation keeps secrets, apart from the shared
    copies: the same key gives the same pseudonyms in every round, and
    whoever has it can map a pseudonym back to an id by trying ids.

    \b
    Example:
      trainmatch keygen ~/secure/trainmatch.key
    """
    from .sharing import keygen as make_key

    make_key(keyfile)
    echo_err(f"Wrote a new key to {keyfile} (mode 0600). Keep it safe and keep using it for later rounds.")


class Interrupted(BaseException):
    """SIGINT, SIGTERM or SIGHUP stopped the command: raised through it (not an Exception, so nothing
    swallows it) so that every cleanup runs: staging folders removed, the lock released."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


_stopping = False


def _stop(signum: int, frame: object) -> None:
    """The handler of the signals :func:`run` catches: stop the command, cleaning up on the way out."""
    global _stopping
    from .staging import postpone_signal

    if _stopping or postpone_signal(signum):  # already stopping (let the cleanup finish), or a folder swap first
        return
    _stopping = True
    raise Interrupted(signum)


def _catch_signals() -> None:
    import signal

    for name in ("SIGINT", "SIGTERM", "SIGHUP"):  # SIGHUP: the terminal closed; Windows has only the first two
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), _stop)


def run() -> None:
    """The ``trainmatch`` console script: :func:`main`, then exit at once.

    SIGINT (Ctrl-C), SIGTERM and SIGHUP stop the command cleanly: nothing
    half-written stays behind, an earlier output is kept, and the exit
    status is 128 + the signal's number (130 for Ctrl-C), as shells expect.

    Tearing the interpreter down (modules, thread pools, a run's worth of
    objects) takes over half a second after a large run and achieves
    nothing for a finished command: every file is closed and in place by
    then. So the process ends with ``os._exit`` once the output is flushed.
    Library callers and tests call :func:`main` and are not affected.
    """
    import os
    import signal

    _catch_signals()
    try:
        main()
        code = 0
    except Interrupted as exc:
        click.echo(f"\nStopped by {signal.Signals(exc.signum).name}; nothing half-written was left behind.", err=True)
        code = 128 + exc.signum
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
