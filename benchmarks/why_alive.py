"""why_alive on a ~1M-object heap versus objgraph.find_backref_chain.

    python benchmarks/why_alive.py [--quick]

The heap: a module ``bench_app`` whose ``registry`` holds 2,000 lists of 500
records (1M objects), and whose ``groups`` dict holds 20 wide lists of 100
wrappers, each wrapper referring to the target.  Every path from the target to
the module goes through one of 2,000 referrers, so a search that scans the heap
once per visited object (objgraph calls ``gc.get_referrers`` per node) pays that
scan 2,000 times; leakscope builds its reverse index once per query.

objgraph would take minutes here, so its run is capped (``OBJGRAPH_CAP_S``): the
reported time is a lower bound and the ratio is "at least".
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
import types
import weakref
from typing import Any

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent.parent))

from leakscope import retention

OBJGRAPH_CAP_S = 20.0
OBJGRAPH_CAP_QUICK_S = 10.0


class Record:
    def __init__(self, i: int) -> None:
        self.i = i


class Wrapper:
    def __init__(self, target: object) -> None:
        self.target = target


class Target:
    pass


def build_heap(n_lists: int, per_list: int, wrappers: int) -> weakref.ref[Target]:
    mod = types.ModuleType("bench_app")
    sys.modules["bench_app"] = mod
    mod.registry = {f"bucket-{b}": [Record(i) for i in range(per_list)] for b in range(n_lists)}
    target = Target()
    width = 100
    mod.groups = {
        f"g{g}": [Wrapper(target) for _ in range(width)] for g in range(wrappers // width)
    }
    return weakref.ref(target)


class _TimeUp(Exception):
    pass


def time_objgraph(ref: weakref.ref[Target], cap: float) -> tuple[float, bool, int]:
    """Seconds objgraph took (or the cap), whether it finished, nodes visited."""
    import objgraph

    visited = 0
    start = time.perf_counter()

    def predicate(obj: Any) -> bool:
        nonlocal visited
        visited += 1
        if time.perf_counter() - start > cap:
            raise _TimeUp
        return objgraph.is_proper_module(obj)  # type: ignore[no-any-return]

    target = ref()
    try:
        chain = objgraph.find_backref_chain(target, predicate, max_depth=6)
        finished = len(chain) > 1
    except _TimeUp:
        finished = False
    finally:
        del target
    return time.perf_counter() - start, finished, visited


def time_leakscope(ref: weakref.ref[Target], runs: int) -> tuple[list[float], str]:
    times: list[float] = []
    text = ""
    for _ in range(runs):
        target = ref()
        t0 = time.perf_counter()
        result = retention.why_alive(target, max_paths=1)
        times.append(time.perf_counter() - t0)
        del target
        text = str(result.paths[0]) if result.paths else result.status
    return times, text


def run(quick: bool) -> list[dict[str, Any]]:
    n_lists, per_list, wrappers = (2000, 500, 2000)
    ref = build_heap(n_lists, per_list, wrappers)
    gc.collect()
    objects = len(gc.get_objects())
    retention.why_alive(Target())  # calibrate once, outside the timings
    times, path = time_leakscope(ref, 3 if quick else 5)
    ours = statistics.median(times)
    rows: list[dict[str, Any]] = []
    note = f"{objects:,} tracked objects; target behind {wrappers:,} referrers; path {path}"
    try:
        import objgraph  # noqa: F401
    except ImportError:
        rows.append(
            {
                "benchmark": "why_alive (1M heap, wide fan-in)",
                "leakscope_s": ours,
                "other": "objgraph.find_backref_chain",
                "other_s": None,
                "ratio": None,
                "note": note + "; objgraph not installed",
            }
        )
        return rows
    cap = OBJGRAPH_CAP_QUICK_S if quick else OBJGRAPH_CAP_S
    theirs, finished, visited = time_objgraph(ref, cap)
    if finished:
        other_note = f"objgraph finished after visiting {visited:,} objects"
    else:
        estimate = theirs / max(visited, 1) * wrappers
        other_note = (
            f"objgraph capped at {cap:.0f} s after visiting {visited:,} of >= {wrappers:,} "
            f"objects: its time and the ratio are lower bounds (at its pace, about "
            f"{estimate:.0f} s for the {wrappers:,} referrers alone)"
        )
    rows.append(
        {
            "benchmark": "why_alive (1M heap, wide fan-in)",
            "leakscope_s": ours,
            "other": "objgraph.find_backref_chain",
            "other_s": theirs,
            "ratio": theirs / ours,
            "note": f"{note}; {other_note}",
        }
    )
    del sys.modules["bench_app"]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs, shorter objgraph cap")
    args = parser.parse_args()
    for row in run(args.quick):
        other = "n/a" if row["other_s"] is None else f"{row['other_s']:.3f} s"
        ratio = "n/a" if row["ratio"] is None else f"{row['ratio']:.1f}x"
        print(f"{row['benchmark']}")
        print(f"  leakscope.why_alive (median): {row['leakscope_s']:.3f} s")
        print(f"  {row['other']}: {other}")
        print(f"  ratio: {ratio}")
        print(f"  {row['note']}")


if __name__ == "__main__":
    main()
