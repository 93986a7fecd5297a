"""What every ``leakscope`` command shares: exit codes, the usage error, JSON output.

The command modules (:mod:`~leakscope.cli.run`, :mod:`~leakscope.cli.check`, ...) import
this module and nothing above it; :mod:`leakscope.cli.main` assembles the parser and
turns :class:`UsageError` into one line on stderr and exit code 2.

>>> EXIT_OK, EXIT_LEAK, EXIT_USAGE, EXIT_INTERRUPTED
(0, 1, 2, 130)
"""

from __future__ import annotations

import json
from typing import Any

from leakscope._snapshot import Snapshot

__all__ = [
    "EPILOG",
    "EXIT_INTERRUPTED",
    "EXIT_LEAK",
    "EXIT_OK",
    "EXIT_USAGE",
    "UsageError",
    "load_snapshot",
    "print_json",
]

EXIT_OK = 0
EXIT_LEAK = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

EPILOG = (
    "Exit codes: 0 success (clean), 1 a leak was found (or the program run failed), "
    "2 bad usage or input, 130 interrupted (Ctrl-C)."
)


class UsageError(Exception):
    """Bad input: printed by :func:`leakscope.cli.main` as one line on stderr, exit code 2.

    >>> str(UsageError("no such file: a.json"))
    'no such file: a.json'
    """


def print_json(data: Any) -> None:
    """Print ``data`` as one JSON document on one line of standard output."""
    print(json.dumps(data))


def load_snapshot(path: str) -> Snapshot:
    """:meth:`Snapshot.load` with the file errors turned into :class:`UsageError`.

    A corrupt file raises :class:`~leakscope.errors.SnapshotError`, which the command
    line reports the same way.
    """
    try:
        return Snapshot.load(path)
    except FileNotFoundError:
        raise UsageError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise UsageError(f"{path} is a directory, not a snapshot file") from None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
