"""Run one scenario in this (fresh) process and print the leakscope report as JSON.

Usage: python tests/scenarios/_run.py NAME [--no-trace]
"""

import importlib
import json
import sys
import time

from leakscope.engine.check import check


def main(argv):
    name = argv[0]
    trace = "--no-trace" not in argv
    module = importlib.import_module(name)
    started = time.perf_counter()
    report = check(module.run, trace=trace)
    seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "name": name,
                "expect": module.EXPECT,
                "types": list(getattr(module, "TYPES", ())),
                "holder": getattr(module, "HOLDER", ""),
                "note": getattr(module, "NOTE", ""),
                "hint": getattr(module, "HINT", ""),
                "each": getattr(module, "EACH", {}),
                "seconds": seconds,
                "report": report.to_dict(),
                "text": str(report),
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1:])
