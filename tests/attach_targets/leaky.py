"""A target for leakscope attach: ``leaky.py READY STOP [MODE]``.

MODE ``leak`` (the default) leaks ``Record`` objects into the module dict ``_CACHE``;
``clean`` keeps a bounded cache of 500 that is full before READY is written;
``heap=N`` holds N small lists and does not leak.  Every mode does other work too
(a list of strings made and freed per iteration) and prints ``tick N`` every 200
iterations.

READY is written once the loop runs (the test waits for it, it never sleeps and
hopes).  When the file STOP appears, the target writes its state before and after
(threads, leakscope modules, sys.modules, open fds, collector settings, sys.path,
tracemalloc) as JSON to STOP + ".state", prints ``done`` and exits 0.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import threading
import time
import tracemalloc
from pathlib import Path


class Record:
    def __init__(self, i: int) -> None:
        self.i = i
        self.payload = [i, str(i)]


_CACHE: dict[int, Record] = {}


def state() -> dict[str, object]:
    for t in threading.enumerate():
        if t.name.startswith("leakscope"):
            t.join(10)
    return {
        "threads": sorted(t.name for t in threading.enumerate()),
        "leakscope_modules": sorted(m for m in sys.modules if m.split(".")[0] == "leakscope"),
        "modules": sorted(sys.modules),
        "fds": sorted(os.listdir("/proc/self/fd")),
        "gc": [
            gc.isenabled(),
            list(gc.get_threshold()),
            gc.get_debug(),
            len(gc.callbacks),
            gc.get_freeze_count(),
        ],
        "path": list(sys.path),
        "tracing": tracemalloc.is_tracing(),
    }


def main() -> int:
    ready, stop = Path(sys.argv[1]), Path(sys.argv[2])
    mode = sys.argv[3] if len(sys.argv) > 3 else "leak"
    heap = [[n] for n in range(int(mode[5:]))] if mode.startswith("heap=") else []
    before = state()
    i = 0
    while not stop.exists():
        i += 1
        if mode == "leak":
            _CACHE[i] = Record(i)
        elif mode == "clean":
            _CACHE[i % 500] = Record(i)
        if i == 600:  # the clean cache is full: it has plateaued
            ready.write_text("ready")
        churn = [str(n) for n in range(50)]  # other work, freed at once
        del churn
        if i % 200 == 0:
            print(f"tick {i}", flush=True)
        time.sleep(0.001)
    del heap
    Path(str(stop) + ".state").write_text(json.dumps({"before": before, "after": state()}))
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
