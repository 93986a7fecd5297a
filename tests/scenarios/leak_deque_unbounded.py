"""Leak: a deque without maxlen that only grows."""

import collections

EXPECT = "leak"
TYPES = ("leak_deque_unbounded.Event",)
HOLDER = "_RECENT"
HINT = "a container that only grows"

_RECENT = collections.deque()


class Event:
    def __init__(self, kind):
        self.kind = kind


def run():
    _RECENT.append(Event("click"))
