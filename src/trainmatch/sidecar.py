"""A helper process for ``assign``: fits the cohorts and draws the report on the second core.

Importing scikit-learn (with SciPy) and matplotlib takes about three seconds
of one core, longer than the rest of a 100,000-person run. ``assign`` starts
this helper first thing; it imports scikit-learn while the main process
reads, validates and scores the survey, then fits the cohorts while the main
process builds the paths, and later draws the report's charts while the main
process writes the tables.

Protocol, one job at a time: the main process writes a request as one line of
JSON on the helper's stdin, followed by the raw bytes of a float64 array when
the request says ``"shape"``; the helper answers with one line of JSON on its
stdout, ``{"ok": true, "result": …}`` or ``{"ok": false, "kind": …,
"message": …}``. There is no pickle, and people's scores go through the pipe,
never to a file. Jobs:

* ``fit``: k-means cohorts of the array (people × domains); the result is
  :meth:`trainmatch.cohorts.CohortCentres.to_dict`.
* ``charts``: :func:`trainmatch.report.draw_charts` of ``charts``, kept
  for the report (the charts that do not need the paths, drawn as soon as
  the cohorts are known); the result is the number drawn.
* ``report``: :func:`trainmatch.report.render_report_data` of ``data``,
  reusing the charts drawn before, written as UTF-8 to ``path``; the result
  is the seconds it took.

If the helper cannot start or dies, :class:`Sidecar` does the job in the
calling process instead, so a run never depends on it. Set
``TRAINMATCH_SIDECAR=0`` to do everything in one process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Callable

from .errors import DataError, TrainmatchError, UsageError

if TYPE_CHECKING:  # imported where used: starting the helper must not wait for numpy and pandas
    import numpy as np

    from .cohorts import CohortCentres

_ERRORS: dict[str, type[TrainmatchError]] = {"DataError": DataError, "UsageError": UsageError}


# --------------------------------------------------------------------------- the helper's side


def _fit(request: dict[str, Any], X: "np.ndarray") -> Any:
    from .kmeans import fit_centres  # not via pipeline: its imports (pyarrow and the rest) are not needed here

    return fit_centres(X, k_range=tuple(request["k_range"]), seed=int(request["seed"])).to_dict()


_DRAWN: dict[str, Any] = {}  # charts drawn by the "charts" job, by report.chart_key


def _charts(request: dict[str, Any], X: "np.ndarray | None") -> Any:
    from .report import chart_key, draw_charts

    drawn = draw_charts(request["charts"])
    _DRAWN.update({chart_key(name, request["charts"][name]): chart for name, chart in drawn.items()})
    return len(drawn)


def _report(request: dict[str, Any], X: "np.ndarray | None") -> Any:
    from .report import render_report_data

    started = time.perf_counter()
    Path(request["path"]).write_text(render_report_data(request["data"], drawn=_DRAWN), encoding="utf-8")
    return time.perf_counter() - started


_JOBS: dict[str, Callable[[dict[str, Any], Any], Any]] = {"fit": _fit, "charts": _charts, "report": _report}


def _prepare_fit() -> None:
    from . import kmeans  # noqa: F401  scikit-learn and SciPy


def _prepare_report() -> None:
    from . import report

    with report._chart_style():  # matplotlib, its fonts and the SVG backend: draw one small chart
        report._fit_chart([2, 3], [0.5, 0.6], 3)


_PREPARE = {"fit": _prepare_fit, "report": _prepare_report}


def _prepare(job: str) -> None:
    try:
        _PREPARE[job]()
    except Exception:
        pass  # the job itself will fail and say why; the main process then does it itself


def serve(stdin: IO[bytes], stdout: IO[bytes], jobs: list[str]) -> None:
    """Answer requests from ``stdin`` until it closes, having prepared for ``jobs`` (expected in that order).

    The first job is prepared at once; the others after the first answer,
    while the main process works on what comes next.
    """
    todo = [job for job in jobs if job in _PREPARE]
    if todo:
        _prepare(todo.pop(0))
    while True:
        line = stdin.readline()
        if not line:
            return
        try:
            request = json.loads(line)
            X = None
            if "shape" in request:
                import numpy as np

                shape = tuple(int(n) for n in request["shape"])
                X = np.frombuffer(stdin.read(8 * int(np.prod(shape))), dtype="<f8").reshape(shape)
            reply = {"ok": True, "result": _JOBS[request["job"]](request, X)}
        except TrainmatchError as exc:
            reply = {"ok": False, "kind": type(exc).__name__, "message": str(exc)}
        except Exception as exc:  # reported to the main process, which redoes the job itself
            reply = {"ok": False, "kind": "internal", "message": f"{type(exc).__name__}: {exc}"}
        stdout.write(json.dumps(reply).encode("utf-8") + b"\n")
        stdout.flush()
        while todo:
            _prepare(todo.pop(0))


class _WithoutPandas:
    """Import finder that refuses pandas: nothing the helper does needs it.

    scikit-learn imports pandas when it can (an optional dependency of
    theirs, for DataFrame input); the helper gets numpy arrays and JSON, and
    refusing pandas takes about 0.3 s off its start, which the main process
    otherwise waits for. A job that did need pandas would fail here and be
    redone in the main process (:attr:`Sidecar.redone`).
    """

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name == "pandas" or name.startswith("pandas."):
            raise ModuleNotFoundError(f"No module named {name!r} in trainmatch's helper process", name=name)
        return None


def main(argv: list[str]) -> None:
    sys.meta_path.insert(0, _WithoutPandas())  # type: ignore[arg-type]
    serve(sys.stdin.buffer, sys.stdout.buffer, argv)
    sys.stdout.flush()
    # Every reply is out: skip tearing down scikit-learn, SciPy and matplotlib (half a second the
    # main process would wait for).
    os._exit(0)


# --------------------------------------------------------------------------- the main process's side


class Sidecar:
    """The helper process, started at once and prepared for ``jobs`` (in the order they will come).

    Each job falls back to this process if the helper fails. Use as a context
    manager: the helper is stopped on exit.
    """

    def __init__(self, jobs: tuple[str, ...] = ("fit", "report")) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.unread = 0  # replies to jobs whose result nobody waits for (``draw_charts``)
        self.senders: list[threading.Thread] = []  # threads writing a job to the helper (``_send_from_thread``)
        self.redone: list[str] = []  # jobs ("fit", "report") the helper could not do, done in this process instead
        if os.environ.get("TRAINMATCH_SIDECAR", "1") == "0":
            return
        try:
            # -P: without it `-m` puts the working folder first on the import path, and a json.py (or
            # numpy.py, trainmatch.py, …) there would run inside the helper. trainmatch is found where it is installed.
            self.proc = subprocess.Popen(
                [sys.executable, "-P", "-m", "trainmatch.sidecar", *jobs],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,  # it reports failures in its replies; the job is then redone here
            )
        except OSError:
            self.proc = None

    @property
    def running(self) -> bool:
        """Whether there is a helper process (jobs are otherwise done in this one)."""
        return self.proc is not None

    def __enter__(self) -> "Sidecar":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the helper; also while a job is still being sent to it (the run ended early, e.g. on an error)."""
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        if any(sender.is_alive() for sender in self.senders):
            proc.kill()  # the sender is blocked until the helper reads: end it, so that its write fails at once
        for sender in self.senders:
            sender.join()
        try:
            proc.stdin.close()  # type: ignore[union-attr]  # an idle helper ends at once on this
            proc.wait(timeout=0.5)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()  # still importing or working (the run ended early): nothing of it is needed
            proc.wait()

    def _send(self, request: dict[str, Any], X: "np.ndarray | None" = None) -> bool:
        """Hand a job to the helper; False when there is no working helper (the job is then done here)."""
        proc = self.proc  # once: close() may run meanwhile when this is a sender thread
        if proc is None:
            return False
        try:
            if X is not None:
                request = {**request, "shape": list(X.shape)}
            proc.stdin.write(json.dumps(request).encode("utf-8") + b"\n")  # type: ignore[union-attr]
            if X is not None:
                import numpy as np

                proc.stdin.write(np.ascontiguousarray(X, dtype="<f8").data)  # type: ignore[union-attr]
            proc.stdin.flush()  # type: ignore[union-attr]
            return True
        except (OSError, ValueError):  # a dead helper, or one stopped by close()
            return False

    def _send_from_thread(self, request: dict[str, Any], X: "np.ndarray | None" = None) -> Callable[[], bool]:
        """:meth:`_send` from a thread, for jobs larger than the pipe while the helper is still busy.

        Returns a function that waits until the job is written and says whether it was.
        """
        sent: list[bool] = []
        sender = threading.Thread(target=lambda: sent.append(self._send(request, X)), daemon=True)
        self.senders.append(sender)
        sender.start()

        def wait() -> bool:
            sender.join()
            if not (sent and sent[0]):
                self.close()  # the helper is gone: give up on it (here, not in the sender thread)
                return False
            return True

        return wait

    def _receive(self) -> tuple[bool, Any]:
        """(True, result) of the job handed over last, or (False, None) if the helper could not do it."""
        if self.proc is None:
            return False, None
        try:
            for _ in range(self.unread + 1):  # the replies of earlier fire-and-forget jobs come first
                line = self.proc.stdout.readline()  # type: ignore[union-attr]
                reply = json.loads(line) if line else None
                if reply is None:
                    break
            self.unread = 0
        except (OSError, ValueError):
            reply = None
        if reply is None:  # the helper died: carry on without it
            self.close()
            return False, None
        if reply["ok"]:
            return True, reply["result"]
        if reply["kind"] in _ERRORS:
            raise _ERRORS[reply["kind"]](reply["message"])
        return False, None  # an unexpected failure there: redo the job here, where it reports properly

    def start_fit(self, X: "np.ndarray", *, k_range: tuple[int, int], seed: int) -> Callable[[], "CohortCentres"]:
        """Start :func:`trainmatch.pipeline.fit_cohorts` in the helper: a :class:`trainmatch.pipeline.PendingFit`.

        The scores are written to the pipe from a thread: the helper may still be
        importing scikit-learn, and this process has the rules and paths to do.
        """
        sent = self._send_from_thread({"job": "fit", "k_range": list(k_range), "seed": int(seed)}, X)

        def fitted() -> "CohortCentres":
            from .cohorts import CohortCentres
            from .pipeline import fit_cohorts

            done, result = self._receive() if sent() else (False, None)
            if done:
                return CohortCentres.from_dict(result)
            self.redone.append("fit")
            return fit_cohorts(X, k_range=k_range, seed=seed)

        return fitted

    def draw_charts(self, charts: dict[str, dict[str, Any]]) -> None:
        """Have the helper draw these charts now, for the report later. Nothing happens without a helper."""
        if not charts or self.proc is None:
            return
        if self._send({"job": "charts", "charts": charts}):
            self.unread += 1
        else:
            self.close()  # the helper is gone: the report is drawn here

    def write_report(self, data: dict[str, Any], path: Path) -> Callable[[], float]:
        """Start rendering :func:`trainmatch.report.report_data`'s result into ``path``.

        Returns a function that waits until the file is written and gives the
        seconds the rendering took; call it before the next job.
        """
        # Through JSON here: data that JSON cannot hold fails in this thread (with a message), not in the
        # sending thread; and the helper and this process render the very same data, byte for byte.
        request = json.loads(json.dumps({"job": "report", "data": data, "path": str(path)}))
        # From a thread: the request may outgrow the pipe while the helper is still drawing.
        sent = self._send_from_thread(request)

        def finish() -> float:
            done, result = self._receive() if sent() else (False, None)
            if done:
                return float(result)
            self.redone.append("report")
            return _report(request, None)  # here instead

        return finish


if __name__ == "__main__":
    main(sys.argv[1:])
