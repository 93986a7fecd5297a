"""Clean: reference cycles per call, left to the (enabled) cyclic collector."""

EXPECT = "clean"


class Node:
    def __init__(self):
        self.peer = None


def run():
    a, b = Node(), Node()
    a.peer, b.peer = b, a
    c = []
    c.append(c)
