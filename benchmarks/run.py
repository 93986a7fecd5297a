"""Run every benchmark and print one Markdown table of ratios.

    python benchmarks/run.py [--quick] [--output results.md] [NAME ...]

``--output`` also writes the table, preceded by a line naming the date, machine and
Python that measured it, to a file (the docs include ``docs/_generated/benchmarks.md``).

Each benchmark module in this folder exposes ``run(quick: bool) -> list[dict]`` with rows
``{benchmark, leakscope_s, other, other_s, ratio, note}``.  The table's ratio column is
derived here, the same way for every row, as the other time over leakscope's (above 1:
leakscope is faster); the modules' own ``ratio`` fields read in either direction, as
suits each script's own printout.  Every module runs in a fresh
interpreter, so one benchmark's heap never distorts another's figures.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
BENCHMARKS = [
    "snapshot",
    "why_alive",
    "accuracy",
    "watch_overhead",
    "gc_monitor",
    "pytest_overhead",
    "web_overhead",
]

_CHILD = """
import json, sys
sys.path.insert(0, {here!r})
import {name} as bench
print("\\n@@rows@@" + json.dumps(bench.run(quick={quick!r})))
"""


def run_one(name: str, quick: bool) -> list[dict[str, Any]]:
    """Run ``benchmarks/<name>.py`` in a fresh interpreter; return its rows."""
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD.format(here=str(HERE), name=name, quick=quick)],
        capture_output=True,
        text=True,
        check=False,
        cwd=HERE.parent,
    )
    marker = proc.stdout.rfind("@@rows@@")
    if proc.returncode != 0 or marker < 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return [_failed(name, f"failed (exit {proc.returncode}): {tail[0]}")]
    rows: list[dict[str, Any]] = json.loads(proc.stdout[marker + len("@@rows@@") :])
    return rows


def _failed(name: str, note: str) -> dict[str, Any]:
    return {
        "benchmark": name,
        "leakscope_s": float("nan"),
        "other": "",
        "other_s": None,
        "ratio": None,
        "note": note,
    }


def _seconds(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "-"
    if value < 1e-3:
        return f"{value * 1e6:.2f} µs"
    if value < 1:
        return f"{value * 1e3:.1f} ms"
    return f"{value:.2f} s"


def markdown(rows: list[dict[str, Any]], *, escape_links: bool = False) -> str:
    """The rows as a Markdown table.

    ``escape_links`` escapes square brackets, so that a note such as ``x['g0'][97]`` is
    not read as a reference link by a Markdown renderer (the docs include).
    """
    lines = [
        "| benchmark | leakscope | compared with | their time | their time / ours | note |",
        "|---|---:|---|---:|---:|---|",
    ]
    for row in rows:
        ours, theirs = row.get("leakscope_s"), row.get("other_s")
        usable = ours is not None and theirs is not None and not math.isnan(ours) and ours > 0
        ratio = f"{theirs / ours:.2f}x" if usable else "-"
        cells = [
            str(row.get("benchmark", "")),
            _seconds(row.get("leakscope_s")),
            str(row.get("other", "")) or "-",
            _seconds(row.get("other_s")),
            ratio,
            str(row.get("note", "")),
        ]
        if escape_links:
            cells = [cell.replace("[", "\\[").replace("]", "\\]") for cell in cells]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines)


def provenance(quick: bool) -> str:
    """One Markdown line saying when, where and how the figures were measured."""
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    cpus = os.cpu_count() or 0
    mode = "--quick" if quick else "full"
    return (
        f"Measured {now} on {platform.system()} {platform.machine()}, {cpus} CPU(s), "
        f"{platform.python_implementation()} {platform.python_version()} "
        f"(`python benchmarks/run.py {mode}`)."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run leakscope's benchmarks.")
    parser.add_argument("--quick", action="store_true", help="smaller heaps, fewer repeats")
    parser.add_argument("--output", type=Path, help="also write the table to this file")
    parser.add_argument(
        "names", nargs="*", help=f"benchmarks to run (default: all of {BENCHMARKS})"
    )
    args = parser.parse_args(argv)
    names = args.names or [name for name in BENCHMARKS if (HERE / f"{name}.py").exists()]
    unknown = [name for name in names if not (HERE / f"{name}.py").exists()]
    if unknown:
        parser.error(f"no such benchmark: {', '.join(unknown)}")
    rows: list[dict[str, Any]] = []
    for name in names:
        print(f"running {name}...", file=sys.stderr, flush=True)
        rows.extend(run_one(name, args.quick))
    table = markdown(rows)
    print(table)
    if args.output:
        generated = (
            "<!-- generated by benchmarks/run.py --output; do not edit by hand -->\n\n"
            f"{provenance(args.quick)}\n\n{markdown(rows, escape_links=True)}\n"
        )
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(generated, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
