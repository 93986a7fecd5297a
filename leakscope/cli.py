"""The ``leakscope`` command line (also ``python -m leakscope``).

Commands: ``run`` (a program under observation), ``check`` (the leak verdict on a
zero-argument function), ``diff`` and ``show`` (saved snapshots) and ``report``
(a directory of per-worker snapshots).  ``--json`` on each prints one JSON document
(for ``run``, on the last line of standard output, after the program's own output).

Exit codes: 0 success / clean, 1 a leak was found (or the program run failed),
2 bad usage or input, 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import math
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from leakscope import __version__
from leakscope._format import format_bytes, format_bytes_delta
from leakscope.errors import LeakscopeError, SnapshotError
from leakscope.snapshot import Snapshot

__all__ = ["main"]

EXIT_OK = 0
EXIT_LEAK = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

_EPILOG = (
    "Exit codes: 0 success (clean), 1 a leak was found (or the program run failed), "
    "2 bad usage or input, 130 interrupted (Ctrl-C)."
)


class _UsageError(Exception):
    """Bad input: printed as one line on stderr, exit code 2."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="leakscope",
        description=(
            "Find Python memory leaks: what leaks, where it was allocated and what keeps it alive."
        ),
        epilog=_EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"leakscope {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser(
        "run",
        help="run a Python program under leakscope and report what grew",
        description=(
            "Run a Python program in this interpreter (like 'python script.py' or "
            "'python -m module'), taking a snapshot at the start, then at intervals (--interval) "
            "and at exit; then print the growth over the run, the culprits with their "
            "holders and the reference cycles left at exit."
        ),
        epilog=_EPILOG + " The program's own SystemExit code is passed through.",
    )
    run.add_argument(
        "--interval",
        type=float,
        default=None,
        metavar="S",
        help=(
            "seconds between snapshots, at least 0.01 (default: adaptive, 0.1 s at first "
            "and doubling as the run goes on, so that short and long runs both show a trend)"
        ),
    )
    run.add_argument("--html", metavar="OUT", help="also write an HTML report to OUT")
    run.add_argument("--json", action="store_true", help="print the run data as JSON")
    run.add_argument("-m", dest="module", metavar="MODULE", help="run a library module as a script")
    run.add_argument("args", nargs=argparse.REMAINDER, help="script.py and its arguments")

    check = sub.add_parser(
        "check",
        help="decide whether a zero-argument function leaks",
        description=(
            "Call module:function repeatedly (warm-up, then measured runs) and say whether "
            "it leaks, what grows and what holds it."
        ),
        epilog=_EPILOG,
    )
    check.add_argument("spec", metavar="module:function", help="e.g. app.cache:render")
    check.add_argument("--runs", type=int, metavar="N", help="measured runs (default adaptive)")
    check.add_argument("--warmup", type=int, metavar="N", help="warm-up calls (default adaptive)")
    check.add_argument("--json", action="store_true", help="print the report as JSON")

    diff = sub.add_parser(
        "diff",
        help="what changed between two saved snapshots",
        description="Show the growth from snapshot A to snapshot B (files saved by Snapshot.save).",
        epilog=_EPILOG,
    )
    diff.add_argument("before", metavar="A.json")
    diff.add_argument("after", metavar="B.json")
    diff.add_argument("--limit", type=int, default=20, metavar="N", help="rows per table")
    diff.add_argument("--json", action="store_true", help="print the growth as JSON")

    show = sub.add_parser(
        "show",
        help="summarise a saved snapshot",
        description="Show a snapshot saved by Snapshot.save: totals and the most numerous types.",
        epilog=_EPILOG,
    )
    show.add_argument("path", metavar="SNAP.json")
    show.add_argument("--json", action="store_true", help="print the snapshot as JSON")

    report = sub.add_parser(
        "report",
        help="aggregate a directory of per-worker snapshots",
        description=(
            "Aggregate the per-worker files of a directory written by the gunicorn hooks "
            "(exit-<pid>.json snapshots, worker-<pid>.json states): per pid and in total."
        ),
        epilog=_EPILOG,
    )
    report.add_argument("directory", metavar="DIR")
    report.add_argument("--json", action="store_true", help="print the aggregate as JSON")

    from leakscope.attach import command as attach_command

    attach = sub.add_parser(
        "attach",
        help="diagnose a running CPython process without restarting it",
        description="Attach to a running CPython 3.10+ process and report what grows in it.",
        epilog=_EPILOG,
    )
    attach_command.add_arguments(attach)
    attach.set_defaults(handler=attach_command.run)
    return parser


