"""Leak: functools.lru_cache(maxsize=None) on a function fed a new key per call."""

import functools
import itertools

EXPECT = "leak"
TYPES = ("leak_lru_unbounded.Parsed",)
HOLDER = "parse"
HINT = "an unbounded cache"

_ids = itertools.count()


class Parsed:
    def __init__(self, n):
        self.n = n


@functools.cache
def parse(n):
    return Parsed(n)


def run():
    parse(next(_ids))
