"""Leak: a dict of strings only (the collector does not track it) that only grows."""

import itertools

EXPECT = "leak"
TYPES = ("str",)
HOLDER = "_NAMES"

_NAMES = {}
_ids = itertools.count()


def run():
    n = next(_ids)
    _NAMES[f"user-{n}"] = f"User number {n}"
