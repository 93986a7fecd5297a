"""Clean: a deque(maxlen=100000) of recent events, still filling toward its maxlen."""

import collections
import itertools

EXPECT = "clean"
NOTE = "filling a bounded cache"

_ids = itertools.count()
_RECENT = collections.deque(maxlen=100_000)


class Event:
    def __init__(self, n):
        self.n = n


def run():
    _RECENT.append(Event(next(_ids)))
