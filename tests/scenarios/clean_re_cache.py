"""Clean: the re module's cache fills with 300 distinct patterns, then stays."""

import itertools
import re

EXPECT = "clean"

_ids = itertools.count()


def run():
    n = next(_ids) % 300
    re.match(f"item{n}-[a-z]+", f"item{n}-abc")
