"""The attach report: ``leakscope run``'s run data and text, plus what attaching cost.

:func:`attach_data` is the run data (contract D, so the HTML page of
``leakscope run`` renders it) with an ``attach`` section: how the agent got in, the
pauses the target saw, the collector and ``tracemalloc`` states before and after,
the memory breakdown.  :func:`format_attach` is its text; :func:`aggregate` and
:func:`format_aggregate` sum up the workers of ``--children``.
"""

from __future__ import annotations

import statistics
from typing import Any

from leakscope._format import format_bytes_delta
from leakscope._snapshot import Snapshot
from leakscope.attach.session import Result
from leakscope.engine.program import format_run, run_data
from leakscope.memory import MemoryBreakdown, MemoryGrowth

__all__ = ["FORMAT_CHILDREN", "aggregate", "attach_data", "format_aggregate", "format_attach"]

FORMAT_CHILDREN = "leakscope.attach.children"


def _partial(result: Result) -> dict[str, Any] | None:
    """The run data of the snapshots received before the target went away."""
    if len(result.snapshots) < 2:
        return None
    snaps = [Snapshot.from_dict(s) for s in result.snapshots]
    middle = snaps[:-1]
    interval = (
        (middle[-1].time - middle[0].time) / (len(middle) - 1)
        if len(middle) > 1
        else snaps[-1].time - snaps[0].time
    )
    return run_data(
        snaps, argv=result.target.argv, pid=result.target.pid, interval=max(interval, 1e-3)
    )


def attach_data(result: Result) -> dict[str, Any] | None:
    """The run data of one attachment with its ``attach`` section; ``None`` without two snapshots."""
    data = dict(result.report) if result.report is not None else _partial(result)
    if data is None:
        return None
    facts = dict(result.attach)
    pauses = facts.get("pauses") or result.pauses
    facts.update(
        method=None if result.injection is None else result.injection.method,
        stopped_seconds=None if result.injection is None else result.injection.stopped,
        longest_pause=max(pauses, default=0.0),
        snapshot_pauses=result.pauses,
        first_snapshot_seconds=result.first_snapshot_after,
        elapsed=result.elapsed,
        complete=result.report is not None,
        exited=result.exited,
        interrupted=result.interrupted,
        error=result.error,
        imported=result.imported,
        name=result.target.name,
    )
    if "memory" not in facts and result.snapshots:
        facts["memory"] = result.snapshots[-1].get("memory")
    data["attach"] = facts
    return data


def _memory_lines(data: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    memory = data["attach"].get("memory")
    if memory:
        lines += ["Memory at the end of the window:", str(MemoryBreakdown.from_dict(memory)), ""]
    growth = (data.get("growth") or {}).get("memory")
    if growth:
        lines += ["Memory growth over the window:", str(MemoryGrowth.from_dict(growth)), ""]
    return lines


def _facts_lines(facts: dict[str, Any]) -> list[str]:
    pauses = facts.get("snapshot_pauses") or []
    lines = [
        f"Pauses: the longest the target waited for the agent was {facts['longest_pause']:.3f} s"
        + (f" (a snapshot: median {statistics.median(pauses):.3f} s)" if pauses else "")
    ]
    if facts.get("longest_pause_cpu") is not None:
        lines.append(f"  the agent's longest step took {facts['longest_pause_cpu']:.3f} s of CPU")
    if facts.get("stopped_seconds") is not None:
        lines.append(
            f"  gdb stopped the target for at most {facts['stopped_seconds']:.2f} s to inject"
        )
    if facts.get("first_snapshot_seconds") is not None:
        lines.append(
            f"  first snapshot {facts['first_snapshot_seconds']:.2f} s after the agent connected"
        )
    if facts.get("complete"):
        before, after = facts.get("gc_before"), facts.get("gc_after")
        same = "unchanged" if before == after else f"changed: {before} -> {after}"
        lines.append(f"Detached: collector settings {same}; tracemalloc {facts.get('tracemalloc')}")
        imported = facts.get("imported") or []
        if imported:
            shown = ", ".join(imported[:8]) + (", ..." if len(imported) > 8 else "")
            lines.append(f"  standard-library modules leakscope imported, left loaded: {shown}")
    return lines


def format_attach(data: dict[str, Any]) -> str:
    """The report of one attachment as text for people (``leakscope run``'s, re-headed)."""
    facts = data["attach"]
    argv = " ".join(data.get("argv") or []) or facts.get("name", "?")
    status = []
    if facts.get("interrupted"):
        status.append("interrupted")
    if facts.get("exited"):
        status.append("the process exited while attached")
    if not facts.get("complete"):
        status.append("partial: holders not read")
    how = f", via {facts['method']}" if facts.get("method") else ""
    header = (
        f"leakscope attach: pid {data['pid']} ({argv}; Python {data['python']}; "
        f"{data['elapsed']:.1f} s, {len(data['timeline'])} snapshots{how}"
        + (f"; {', '.join(status)}" if status else "")
        + ")"
    )
    body = format_run(data).split("\n")[1:]  # the run header names a program run
    body = [
        line.replace("(start -> exit,", "(attach -> detach,").replace(" the run", " the window")
        for line in body
    ]
    verdict_at = next((i for i, line in enumerate(body) if line.startswith("Verdict")), len(body))
    lines = [header, *body[:verdict_at], *_memory_lines(data), *_facts_lines(facts), ""]
    lines += body[verdict_at:]
    return "\n".join(lines)


def aggregate(workers: list[dict[str, Any]], failures: dict[int, str]) -> dict[str, Any]:
    """The ``--children`` summary: one row per worker and the totals."""
    rows = []
    for data in workers:
        growth = data["growth"]
        culprit = next(iter(data["culprits"]), None)
        rows.append(
            {
                "pid": data["pid"],
                "verdict": data["verdict"],
                "objects": growth["objects"],
                "blocks": growth["blocks"],
                "rss": growth["rss"],
                "culprit": None if culprit is None else ", ".join(culprit.get("types") or []),
                "longest_pause": data["attach"]["longest_pause"],
            }
        )
    return {
        "workers": rows,
        "failed": {str(pid): text for pid, text in failures.items()},
        "objects": sum(r["objects"] for r in rows),
        "blocks": sum(r["blocks"] for r in rows),
        "rss": sum(r["rss"] or 0 for r in rows),
        "leaking": [r["pid"] for r in rows if r["verdict"] == "leak"],
    }


def format_aggregate(master: int, summary: dict[str, Any]) -> str:
    """The ``--children`` summary as text."""
    lines = [f"leakscope attach --children {master}: {len(summary['workers'])} worker(s)", ""]
    lines.append(f"{'pid':>8}  {'verdict':<8}  {'objects':>10}  {'RSS':>10}  {'pause':>7}  culprit")
    for r in summary["workers"]:
        lines.append(
            f"{r['pid']:>8}  {r['verdict']:<8}  {r['objects']:>+10,}  "
            f"{format_bytes_delta(r['rss']):>10}  {r['longest_pause']:>6.3f}s  {r['culprit'] or '-'}"
        )
    lines.append(
        f"{'total':>8}  {'':<8}  {summary['objects']:>+10,}  {format_bytes_delta(summary['rss']):>10}"
    )
    for pid, text in summary["failed"].items():
        lines.append(f"{pid:>8}  not attached: {text}")
    leaking = summary["leaking"]
    lines += [
        "",
        "Leaking workers: " + ", ".join(map(str, leaking))
        if leaking
        else "No worker grew steadily.",
    ]
    return "\n".join(lines)
