"""``leakscope attach PID``: diagnose a running CPython process without restarting it.

The machinery lives in :mod:`leakscope.attach` (the injector in this process, the agent in
the target's); this module is the command's entry in the CLI.
"""

from __future__ import annotations

from leakscope.attach.command import add_arguments, run

__all__ = ["HELP", "add_arguments", "run"]

HELP = "diagnose a running CPython process without restarting it"
