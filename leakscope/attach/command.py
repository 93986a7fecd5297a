"""``leakscope attach PID``: the command line.

::

    leakscope attach 4242 --duration 30            # what grows in process 4242, who holds it
    leakscope attach --children 4200 --duration 60  # each worker of a gunicorn master

Exit codes: 0 nothing grew steadily, 1 growth that looks like a leak, 2 bad input
or cannot attach (one line on standard error; also when the process exited while
attached, after the report of what was collected), 130 interrupted (the report of
the window so far is still printed).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import importlib
import json
import math
import sys
import threading
from pathlib import Path
from typing import Any

from leakscope.attach.report import (
    FORMAT_CHILDREN,
    aggregate,
    attach_data,
    format_aggregate,
    format_attach,
)
from leakscope.attach.session import Options, Result, attach
from leakscope.attach.target import Target, children, inspect, refuse_incompatible
from leakscope.errors import AttachError

__all__ = ["add_arguments", "run"]

EXIT_OK = 0
EXIT_LEAK = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

_MIN_INTERVAL = 0.01
_DEFAULT_POINTS = 15  # snapshots in a window when --interval is not given


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``attach``'s arguments to ``parser`` (the ``attach`` sub-command's parser)."""
    parser.add_argument("pid", type=int, nargs="?", metavar="PID", help="the process to attach to")
    parser.add_argument(
        "--children",
        type=int,
        metavar="PID",
        help="attach to each child of PID (a gunicorn, uvicorn or Celery master's workers)",
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=30.0,
        metavar="S",
        help="seconds to observe the process (default 30)",
    )
    parser.add_argument(
        "--interval",
        type=float,
        metavar="S",
        help=f"seconds between snapshots (default: the duration / {_DEFAULT_POINTS})",
    )
    parser.add_argument(
        "--snapshots",
        type=int,
        metavar="N",
        help="take N snapshots (at --interval) instead of observing for --duration",
    )
    parser.add_argument(
        "--trace-allocations",
        action="store_true",
        help="trace allocations in the window (tracemalloc) to report where the growing "
        "objects were allocated",
    )
    parser.add_argument("--html", metavar="F", help="also write an HTML report to F")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--output", metavar="F", help="write the report to F, not standard output")
    parser.add_argument(
        "--progress", action="store_true", help="a line on standard error per snapshot"
    )


class _Usage(Exception):
    """Bad input or cannot attach: one line on standard error, exit code 2."""


def _check(ns: argparse.Namespace) -> None:
    if (ns.pid is None) == (ns.children is None):
        raise _Usage("give a PID, or --children PID for the workers of a master")
    if not (math.isfinite(ns.duration) and ns.duration > 0):
        raise _Usage(f"--duration must be a positive number of seconds, not {ns.duration}")
    if ns.interval is not None and not (
        math.isfinite(ns.interval) and ns.interval >= _MIN_INTERVAL
    ):
        raise _Usage(
            f"--interval must be a number of seconds >= {_MIN_INTERVAL}, not {ns.interval}"
        )
    if ns.snapshots is not None and ns.snapshots < 2:
        raise _Usage(f"--snapshots must be at least 2, not {ns.snapshots}")
    for option in ("html", "output"):
        value = getattr(ns, option)
        if value is not None and not Path(value).resolve().parent.is_dir():
            raise _Usage(f"--{option}: no such directory: {Path(value).resolve().parent}")


def _options(ns: argparse.Namespace, stop: threading.Event | None = None) -> Options:
    interval = ns.interval if ns.interval is not None else max(0.05, ns.duration / _DEFAULT_POINTS)
    return Options(
        duration=ns.duration,
        interval=interval,
        trace_allocations=ns.trace_allocations,
        snapshots=ns.snapshots or 0,
        progress=sys.stderr if ns.progress or sys.stderr.isatty() else None,
        stop=stop,
    )


def _target(pid: int) -> Target:
    target = inspect(pid)
    refuse_incompatible(target)
    return target


