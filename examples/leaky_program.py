"""A program to watch with ``leakscope run``: a worker loop whose session registry leaks.

    python examples/leaky_program.py                  # runs for 2 seconds, prints a summary
    leakscope run examples/leaky_program.py           # the same, watched by leakscope
    leakscope run --interval 0.2 --html report.html examples/leaky_program.py 3

``leakscope run`` takes a snapshot at the start, every ``--interval`` seconds and at
exit.  Here ``Session`` objects pile up steadily in ``_SESSIONS`` (never removed),
while the parsed payloads are dropped after each job: the report names
``Session`` and its holder, and not the temporary objects.
"""

from __future__ import annotations

import json
import sys
import time


class Session:
    def __init__(self, job: int) -> None:
        self.job = job
        self.state = {"job": job, "status": "done"}


_SESSIONS: dict[int, Session] = {}  # every session ever opened: the leak


def handle(job: int) -> None:
    payload = json.loads('{"items": [1, 2, 3], "user": "ada"}')  # temporary: freed
    _SESSIONS[job] = Session(job)  # kept forever
    del payload


def main(argv: list[str]) -> int:
    seconds = float(argv[0]) if argv else 2.0
    deadline = time.monotonic() + seconds
    job = 0
    while time.monotonic() < deadline:
        handle(job)
        job += 1
        time.sleep(0.001)  # the rest of the work
    print(f"handled {job:,} jobs; {len(_SESSIONS):,} sessions still registered")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
