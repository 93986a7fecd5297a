"""What the pytest plugin costs on a realistic suite, and what it finds there.

Generates a 200-test suite (an ``app`` package and its tests: parametrized,
class-based and ``unittest`` tests; fixtures of every scope; ``capsys``,
``caplog``, ``monkeypatch``, ``tmp_path``; bounded caches and lazy singletons
that fill on first use; 5 tests that really leak) into a temporary directory,
then times, in fresh ``pytest`` processes:

- the plain run (the plugin loaded, no check);
- ``--leakscope`` (every test screened, suspects checked in full);
- ``pytest-memray``'s ``--memray`` with ``limit_leaks`` on every test, when it
  is installed (otherwise its row says so and has no figures).

and counts for each the false alarms (clean tests failed as leaking) and the
leaks caught.  Target: no false alarms, ``--leakscope`` under 5x the plain run.

    python benchmarks/pytest_overhead.py [--quick]

``run(quick)`` returns the rows; ``--quick`` uses a 60-test suite and one
timing per mode.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MEMRAY_LIMIT = "4 KB"  # limit_leaks location limit; the real leaks keep 8 KiB per call

APP = {
    "app/__init__.py": "",
    "app/text.py": """
        import re
        import textwrap

        _WORD = re.compile(r"[^a-z0-9]+")


        def slugify(text):
            return _WORD.sub("-", text.lower()).strip("-")


        def wrap(text, width):
            return textwrap.wrap(text, width)


        def word_counts(text):
            counts = {}
            for word in slugify(text).split("-"):
                counts[word] = counts.get(word, 0) + 1
            return counts
        """,
    "app/models.py": '''
        from dataclasses import dataclass, field


        @dataclass
        class User:
            name: str
            email: str
            tags: list = field(default_factory=list)

            def display(self):
                return f"{self.name} <{self.email}>"


        @dataclass
        class Order:
            user: User
            lines: list = field(default_factory=list)

            def add(self, sku, qty, price):
                self.lines.append((sku, qty, price))

            def total(self):
                return round(sum(q * p for _, q, p in self.lines), 2)


        class Registry:
            """Keeps live sessions; callers unregister them."""

            def __init__(self):
                self._live = {}

            def register(self, key, obj):
                self._live[key] = obj

            def unregister(self, key):
                self._live.pop(key, None)

            def __len__(self):
                return len(self._live)
        ''',
    "app/pricing.py": '''
        import functools


        @functools.lru_cache(maxsize=128)
        def price_table(region):
            """Built on first use per region, then cached (bounded)."""
            return {f"{region}-sku-{i}": 1.0 + (i % 97) / 10 for i in range(400)}


        def price(region, sku):
            return price_table(region)[f"{region}-sku-{sku}"]
        ''',
    "app/config.py": '''
        _SETTINGS = None


        def get_settings():
            """A lazy singleton: loaded once, on first use."""
            global _SETTINGS
            if _SETTINGS is None:
                _SETTINGS = {f"option_{i}": str(i) * 8 for i in range(600)}
            return _SETTINGS
        ''',
    "app/events.py": """
        import logging

        log = logging.getLogger("app.events")


        class Bus:
            def __init__(self):
                self._handlers = {}

            def subscribe(self, name, handler):
                self._handlers.setdefault(name, []).append(handler)

            def unsubscribe(self, name, handler):
                self._handlers[name].remove(handler)

            def emit(self, name, payload):
                handlers = self._handlers.get(name, [])
                if not handlers:
                    log.warning("no handler for %s", name)
                return [h(payload) for h in handlers]
        """,
    "app/audit.py": '''
        class Record:
            def __init__(self, event):
                self.event = event
                self.payload = bytearray(8192)


        TRAIL = []


        def audit(event):
            """Keeps every record forever: the leak."""
            TRAIL.append(Record(event))
            return len(TRAIL)
        ''',
    "conftest.py": """
        import os

        import pytest

        from app.models import Registry


        @pytest.fixture(scope="session")
        def registry():
            return Registry()


        @pytest.fixture(scope="module")
        def corpus():
            return [f"Hello World number {i}!" * 3 for i in range(300)]


        def pytest_collection_modifyitems(items):
            limit = os.environ.get("BENCH_LIMIT_LEAKS")
            if limit:
                for item in items:
                    item.add_marker(pytest.mark.limit_leaks(limit))
        """,
}


def _tests(scale: float) -> dict[str, str]:
    """The test modules; ``scale`` 1.0 gives exactly 200 tests."""

    def n(count: int) -> int:
        return max(1, round(count * scale))

    return {
        "tests/test_text.py": f"""
            import pytest
            from app.text import slugify, word_counts, wrap

            @pytest.mark.parametrize("i", range({n(40)}))
            def test_slugify(i, corpus):
                assert slugify(corpus[i]).startswith("hello-world")

            @pytest.mark.parametrize("width", range(20, 20 + {n(10)}))
            def test_wrap(width, corpus):
                lines = wrap(" ".join(corpus[:20]), width)
                assert all(len(line) <= width for line in lines)
            """,
        "tests/test_models.py": f"""
            import pytest
            from app.models import Order, User

            @pytest.fixture
            def user():
                return User("ada", "ada@example.org")

            class TestOrders:
                @pytest.mark.parametrize("k", range({n(20)}))
                def test_total(self, user, k):
                    order = Order(user)
                    for i in range(k + 1):
                        order.add(f"sku{{i}}", i + 1, 2.5)
                    assert order.total() == round(sum((i + 1) * 2.5 for i in range(k + 1)), 2)

                @pytest.mark.parametrize("k", range({n(20)}))
                def test_registry(self, registry, user, k):
                    registry.register(k, user)
                    try:
                        assert len(registry) >= 1
                    finally:
                        registry.unregister(k)
            """,
        "tests/test_pricing.py": f"""
            import pytest
            from app.pricing import price

            @pytest.mark.parametrize("region", [f"r{{i}}" for i in range({n(20)})])
            def test_price(region):
                assert price(region, 5) > 1.0
            """,
        "tests/test_config.py": f"""
            import pytest
            from app.config import get_settings

            @pytest.mark.parametrize("i", range({n(10)}))
            def test_setting(i):
                assert get_settings()[f"option_{{i}}"].startswith(str(i))
            """,
        "tests/test_events.py": f"""
            import logging
            import pytest
            from app.events import Bus

            @pytest.fixture
            def bus():
                return Bus()

            @pytest.mark.parametrize("i", range({n(15)}))
            def test_emit(bus, i):
                handler = lambda payload: payload * 2
                bus.subscribe("tick", handler)
                assert bus.emit("tick", i) == [i * 2]
                bus.unsubscribe("tick", handler)

            @pytest.mark.parametrize("i", range({n(10)}))
            def test_unhandled_logs(bus, caplog, capsys, i):
                print("emitting", i)
                assert bus.emit("nobody", i) == []
                assert "no handler for nobody" in caplog.text
                assert "emitting" in capsys.readouterr().out
            """,
        "tests/test_io.py": f"""
            import json
            import pytest

            @pytest.mark.parametrize("i", range({n(30)}))
            def test_roundtrip(tmp_path, monkeypatch, i):
                monkeypatch.setenv("APP_ENV", f"test{{i}}")
                path = tmp_path / "data.json"
                data = {{"id": i, "items": list(range(i)), "env": f"test{{i}}"}}
                path.write_text(json.dumps(data))
                assert json.loads(path.read_text()) == data
            """,
        "tests/test_legacy.py": "import unittest\n\n\nclass TestLegacy(unittest.TestCase):\n"
        + "\n".join(
            f"    def test_case_{i}(self):\n"
            f"        self.assertEqual(sorted([{i}, 3, 1]), sorted([1, 3, {i}]))\n"
            for i in range(n(15))
        ),
        "tests/test_warnings.py": f"""
            import warnings
            import pytest

            def old_api():
                warnings.warn("old_api is deprecated", DeprecationWarning, stacklevel=2)
                return 1

            @pytest.mark.parametrize("i", range({n(5)}))
            def test_old_api(i):
                with pytest.warns(DeprecationWarning):
                    assert old_api() == 1
            """,
        "tests/test_audit.py": """
            import pytest
            from app.audit import audit

            @pytest.mark.parametrize("event", ["login", "logout", "buy", "sell", "view"])
            def test_audit(event):
                assert audit(event) >= 1
            """,
    }


LEAKING = {
    f"tests/test_audit.py::test_audit[{e}]" for e in ("login", "logout", "buy", "sell", "view")
}


def write_suite(root: Path, scale: float = 1.0) -> int:
    """Write the app and its tests under ``root``; return the number of tests."""
    files = {**APP, **_tests(scale)}
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    (root / "tests" / "__init__.py").write_text("", encoding="utf-8")
    (root / "pytest.ini").write_text(
        "[pytest]\ntestpaths = tests\nasyncio_default_fixture_loop_scope = function\n"
        "filterwarnings =\n    ignore::pytest.PytestConfigWarning\n",
        encoding="utf-8",
    )
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
        env=_env(),
    )
    return sum(1 for line in done.stdout.splitlines() if "::" in line)


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(PROJECT_ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env.pop("BENCH_LIMIT_LEAKS", None)
    env.update(extra)
    return env


def _pytest(root: Path, *args: str, **env: str) -> tuple[float, int]:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
        env=_env(**env),
    )
    return time.perf_counter() - start, done.returncode


def _failed_in_junit(path: Path) -> set[str]:
    failed = set()
    for case in ET.parse(path).getroot().iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            module = case.get("classname", "").replace(".", "/")
            # classname is "tests.test_x" or "tests.test_x.TestClass"
            parts = module.split("/")
            index = next((i for i, p in enumerate(parts) if p.startswith("test_")), len(parts) - 1)
            nodeid = "/".join(parts[: index + 1]) + ".py"
            for cls in parts[index + 1 :]:
                nodeid += f"::{cls}"
            failed.add(f"{nodeid}::{case.get('name')}")
    return failed


def _alarms(failed: set[str]) -> tuple[int, int]:
    """(false alarms, leaks caught)."""
    return len(failed - LEAKING), len(failed & LEAKING)


def run(quick: bool) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="leakscope-bench-") as tmp:
        root = Path(tmp)
        count = write_suite(root, scale=0.3 if quick else 1.0)
        repeat = 1 if quick else 3

        plain_times = []
        for _ in range(repeat):
            seconds, code = _pytest(root)
            plain_times.append(seconds)
        plain = statistics.median(plain_times)
        plain_note = f"{count} tests; plain run exit {code} (the 5 audit tests leak but pass)"

        times = []
        for _ in range(repeat):
            seconds, _ = _pytest(root, "--leakscope", "--leakscope-report=verdicts.json")
            times.append(seconds)
        seconds = statistics.median(times)
        report = json.loads((root / "verdicts.json").read_text(encoding="utf-8"))
        leaked = {t["nodeid"] for t in report["tests"] if t["verdict"] == "leaked"}
        per_test = [t["report"]["seconds"] for t in report["tests"] if t.get("report") is not None]
        # The screen passes most clean tests; the others (suspects) get the full check().
        screened = sum(1 for t in report["tests"] if "screen" in t and "report" not in t)
        suspects_clean = sum(
            1 for t in report["tests"] if "report" in t and t["verdict"] == "clean"
        )
        false_alarms, caught = _alarms(leaked)
        unrepeatable = report["summary"]["errors"]
        rows.append(
            {
                "benchmark": f"--leakscope vs plain run ({count} tests)",
                "leakscope_s": round(seconds, 2),
                "other": "plain pytest",
                "other_s": round(plain, 2),
                "ratio": round(seconds / plain, 1),
                "note": (
                    f"leakscope: {false_alarms} false alarms, {caught}/{len(LEAKING)} leaks "
                    f"caught, {unrepeatable} not repeatable; {screened} passed the screen, "
                    f"{len(per_test)} got the full check ({suspects_clean} of them clean), "
                    f"median {statistics.median(per_test or [0.0]):.3f} s, "
                    f"max {max(per_test or [0.0]):.3f} s; "
                    f"target < 5x; {plain_note}"
                ),
            }
        )

        if importlib.util.find_spec("pytest_memray") is None:
            rows.append(
                {
                    "benchmark": f"--leakscope vs pytest-memray limit_leaks ({count} tests)",
                    "leakscope_s": round(seconds, 2),
                    "other": "pytest-memray",
                    "other_s": None,
                    "ratio": None,
                    "note": "pytest-memray is not installed (pip install pytest-memray): skipped",
                }
            )
        else:
            m_seconds, m_code = _pytest(
                root, "--memray", "--junitxml=memray.xml", BENCH_LIMIT_LEAKS=MEMRAY_LIMIT
            )
            m_false, m_caught = _alarms(_failed_in_junit(root / "memray.xml"))
            rows.append(
                {
                    "benchmark": f"--leakscope vs pytest-memray limit_leaks ({count} tests)",
                    "leakscope_s": round(seconds, 2),
                    "other": f'pytest-memray --memray, limit_leaks("{MEMRAY_LIMIT}")',
                    "other_s": round(m_seconds, 2),
                    "ratio": round(seconds / m_seconds, 1),
                    "note": (
                        f"memray: {m_false} false alarms, {m_caught}/{len(LEAKING)} leaks caught "
                        f"(exit {m_code}), {m_seconds / plain:.1f}x the plain run; "
                        "unittest tests are not checked by memray"
                    ),
                }
            )
    return rows


def _table(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'benchmark':<52} {'leakscope s':>11} {'other s':>9} {'ratio':>6}  other"]
    for r in rows:
        other_s = "-" if r["other_s"] is None else f"{r['other_s']:.2f}"
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.1f}x"
        lines.append(
            f"{r['benchmark']:<52} {r['leakscope_s']:>11.2f} {other_s:>9} {ratio:>6}  {r['other']}"
        )
        lines.append(f"    {r['note']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 60-test suite, one timing per mode")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args(argv)
    rows = run(args.quick)
    print(json.dumps(rows, indent=2) if args.json else _table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
