"""The dashboard and login pages of the web endpoints: self-contained HTML, no script.

::

    dashboard_page(workers, merge_routes(workers))   # every worker's state -> HTML
    login_page("/_leakscope/login", failed=False)

Every value from a state is escaped; states read from files are untrusted and every
field is checked before use.
"""

from __future__ import annotations

import html
import time
from typing import Any

from leakscope._format import format_bytes
from leakscope.web.status import number

__all__ = ["dashboard_page", "login_page"]

_MAX_SERIES = 8  # routes drawn in the retention-over-time chart
_Series = dict[str, list[tuple[float, float]]]

_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;
margin:1.5em;color:#222;max-width:70em}
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left;font-size:.9em}
th{background:#f4f4f4}td.n{text-align:right;font-variant-numeric:tabular-nums}
.leak{color:#b00020;font-weight:600}.ok{color:#2e7d32}.muted{color:#777}
"""


def _size(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "-"
    return format_bytes(value)


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>"
        f"<body>{body}</body></html>"
    )


def login_page(action: str, failed: bool) -> str:
    """The sign-in form (posts ``token`` to ``action``); ``failed`` adds "Wrong token."."""
    note = '<p class="leak">Wrong token.</p>' if failed else ""
    return _page(
        "leakscope: sign in",
        "<h1>leakscope</h1><p>This dashboard needs the leakscope token.</p>"
        f'{note}<form method="post" action="{html.escape(action)}">'
        '<label>Token <input type="password" name="token" autocomplete="off" required>'
        '</label> <button type="submit">Open</button></form>',
    )


def _worker_rows(workers: list[dict[str, Any]]) -> str:
    esc = html.escape
    rows = []
    for w in workers:
        routes = w.get("routes")
        leaking = [
            str(r.get("route"))
            for r in (routes if isinstance(routes, list) else [])
            if isinstance(r, dict) and r.get("leaking") is True
        ]
        growth = w.get("growth") if isinstance(w.get("growth"), dict) else {}
        assert isinstance(growth, dict)
        state = "alive" if w.get("alive", True) else "exited"
        rows.append(
            f'<tr class="worker"><td class="n pid">{esc(str(w.get("pid")))}</td>'
            f"<td>{esc(state)}</td>"
            f'<td class="n">{int(number(w.get("requests"))):,}</td>'
            f'<td class="n">{int(number(w.get("sampled"))):,}</td>'
            f'<td class="n">{esc(_size(w.get("rss")))}</td>'
            f'<td class="n">{esc(_size(growth.get("rss")))}</td>'
            f'<td class="n">{int(number(growth.get("blocks"))):,}</td>'
            f'<td class="{"leak" if leaking else "ok"}">'
            f"{esc(', '.join(leaking) or 'none')}</td></tr>"
        )
    return "".join(rows)


def _series(workers: list[dict[str, Any]]) -> tuple[_Series, _Series, _Series]:
    """RSS, blocks and per-route retention over time: a point per timeline entry."""
    rss: _Series = {}
    blocks: _Series = {}
    retained: _Series = {}
    for w in workers:
        timeline = w.get("timeline")
        label = f"pid {w.get('pid')}"
        for p in timeline if isinstance(timeline, list) else []:
            if not isinstance(p, dict):
                continue
            t = number(p.get("time"))
            if isinstance(p.get("rss"), int):
                rss.setdefault(label, []).append((t, float(p["rss"])))
            blocks.setdefault(label, []).append((t, number(p.get("blocks"))))
            point_routes = p.get("routes")
            for name, r in point_routes.items() if isinstance(point_routes, dict) else ():
                if isinstance(r, dict):
                    key = f"{name} ({label})" if len(workers) > 1 else str(name)
                    retained.setdefault(key, []).append((t, number(r.get("objects"))))
    top = sorted(retained, key=lambda k: (-retained[k][-1][1], k))[:_MAX_SERIES]
    return rss, blocks, {k: retained[k] for k in top}


def _route_rows(routes: list[dict[str, Any]]) -> str:
    esc = html.escape
    rows = []
    for r in routes:
        types = ", ".join(f"{t['type']} ({t['per_request']:.2g}/req)" for t in r["top_types"][:3])
        rows.append(
            f'<tr class="route"><td>{esc(r["route"])}</td>'
            f'<td class="{"leak" if r["leaking"] else "ok"}">'
            f"{'leaking' if r['leaking'] else 'no'}</td>"
            f'<td class="n">{r["requests"]:,}</td><td class="n">{r["sampled"]:,}</td>'
            f'<td class="n">{r["retained_objects_per_request"]:.2f}</td>'
            f'<td class="n">{esc(_size(r["retained_bytes_per_request"]))}</td>'
            f"<td>{esc(types) or '<span class=muted>-</span>'}</td></tr>"
        )
    return "".join(rows)


def dashboard_page(workers: list[dict[str, Any]], routes: list[dict[str, Any]]) -> str:
    """The dashboard: workers, memory over time, routes (``routes`` from ``merge_routes``)."""
    from leakscope.render.svg import bar_chart, line_chart

    rss, blocks, retained = _series(workers)
    bars = [(str(r["route"]), float(r["retained_objects_per_request"])) for r in routes[:20]]
    generated = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    body = [
        "<h1>leakscope: live service</h1>",
        f'<p class="muted">{len(workers)} worker(s); generated {html.escape(generated)}</p>',
        "<h2>Workers</h2><table><thead><tr><th>pid</th><th>state</th><th>requests</th>"
        "<th>sampled</th><th>RSS</th><th>RSS growth</th><th>blocks growth</th>"
        f"<th>leaking routes</th></tr></thead><tbody>{_worker_rows(workers)}</tbody></table>",
        "<h2>Memory over time</h2>",
        line_chart(rss, title="Resident memory (RSS) per worker", y_format=_size),
        line_chart(blocks, title="Allocated blocks per worker"),
        line_chart(retained, title="Retained objects per request over time, by route"),
        "<h2>Routes</h2>",
        bar_chart(bars, title="Retained objects per request, by route"),
        "<table><thead><tr><th>route</th><th>leaking</th><th>requests</th><th>sampled</th>"
        "<th>objects/req</th><th>bytes/req</th><th>top retained types</th></tr></thead>"
        f"<tbody>{_route_rows(routes)}</tbody></table>",
    ]
    return _page("leakscope dashboard", "".join(body))
