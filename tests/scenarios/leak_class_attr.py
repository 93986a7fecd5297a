"""Leak: a class attribute keeps every connection ever opened."""

EXPECT = "leak"
TYPES = ("leak_class_attr.Connection",)
HOLDER = "opened"


class Connection:
    opened = []  # noqa: RUF012 - the leak under test

    def __init__(self, dsn):
        self.dsn = dsn
        Connection.opened.append(self)

    def close(self):
        pass


def run():
    Connection("db://x").close()
