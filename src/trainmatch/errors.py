"""Exceptions raised by the trainmatch library.

The library never imports click and never prints: it raises one of these, and
the CLI turns them into a message and an exit code (1 for bad files or data,
2 for a wrong invocation). Every problem names where it is: the file, and the
row, column and value when there is one, plus what is allowed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable


@dataclass(frozen=True)
class Problem:
    """One located problem in a file: where it is, what is wrong, how to fix it."""

    file: str
    message: str
    row: int | None = None  # 1-based record number, or the table row for programme files
    column: str | None = None
    value: str | None = None
    hint: str | None = None
    key: str | None = None  # a key path in a settings file, e.g. "levels.advanced.min"

    def location(self) -> str:
        parts = [self.file]
        if self.key:
            parts.append(f"key {self.key}")
        if self.row is not None:
            parts.append(f"row {self.row}")
        if self.column:
            parts.append(f"column {self.column!r}")
        return ", ".join(parts)

    def __str__(self) -> str:
        text = f"{self.location()}: {self.message}"
        if self.value is not None:
            text += f" Got {self.value!r}."
        if self.hint:
            text += f" {self.hint}"
        return text


class TrainmatchError(Exception):
    """Base class for every error the library raises on purpose."""


class ProblemsError(TrainmatchError):
    """A file was checked as a whole and has problems; ``problems`` lists every one."""

    what = "The file"

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        lines = [f"{self.what} is invalid ({len(self.problems)} problem(s)):"]
        lines += [f"  - {p}" for p in self.problems]
        super().__init__("\n".join(lines))


class ProgrammeError(ProblemsError):
    """The programme folder (settings, items, tasks, roles, catalogue, rules) is invalid."""

    what = "The programme"


class MappingError(ProblemsError):
    """The column-mapping file is invalid (every problem is listed with its key)."""

    what = "The mapping file"


class SurveyError(TrainmatchError):
    """The survey file cannot be read at all (empty, no header, missing columns, …)."""

    def __init__(self, problem: Problem):
        self.problem = problem
        super().__init__(str(problem))


class ModelError(TrainmatchError):
    """A saved cohort model is missing, tampered with, or made for another programme."""


class DataError(TrainmatchError):
    """The data are valid row by row but cannot be used as a whole (e.g. too few people)."""


class OutputError(TrainmatchError):
    """An output path would destroy something trainmatch did not write, or cannot be written (CLI exit 1)."""


class UsageError(TrainmatchError):
    """A parameter passed to a library function is malformed (CLI exit 2)."""


CLOSEST_POOL = 20_000  # ids difflib compares at most: about a second (a million ids took ten)


def closest_id(person_id: str, candidates: Iterable[str]) -> str | None:
    """The id most like ``person_id`` (difflib) among ids of a similar length, for "Did you mean …?". Among
    more than :data:`CLOSEST_POOL` of them, only those that begin as it does are compared, on as many first
    characters as it takes to come under that number."""
    import difflib

    pool = [str(c) for c in candidates]
    near = [c for c in pool if abs(len(c) - len(person_id)) <= 2] or pool
    shared = 0
    while len(near) > CLOSEST_POOL and shared < len(person_id):
        shared += 1
        narrower = [c for c in near if c[:shared] == person_id[:shared]]
        if not narrower:
            break
        near = narrower
    near = near[:CLOSEST_POOL]
    found = difflib.get_close_matches(person_id, near, n=1, cutoff=0.5)
    return found[0] if found else None


def unknown_person(person_id: str, candidates: Iterable[str]) -> DataError:
    """The error for an id that is not among ``candidates``, with the closest one when there is one."""
    near = closest_id(person_id, candidates)
    return DataError(f"Unknown person_id {person_id!r}." + (f" Did you mean {near!r}?" if near else ""))
