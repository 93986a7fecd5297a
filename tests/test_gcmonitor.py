"""Tests of leakscope.gcmonitor: recording through gc.callbacks, reports, advice."""

from __future__ import annotations

import gc
import json
import threading
from typing import Any

import pytest
from _support import run_python_json

from leakscope.errors import DataError
from leakscope.gcmonitor import (
    MIN_COLLECTIONS,
    Advice,
    GCReport,
    GenerationStats,
    _bucket_bounds,
    _percentile,
    gc_advice,
    gc_monitor,
)


class Cyclic:
    def __init__(self) -> None:
        self.me = self


def make_cycles(n: int) -> None:
    for _ in range(n):
        Cyclic()


def gen(g: int, n: int, **kw: Any) -> GenerationStats:
    values: dict[str, Any] = {
        "generation": g,
        "collections": n,
        "collected": 0,
        "uncollectable": 0,
        "pause_total_ns": 50_000 * n,
        "pause_max_ns": 90_000,
        "pause_p50_ns": 50_000,
        "pause_p99_ns": 80_000,
        "interval_mean_ns": 1_000_000 if n > 1 else None,
    }
    values.update(kw)
    return GenerationStats(**values)


def report(*gens: GenerationStats, seconds: float = 1.0, **kw: Any) -> GCReport:
    values: dict[str, Any] = {
        "duration_ns": int(seconds * 1e9),
        "generations": gens,
        "thresholds": (700, 10, 10),
        "enabled": True,
        "freeze_count": 0,
    }
    values.update(kw)
    return GCReport(**values)


def kinds(advice: list[Advice]) -> list[str]:
    return [a.kind for a in advice]


# --------------------------------------------------------------------------------------
# recording


@pytest.mark.version_sensitive
def test_short_lived_cycles_give_pause_stats_and_a_threshold_suggestion() -> None:
    with gc_monitor() as monitor:
        make_cycles(300_000)
    r = monitor.report()
    g0 = r.generations[0]
    # 300,000 allocations with a first threshold of 700 (2000 on 3.13): >= 150 collections.
    assert g0.collections >= 100
    assert g0.collected >= 100_000  # most of the cycles were collected by gen 0
    assert 0 < g0.pause_p50_ns <= g0.pause_p99_ns <= g0.pause_max_ns
    assert g0.pause_total_ns >= g0.collections * min(h[0] for h in g0.histogram)
    assert sum(n for _, n in g0.histogram) == g0.collections
    assert g0.interval_mean_ns is not None and g0.interval_mean_ns > 0
    assert r.collected == sum(g.collected for g in r.generations)
    advice = r.advice()
    # The run lasts well under a second on any machine, so gen 0 runs far more than
    # 100 times a second (FREQUENT_GEN0_PER_S): a suggestion with the numbers behind it.
    raise_ = [a for a in advice if a.kind == "raise_threshold"]
    assert raise_, [str(a) for a in advice]
    evidence = dict(raise_[0].evidence)
    assert evidence["gen0_collections"] == g0.collections
    assert f"{g0.collections:,} times" in raise_[0].message
    assert evidence["suggested_threshold0"] > evidence["threshold0"] == gc.get_threshold()[0]
    assert f"gc.set_threshold({evidence['suggested_threshold0']}" in raise_[0].message
    assert "disable_gc" not in kinds(advice)  # garbage was found: never suggest disabling
    text = str(r)
    assert "p50 pause" in text and f"{g0.collections:,}" in text


@pytest.mark.version_sensitive
def test_workloads_with_and_without_cycles_in_fresh_interpreters() -> None:
    code = """
        import gc, json
        from leakscope.gcmonitor import gc_monitor

        class Cyclic:
            def __init__(self):
                self.me = self

        def run(cycles):
            gc.collect()  # garbage left by imports or the other run is not this run's
            with gc_monitor() as m:
                keep = []
                for i in range(200_000):
                    if cycles:
                        Cyclic()
                    else:
                        keep.append([i])  # containers, tracked by the collector, no cycles
                        if len(keep) > 10_000:  # above every first threshold
                            keep.clear()
            r = m.report()
            return {"collected": r.collected, "collections": r.collections,
                    "advice": [a.kind for a in r.advice()]}

        print(json.dumps({"acyclic": run(False), "cycles": run(True)}))
    """
    out = run_python_json(code)
    acyclic, cycles = out["acyclic"], out["cycles"]
    assert acyclic["collections"] >= MIN_COLLECTIONS
    assert acyclic["collected"] == 0
    assert "disable_gc" in acyclic["advice"]  # garbage is zero: the one case it may appear
    assert cycles["collected"] > 0
    assert "disable_gc" not in cycles["advice"]


