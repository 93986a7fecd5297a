"""Leak-detection accuracy: leakscope against objgraph and pympler on the same scenarios.

Every scenario of ``tests/scenarios`` (leak kinds and their clean twins) runs in a
fresh interpreter for every tool:

- leakscope: ``check(run)`` with its default adaptive runs and ``trace=True``;
- objgraph: the usual workflow, ``objgraph.growth()`` after warm-up calls, then twice
  after a round of calls; a leak when some type grew in both rounds;
- pympler: ``tracker.SummaryTracker().diff()`` the same way.

A leak is *caught* when the tool reports one, *explained* when its output names
the scenario's culprit type or holder; a *false alarm* is a leak reported on a
clean twin.  Seconds are per scenario, from the first call to the verdict.

    python benchmarks/accuracy.py [--quick]

Prints a table per scenario class (bounded caches, untracked holders, several leaks and
registries, other), then the totals.  Targets: every leak caught and explained, zero
false alarms, median check < 0.5 s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "tests" / "scenarios"

_OTHER = {
    "objgraph": """
        import objgraph
        def measure():
            return {name: delta for name, _, delta in objgraph.growth(limit=None)}
        """,
    "pympler": """
        from pympler import tracker
        tr = tracker.SummaryTracker()
        def measure():
            return {str(row[0]): row[1] for row in tr.diff() if row[1] > 0}
        """,
}

_CHILD = """
import importlib, json, sys, time
sys.path.insert(0, {scenarios!r})
module = importlib.import_module({name!r})
{setup}
for _ in range(20):
    module.run()
started = time.perf_counter()
measure()
for _ in range({calls}):
    module.run()
first = measure()
for _ in range({calls}):
    module.run()
second = measure()
seconds = time.perf_counter() - started
grew = sorted(name for name, delta in second.items() if delta > 0 and first.get(name, 0) > 0)
print("@@" + json.dumps({{"leaked": bool(grew), "text": " ".join(grew), "seconds": seconds}}))
"""


# The classes of issue 15 each scenario belongs to (the rest are "other").
_CLASSES = {
    "bounded caches": (
        "clean_bounded_cache",
        "clean_cachetools_like",
        "clean_deque_large",
        "clean_deque_maxlen",
        "clean_lru_large",
        "leak_deque_unbounded",
        "leak_lru_method",
        "leak_lru_unbounded",
    ),
    "untracked holders": (
        "leak_bytearray",
        "leak_instance_untracked",
        "leak_str_cache",
        "leak_stringio_handler",
        "leak_untracked",
    ),
    "several leaks / registries": (
        "leak_class_registry",
        "leak_logging_handlers",
        "leak_two_at_once",
        "leak_handlers",
        "leak_registry",
    ),
}


def _class_of(name: str) -> str:
    return next((c for c, names in _CLASSES.items() if name in names), "other")


def _names() -> list[str]:
    return sorted(p.stem for p in SCENARIOS.glob("*.py") if not p.stem.startswith("_"))


def _expectation(name: str) -> dict[str, Any]:
    code = (
        f"import sys, json; sys.path.insert(0, {str(SCENARIOS)!r}); import {name} as m; "
        "print(json.dumps({'expect': m.EXPECT, 'types': list(getattr(m, 'TYPES', ())), "
        "'holder': getattr(m, 'HOLDER', '')}))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    data: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return data


def _leakscope(name: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, str(SCENARIOS / "_run.py"), name],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        timeout=300,
    )
    if proc.returncode != 0:
        return {"leaked": None, "text": proc.stderr[-300:], "seconds": float("nan")}
    data = json.loads(proc.stdout)
    return {"leaked": data["report"]["leaked"], "text": data["text"], "seconds": data["seconds"]}


def _other(tool: str, name: str, calls: int) -> dict[str, Any]:
    code = _CHILD.format(
        scenarios=str(SCENARIOS),
        name=name,
        setup=textwrap.dedent(_OTHER[tool]),
        calls=calls,
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        timeout=300,
    )
    marker = proc.stdout.rfind("@@")
    if proc.returncode != 0 or marker < 0:
        return {"leaked": None, "text": proc.stderr[-300:], "seconds": float("nan")}
    result: dict[str, Any] = json.loads(proc.stdout[marker + 2 :])
    return result


def _explained(expect: dict[str, Any], text: str) -> bool:
    """The output names the culprit type (full or short name) or the holder."""
    for t in expect["types"]:
        if t in text or t.rpartition(".")[2] in text.split():
            return True
    return bool(expect["holder"]) and expect["holder"] in text


def _score(
    tool: str, results: dict[str, dict[str, Any]], expects: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    leaks = [n for n in results if expects[n]["expect"] == "leak"]
    clean = [n for n in results if expects[n]["expect"] == "clean"]
    caught = [n for n in leaks if results[n]["leaked"]]
    explained = [n for n in caught if _explained(expects[n], results[n]["text"])]
    false_alarms = [n for n in clean if results[n]["leaked"]]
    seconds = [r["seconds"] for r in results.values() if r["seconds"] == r["seconds"]]
    return {
        "tool": tool,
        "caught": f"{len(caught)}/{len(leaks)}",
        "explained": f"{len(explained)}/{len(leaks)}",
        "false_alarms": f"{len(false_alarms)}/{len(clean)}",
        "median_s": statistics.median(seconds) if seconds else float("nan"),
        "missed": sorted(set(leaks) - set(caught)),
        "unexplained": sorted(set(caught) - set(explained)),
        "false": false_alarms,
    }


def measure(quick: bool) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One score per tool over the whole corpus, and one per tool and scenario class."""
    names = _names()
    expects = {n: _expectation(n) for n in names}
    calls = 100 if quick else 300
    results = {"leakscope": {n: _leakscope(n) for n in names}}
    for tool in ("objgraph", "pympler"):
        results[tool] = {n: _other(tool, n, calls) for n in names}
    scores = [_score(tool, found, expects) for tool, found in results.items()]
    per_class = []
    for cls in [*_CLASSES, "other"]:
        members = [n for n in names if _class_of(n) == cls]
        for tool, found in results.items():
            score = _score(tool, {n: found[n] for n in members}, expects)
            per_class.append({"class": cls, **score})
    return scores, per_class


