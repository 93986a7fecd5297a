"""Prometheus exposition: every live worker's metrics, also in prometheus-client's multiprocess mode."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any
from wsgiref.util import setup_testing_defaults

import pytest
from _support import PROJECT_ROOT, run_python_json

prometheus_client = pytest.importorskip("prometheus_client")
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from leakscope.web.middleware import LeakMiddleware  # noqa: E402

WORKER = """
import sys
from wsgiref.util import setup_testing_defaults
from leakscope.web.middleware import LeakMiddleware

KEEP = []

class Token:
    pass

def app(environ, start_response):
    KEEP.append(Token())
    start_response("200 OK", [])
    return [b"ok"]

mw = LeakMiddleware(app, sample=1.0, budget=1.0, interval=0.001)
for i in range(12):
    env = {}
    setup_testing_defaults(env)
    env["PATH_INFO"] = f"/keep/{i}"
    result = mw(env, lambda *a: None)
    b"".join(result)
    result.close()
mw.publish()
print("ready", flush=True)
sys.stdin.read()  # stay alive until the test is done
"""


def samples(body: bytes) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            out.setdefault(sample.name, []).append(sample)
    return out


@pytest.mark.slow
def test_two_worker_processes_in_multiprocess_mode(tmp_path: Path) -> None:
    state, multiproc = tmp_path / "state", tmp_path / "multiproc"
    multiproc.mkdir()
    env = dict(os.environ)
    env["PYTHONPATH"] = str(PROJECT_ROOT)
    env["LEAKSCOPE_DIR"] = str(state)
    env["PROMETHEUS_MULTIPROC_DIR"] = str(multiproc)
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(WORKER)],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        for w in workers:
            assert w.stdout is not None and w.stdout.readline().strip() == "ready"
        result = run_python_json(
            """
            import json
            from leakscope.web.prometheus import exposition
            body, content_type = exposition()
            print(json.dumps([body.decode(), content_type]))
            """,
            env_extra={"LEAKSCOPE_DIR": str(state), "PROMETHEUS_MULTIPROC_DIR": str(multiproc)},
        )
    finally:
        for w in workers:
            w.communicate("", timeout=30)
    body, content_type = result
    assert content_type.startswith("text/plain")
    found = samples(body.encode())
    pids = {str(w.pid) for w in workers}
    assert {s.labels["pid"] for s in found["leakscope_worker_rss_bytes"]} == pids
    assert {s.labels["pid"] for s in found["leakscope_requests_total"]} == pids
    assert all(s.value == 12 for s in found["leakscope_requests_sampled_total"])
    leaking = {
        s.labels["pid"]: s.value
        for s in found["leakscope_route_leaking"]
        if s.labels["route"] == "GET /keep/{id}"
    }
    assert leaking == dict.fromkeys(pids, 1.0)
    assert all(s.value == 1.0 for s in found["leakscope_route_retained_objects_per_request"])
    assert any(s.labels["type"] == "dict" for s in found["leakscope_worker_type_objects"])
    assert list(multiproc.iterdir()) == []  # nothing written into prometheus-client's files


def test_this_process_without_a_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    from leakscope.web.prometheus import exposition

    monkeypatch.delenv("LEAKSCOPE_DIR", raising=False)

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        return [b"ok"]

    mw = LeakMiddleware(app, sample=1.0, budget=1.0)
    env: dict[str, Any] = {}
    setup_testing_defaults(env)
    result = mw(env, lambda *a: None)
    b"".join(result)
    result.close()  # type: ignore[attr-defined]
    found = samples(exposition()[0])
    (rss,) = found["leakscope_worker_rss_bytes"]
    assert rss.labels["pid"] == str(os.getpid())
    (route,) = found["leakscope_route_requests_total"]
    assert route.labels["route"] == "GET /" and route.value == 1


@pytest.mark.slow
def test_missing_prometheus_client_is_a_clear_error() -> None:
    result = run_python_json(
        """
        import json, sys
        sys.modules["prometheus_client"] = None
        import leakscope.web.prometheus as p
        from leakscope import MissingDependencyError
        try:
            p.exposition()
        except MissingDependencyError as exc:
            print(json.dumps([exc.package, exc.extra, str(exc)]))
        """
    )
    assert result[:2] == ["prometheus-client", "prometheus"]
    assert "pip install 'pyleakscope[prometheus]'" in result[2]
