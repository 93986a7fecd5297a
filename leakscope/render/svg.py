"""Self-contained SVG charts: line charts, bar charts and small directed graphs.

Each function returns one ``<svg>`` element as a string, with no script and no
external resource, every text XML-escaped, ``role="img"`` and a ``<title>``::

    line_chart({"RSS": [(0.0, 1e6), (1.0, 2e6)]}, title="Resident memory")
    bar_chart([("dict", 120.0), ("list", -4.0)], title="Growth by type")
    graph([("a", "Node"), ("b", "dict")], [("a", "b", "__dict__"), ("b", "a", "['self']")])

Colours come from the Okabe-Ito palette, which stays distinguishable with the
common forms of colour blindness.  Only the stdlib is used.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from xml.sax.saxutils import escape as _xml_escape

__all__ = ["PALETTE", "bar_chart", "graph", "line_chart"]

PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
"""Okabe-Ito colours (colour-blind safe), in the order series are drawn."""

_FONT = "system-ui,-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif"
_TEXT = "#444"
_GRID = "#ddd"
_CHAR_W = 0.6  # approximate glyph width as a fraction of the font size


def _esc(text: object) -> str:
    """``text`` escaped for XML text and double-quoted attributes."""
    return _xml_escape(str(text), {'"': "&quot;"})


def _num(value: float) -> str:
    """A coordinate with at most one decimal."""
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _default_format(value: float) -> str:
    """``1,234`` for whole numbers, ``1.23`` or ``1.2e-05`` otherwise."""
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}"
    if abs(value) >= 0.01:
        return f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return f"{value:.2g}"


def _open(width: float, height: float, title: str, kind: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="ls-{kind}" role="img" '
        f'width="{_num(width)}" height="{_num(height)}" '
        f'viewBox="0 0 {_num(width)} {_num(height)}" font-family="{_FONT}" font-size="12">',
        f"<title>{_esc(title)}</title>",
    ]


def _truncate(text: str, chars: int) -> str:
    chars = max(chars, 2)
    return text if len(text) <= chars else text[: chars - 1] + "\u2026"


_LEGEND_ROW = 16  # pixels per row of legend entries


def _legend(
    names: Sequence[str], width: float, item_width: Callable[[str], float]
) -> list[tuple[str, float, int]]:
    """Legend entries laid out in rows within ``width``: ``(label, x, row)`` per name.

    A name is shortened only when it alone would not fit on a row; otherwise the
    entries wrap onto as many rows as they need.

    >>> _legend(["a" * 10, "b" * 10, "c" * 10], 200, lambda s: 20 + 6 * len(s))
    [('aaaaaaaaaa', 8.0, 0), ('bbbbbbbbbb', 88.0, 0), ('cccccccccc', 8.0, 1)]
    """
    out: list[tuple[str, float, int]] = []
    x, row, right = 8.0, 0, width - 8
    for name in names:
        label = name
        while len(label) > 2 and 8 + item_width(label) > right:
            label = _truncate(name, len(label) - 1)
        if x > 8 and x + item_width(label) > right:
            x, row = 8.0, row + 1
        out.append((label, x, row))
        x += item_width(label)
    return out


def _finite(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering ``low..high`` (steps of 1, 2, 2.5 or 5 times a power of ten)."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return [0.0]
    if high < low:
        low, high = high, low
    if high == low:
        pad = abs(high) * 0.1 or 1.0
        low, high = low - pad, high + pad
    raw = (high - low) / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = power * 10
    for mult in (1, 2, 2.5, 5, 10):
        if raw <= mult * power:
            step = mult * power
            break
    start = math.floor(low / step) * step
    ticks: list[float] = []
    value = start
    while value < high + step * 0.5 and len(ticks) < 50:
        ticks.append(round(value, 12))
        value += step
    if ticks[-1] < high:
        ticks.append(round(ticks[-1] + step, 12))
    return ticks


def _time_format(span: float, unix: bool) -> Callable[[float], str]:
    if unix:
        import time

        if span >= 2 * 86400:
            return lambda t: time.strftime("%m-%d %H:%M", time.gmtime(t))
        if span >= 120:
            return lambda t: time.strftime("%H:%M", time.gmtime(t))
        return lambda t: time.strftime("%H:%M:%S", time.gmtime(t))
    if span >= 7200:
        return lambda t: f"{t / 3600:.3g} h"
    if span >= 120:
        return lambda t: f"{t / 60:.3g} min"
    return lambda t: f"{t:.3g} s"


Run = list[tuple[float, float]]


def _runs(points: Sequence[tuple[float, float]]) -> list[Run]:
    """The unbroken runs of finite ``(x, y)`` points (a ``None``, NaN or odd point breaks one).

    >>> _runs([(0, 1), (1, None), (2, 3), (3, 4)])
    [[(0.0, 1.0)], [(2.0, 3.0), (3.0, 4.0)]]
    """
    runs: list[Run] = [[]]
    for point in points:
        try:
            x, y = _finite(point[0]), _finite(point[1])
        except (TypeError, IndexError, KeyError):
            x = y = None
        if x is None or y is None:
            if runs[-1]:
                runs.append([])
            continue
        runs[-1].append((x, y))
    return [r for r in runs if r]


def line_chart(
    series: Mapping[str, Sequence[tuple[float, float]]],
    *,
    title: str,
    x_label: str = "",
    y_format: Callable[[float], str] = _default_format,
    width: int = 640,
    height: int = 240,
) -> str:
    """A line chart of named series of ``(x, y)`` points, with axes, ticks and a legend.

    ``x`` is in seconds (since a start, or unix time when the values look like
    one, drawn as UTC clock times); ``y`` labels go through ``y_format``.  Points
    whose ``x`` or ``y`` is ``None`` or NaN are skipped (the line breaks there);
    an empty chart says "no data".
    """
    width, height = max(int(width), 160), max(int(height), 100)
    cleaned = [(str(name), _runs(points)) for name, points in series.items()]
    xs = [x for _, runs in cleaned for run in runs for x, _ in run]
    ys = [y for _, runs in cleaned for run in runs for _, y in run]
    legend = _legend(
        [name for name, _ in cleaned], width, lambda label: 28 + len(label) * 11 * _CHAR_W
    )
    legend_h = (max(row for _, _, row in legend) + 1) * _LEGEND_ROW + 2 if legend else 0
    top, bottom, right = 32 + legend_h, 34 if not x_label else 46, 14
    out = _open(width, height, title, "line")
    out.append(
        f'<text x="8" y="17" font-size="13" font-weight="600" fill="{_TEXT}">{_esc(title)}</text>'
    )
    if not xs:
        out.append(
            f'<text x="{_num(width / 2)}" y="{_num(height / 2)}" text-anchor="middle" '
            f'fill="#888">no data</text>'
        )
        out.append("</svg>")
        return "\n".join(out)
    y_ticks = _nice_ticks(min(ys), max(ys), max(2, (height - top - bottom) // 40))
    y_labels = [y_format(t) for t in y_ticks]
    left = 12 + max(len(label) for label in y_labels) * 11 * _CHAR_W
    x_lo, x_hi = min(xs), max(xs)
    if x_hi == x_lo:
        x_lo, x_hi = x_lo - 1, x_hi + 1
    unix = x_lo > 1e9
    x_fmt = _time_format(x_hi - x_lo, unix)
    x_ticks = [t for t in _nice_ticks(x_lo, x_hi, max(2, int(width - left) // 90))]
    x_ticks = [t for t in x_ticks if x_lo <= t <= x_hi] or [x_lo, x_hi]
    y_lo, y_hi = y_ticks[0], y_ticks[-1]
    plot_w, plot_h = width - left - right, height - top - bottom

    def px(x: float) -> float:
        return left + (x - x_lo) / (x_hi - x_lo) * plot_w

    def py(y: float) -> float:
        return top + plot_h - (y - y_lo) / (y_hi - y_lo) * plot_h

    for tick, label in zip(y_ticks, y_labels, strict=True):
        y = py(tick)
        out.append(
            f'<line x1="{_num(left)}" y1="{_num(y)}" x2="{_num(width - right)}" y2="{_num(y)}" '
            f'stroke="{_GRID}" stroke-width="1"/>'
        )
        out.append(
            f'<text x="{_num(left - 6)}" y="{_num(y + 4)}" text-anchor="end" font-size="11" '
            f'fill="{_TEXT}">{_esc(label)}</text>'
        )
    for tick in x_ticks:
        x = px(tick)
        out.append(
            f'<line x1="{_num(x)}" y1="{_num(top + plot_h)}" x2="{_num(x)}" '
            f'y2="{_num(top + plot_h + 4)}" stroke="{_TEXT}"/>'
        )
        out.append(
            f'<text x="{_num(x)}" y="{_num(top + plot_h + 17)}" text-anchor="middle" '
            f'font-size="11" fill="{_TEXT}">{_esc(x_fmt(tick))}</text>'
        )
    out.append(
        f'<line x1="{_num(left)}" y1="{_num(top + plot_h)}" x2="{_num(width - right)}" '
        f'y2="{_num(top + plot_h)}" stroke="{_TEXT}"/>'
    )
    if x_label:
        out.append(
            f'<text x="{_num(left + plot_w / 2)}" y="{_num(height - 6)}" text-anchor="middle" '
            f'font-size="11" fill="{_TEXT}">{_esc(x_label)}</text>'
        )
    for index, (name, runs) in enumerate(cleaned):
        colour = PALETTE[index % len(PALETTE)]
        dash = ' stroke-dasharray="5 3"' if index >= len(PALETTE) else ""
        out.append(f'<g class="ls-series"><title>{_esc(name)}</title>')
        for run in runs:
            if len(run) == 1:
                x, y = run[0]
                out.append(f'<circle cx="{_num(px(x))}" cy="{_num(py(y))}" r="3" fill="{colour}"/>')
                continue
            coords = " ".join(f"{_num(px(x))},{_num(py(y))}" for x, y in run)
            out.append(
                f'<polyline points="{coords}" fill="none" stroke="{colour}" '
                f'stroke-width="2" stroke-linejoin="round"{dash}/>'
            )
        out.append("</g>")
        label, legend_x, row = legend[index]
        legend_y = 31 + row * _LEGEND_ROW
        out.append(
            f'<rect x="{_num(legend_x)}" y="{_num(legend_y)}" width="12" height="4" '
            f'fill="{colour}"/><text x="{_num(legend_x + 16)}" y="{_num(legend_y + 6)}" '
            f'font-size="11" fill="{_TEXT}">{_esc(label)}</text>'
        )
    out.append("</svg>")
    return "\n".join(out)


def bar_chart(
    bars: Sequence[tuple[str, float]],
    *,
    title: str,
    value_format: Callable[[float], str] = _default_format,
    width: int = 640,
) -> str:
    """Horizontal bars with their labels and values; negative values extend left of zero.

    Long labels are shortened with an ellipsis and keep their full text in a
    ``<title>`` tooltip.  Non-finite values are drawn as ``n/a`` with no bar.
    """
    width = max(int(width), 200)
    row_h, top = 22, 30
    rows = [(str(label), _finite(value)) for label, value in bars]
    height = top + max(len(rows), 1) * row_h + 10
    out = _open(width, height, title, "bar")
    out.append(
        f'<text x="8" y="17" font-size="13" font-weight="600" fill="{_TEXT}">{_esc(title)}</text>'
    )
    if not rows:
        out.append(f'<text x="8" y="{top + 14}" fill="#888">no data</text>')
        out.append("</svg>")
        return "\n".join(out)
    label_chars = max(8, min(40, int(width * 0.35 / (12 * _CHAR_W))))
    label_w = min(max(len(label) for label, _ in rows), label_chars) * 12 * _CHAR_W + 12
    texts = [value_format(v) if v is not None else "n/a" for _, v in rows]
    value_w = max(len(t) for t in texts) * 11 * _CHAR_W + 10
    values = [v for _, v in rows if v is not None]
    lo, hi = min([0.0, *values]), max([0.0, *values])
    span = (hi - lo) or 1.0
    left = label_w
    plot_w = max(width - left - 2 * value_w, 20)
    zero = left + value_w + (0 - lo) / span * plot_w if lo < 0 else left + (0 - lo) / span * plot_w
    scale = plot_w / span
    for index, ((label, value), text) in enumerate(zip(rows, texts, strict=True)):
        y = top + index * row_h
        shown = _truncate(label, label_chars)
        out.append('<g class="ls-bar">')
        out.append(f"<title>{_esc(label)}: {_esc(text)}</title>")
        out.append(
            f'<text x="{_num(label_w - 8)}" y="{_num(y + 15)}" text-anchor="end" '
            f'fill="{_TEXT}">{_esc(shown)}</text>'
        )
        if value is not None:
            length = abs(value) * scale
            x = zero - length if value < 0 else zero
            colour = PALETTE[5] if value < 0 else PALETTE[0]
            out.append(
                f'<rect x="{_num(x)}" y="{_num(y + 4)}" width="{_num(max(length, 1))}" '
                f'height="{row_h - 8}" rx="2" fill="{colour}"/>'
            )
            if value < 0:
                out.append(
                    f'<text x="{_num(x - 4)}" y="{_num(y + 15)}" text-anchor="end" '
                    f'font-size="11" fill="{_TEXT}">{_esc(text)}</text>'
                )
            else:
                out.append(
                    f'<text x="{_num(x + length + 4)}" y="{_num(y + 15)}" font-size="11" '
                    f'fill="{_TEXT}">{_esc(text)}</text>'
                )
        else:
            out.append(
                f'<text x="{_num(zero + 4)}" y="{_num(y + 15)}" font-size="11" '
                f'fill="#888">{_esc(text)}</text>'
            )
        out.append("</g>")
    out.append(
        f'<line x1="{_num(zero)}" y1="{top}" x2="{_num(zero)}" y2="{top + len(rows) * row_h}" '
        f'stroke="{_TEXT}"/>'
    )
    out.append("</svg>")
    return "\n".join(out)


_NODE_H = 30
_NODE_CHARS = 26
_MAX_NODES = 60


def _layers(ids: list[str], edges: list[tuple[str, str, str]]) -> list[list[str]]:
    """Nodes split into layers by longest path from a source (cycles broken by DFS order)."""
    order = {node: n for n, node in enumerate(ids)}
    back = _back_edges(ids, edges)
    succ: dict[str, list[str]] = {i: [] for i in ids}
    for src, dst, _ in edges:
        if (src, dst) not in back and src != dst and dst not in succ[src]:
            succ[src].append(dst)
    result = _longest_path_layers(ids, succ, order)
    _order_by_barycenter(result, succ, order)
    return result


def _back_edges(ids: list[str], edges: list[tuple[str, str, str]]) -> set[tuple[str, str]]:
    """The edges that close a cycle in a depth-first walk from each node in turn."""
    back: set[tuple[str, str]] = set()
    state: dict[str, int] = {}  # 1: on the walk's path, 2: done
    adjacency: dict[str, list[str]] = {i: [] for i in ids}
    for src, dst, _ in edges:
        adjacency[src].append(dst)
    for root in ids:
        if root in state:
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        state[root] = 1
        while stack:
            node, i = stack.pop()
            if i >= len(adjacency[node]):
                state[node] = 2
                continue
            stack.append((node, i + 1))
            nxt = adjacency[node][i]
            if state.get(nxt) == 1:
                back.add((node, nxt))
            elif nxt not in state:
                state[nxt] = 1
                stack.append((nxt, 0))
    return back


def _longest_path_layers(
    ids: list[str], succ: dict[str, list[str]], order: dict[str, int]
) -> list[list[str]]:
    """Each node's layer is the longest path to it from a source of the acyclic ``succ``."""
    indeg = dict.fromkeys(ids, 0)
    for dsts in succ.values():
        for dst in dsts:
            indeg[dst] += 1
    layer = dict.fromkeys(ids, 0)
    ready = [i for i in ids if indeg[i] == 0]
    while ready:
        ready.sort(key=order.__getitem__)
        node = ready.pop(0)
        for nxt in succ[node]:
            layer[nxt] = max(layer[nxt], layer[node] + 1)
            indeg[nxt] -= 1
            if indeg[nxt] == 0:
                ready.append(nxt)
    count = max(layer.values(), default=-1) + 1
    result: list[list[str]] = [[] for _ in range(count)]
    for node in ids:
        result[layer[node]].append(node)
    return result