def test_too_few_collections_mean_no_advice_yet() -> None:
    with gc_monitor() as monitor:
        gc.collect()
    advice = gc_advice(monitor.report())
    assert kinds(advice) == ["insufficient_data"]
    assert "nothing can be advised yet" in advice[0].message
    assert dict(advice[0].evidence)["collections"] < MIN_COLLECTIONS


def test_callbacks_restored_exactly_with_user_callbacks_added_meanwhile() -> None:
    def first(phase: str, info: dict[str, int]) -> None:
        pass

    def second(phase: str, info: dict[str, int]) -> None:
        pass

    saved = list(gc.callbacks)
    gc.callbacks.append(first)
    try:
        monitor = gc_monitor().start()
        gc.callbacks.append(second)
        gc.callbacks.append(first)  # the same callable twice: both stay
        assert len(gc.callbacks) == len(saved) + 4
        monitor.stop()
        assert gc.callbacks == [*saved, first, second, first]
        monitor.stop()  # stopping twice changes nothing
        assert gc.callbacks == [*saved, first, second, first]
    finally:
        gc.callbacks[:] = saved


def test_callback_removed_when_the_block_raises() -> None:
    saved = list(gc.callbacks)
    with pytest.raises(KeyError), gc_monitor() as monitor:
        assert monitor.running
        raise KeyError("x")
    assert not monitor.running
    assert gc.callbacks == saved


def test_start_twice_raises_and_restart_accumulates() -> None:
    monitor = gc_monitor().start()
    try:
        with pytest.raises(RuntimeError, match="already running"):
            monitor.start()
        gc.collect()
    finally:
        first = monitor.stop()
    gc.collect()  # not monitored
    assert monitor.report().collections == first.collections
    with monitor:
        gc.collect()
    assert monitor.report().generations[2].collections == first.generations[2].collections + 1


@pytest.mark.version_sensitive
def test_stop_from_a_finalizer_during_a_collection() -> None:
    saved = list(gc.callbacks)
    monitor = gc_monitor().start()
    reports: list[GCReport] = []

    class StopsMonitor:
        def __init__(self) -> None:
            self.me = self

        def __del__(self) -> None:
            reports.append(monitor.stop())

    gc.collect()
    StopsMonitor()
    gc.collect()  # the finalizer runs between this collection's "start" and "stop"
    assert not monitor.running
    assert gc.callbacks == saved
    assert len(reports) == 1
    assert reports[0].generations[2].collections >= 1  # the first gc.collect()


def test_dropped_running_monitor_removes_its_callback() -> None:
    saved = list(gc.callbacks)
    monitor = gc_monitor().start()
    assert len(gc.callbacks) == len(saved) + 1
    del monitor
    gc.collect()
    assert gc.callbacks == saved


@pytest.mark.version_sensitive
def test_reports_from_other_threads_are_consistent() -> None:
    """Reporting while other threads trigger collections gives whole collections only."""
    errors: list[BaseException] = []
    reports: list[GCReport] = []
    saved = list(gc.callbacks)
    with gc_monitor() as monitor:

        def work() -> None:
            try:
                make_cycles(60_000)
            except BaseException as e:  # pragma: no cover - reported below
                errors.append(e)

        def watch() -> None:
            try:
                for _ in range(300):
                    reports.append(monitor.report())
            except BaseException as e:  # pragma: no cover - reported below
                errors.append(e)

        threads = [threading.Thread(target=work) for _ in range(3)]
        threads.append(threading.Thread(target=watch))
        # Other monitors starting and stopping meanwhile, from another thread.
        threads.append(
            threading.Thread(target=lambda: [gc_monitor().start().stop() for _ in range(200)])
        )
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not errors
    assert gc.callbacks == saved
    for r in [*reports, monitor.report()]:
        for g in r.generations:
            assert sum(n for _, n in g.histogram) == g.collections
            assert g.pause_max_ns <= g.pause_total_ns or g.collections == 0
    assert monitor.report().collections >= 20  # 180,000 cyclic objects: many collections


def test_report_round_trips_and_rejects_malformed_input() -> None:
    with gc_monitor() as monitor:
        make_cycles(20_000)
    r = monitor.report()
    again = GCReport.from_dict(json.loads(json.dumps(r.to_dict())))
    assert again == r
    first = r.generations[0].to_dict()
    for bad, field in (
        ([], ""),
        ({**r.to_dict(), "format": 2}, "format"),
        ({**r.to_dict(), "thresholds": "700"}, "thresholds"),
        ({**r.to_dict(), "thresholds": [700, -1]}, "thresholds[1]"),
        ({**r.to_dict(), "enabled": 1}, "enabled"),
        ({**r.to_dict(), "generations": [{"generation": "0"}]}, "generations[0].generation"),
        (
            {**r.to_dict(), "generations": [{**first, "histogram": [[1]]}]},
            "generations[0].histogram[0]",
        ),
        (
            {**r.to_dict(), "generations": [first, {**first, "pause_max_ns": None}]},
            "generations[1].pause_max_ns",
        ),
    ):
        with pytest.raises(DataError) as info:
            GCReport.from_dict(bad)
        assert info.value.field == field, (bad, str(info.value))
        assert not isinstance(info.value, (KeyError, TypeError))


