"""Leak: a class made per call and kept by a library-style registry (marshmallow's).

``class_registry.register()`` in marshmallow keeps every Schema class ever made: the
registry is the holder to fix, not the class's own attributes.
"""

import itertools

EXPECT = "leak"
TYPES = ("type",)
HOLDER = "_registry"
HINT = "a class created on every call"

_ids = itertools.count()
_registry = {}  # like marshmallow.class_registry._registry


class Field:
    pass


class Schema:
    pass


def register(name, cls):
    _registry.setdefault(name, []).append(cls)


def run():
    n = next(_ids)
    cls = type(f"OrderSchema{n}", (Schema,), {"fields": {"id": Field()}})
    register(f"OrderSchema{n}", cls)
