"""``leakscope report DIR``: a directory of per-worker snapshots, per worker and in total.

The directory is the one the gunicorn hooks write (``LEAKSCOPE_DIR``): per worker pid a
``start-<pid>.json`` snapshot (once the application is loaded), a ``worker-<pid>.json``
state (requests, routes, timeline) and an ``exit-<pid>.json`` snapshot.  The report
gives, per worker and in total: requests, the growth since start by type (the exit
snapshot minus the start snapshot; the types of the application first, builtins and
the standard library after), the routes flagged as leaking with what holds their
objects, and the RSS trend.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from leakscope._format import format_bytes, format_bytes_delta
from leakscope._roots import format_container
from leakscope._snapshot import Snapshot
from leakscope.cli.common import EPILOG, EXIT_LEAK, EXIT_OK, UsageError, print_json
from leakscope.errors import SnapshotError

__all__ = [
    "HELP",
    "add_arguments",
    "aggregate",
    "format_aggregate",
    "is_user_type",
    "rss_trend",
    "run",
]

HELP = "aggregate a directory of per-worker snapshots"

_FILE = re.compile(r"^(start|exit|worker)-(\d+)\.json$")
_TYPES_SHOWN = 10  # types per group (user, builtin) in the text and the JSON
_FLAT_PER_MINUTE = 64 << 10  # an RSS slope below this (bytes per minute) is flat

Trend = Literal["rising", "flat", "falling"]
GrowthSource = Literal["snapshots", "worker state"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``report``'s arguments (and its description) to ``parser``."""
    parser.description = (
        "Aggregate the per-worker files of a directory written by the gunicorn hooks "
        "(start-<pid>.json and exit-<pid>.json snapshots, worker-<pid>.json states): per "
        "pid and in total, the requests, the growth since start by type, the routes "
        "flagged as leaking with their holders and the RSS trend."
    )
    parser.epilog = EPILOG + " report exits 1 when a route was flagged as leaking."
    parser.add_argument("directory", metavar="DIR")
    parser.add_argument("--json", action="store_true", help="print the aggregate as JSON")


def is_user_type(name: str) -> bool:
    """Whether a qualified type name belongs to the application, not Python itself.

    Builtins are bare (``dict``); a type of a standard-library module is not the
    application's either.

    >>> is_user_type("svc.Item"), is_user_type("dict"), is_user_type("collections.deque")
    (True, False, False)
    """
    module = name.partition(".")[0] if "." in name else ""
    return bool(module) and module not in sys.stdlib_module_names and module != "builtins"


# -- reading the directory ------------------------------------------------------------------


@dataclass
class _Files:
    """What one worker left in the directory."""

    start: Snapshot | None = None
    exit: Snapshot | None = None
    state: dict[str, Any] | None = None


