"""Writing outputs safely: a staged folder, single files, fast CSV, the XLSX workbook, JSON.

Everything for one run is written into a temporary folder next to OUTDIR and
moved into place only when complete, so an existing OUTDIR is never left
half-written, also when the run fails midway or is stopped. An existing OUTDIR
is replaced only when a trainmatch run wrote it (it holds a marker file), and
never when it is or holds the working folder or an input; every output path is
checked before the work starts. A single output file (``score -o``, ``synth``)
is written to a temporary file next to it and moved into place when complete.
Text cells that a spreadsheet would run as a formula are neutralised in CSV
and XLSX; numbers stay numbers.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

from .errors import OutputError, UsageError

if TYPE_CHECKING:  # imported where used: `assign` checks the output folder before pandas is loaded
    import pandas as pd

FORMULA_PATTERN = r"^[=+\-@\t\r]"
WORKBOOK_CREATED = datetime(2000, 1, 1)  # the "created" property of plans.xlsx: fixed, for identical outputs


def neutralise_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Prefix text cells starting with = + - @ tab or CR with ``'``, per distinct value.

    Repeated text columns (titles, reasons) are factorised first, so the check
    runs once per distinct value, and come back as categoricals, which the CSV
    writer streams without copying each string.
    """
    import numpy as np
    import pandas as pd

    out = {}
    for col in frame.columns:
        s = frame[col]
        if isinstance(s.dtype, pd.CategoricalDtype) and not pd.api.types.is_numeric_dtype(s.cat.categories.dtype):
            cats = pd.Series(s.cat.categories.astype(str))
            bad = cats.str.match(FORMULA_PATTERN).to_numpy(dtype=bool)
            if bad.any():
                fixed = cats.where(~bad, "'" + cats)
                # "=x" next to "'=x" would give two equal categories: treat the column as plain text instead.
                s = s.astype(object) if fixed.duplicated().any() else s.cat.rename_categories(fixed.tolist())
        if isinstance(s.dtype, pd.CategoricalDtype):
            out[col] = s
        elif isinstance(s.dtype, pd.StringDtype) and s.dtype.storage == "pyarrow" and not _any_formula(s):
            out[col] = s  # Arrow-backed text checked in one vectorised pass: nothing to change (the usual case)
        elif s.dtype == object or pd.api.types.is_string_dtype(s.dtype):
            codes, uniques = pd.factorize(s, use_na_sentinel=True)
            texts = pd.Series(np.asarray(uniques, dtype=object), dtype=object).astype(str)
            bad = texts.str.match(FORMULA_PATTERN).to_numpy(dtype=bool)
            fixed = texts.where(~bad, "'" + texts).to_numpy(dtype=object)
            if len(fixed) * 2 < len(s) and len(set(fixed)) == len(fixed):
                out[col] = pd.Categorical.from_codes(codes, categories=fixed)
            else:
                values = fixed[codes] if len(fixed) else np.full(len(s), None, dtype=object)
                out[col] = np.where(codes < 0, None, values)
        else:
            out[col] = s.to_numpy() if not isinstance(s.dtype, pd.api.extensions.ExtensionDtype) else s.array
    return pd.DataFrame(out, index=frame.index)


def _any_formula(s: pd.Series) -> bool:
    """Whether an Arrow-backed text column has a cell that starts like a formula."""
    import pyarrow as pa
    import pyarrow.compute as pc

    values = pa.chunked_array(s.array._pa_array) if hasattr(s.array, "_pa_array") else pa.array(s.array)
    return bool(pc.any(pc.match_substring_regex(values, FORMULA_PATTERN)).as_py())


CSV_BLOCK_ROWS = 32_768  # rows formatted at a time: bounds the extra memory of writing a table
CSV_WORKERS = 2  # threads formatting blocks; pyarrow's CSV writer and take release the GIL


