"""Leak: results cached in a module dict under ever-new keys, never evicted."""

import itertools

EXPECT = "leak"
TYPES = ("leak_module_cache.Result",)
HOLDER = "_RESULTS"

_RESULTS = {}
_ids = itertools.count()


class Result:
    __slots__ = ("rows",)

    def __init__(self, rows):
        self.rows = rows


def run():
    key = ("query", next(_ids))
    _RESULTS[key] = Result([1, 2, 3])
