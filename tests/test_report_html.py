"""The SVG charts and the HTML report of a ``leakscope run``."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from _support import CHROMIUM, CHROMIUM_FLAGS, PROJECT_ROOT, require_browser, run_python_json

from leakscope.engine.model import LeakReport, PerCall
from leakscope.render import html as html_report
from leakscope.render import svg

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
    gapped = _parse(svg.line_chart(broken, title="gaps"))  # type: ignore[arg-type]
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


# -- the HTML report ----------------------------------------------------------------------

_REALISTIC = r"""
import json, os, shutil, sys, tempfile, time
import leakscope
from leakscope import check, find_cycles, snapshot

SERVICE = '''
class Session:
    pass

class Job:
    pass

class Node:
    def __del__(self):
        pass

_CACHE = {}

def handle():
    _CACHE[len(_CACHE)] = Session()
'''
folder = tempfile.mkdtemp()
with open(os.path.join(folder, "service.py"), "w") as f:
    f.write(SERVICE)
sys.path.insert(0, folder)
from service import Job, Node, handle

started = time.time()
scratch = [Job() for i in range(3000)]
timeline, first = [], snapshot()
for step in range(6):
    if step == 3:
        del scratch[:]
    for _ in range(300):
        handle()
    s = snapshot()
    timeline.append({"time": s.time - first.time, "rss": s.rss, "blocks": s.blocks,
                     "objects": s.objects, "traced": s.traced,
                     "types": {t: s.types.get(t, 0) for t in ("service.Session", "service.Job", "dict")}})
last = snapshot()

def make_cycle():
    a, b = Node(), Node()
    a.peer, b.peer = b, a

cycles = find_cycles(make_cycle)
report = check(handle, trace=True)
print(json.dumps({
    "format": "leakscope.run", "version": 1, "argv": ["service.py", "--port", "8080"],
    "python": sys.version.split()[0], "pid": os.getpid(), "started": started,
    "elapsed": time.time() - started, "exit_code": 0, "error": None, "verdict": "leak",
    "timeline": timeline, "growth": leakscope.Growth.between(first, last).to_dict(),
    "culprits": [c.to_dict() for c in report.culprits], "cycles": cycles.to_dict(),
    "check": report.to_dict()}))
