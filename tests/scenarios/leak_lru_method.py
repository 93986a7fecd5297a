"""Leak: functools.lru_cache on a method keeps every instance (self) alive."""

import functools

EXPECT = "leak"
TYPES = ("leak_lru_method.Report",)
HOLDER = "total"


class Report:
    def __init__(self, values):
        self.values = values

    @functools.cache  # noqa: B019 - the leak under test
    def total(self):
        return sum(self.values)


def run():
    Report([1, 2, 3]).total()
