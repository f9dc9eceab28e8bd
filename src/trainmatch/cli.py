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
@handle_errors
def init(folder: Path, force: bool) -> None:
    """Write the built-in programme to FOLDER for editing.

    The folder holds programme.toml (settings, levels, domains, roles, formats)
    and tables to edit in Excel: items.csv (the questionnaire) and tasks.csv
    (the level each work task requires per domain).

    \b
    Example:
      trainmatch init my-programme
      trainmatch validate survey.csv --programme my-programme
    """
    from .programme import default_programme_files, write_programme

    files = default_programme_files()
    clash = [name for name in files if (folder / name).exists()]
    if clash and not force:
        raise click.UsageError(f"{folder} already has {', '.join(sorted(clash))}. Use --force to overwrite them.")
    written = write_programme(folder, files)
    click.echo(f"Wrote the default programme to {folder}/ ({len(written)} files):")
    for path in written:
        click.echo(f"  {path.name}")


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


def _load_survey(path: Path, programme_dir: Path | None, sheet: str | None, encoding: str | None):  # noqa: ANN202
    from .io import read_survey
    from .programme import load_programme
    from .survey import import_survey

    programme = load_programme(programme_dir)
    raw = read_survey(path, sheet=sheet, encoding=encoding)
    return programme, raw, import_survey(raw, programme)


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
    """Fit or reuse the cohort model (shared by `cohorts` and `assign`)."""
    from .cohorts import parse_k_range
    from .model_store import load_model
    from .pipeline import assign_cohorts

    if model_dir is not None and save_model is not None:
        raise click.UsageError("Use either --model (reuse a saved model) or --save-model (fit and save), not both.")
    try:
        k_range = parse_k_range(k_text)
    except Exception as exc:
        raise click.BadParameter(str(exc), param_hint="--k") from None
    saved = load_model(model_dir, programme_fingerprint=programme.fingerprint) if model_dir is not None else None
    stage = assign_cohorts(people, programme, saved=saved, k_range=k_range, seed=seed)
    return stage


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
    from .outputs import StagedFolder, write_csv_fast
    from .scoring import score as score_people
    from .summary import text_table

    programme, raw, result = _load_survey(survey, programme_dir, sheet, encoding)
    _summary(raw, result, show=5)
    people = score_people(result.people, programme)
    stage = _cohort_stage(people, programme, model_dir, save_model, k_text, seed)
    with StagedFolder(output, force=force) as tmp:
        write_csv_fast(stage.cohorts, tmp / "cohorts.csv")
        write_csv_fast(stage.groups, tmp / "groups.csv")
        write_csv_fast(stage.people[["person_id", "role", "site", "cohort", "group"]], tmp / "people.csv")
        write_csv_fast(result.rejects, tmp / "rejects.csv")
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
