"""``leakscope diff A.json B.json``: the growth between two saved snapshots."""

from __future__ import annotations

import argparse

from leakscope.cli.common import EPILOG, EXIT_OK, UsageError, load_snapshot, print_json

__all__ = ["HELP", "add_arguments", "run"]

HELP = "what changed between two saved snapshots"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``diff``'s arguments (and its description) to ``parser``."""
    parser.description = (
        "Show the growth from snapshot A to snapshot B (files saved by Snapshot.save)."
    )
    parser.epilog = EPILOG
    parser.add_argument("before", metavar="A.json")
    parser.add_argument("after", metavar="B.json")
    parser.add_argument(
        "--limit",
        type=int,
        default=20,
        metavar="N",
        help="rows per table, and per list in --json (default 20)",
    )
    parser.add_argument("--json", action="store_true", help="print the growth as JSON")


def run(ns: argparse.Namespace) -> int:
    """Print the growth from ``ns.before`` to ``ns.after``; exit code 0."""
    if ns.limit < 0:
        raise UsageError(f"--limit must be >= 0, not {ns.limit}")
    growth = load_snapshot(ns.after) - load_snapshot(ns.before)
    if ns.json:
        print_json(growth.to_dict(limit=ns.limit))
    else:
        print(growth.format(limit=ns.limit))
    return EXIT_OK
