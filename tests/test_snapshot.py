"""Snapshots, growth reports, persistence and tracking."""

from __future__ import annotations

import gc
import json
import os
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from _support import run_python_json

import leakscope
from leakscope import Growth, Snapshot, SnapshotError, snapshot, track
from leakscope.errors import LeakscopeError


class Leaf:
    pass


class Other:
    pass


def test_growth_of_a_list_of_instances_has_the_right_count() -> None:
    before = snapshot()
    keep = [Leaf() for _ in range(250)]
    growth = snapshot() - before
    assert growth.types_changed("test_snapshot.Leaf") == 250
    (leaf,) = [d for d in growth.increased if d.name == "test_snapshot.Leaf"]
    assert (leaf.before, leaf.after, leaf.is_new) == (0, 250, True)
    assert growth.objects == sum(d.delta for d in growth.types)
    del keep


def test_decreases_and_vanished_types_are_reported() -> None:
    keep = [Other() for _ in range(40)]
    before = snapshot()
    del keep[:30]
    middle = snapshot()
    del keep[:]
    after = snapshot()
    partial = middle - before
    assert partial.types_changed("test_snapshot.Other") == -30
    assert "test_snapshot.Other" in {d.name for d in partial.decreased}
    assert "test_snapshot.Other" not in {d.name for d in partial.increased}
    gone = after - middle
    assert [d.name for d in gone.vanished_types if d.name == "test_snapshot.Other"] == [
        "test_snapshot.Other"
    ]
    assert gone.types_changed("test_snapshot.Other") == -10


def test_diff_is_the_same_as_subtraction() -> None:
    a = snapshot()
    b = snapshot()
    assert b.diff(a) == b - a


def test_growth_table_is_aligned_and_complete() -> None:
    keep_others = [Other() for _ in range(7)]
    before = snapshot()
    keep_leaves = [Leaf() for _ in range(12)]
    del keep_others[:]
    text = str(snapshot() - before)
    lines = text.splitlines()
    assert lines[0].startswith("Growth over ")
    header = next(line for line in lines if line.startswith("type "))
    leaf_row = next(line for line in lines if line.startswith("test_snapshot.Leaf "))
    other_row = next(line for line in lines if line.startswith("test_snapshot.Other "))
    assert leaf_row.split()[1:5] == ["0", "12", "+12", "(new)"]
    assert other_row.split()[1:5] == ["7", "0", "-7", "(gone)"]
    # Columns line up: the change column ends at the same place in the header and the rows.
    assert header.index("change") + len("change") == leaf_row.index("+12") + len("+12")
    del keep_leaves


def test_top_ranks_by_size_of_change_in_either_direction() -> None:
    small = [Leaf() for _ in range(3)]
    big = [Other() for _ in range(500)]
    before = snapshot()
    del big
    small.extend(Leaf() for _ in range(5))
    growth = snapshot() - before
    ranked = [d.name for d in growth.types if d.name.startswith("test_snapshot.")]
    assert ranked == ["test_snapshot.Other", "test_snapshot.Leaf"]
    assert growth.types[0].delta <= -500
    assert growth.top(1)[0].name == "test_snapshot.Leaf"  # top() ranks increases only
    with pytest.raises(ValueError, match="non-negative"):
        growth.top(-1)


@pytest.mark.version_sensitive
def test_untracked_growth_is_visible_and_attributed() -> None:
    # A module-level dict of str -> str is not tracked by the collector before 3.14:
    # a type census alone cannot see it grow.
    out = run_python_json(
        """
        import gc, json, sys, leakscope
        CACHE = {}
        before = leakscope.snapshot()
        for i in range(3000):
            CACHE[f"key-{i}"] = f"value-{i}" * 3
        growth = leakscope.snapshot() - before
        (entry,) = [d for d in growth.containers if d.name == "__main__:CACHE"]
        print(json.dumps({
            "tracked": gc.is_tracked(CACHE),
            "dict_delta": growth.types_changed("dict"),
            "entry": [entry.before, entry.after, entry.kind],
            "blocks": growth.blocks,
            "text": str(growth),
            "version": sys.version_info[:2],
        }))
        """
    )
    if tuple(out["version"]) < (3, 14):
        assert out["tracked"] is False
        assert out["dict_delta"] == 0  # invisible to the type census ...
    assert out["entry"] == [0, 3000, "dict"]  # ... but seen as a container ...
    assert out["blocks"] >= 6000  # ... and in the allocated blocks (keys and values)
    assert "__main__:CACHE (dict)" in out["text"]


