"""Leak: objects in a cycle whose __del__ resurrects them into a module list."""

EXPECT = "leak"
TYPES = ("leak_del_resurrect.Resource",)
HOLDER = "_GRAVEYARD"

_GRAVEYARD = []


class Resource:
    def __init__(self):
        self.me = self  # a reference cycle: freed only by the collector

    def __del__(self):
        _GRAVEYARD.append(self)  # resurrection: the object lives on


def run():
    Resource()