def _order_by_barycenter(
    result: list[list[str]], succ: dict[str, list[str]], order: dict[str, int]
) -> None:
    """One downward sweep of the barycenter heuristic, in place: each node goes under the
    mean position of its parents in the layers above, which removes most crossings."""
    where: dict[str, float] = {}
    parents: dict[str, list[str]] = {i: [] for i in order}
    for src, dsts in succ.items():
        for dst in dsts:
            parents[dst].append(src)

    def centre(node: str) -> float:
        seen = [where[p] for p in parents[node] if p in where]
        return sum(seen) / len(seen) if seen else math.inf

    for row in result:
        row.sort(key=lambda node: (centre(node), order[node]))
        where.update({node: (i + 0.5) / len(row) for i, node in enumerate(row)})


def graph(
    nodes: Sequence[tuple[str, str]],
    edges: Sequence[tuple[str, str, str]],
    *,
    title: str = "",
) -> str:
    """A small directed graph: ``(id, label)`` nodes as rounded boxes, ``(src, dst, label)`` edges.

    Nodes are laid out in layers from top to bottom (longest path from the
    sources, back edges of cycles drawn curving on the side); a graph that is
    one cycle is drawn as a ring.  The layout is deterministic.  Edges naming an
    unknown node are ignored; beyond 60 nodes the rest are left out with a note.
    """
    labels: dict[str, str] = {}
    for node_id, label in nodes:
        key = str(node_id)
        if key not in labels:
            labels[key] = str(label)
    ids = list(labels)
    dropped = max(len(ids) - _MAX_NODES, 0)
    ids = ids[:_MAX_NODES]
    known = set(ids)
    edge_list = [(str(s), str(d), str(lab)) for s, d, lab in edges if str(s) in known]
    edge_list = [(s, d, lab) for s, d, lab in edge_list if d in known]
    node_w = {i: min(len(labels[i]), _NODE_CHARS) * 12 * _CHAR_W + 20 for i in ids}
    ring = len(ids) > 2 and _is_ring(ids, edge_list)
    top = 30.0 if title else 12.0
    if ring:
        pos, width, height = _ring_layout(ids, node_w, top)
    else:
        pos, width, height = _layered_layout(ids, edge_list, node_w, top)
    out = _open(width, height, title or "graph", "graph")
    out.append(
        '<defs><marker id="ls-arrow" viewBox="0 0 10 10" refX="10" refY="5" '
        'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
        f'<path d="M0,0 L10,5 L0,10 z" fill="{_TEXT}"/></marker></defs>'
    )
    if title:
        out.append(
            f'<text x="8" y="18" font-size="13" font-weight="600" fill="{_TEXT}">'
            f"{_esc(title)}</text>"
        )
    if not ids:
        out.append(f'<text x="8" y="{top + 14}" fill="#888">no nodes</text>')
    edge_labels = []
    for index, (src, dst, label) in enumerate(edge_list):
        line, text = _edge(pos, node_w, src, dst, label, index, ring, width / 2)
        out.append(line)
        edge_labels.append(text)
    for node in ids:
        x, y = pos[node]
        w = node_w[node]
        colour = PALETTE[4] if ring else PALETTE[0]
        out.append(
            f'<g class="ls-node"><title>{_esc(labels[node])}</title>'
            f'<rect x="{_num(x - w / 2)}" y="{_num(y - _NODE_H / 2)}" width="{_num(w)}" '
            f'height="{_NODE_H}" rx="8" fill="#eef5fb" stroke="{colour}" stroke-width="1.5"/>'
            f'<text x="{_num(x)}" y="{_num(y + 4)}" text-anchor="middle" fill="#222">'
            f"{_esc(_truncate(labels[node], _NODE_CHARS))}</text></g>"
        )
    out.extend(edge_labels)
    if dropped:
        out.append(
            f'<text x="8" y="{_num(height - 4)}" font-size="11" fill="#888">'
            f"{dropped} more nodes not shown</text>"
        )
    out.append("</svg>")
    return "\n".join(out)


