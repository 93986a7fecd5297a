"""``leakscope check module:function``: the leak verdict on a zero-argument function."""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
from typing import Any

from leakscope.cli.common import EPILOG, EXIT_LEAK, EXIT_OK, EXIT_USAGE, UsageError, print_json
from leakscope.engine.check import check

__all__ = ["HELP", "add_arguments", "resolve", "run"]

HELP = "decide whether a zero-argument function leaks"

_SPEC = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``check``'s arguments (and its description) to ``parser``."""
    parser.description = (
        "Call module:function repeatedly (warm-up, then measured runs) and say whether "
        "it leaks, what grows and what holds it."
    )
    parser.epilog = EPILOG
    parser.add_argument("spec", metavar="module:function", help="e.g. app.cache:render")
    parser.add_argument("--runs", type=int, metavar="N", help="measured runs (default adaptive)")
    parser.add_argument("--warmup", type=int, metavar="N", help="warm-up calls (default adaptive)")
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
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise UsageError(f"{module_name!r} has no attribute {attr!r}") from None
    if not callable(obj):
        raise UsageError(f"{spec} is not callable (it is a {type(obj).__name__})")
    return obj


def run(ns: argparse.Namespace) -> int:
    """Check the function; exit code 1 for a leak, 2 if it raised, 0 if clean."""
    for name in ("runs", "warmup"):
        value = getattr(ns, name)
        if value is not None and value < (1 if name == "runs" else 0):
            raise UsageError(f"--{name} must be {'positive' if name == 'runs' else '>= 0'}")
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