def test_class_attributes_and_default_arguments_are_measured() -> None:
    out = run_python_json(
        """
        import json, leakscope
        class Registry:
            items = []
        def collect(x, seen=[]):
            seen.append(x)
        before = leakscope.snapshot()
        for i in range(20):
            Registry.items.append(object())
            collect(i)
        growth = leakscope.snapshot() - before
        print(json.dumps({d.name: d.delta for d in growth.containers}))
        """
    )
    assert out["__main__:Registry.items"] == 20
    assert out["__main__:collect.__defaults__[0]"] == 20


@pytest.mark.version_sensitive
def test_collect_false_shows_cyclic_garbage_and_collect_reports_it() -> None:
    out = run_python_json(
        """
        import gc, json, leakscope
        class Node:
            pass
        gc.disable()
        base = leakscope.snapshot()
        for _ in range(300):
            a, b = Node(), Node()
            a.other, b.other = b, a
        del a, b
        pending = leakscope.snapshot(collect=False)
        collected = leakscope.snapshot()
        print(json.dumps({
            "pending": (pending - base).types_changed("__main__.Node"),
            "after_collect": (collected - base).types_changed("__main__.Node"),
            "collected": collected.collected,
            "pending_collected": pending.collected,
            "enabled": pending.gc_enabled,
        }))
        """
    )
    assert out["pending"] == 600
    assert out["after_collect"] == 0
    assert out["collected"] >= 600
    assert out["pending_collected"] is None
    assert out["enabled"] is False


@pytest.mark.version_sensitive
@pytest.mark.parametrize("memory", [False, True])
def test_first_snapshots_of_a_process_show_no_change(memory: bool) -> None:
    # No warm-up here: the first snapshot's own first-call objects must not show as a
    # change between the first and the second snapshot.
    out = run_python_json(
        f"""
        import json, leakscope
        first = leakscope.snapshot(memory={memory})
        second = leakscope.snapshot(memory={memory})
        print(json.dumps({{d.name: d.delta for d in (second - first).top(20)}}))
        """
    )
    assert out == {}


@pytest.mark.slow
@pytest.mark.version_sensitive
def test_snapshot_leaves_nothing_alive() -> None:
    out = run_python_json(
        """
        import gc, json, sys, leakscope
        from leakscope._snapshot import Snapshot
        for _ in range(50):          # warm-up: first-call allocations, freelists
            leakscope.snapshot()
        gc.collect()
        objects, blocks = len(gc.get_objects()), sys.getallocatedblocks()
        for _ in range(1000):
            leakscope.snapshot()
        gc.collect()
        print(json.dumps({
            "objects": len(gc.get_objects()) - objects,
            "blocks": sys.getallocatedblocks() - blocks,
            "snapshots_alive": sum(type(o) is Snapshot for o in gc.get_objects()),
        }))
        """
    )
    assert out["objects"] <= 0
    assert out["snapshots_alive"] == 0
    assert out["blocks"] < 100  # not one block per snapshot


def test_leakscope_objects_and_what_they_hold_are_not_counted() -> None:
    # A snapshot holds a memory breakdown with dicts, lists and tuples of its own:
    # keeping snapshots and growths alive must not show up as the user's growth.
    out = run_python_json(
        """
        import json, leakscope
        leakscope.snapshot(); leakscope.snapshot()   # warm-up
        before = leakscope.snapshot()
        kept = [leakscope.snapshot() for _ in range(3)]
        growths = [kept[1] - kept[0] for _ in range(3)]
        growth = leakscope.snapshot() - before
        print(json.dumps({d.name: d.delta for d in growth.types}))
        """
    )
    assert out == {"list": 2}  # the user's two lists, and nothing else


def test_memory_breakdown_is_carried_and_diffed(tmp_path: Path) -> None:
    before = snapshot()
    after = snapshot()
    assert before.memory is not None and snapshot(memory=False).memory is None
    growth = after - before
    assert growth.memory is not None
    assert growth.memory.kind in {"none", "python_objects", "allocator_retention", "native"}
    assert ("Memory growth" in str(growth)) is (growth.memory.kind != "none")
    path = tmp_path / "snap.json"
    after.save(path)
    assert Snapshot.load(path).memory == after.memory
    data = after.to_dict()
    data["memory"] = {"format": "garbage"}
    with pytest.raises(SnapshotError, match="memory breakdown"):
        Snapshot.from_dict(data)


class _Hostile:
    """Everything a user object can break."""

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        raise RuntimeError("no __class__ for you")

    def __repr__(self) -> str:
        raise RuntimeError("no repr")

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("no eq")

    def __hash__(self) -> int:
        raise RuntimeError("no hash")

    def __getattr__(self, name: str) -> object:
        raise RuntimeError(f"no {name}")


