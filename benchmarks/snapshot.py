"""Speed and memory of ``leakscope.snapshot()`` against the floor, objgraph and pympler.

Builds a heap of about 1,000,000 gc-tracked objects of ~50 types and prints the median
time of:

- the floor: ``gc.collect()`` + ``collections.Counter(map(type, gc.get_objects()))``;
- ``leakscope.snapshot()``;
- ``objgraph.typestats()`` after ``gc.collect()``;
- pympler's ``summary.summarize(muppy.get_objects())``, measured on a 300,000-object heap
  (at 1M objects it takes minutes), against ``leakscope.snapshot()`` on the same heap.

Targets: snapshot <= 1.3x the floor, >= 1.5x faster than objgraph, peak extra memory
of one snapshot under 50 MB at 1M objects.

    python benchmarks/snapshot.py [--quick]
"""

from __future__ import annotations

import argparse
import collections
import gc
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import leakscope

_CLASSES = [type(f"Kind{i}", (), {}) for i in range(45)]


def build_heap(n_objects: int) -> list[Any]:
    """About ``n_objects`` gc-tracked objects of ~50 types, kept alive by the returned list.

    Instances of 45 classes with attributes, lists, dicts, tuples and sets: the shape of
    an application's heap (records, their containers, small collections).
    """
    heap: list[Any] = []
    i = 0
    while len(heap) < n_objects:
        obj = _CLASSES[i % len(_CLASSES)]()
        obj.value = i
        obj.name = str(i)
        kind = i % 4
        if kind == 0:
            extra: Any = [i, obj.name]
        elif kind == 1:
            extra = {"k": [i]}
            heap.append(extra["k"])
        elif kind == 2:
            extra = (i, [i])
            heap.append(extra[1])
        else:
            extra = {(i, obj)}
        heap.append(obj)
        heap.append(extra)
        i += 1
    return heap


def median_time(func: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def floor() -> object:
    gc.collect()
    return collections.Counter(map(type, gc.get_objects()))


def peak_extra_memory(func: Callable[[], object]) -> int:
    """Peak bytes allocated while ``func`` runs (tracemalloc), beyond what was there before."""
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        result = func()
        peak = tracemalloc.get_traced_memory()[1] - base
        del result
    finally:
        tracemalloc.stop()
    return peak


def _row(name: str, ours: float, other: str, theirs: float | None, note: str) -> dict[str, Any]:
    return {
        "benchmark": name,
        "leakscope_s": ours,
        "other": other,
        "other_s": theirs,
        "ratio": None if theirs is None else theirs / ours,
        "note": note,
    }


def run(quick: bool = False) -> list[dict[str, Any]]:
    """Measure; return rows of ``{benchmark, leakscope_s, other, other_s, ratio, note}``.

    ``ratio`` is the other tool's time over leakscope's: above 1 means leakscope is faster.
    """
    size = 180_000 if quick else 900_000  # about 1M tracked objects with the interpreter's own
    repeat = 3 if quick else 5
    rows = []
    heap = build_heap(size)
    tracked = len(gc.get_objects())
    t_floor = median_time(floor, repeat)
    t_snap = median_time(leakscope.snapshot, repeat)
    rows.append(
        _row(
            f"snapshot, {tracked:,} tracked objects",
            t_snap,
            "floor: gc.collect + Counter(map(type, gc.get_objects()))",
            t_floor,
            f"snapshot / floor = {t_snap / t_floor:.2f}x (target <= 1.3x)",
        )
    )
    try:
        import objgraph
    except ImportError:
        rows.append(
            _row(
                "snapshot vs objgraph", t_snap, "objgraph.typestats", None, "objgraph not installed"
            )
        )
    else:
        t_objgraph = median_time(lambda: (gc.collect(), objgraph.typestats()), repeat)
        rows.append(
            _row(
                f"snapshot, {tracked:,} tracked objects",
                t_snap,
                "gc.collect + objgraph.typestats()",
                t_objgraph,
                "target: objgraph / snapshot >= 1.5x; the most any census that collects "
                f"first can reach here is objgraph / floor = {t_objgraph / t_floor:.2f}x",
            )
        )
    peak = peak_extra_memory(leakscope.snapshot)
    rows.append(
        _row(
            f"snapshot peak extra memory, {tracked:,} objects",
            t_snap,
            "",
            None,
            f"{peak / 2**20:.1f} MiB (target < 50 MiB)",
        )
    )
    del heap
    gc.collect()

    try:
        from pympler import muppy, summary
    except ImportError:
        rows.append(
            _row("snapshot vs pympler", t_snap, "pympler summarize", None, "pympler not installed")
        )
        return rows
    small = build_heap(60_000 if quick else 300_000)
    small_tracked = len(gc.get_objects())
    t_small = median_time(leakscope.snapshot, repeat)
    t_pympler = median_time(lambda: summary.summarize(muppy.get_objects()), 1)
    rows.append(
        _row(
            f"snapshot, {small_tracked:,} tracked objects",
            t_small,
            "pympler summary.summarize(muppy.get_objects())",
            t_pympler,
            "pympler measured at ~300k objects: at 1M it takes minutes",
        )
    )
    del small
    return rows


def format_rows(rows: list[dict[str, Any]]) -> str:
    lines = []
    for row in rows:
        other = ""
        if row["other_s"] is not None:
            other = f"  vs {row['other']}: {row['other_s']:.3f} s (ratio {row['ratio']:.2f}x)"
        lines.append(f"{row['benchmark']}: leakscope {row['leakscope_s']:.3f} s{other}")
        if row["note"]:
            lines.append(f"    {row['note']}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller heap and fewer repeats")
    args = parser.parse_args()
    print(format_rows(run(quick=args.quick)))


if __name__ == "__main__":
    main()
