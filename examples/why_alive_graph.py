"""Why is this object still alive?  ``leakscope.why_alive`` with a rendered graph.

    python examples/why_alive_graph.py [OUT.svg]

A ``Session`` was closed, yet it is still in memory: an event registry still holds
its bound method.  ``why_alive`` finds the reference paths from roots (modules,
running frames) to the object.  With Graphviz's ``dot`` installed the paths are
rendered to an SVG file; without it they are printed as text only.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import leakscope

_LISTENERS: dict[str, list[Callable[[], None]]] = {"shutdown": []}  # an event registry


class Session:
    def __init__(self) -> None:
        _LISTENERS["shutdown"].append(self.on_shutdown)  # a bound method holds self

    def on_shutdown(self) -> None:
        pass

    def close(self) -> None:
        pass  # forgot to unregister on_shutdown: the session can never be freed


def main(argv: list[str]) -> int:
    session = Session()
    session.close()
    retention = leakscope.why_alive(session)
    print(retention)  # the text paths: _LISTENERS['shutdown'][0].__self__
    if shutil.which("dot") is None:
        print("\nGraphviz 'dot' is not installed: showing the text paths only.")
    else:
        out = Path(argv[0]) if argv else Path(tempfile.mkdtemp()) / "why_alive.svg"
        written = retention.render(out)
        print(f"\nGraph rendered to {written} ({written.stat().st_size:,} bytes)")
    return 0 if retention.status == "rooted" else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
