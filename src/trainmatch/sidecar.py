"""A helper process for ``assign``: fits the cohorts and draws the report on the second core.

Importing scikit-learn (with SciPy) and matplotlib takes about three seconds
of one core, longer than the rest of a 100,000-person run. ``assign`` starts
this helper first thing; it imports scikit-learn while the main process
reads, validates and scores the survey, then fits the cohorts while the main
process builds the paths, and later draws the report's charts while the main
process writes the tables. If the main process has its paths before the fit
is done, it draws the charts that need no cohorts while it waits
(:meth:`Sidecar.draw_while`) and hands them over with the report.

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
  reusing the charts drawn before and those in ``drawn`` (drawn by the main
  process: ``{chart_key: {"name", "src", "alt"}}``), written as UTF-8 to
  ``path``; the result is the seconds it took.

If the helper cannot start or dies, :class:`Sidecar` does the job in the
calling process instead, so a run never depends on it. Set
``TRAINMATCH_SIDECAR=0`` to do everything in one process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
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
    from .report import Chart, render_report_data

    started = time.perf_counter()
    drawn = {**_DRAWN, **{key: Chart(**chart) for key, chart in request.get("drawn", {}).items()}}
    Path(request["path"]).write_text(render_report_data(request["data"], drawn=drawn), encoding="utf-8")
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
        self.drawn: dict[str, Any] = {}  # charts drawn in this process (``draw_while``), by report.chart_key
        self.redone: list[str] = []  # jobs ("fit", "report") the helper could not do, done in this process instead
        if os.environ.get("TRAINMATCH_SIDECAR", "1") == "0":
            return
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "trainmatch.sidecar", *jobs],
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
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        try:
            proc.stdin.close()  # type: ignore[union-attr]  # an idle helper ends at once on this
            proc.wait(timeout=0.5)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()  # still importing or working (the run ended early): nothing of it is needed
            proc.wait()

    def _send(self, request: dict[str, Any], X: "np.ndarray | None" = None) -> bool:
        """Hand a job to the helper; False when there is no working helper."""
        if self.proc is None:
            return False
        try:
            if X is not None:
                request = {**request, "shape": list(X.shape)}
            self.proc.stdin.write(json.dumps(request).encode("utf-8") + b"\n")  # type: ignore[union-attr]
            if X is not None:
                import numpy as np

                self.proc.stdin.write(np.ascontiguousarray(X, dtype="<f8").data)  # type: ignore[union-attr]
            self.proc.stdin.flush()  # type: ignore[union-attr]
            return True
        except OSError:
            self.close()
            return False

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

    def start_fit(self, X: "np.ndarray", *, k_range: tuple[int, int], seed: int) -> "_HelperFit":
        """Start :func:`trainmatch.pipeline.fit_cohorts` in the helper: a :class:`trainmatch.pipeline.PendingFit`.

        The scores are written to the pipe from a thread: the helper may still be
        importing scikit-learn, and this process has the rules and paths to do.
        """
        return _HelperFit(self, X, k_range, seed)

    def draw_while(self, charts: dict[str, dict[str, Any]], busy: Callable[[], bool]) -> None:
        """Draw charts in this process, one at a time while ``busy()``: it would otherwise only wait for the helper.

        They go to the helper with the report (:meth:`write_report`), and
        :meth:`draw_charts` leaves them out.
        """
        from .report import draw_charts_while

        self.drawn.update(draw_charts_while(charts, busy))

    def draw_charts(self, charts: dict[str, dict[str, Any]]) -> None:
        """Have the helper draw these charts now (but those drawn here), for the report later.

        Nothing happens without a helper.
        """
        from .report import chart_key

        todo = {name: args for name, args in charts.items() if chart_key(name, args) not in self.drawn}
        if todo and self._send({"job": "charts", "charts": todo}):
            self.unread += 1

    def write_report(self, data: dict[str, Any], path: Path) -> Callable[[], float]:
        """Start rendering :func:`trainmatch.report.report_data`'s result into ``path``, with the charts drawn here.

        Returns a function that waits until the file is written and gives the
        seconds the rendering took; call it before the next job.
        """
        import dataclasses
        import threading

        drawn = {key: dataclasses.asdict(chart) for key, chart in self.drawn.items()}
        # Through JSON here: data that JSON cannot hold fails in this thread (with a message), not in the
        # sending thread; and the helper and this process render the very same data, byte for byte.
        request = json.loads(json.dumps({"job": "report", "data": data, "path": str(path), "drawn": drawn}))
        # From a thread: with the charts the request outgrows the pipe, and the helper may still be drawing.
        sent: list[bool] = []
        writer = threading.Thread(target=lambda: sent.append(self._send(request)))
        writer.start()

        def finish() -> float:
            writer.join()
            done, result = self._receive() if sent and sent[0] else (False, None)
            if done:
                return float(result)
            self.redone.append("report")
            return _report(request, None)  # here instead

        return finish


class _HelperFit:
    """:class:`trainmatch.pipeline.PendingFit` in the helper: the scores go down the pipe from a thread."""

    def __init__(self, helper: Sidecar, X: "np.ndarray", k_range: tuple[int, int], seed: int) -> None:
        import threading

        self.helper, self.X, self.k_range, self.seed = helper, X, k_range, seed
        self.sent: list[bool] = []
        request = {"job": "fit", "k_range": list(k_range), "seed": int(seed)}
        self.writer = threading.Thread(target=lambda: self.sent.append(helper._send(request, X)))
        self.writer.start()

    def running_elsewhere(self) -> bool:
        """True while the helper has the scores (or is being sent them) and has not answered."""
        import select

        if self.writer.is_alive():
            return True
        proc = self.helper.proc
        if not (self.sent and self.sent[0]) or proc is None or self.helper.unread:
            return False
        try:
            return not select.select([proc.stdout], [], [], 0)[0]  # a reply (or the end of a dead helper) is readable
        except (OSError, ValueError):
            return False

    def __call__(self) -> "CohortCentres":
        from .cohorts import CohortCentres
        from .pipeline import fit_cohorts

        self.writer.join()
        done, result = self.helper._receive() if self.sent and self.sent[0] else (False, None)
        if done:
            return CohortCentres.from_dict(result)
        self.helper.redone.append("fit")
        return fit_cohorts(self.X, k_range=self.k_range, seed=self.seed)


if __name__ == "__main__":
    main(sys.argv[1:])
