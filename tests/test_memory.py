"""Tests of leakscope.memory: _debugmallocstats parsing, fd-2 capture, breakdown, growth classes.

Tests that allocate hundreds of MB, call malloc through ctypes or depend on RSS run
in a fresh interpreter and assert on the classification with wide margins, never
on exact byte counts.
"""

from __future__ import annotations

import gc
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from _support import run_python_json

from leakscope import memory
from leakscope._interpreter import preserved
from leakscope.errors import LeakscopeError, SnapshotError
from leakscope.memory import (
    MallocStatsError,
    MemoryBreakdown,
    MemoryGrowth,
    gc_counters,
    memory_breakdown,
    parse_mallocstats,
    read_mallocstats,
)

DATA = Path(__file__).parent / "data" / "mallocstats"
MiB = 1 << 20
LINUX = sys.platform.startswith("linux")
linux_only = pytest.mark.skipif(not LINUX, reason="RSS and smaps_rollup are read on Linux")


# --------------------------------------------------------------------------------------
# parsing captured outputs

# (file, arenas, arena bytes, bytes in allocated blocks, available, unused pools, classes)
CAPTURED = [
    ("cpython-3.10.txt", 4, 4_194_304, 2_957_168, 269_728, 54, 32),
    ("cpython-3.11.txt", 3, 3_145_728, 2_427_888, 327_984, 20, 29),
    ("cpython-3.12.txt", 3, 3_145_728, 2_399_904, 355_120, 21, 31),
    ("cpython-3.13.txt", 4, 4_194_304, 2_970_992, 272_368, 54, 32),
    ("cpython-3.13-pymalloc-debug.txt", 2, 2_097_152, 1_723_120, 277_808, 3, 31),
]


@pytest.mark.parametrize("expected", CAPTURED, ids=[c[0] for c in CAPTURED])
def test_parses_each_supported_version(expected: tuple[str, int, int, int, int, int, int]) -> None:
    name, arenas, arena_bytes, used, avail, pools, nclasses = expected
    stats = parse_mallocstats((DATA / name).read_text())
    assert stats is not None
    assert (stats.arenas, stats.arena_size, stats.arena_bytes) == (arenas, MiB, arena_bytes)
    assert (stats.used_bytes, stats.available_bytes) == (used, avail)
    assert (stats.unused_pools, stats.pool_size) == (pools, 16384)
    assert len(stats.size_classes) == nclasses
    assert all(c.size % 16 == 0 and c.size <= 512 for c in stats.size_classes)
    assert stats.free_bytes == arena_bytes - used
    assert 0 < stats.utilization < 1
    assert stats.arenas_highwater >= stats.arenas


def test_every_supported_version_has_a_capture() -> None:
    names = {p.name for p in DATA.iterdir()}
    for minor in (10, 11, 12, 13):
        assert f"cpython-3.{minor}.txt" in names


def test_every_line_of_real_outputs_is_recognized() -> None:
    """Lines not recognized are echoed back to stderr: real output must never be."""
    for path in DATA.glob("cpython-*.txt"):
        assert [
            line for line in path.read_text().splitlines() if not memory._recognized(line)
        ] == []


def test_output_without_pymalloc_is_reported_absent() -> None:
    assert parse_mallocstats((DATA / "cpython-3.11-pythonmalloc-malloc.txt").read_text()) is None
    assert parse_mallocstats("") is None


def test_corrupted_number_is_a_clear_error() -> None:
    with pytest.raises(MallocStatsError, match="inconsistent: size classes hold") as info:
        parse_mallocstats((DATA / "garbled-corrupt-number.txt").read_text())
    assert isinstance(info.value, LeakscopeError)
    assert isinstance(info.value, ValueError)


def test_truncated_output_is_a_clear_error() -> None:
    with pytest.raises(MallocStatsError, match="truncated or garbled: missing available_bytes"):
        parse_mallocstats((DATA / "garbled-truncated.txt").read_text())


def test_summary_without_header_is_an_error() -> None:
    text = (DATA / "cpython-3.12.txt").read_text().split("\n", 1)[1]
    with pytest.raises(MallocStatsError, match="Small block threshold"):
        parse_mallocstats(text)


