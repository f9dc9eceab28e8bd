"""Where outputs go: checked before any work, locked while a run writes them, staged, and swapped in.

An output folder is written into a hidden staging folder next to it and moved
into place only when complete (:class:`StagedFolder`), so an existing one is
never left half-written, also when a run fails midway or is stopped; a
single output file likewise (:class:`staged_file`). An existing output folder
is replaced only when a trainmatch run wrote it (it holds :data:`MARKER`),
only with ``--force``, and never when it is or holds the working folder or an
input. Every output path is checked before the work starts; a lock stops two
runs writing the same output at once, and what killed runs left next to an
output is cleared by the next run on it.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Iterable, Mapping

from .errors import OutputError, UsageError

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


class SignalsHeld:
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
    with SignalsHeld():
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
            with SignalsHeld():
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


class staged_file:
    """Context manager: yields a temporary path next to ``path``; moved into place on success.

    Check the path before the work with :func:`check_output_file`;
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
