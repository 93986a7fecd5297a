"""Clean: a deque(maxlen=100) of recent events."""

import collections

EXPECT = "clean"

_RECENT = collections.deque(maxlen=100)


class Event:
    def __init__(self, kind):
        self.kind = kind


def run():
    _RECENT.append(Event("click"))
