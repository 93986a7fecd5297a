"""The dashboard and login pages of the web endpoints: self-contained HTML, no script.

::

    dashboard_page(workers, merge_routes(workers))   # every worker's state -> HTML
    login_page("/_leakscope/login", failed=False)

They share the look of leakscope's HTML reports (:data:`leakscope.render.html.PAGE_CSS`):
a summary card with a verdict badge, a card per leaking route (what it retains per
request, where that was allocated, what holds it and how to fix it), the workers, charts
with a point per timeline entry, and every route.  Every value from a state is escaped;
states read from files are untrusted and every field is checked before use.
"""

from __future__ import annotations

import html
import time
from collections.abc import Iterable
from typing import Any

from leakscope._format import format_bytes
from leakscope.render.html import PAGE_CSS
from leakscope.render.svg import bar_chart, line_chart
from leakscope.web.status import number

__all__ = ["dashboard_page", "login_page"]

_MAX_SERIES = 8  # routes drawn in the retention-over-time chart
_Series = dict[str, list[tuple[float, float]]]

_CSS = """
.login{max-width:420px;margin:12vh auto}
.login form{display:flex;gap:8px;margin-top:12px}
.login input{flex:1;padding:7px 10px;border:1px solid var(--line);border-radius:6px;
background:var(--card);color:var(--fg);font:inherit}
.login button{padding:7px 16px;border:0;border-radius:6px;background:var(--fg);color:var(--card);
font:inherit;font-weight:600;cursor:pointer}
.warn{color:var(--red);font-weight:600}
table.wide th:first-child{width:auto}
.small{font-size:12px}
"""


def _e(value: object) -> str:
    return html.escape(str(value))


def _size(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "-"
    return format_bytes(value)


def _signed_size(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "-"
    return ("+" if value > 0 else "") + format_bytes(value)


def _page(title: str, body: Iterable[str]) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{PAGE_CSS}{_CSS}</style></head><body><main>\n"
        + "\n".join(body)
        + "\n</main></body></html>\n"
    )


def _badge(leaking: bool) -> str:
    return (
        '<span class="badge leak">LEAK</span>'
        if leaking
        else '<span class="badge clean">CLEAN</span>'
    )


def login_page(action: str, failed: bool) -> str:
    """The sign-in form (posts ``token`` to ``action``); ``failed`` adds "Wrong token."."""
    note = '<p class="warn" id="failed">Wrong token.</p>' if failed else ""
    return _page(
        "leakscope: sign in",
        [
            '<section class="card login" id="login"><h1>leakscope</h1>',
            '<p class="muted">This dashboard needs the leakscope token (LEAKSCOPE_TOKEN).</p>',
            note,
            f'<form method="post" action="{_e(action)}">'
            '<input type="password" name="token" autocomplete="off" required '
            'aria-label="Token" placeholder="Token"><button type="submit">Open</button></form>',
            "</section>",
        ],
    )


def _leaking_names(worker: dict[str, Any]) -> list[str]:
    routes = worker.get("routes")
    return [
        str(r.get("route"))
        for r in (routes if isinstance(routes, list) else [])
        if isinstance(r, dict) and r.get("leaking") is True
    ]


def _summary(workers: list[dict[str, Any]], routes: list[dict[str, Any]]) -> str:
    leaking = [r for r in routes if r["leaking"]]
    alive = [w for w in workers if w.get("alive", True)]
    growth = [w.get("growth") for w in alive if isinstance(w.get("growth"), dict)]
    rss_growth = sum(number(g.get("rss")) for g in growth if isinstance(g, dict))
    facts = [
        (
            "Workers",
            f"{len(alive)} alive"
            + (f", {len(workers) - len(alive)} exited" if len(alive) < len(workers) else ""),
        ),
        ("Requests", f"{sum(int(number(w.get('requests'))) for w in workers):,}"),
        ("Sampled", f"{sum(int(number(w.get('sampled'))) for w in workers):,}"),
        ("RSS", _size(sum(number(w.get("rss")) for w in alive))),
        ("RSS growth", _signed_size(rss_growth)),
        ("Routes", f"{len(routes)}"),
        ("Generated", time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())),
    ]
    if leaking:
        sentence = f"{len(leaking)} route(s) keep objects from every request: " + ", ".join(
            r["route"] for r in leaking[:5]
        )
    else:
        sentence = "No route keeps objects from its requests (so far)."
    meta = "".join(f"<div>{_e(k)}<b>{_e(v)}</b></div>" for k, v in facts)
    return (
        '<section class="card" id="summary">'
        f'<h1><span id="verdict">{_badge(bool(leaking))}</span>leakscope: live service</h1>'
        f'<p>{_e(sentence)}</p><div class="meta">{meta}</div></section>'
    )


