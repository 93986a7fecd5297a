"""One self-contained HTML page for the result of ``leakscope run``.

The page has no script and loads nothing: CSS is inline, charts are inline SVG
(:mod:`leakscope.report.svg`), cycles are drawn by Graphviz ``dot`` when it is
installed and by the built-in layout otherwise.  Every text is escaped::

    write_run(data, "report.html")   # data: the dict `leakscope run --json` prints
"""

from __future__ import annotations

import html
import re
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from leakscope._files import atomic_write
from leakscope._format import BYTE_UNITS, format_bytes, format_bytes_delta
from leakscope.errors import DataError
from leakscope.render import svg

if TYPE_CHECKING:
    from leakscope.engine.model import LeakReport

__all__ = ["PAGE_CSS", "render_check", "render_run", "write_run"]


_VERDICTS = {
    "leak": ("LEAK", "Memory leaks: objects are retained and something holds them."),
    "growth": ("GROWTH", "Memory grew over the run, but no culprit was found."),
    "clean": ("CLEAN", "No leak found."),
}
_TABLE_ROWS = 25

_CSS = """
:root{--bg:#f6f7f9;--card:#fff;--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;
--red:#cf222e;--amber:#9a6700;--green:#1a7f37;--code:#f0f2f4}
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--card:#161b22;--fg:#e6edf3;
--muted:#9198a1;--line:#30363d;--red:#f85149;--amber:#d29922;--green:#3fb950;--code:#21262d}
svg{background:#fff;border-radius:6px}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);
font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif}
main{max-width:1160px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:0 0 12px}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:18px 20px;
margin:0 0 18px}
.badge{display:inline-block;padding:3px 12px;border-radius:999px;color:#fff;font-weight:700;
letter-spacing:.05em;margin-right:10px;vertical-align:middle}
.leak{background:var(--red)}.growth{background:var(--amber)}.clean{background:var(--green)}.error{background:var(--muted)}
.meta{display:grid;grid-template-columns:repeat(auto-fill,minmax(170px,1fr));gap:8px 18px;
margin:14px 0 0}
.meta div{color:var(--muted);font-size:12px}.meta b{display:block;color:var(--fg);font-size:14px;
font-weight:600;overflow-wrap:anywhere}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:14px}
svg{max-width:100%;height:auto}
table{border-collapse:collapse;width:100%;font-size:13px;table-layout:fixed}
th:first-child{width:55%}
th,td{padding:5px 8px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{color:var(--muted);font-weight:600}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
td.up{color:var(--red)}td.down{color:var(--green)}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px}
code{background:var(--code);padding:1px 5px;border-radius:4px;overflow-wrap:anywhere}
pre{background:var(--code);padding:10px 12px;border-radius:6px;overflow:auto;white-space:pre-wrap}
.culprit h3{font-size:15px;margin:0 0 6px}
.culprit{border-left:4px solid var(--red);padding:4px 0 4px 14px;margin:0 0 16px}
.hint{background:var(--code);border-radius:6px;padding:8px 12px}
.muted{color:var(--muted)}ul{margin:4px 0 8px;padding-left:20px}
.cycle{margin:0 0 16px}.cycle svg{border:1px solid var(--line);border-radius:6px}
"""

PAGE_CSS = _CSS
"""The reports' stylesheet (cards, verdict badges, tables, charts), shared by the web dashboard."""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _fail(field: str, problem: str) -> DataError:
    return DataError(f"not a leakscope run report: field {field!r} {problem}", field=field)