def _print_json(data: Any) -> None:
    print(json.dumps(data))


# -- run ------------------------------------------------------------------------------------


_MIN_INTERVAL = 0.01  # a snapshot costs milliseconds: more often would be mostly leakscope


def _cmd_run(ns: argparse.Namespace) -> int:
    from leakscope._run import RunError, format_run, run_program

    args = list(ns.args or [])
    if args and args[0] == "--":
        args = args[1:]
    if ns.module is None and not args:
        raise _UsageError("run needs a script (leakscope run script.py) or -m module")
    if ns.interval is not None and not (
        math.isfinite(ns.interval) and ns.interval >= _MIN_INTERVAL
    ):
        raise _UsageError(
            f"--interval must be a number of seconds >= {_MIN_INTERVAL}, not {ns.interval}"
        )
    if ns.html is not None:
        parent = Path(ns.html).resolve().parent
        if not parent.is_dir():
            raise _UsageError(f"--html: no such directory: {parent}")
    target = ns.module if ns.module is not None else args.pop(0)
    progress = sys.stderr if sys.stderr.isatty() else None
    try:
        data = run_program(
            target, args, module=ns.module is not None, interval=ns.interval, progress=progress
        )
    except RunError as exc:
        raise _UsageError(str(exc)) from None
    if ns.json:
        _print_json(data)
    else:
        print("\n" + format_run(data))
    if ns.html is not None:
        # Imported by name: the HTML renderer is optional to everything else here.
        try:
            html = importlib.import_module("leakscope.report.html")
            written = html.write_run(data, ns.html)
        except ImportError as exc:
            raise _UsageError(f"--html: the HTML report is not available ({exc})") from None
        except OSError as exc:
            raise _UsageError(f"--html: cannot write {ns.html}: {exc.strerror or exc}") from None
        print(f"leakscope: HTML report written to {written}", file=sys.stderr)
    if data["error"] == "interrupted":
        return EXIT_INTERRUPTED
    code = data["exit_code"]
    if code:
        return int(code)
    return EXIT_LEAK if data["verdict"] == "leak" else EXIT_OK


# -- check ----------------------------------------------------------------------------------

_SPEC = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


def _resolve(spec: str) -> Any:
    if not _SPEC.match(spec):
        raise _UsageError(
            f"bad function spec {spec!r}: expected module:function, e.g. app.cache:render"
        )
    module_name, _, attr = spec.partition(":")
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise _UsageError(f"cannot import module {module_name!r}: {exc}") from None
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise _UsageError(f"{module_name!r} has no attribute {attr!r}") from None
    if not callable(obj):
        raise _UsageError(f"{spec} is not callable (it is a {type(obj).__name__})")
    return obj


def _cmd_check(ns: argparse.Namespace) -> int:
    from leakscope.verdict import check

    for name in ("runs", "warmup"):
        value = getattr(ns, name)
        if value is not None and value < (1 if name == "runs" else 0):
            raise _UsageError(f"--{name} must be {'positive' if name == 'runs' else '>= 0'}")
    func = _resolve(ns.spec)
    try:
        report = check(func, runs=ns.runs, warmup=ns.warmup)
    except (TypeError, ValueError) as exc:
        raise _UsageError(f"{ns.spec}: {exc}") from None
    if ns.json:
        _print_json(report.to_dict())
    else:
        print(report)
    if report.error is not None:
        return EXIT_USAGE
    return EXIT_LEAK if report.leaked else EXIT_OK


# -- diff / show ----------------------------------------------------------------------------


def _load(path: str) -> Snapshot:
    try:
        return Snapshot.load(path)
    except FileNotFoundError:
        raise _UsageError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise _UsageError(f"{path} is a directory, not a snapshot file") from None
    except OSError as exc:
        raise _UsageError(f"cannot read {path}: {exc.strerror or exc}") from None


