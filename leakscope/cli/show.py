"""``leakscope show SNAP.json``: totals and the most numerous types of a saved snapshot."""

from __future__ import annotations

import argparse

from leakscope.cli.common import EPILOG, EXIT_OK, load_snapshot, print_json

__all__ = ["HELP", "add_arguments", "run"]

HELP = "summarise a saved snapshot"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``show``'s arguments (and its description) to ``parser``."""
    parser.description = (
        "Show a snapshot saved by Snapshot.save: totals and the most numerous types."
    )
    parser.epilog = EPILOG
    parser.add_argument("path", metavar="SNAP.json")
    parser.add_argument("--json", action="store_true", help="print the snapshot as JSON")


def run(ns: argparse.Namespace) -> int:
    """Print the snapshot at ``ns.path``; exit code 0."""
    snap = load_snapshot(ns.path)
    if ns.json:
        print_json(snap.to_dict())
    else:
        print(snap)
    return EXIT_OK