def _csv_blocks(frame: pd.DataFrame) -> list[Callable[[], Any]]:
    """One function per block of rows of ``frame`` (formulas neutralised) that formats it as CSV bytes.

    Categoricals are never converted whole: each block's codes pick their
    text from the categories with ``take`` (a million person ids as a
    categorical cost more to convert than to write). Other columns go to
    Arrow once, without copying Arrow-backed text.
    """
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.csv as pacsv

    rows = CSV_BLOCK_ROWS
    clean = neutralise_text(frame)
    parts: list[tuple[Any, Any]] = []  # (categories, codes) or (None, Arrow column)
    fields = []
    for i, name in enumerate(clean.columns):
        s = clean.iloc[:, i]
        if isinstance(s.dtype, pd.CategoricalDtype):
            cats = s.cat.categories
            values = pa.array(cats.array) if isinstance(cats.array, pd.arrays.ArrowStringArray) else pa.array(cats.to_numpy())
            values = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
            parts.append((values, s.cat.codes.to_numpy()))
            fields.append(pa.field(str(name), values.type))
        else:
            column = pa.Table.from_pandas(clean.iloc[:, [i]], preserve_index=False).column(0)
            parts.append((None, column))
            fields.append(pa.field(str(name), column.type))
    schema = pa.schema(fields)

    def block(start: int, header: bool) -> Any:
        arrays = []
        for values, part in parts:
            if values is None:
                arrays.append(part.slice(start, rows))
            else:
                codes = part[start : start + rows]
                arrays.append(pa.chunked_array([values.take(pa.array(codes, mask=codes < 0))], type=values.type))
        sink = pa.BufferOutputStream()
        options = pacsv.WriteOptions(include_header=header, quoting_style="needed")
        pacsv.write_csv(pa.Table.from_arrays(arrays, schema=schema), sink, write_options=options)
        return sink.getvalue()

    starts = np.arange(0, max(len(clean), 1), rows)
    return [functools.partial(block, int(start), start == 0) for start in starts]


def write_csvs(tables: Mapping[str | Path, pd.DataFrame], *, workers: int = CSV_WORKERS) -> list[Path]:
    """Write each frame (formulas neutralised) as UTF-8 CSV; blocks of rows are formatted on ``workers`` threads.

    The blocks of all the tables go through one pool, in order, and are
    written to their files in that order; at most ``2 * workers`` formatted
    blocks wait in memory, so a table of millions of rows is never held
    twice as text.
    """
    from collections import deque

    paths = [Path(p) for p in tables]
    # A generator: the next table is prepared (here, with the GIL) while the blocks of this one are formatted.
    jobs = ((path, fn) for path, frame in zip(paths, tables.values()) for fn in _csv_blocks(frame))
    files: dict[Path, Any] = {}
    pending: deque[tuple[Path, Any]] = deque()
    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for path, fn in jobs:
                pending.append((path, pool.submit(fn)))
                if len(pending) > 2 * workers:
                    _write_block(files, *pending.popleft())
            while pending:
                _write_block(files, *pending.popleft())
    finally:
        for path, fh in files.items():
            with naming_file(path):
                fh.close()
    return paths


def _write_block(files: dict[Path, Any], path: Path, future: Any) -> None:
    data = future.result()
    with naming_file(path):
        if path not in files:
            files[path] = open(path, "wb")
        files[path].write(data)


class naming_file:
    """Context manager: an OSError raised within names ``path`` when it names no file (a full disk does not)."""

    def __init__(self, path: str | Path):
        self.path = path

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if isinstance(exc, OSError) and not exc.filename:
            raise OSError(exc.errno, exc.strerror or str(exc), str(self.path)) from None


def write_csv_fast(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write one frame (formulas neutralised) as UTF-8 CSV with pyarrow's writer: :func:`write_csvs` of one table."""
    return write_csvs({path: frame})[0]


def write_json(data: Mapping[str, Any], path: str | Path) -> Path:
    with naming_file(path):
        Path(path).write_text(json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False) + "\n", encoding="utf-8")
    return Path(path)


