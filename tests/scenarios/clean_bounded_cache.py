"""Clean: lru_cache(maxsize=64) over ever-new keys fills over ~64 calls, then evicts."""

import functools
import itertools

EXPECT = "clean"

_ids = itertools.count()


class Profile:
    def __init__(self, n):
        self.n = n


@functools.lru_cache(maxsize=64)
def load(n):
    return Profile(n)


def run():
    load(next(_ids))