def _worker_state(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _read(root: Path) -> tuple[dict[int, _Files], list[str]]:
    files: dict[int, _Files] = {}
    skipped: list[str] = []
    for path in sorted(root.iterdir()):
        match = _FILE.match(path.name)
        if match is None:
            continue
        kind, pid = match.group(1), int(match.group(2))
        if kind == "worker":
            state = _worker_state(path)
            if state is None:
                skipped.append(f"{path.name}: not a readable worker state")
                continue
            files.setdefault(pid, _Files()).state = state
            continue
        try:
            snap = Snapshot.load(path)
        except (SnapshotError, OSError) as exc:
            skipped.append(f"{path.name}: {exc}")
            continue
        setattr(files.setdefault(pid, _Files()), kind, snap)
    return files, skipped


# -- one worker -----------------------------------------------------------------------------


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _split_types(deltas: dict[str, int]) -> dict[str, list[dict[str, Any]]]:
    """Type deltas as two ranked lists: the application's types, then Python's own."""
    ranked = sorted(deltas.items(), key=lambda item: (-abs(item[1]), item[0]))
    user = [{"type": n, "delta": d} for n, d in ranked if d and is_user_type(n)]
    python = [{"type": n, "delta": d} for n, d in ranked if d and not is_user_type(n)]
    return {"user_types": user[:_TYPES_SHOWN], "builtin_types": python[:_TYPES_SHOWN]}


def _growth_since_start(files: _Files) -> dict[str, Any] | None:
    """Exit snapshot minus start snapshot; else what the worker's own censuses saw."""
    if files.start is not None and files.exit is not None:
        growth = files.exit - files.start
        source: GrowthSource = "snapshots"
        return {
            "source": source,
            "seconds": growth.elapsed,
            "objects": growth.objects,
            "deltas": {d.name: d.delta for d in growth.types},
        }
    state = files.state or {}
    raw = state.get("growth")
    reported: dict[str, Any] = raw if isinstance(raw, dict) else {}
    objects = _int(reported.get("objects"))
    latest = _int(state.get("objects"))
    if files.exit is not None and objects is not None and latest is not None:
        # The worker's first census was latest - objects; the exit snapshot is later.
        objects = files.exit.objects - (latest - objects)
    deltas: dict[str, int] = {}
    for entry in reported.get("types") or []:
        if isinstance(entry, dict) and isinstance(entry.get("type"), str):
            deltas[entry["type"]] = _int(entry.get("delta")) or 0
    if objects is None and not deltas:
        return None
    source = "worker state"
    return {"source": source, "seconds": None, "objects": objects, "deltas": deltas}


def _rss_points(files: _Files) -> list[tuple[float, int]]:
    points: list[tuple[float, int]] = []
    if files.start is not None and files.start.rss is not None:
        points.append((files.start.time, files.start.rss))
    for point in (files.state or {}).get("timeline") or []:
        if isinstance(point, dict):
            when, rss = point.get("time"), _int(point.get("rss"))
            if isinstance(when, (int, float)) and rss is not None:
                points.append((float(when), rss))
    if files.exit is not None and files.exit.rss is not None:
        points.append((files.exit.time, files.exit.rss))
    return sorted(points)


def rss_trend(points: list[tuple[float, int]]) -> dict[str, Any] | None:
    """The RSS trend of ``(time, rss)`` points: first, last and the least-squares slope.

    >>> rss_trend([(0.0, 1 << 20), (30.0, 2 << 20), (60.0, 3 << 20)])["trend"]
    'rising'
    """
    if len(points) < 2:
        return None
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_r = sum(r for _, r in points) / n
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    slope = sum((t - mean_t) * (r - mean_r) for t, r in points) / spread if spread else 0.0
    per_minute = slope * 60
    trend: Trend = (
        "flat" if abs(per_minute) < _FLAT_PER_MINUTE else "rising" if per_minute > 0 else "falling"
    )
    return {
        "points": n,
        "first": points[0][1],
        "last": points[-1][1],
        "seconds": points[-1][0] - points[0][0],
        "per_minute": round(per_minute),
        "trend": trend,
    }


def _leaking_routes(state: dict[str, Any] | None) -> list[dict[str, Any]]:
    routes = []
    for r in (state or {}).get("routes") or []:
        if not isinstance(r, dict) or not r.get("leaking") or not isinstance(r.get("route"), str):
            continue
        routes.append(
            {
                "route": r["route"],
                "requests": _int(r.get("requests")),
                "objects_per_request": r.get("retained_objects_per_request"),
                "types": [
                    t["type"]
                    for t in r.get("top_types") or []
                    if isinstance(t, dict) and isinstance(t.get("type"), str)
                ],
                "holders": [
                    c["container"]
                    for c in r.get("containers") or []
                    if isinstance(c, dict) and isinstance(c.get("container"), str)
                ],
            }
        )
    return routes


def _worker(pid: int, files: _Files) -> dict[str, Any]:
    entry: dict[str, Any] = {"pid": pid}
    if files.exit is not None:
        snap = files.exit
        entry["exit"] = {
            "time": snap.time,
            "objects": snap.objects,
            "blocks": snap.blocks,
            "rss": snap.rss,
            "top": [[name, count] for name, count in snap.top(10)],
        }
    if files.start is not None:
        entry["start"] = {
            "time": files.start.time,
            "objects": files.start.objects,
            "rss": files.start.rss,
        }
    state = files.state
    if state is not None:
        growth = state.get("growth") if isinstance(state.get("growth"), dict) else {}
        entry["state"] = {
            "requests": state.get("requests"),
            "rss": state.get("rss"),
            "objects": state.get("objects"),
            "blocks": state.get("blocks"),
            "growth": growth,
            "leaking_routes": [r["route"] for r in _leaking_routes(state)],
        }
    entry["requests"] = _int((state or {}).get("requests"))
    since = _growth_since_start(files)
    entry["growth_since_start"] = (
        None
        if since is None
        else {
            "source": since["source"],
            "seconds": since["seconds"],
            "objects": since["objects"],
            **_split_types(since["deltas"]),
        }
    )
    entry["rss_trend"] = rss_trend(_rss_points(files))
    entry["routes"] = _leaking_routes(state)
    return entry


# -- all workers ----------------------------------------------------------------------------


def _sum_growth(files: dict[int, _Files]) -> dict[str, Any]:
    objects: int | None = None
    deltas: dict[str, int] = {}
    for f in files.values():
        since = _growth_since_start(f)
        if since is None:
            continue
        if since["objects"] is not None:
            objects = (objects or 0) + since["objects"]
        for name, d in since["deltas"].items():
            deltas[name] = deltas.get(name, 0) + d
    return {"objects": objects, **_split_types(deltas)}


def _merge_routes(workers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    merged: dict[str, dict[str, Any]] = {}
    for w in workers:
        for r in w["routes"]:
            into = merged.setdefault(
                r["route"],
                {"route": r["route"], "workers": [], "requests": 0, "types": [], "holders": []},
            )
            into["workers"].append(w["pid"])
            into["requests"] += r["requests"] or 0
            for key in ("types", "holders"):
                into[key] += [v for v in r[key] if v not in into[key]]
    return [merged[name] for name in sorted(merged)]


def _total(workers: list[dict[str, Any]], files: dict[int, _Files]) -> dict[str, Any]:
    total: dict[str, Any] = {"workers": len(workers), "objects": 0, "blocks": 0, "rss": 0}
    types: dict[str, int] = {}
    grown: dict[str, int] = {"objects": 0, "blocks": 0, "rss": 0}
    for entry in workers:
        source = entry.get("exit") or entry.get("state") or {}
        for key in ("objects", "blocks", "rss"):
            value = _int(source.get(key))
            if value is not None:
                total[key] += value
        for name, count in (entry.get("exit") or {}).get("top", []):
            types[name] = types.get(name, 0) + count
        growth = (entry.get("state") or {}).get("growth") or {}
        for key in grown:
            value = _int(growth.get(key))
            if value is not None:
                grown[key] += value
    total["growth"] = grown  # what the workers' own censuses reported
    total["top"] = sorted(types.items(), key=lambda item: (-item[1], item[0]))[:10]
    total["requests"] = sum(w["requests"] or 0 for w in workers)
    total["growth_since_start"] = _sum_growth(files)
    starts = [f.start.rss for f in files.values() if f.start is not None and f.start.rss]
    exits = [f.exit.rss for f in files.values() if f.exit is not None and f.exit.rss]
    # The fleet's RSS trend: the start snapshots' sum against the exit snapshots' sum.
    total["rss_start"] = sum(starts) if starts else None
    total["rss_exit"] = sum(exits) if exits else None
    return total


def aggregate(directory: str) -> dict[str, Any]:
    """The report on ``directory`` as a JSON-safe dict (``format``: ``leakscope.workers``).

    Raises :class:`UsageError` when it is not a directory or holds no worker file.
    """
    root = Path(directory)
    if not root.exists():
        raise UsageError(f"no such directory: {directory}")
    if not root.is_dir():
        raise UsageError(f"{directory} is not a directory")
    files, skipped = _read(root)
    if not files:
        detail = f" ({len(skipped)} unreadable)" if skipped else ""
        raise UsageError(
            f"no leakscope snapshots in {directory}{detail}: expected exit-<pid>.json, "
            "start-<pid>.json or worker-<pid>.json files"
        )
    workers = [_worker(pid, files[pid]) for pid in sorted(files)]
    routes = _merge_routes(workers)
    return {
        "format": "leakscope.workers",
        "directory": str(root),
        "workers": workers,
        "total": _total(workers, files),
        "routes": routes,
        "leaking_routes": [r["route"] for r in routes],
        "skipped": skipped,
    }


# -- text -----------------------------------------------------------------------------------


def _count(value: object) -> str:
    return f"{value:,}" if isinstance(value, int) else "n/a"


def _types_line(title: str, rows: list[dict[str, Any]]) -> list[str]:
    if not rows:
        return []
    return [f"    {title}: " + ", ".join(f"{r['type']} {r['delta']:+,}" for r in rows)]


def _growth_lines(growth: dict[str, Any] | None) -> list[str]:
    if growth is None:
        return ["  growth since start: unknown (no start and exit snapshots, no worker state)"]
    how = (
        f"exit - start snapshot, {growth['seconds']:.1f} s"
        if growth["source"] == "snapshots"
        else "from the worker's own censuses only: no start-<pid>.json"
    )
    objects = growth["objects"]
    amount = f"{objects:+,} objects" if isinstance(objects, int) else "objects n/a"
    lines = [f"  growth since start ({how}): {amount}"]
    lines += _types_line("user types", growth["user_types"])
    lines += _types_line("builtins and standard library", growth["builtin_types"])
    return lines


def _trend_line(trend: dict[str, Any] | None) -> list[str]:
    if trend is None:
        return []
    return [
        f"  RSS {format_bytes(trend['first'])} -> {format_bytes(trend['last'])} over "
        f"{trend['seconds']:.1f} s ({format_bytes_delta(trend['last'] - trend['first'])}; "
        f"{trend['trend']}, {format_bytes_delta(trend['per_minute'])}/min over "
        f"{trend['points']} points)"
    ]


def _route_line(r: dict[str, Any]) -> str:
    rate = r.get("objects_per_request")
    parts = [f"  leaking route {r['route']}"]
    if isinstance(rate, (int, float)):
        parts.append(f": {rate:,.2f} objects/request")
    if r["types"]:
        parts.append(f" ({', '.join(r['types'])})")
    if r["holders"]:
        parts.append("; held by " + ", ".join(format_container(h) for h in r["holders"]))
    return "".join(parts)


def format_aggregate(data: dict[str, Any]) -> str:
    """The report of :func:`aggregate` as text for people."""
    lines = [f"{len(data['workers'])} worker(s) in {data['directory']}", ""]
    lines.append(
        f"{'pid':>8}  {'requests':>9}  {'objects':>12}  {'blocks':>12}  {'RSS':>10}  source"
    )
    for entry in data["workers"]:
        source = entry.get("exit") or entry.get("state") or {}
        kind = "exit snapshot" if "exit" in entry else "live state" if "state" in entry else "-"
        lines.append(
            f"{entry['pid']:>8}  {_count(entry['requests']):>9}  "
            f"{_count(source.get('objects')):>12}  {_count(source.get('blocks')):>12}  "
            f"{format_bytes(source.get('rss')):>10}  {kind}"
        )
    total = data["total"]
    lines.append(
        f"{'total':>8}  {total['requests']:>9,}  {total['objects']:>12,}  "
        f"{total['blocks']:>12,}  {format_bytes(total['rss']):>10}"
    )
    for entry in data["workers"]:
        lines += ["", f"Worker {entry['pid']}: {_count(entry['requests'])} requests"]
        lines += _growth_lines(entry["growth_since_start"])
        lines += _trend_line(entry["rss_trend"])
        lines += [_route_line(r) for r in entry["routes"]]
    since = total["growth_since_start"]
    lines += ["", f"All workers: {total['requests']:,} requests"]
    objects = since["objects"]
    lines.append(
        "  growth since start: " + (f"{objects:+,} objects" if isinstance(objects, int) else "n/a")
    )
    lines += _types_line("user types", since["user_types"])
    lines += _types_line("builtins and standard library", since["builtin_types"])
    if total["rss_start"] is not None and total["rss_exit"] is not None:
        lines.append(
            f"  RSS {format_bytes(total['rss_start'])} at start -> "
            f"{format_bytes(total['rss_exit'])} at exit "
            f"({format_bytes_delta(total['rss_exit'] - total['rss_start'])})"
        )
    if data["routes"]:
        lines += ["", "Routes flagged as leaking: " + ", ".join(data["leaking_routes"])]
        for r in data["routes"]:
            held = ", ".join(format_container(h) for h in r["holders"]) or "holder not found"
            types = ", ".join(r["types"]) or "?"
            workers = ", ".join(str(p) for p in r["workers"])
            lines.append(f"  {r['route']}: {types}; held by {held} (workers {workers})")
    lines += [f"skipped {s}" for s in data["skipped"]]
    return "\n".join(lines)


def run(ns: argparse.Namespace) -> int:
    """Print the aggregate of ``ns.directory``; exit code 1 when a route leaks, else 0."""
    data = aggregate(ns.directory)
    if ns.json:
        print_json(data)
    else:
        print(format_aggregate(data))
    return EXIT_LEAK if data["leaking_routes"] else EXIT_OK
