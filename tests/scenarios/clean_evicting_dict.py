"""Clean: a hand-written cache that evicts its oldest entry past 200 entries."""

import itertools
from collections import OrderedDict

EXPECT = "clean"

_CACHE = OrderedDict()
_ids = itertools.count()


class Page:
    def __init__(self, n):
        self.body = f"page {n}"


def run():
    n = next(_ids)
    _CACHE[n] = Page(n)
    if len(_CACHE) > 200:
        _CACHE.popitem(last=False)
