"""Clean: functools caches over a bounded domain, partials made and dropped."""

import functools
import itertools

EXPECT = "clean"

_ids = itertools.count()


@functools.cache
def square(n):
    return [n * n]


def run():
    n = next(_ids)
    square(n % 40)
    functools.partial(max, n)(1, 2)
    functools.reduce(lambda a, b: a + b, range(10))