def _is_num(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check(data: object) -> Mapping[str, Any]:
    """``data`` if it has the shape of a ``leakscope run`` report; ``DataError`` naming the field."""
    if not isinstance(data, Mapping):
        raise DataError(f"a leakscope run report is a dict, not {type(data).__name__}")
    _check_header(data)
    _check_timeline(data)
    _check_growth(data)
    _check_culprits_and_cycles(data)
    return data


def _check_header(data: Mapping[str, Any]) -> None:
    if data.get("format") != "leakscope.run":
        raise _fail("format", "must be 'leakscope.run'")
    if data.get("version") != 1:
        raise _fail("version", "must be 1")
    argv = data.get("argv")
    if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
        raise _fail("argv", "must be a list of strings")
    if not isinstance(data.get("python"), str):
        raise _fail("python", "must be a string")
    if not isinstance(data.get("pid"), int) or isinstance(data.get("pid"), bool):
        raise _fail("pid", "must be an integer")
    for key in ("started", "elapsed"):
        value = data.get(key)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value < 1e11:
            raise _fail(key, "must be a non-negative number")
    code = data.get("exit_code")
    if code is not None and (not isinstance(code, int) or isinstance(code, bool)):
        raise _fail("exit_code", "must be an integer or null")
    if data.get("error") is not None and not isinstance(data.get("error"), str):
        raise _fail("error", "must be a string or null")
    if data.get("verdict") not in _VERDICTS:
        raise _fail("verdict", "must be 'leak', 'growth' or 'clean'")


def _check_timeline(data: Mapping[str, Any]) -> None:
    timeline = data.get("timeline")
    if not isinstance(timeline, list):
        raise _fail("timeline", "must be a list")
    for i, point in enumerate(timeline):
        where = f"timeline[{i}]"
        if not isinstance(point, Mapping):
            raise _fail(where, "must be a dict")
        for key in ("time", "blocks", "objects"):
            if not _is_num(point.get(key)):
                raise _fail(f"{where}.{key}", "must be a number")
        for key in ("rss", "traced"):
            if point.get(key) is not None and not _is_num(point.get(key)):
                raise _fail(f"{where}.{key}", "must be a number or null")
        types = point.get("types", {})
        if not isinstance(types, Mapping) or not all(_is_num(v) for v in types.values()):
            raise _fail(f"{where}.types", "must map type names to counts")


def _check_growth(data: Mapping[str, Any]) -> None:
    growth = data.get("growth")
    if not isinstance(growth, Mapping):
        raise _fail("growth", "must be a Growth dict")
    for key in ("types", "containers"):
        rows = growth.get(key, [])
        if not isinstance(rows, list) or not all(
            isinstance(r, Mapping) and _is_num(r.get("delta")) and "name" in r for r in rows
        ):
            raise _fail(f"growth.{key}", "must be a list of {name, before, after, delta}")


def _check_culprits_and_cycles(data: Mapping[str, Any]) -> None:
    culprits = data.get("culprits")
    if not isinstance(culprits, list):
        raise _fail("culprits", "must be a list")
    from leakscope.engine.model import Culprit

    for i, culprit in enumerate(culprits):
        try:
            Culprit.from_dict(culprit)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise _fail(f"culprits[{i}]", f"is not a Culprit dict ({exc!r})") from None
    cycles = data.get("cycles")
    if cycles is not None:
        from leakscope.cycles import CycleReport

        if not isinstance(cycles, dict):
            raise _fail("cycles", "must be a CycleReport dict or null")
        try:
            CycleReport.from_dict(cycles)
        except ValueError as exc:
            raise _fail("cycles", f"is not a CycleReport dict ({exc})") from None


def _signed(n: float) -> str:
    return f"{n:+,.0f}" if n == int(n) else f"{n:+,.2f}"


def _summary(data: Mapping[str, Any]) -> str:
    badge, sentence = _VERDICTS[data["verdict"]]
    growth = data["growth"]
    program = " ".join(data["argv"]) or "(no program)"
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(data["started"]))
    code = data["exit_code"]
    facts = [
        ("Program", program),
        ("Python", data["python"]),
        ("PID", str(data["pid"])),
        ("Started", started),
        ("Elapsed", f"{data['elapsed']:.2f} s"),
        ("Exit code", "n/a" if code is None else str(code)),
        ("RSS growth", format_bytes_delta(growth.get("rss"))),
        ("Objects growth", _signed(growth.get("objects", 0) or 0)),
        ("Blocks growth", _signed(growth.get("blocks", 0) or 0)),
    ]
    meta = "".join(f"<div>{_e(k)}<b>{_e(v)}</b></div>" for k, v in facts)
    parts = [
        '<section class="card" id="summary">',
        f'<h1><span class="badge {data["verdict"]}" id="verdict">{badge}</span>'
        f"<code>{_e(program)}</code></h1>",
        f"<p>{_e(sentence)}</p>",
        f'<div class="meta">{meta}</div>',
    ]
    if data.get("error"):
        parts.append(f'<h2 style="margin-top:14px">Error</h2><pre>{_e(data["error"])}</pre>')
    notes = growth.get("notes") or []
    parts.extend(f'<p class="muted">Note: {_e(n)}</p>' for n in notes)
    parts.append("</section>")
    return "\n".join(parts)