shutil.rmtree(folder)
"""


@pytest.fixture(scope="module")
def realistic() -> dict[str, Any]:
    data: dict[str, Any] = run_python_json(_REALISTIC)
    assert data["culprits"] and data["cycles"]["cycles"]
    return data


@pytest.fixture
def run_data(realistic: dict[str, Any]) -> dict[str, Any]:
    """The ``leakscope run`` dict (a deep copy the test may change)."""
    data = json.loads(json.dumps(realistic))
    del data["check"]
    return data


class _Checker(HTMLParser):
    """Fails on unbalanced tags; collects ids and scripts."""

    _VOID = frozenset(
        {
            "meta",
            "br",
            "hr",
            "img",
            "input",
            "link",
            "path",
            "rect",
            "line",
            "circle",
            "polyline",
            "polygon",
            "ellipse",
            "stop",
        }
    )

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.ids: set[str] = set()
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.ids.update(v for k, v in attrs if k == "id" and v)
        self.scripts += tag == "script"
        if tag not in self._VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.ids.update(v for k, v in attrs if k == "id" and v)

    def handle_endtag(self, tag: str) -> None:
        if tag in self._VOID:
            return
        assert self.stack and self.stack[-1] == tag, (tag, self.stack[-5:])
        self.stack.pop()


def _check_html(page: str) -> _Checker:
    checker = _Checker()
    checker.feed(page)
    checker.close()
    assert checker.stack == []
    assert checker.scripts == 0
    assert not re.search(r"(src|href)=\"(https?:)?//", page)
    return checker


@pytest.mark.parametrize("with_dot", [True, False])
def test_render_run_realistic(
    run_data: dict[str, Any], with_dot: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if with_dot and shutil.which("dot") is None:
        pytest.skip("Graphviz dot is not installed")
    if not with_dot:
        monkeypatch.setattr(shutil, "which", lambda name: None)
    page = html_report.render_run(run_data)
    checker = _check_html(page)
    assert {"verdict", "summary", "timeline", "growth", "culprits", "cycles"} <= checker.ids
    assert ">LEAK<" in page and "service.py --port 8080" in page
    assert (
        "service.Session" in page and "_CACHE" in page and "service.py:" in page
    )  # culprit and its holder
    assert ("ls-dot" in page) is with_dot
    assert ("ls-graph" in page) is not with_dot
    assert page.count("<svg") >= 5
    assert "Decreased" in page or "Increased" in page


def test_render_run_escapes_user_text(run_data: dict[str, Any]) -> None:
    data = run_data
    data["argv"] = [_HOSTILE]
    data["error"] = "Traceback\n" + _HOSTILE
    data["growth"]["types"].insert(0, {"name": _HOSTILE, "before": 0, "after": 5, "delta": 5})
    data["culprits"][0]["types"] = [_HOSTILE]
    data["culprits"][0]["hint"] = _HOSTILE
    data["timeline"][0]["types"] = {_HOSTILE: 3}
    data["cycles"]["cycles"][0]["ring"][0][0] = _HOSTILE
    for dot in (True, False):
        with pytest.MonkeyPatch.context() as mp:
            if not dot:
                mp.setattr(shutil, "which", lambda name: None)
            page = html_report.render_run(data)
        assert "<script" not in page
        _check_html(page)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("format", "other"),
        ("verdict", "maybe"),
        ("pid", "12"),
        ("argv", "prog.py"),
        ("timeline", [{"time": 0, "blocks": "x", "objects": 1}]),
        ("growth", None),
        ("culprits", [{"types": []}]),
        ("cycles", {"cycles": "no"}),
        ("exit_code", 1.5),
        ("started", math.nan),
        ("elapsed", -1.0),
    ],
)
def test_render_run_rejects_bad_fields(run_data: dict[str, Any], field: str, value: object) -> None:
    data = dict(run_data)
    data[field] = value
    with pytest.raises(ValueError, match="field " + re.escape(repr(field)[:-1])):
        html_report.render_run(data)
    with pytest.raises(ValueError, match="dict"):
        html_report.render_run([])  # type: ignore[arg-type]


def test_render_run_minimal_clean_run(tmp_path: Path) -> None:
    data = {
        "format": "leakscope.run",
        "version": 1,
        "argv": [],
        "python": "3.11.7",
        "pid": 1,
        "started": 0.0,
        "elapsed": 0.0,
        "exit_code": None,
        "error": "interrupted",
        "verdict": "clean",
        "timeline": [],
        "growth": {},
        "culprits": [],
        "cycles": None,
    }
    path = html_report.write_run(data, tmp_path / "r.html")
    page = path.read_text(encoding="utf-8")
    _check_html(page)
    assert ">CLEAN<" in page and "interrupted" in page and "No samples" in page


SCREENSHOT = PROJECT_ROOT / "docs" / "images" / "report.png"


@pytest.mark.slow
@pytest.mark.integration
def test_report_in_headless_browser(run_data: dict[str, Any], tmp_path: Path) -> None:
    """The written page as a browser shows it: verdict, charts and cycle graph visible, offline.

    ``LEAKSCOPE_UPDATE_SCREENSHOT=1`` also saves the screenshot as docs/images/report.png.
    """
    sync_api = require_browser()
    page_path = html_report.write_run(run_data, tmp_path / "report.html")
    requests: list[str] = []
    errors: list[str] = []
    with sync_api.sync_playwright() as p:
        # launch() gives Chromium a fresh, empty temporary profile of its own.
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("request", lambda r: requests.append(r.url))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(page_path.as_uri())
            verdict = page.locator("#verdict")
            assert verdict.inner_text() == "LEAK"
            for selector in ("#verdict", "svg.ls-line", "svg.ls-bar", "#cycles svg"):
                first = page.locator(selector).first
                assert first.is_visible(), selector
                box = first.bounding_box()
                assert box is not None and box["width"] > 10 and box["height"] > 10, selector
            assert page.locator("svg.ls-line").count() == 3
            assert "service.Session" in page.locator("#culprits").inner_text()
            shot = tmp_path / "report.png"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000
    assert errors == []
    assert requests == [page_path.as_uri()]  # the page itself, nothing else
    if os.environ.get("LEAKSCOPE_UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(shot, SCREENSHOT)


def test_render_check_of_a_real_report(realistic: dict[str, Any]) -> None:
    report = LeakReport.from_dict(realistic["check"])
    assert report.leaked
    page = html_report.render_check(report)
    checker = _check_html(page)
    assert {"verdict", "runs", "culprits"} <= checker.ids
    assert ">LEAK<" in page and "service.Session" in page and "handle" in page
    clean = LeakReport(function=_HOSTILE, leaked=False, per_call=PerCall(0.0, 0.0))
    page = html_report.render_check(clean)
    _check_html(page)
    assert ">CLEAN<" in page and "<script" not in page and "No culprit" in page
    failed = LeakReport("f", False, PerCall(0.0, 0.0), error="ZeroDivisionError: " + _HOSTILE)
    page = html_report.render_check(failed)
    assert ">ERROR<" in page and "ZeroDivisionError" in page and "<script" not in page
    with pytest.raises(TypeError, match="LeakReport"):
        html_report.render_check(realistic["check"])  # type: ignore[arg-type]


def test_graph_two_node_cycle_draws_both_edges_apart() -> None:
    root = _parse(svg.graph([("a", "Node"), ("b", "Node")], [("a", "b", "x"), ("b", "a", "y")]))
    paths = [p.get("d", "") for p in root.iter(f"{_NS}path") if p.get("marker-end")]
    assert len(paths) == 2
    assert sum(" Q" in d for d in paths) == 1  # the back edge bows out, the other is straight


def test_run_report_rates_are_per_interval_not_per_call(run_data: dict[str, Any]) -> None:
    page = html_report.render_run(run_data)
    culprits = page[page.index('id="culprits"') :]
    culprits = culprits[: culprits.index("</section>")]
    assert "per interval" in culprits
    assert "per call" not in culprits


def test_line_chart_legend_wraps_instead_of_cutting_names() -> None:
    names = [
        "weakref.ReferenceType",
        "builtin_function_or_method",
        "service.Session",
        "collections.OrderedDict",
        "function",
    ]
    series = {name: [(0.0, float(i)), (1.0, float(i + 1))] for i, name in enumerate(names)}
    root = _parse(svg.line_chart(series, title="Types", width=420))
    texts = _texts(root)
    for name in names:
        assert name in texts, (name, texts)
    # Every legend entry starts inside the chart, on more than one row.
    width = float(root.get("width", "0"))
    legend = [e for e in root.iter(f"{_NS}text") if "".join(e.itertext()) in names and e.get("x")]
    assert all(float(e.get("x", "0")) + 6.5 * len(e.text or "") <= width for e in legend)
    assert len({e.get("y") for e in legend}) >= 2
