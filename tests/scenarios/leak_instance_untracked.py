"""Leak: an untracked dict (str keys, bytes values) held by a module-level instance.

The collector does not track a dict of strings and bytes, and the container scan
reads module globals and class attributes only: the holder is STORE.data.
"""

import itertools

EXPECT = "leak"
TYPES = ()
HOLDER = "STORE.data"
HINT = "an unbounded cache"

_ids = itertools.count()


class Store:
    def __init__(self):
        self.data = {}


STORE = Store()


def run():
    STORE.data[f"k{next(_ids)}"] = b"x" * 200
