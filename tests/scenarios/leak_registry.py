"""Leak: every instance registers itself in a module-level list and is never removed."""

EXPECT = "leak"
TYPES = ("leak_registry.Session",)
HOLDER = "_SESSIONS"

_SESSIONS = []


class Session:
    def __init__(self, user):
        self.user = user
        self.data = {"user": user}
        _SESSIONS.append(self)


def run():
    Session("alice")