def test_parse_rejects_non_text() -> None:
    with pytest.raises(TypeError, match="needs a str"):
        parse_mallocstats(b"Small block threshold")  # type: ignore[arg-type]


def test_garbled_capture_makes_pymalloc_unavailable_not_a_crash(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    garbled = (DATA / "garbled-truncated.txt").read_text()
    monkeypatch.setattr(memory, "read_mallocstats", lambda: garbled)
    b = memory_breakdown()
    assert b.pymalloc is None
    assert "truncated or garbled" in b.unavailable["pymalloc"]
    assert "pymalloc: unavailable" in str(b)


# --------------------------------------------------------------------------------------
# capturing fd 2


def _fd2_identity() -> tuple[int, int, bool]:
    st = os.fstat(2)
    return st.st_dev, st.st_ino, os.get_inheritable(2)


@pytest.mark.version_sensitive
def test_capture_reads_the_live_interpreter_and_restores_fd2() -> None:
    before = _fd2_identity()
    text = read_mallocstats()
    assert _fd2_identity() == before
    stats = parse_mallocstats(text)
    if stats is None:  # PYTHONMALLOC=malloc or a build without pymalloc
        pytest.skip("this interpreter does not use pymalloc")
    assert stats.arenas >= 1 and stats.used_bytes > 0


def test_fd2_restored_when_debugmallocstats_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom() -> None:
        raise RuntimeError("boom")

    before = _fd2_identity()
    monkeypatch.setattr(sys, "_debugmallocstats", boom)
    with pytest.raises(RuntimeError, match="boom"):
        read_mallocstats()
    assert _fd2_identity() == before


def test_stray_output_of_other_writers_goes_back_to_stderr(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    real = (DATA / "cpython-3.12.txt").read_text()

    cut = real.index("\n", 200) + 1

    def fake() -> None:  # another thread's log line lands between two lines of the stats
        os.write(2, (real[:cut] + "log: request 17 done\n" + real[cut:]).encode())

    monkeypatch.setattr(sys, "_debugmallocstats", fake)
    text = read_mallocstats()
    assert parse_mallocstats(text) is not None
    err = capfd.readouterr().err
    assert "log: request 17 done" in err
    assert "arenas allocated" not in err


def test_missing_debugmallocstats_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(sys, "_debugmallocstats")
    with pytest.raises(MallocStatsError, match=r"no sys\._debugmallocstats"):
        read_mallocstats()
    assert "no sys._debugmallocstats" in memory_breakdown().unavailable["pymalloc"]


@pytest.mark.version_sensitive
def test_closed_fd2_stays_closed() -> None:
    out = run_python_json(
        """
        import json, os
        from leakscope.memory import parse_mallocstats, read_mallocstats
        os.close(2)
        stats = parse_mallocstats(read_mallocstats())
        try:
            os.fstat(2)
            closed = False
        except OSError:
            closed = True
        print(json.dumps({"closed": closed, "parsed": stats is not None}))
        """
    )
    assert out["closed"] is True
    assert out["parsed"] is True


# --------------------------------------------------------------------------------------
# the breakdown and its JSON form


@pytest.mark.version_sensitive
def test_gc_counters_are_plain_json_dicts() -> None:
    before = gc_counters()
    gc.collect()
    after = gc_counters()
    assert json.loads(json.dumps(after)) == after
    assert after["thresholds"] == list(gc.get_threshold())
    assert len(after["generations"]) == len(gc.get_stats())
    assert after["generations"][-1]["collections"] > before["generations"][-1]["collections"]
    assert set(after["generations"][0]) == {"collections", "collected", "uncollectable"}


@pytest.mark.version_sensitive
@linux_only
def test_breakdown_reads_every_part_on_linux() -> None:
    b = memory_breakdown()
    assert b.rss is not None and b.rss > 0
    assert b.pss is not None and b.uss is not None and 0 < b.uss <= b.rss
    assert b.allocated_blocks > 0
    assert b.gc["thresholds"] == list(gc.get_threshold())
    if b.pymalloc is not None:
        assert b.unexplained is not None
        assert b.pymalloc.arena_bytes < b.rss
    text = str(b)
    assert "RSS" in text and "allocated blocks" in text


def test_breakdown_round_trips_through_json() -> None:
    b = memory_breakdown()
    again = MemoryBreakdown.from_dict(json.loads(json.dumps(b.to_dict())))
    assert again == b
    assert str(again) == str(b)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(format=99), "format"),
        (lambda d: d.update(rss="12"), "rss: must be an integer"),
        (lambda d: d.update(allocated_blocks=None), "allocated_blocks"),
        (lambda d: d.update(pymalloc={"arenas": 1}), "pymalloc"),
        (lambda d: d.update(malloc=[1, 2]), "malloc"),
        (lambda d: d.update(unavailable={"rss": 3}), "unavailable"),
        (lambda d: d.update(gc={"x": object()}), "unexpected object"),
        (lambda d: d.update(timestamp=True), "timestamp"),
    ],
)
def test_malformed_breakdown_dict_raises_snapshot_error(mutate: Any, message: str) -> None:
    d = memory_breakdown().to_dict()
    d["pymalloc"] = d["pymalloc"] or memory.PymallocStats(*([1] * 13)).to_dict()
    d["malloc"] = d["malloc"] or memory.MallocInfo(1, 2, 3, 4, 5).to_dict()
    mutate(d)
    with pytest.raises(SnapshotError, match=message):
        MemoryBreakdown.from_dict(d)
    with pytest.raises(SnapshotError):
        MemoryBreakdown.from_dict([1, 2])


