"""Clean: large temporary allocations, freed before returning."""

EXPECT = "clean"


def run():
    blob = bytearray(8 * 1024 * 1024)
    numbers = list(range(50_000))
    text = "x" * 1_000_000
    del blob, numbers, text