def _write_html(data: dict[str, Any], path: str) -> None:
    try:  # imported by name: the renderer is optional to everything else here
        html = importlib.import_module("leakscope.render.html")
        written = html.write_run(data, path)
    except ImportError as exc:
        raise _Usage(f"--html: the HTML report is not available ({exc})") from None
    except OSError as exc:
        raise _Usage(f"--html: cannot write {path}: {exc.strerror or exc}") from None
    print(f"leakscope: HTML report written to {written}", file=sys.stderr)


def _emit(ns: argparse.Namespace, text: str) -> None:
    if ns.output is None:
        print(text)
        return
    try:
        Path(ns.output).write_text(text + "\n", encoding="utf-8")
    except OSError as exc:
        raise _Usage(f"--output: cannot write {ns.output}: {exc.strerror or exc}") from None
    print(f"leakscope: report written to {ns.output}", file=sys.stderr)


def _outcome(result: Result) -> str | None:
    """The one line for standard error when the attachment did not end normally."""
    if result.exited:
        return (
            f"process {result.target.pid} exited while attached (after "
            f"{len(result.snapshots)} snapshot(s)); the report covers what was collected"
        )
    if result.report is None and result.error is not None:
        return f"the agent failed in process {result.target.pid}: {result.error}"
    return None


def _single(ns: argparse.Namespace) -> int:
    target = _target(ns.pid)
    result = attach(target, _options(ns))
    data = attach_data(result)
    problem = _outcome(result)
    if data is None:
        raise _Usage(problem or f"process {target.pid}: no snapshot was taken")
    _emit(ns, json.dumps(data) if ns.json else format_attach(data))
    if ns.html is not None:
        _write_html(data, ns.html)
    if problem is not None:
        raise _Usage(problem)
    if result.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_LEAK if data["verdict"] == "leak" else EXIT_OK


def _children(ns: argparse.Namespace) -> int:  # noqa: C901 - one branch per outcome of a worker; to split (see the closing note)
    pids = children(ns.children)
    if not pids:
        raise _Usage(f"process {ns.children} has no child processes")
    failures: dict[int, str] = {}
    targets: list[Target] = []
    for pid in pids:
        try:
            targets.append(_target(pid))
        except AttachError as exc:
            failures[pid] = str(exc)
    if not targets:
        raise _Usage(f"no worker of process {ns.children} can be attached: {failures[pids[0]]}")
    stop = threading.Event()
    options = _options(ns, stop)
    results: dict[int, Result] = {}
    interrupted = False
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(targets)) as pool:
        futures = {pool.submit(attach, t, options): t.pid for t in targets}
        pending = set(futures)
        while pending:
            try:
                done, pending = concurrent.futures.wait(pending, timeout=0.5)
            except KeyboardInterrupt:
                interrupted = True
                stop.set()
                continue
            for future in done:
                pid = futures[future]
                try:
                    results[pid] = future.result()
                except AttachError as exc:
                    failures[pid] = str(exc)
    workers = []
    for pid in sorted(results):
        data = attach_data(results[pid])
        problem = _outcome(results[pid])
        if problem is not None:
            failures[pid] = problem
        if data is not None:
            workers.append(data)
    if not workers:
        raise _Usage(f"no report from the workers of process {ns.children}: {failures}")
    summary = aggregate(workers, failures)
    if ns.json:
        doc = {"format": FORMAT_CHILDREN, "master": ns.children, "workers": workers}
        _emit(ns, json.dumps({**doc, "aggregate": summary}))
    else:
        parts = [format_attach(data) for data in workers]
        _emit(ns, "\n\n".join([*parts, format_aggregate(ns.children, summary)]))
    if ns.html is not None:
        path = Path(ns.html)
        for data in workers:
            _write_html(data, str(path.with_name(f"{path.stem}-{data['pid']}{path.suffix}")))
    if interrupted or any(r.interrupted for r in results.values()):
        return EXIT_INTERRUPTED
    return EXIT_LEAK if summary["leaking"] else EXIT_OK


def run(ns: argparse.Namespace) -> int:
    """Run ``leakscope attach`` with the parsed arguments; return the exit code.

    Errors are one line on standard error (``leakscope attach: error: ...``), never
    a traceback.
    """
    try:
        _check(ns)
        return _children(ns) if ns.children is not None else _single(ns)
    except (_Usage, AttachError) as exc:
        print(f"leakscope attach: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("leakscope attach: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