class _HostileMeta(type):
    def __getattribute__(cls, name: str) -> object:
        raise RuntimeError(f"no class attribute {name}")


class _HostileList(list):  # type: ignore[type-arg]
    def __len__(self) -> int:
        raise RuntimeError("no len")


def test_snapshot_survives_hostile_objects(monkeypatch: pytest.MonkeyPatch) -> None:
    hostile_class = _HostileMeta("HostileClass", (), {})
    module = sys.modules[__name__]
    monkeypatch.setattr(module, "HOSTILE_CLASS", hostile_class, raising=False)
    monkeypatch.setattr(module, "HOSTILE_LIST", _HostileList([_Hostile()]), raising=False)
    before = snapshot()
    keep = [_Hostile() for _ in range(10)]
    growth = snapshot() - before
    assert growth.types_changed("test_snapshot._Hostile") == 10
    assert before.containers[f"{__name__}:HOSTILE_LIST"] == 1
    assert before.types["test_snapshot._HostileMeta"] >= 1  # the class itself, counted by type
    str(growth)
    del keep


def test_snapshot_records_interpreter_and_process_state() -> None:
    snap = snapshot()
    assert snap.pid == os.getpid()
    assert snap.gc_thresholds == gc.get_threshold()
    assert snap.gc_enabled is gc.isenabled()
    assert snap.python.startswith(".".join(map(str, sys.version_info[:3])))
    assert snap.blocks > 0 and snap.objects > 1000
    assert snap.types["dict"] > 0 and "function" in snap.types
    assert "gen0.collections" in snap.gc_stats
    if sys.platform.startswith("linux"):
        assert snap.rss is not None and snap.rss > 1_000_000
    assert snap.traced is None  # tracemalloc is off
    assert "tracked objects" in str(snap)


def test_traced_memory_is_recorded_when_tracing() -> None:
    out = run_python_json(
        """
        import json, tracemalloc, leakscope
        tracemalloc.start()
        before = leakscope.snapshot()
        data = [bytes(1000) for _ in range(100)]
        growth = leakscope.snapshot() - before
        print(json.dumps({"traced": growth.traced, "peak": before.traced_peak}))
        """
    )
    assert out["traced"] >= 100_000
    assert out["peak"] > 0


def test_bad_arguments_are_rejected_clearly() -> None:
    snap = snapshot()
    with pytest.raises(TypeError, match="collect must be True or False"):
        snapshot(collect="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="needs a Snapshot"):
        snap.diff(3)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        snap - 3  # type: ignore[operator]


# -- persistence --------------------------------------------------------------------------


def test_save_load_round_trip(tmp_path: Path) -> None:
    snap = snapshot()
    path = tmp_path / "snap.json"
    snap.save(path)
    loaded = Snapshot.load(path)
    assert loaded == snap
    assert Snapshot.from_dict(json.loads(path.read_text())) == snap
    assert Snapshot.from_dict(snap.to_dict()) == snap
    assert (loaded - snap).types == ()
    assert not list(tmp_path.glob(".leakscope-*"))  # no temporary file left behind


def _valid(tmp_path: Path) -> dict[str, object]:
    data = snapshot().to_dict()
    return json.loads(json.dumps(data))  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "invalid JSON"),
        (b"\x00\xff\xfe garbage", "invalid JSON"),
        (b"[1, 2, 3]", "expected a JSON object"),
        (b'{"format": "something-else"}', "not a leakscope snapshot"),
        (b'{"format": "leakscope.snapshot", "version": 99}', "unsupported snapshot format version"),
    ],
)
def test_foreign_and_garbled_files_are_rejected(
    tmp_path: Path, content: bytes, reason: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(SnapshotError, match=reason) as info:
        Snapshot.load(path)
    assert str(path) in str(info.value)


def test_truncated_file_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "snap.json"
    snapshot().save(path)
    raw = path.read_bytes()
    for cut in (1, len(raw) // 2, len(raw) - 1):
        path.write_bytes(raw[:cut])
        with pytest.raises(SnapshotError, match="invalid JSON"):
            Snapshot.load(path)


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda d: d.pop("types"), "types: missing"),
        (lambda d: d.__setitem__("types", {"dict": -4}), r"types\.dict: must be an integer >= 0"),
        (lambda d: d.__setitem__("types", {"dict": "many"}), "types.dict: must be an integer"),
        (lambda d: d.__setitem__("blocks", True), "blocks: must be an integer"),
        (lambda d: d.__setitem__("containers", {"m:x": 5}), r"\[type name, length\]"),
        (lambda d: d["gc"].pop("thresholds"), "gc.thresholds: missing"),
        (lambda d: d["gc"].__setitem__("counts", [1, -2]), r"gc\.counts\[1\]: must be"),
        (lambda d: d.__setitem__("time", "yesterday"), "time: must be a number"),
        (lambda d: d.__setitem__("rss", -1), "rss: must be an integer >= 0"),
        (
            lambda d: (
                d["memory"].__setitem__("rss", "x") if d["memory"] else d.__setitem__("memory", [])
            ),
            "memory",
        ),
    ],
)
def test_corrupt_fields_are_rejected_not_half_loaded(
    tmp_path: Path, mutate: object, reason: str
) -> None:
    data = _valid(tmp_path)
    mutate(data)  # type: ignore[operator]
    with pytest.raises(SnapshotError, match=reason) as info:
        Snapshot.from_dict(data)
    assert info.value.field and str(info.value).startswith(info.value.field)
    path = tmp_path / "corrupt.json"
    path.write_text(json.dumps(data))
    with pytest.raises(SnapshotError, match=reason):
        Snapshot.load(path)