Layout = tuple[dict[str, tuple[float, float]], float, float]  # centres, width, height
_MARGIN = 16.0


def _ring_layout(ids: list[str], node_w: Mapping[str, float], top: float) -> Layout:
    """A graph that is one cycle, its nodes around an ellipse."""
    n = len(ids)
    widest = max(node_w.values())
    radius = max(90.0, n * (widest * 0.5 + 24) / math.pi, n * 70 / (2 * math.pi))
    cx = _MARGIN + widest / 2 + radius + 60
    cy = top + _NODE_H / 2 + radius * 0.8 + 6
    pos = {}
    for k, node in enumerate(ids):
        angle = -math.pi / 2 + 2 * math.pi * k / n
        pos[node] = (cx + radius * math.cos(angle), cy + radius * 0.8 * math.sin(angle))
    return pos, 2 * cx, cy + radius * 0.8 + _NODE_H / 2 + 16


def _layered_layout(
    ids: list[str], edges: list[tuple[str, str, str]], node_w: Mapping[str, float], top: float
) -> Layout:
    """Layers from top to bottom (:func:`_layers`), each row centred."""
    layers = _layers(ids, edges)
    gap_x, gap_y = 36.0, 70.0
    rows_w = [sum(node_w[i] for i in row) + gap_x * (len(row) - 1) for row in layers]
    width = max([*rows_w, 200.0]) + 2 * _MARGIN + 80
    pos = {}
    for r, row in enumerate(layers):
        x = (width - rows_w[r]) / 2
        for node in row:
            pos[node] = (x + node_w[node] / 2, top + _NODE_H / 2 + r * gap_y)
            x += node_w[node] + gap_x
    return pos, width, top + max(len(layers), 1) * gap_y - gap_y + _NODE_H + 16


