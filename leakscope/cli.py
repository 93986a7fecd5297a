"""The ``leakscope`` command line (also ``python -m leakscope``).

Exit codes: 0 success, 1 a leak was found, 2 bad usage or input.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from leakscope import __version__

__all__ = ["main"]

EXIT_OK = 0
EXIT_LEAK = 1
EXIT_USAGE = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="leakscope",
        description=(
            "Find Python memory leaks: what leaks, where it was allocated and what keeps it alive."
        ),
        epilog="Exit codes: 0 success, 1 a leak was found, 2 bad usage or input.",
    )
    parser.add_argument("--version", action="version", version=f"leakscope {__version__}")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    parser = _parser()
    parser.parse_args(argv)
    parser.print_help(sys.stdout)
    return EXIT_OK
