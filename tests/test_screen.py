"""leakscope.engine.screen without pytest's plugin: the cheap pass of ``pytest --leakscope``."""

from __future__ import annotations

import gc

import pytest

from leakscope.engine.calls import Stopped
from leakscope.engine.screen import Baseline, Observation, take_reading


def _observe(body, seconds: float = 1e-5, baseline: Baseline | None = None):
    """The screen's verdict on ``body``: its real run read, then re-runs as needed."""
    observation = Observation.begin(baseline)
    assert observation is not None
    try:
        body()
        observation.end(seconds)
        return observation.screen(body)
    finally:
        observation.close()


def test_a_clean_body_is_clean_and_the_heap_is_unfrozen_afterwards() -> None:
    frozen_before = gc.get_freeze_count()
    screening = _observe(lambda: sorted([3, 1, 2]))
    assert screening.outcome == "clean" and not screening.suspect
    assert gc.get_freeze_count() == frozen_before
    data = screening.to_dict()
    assert set(data) == {"suspect", "reason", "calls", "seconds", "objects", "blocks", "bytes"}
    assert len(data["objects"]) == len(data["blocks"]) == len(data["bytes"]) >= 1


def test_a_body_keeping_an_object_per_call_is_a_suspect() -> None:
    kept: list[object] = []
    screening = _observe(lambda: kept.append([len(kept)]))
    assert screening.suspect
    assert screening.calls >= 256 and "steady growth" in screening.reason
    assert all(n >= 1 for n in screening.objects[1:])


def test_a_slow_leaking_body_is_a_suspect_after_few_reruns() -> None:
    kept: list[object] = []
    # A body that took 0.2 s in its real run: one call per re-run, a few re-runs only.
    screening = _observe(lambda: kept.append([[] for _ in range(20)]), seconds=0.2)
    assert screening.suspect
    assert screening.calls <= 4


def test_a_cache_filled_on_the_first_run_costs_one_rerun() -> None:
    cache: dict[int, list[int]] = {}

    def body() -> None:
        for i in range(50):
            cache.setdefault(i, [i])

    screening = _observe(body, seconds=0.001)
    assert screening.outcome == "clean"
    assert screening.objects[0] >= 50  # the real run filled it
    assert screening.calls <= 2 * 2  # one or two batches of two calls


def test_a_failing_rerun_stops_the_screen() -> None:
    calls = []

    def body() -> None:
        calls.append([])
        if len(calls) > 1:
            raise ValueError("only once")

    observation = Observation.begin()
    assert observation is not None
    try:
        body()
        observation.end(1e-5)
        with pytest.raises(Stopped) as stopped:
            observation.screen(body)
        assert isinstance(stopped.value.exc, ValueError)
    finally:
        observation.close()


def test_objects_the_host_froze_stay_frozen() -> None:
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        assert Observation.begin() is None
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()


def test_a_reading_with_the_heap_frozen_sees_only_what_was_made_since() -> None:
    observation = Observation.begin()
    assert observation is not None
    try:
        before, _ = take_reading()
        made = [[] for _ in range(10)]
        after, _ = take_reading()
        assert after.types.get("list", 0) - before.types.get("list", 0) >= 10
        assert after.objects < 1000  # the session's objects are frozen, not counted
        del made
    finally:
        observation.close()


def test_the_baseline_is_the_harness_share_seen_in_every_first_run() -> None:
    baseline = Baseline()
    for i in range(10):
        baseline.learn({"list": 1, "dict": 1 + i % 2, f"T{i}": 3}, 14 + i % 3)
    assert baseline.types == {"list": 1, "dict": 1}
    assert baseline.blocks == 15
    kept: list[object] = []
    # With the share learnt, a test keeping one dict per run still shows it.
    screening = _observe(lambda: kept.append({}), baseline=baseline)
    assert screening.suspect