def _cmd_diff(ns: argparse.Namespace) -> int:
    growth = _load(ns.after) - _load(ns.before)
    if ns.json:
        _print_json(growth.to_dict())
    else:
        print(growth.format(limit=ns.limit))
    return EXIT_OK


def _cmd_show(ns: argparse.Namespace) -> int:
    snap = _load(ns.path)
    if ns.json:
        _print_json(snap.to_dict())
    else:
        print(snap)
    return EXIT_OK


# -- report ---------------------------------------------------------------------------------

_EXIT_FILE = re.compile(r"^exit-(\d+)\.json$")
_WORKER_FILE = re.compile(r"^worker-(\d+)\.json$")


def _worker_state(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _aggregate(directory: str) -> dict[str, Any]:
    root = Path(directory)
    if not root.exists():
        raise _UsageError(f"no such directory: {directory}")
    if not root.is_dir():
        raise _UsageError(f"{directory} is not a directory")
    workers: dict[int, dict[str, Any]] = {}
    skipped: list[str] = []
    for path in sorted(root.iterdir()):
        exit_match = _EXIT_FILE.match(path.name)
        worker_match = _WORKER_FILE.match(path.name)
        if exit_match:
            pid = int(exit_match.group(1))
            try:
                snap = Snapshot.load(path)
            except (SnapshotError, OSError) as exc:
                skipped.append(f"{path.name}: {exc}")
                continue
            entry = workers.setdefault(pid, {"pid": pid})
            entry.update(
                exit={
                    "time": snap.time,
                    "objects": snap.objects,
                    "blocks": snap.blocks,
                    "rss": snap.rss,
                    "top": [[name, count] for name, count in snap.top(10)],
                }
            )
        elif worker_match:
            pid = int(worker_match.group(1))
            state = _worker_state(path)
            if state is None:
                skipped.append(f"{path.name}: not a readable worker state")
                continue
            growth = state.get("growth") if isinstance(state.get("growth"), dict) else {}
            workers.setdefault(pid, {"pid": pid})["state"] = {
                "requests": state.get("requests"),
                "rss": state.get("rss"),
                "objects": state.get("objects"),
                "blocks": state.get("blocks"),
                "growth": growth,
                "leaking_routes": [
                    r.get("route")
                    for r in state.get("routes", [])
                    if isinstance(r, dict) and r.get("leaking")
                ],
            }
    if not workers:
        detail = f" ({len(skipped)} unreadable)" if skipped else ""
        raise _UsageError(
            f"no leakscope snapshots in {directory}{detail}: expected exit-<pid>.json "
            "or worker-<pid>.json files"
        )
    total: dict[str, Any] = {"workers": len(workers), "objects": 0, "blocks": 0, "rss": 0}
    types: dict[str, int] = {}
    for entry in workers.values():
        source = entry.get("exit") or entry.get("state") or {}
        for key in ("objects", "blocks", "rss"):
            value = source.get(key)
            if isinstance(value, int) and total[key] is not None:
                total[key] += value
        for name, count in (entry.get("exit") or {}).get("top", []):
            types[name] = types.get(name, 0) + count
    grown: dict[str, int] = {"objects": 0, "blocks": 0, "rss": 0}
    for entry in workers.values():
        growth = (entry.get("state") or {}).get("growth") or {}
        for key in grown:
            value = growth.get(key)
            if isinstance(value, int):
                grown[key] += value
    total["growth"] = grown
    total["top"] = sorted(types.items(), key=lambda item: (-item[1], item[0]))[:10]
    leaking = sorted(
        {r for e in workers.values() for r in (e.get("state") or {}).get("leaking_routes", [])}
    )
    return {
        "format": "leakscope.workers",
        "directory": str(root),
        "workers": [workers[pid] for pid in sorted(workers)],
        "total": total,
        "leaking_routes": leaking,
        "skipped": skipped,
    }


def _count(value: object) -> str:
    return f"{value:,}" if isinstance(value, int) else "n/a"


def _format_aggregate(data: dict[str, Any]) -> str:
    lines = [f"{len(data['workers'])} worker(s) in {data['directory']}", ""]
    lines.append(f"{'pid':>8}  {'objects':>12}  {'blocks':>12}  {'RSS':>10}  source")
    for entry in data["workers"]:
        source = entry.get("exit") or entry.get("state") or {}
        kind = "exit snapshot" if "exit" in entry else "live state"
        objects = source.get("objects")
        blocks = source.get("blocks")
        lines.append(
            f"{entry['pid']:>8}  {_count(objects):>12}  {_count(blocks):>12}  "
            f"{format_bytes(source.get('rss')):>10}  {kind}"
        )
        growth = (entry.get("state") or {}).get("growth") or {}
        if growth.get("objects") is not None or growth.get("rss") is not None:
            lines.append(
                f"{'':>8}  growth since start: {growth.get('objects') or 0:+,} objects, "
                f"RSS {format_bytes_delta(growth.get('rss'))}"
            )
    total = data["total"]
    lines.append(
        f"{'total':>8}  {total['objects']:>12,}  {total['blocks']:>12,}  "
        f"{format_bytes(total['rss']):>10}"
    )
    grown = total["growth"]
    if any(grown.values()):
        lines.append(
            f"{'':>8}  growth the workers reported since they started: {grown['objects']:+,} "
            f"objects, {grown['blocks']:+,} blocks, RSS {format_bytes_delta(grown['rss'])}"
        )
    if total["top"]:
        lines += ["", "Most numerous types over all exit snapshots:"]
        width = max(len(name) for name, _ in total["top"])
        lines += [f"  {name:<{width}}  {count:>12,}" for name, count in total["top"]]
    if data["leaking_routes"]:
        lines += ["", "Routes flagged as leaking: " + ", ".join(data["leaking_routes"])]
    lines += [f"skipped {s}" for s in data["skipped"]]
    return "\n".join(lines)


def _cmd_report(ns: argparse.Namespace) -> int:
    data = _aggregate(ns.directory)
    if ns.json:
        _print_json(data)
    else:
        print(_format_aggregate(data))
    return EXIT_LEAK if data["leaking_routes"] else EXIT_OK


_COMMANDS = {
    "run": _cmd_run,
    "check": _cmd_check,
    "diff": _cmd_diff,
    "show": _cmd_show,
    "report": _cmd_report,
}


_RUN_VALUE_OPTIONS = ("--interval", "--html")


def _split_run(args: list[str]) -> tuple[list[str], str | None, list[str] | None]:
    """Split ``run ...`` into leakscope's options, the module and the program's argv.

    Everything from the script (or ``-m MODULE``) on belongs to the program, even
    when it looks like one of leakscope's options (``run app.py --json -h``).
    """
    i = 1
    while i < len(args):
        token = args[i]
        if token == "--":
            return args[:i], None, args[i + 1 :]
        if token in _RUN_VALUE_OPTIONS:
            i += 2
        elif token == "-m":
            module = args[i + 1] if i + 1 < len(args) else None
            return args[:i], module, args[i + 2 :] if module is not None else None
        elif token.startswith("-m") and not token.startswith("--"):
            return args[:i], token[2:], args[i + 1 :]
        elif token.startswith("-"):
            i += 1  # one of ours (--json, -h, --interval=S) or an error argparse reports
        else:
            return args[:i], None, args[i:]
    return args, None, None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    module: str | None = None
    program: list[str] | None = None
    if args and args[0] == "run":
        args, module, program = _split_run(args)
    parser = _parser()
    ns = parser.parse_args(args)
    if ns.command is None:
        parser.print_help(sys.stdout)
        return EXIT_OK
    if ns.command == "run" and (module is not None or program is not None):
        ns.module, ns.args = module, program or []
    try:
        return int(ns.handler(ns)) if "handler" in ns else _COMMANDS[ns.command](ns)
    except (_UsageError, SnapshotError, LeakscopeError) as exc:
        print(f"leakscope {ns.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"leakscope {ns.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader went away (leakscope ... | head)
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return EXIT_LEAK