def _types_table(row: dict[str, Any]) -> str:
    rows = "".join(
        f"<tr><td><code>{_e(t['type'])}</code></td>"
        f'<td class="n">{number(t.get("per_request")):.2g}</td>'
        f"<td>{'<code>' + _e(t['site']) + '</code>' if isinstance(t.get('site'), str) else '<span class=muted>-</span>'}</td></tr>"
        for t in row["top_types"][:5]
    )
    return (
        '<table class="wide"><thead><tr><th>retained type</th><th class="n">per request</th>'
        f"<th>allocated at</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def _holders(row: dict[str, Any]) -> str:
    parts = []
    for c in row.get("containers") or []:
        if not isinstance(c, dict):
            continue
        kind = f" ({_e(c['kind'])})" if c.get("kind") else ""
        parts.append(
            f'<p class="holder">Held by <code>{_e(c.get("path") or c.get("container"))}</code>{kind}, '
            f"+{number(c.get('per_request')):.2g} entries per request</p>"
        )
        if c.get("hint"):
            parts.append(f'<p class="hint">Fix: {_e(c["hint"])}</p>')
    if not parts:
        parts.append(
            '<p class="muted">No module or class container grew: what holds them is not a '
            "global (take a snapshot, or run leakscope.why_alive on one).</p>"
        )
    return "".join(parts)


def _leak_cards(routes: list[dict[str, Any]]) -> str:
    cards = []
    for row in routes:
        if not row["leaking"]:
            continue
        cards.append(
            '<div class="culprit route-leak">'
            f"<h3>{_badge(True)}<code>{_e(row['route'])}</code></h3>"
            f"<p>Each request keeps {row['retained_objects_per_request']:.2g} objects "
            f"({_e(_size(row['retained_bytes_per_request']))}); {row['sampled']:,} of "
            f"{row['requests']:,} requests measured.</p>"
            f"{_types_table(row)}{_holders(row)}</div>"
        )
    if not cards:
        return ""
    return (
        '<section class="card" id="leaks"><h2>Leaking routes</h2>' + "".join(cards) + "</section>"
    )


def _worker_rows(workers: list[dict[str, Any]]) -> str:
    rows = []
    for w in workers:
        leaking = _leaking_names(w)
        growth = w.get("growth") if isinstance(w.get("growth"), dict) else {}
        assert isinstance(growth, dict)
        state = "alive" if w.get("alive", True) else "exited"
        rows.append(
            f'<tr class="worker"><td class="pid">{_e(w.get("pid"))}</td>'
            f"<td>{_e(state)}</td>"
            f'<td class="n">{int(number(w.get("requests"))):,}</td>'
            f'<td class="n">{int(number(w.get("sampled"))):,}</td>'
            f'<td class="n">{_e(_size(w.get("rss")))}</td>'
            f'<td class="n">{_e(_signed_size(growth.get("rss")))}</td>'
            f'<td class="n">{int(number(growth.get("blocks"))):+,}</td>'
            f"<td>{_badge(bool(leaking))} <span class=small>{_e(', '.join(leaking))}</span></td></tr>"
        )
    return (
        '<section class="card" id="workers"><h2>Workers</h2><table class="wide"><thead><tr>'
        '<th>pid</th><th>state</th><th class="n">requests</th><th class="n">sampled</th>'
        '<th class="n">RSS</th><th class="n">RSS growth</th><th class="n">blocks growth</th>'
        f"<th>verdict</th></tr></thead><tbody>{''.join(rows)}</tbody></table></section>"
    )


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


def _charts(workers: list[dict[str, Any]]) -> str:
    rss, blocks, retained = _series(workers)
    charts = [
        line_chart(rss, title="Resident memory (RSS) per worker", y_format=_size, width=540),
        line_chart(blocks, title="Allocated blocks per worker", width=540),
        line_chart(retained, title="Retained objects per request over time, by route", width=540),
    ]
    return (
        '<section class="card" id="timeline"><h2>Memory over time</h2><div class="charts">'
        + "".join(f"<div>{c}</div>" for c in charts)
        + "</div></section>"
    )


def _routes(routes: list[dict[str, Any]]) -> str:
    rows = []
    for r in routes:
        types = ", ".join(f"{t['type']} ({t['per_request']:.2g}/req)" for t in r["top_types"][:3])
        rows.append(
            f'<tr class="route"><td><code>{_e(r["route"])}</code></td>'
            f"<td>{_badge(r['leaking'])}</td>"
            f'<td class="n">{r["requests"]:,}</td><td class="n">{r["sampled"]:,}</td>'
            f'<td class="n">{r["retained_objects_per_request"]:.2f}</td>'
            f'<td class="n">{_e(_size(r["retained_bytes_per_request"]))}</td>'
            f"<td>{_e(types) or '<span class=muted>-</span>'}</td></tr>"
        )
    bars = [(str(r["route"]), float(r["retained_objects_per_request"])) for r in routes[:20]]
    return (
        '<section class="card" id="routes"><h2>Routes</h2>'
        + bar_chart(bars, title="Retained objects per request, by route", width=720)
        + '<table class="wide"><thead><tr><th>route</th><th>verdict</th>'
        '<th class="n">requests</th><th class="n">sampled</th><th class="n">objects/req</th>'
        '<th class="n">bytes/req</th><th>top retained types</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></section>"
    )


def _warnings(workers: list[dict[str, Any]]) -> str:
    """The workers' warnings (``DEBUG=True``...), each once."""
    seen = {w for s in workers if isinstance(s.get("warnings"), list) for w in s["warnings"]}
    texts = sorted(w for w in seen if isinstance(w, str))
    return "".join(f'<p class="warn">{_e(t)}</p>' for t in texts)


def dashboard_page(workers: list[dict[str, Any]], routes: list[dict[str, Any]]) -> str:
    """The dashboard: summary, leaking routes, workers, charts, routes (``routes`` merged)."""
    body = [
        _warnings(workers),
        _summary(workers, routes),
        _leak_cards(routes),
        _worker_rows(workers),
        _charts(workers),
        _routes(routes),
        '<p class="muted">Generated by leakscope.</p>',
    ]
    return _page("leakscope dashboard", body)
