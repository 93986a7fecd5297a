"""Leak: two leaks at once, a dict cache of ParsedOrder objects and Handler listeners.

Each culprit must come with its own holder and hint: the cache for ParsedOrder, the
EventBus's listeners (bound methods) for Handler.
"""

import itertools

EXPECT = "leak"
TYPES = ("leak_two_at_once.ParsedOrder", "leak_two_at_once.Handler")
HOLDER = "_ORDERS"
# Each culprit: its own holder (first) and hint.
EACH = {
    "leak_two_at_once.ParsedOrder": ("module leak_two_at_once: _ORDERS", "an unbounded cache"),
    "leak_two_at_once.Handler": ("EventBus: attribute listeners", "callbacks/handlers"),
}

_ids = itertools.count()
_ORDERS = {}


class ParsedOrder:
    def __init__(self, n):
        self.n = n
        self.lines = [n]


class EventBus:
    listeners = []  # noqa: RUF012 - the registry under test

    @classmethod
    def subscribe(cls, callback):
        cls.listeners.append(callback)


class Handler:
    def __init__(self, n):
        self.n = n

    def on_event(self, event):
        return self.n


def run():
    n = next(_ids)
    _ORDERS[n] = ParsedOrder(n)
    EventBus.subscribe(Handler(n).on_event)