def _summary(s: dict[str, Any]) -> str:
    return (
        f"{s['tool']}: caught {s['caught']}, explained {s['explained']}, "
        f"false alarms {s['false_alarms']}, median {s['median_s']:.2f} s"
    )


def run(quick: bool) -> list[dict[str, Any]]:
    """Rows for ``benchmarks/run.py``: leakscope against each other tool."""
    scores, _ = measure(quick)
    ours = scores[0]
    rows = []
    for other in scores[1:]:
        rows.append(
            {
                "benchmark": "accuracy: scenario corpus (median s per scenario)",
                "leakscope_s": ours["median_s"],
                "other": f"{other['tool']} growth",
                "other_s": other["median_s"],
                "ratio": other["median_s"] / ours["median_s"] if ours["median_s"] else None,
                "note": f"{_summary(ours)}; {_summary(other)}",
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls for the other tools")
    args = parser.parse_args()
    scores, per_class = measure(args.quick)
    print("| class | tool | caught | explained | false alarms | median s |")
    print("|---|---|---|---|---|---|")
    for s in per_class:
        print(
            f"| {s['class']} | {s['tool']} | {s['caught']} | {s['explained']} "
            f"| {s['false_alarms']} | {s['median_s']:.2f} |"
        )
    print()
    print("| tool | caught | explained | false alarms | median s |")
    print("|---|---|---|---|---|")
    for s in scores:
        print(
            f"| {s['tool']} | {s['caught']} | {s['explained']} | {s['false_alarms']} "
            f"| {s['median_s']:.2f} |"
        )
    for s in scores:
        for key in ("missed", "unexplained", "false"):
            if s[key]:
                print(f"{s['tool']} {key}: {', '.join(s[key])}")


if __name__ == "__main__":
    main()
