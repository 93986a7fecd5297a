"""Leak: a mutable default argument accumulates every call's items."""

EXPECT = "leak"
TYPES = ("leak_mutable_default.Item", "list")
HOLDER = "__defaults__"


class Item:
    def __init__(self, n):
        self.n = n


def collect(item, seen=[]):  # noqa: B006 - the leak under test
    seen.append(item)
    return len(seen)


def run():
    collect(Item(1))
