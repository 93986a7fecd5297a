"""Explanation pieces: container names, allocation sites, hints, rendering."""

from __future__ import annotations

import os
import tracemalloc

import pytest

from leakscope._roots import ATEXIT_KEY, LOGGERS_KEY, format_container
from leakscope.engine import explain
from leakscope.engine.explain import culprits_from_growth
from leakscope.engine.model import Culprit, LeakReport, PerCall, Run, format_report
from leakscope.engine.signals import Assessment


@pytest.mark.parametrize(
    ("key", "kind", "rate", "text"),
    [
        ("app.cache:_CACHE", "dict", 3.0, "module app.cache: _CACHE (dict, +3.0 entries/call)"),
        (
            "app.models:Session.registry",
            "list",
            None,
            "class app.models.Session: attribute registry (list)",
        ),
        (
            "app.jobs:collect.__defaults__[0]",
            "list",
            1.0,
            "function app.jobs.collect: __defaults__[0] (list, +1.0 entries/call)",
        ),
        ("app:_BUF", "bytearray", 20.0, "module app: _BUF (bytearray, +20.0 bytes/call)"),
        ("sys:modules", "dict", None, "sys.modules (dict)"),
        (
            LOGGERS_KEY,
            "dict",
            1.0,
            "logging.Logger.manager.loggerDict (every logger ever created) (dict, +1.0 entries/call)",
        ),
        (
            ATEXIT_KEY,
            "atexit registry",
            1.0,
            "the atexit registry: registered callbacks (atexit registry, +1.0 entries/call)",
        ),
    ],
)
def test_format_container(key: str, kind: str, rate: float | None, text: str) -> None:
    assert format_container(key, kind, rate) == text


def _frames(*pairs: tuple[str, int]) -> list[tracemalloc.Frame]:
    return [tracemalloc.Frame((name, line)) for name, line in pairs]  # type: ignore[call-arg]


def test_site_prefers_the_most_recent_user_frame() -> None:
    stdlib = os.path.join(explain._STDLIB[0], "logging", "__init__.py")
    own = os.path.join(explain._OWN_DIR, "verdict.py")
    frames = _frames(("/srv/app/main.py", 3), (own, 10), ("/srv/app/jobs.py", 12), (stdlib, 1500))
    assert explain._site(frames) == "/srv/app/jobs.py:12"
    # allocated by leakscope itself (or the stdlib on its behalf): no site
    assert explain._site(_frames(("/srv/app/main.py", 3), (own, 10), (stdlib, 7))) is None
    # no user frame at all: the most recent frame
    assert explain._site(_frames((stdlib, 7))) == f"{explain._short_path(stdlib)}:7"


def test_site_skips_pytest_and_pluggy_frames() -> None:
    import _pytest.python
    import pluggy

    own = os.path.join(explain._OWN_DIR, "pytest_plugin.py")
    runner = _pytest.python.__file__
    hooks = os.path.join(os.path.dirname(pluggy.__file__), "_callers.py")
    test = "/srv/app/tests/test_jobs.py"
    # the plugin calls pytest, which calls the test, which calls into pytest (pytest.warns)
    frames = _frames((own, 1), (hooks, 2), (runner, 3), (test, 14), (runner, 99), (hooks, 5))
    assert explain._site(frames) == f"{test}:14"
    # without the runner filter, pytest's line came first
    assert explain._is_user_file(runner) and not explain._is_user_file(
        runner, explain._runner_dirs()
    )


def test_culprits_from_growth_names_types_containers_and_hints() -> None:
    assessment = Assessment(
        leaking_types={"app.Session": 1.0, "dict": 1.0},
        leaking_containers={"app:_S": 1.0, "app:fn.__defaults__[0]": 2.0},
    )
    culprits = culprits_from_growth(
        assessment, {"app:_S": "list", "app:fn.__defaults__[0]": "list"}
    )
    first = next(c for c in culprits if c.kind == "objects")
    assert first.types == ("app.Session",)
    assert ("dict", 1.0) in first.related  # the instance dict comes along
    kinds = {c.kind for c in culprits}
    assert kinds == {"objects", "container"}
    defaults = next(c for c in culprits if "__defaults__" in c.holders[0].description)
    assert "mutable default" in defaults.hint


def test_untracked_and_memory_culprits() -> None:
    untracked = culprits_from_growth(Assessment(blocks=2.0), {})
    assert untracked[0].kind == "untracked"
    assert "reference-count leak in C code" in untracked[0].notes[0]
    rss = culprits_from_growth(Assessment(rss=4096.0), {})
    assert rss[0].kind == "memory" and rss[0].unit == "bytes"


def _report(**kw: object) -> LeakReport:
    base: dict[str, object] = {
        "function": "app.run",
        "leaked": False,
        "per_call": PerCall(0.0, 0.0),
        "runs": (Run(32, 0.01, 0, 3, None, 0),) * 5,
        "warmup": 32,
        "seconds": 0.2,
    }
    base.update(kw)
    return LeakReport(**base)  # type: ignore[arg-type]


def test_format_clean_error_and_leak() -> None:
    clean = format_report(_report(settled=("re.Pattern +300",)))
    assert clean.startswith("leakscope: no leak in app.run: nothing grew steadily (160 calls")
    assert "grew, then settled: re.Pattern +300" in clean
    error = format_report(_report(error="ValueError: x (raised at a.py:1 during warm-up call 1)"))
    assert error == (
        "leakscope: no verdict for app.run: it raised ValueError: x (raised at a.py:1 during "
        "warm-up call 1)"
    )
    leak = format_report(
        _report(
            leaked=True,
            per_call=PerCall(1.0, 2.0, 64.0),
            culprits=(Culprit("container", ("str",), 1.0, unit="entries", hint="bound it"),),
        )
    )
    assert "1. str: +1.0 entries/call (a growing container)" in leak
    assert "fix:          bound it" in leak