# --------------------------------------------------------------------------- checking and staging outputs

MARKER = ".trainmatch-output"  # in every output folder: only a folder holding it may be replaced (--force)
MARKER_TEXT = (
    "This folder was written by trainmatch. `--force` replaces a folder only when it holds this file,\n"
    "and deletes everything in it then: keep your own files elsewhere.\n"
)
NAME_MAX = 255  # bytes in a file name on common file systems, when the system cannot say


def _name_max(folder: Path) -> int:
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):  # no pathconf (Windows) or no answer
        return NAME_MAX


def staging_stem(name: str) -> str:
    """The start of the hidden names next to an output (staging, ``.old``, lock): short for any output name.

    A name of up to 100 bytes keeps it whole (``.out``); a longer one is cut
    and given a hash of the whole name, so that the staging names of a name
    the file system allows stay within its limit and apart from other outputs.
    """
    raw = name.encode("utf-8", "surrogateescape")
    if len(raw) <= 100:
        return f".{name}"
    return f".{raw[:60].decode('utf-8', 'ignore')}~{hashlib.sha256(raw).hexdigest()[:12]}"


def protected_reason(path: str | Path, inputs: Iterable[str | Path | None] = ()) -> str | None:
    """Why writing or replacing ``path`` would destroy something that is not an output; None when it would not.

    Protected are the working folder and every folder holding it, each input
    (a survey, mapping, programme or model) and every folder holding one, and
    what already exists inside an input folder.
    """
    real = Path(path).resolve()
    try:
        cwd = Path.cwd().resolve()
    except OSError:  # the working folder was removed
        cwd = None
    if cwd is not None and real == cwd:
        return "it is the working folder"
    if cwd is not None and real in cwd.parents:
        return "it holds the working folder"
    for item in inputs:
        if item is None:
            continue
        source = Path(item).resolve()
        if real == source or (real.is_file() and source.is_file() and os.path.samefile(real, source)):  # a hard link too
            return f"it is the input {str(item)!r}"
        if real in source.parents:
            return f"it holds the input {str(item)!r}"
        if source.is_dir() and source in real.parents and os.path.lexists(real):
            return f"it is inside the input folder {str(item)!r}"
    return None


def check_name(path: str | Path, option: str) -> None:
    """Refuse a name longer than file systems take (checked first: looking at such a path fails)."""
    absolute = Path(os.path.abspath(path))
    parent = absolute.parent
    while not os.path.isdir(parent) and parent != parent.parent:
        parent = parent.parent
    limit = _name_max(parent)
    for part in absolute.relative_to(parent).parts or (absolute.name,):
        size = len(part.encode("utf-8", "surrogateescape"))
        if size > limit:
            raise UsageError(f"The name given to {option} is {size} bytes long, and the file system allows {limit}. Choose a shorter name.")