def test_unreadable_parts_are_none_with_reasons(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a non-Linux platform sees: no RSS, no smaps, no glibc."""
    monkeypatch.setattr(memory, "rss_bytes", lambda: None)
    monkeypatch.setattr(memory, "_read_smaps_rollup", lambda: "no /proc on this platform")
    monkeypatch.setattr(memory, "_mallinfo2", "not glibc")
    before = memory_breakdown()
    after = memory_breakdown()
    for part in ("rss", "pss", "uss", "malloc"):
        assert part in after.unavailable
    assert (after.rss, after.pss, after.uss, after.malloc, after.unexplained) == (None,) * 5
    growth = after - before
    assert growth.rss is None and growth.native is None and growth.malloc_retention is None
    assert any("RSS is unavailable" in c for c in growth.caveats)
    assert growth.kind in ("none", "python_objects")


@pytest.mark.version_sensitive
def test_tracing_hides_pymalloc_and_growth_says_so() -> None:
    with preserved() as state:
        state.start_tracing()
        before = memory_breakdown()
        after = memory_breakdown()
    assert before.traced is not None and before.tracemalloc_overhead is not None
    # CPython 3.10-3.13 print no arenas while tracemalloc hooks the allocator.
    assert after.pymalloc is None
    assert "tracemalloc is tracing" in after.unavailable["pymalloc"]
    growth = after - before
    assert growth.traced is True
    assert any("fragmentation) counts as native" in c for c in growth.caveats)


def test_diff_and_subtraction_agree_and_check_types() -> None:
    a = memory_breakdown()
    b = memory_breakdown()
    g1, g2 = b.diff(a), b - a
    assert (g1.kind, g1.rss, g1.python_objects) == (g2.kind, g2.rss, g2.python_objects)
    with pytest.raises(TypeError, match="MemoryBreakdown"):
        b.diff(3)  # type: ignore[arg-type]
    assert b.__sub__(3) is NotImplemented
    assert b.diff(a, min_bytes=1 << 40).kind == "none"


def test_growth_round_trips_and_validates() -> None:
    a = memory_breakdown()
    keep = [[i] for i in range(50_000)]
    growth = memory_breakdown() - a
    del keep
    again = MemoryGrowth.from_dict(json.loads(json.dumps(growth.to_dict())))
    assert again == growth
    bad = growth.to_dict()
    bad["kind"] = "leak-ish"
    with pytest.raises(SnapshotError, match="kind: must be one of") as info:
        MemoryGrowth.from_dict(bad)
    assert info.value.field == "kind"
    bad = growth.to_dict()
    del bad["explanation"]
    with pytest.raises(SnapshotError, match="explanation: missing"):
        MemoryGrowth.from_dict(bad)
    bad = {**growth.to_dict(), "gc": {"gen0": [1, "2"]}}
    with pytest.raises(SnapshotError) as info:
        MemoryGrowth.from_dict(bad)
    assert info.value.field == "gc.gen0[1]"


@pytest.mark.version_sensitive
# --------------------------------------------------------------------------------------
# classification, each in a fresh interpreter

@linux_only
def test_scattered_survivors_are_allocator_retention_and_full_free_returns_rss() -> None:
    # ~210 MB of 150-byte objects (pymalloc's 192-byte class: ~85 per 16 KiB pool);
    # keeping every 50th leaves survivors in every pool, hence in every 1 MiB arena.
    out = run_python_json(
        """
        import json
        from leakscope.memory import memory_breakdown
        before = memory_breakdown()
        objs = [bytes(150) for _ in range(1_100_000)]
        peak = memory_breakdown()
        keep = objs[::50]
        del objs
        retained = memory_breakdown() - before
        del keep
        freed = memory_breakdown() - before
        print(json.dumps({"peak": peak.rss - before.rss, "retained": retained.to_dict(),
                          "text": str(retained), "freed": freed.to_dict()}))
        """,
    )
    retained, freed, peak = out["retained"], out["freed"], out["peak"]
    assert peak > 150 * MiB  # the workload really allocated ~200 MB
    assert retained["kind"] == "allocator_retention", out["text"]
    # RSS stays high (at least 3/4 of the peak) while live objects are ~2% of it.
    assert retained["rss"] > 0.75 * peak
    assert retained["python_objects"] < 0.1 * peak
    assert retained["pymalloc_retention"] > 0.75 * peak
    assert "not a leak" in out["text"] and "arena" in out["text"]
    # Freeing the survivors too empties the arenas: RSS comes back (within 1/4 of the peak).
    assert freed["rss"] < 0.25 * peak
    assert freed["pymalloc_retention"] < 0.05 * peak  # the arenas went back to the OS


@pytest.mark.version_sensitive
@linux_only
def test_growing_list_of_objects_is_python_objects() -> None:
    out = run_python_json(
        """
        import json
        from leakscope.memory import memory_breakdown
        class Order:
            __slots__ = ("id", "lines")
            def __init__(self, i):
                self.id, self.lines = i, (i, i + 1)
        before = memory_breakdown()
        orders = [Order(i * 1000) for i in range(300_000)]
        growth = memory_breakdown() - before
        print(json.dumps({"growth": growth.to_dict(), "text": str(growth)}))
        """,
    )
    growth = out["growth"]
    assert growth["kind"] == "python_objects", out["text"]
    assert growth["allocated_blocks"] > 300_000 * 2  # an Order, a tuple, two ints each
    assert growth["python_objects"] > 10 * MiB
    assert "leak candidates" in out["text"] and "snapshot" in out["text"]


@pytest.mark.version_sensitive
@linux_only
def test_growing_list_with_tracemalloc_is_python_objects() -> None:
    out = run_python_json(
        """
        import json
        from leakscope.memory import memory_breakdown
        import tracemalloc
        tracemalloc.start()
        before = memory_breakdown()
        rows = [{"id": i, "name": str(i)} for i in range(100_000)]
        growth = memory_breakdown() - before
        print(json.dumps({"growth": growth.to_dict(), "text": str(growth)}))
        """,
    )
    growth = out["growth"]
    assert growth["traced"] is True
    assert growth["kind"] == "python_objects", out["text"]
    assert growth["python_objects"] > 10 * MiB


@pytest.mark.version_sensitive
@linux_only
def test_ctypes_malloc_loop_is_native() -> None:
    out = run_python_json(
        """
        import json
        from leakscope.memory import memory_breakdown
        import ctypes
        libc = ctypes.CDLL(None)
        libc.malloc.restype = ctypes.c_void_p
        libc.malloc.argtypes = [ctypes.c_size_t]
        before = memory_breakdown()
        blocks = []
        for _ in range(100):
            p = libc.malloc(1 << 20)
            ctypes.memset(p, 1, 1 << 20)  # touch the pages so they become resident
            blocks.append(p)
        growth = memory_breakdown() - before
        print(json.dumps({"growth": growth.to_dict(), "text": str(growth)}))
        """,
    )
    growth = out["growth"]
    assert growth["kind"] == "native", out["text"]
    assert growth["native"] > 75 * MiB  # 100 MiB malloc'd and touched
    assert growth["python_objects"] < 5 * MiB
    assert "neither by pymalloc nor by tracemalloc" in out["text"]
