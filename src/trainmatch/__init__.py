"""trainmatch: competence-assessment survey → cohorts → individualised training plans.

The public API, for notebooks and scripts (the CLI is a thin layer over it).
One call runs what one command runs (:mod:`trainmatch.jobs`)::

    import trainmatch as tm
    run = tm.assign("survey.csv", "round1", seed=0)   # = trainmatch assign survey.csv -o round1
    run.people, run.plans, run.counts

and each stage of the data flow is a call of its own::

    programme = tm.load_programme()            # or tm.load_programme("my-programme")
    plan = tm.load_plan(programme)             # catalogue + rules, validated
    imported = tm.import_survey(tm.read_survey("survey.csv"), programme)
    result = tm.run_assignment(imported, programme, plan, seed=0)
    result.people, result.steps, result.deferred

Names are imported on first use, so ``import trainmatch`` (and the CLI's
``--help``) stays instant.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "assign": "jobs",
    "validate": "jobs",
    "explain": "jobs",
    "AssignRun": "jobs",
    "followup": "jobs",
    "FollowupRun": "jobs",
    "load_programme": "programme",
    "Programme": "programme",
    "read_survey": "io",
    "RawSurvey": "io",
    "import_survey": "survey",
    "ImportResult": "survey",
    "measure": "scoring",
    "Measurement": "scoring",
    "score": "scoring",
    "cronbach_alpha": "scoring",
    "item_statistics": "scoring",
    "CohortModel": "kmeans",
    "CohortCentres": "cohorts",
    "make_groups": "groups",
    "save_model": "model_store",
    "load_model": "model_store",
    "load_catalogue": "catalogue",
    "load_rules": "rules",
    "build_needs": "rules",
    "evaluate": "rules",
    "build_paths": "paths",
    "explain_person": "paths",
    "load_plan": "pipeline",
    "assign_cohorts": "pipeline",
    "run_assignment": "pipeline",
    "Assignment": "pipeline",
    "render_plans": "letters",
    "render_report": "report",
    "synthesize": "synth",
    "person": "privacy",
    "erase": "privacy",
    "erase_expired": "privacy",
    "share": "sharing",
    "keygen": "sharing",
    "TrainmatchError": "errors",
    "ProgrammeError": "errors",
    "SurveyError": "errors",
    "DataError": "errors",
    "ModelError": "errors",
    "MappingError": "errors",
    "UsageError": "errors",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'trainmatch' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
