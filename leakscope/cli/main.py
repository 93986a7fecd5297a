"""The ``leakscope`` command line (also ``python -m leakscope``): :func:`main`.

Commands, one module each under :mod:`leakscope.cli`: ``run`` (a program under
observation), ``check`` (the leak verdict on a zero-argument function), ``diff`` and
``show`` (saved snapshots) and ``report`` (a directory of per-worker snapshots).
``--json`` on each prints one JSON document (for ``run``, on the last line of standard
output, after the program's own output).

A command module has ``add_arguments(parser)`` (its options and description) and
``run(ns) -> int`` (the exit code); it raises :class:`~leakscope.cli.common.UsageError`
(or a :class:`~leakscope.errors.LeakscopeError`) for bad input, which :func:`main`
prints as one line on stderr with exit code 2.

Exit codes: 0 success / clean, 1 a leak was found (or the program run failed),
2 bad usage or input, 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import NamedTuple

from leakscope import __version__
from leakscope.cli import attach, check, diff, report, run, show
from leakscope.cli.common import (
    EPILOG,
    EXIT_INTERRUPTED,
    EXIT_LEAK,
    EXIT_OK,
    EXIT_USAGE,
    UsageError,
)
from leakscope.errors import LeakscopeError

__all__ = ["COMMANDS", "EXIT_INTERRUPTED", "EXIT_LEAK", "EXIT_OK", "EXIT_USAGE", "main"]


class Command(NamedTuple):
    """One ``leakscope`` command: its name, one-line help and its module's two functions."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


COMMANDS: tuple[Command, ...] = (
    Command("run", run.HELP, run.add_arguments, run.run),
    Command("check", check.HELP, check.add_arguments, check.run),
    Command("diff", diff.HELP, diff.add_arguments, diff.run),
    Command("show", show.HELP, show.add_arguments, show.run),
    Command("report", report.HELP, report.add_arguments, report.run),
    Command("attach", attach.HELP, attach.add_arguments, attach.run),
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="leakscope",
        description=(
            "Find Python memory leaks: what leaks, where it was allocated and what keeps it alive."
        ),
        epilog=EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"leakscope {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.add_arguments(sub.add_parser(command.name, help=command.help, epilog=EPILOG))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit code.

    >>> main(["show", "no-such-snapshot.json"])  # prints the one-line error on stderr
    2
    """
    args = list(sys.argv[1:] if argv is None else argv)
    module: str | None = None
    program: list[str] | None = None
    if args and args[0] == "run":
        args, module, program = run.split_argv(args)
    parser = _parser()
    ns = parser.parse_args(args)
    if ns.command is None:
        parser.print_help(sys.stdout)
        return EXIT_OK
    if ns.command == "run" and (module is not None or program is not None):
        ns.module, ns.args = module, program or []
    handler = next(c.run for c in COMMANDS if c.name == ns.command)
    try:
        return handler(ns)
    except (UsageError, LeakscopeError) as exc:
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
