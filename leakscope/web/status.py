"""Status assembly: one worker's state dict, and the views over several workers' states.

These are the JSON shapes of the web endpoints (the same for every adapter)::

    worker_state(pid=..., started=..., requests=..., ...)   # one worker: status()
    merge_routes(states)                                      # /api/routes over workers
    growth_between(timeline, 0, -1)                           # /api/growth?start=0&end=-1

Nothing here reads the heap; the inputs come from the units that measure.  States read
back from files are untrusted: every field is checked before use.
"""

from __future__ import annotations

import time
from typing import Any

from leakscope._heap import PYTHON_VERSION

__all__ = ["MAX_TYPES", "growth_between", "merge_routes", "number", "worker_state"]

MAX_TYPES = 20


def worker_state(
    *,
    pid: int,
    started: float,
    requests: int,
    sampled: int,
    rss: int | None,
    blocks: int,
    objects: int | None,
    growth: dict[str, Any],
    routes: list[dict[str, Any]],
    timeline: list[dict[str, Any]],
    overhead: dict[str, Any],
) -> dict[str, Any]:
    """One worker's state, as ``status()`` returns and ``workers.publish`` writes it.

    >>> s = worker_state(pid=1, started=0.0, requests=0, sampled=0, rss=None, blocks=0,
    ...                  objects=None, growth={}, routes=[], timeline=[], overhead={})
    >>> s["alive"], s["python"] != ""
    (True, True)
    """
    return {
        "pid": pid,
        "started": started,
        "updated": time.time(),
        "python": PYTHON_VERSION,
        "requests": requests,
        "sampled": sampled,
        "alive": True,
        "rss": rss,
        "blocks": blocks,
        "objects": objects,
        "growth": growth,
        "routes": routes,
        "timeline": timeline,
        "overhead": overhead,
    }


def number(value: object) -> float:
    """``value`` as a float when it is a number (not a bool), else 0.0.

    >>> number(3), number("3"), number(True)
    (3.0, 0.0, 0.0)
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0.0
    return float(value)


def _merged_entry(name: str) -> dict[str, Any]:
    return {
        "route": name,
        "requests": 0,
        "sampled": 0,
        "leaking": False,
        "workers": [],
        "_objects": 0.0,
        "_bytes": 0.0,
        "_weight": 0.0,
        "_types": {},
        "containers": {},
        "holders": {},
        "sites": {},
    }


def _merge_row(entry: dict[str, Any], row: dict[str, Any], pid: object) -> None:
    weight = max(number(row.get("sampled")), 1.0)
    entry["requests"] += int(number(row.get("requests")))
    entry["sampled"] += int(number(row.get("sampled")))
    entry["leaking"] = entry["leaking"] or row.get("leaking") is True
    entry["workers"].append(pid)
    entry["_objects"] += number(row.get("retained_objects_per_request")) * weight
    entry["_bytes"] += number(row.get("retained_bytes_per_request")) * weight
    entry["_weight"] += weight
    types = row.get("top_types")
    for t in types if isinstance(types, list) else []:
        if isinstance(t, dict):
            key = str(t.get("type"))
            entry["_types"][key] = (
                entry["_types"].get(key, 0.0) + number(t.get("per_request")) * weight
            )
            if isinstance(t.get("site"), str):
                entry["sites"].setdefault(key, t["site"])
    containers = row.get("containers")
    for c in containers if isinstance(containers, list) else []:
        if isinstance(c, dict) and isinstance(c.get("container"), str):
            key = c["container"]
            entry["containers"][key] = (
                entry["containers"].get(key, 0.0) + number(c.get("per_request")) * weight
            )
            held = entry["holders"].setdefault(key, {})
            for field in ("kind", "path", "hint"):
                if isinstance(c.get(field), str):
                    held.setdefault(field, c[field])


def _finish_entry(entry: dict[str, Any]) -> dict[str, Any]:
    weight = entry.pop("_weight") or 1.0
    types, sites = entry.pop("_types"), entry.pop("sites")
    containers, holders = entry.pop("containers"), entry.pop("holders")
    entry["retained_objects_per_request"] = entry.pop("_objects") / weight
    entry["retained_bytes_per_request"] = entry.pop("_bytes") / weight
    entry["top_types"] = [
        {"type": t, "per_request": v / weight, **({"site": sites[t]} if t in sites else {})}
        for t, v in sorted(types.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
    ]
    entry["containers"] = [
        {"container": k, **holders.get(k, {}), "per_request": v / weight}
        for k, v in sorted(containers.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
    ]
    return entry


def merge_routes(workers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every route's row merged over the workers (per-request figures weighted by samples).

    >>> merge_routes([{"pid": 1, "routes": [{"route": "a", "requests": 2, "sampled": 1,
    ...     "retained_objects_per_request": 1.0, "leaking": True}]}])[0]["leaking"]
    True
    """
    merged: dict[str, dict[str, Any]] = {}
    for state in workers:
        routes = state.get("routes")
        for row in routes if isinstance(routes, list) else []:
            if isinstance(row, dict):
                name = str(row.get("route"))
                _merge_row(merged.setdefault(name, _merged_entry(name)), row, state.get("pid"))
    out = [_finish_entry(entry) for entry in merged.values()]
    out.sort(key=lambda r: (not r["leaking"], -r["retained_objects_per_request"], r["route"]))
    return out


def growth_between(timeline: list[dict[str, Any]], start: int, end: int) -> dict[str, Any]:
    """What grew between two timeline points (indexes as in a list, negative from the end).

    >>> growth_between([{"objects": 1, "time": 0}, {"objects": 5, "time": 2}], 0, -1)["objects"]
    4
    """
    a, b = timeline[start], timeline[end]

    def diff(key: str) -> int | None:
        x, y = a.get(key), b.get(key)
        if isinstance(x, int) and isinstance(y, int):
            return y - x
        return None

    ta, tb = a.get("types") or {}, b.get("types") or {}
    deltas = [(n, int(number(tb.get(n))) - int(number(ta.get(n)))) for n in set(ta) | set(tb)]
    deltas.sort(key=lambda nd: (-abs(nd[1]), nd[0]))
    return {
        "rss": diff("rss"),
        "blocks": diff("blocks"),
        "objects": diff("objects"),
        "types": [{"type": n, "delta": d} for n, d in deltas[:MAX_TYPES] if d],
        "seconds": number(b.get("time")) - number(a.get("time")),
    }