def _is_ring(ids: list[str], edges: list[tuple[str, str, str]]) -> bool:
    if len(ids) < 2 or len(edges) != len(ids):
        return False
    nxt = {}
    for src, dst, _ in edges:
        if src in nxt:
            return False
        nxt[src] = dst
    seen, node = set(), ids[0]
    while node in nxt and node not in seen:
        seen.add(node)
        node = nxt[node]
    return node == ids[0] and len(seen) == len(ids)


def _border(cx: float, cy: float, w: float, dx: float, dy: float) -> tuple[float, float]:
    """The point where a ray from a box's centre along ``(dx, dy)`` leaves the box."""
    half_w, half_h = w / 2 + 2, _NODE_H / 2 + 2
    scale = min(
        half_w / abs(dx) if dx else math.inf,
        half_h / abs(dy) if dy else math.inf,
    )
    return cx + dx * scale, cy + dy * scale


def _edge(  # noqa: PLR0917 - private helper
    pos: Mapping[str, tuple[float, float]],
    node_w: Mapping[str, float],
    src: str,
    dst: str,
    label: str,
    index: int,
    ring: bool,
    centre: float = 0.0,
) -> tuple[str, str]:
    """The edge's path, and its label (drawn later, above the nodes)."""
    (x1, y1), (x2, y2) = pos[src], pos[dst]
    anchor = "start"
    shown = _esc(_truncate(label, 24))
    tip = f"<title>{_esc(label)}</title>" if label else ""
    style = f'fill="none" stroke="{_TEXT}" stroke-width="1.3" marker-end="url(#ls-arrow)"'
    if src == dst:
        w = node_w[src]
        sx, sy = x1 + w / 2, y1 - 6
        path = f"M{_num(sx)},{_num(sy)} C{_num(sx + 40)},{_num(sy - 30)} {_num(sx + 40)},"
        path += f"{_num(sy + 42)} {_num(sx)},{_num(sy + 12)}"
        lx, ly = sx + 34, y1
    else:
        dx, dy = x2 - x1, y2 - y1
        dist = math.hypot(dx, dy) or 1.0
        # Edges that go up (back edges) or sideways bow out so they do not overlap.
        bend = 0.0 if ring or dy > 1 else 40.0 + 8 * (index % 3)
        nx, ny = -dy / dist, dx / dist
        mx, my = (x1 + x2) / 2 + nx * bend, (y1 + y2) / 2 + ny * bend
        if not ring and dy <= 1:
            mx = max(x1, x2) + node_w[src] / 2 + bend if dy < -1 else mx
        sx, sy = _border(x1, y1, node_w[src], mx - x1, my - y1)
        ex, ey = _border(x2, y2, node_w[dst], mx - x2, my - y2)
        if bend:
            path = f"M{_num(sx)},{_num(sy)} Q{_num(mx)},{_num(my)} {_num(ex)},{_num(ey)}"
            lx, ly = 0.25 * sx + 0.5 * mx + 0.25 * ex, 0.25 * sy + 0.5 * my + 0.25 * ey
        else:
            path = f"M{_num(sx)},{_num(sy)} L{_num(ex)},{_num(ey)}"
            lx, ly = (sx + ex) / 2, (sy + ey) / 2
        if ring:
            anchor = "start" if lx >= centre else "end"
        elif ex > sx + 1:
            anchor = "end"
    text = ""
    if label:
        shift = -4 if anchor == "end" else 4
        text = (
            f'<text class="ls-edge-label" x="{_num(lx + shift)}" y="{_num(ly + 4)}" '
            f'text-anchor="{anchor}" font-size="10.5" fill="{PALETTE[5]}" '
            f'stroke="#fff" stroke-width="3" paint-order="stroke">{tip}{shown}</text>'
        )
    return f'<g class="ls-edge">{tip}<path d="{path}" {style}/></g>', text
