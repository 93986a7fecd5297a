"""``leakscope check module:function``: the leak verdict on a zero-argument function."""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
import traceback
from typing import Any

from leakscope.cli.common import EPILOG, EXIT_LEAK, EXIT_OK, EXIT_USAGE, UsageError, print_json
from leakscope.engine.check import check
from leakscope.engine.signals import CONFIRM

__all__ = ["HELP", "add_arguments", "resolve", "run"]

HELP = "decide whether a zero-argument function leaks"

_SPEC = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")

# The limits of --runs and --warmup, checked before anything is imported or called.  A
# leak needs CONFIRM growing runs in a row, so fewer runs could never find one; the calls
# double from run to run, so 16 runs are already some 500,000 calls.
MIN_RUNS, MAX_RUNS = CONFIRM, 16
MIN_WARMUP, MAX_WARMUP = 1, 100_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``check``'s arguments (and its description) to ``parser``."""
    parser.description = (
        "Call module:function repeatedly (warm-up, then measured runs) and say whether "
        "it leaks, what grows and what holds it."
    )
    parser.epilog = EPILOG
    parser.add_argument("spec", metavar="module:function", help="e.g. app.cache:render")
    parser.add_argument(
        "--runs",
        type=int,
        metavar="N",
        help=(
            f"measured runs, {MIN_RUNS} to {MAX_RUNS}: a leak must grow in {CONFIRM} runs "
            "in a row, and the calls double from run to run (default adaptive)"
        ),
    )
    parser.add_argument(
        "--warmup",
        type=int,
        metavar="N",
        help=f"warm-up calls, {MIN_WARMUP} to {MAX_WARMUP:,} (default adaptive)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def resolve(spec: str) -> Any:
    """The callable named by ``module:function`` (``app.cache:Renderer.render``).

    Raises :class:`UsageError` for a malformed spec, a module that cannot be imported
    or an attribute that is missing or not callable.

    >>> resolve("os.path:join").__name__
    'join'
    """
    if not _SPEC.match(spec):
        raise UsageError(
            f"bad function spec {spec!r}: expected module:function, e.g. app.cache:render"
        )
    module_name, _, attr = spec.partition(":")
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise UsageError(f"cannot import module {module_name!r}: {exc}") from None
    except SyntaxError as exc:  # str() names the file and line: "invalid syntax (m.py, line 3)"
        raise UsageError(f"cannot import module {module_name!r}: {exc}") from None
    except (Exception, SystemExit) as exc:
        raise UsageError(f"cannot import module {module_name!r}: {_raised(exc)}") from None
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise UsageError(f"{module_name!r} has no attribute {attr!r}") from None
    if not callable(obj):
        raise UsageError(f"{spec} is not callable (it is a {type(obj).__name__})")
    return obj


def _raised(exc: BaseException) -> str:
    """``it raised ValueError: boom (app.py:3)``: the exception and its innermost frame.

    importlib's own frames (``<frozen importlib._bootstrap>``) are left out.
    """
    frames = [
        f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith("<frozen")
    ]
    where = f" ({frames[-1].filename}:{frames[-1].lineno})" if frames else ""
    text = str(exc).strip().splitlines()
    message = f": {text[0]}" if text else ""
    return f"it raised {type(exc).__name__}{message}{where}"


def _check_limits(ns: argparse.Namespace) -> None:
    for name, low, high in (("runs", MIN_RUNS, MAX_RUNS), ("warmup", MIN_WARMUP, MAX_WARMUP)):
        value = getattr(ns, name)
        if value is not None and not low <= value <= high:
            raise UsageError(f"--{name} must be from {low} to {high:,}, not {value}")


def run(ns: argparse.Namespace) -> int:
    """Check the function; exit code 1 for a leak, 2 if it raised, 0 if clean."""
    _check_limits(ns)
    func = resolve(ns.spec)
    try:
        report = check(func, runs=ns.runs, warmup=ns.warmup)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"{ns.spec}: {exc}") from None
    if ns.json:
        print_json(report.to_dict())
    else:
        print(report)
    if report.error is not None:
        return EXIT_USAGE
    return EXIT_LEAK if report.leaked else EXIT_OK
