"""Host-safe low-level readers: type names, census, RSS, reprs, the interpreter-state guard."""

from __future__ import annotations

import collections
import gc
import sys
import tracemalloc
import warnings

import pytest
from _support import run_python_json

from leakscope._heap import (
    PYTHON_VERSION,
    census,
    object_type_name,
    rss_bytes,
    safe_repr,
    type_name,
)
from leakscope._interpreter import preserved


class Plain:
    class Inner:
        pass


def test_type_names_are_qualified_and_builtins_bare() -> None:
    assert type_name(dict) == "dict"
    assert type_name(type(lambda: 0)) == "function"
    assert type_name(collections.OrderedDict) == "collections.OrderedDict"
    assert type_name(Plain.Inner) == "test_heap.Plain.Inner"


class _Meta(type):
    def __getattribute__(cls, name: str) -> object:
        raise RuntimeError("metaclass refuses every attribute")


def test_type_name_does_not_call_user_code() -> None:
    hostile = _Meta("Hostile", (), {"__module__": "app.models"})
    assert type_name(hostile) == "app.models.Hostile"

    class LiesAboutClass:
        @property  # type: ignore[misc]
        def __class__(self) -> type:
            raise RuntimeError("boom")

    assert object_type_name(LiesAboutClass()).endswith("LiesAboutClass")


def test_type_name_survives_odd_module_values() -> None:
    odd = type("Odd", (), {})
    odd.__module__ = 42  # type: ignore[assignment]
    assert type_name(odd) == "Odd"


def test_census_adds_up_types_that_share_a_name() -> None:
    first = type("Twin", (), {"__module__": "app"})
    second = type("Twin", (), {"__module__": "app"})
    counts = census([first(), first(), second(), 1, 2, "x"])
    assert counts == {"app.Twin": 3, "int": 2, "str": 1}


def test_rss_is_read_on_linux() -> None:
    rss = rss_bytes()
    if sys.platform.startswith("linux"):
        assert rss is not None and rss > 1_000_000
    else:
        assert rss is None or rss > 0


def test_safe_repr_never_raises_and_is_bounded() -> None:
    class Broken:
        def __repr__(self) -> str:
            raise ValueError("no")

    class NotAString:
        def __repr__(self) -> str:
            return 42  # type: ignore[return-value]

    assert safe_repr(Broken()).endswith("<locals>.Broken object (repr failed)>")
    assert "repr failed" in safe_repr(NotAString())
    assert len(safe_repr("x" * 1000, limit=20)) == 20


@pytest.mark.version_sensitive
def test_python_version_names_the_build() -> None:
    assert PYTHON_VERSION.startswith(".".join(map(str, sys.version_info[:3])))


@pytest.mark.version_sensitive
def test_immortal_refcounts_do_not_reach_the_census() -> None:
    # 3.12+ makes None, small ints and interned strings immortal (huge refcounts);
    # the census counts objects, never references, so nothing about them changes.
    out = run_python_json(
        """
        import json, sys, leakscope
        before = leakscope.snapshot()
        keep = [None] * 100_000 + list(range(100))
        growth = leakscope.snapshot() - before
        print(json.dumps({"list": growth.types_changed("list"),
                          "NoneType": growth.types_changed("NoneType"),
                          "refcount_none": sys.getrefcount(None),
                          "version": sys.version_info[:2]}))
        """
    )
    assert out["list"] == 1
    assert out["NoneType"] == 0
    if tuple(out["version"]) >= (3, 12):
        assert out["refcount_none"] > 2**29  # immortal
    else:
        assert out["refcount_none"] < 2**29


# -- preserved() ---------------------------------------------------------------------------


def _callback(phase: str, info: dict[str, int]) -> None:
    pass


def test_preserved_restores_everything_even_on_error() -> None:
    marker = ["sentinel in gc.garbage"]
    garbage_list = gc.garbage
    gc.garbage.append(marker)
    threshold = gc.get_threshold()
    filters = list(warnings.filters)
    try:
        with pytest.raises(KeyError), preserved() as state:
            assert state.gc_enabled and not state.tracing
            gc.disable()
            gc.set_debug(gc.DEBUG_SAVEALL)
            gc.set_threshold(1, 1, 1)
            gc.callbacks.append(_callback)
            gc.garbage.clear()
            state.start_tracing(5)
            warnings.simplefilter("error")
            raise KeyError("user code failed")
        assert gc.isenabled()
        assert gc.get_debug() == 0
        assert gc.get_threshold() == threshold
        assert _callback not in gc.callbacks
        assert gc.garbage is garbage_list and gc.garbage == [marker]
        assert not tracemalloc.is_tracing()
        assert warnings.filters == filters
    finally:
        gc.garbage.remove(marker)


def test_preserved_keeps_tracing_that_was_already_on() -> None:
    tracemalloc.start()
    try:
        with preserved() as state:
            state.start_tracing()
        assert tracemalloc.is_tracing()
    finally:
        tracemalloc.stop()


def test_preserved_restores_a_disabled_collector() -> None:
    gc.disable()
    try:
        with preserved():
            gc.enable()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_preserved_releases_saved_references() -> None:
    class Target:
        pass

    import weakref

    target = Target()
    ref = weakref.ref(target)
    gc.garbage.append(target)
    try:
        with preserved() as state:
            pass
        assert state.gc_garbage == []
    finally:
        gc.garbage.remove(target)
    del target
    assert ref() is None
