"""The SVG charts and the HTML report of a ``leakscope run``."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import pytest

from leakscope.report import svg

_NS = "{http://www.w3.org/2000/svg}"
_HOSTILE = "</svg><script>alert('x')</script>&amp;\"<"


def _parse(text: str) -> ET.Element:
    root = ET.fromstring(text)
    assert root.tag == f"{_NS}svg"
    assert root.get("role") == "img"
    assert root.find(f"{_NS}title") is not None
    assert not list(root.iter(f"{_NS}script"))
    assert "href" not in text  # no external resource
    return root


def _texts(root: ET.Element) -> list[str]:
    return ["".join(e.itertext()) for e in root.iter(f"{_NS}text")]


def test_line_chart_draws_every_series_with_legend_and_ticks() -> None:
    series = {
        "RSS": [(float(i), 1e6 + i * 1e5) for i in range(20)],
        "blocks": [(float(i), 5e5) for i in range(20)],
    }
    root = _parse(svg.line_chart(series, title="Memory", x_label="seconds", y_format=str))
    assert len(list(root.iter(f"{_NS}polyline"))) == 2
    texts = _texts(root)
    assert "RSS" in texts and "blocks" in texts and "Memory" in texts and "seconds" in texts
    ticks = [float(t) for t in texts if t.replace(".", "").isdigit()]
    assert ticks and all(t == round(t, -5) for t in ticks)  # nice round y ticks


def test_line_chart_degenerate_inputs() -> None:
    assert "no data" in _texts(_parse(svg.line_chart({}, title="empty")))
    assert "no data" in _texts(_parse(svg.line_chart({"a": []}, title="empty series")))
    one = _parse(svg.line_chart({"a": [(5.0, 3.0)]}, title="one"))
    assert len(list(one.iter(f"{_NS}circle"))) == 1
    flat = _parse(svg.line_chart({"a": [(0.0, 7.0), (1.0, 7.0)]}, title="constant"))
    assert len(list(flat.iter(f"{_NS}polyline"))) == 1
    broken = {"a": [(0.0, 1.0), (1.0, math.nan), (2.0, 2.0), (3.0, 3.0), (None, 1.0)]}
    gapped = _parse(svg.line_chart(broken, title="gaps"))  # type: ignore[dict-item]
    assert len(list(gapped.iter(f"{_NS}polyline"))) == 1  # (2,2)-(3,3)
    assert len(list(gapped.iter(f"{_NS}circle"))) == 1  # (0,1) alone before the NaN
    unix = _parse(svg.line_chart({"a": [(1.7e9, 1.0), (1.7e9 + 600, 2.0)]}, title="clock"))
    assert any(":" in t for t in _texts(unix))


def test_bar_chart_labels_negative_values_and_truncation() -> None:
    long = "package.module." + "x" * 80 + ".Leaky"
    root = _parse(svg.bar_chart([(long, 10.0), ("list", -4.0), ("nan", math.nan)], title="t"))
    rects = list(root.iter(f"{_NS}rect"))
    assert len(rects) == 2
    positive, negative = (float(r.get("x", "0")) for r in rects)
    assert negative < positive  # drawn left of zero
    titles = ["".join(t.itertext()) for t in root.iter(f"{_NS}title")]
    assert any(long in t for t in titles)  # full label as tooltip
    assert long not in _texts(root)  # shortened on screen
    assert "n/a" in _texts(root)
    assert "no data" in _texts(_parse(svg.bar_chart([], title="none")))


def test_graph_ring_and_layers_are_deterministic() -> None:
    nodes = [("a", "app.Node"), ("b", "dict"), ("c", "app.Node"), ("d", "dict")]
    ring = [("a", "b", "__dict__"), ("b", "c", "['next']"), ("c", "d", "__dict__"), ("d", "a", "x")]
    text = svg.graph(nodes, ring, title="cycle")
    assert text == svg.graph(nodes, ring, title="cycle")
    root = _parse(text)
    assert len(list(root.iter(f"{_NS}path"))) == 4 + 1  # edges + arrow marker
    tree = [("r", "module app"), ("d", "dict"), ("s", "app.Session"), ("x", "missing")]
    edges = [("r", "d", "_CACHE"), ("d", "s", "['k']"), ("s", "s", "self"), ("d", "zz", "bad")]
    root = _parse(svg.graph(tree, edges))
    boxes = {
        "".join(g.itertext()): float(g.find(f"{_NS}rect").get("y", "0"))  # type: ignore[union-attr]
        for g in root.iter(f"{_NS}g")
        if g.get("class") == "ls-node"
    }
    assert boxes["module appmodule app"] < boxes["dictdict"] < boxes["app.Sessionapp.Session"]
    big = [(str(i), f"T{i}") for i in range(30)]
    chain = [(str(i), str(i + 1), f"e{i}") for i in range(29)] + [("29", "0", "back")]
    _parse(svg.graph(big, chain, title="30 nodes"))
    assert "no nodes" in _texts(_parse(svg.graph([], [])))


@pytest.mark.parametrize("where", ["title", "series", "label", "node", "edge"])
def test_svg_escapes_hostile_text(where: str) -> None:
    h = _HOSTILE
    if where in ("title", "series"):
        text = svg.line_chart({h if where == "series" else "s": [(0, 1), (1, 2)]}, title=h)
    elif where == "label":
        text = svg.bar_chart([(h, 1.0)], title=h, value_format=lambda v: h)
    else:
        text = svg.graph([("a", h), ("b", "x")], [("a", "b", h), ("b", "a", h)], title=h)
    root = _parse(text)
    assert "<script" not in text
    assert any(h in t or h[:20] in t for t in [*_texts(root), "".join(root.itertext())])