def _in_unit(
    series: Mapping[str, list[tuple[float, float]]],
) -> tuple[dict[str, list[tuple[float, float]]], str]:
    """Byte series scaled to one unit (KiB, MiB...) so the chart's ticks are round in it."""
    values = [abs(y) for points in series.values() for _, y in points]
    top = max(values, default=0.0)
    unit, scale = next(((u, s) for u, s in BYTE_UNITS if top >= s), ("B", 1))
    scaled = {name: [(x, y / scale) for x, y in points] for name, points in series.items()}
    return scaled, unit


def _charts(timeline: Sequence[Mapping[str, Any]]) -> str:
    if not timeline:
        return '<section class="card"><h2>Timeline</h2><p class="muted">No samples.</p></section>'

    def column(key: str) -> list[tuple[float, float]]:
        return [(p["time"], p[key]) for p in timeline if p.get(key) is not None]

    memory = {"RSS": column("rss"), "traced": column("traced")}
    memory = {k: v for k, v in memory.items() if v}
    scaled, unit = _in_unit(memory)
    names: dict[str, float] = {}
    for point in timeline:
        for name, count in point.get("types", {}).items():
            names[name] = max(names.get(name, 0.0), float(count))
    top = sorted(names, key=lambda n: (-names[n], n))[:6]
    types = {n: [(p["time"], p.get("types", {}).get(n)) for p in timeline] for n in top}
    charts = [
        svg.line_chart(
            scaled,
            title="Memory",
            x_label="time since start",
            y_format=lambda v: f"{v:,.6g} {unit}",
            width=540,
        ),
        svg.line_chart(
            {"blocks": column("blocks"), "objects": column("objects")},
            title="Allocated blocks and tracked objects",
            x_label="time since start",
            width=540,
        ),
        svg.line_chart(
            types,
            title="Top types (live objects)",
            x_label="time since start",
            width=540,
        ),
    ]
    return (
        '<section class="card" id="timeline"><h2>Timeline</h2><div class="charts">'
        + "".join(f"<div>{c}</div>" for c in charts)
        + "</div></section>"
    )


def _count(value: object) -> str:
    return f"{value:,}" if _is_num(value) else "n/a"


def _delta_rows(rows: Sequence[Mapping[str, Any]], kind: bool = False) -> str:
    out = []
    for row in rows[:_TABLE_ROWS]:
        delta = row["delta"]
        cls = "up" if delta > 0 else "down"
        extra = (
            f' <span class="muted">({_e(row["kind"])})</span>' if kind and row.get("kind") else ""
        )
        out.append(
            f"<tr><td><code>{_e(row['name'])}</code>{extra}</td>"
            f'<td class="n">{_e(_count(row.get("before")))}</td>'
            f'<td class="n">{_e(_count(row.get("after")))}</td>'
            f'<td class="n {cls}">{_e(_signed(delta))}</td></tr>'
        )
    if len(rows) > _TABLE_ROWS:
        out.append(f'<tr><td colspan="4" class="muted">{len(rows) - _TABLE_ROWS} more</td></tr>')
    return "".join(out)


