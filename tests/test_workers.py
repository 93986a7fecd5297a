"""Worker states published to a directory: round trip, liveness, corrupt files, bounds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from leakscope.web.workers import MAX_BYTES, exit_snapshot_path, publish, read_workers


def state(pid: int, **extra: Any) -> dict[str, Any]:
    return {"pid": pid, "requests": 3, "routes": [], "timeline": [], "alive": True, **extra}


def dead_pid() -> int:
    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(proc.stdout)


def test_publish_and_read_round_trip(tmp_path: Path) -> None:
    directory = tmp_path / "new" / "dir"
    me = os.getpid()
    gone = dead_pid()
    publish(directory, state(me, rss=123))
    publish(directory, state(gone))
    publish(directory, state(me, rss=456))  # replaces the first
    workers = read_workers(directory)
    assert [w["pid"] for w in workers] == sorted([me, gone])
    mine = next(w for w in workers if w["pid"] == me)
    assert mine["rss"] == 456 and mine["alive"] is True
    assert next(w for w in workers if w["pid"] == gone)["alive"] is False
    assert sorted(p.name for p in directory.iterdir()) == sorted(
        [f"worker-{me}.json", f"worker-{gone}.json"]
    )  # no temporary file left behind


def test_corrupt_and_foreign_files_are_skipped(tmp_path: Path) -> None:
    publish(tmp_path, state(os.getpid()))
    (tmp_path / "worker-11.json").write_text('{"pid": 11, "requests"')  # truncated
    (tmp_path / "worker-12.json").write_text("[1, 2]")
    (tmp_path / "worker-13.json").write_text(json.dumps(state(99)))  # pid does not match
    (tmp_path / "worker-14.json").write_bytes(b"\xff\xfe")
    (tmp_path / "worker-15.json").write_text(json.dumps(state(15, pad="x" * (MAX_BYTES + 1))))
    (tmp_path / "worker-16.json").mkdir()
    (tmp_path / "notes.txt").write_text("hello")
    assert [w["pid"] for w in read_workers(tmp_path)] == [os.getpid()]
    assert read_workers(tmp_path / "missing") == []


def test_a_huge_state_is_trimmed_to_the_bound(tmp_path: Path) -> None:
    timeline = [{"time": float(i), "types": {"x" * 50: i}} for i in range(20_000)]
    publish(tmp_path, state(os.getpid(), timeline=timeline))
    size = (tmp_path / f"worker-{os.getpid()}.json").stat().st_size
    assert size <= MAX_BYTES
    (got,) = read_workers(tmp_path)
    assert 0 < len(got["timeline"]) < len(timeline)
    assert got["timeline"][-1] == timeline[-1]  # the newest points are kept


def test_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="pid"):
        publish(tmp_path, {"requests": 1})
    with pytest.raises(ValueError, match="pid"):
        publish(tmp_path, state(True))  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        publish(tmp_path, state(os.getpid(), rss=float("nan")))
    assert list(tmp_path.iterdir()) == []
    assert exit_snapshot_path(tmp_path, 42) == tmp_path / "exit-42.json"
    with pytest.raises(ValueError, match="pid"):
        exit_snapshot_path(tmp_path, 0)
