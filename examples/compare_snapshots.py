"""Comparing two saved snapshots: save, load, diff (also ``leakscope diff A.json B.json``).

    python examples/compare_snapshots.py [DIR]

A snapshot is a census of the live heap (objects per type, lengths of module and
class containers, allocated blocks, RSS).  Save one before and one after some work,
possibly in different runs or on different machines, and compare them later.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import leakscope


class Order:
    def __init__(self, number: int) -> None:
        self.number = number


_OPEN_ORDERS: list[Order] = []


def take_orders(n: int) -> None:
    _OPEN_ORDERS.extend(Order(i) for i in range(n))  # kept: never closed


def main(argv: list[str]) -> int:
    directory = Path(argv[0]) if argv else Path(tempfile.mkdtemp())
    before_path, after_path = directory / "before.json", directory / "after.json"

    leakscope.snapshot().save(before_path)
    take_orders(1_000)
    leakscope.snapshot().save(after_path)
    print(f"Saved {before_path} and {after_path}")

    before = leakscope.Snapshot.load(before_path)  # later, anywhere: load and compare
    after = leakscope.Snapshot.load(after_path)
    growth = after - before
    print(growth.format(limit=5))
    print()
    print("Orders kept:", growth.types_changed("__main__.Order"))
    print(f"Same diff from the shell: leakscope diff {before_path} {after_path}")
    return 0 if growth.types_changed("__main__.Order") == 1_000 else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