def test_snapshot_error_is_a_leakscope_error_and_value_error() -> None:
    assert issubclass(SnapshotError, leakscope.LeakscopeError)
    assert issubclass(SnapshotError, ValueError)


def test_diff_across_processes_and_versions_says_so() -> None:
    here = snapshot()
    data = here.to_dict()
    data["pid"] = here.pid + 1
    data["python"] = "2.7.18"
    other = Snapshot.from_dict(data)
    growth = here - other
    assert isinstance(growth, Growth)
    assert any("different processes" in note for note in growth.notes)
    assert any("different Pythons" in note for note in growth.notes)
    assert "Note: the snapshots come from different processes" in str(growth)


def test_growth_to_dict_is_json_safe() -> None:
    before = snapshot()
    keep = [Leaf() for _ in range(3)]
    data = (snapshot() - before).to_dict()
    assert json.loads(json.dumps(data)) == data
    assert {"name": "test_snapshot.Leaf", "before": 0, "after": 3, "delta": 3} in data["types"]
    del keep


# -- track() ------------------------------------------------------------------------------


def test_track_as_context_manager_and_object() -> None:
    with track() as t:
        keep = [Leaf() for _ in range(9)]
    assert t.growth.types_changed("test_snapshot.Leaf") == 9
    t.start()
    keep.extend(Leaf() for _ in range(4))
    growth = t.stop()
    assert growth is t.growth
    assert growth.types_changed("test_snapshot.Leaf") == 4


def test_track_nested() -> None:
    outer = track()
    inner = track()
    with outer:
        keep = [Leaf() for _ in range(2)]
        with inner:
            keep.extend(Other() for _ in range(3))
        with outer:  # the same tracker nested in itself
            keep.extend(Other() for _ in range(5))
        assert outer.growth.types_changed("test_snapshot.Other") == 5
    assert inner.growth.types_changed("test_snapshot.Other") == 3
    assert inner.growth.types_changed("test_snapshot.Leaf") == 0
    assert outer.growth.types_changed("test_snapshot.Leaf") == 2
    assert outer.growth.types_changed("test_snapshot.Other") == 8
    assert not [d for d in outer.growth.types if d.name.startswith("leakscope.")]


def test_track_keeps_each_threads_starts_apart() -> None:
    t = track()
    first_started, second_started, first_stopped = (threading.Event() for _ in range(3))
    keep: list[Leaf] = []
    results: dict[str, int] = {}

    def first() -> None:
        t.start()
        first_started.set()
        second_started.wait()
        results["first"] = t.stop().types_changed("test_snapshot.Leaf")
        first_stopped.set()

    def second() -> None:
        first_started.wait()
        keep.extend(Leaf() for _ in range(5))
        t.start()
        second_started.set()
        first_stopped.wait()
        results["second"] = t.stop().types_changed("test_snapshot.Leaf")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # With one shared stack, the first thread would have popped the second's start.
    assert results == {"first": 5, "second": 0}


def test_track_errors_are_clear() -> None:
    t = track()
    with pytest.raises(LeakscopeError, match="not measured anything yet"):
        t.growth
    with pytest.raises(LeakscopeError, match="without a matching start"):
        t.stop()
    with pytest.raises(TypeError, match="collect must be"):
        track(collect=None)  # type: ignore[arg-type]


