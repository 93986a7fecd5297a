"""Leak: the service runs with gc disabled and every call makes a reference cycle."""

import gc

EXPECT = "leak"
TYPES = ("leak_gc_disabled.Node",)
HOLDER = "cycles"

gc.disable()


class Node:
    def __init__(self):
        self.parent = None
        self.children = []


def run():
    parent, child = Node(), Node()
    parent.children.append(child)
    child.parent = parent
