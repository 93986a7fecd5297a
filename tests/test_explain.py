"""Explanation pieces: container names, allocation sites, hints, rendering."""

from __future__ import annotations

import logging
import os
import sys
import tracemalloc
import types
from pathlib import Path
from typing import ClassVar, get_args

import pytest

from leakscope._roots import (
    ATEXIT,
    ATEXIT_KEY,
    LOGGERS,
    LOGGERS_KEY,
    ContainerKey,
    format_container,
    root_containers,
)
from leakscope.engine import explain, hints
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


# -- structured container keys and the hint table ------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "app.cache:_CACHE",
        "app.models:Session.registry",
        "app.jobs:collect.__defaults__[0]",
        "sys:modules",
        ATEXIT_KEY,
        LOGGERS_KEY,
    ],
)
def test_container_key_text_round_trips(text: str) -> None:
    key = ContainerKey.parse(text)
    assert str(key) == text
    assert ContainerKey.parse(str(key)) == key
    assert key.format("list", 1.0) == format_container(text, "list", 1.0)


@pytest.mark.parametrize("text", ["", "nomodule", ":x", "app:", "app:f.__defaults__[x]", "a:.b"])
def test_container_key_rejects_what_is_not_a_key(text: str) -> None:
    with pytest.raises(ValueError, match="not a container key"):
        ContainerKey.parse(text)


def test_container_key_resolves_without_calling_user_code() -> None:
    mod = types.ModuleType("keys_app")

    class Registry:
        items: ClassVar[list[int]] = [1, 2]

        def __getattribute__(self, name: str) -> object:  # never called
            raise AssertionError(name)

    def collect(seen: list[int] = [3]) -> None:  # noqa: B006 - the default under test
        pass

    Registry.__module__ = "keys_app"
    mod.CACHE = {"a": 1}
    mod.Registry = Registry
    mod.collect = collect
    sys.modules["keys_app"] = mod
    try:
        assert ContainerKey.global_("keys_app", "CACHE").resolve() is mod.CACHE
        assert ContainerKey.class_attribute("keys_app", "Registry", "items").resolve() == [1, 2]
        assert ContainerKey.default("keys_app", "collect", 0).resolve() == [3]
        assert ContainerKey.default("keys_app", "collect", 5).resolve() is None
        assert ContainerKey.class_attribute("keys_app", "Registry", "items").holder() is Registry
        assert ContainerKey.global_("keys_app", "missing").resolve() is None
        lengths, names = root_containers()
        assert lengths["keys_app:CACHE"] == 1 and names["keys_app:Registry.items"] == "list"
        assert ContainerKey.parse("keys_app:collect.__defaults__[0]").resolve() == [3]
    finally:
        del sys.modules["keys_app"]
    assert ContainerKey.global_("keys_app", "CACHE").resolve() is None
    assert LOGGERS.resolve() is logging.Logger.manager.loggerDict
    assert ATEXIT.resolve() is None


def test_container_holders_carry_their_key_and_rate() -> None:
    culprits = culprits_from_growth(
        Assessment(leaking_containers={"app.models:Session.registry": 2.0}),
        {"app.models:Session.registry": "list"},
    )
    holder = culprits[0].holders[0]
    assert holder.key == ContainerKey.class_attribute("app.models", "Session", "registry")
    assert (holder.kind, holder.container_type, holder.rate) == ("container", "list", 2.0)
    assert holder.to_dict()["key"] == "app.models:Session.registry"


def test_every_hint_and_note_text_is_written_once() -> None:
    texts = [*hints.HINTS.values(), *hints.NOTES.values()]
    assert len(set(texts)) == len(texts)
    assert set(hints.HINTS) == set(get_args(hints.HintId))
    source = Path(explain.__file__).read_text(encoding="utf-8")
    for text in texts:  # no hint text spelt out again in the explanation
        assert text[:40] not in source


@pytest.mark.parametrize(
    ("facts", "hint"),
    [
        (hints.Facts("container", container=ATEXIT), "atexit"),
        (hints.Facts("container", container=LOGGERS, container_type="dict"), "loggers"),
        (
            hints.Facts(
                "container", container=ContainerKey.global_("a", "b"), container_type="dict"
            ),
            "unbounded_cache",
        ),
        (
            hints.Facts(
                "container", container=ContainerKey.global_("a", "b"), container_type="list"
            ),
            "growing_container",
        ),
        (
            hints.Facts(
                "container", container=ContainerKey.global_("a", "b"), container_type="bytearray"
            ),
            "buffer",
        ),
        (hints.Facts("objects", frozenset({"a.X"}), no_referrers=True), "refcount"),
        (hints.Facts("objects", frozenset({"a.X"}), finalizer=True), "finalizer"),
        (hints.Facts("objects", frozenset({"a.X"}), via_defaults=True), "mutable_default"),
        (hints.Facts("objects", frozenset({"a.X"}), lru_cache="method"), "lru_method"),
        (hints.Facts("objects", frozenset({"a.X"}), lru_cache="function"), "lru_unbounded"),
        (hints.Facts("objects", frozenset({"a.X", "cell", "function"})), "callbacks"),
        (hints.Facts("objects", frozenset({"logging.Logger"})), "loggers"),
        (
            hints.Facts(
                "objects", frozenset({"a.X"}), container=ContainerKey.class_attribute("a", "X", "r")
            ),
            "class_registry",
        ),
        (hints.Facts("cycles"), "cycles"),
        (hints.Facts("memory"), "native"),
        (hints.Facts("untracked"), "untracked"),
    ],
)
def test_hints_are_chosen_by_facts(facts: hints.Facts, hint: str) -> None:
    assert hints.choose(facts) == hint


def test_a_default_that_refers_to_a_module_global_is_no_mutable_default() -> None:
    # logging.shutdown(handlerList=_handlerList): the default is the module's own list.
    assessment = Assessment(
        leaking_containers={"logging:_handlerList": 1.0, "logging:shutdown.__defaults__[0]": 1.0}
    )
    culprits = culprits_from_growth(assessment, {"logging:_handlerList": "list"})
    assert [h.description for c in culprits for h in c.holders] == [
        "module logging: _handlerList (list, +1.0 entries/call)"
    ]
    assert all("mutable default" not in c.hint for c in culprits)
    # a real mutable default still gets its hint
    own = culprits_from_growth(Assessment(leaking_containers={"app:fn.__defaults__[0]": 1.0}), {})
    assert "mutable default" in own[0].hint