def _growth(growth: Mapping[str, Any]) -> str:
    types = growth.get("types", [])
    head = '<tr><th>{}</th><th class="n">before</th><th class="n">after</th><th class="n">change</th></tr>'
    parts = ['<section class="card" id="growth"><h2>Growth, first to last snapshot</h2>']
    if types:
        bars = [(r["name"], float(r["delta"])) for r in types[:12]]
        parts.append(svg.bar_chart(bars, title="Largest changes by type", width=760))
        increased = [r for r in types if r["delta"] > 0]
        decreased = [r for r in types if r["delta"] < 0]
        for label, rows in (("Increased", increased), ("Decreased", decreased)):
            if rows:
                parts.append(
                    f"<h3>{label}</h3><table>{head.format('type')}{_delta_rows(rows)}</table>"
                )
    containers = growth.get("containers", [])
    if containers:
        parts.append(
            f"<h3>Module and class containers</h3><table>{head.format('container')}"
            f"{_delta_rows(containers, kind=True)}</table>"
        )
    if not types and not containers:
        parts.append('<p class="muted">No type count or container length changed.</p>')
    parts.append("</section>")
    return "\n".join(parts)


def _culprits(culprits: Sequence[Mapping[str, Any]], per: str = "call") -> str:
    """The culprits card; rates are ``per`` call (a check) or interval (a program run)."""
    parts = ['<section class="card" id="culprits"><h2>Culprits</h2>']
    if not culprits:
        parts.append('<p class="muted">No culprit.</p>')
    for c in culprits:
        name = ", ".join(c.get("types", [])) or c["kind"]
        rate = f"{c['per_call']:,.2f} {c.get('unit', 'objects')} per {per}"
        if c.get("bytes_per_call") is not None:
            rate += f", {format_bytes(c['bytes_per_call'])} per {per}"
        parts.append(
            f'<div class="culprit"><h3><code>{_e(name)}</code> '
            f'<span class="muted">{_e(rate)} ({_e(c["kind"])})</span></h3>'
        )
        related = c.get("related") or []
        if related:
            items = ", ".join(f"<code>{_e(n)}</code> {_e(f'{r:,.2f}')}" for n, r in related)
            parts.append(f"<p>Leaks along with it: {items}</p>")
        for title, key in (("Held by", "holders"), ("Allocated at", "allocated_at")):
            values = c.get(key) or []
            if values:
                items = "".join(
                    f"<li><code>{_e(v['description'] if isinstance(v, Mapping) else v)}</code></li>"
                    for v in values
                )
                parts.append(f"<p><b>{title}</b></p><ul>{items}</ul>")
        parts.extend(f'<p class="muted">{_e(n)}</p>' for n in c.get("notes") or [])
        if c.get("hint"):
            parts.append(f'<p class="hint">Hint: {_e(c["hint"])}</p>')
        parts.append("</div>")
    parts.append("</section>")
    return "\n".join(parts)


def _dot_svg(dot_text: str) -> str | None:
    """``dot_text`` rendered by Graphviz as an inline ``<svg>``, or None without ``dot``."""
    binary = shutil.which("dot")
    if binary is None:
        return None
    try:
        proc = subprocess.run(
            [binary, "-Tsvg"],
            input=dot_text,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    start = proc.stdout.find("<svg")
    if proc.returncode != 0 or start < 0:
        return None
    body = re.sub(r"<!--.*?-->", "", proc.stdout[start:], flags=re.S)
    return body.replace("<svg ", '<svg role="img" class="ls-dot" ', 1)


def _cycles(cycles: Mapping[str, Any] | None) -> str:
    from leakscope._dot import cycle_dot
    from leakscope.cycles import CycleReport

    parts = ['<section class="card" id="cycles"><h2>Reference cycles</h2>']
    if cycles is None:
        parts.append('<p class="muted">Cycles were not looked for.</p></section>')
        return "\n".join(parts)
    report = CycleReport.from_dict(dict(cycles))
    parts.append(f"<p>{_e(str(report).splitlines()[0])}</p>")
    for cycle in report.cycles[:10]:
        caption = f"{cycle.title}: x{cycle.count}"
        drawn = _dot_svg(cycle_dot("", [(caption, cycle.ring)]))
        if drawn is None:
            nodes = [(str(i), tp) for i, (tp, _label) in enumerate(cycle.ring)]
            edges = [
                (str(i), str((i + 1) % len(cycle.ring)), label)
                for i, (_tp, label) in enumerate(cycle.ring)
            ]
            drawn = svg.graph(nodes, edges, title=caption)
        fin = " <b>has __del__</b>" if cycle.has_finalizer else ""
        parts.append(f'<div class="cycle"><p><code>{_e(cycle.text)}</code>{fin}</p>{drawn}</div>')
    if len(report.cycles) > 10:
        parts.append(f'<p class="muted">{len(report.cycles) - 10} more kinds of cycle</p>')
    parts.append("</section>")
    return "\n".join(parts)


def _page(title: str, body: Sequence[str]) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title>"
        f"<style>{_CSS}</style></head><body><main>\n"
        + "\n".join(body)
        + '\n<p class="muted">Generated by leakscope.</p></main></body></html>\n'
    )