def test_growth_top_prints_a_table_of_increases_only() -> None:
    keep = [Leaf() for _ in range(40)]
    drop = [Other() for _ in range(60)]
    before = snapshot()
    keep.extend(Leaf() for _ in range(25))
    del drop
    growth = snapshot() - before
    top = growth.top(5)
    assert all(d.delta > 0 for d in top)
    assert "test_snapshot.Other" not in {d.name for d in top}
    assert growth.types_changed("test_snapshot.Other") == -60  # still in types
    text = str(top)
    assert "Delta(" not in text
    lines = text.splitlines()
    assert lines[0].split() == ["type", "before", "after", "change"]
    leaf = next(line for line in lines if line.startswith("test_snapshot.Leaf "))
    assert leaf.split() == ["test_snapshot.Leaf", "40", "65", "+25"]
    assert len(lines) == len(top) + 1
    assert str(growth.top(0)) == "no type grew"
    del keep


@pytest.mark.version_sensitive
def test_saving_a_snapshot_leaves_nothing_for_the_next_diff(tmp_path: Path) -> None:
    # The first save of a process used tempfile.mkstemp, which leaves a random.Random and
    # a tempfile._RandomNameSequence alive: +1 each in the next diff, leakscope's own objects.
    out = run_python_json(
        f"""
        import json, leakscope
        first = leakscope.snapshot()
        first.save({str(tmp_path / "first.json")!r})
        second = leakscope.snapshot()
        print(json.dumps([str(d) for d in (second - first).increased]))
        """
    )
    assert out == []


class _Cyclic:
    def __init__(self) -> None:
        self.me = self


def _documents() -> dict[str, tuple[Any, dict[str, Any]]]:
    """A valid to_dict() document of every data class whose from_dict validates."""
    from leakscope import (
        CycleReport,
        GCReport,
        MemoryGrowth,
        Retention,
        find_cycles,
        gc_advice,  # noqa: F401  (imported for the lazy package)
        gc_monitor,
    )
    from leakscope.memory import MemoryBreakdown, memory_breakdown
    from leakscope.retention import why_alive

    with gc_monitor() as monitor:
        gc.collect()
    before = memory_breakdown()
    keep = [[i] for i in range(1000)]
    growth = memory_breakdown() - before
    cycles = find_cycles(_Cyclic)
    assert cycles.cycles
    held = Leaf()
    _HELD.append(held)
    retention = why_alive(held)
    _HELD.clear()
    del keep
    return {
        "Snapshot": (Snapshot, _trim(snapshot().to_dict())),
        "MemoryBreakdown": (MemoryBreakdown, before.to_dict()),
        "MemoryGrowth": (MemoryGrowth, growth.to_dict()),
        "GCReport": (GCReport, monitor.report().to_dict()),
        "CycleReport": (CycleReport, cycles.to_dict()),
        "Retention": (Retention, retention.to_dict()),
    }


_HELD: list[object] = []


def _trim(value: Any) -> Any:
    """The document with every mapping cut to 20 entries (still valid; faster to copy)."""
    if isinstance(value, dict):
        return {k: _trim(v) for k, v in list(value.items())[:20]}
    return value


_BAD_VALUES: tuple[object, ...] = (None, "x", -1, 1.5, True, [], {}, [["a"]], {"k": object()})


def _paths(value: Any, where: str = "", keys: tuple[Any, ...] = ()) -> Any:
    """(path, keys) of a JSON document's values, depth first (25 entries per level)."""
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, inner in list(items)[:25]:
        named = f"{where}.{key}" if where else str(key)
        path = named if isinstance(key, str) else f"{where}[{key}]"
        yield path, (*keys, key)
        if isinstance(inner, (dict, list)):
            yield from _paths(inner, path, (*keys, key))


def test_every_from_dict_rejects_bad_fields_with_a_data_error_naming_the_field() -> None:
    from leakscope.errors import DataError

    checked = 0
    for name, (cls, document) in _documents().items():
        text = json.dumps(document)
        assert cls.from_dict(json.loads(text)) is not None, name
        for path, keys in list(_paths(document)):
            for bad in (*_BAD_VALUES, "missing"):
                data = json.loads(text)
                container = data
                for key in keys[:-1]:
                    container = container[key]
                if bad == "missing":
                    if isinstance(container, list):
                        continue
                    del container[keys[-1]]
                else:
                    container[keys[-1]] = bad
                try:
                    cls.from_dict(data)
                except DataError as exc:
                    checked += 1
                    assert exc.field, (name, path, bad, str(exc))
                    # The field named is the one changed, or the list or mapping holding it.
                    top = exc.field.split(".")[0].split("[")[0]
                    assert path.startswith(top), (name, path, bad, exc.field)
                except Exception as exc:  # pragma: no cover - the failure this test is for
                    raise AssertionError(f"{name}.from_dict: {path} = {bad!r}: {exc!r}") from exc
    assert checked > 500
