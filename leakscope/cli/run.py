"""``leakscope run [-m MODULE | script.py] ARGS...``: a program under observation."""

from __future__ import annotations

import argparse
import importlib
import math
import sys
from pathlib import Path

from leakscope.cli.common import (
    EPILOG,
    EXIT_INTERRUPTED,
    EXIT_LEAK,
    EXIT_OK,
    UsageError,
    print_json,
)
from leakscope.engine.program import format_run, run_program
from leakscope.errors import RunError

__all__ = ["HELP", "MIN_INTERVAL", "add_arguments", "run", "split_argv"]

HELP = "run a Python program under leakscope and report what grew"

MIN_INTERVAL = 0.01  # a snapshot costs milliseconds: more often would be mostly leakscope

_VALUE_OPTIONS = ("--interval", "--html")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``run``'s arguments (and its description) to ``parser``."""
    parser.description = (
        "Run a Python program in this interpreter (like 'python script.py' or "
        "'python -m module'), taking a snapshot at the start, then at intervals (--interval) "
        "and at exit; then print the growth over the run, the culprits with their "
        "holders and the reference cycles left at exit."
    )
    parser.epilog = EPILOG + " The program's own SystemExit code is passed through."
    parser.add_argument(
        "--interval",
        type=float,
        default=None,
        metavar="S",
        help=(
            f"seconds between snapshots, at least {MIN_INTERVAL} (default: adaptive, 0.1 s at "
            "first and doubling as the run goes on, so that short and long runs both show a "
            "trend)"
        ),
    )
    parser.add_argument("--html", metavar="OUT", help="also write an HTML report to OUT")
    parser.add_argument("--json", action="store_true", help="print the run data as JSON")
    parser.add_argument(
        "-m", dest="module", metavar="MODULE", help="run a library module as a script"
    )
    parser.add_argument("args", nargs=argparse.REMAINDER, help="script.py and its arguments")


def split_argv(args: list[str]) -> tuple[list[str], str | None, list[str] | None]:
    """Split ``run ...`` into leakscope's options, the module and the program's argv.

    Everything from the script (or ``-m MODULE``) on belongs to the program, even
    when it looks like one of leakscope's options (``run app.py --json -h``).

    >>> split_argv(["run", "--json", "app.py", "--json", "-h"])
    (['run', '--json'], None, ['app.py', '--json', '-h'])
    >>> split_argv(["run", "-m", "http.server", "8000"])
    (['run'], 'http.server', ['8000'])
    """
    i = 1
    while i < len(args):
        token = args[i]
        if token == "--":
            return args[:i], None, args[i + 1 :]
        if token in _VALUE_OPTIONS:
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


def _validate(ns: argparse.Namespace, args: list[str]) -> None:
    if ns.module is None and not args:
        raise UsageError("run needs a script (leakscope run script.py) or -m module")
    if ns.interval is not None and not (math.isfinite(ns.interval) and ns.interval >= MIN_INTERVAL):
        raise UsageError(
            f"--interval must be a number of seconds >= {MIN_INTERVAL}, not {ns.interval}"
        )
    if ns.html is not None:
        parent = Path(ns.html).resolve().parent
        if not parent.is_dir():
            raise UsageError(f"--html: no such directory: {parent}")


def _write_html(data: dict[str, object], out: str) -> None:
    # Imported by name: the HTML renderer is optional to everything else here.
    try:
        html = importlib.import_module("leakscope.report.html")
        written = html.write_run(data, out)
    except ImportError as exc:
        raise UsageError(f"--html: the HTML report is not available ({exc})") from None
    except OSError as exc:
        raise UsageError(f"--html: cannot write {out}: {exc.strerror or exc}") from None
    print(f"leakscope: HTML report written to {written}", file=sys.stderr)


def run(ns: argparse.Namespace) -> int:
    """Run the program; its exit code, else 1 for a leak, 130 if interrupted, 0 if clean."""
    args = list(ns.args or [])
    if args and args[0] == "--":
        args = args[1:]
    _validate(ns, args)
    target = ns.module if ns.module is not None else args.pop(0)
    progress = sys.stderr if sys.stderr.isatty() else None
    try:
        data = run_program(
            target, args, module=ns.module is not None, interval=ns.interval, progress=progress
        )
    except RunError as exc:
        raise UsageError(str(exc)) from None
    if ns.json:
        print_json(data)
    else:
        print("\n" + format_run(data))
    if ns.html is not None:
        _write_html(data, ns.html)
    if data["error"] == "interrupted":
        return EXIT_INTERRUPTED
    code = data["exit_code"]
    if code:
        return int(code)
    return EXIT_LEAK if data["verdict"] == "leak" else EXIT_OK
