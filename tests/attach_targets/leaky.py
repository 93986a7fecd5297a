"""A target for leakscope attach: leaks Record objects into a module-level dict.

It writes ``ready`` to the file named by its first argument once its loop runs, and
prints one line per 200 iterations to stdout.  It stops when the file named by its
second argument appears, then writes its own state (threads, leakscope modules,
open fds, gc settings) as JSON to that file's name + ".state" and exits 0.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import threading
import time
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
        "gc": [gc.isenabled(), list(gc.get_threshold()), gc.get_debug(), len(gc.callbacks), gc.get_freeze_count()],
        "path": list(sys.path),
    }


def main() -> int:
    ready, stop = Path(sys.argv[1]), Path(sys.argv[2])
    leak = len(sys.argv) < 4 or sys.argv[3] != "clean"
    before = state()
    ready.write_text("ready")
    i = 0
    while not stop.exists():
        i += 1
        if leak:
            _CACHE[i] = Record(i)
        else:
            _CACHE[i % 500] = Record(i)
        churn = [str(n) for n in range(50)]  # other work, freed at once
        del churn
        if i % 200 == 0:
            print(f"tick {i}", flush=True)
        time.sleep(0.002)
    Path(str(stop) + ".state").write_text(json.dumps({"before": before, "after": state()}))
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