def check_can_create(path: Path, option: str, *, make_parents: bool = False) -> None:
    """Refuse, before any work, a name the file system cannot take or a folder that cannot be written.

    The folder is tried by creating and removing a hidden file in it: that
    finds a read-only folder or file system also for an administrator, whom
    permission bits do not stop. With ``make_parents`` the missing folders
    on the way are made later, so the nearest existing one is tried.
    """
    parent = Path(os.path.abspath(path)).parent
    while make_parents and not os.path.lexists(parent) and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise UsageError(f"The folder {str(Path(path).parent)!r} for {option} does not exist. Create it first.")
    check_name(path, option)
    try:
        fd, probe = tempfile.mkstemp(prefix=".trainmatch-probe.", dir=parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputError(
            f"Cannot write {str(path)!r} for {option}: the folder {str(parent)!r} cannot be written "
            f"({exc.strerror or exc}). Choose a folder you can write to."
        ) from None


def check_output_file(
    path: str | Path,
    *,
    force: bool = False,
    inputs: Iterable[str | Path | None] = (),
    option: str = "-o",
    make_parents: bool = False,
) -> None:
    """Refuse, before any work, an output file that would destroy an input or an existing file (unless ``force``).

    An input is never overwritten, also not with ``force`` (OutputError);
    an existing file without ``force``, a folder, a missing folder or a name
    too long are a UsageError; a folder that cannot be written an OutputError.
    """
    target = Path(path)
    check_name(target, option)
    if target.is_dir():
        raise UsageError(f"{str(target)!r} is a folder; {option} needs a file name.")
    reason = protected_reason(target, inputs)
    if reason:
        raise OutputError(f"{option} {str(target)!r} would overwrite an input of this run: {reason}. Choose another file name.")
    if os.path.lexists(target) and not force:
        raise UsageError(f"{str(target)!r} already exists. Use --force to overwrite it, or choose another name for {option}.")
    check_can_create(target, option, make_parents=make_parents)


def check_distinct(paths: Mapping[str, str | Path | None]) -> None:
    """Refuse two outputs of one command that name the same file (option → path)."""
    seen: dict[Path, str] = {}
    for option, path in paths.items():
        if path is None:
            continue
        key = Path(path).resolve()
        if key in seen:
            raise UsageError(f"{seen[key]} and {option} name the same file {str(path)!r}; give each its own file.")
        seen[key] = option


def is_output_folder(folder: str | Path) -> bool:
    """Whether ``folder`` was written by a trainmatch run (it holds the marker file)."""
    marker = Path(folder) / MARKER
    return marker.is_file() and not marker.is_symlink()


# Signals the command line catches (SIGINT, SIGTERM, SIGHUP) wait while a folder is swapped or a staging
# folder removed: the command line's handler asks `postpone_signal` first.
_holding = 0
_postponed: list[int] = []


def postpone_signal(signum: int) -> bool:
    """Keep ``signum`` for later if a swap is in progress (True), else False: the caller handles it now."""
    if _holding:
        _postponed.append(signum)
        return True
    return False


class _SignalsHeld:
    """Within the block, signals go to :func:`postpone_signal`; raised again after it, in the order they came."""

    def __enter__(self) -> None:
        global _holding
        _holding += 1

    def __exit__(self, *exc: object) -> None:
        global _holding
        _holding -= 1
        if not _holding and _postponed:
            import signal

            signum = _postponed.pop(0)
            _postponed.clear()
            signal.raise_signal(signum)


class OutputLock:
    """An exclusive lock on one output, held by one run at a time (a hidden file next to the output).

    The lock is the operating system's (``flock``; ``msvcrt.locking`` on
    Windows), so it goes with the process however that ends; the file is
    removed on release and a stale one is simply taken over.
    """

    def __init__(self, path: Path, shown: str):
        self.path = path
        self.shown = shown
        self.fd: int | None = None

    def acquire(self) -> None:
        while self.fd is None:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                _lock_fd(fd)
            except OSError:
                os.close(fd)
                raise OutputError(
                    f"Another trainmatch run is writing {self.shown!r} right now (it holds {str(self.path)!r}). "
                    "Wait until it has finished, or choose another output."
                ) from None
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except OSError:
                same = False
            if same:
                self.fd = fd
            else:  # the run that held it removed the file meanwhile: lock the file that is there now
                os.close(fd)

    def release(self) -> None:
        if self.fd is None:
            return
        fd, self.fd = self.fd, None
        try:
            os.unlink(self.path)  # while still locked: a run waiting on this file then takes a new one
        except OSError:
            pass  # Windows cannot remove an open file; the next run takes it over
        os.close(fd)


def _lock_fd(fd: int) -> None:
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        return
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def clean_leftovers(target: str | Path, shown: str | None = None) -> list[str]:
    """Remove the staging folders that killed runs left next to ``target``; put back a previous output they left.

    Call it holding the output's lock (:class:`StagedFolder` does), so that
    no live run owns them. A run killed while swapping folders can leave the
    previous output as ``.NAME.<pid>.<hex>.old`` and no ``NAME``: it is moved
    back. Returns one note per thing done, for the user.
    """
    target = Path(os.path.abspath(target))
    shown = shown or str(target)
    stem = re.escape(staging_stem(target.name))
    partial = re.compile(stem + r"\.[a-z0-9_]{8}\.partial")  # a staging folder (tempfile's 8 random characters)
    old = re.compile(stem + r"\.\d+\.[0-9a-f]{8}\.old")  # a previous output moved aside
    part = re.compile(stem + r"\.[a-z0-9_]{8}\.part")  # a staging file (staged_file)
    found: dict[str, list[Path]] = {"partial": [], "old": [], "part": []}
    try:
        entries = list(os.scandir(target.parent))
    except OSError:
        return []
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            kind = "partial" if partial.fullmatch(entry.name) else "old" if old.fullmatch(entry.name) else None
        else:
            kind = "part" if entry.is_file(follow_symlinks=False) and part.fullmatch(entry.name) else None
        if kind:
            found[kind].append(Path(entry.path))
    notes = []
    with _SignalsHeld():
        olds = sorted(found["old"], key=lambda p: p.stat().st_mtime)
        if olds and not os.path.lexists(target):
            os.replace(olds.pop(), target)
            notes.append(f"Put back the previous {shown!r}, which a run interrupted while replacing it had moved aside.")
        for folder in found["partial"] + olds:
            _remove(folder)
        for file in found["part"]:
            file.unlink(missing_ok=True)
        removed = found["partial"] + olds + found["part"]
        if removed:
            notes.append(f"Removed what interrupted runs left next to {shown!r}: {', '.join(p.name for p in removed)}.")
    return notes


def claim_output(target: str | Path, shown: str | None = None) -> tuple[OutputLock, list[str]]:
    """Take the lock of an output file or folder and clear what killed runs left next to it.

    Returns the lock (release it when the command ends) and notes for the user.
    """
    target = Path(os.path.abspath(target))
    shown = shown or str(target)
    lock = OutputLock(target.parent / f"{staging_stem(target.name)}.lock", shown)
    lock.acquire()
    try:
        return lock, clean_leftovers(target, shown)
    except BaseException:
        lock.release()
        raise


def _remove(folder: Path) -> None:
    """Remove a staging folder; again if a writer that was being stopped added a file meanwhile."""
    for _ in range(3):
        shutil.rmtree(folder, ignore_errors=True)
        if not os.path.lexists(folder):
            return


class StagedFolder:
    """Context manager: a temporary folder that replaces ``target`` only on success.

    ``target`` may be replaced only when a trainmatch run wrote it (it holds
    :data:`MARKER`) or it is empty, only with ``force``, and never when it is,
    or holds, the working folder or one of ``inputs``. Call :meth:`prepare`
    before any work: it checks all that, takes the output's lock (one run per
    output at a time) and clears what killed runs left. The swap is done
    only after the new folder is complete, with the signals the command line
    catches held back meanwhile.
    """

    def __init__(self, target: str | Path, force: bool = False, inputs: Iterable[str | Path | None] = (), option: str = "-o"):
        self.shown = str(target)
        self.target = Path(os.path.abspath(target))
        self.force = force
        self.inputs = [p for p in inputs if p is not None]
        self.option = option
        self.notes: list[str] = []
        self.lock: OutputLock | None = None

    def check(self) -> None:
        """Refuse (OutputError, or UsageError for a wrong invocation) a target that must not or cannot be written."""
        target, shown = self.target, self.shown
        check_name(target, self.option)
        reason = protected_reason(target, self.inputs)
        if reason:
            raise OutputError(
                f"{self.option} {shown!r} cannot be the output folder: {reason}, and trainmatch never replaces that, "
                "also not with --force. Choose a new folder, e.g. -o plans-out."
            )
        if target.is_symlink():
            raise OutputError(f"{shown!r} is a symbolic link; give a new folder name for {self.option}.")
        if target.exists():
            if not target.is_dir():
                raise UsageError(f"{shown!r} exists and is not a folder.")
            if not is_output_folder(target) and any(target.iterdir()):
                raise OutputError(
                    f"The output folder {shown!r} already exists and was not written by trainmatch (it has no {MARKER} file), "
                    "so it is never replaced, also not with --force: that would delete its files. "
                    f"Choose a new folder for {self.option} (an output of a trainmatch older than the marker: remove it yourself)."
                )
            if not self.force:
                raise UsageError(f"The output folder {shown!r} already exists. Use --force to replace it, or choose another {self.option}.")
        check_can_create(target, self.option)

    def prepare(self) -> list[str]:
        """Check the target, take its lock and clear what killed runs left; returns notes for the user."""
        self.check()
        if self.lock is not None:
            return self.notes
        self.lock, notes = claim_output(self.target, self.shown)
        self.notes += notes
        try:
            self.check()  # a previous output may have been put back
        except (OutputError, UsageError) as exc:
            self.close()
            raise type(exc)("\n".join([*self.notes, str(exc)])) from None  # say what was put back, then why no run
        except BaseException:
            self.close()
            raise
        return self.notes

    def close(self) -> None:
        """Release the output's lock (also when the run ended before writing)."""
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def __enter__(self) -> Path:
        self.prepare()
        try:
            self.tmp = Path(tempfile.mkdtemp(prefix=f"{staging_stem(self.target.name)}.", suffix=".partial", dir=self.target.parent))
            (self.tmp / MARKER).write_text(MARKER_TEXT, encoding="utf-8")
        except BaseException:
            if hasattr(self, "tmp"):
                shutil.rmtree(self.tmp, ignore_errors=True)
            self.close()
            raise
        return self.tmp

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            with _SignalsHeld():
                self._finish(exc_type is None)
        finally:
            self.close()
        if isinstance(exc, OSError) and exc.filename and Path(exc.filename).is_relative_to(self.tmp):
            # Name the file as the user will look for it, not inside the hidden staging folder that is gone.
            shown = os.path.join(self.shown, Path(exc.filename).relative_to(self.tmp))
            raise OSError(exc.errno, exc.strerror or str(exc), shown) from None

    def _finish(self, ok: bool) -> None:
        if not ok:
            _remove(self.tmp)
            return
        old = None
        try:
            if self.target.exists():
                old = self.target.with_name(f"{staging_stem(self.target.name)}.{os.getpid()}.{os.urandom(4).hex()}.old")
                os.replace(self.target, old)
            os.replace(self.tmp, self.target)
        except BaseException:
            if old is not None and not self.target.exists():
                os.replace(old, self.target)  # put the previous output back
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def write_workbook(sheets: Mapping[str, pd.DataFrame], path: str | Path, *, progress: Callable[[str], None] | None = None) -> list[str]:
    """Write tables as formatted sheets (bold frozen header, filters, column widths).

    A table longer than Excel's 1,048,576-row limit is split across sheets
    ``name``, ``name (2)``, …; nothing is truncated. Returns the sheet names.
    """
    from . import xlsx

    per_sheet = xlsx.MAX_ROWS - 1  # read here, not at import: tests lower the limit
    parts: list[tuple[str, pd.DataFrame]] = []
    for base, frame in sheets.items():
        clean = neutralise_text(frame)
        n_parts = max(1, -(-len(clean) // per_sheet))
        for part in range(n_parts):
            suffix = "" if part == 0 else f" ({part + 1})"
            # Excel allows 31 characters: cut the base name, so that "… (2)" stays apart from the first part.
            name = base[: xlsx.MAX_NAME - len(suffix)] + suffix
            parts.append((name, clean.iloc[part * per_sheet : (part + 1) * per_sheet]))

    def note(name: str) -> None:
        if progress is not None:
            progress(f"workbook sheet {name}")

    # A fixed creation date (not the current time), so the same run gives the same bytes.
    with naming_file(path):
        xlsx.write_xlsx(str(path), parts, created=WORKBOOK_CREATED, on_sheet=note)
    return [name for name, _ in parts]


XLSX_AUTO_LIMIT = 20_000  # people: above this the workbook is written only on request
def write_assignment(
    folder: Path,
    *,
    people: pd.DataFrame,
    plans: pd.DataFrame,
    deferred: pd.DataFrame,
    rejects: pd.DataFrame,
    cohorts: pd.DataFrame,
    groups: pd.DataFrame,
    xlsx: bool,
    plan_pages: Iterable[tuple[str, str]] | None,
    n_plans: int = 0,
    progress: Callable[[str], None] | None = None,
    bar: Callable[[Iterable[Any], int], Any] | None = None,
    capacity: pd.DataFrame | None = None,
) -> list[str]:
    """Write the tables, workbook and plans of an `assign` run into ``folder``; returns the names written.

    report.html and run.json are written by the caller (:func:`trainmatch.jobs.assign`) after them.
    """
    from .letters import plan_filename

    def note(text: str) -> None:
        if progress is not None:
            progress(text)

    written = []
    tables = {"people.csv": people, "plans.csv": plans, "deferred.csv": deferred, "rejects.csv": rejects, "cohorts.csv": cohorts, "groups.csv": groups}
    if capacity is not None:
        tables["capacity.csv"] = capacity
    note("writing " + ", ".join(tables))
    write_csvs({folder / name: frame for name, frame in tables.items()})
    written += list(tables)
    if xlsx:
        note("writing plans.xlsx")
        write_workbook({"people": people, "plans": plans, "cohorts": cohorts, "groups": groups}, folder / "plans.xlsx", progress=progress)
        written.append("plans.xlsx")
    if plan_pages is not None:
        plan_dir = folder / "plans"
        plan_dir.mkdir()
        with (bar(plan_pages, n_plans) if bar is not None else nullcontext(plan_pages)) as items:
            page = plan_dir
            try:
                for person_id, html in items:
                    page = plan_dir / plan_filename(person_id)
                    page.write_text(html, encoding="utf-8")
            except OSError:  # name the plan (a full disk names no file), without a check per plan
                with naming_file(page):
                    raise
        written.append("plans/")
    return written


# --------------------------------------------------------------------------- single files


def write_csv(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write ``frame`` as UTF-8 CSV atomically, with spreadsheet formulas neutralised."""
    path = Path(path)
    with staged_file(path) as tmp:
        write_csv_fast(frame, tmp)
    return path


class staged_file:
    """Context manager: yields a temporary path next to ``path``; moved into place on success.

    Check the path before the work with :func:`trainmatch.outputs.check_output_file`;
    an OSError while writing (a full disk) names ``path``, not the temporary file.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __enter__(self) -> Path:
        parent = self.path.parent
        if not parent.is_dir():
            raise UsageError(f"The folder {str(parent)!r} for {self.path.name!r} does not exist. Create it first.")
        fd, tmp = tempfile.mkstemp(prefix=f"{staging_stem(self.path.name)}.", suffix=".part", dir=parent)
        os.close(fd)
        self.tmp = Path(tmp)
        return self.tmp

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            try:
                os.replace(self.tmp, self.path)
                return
            except OSError as failed:
                exc = failed
        self.tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.filename in (None, "", str(self.tmp)):
            raise OSError(exc.errno, exc.strerror or str(exc), str(self.path)) from None
        if exc_type is None:
            raise exc  # type: ignore[misc]


def write_xlsx_table(frame: pd.DataFrame, path: str | Path, sheet: str = "Sheet1") -> Path:
    """Write one table to an XLSX file atomically, formatted like the run's workbook (and as reproducibly)."""
    path = Path(path)
    with staged_file(path) as tmp:
        write_workbook({sheet: frame}, tmp)
    return path
