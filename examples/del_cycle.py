"""A reference cycle with a ``__del__`` method, found with ``leakscope.find_cycles``.

    python examples/del_cycle.py

A ``Connection`` and its ``Cursor`` point at each other.  When the last outside
reference goes, reference counting cannot free them: only the cyclic collector can,
and until it runs they (and everything they hold) stay in memory.  Since Python 3.4
(PEP 442) a cycle with ``__del__`` is collected, but its finalizers run in an order
nobody chose.  ``find_cycles`` runs the code, then reports the garbage it left.
"""

from __future__ import annotations

import leakscope


class Connection:
    def __init__(self) -> None:
        self.cursor = Cursor(self)  # Connection -> Cursor

    def __del__(self) -> None:  # a finalizer on a cycle member
        pass


class Cursor:
    def __init__(self, connection: Connection) -> None:
        self.connection = connection  # Cursor -> Connection: the cycle


def open_and_forget() -> None:
    for _ in range(3):
        Connection()  # dropped at once, but only the collector can free it


def main() -> int:
    report = leakscope.find_cycles(open_and_forget)
    print(report)  # each kind of cycle once, with how often it was seen
    print()
    print("Cycles found:", report.total, "| with __del__:", report.has_finalizers)
    print("Fix: break the cycle (a weakref.ref from Cursor back to Connection) or close() it.")
    return 0 if report.total >= 3 and report.has_finalizers else 1


if __name__ == "__main__":
    raise SystemExit(main())
