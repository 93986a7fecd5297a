"""Clean: lru_cache(maxsize=5000) over ever-new keys, still filling toward its bound.

A check sees steady growth for its first ~1,000 calls; the cache declares its bound
(cache_info().maxsize), so this is "filling a bounded cache", not a leak.
"""

import functools
import itertools

EXPECT = "clean"
NOTE = "filling a bounded cache"

_ids = itertools.count()


class Parsed:
    def __init__(self, n):
        self.n = n
        self.fields = [n, str(n)]


@functools.lru_cache(maxsize=5000)
def parse(n):
    return Parsed(n)


def run():
    parse(next(_ids))
