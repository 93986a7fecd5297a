"""``leakscope report DIR``: a directory of per-worker snapshots, per worker and in total."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

from leakscope._format import format_bytes, format_bytes_delta
from leakscope._snapshot import Snapshot
from leakscope.cli.common import EPILOG, EXIT_LEAK, EXIT_OK, UsageError, print_json
from leakscope.errors import SnapshotError

__all__ = ["HELP", "add_arguments", "run"]

HELP = "aggregate a directory of per-worker snapshots"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``report``'s arguments (and its description) to ``parser``."""
    parser.description = (
        "Aggregate the per-worker files of a directory written by the gunicorn hooks "
        "(exit-<pid>.json snapshots, worker-<pid>.json states): per pid and in total."
    )
    parser.epilog = EPILOG
    parser.add_argument("directory", metavar="DIR")
    parser.add_argument("--json", action="store_true", help="print the aggregate as JSON")


_EXIT_FILE = re.compile(r"^exit-(\d+)\.json$")
_WORKER_FILE = re.compile(r"^worker-(\d+)\.json$")


def _worker_state(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _aggregate(directory: str) -> dict[str, Any]:
    root = Path(directory)
    if not root.exists():
        raise UsageError(f"no such directory: {directory}")
    if not root.is_dir():
        raise UsageError(f"{directory} is not a directory")
    workers: dict[int, dict[str, Any]] = {}
    skipped: list[str] = []
    for path in sorted(root.iterdir()):
        exit_match = _EXIT_FILE.match(path.name)
        worker_match = _WORKER_FILE.match(path.name)
        if exit_match:
            pid = int(exit_match.group(1))
            try:
                snap = Snapshot.load(path)
            except (SnapshotError, OSError) as exc:
                skipped.append(f"{path.name}: {exc}")
                continue
            entry = workers.setdefault(pid, {"pid": pid})
            entry.update(
                exit={
                    "time": snap.time,
                    "objects": snap.objects,
                    "blocks": snap.blocks,
                    "rss": snap.rss,
                    "top": [[name, count] for name, count in snap.top(10)],
                }
            )
        elif worker_match:
            pid = int(worker_match.group(1))
            state = _worker_state(path)
            if state is None:
                skipped.append(f"{path.name}: not a readable worker state")
                continue
            growth = state.get("growth") if isinstance(state.get("growth"), dict) else {}
            workers.setdefault(pid, {"pid": pid})["state"] = {
                "requests": state.get("requests"),
                "rss": state.get("rss"),
                "objects": state.get("objects"),
                "blocks": state.get("blocks"),
                "growth": growth,
                "leaking_routes": [
                    r.get("route")
                    for r in state.get("routes", [])
                    if isinstance(r, dict) and r.get("leaking")
                ],
            }
    if not workers:
        detail = f" ({len(skipped)} unreadable)" if skipped else ""
        raise UsageError(
            f"no leakscope snapshots in {directory}{detail}: expected exit-<pid>.json "
            "or worker-<pid>.json files"
        )
    total: dict[str, Any] = {"workers": len(workers), "objects": 0, "blocks": 0, "rss": 0}
    types: dict[str, int] = {}
    for entry in workers.values():
        source = entry.get("exit") or entry.get("state") or {}
        for key in ("objects", "blocks", "rss"):
            value = source.get(key)
            if isinstance(value, int) and total[key] is not None:
                total[key] += value
        for name, count in (entry.get("exit") or {}).get("top", []):
            types[name] = types.get(name, 0) + count
    grown: dict[str, int] = {"objects": 0, "blocks": 0, "rss": 0}
    for entry in workers.values():
        growth = (entry.get("state") or {}).get("growth") or {}
        for key in grown:
            value = growth.get(key)
            if isinstance(value, int):
                grown[key] += value
    total["growth"] = grown
    total["top"] = sorted(types.items(), key=lambda item: (-item[1], item[0]))[:10]
    leaking = sorted(
        {r for e in workers.values() for r in (e.get("state") or {}).get("leaking_routes", [])}
    )
    return {
        "format": "leakscope.workers",
        "directory": str(root),
        "workers": [workers[pid] for pid in sorted(workers)],
        "total": total,
        "leaking_routes": leaking,
        "skipped": skipped,
    }


def _count(value: object) -> str:
    return f"{value:,}" if isinstance(value, int) else "n/a"


def _format_aggregate(data: dict[str, Any]) -> str:
    lines = [f"{len(data['workers'])} worker(s) in {data['directory']}", ""]
    lines.append(f"{'pid':>8}  {'objects':>12}  {'blocks':>12}  {'RSS':>10}  source")
    for entry in data["workers"]:
        source = entry.get("exit") or entry.get("state") or {}
        kind = "exit snapshot" if "exit" in entry else "live state"
        objects = source.get("objects")
        blocks = source.get("blocks")
        lines.append(
            f"{entry['pid']:>8}  {_count(objects):>12}  {_count(blocks):>12}  "
            f"{format_bytes(source.get('rss')):>10}  {kind}"
        )
        growth = (entry.get("state") or {}).get("growth") or {}
        if growth.get("objects") is not None or growth.get("rss") is not None:
            lines.append(
                f"{'':>8}  growth since start: {growth.get('objects') or 0:+,} objects, "
                f"RSS {format_bytes_delta(growth.get('rss'))}"
            )
    total = data["total"]
    lines.append(
        f"{'total':>8}  {total['objects']:>12,}  {total['blocks']:>12,}  "
        f"{format_bytes(total['rss']):>10}"
    )
    grown = total["growth"]
    if any(grown.values()):
        lines.append(
            f"{'':>8}  growth the workers reported since they started: {grown['objects']:+,} "
            f"objects, {grown['blocks']:+,} blocks, RSS {format_bytes_delta(grown['rss'])}"
        )
    if total["top"]:
        lines += ["", "Most numerous types over all exit snapshots:"]
        width = max(len(name) for name, _ in total["top"])
        lines += [f"  {name:<{width}}  {count:>12,}" for name, count in total["top"]]
    if data["leaking_routes"]:
        lines += ["", "Routes flagged as leaking: " + ", ".join(data["leaking_routes"])]
    lines += [f"skipped {s}" for s in data["skipped"]]
    return "\n".join(lines)


def run(ns: argparse.Namespace) -> int:
    """Print the aggregate of ``ns.directory``; exit code 1 when a route leaks, else 0."""
    data = _aggregate(ns.directory)
    if ns.json:
        print_json(data)
    else:
        print(_format_aggregate(data))
    return EXIT_LEAK if data["leaking_routes"] else EXIT_OK