def render_run(data: Mapping[str, Any]) -> str:
    """The HTML page for a ``leakscope run`` report (the dict ``leakscope run --json`` prints).

    Raises ``ValueError`` naming the field when ``data`` does not have that shape.
    """
    data = _check(data)
    program = " ".join(data["argv"]) or "program"
    body = [
        _summary(data),
        _charts(data["timeline"]),
        _culprits(data["culprits"], per="interval"),
        _growth(data["growth"]),
        _cycles(data["cycles"]),
    ]
    return _page(f"leakscope: {data['verdict']} in {program}", body)


def write_run(data: Mapping[str, Any], path: str | Path) -> Path:
    """Write :func:`render_run`'s page to ``path`` (UTF-8, atomically) and return the path."""
    target = Path(path)
    atomic_write(target, render_run(data))
    return target


def render_check(report: LeakReport) -> str:
    """The HTML page for a :class:`~leakscope.LeakReport` (the result of ``check()``)."""
    from leakscope.engine.model import LeakReport

    if not isinstance(report, LeakReport):
        raise TypeError(f"render_check() takes a LeakReport, not {type(report).__name__}")
    if report.error is not None:
        verdict, badge, sentence = "error", "ERROR", "No verdict: the function raised."
    elif report.leaked:
        verdict, badge, sentence = "leak", "LEAK", "The function leaks: every call retains memory."
    else:
        verdict, badge, sentence = "clean", "CLEAN", "No leak found."
    facts = [
        ("Retained per call", str(report.per_call)),
        ("Measured calls", f"{report.calls:,} in {len(report.runs)} runs"),
        ("Warm-up calls", f"{report.warmup:,}"),
        ("Time", f"{report.seconds:.2f} s"),
    ]
    meta = "".join(f"<div>{_e(k)}<b>{_e(v)}</b></div>" for k, v in facts)
    summary = [
        '<section class="card" id="summary">',
        f'<h1><span class="badge {verdict}" id="verdict">{badge}</span>'
        f"<code>{_e(report.function)}</code></h1>",
        f"<p>{_e(sentence)}</p>",
        f'<div class="meta">{meta}</div>',
    ]
    if report.error is not None:
        summary.append(f'<h2 style="margin-top:14px">Error</h2><pre>{_e(report.error)}</pre>')
    summary.extend(f'<p class="muted">Note: {_e(n)}</p>' for n in report.notes)
    summary.extend(
        f'<p class="muted">Settled (grew early, then stopped): {_e(s)}</p>' for s in report.settled
    )
    summary.append("</section>")
    body = ["\n".join(summary)]
    if report.runs:
        bars = [
            (f"run {i} ({run.calls:,} calls)", float(run.objects))
            for i, run in enumerate(report.runs, 1)
        ]
        chart = svg.bar_chart(bars, title="Tracked objects retained by each run", width=760)
        body.append(f'<section class="card" id="runs"><h2>Runs</h2>{chart}</section>')
    body.append(_culprits([c.to_dict() for c in report.culprits]))
    return _page(f"leakscope: {verdict} in {report.function}", body)