# --------------------------------------------------------------------------------------
# histogram arithmetic


def test_buckets_are_contiguous_and_at_most_a_quarter_wide() -> None:
    previous_high = _bucket_bounds(12)[0]
    for index in range(12, 200):
        low, high = _bucket_bounds(index)
        assert low == previous_high
        assert (high - low) * 4 <= low
        previous_high = high


def test_percentiles_interpolate_within_buckets_and_respect_the_max() -> None:
    low, high = _bucket_bounds(40)
    assert _percentile({40: 10}, 10, 0.5, max_ns=10**9) == low + (high - low) // 2
    assert _percentile({40: 10}, 10, 0.99, max_ns=low + 1) == low + 1
    assert _percentile({}, 0, 0.5, max_ns=0) == 0


# --------------------------------------------------------------------------------------
# advice from given figures


def test_threshold_advice_needs_frequent_and_cheap_collections() -> None:
    frequent = report(gen(0, 5000), gen(1, 400), gen(2, 3), seconds=1.0)
    assert "raise_threshold" in kinds(gc_advice(frequent))
    rare = report(gen(0, 50), gen(1, 4), gen(2, 0), seconds=10.0)  # 5 per second
    assert "raise_threshold" not in kinds(gc_advice(rare))
    costly = report(gen(0, 5000, pause_p50_ns=5_000_000), gen(1, 400), gen(2, 3))
    assert "raise_threshold" not in kinds(gc_advice(costly))


def test_threshold_raise_warns_when_much_garbage_would_wait() -> None:
    heavy = report(gen(0, 5000, collected=5000 * 20_000), gen(1, 400, collected=1), gen(2, 3))
    advice = gc_advice(heavy)
    assert "garbage_warning" in kinds(advice)
    warning = next(a for a in advice if a.kind == "garbage_warning")
    assert "20,000 objects of cyclic garbage" in warning.message
    assert dict(warning.evidence)["garbage_per_collection"] == 20_000


def test_disable_advice_only_when_no_garbage_was_found() -> None:
    clean = report(gen(0, 300), gen(1, 30), gen(2, 3))
    advice = gc_advice(clean)
    assert "disable_gc" in kinds(advice)
    message = next(a for a in advice if a.kind == "disable_gc").message
    assert "333 times" in message and "found no cyclic garbage" in message
    dirty = report(gen(0, 300), gen(1, 30, collected=1), gen(2, 3))
    assert "disable_gc" not in kinds(gc_advice(dirty))
    disabled = report(gen(0, 300), gen(1, 30), gen(2, 3), enabled=False)
    assert "disable_gc" not in kinds(gc_advice(disabled))
    assert "collector_disabled" in kinds(gc_advice(disabled))


def test_freeze_advice_for_costly_full_collections() -> None:
    slow_full = gen(2, 12, pause_p50_ns=40_000_000, pause_max_ns=90_000_000, collected=5)
    advice = gc_advice(report(gen(0, 300, collected=1), gen(1, 30), slow_full))
    freeze = [a for a in advice if a.kind == "freeze"]
    assert freeze
    assert "40.00 ms" in freeze[0].message and "90.00 ms" in freeze[0].message
    assert "gc.freeze()" in freeze[0].message and "--preload" in freeze[0].message
    frozen = report(gen(0, 300, collected=1), gen(1, 30), slow_full, freeze_count=50_000)
    assert "freeze" not in kinds(gc_advice(frozen))


def test_uncollectable_and_no_change() -> None:
    stuck = report(gen(0, 300, collected=4, uncollectable=2), gen(1, 30), gen(2, 3), seconds=60)
    assert "uncollectable" in kinds(gc_advice(stuck))
    calm = report(gen(0, 300, collected=4), gen(1, 30), gen(2, 3), seconds=60)
    advice = gc_advice(calm)
    assert kinds(advice) == ["no_change"]
    assert "333 collections" in advice[0].message


def test_every_advice_quotes_evidence_and_renders() -> None:
    cases = [
        report(gen(0, 5000, collected=10**9), gen(1, 400), gen(2, 3, pause_p50_ns=10**8)),
        report(gen(0, 300), gen(1, 30), gen(2, 3)),
        report(gen(0, 1), gen(1, 0), gen(2, 0)),
    ]
    for r in cases:
        for a in gc_advice(r):
            assert a.evidence
            assert str(a).startswith(f"[{a.kind}] ")
            assert any(ch.isdigit() for ch in a.message)
            json.dumps(a.to_dict())
    with pytest.raises(TypeError, match="GCReport"):
        gc_advice({"collections": 3})  # type: ignore[arg-type]
