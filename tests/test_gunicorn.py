"""The gunicorn hooks under a real ``gunicorn -w 2`` (with and without --preload), and alone."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from _support import child_env, run_python

from leakscope import Snapshot
from leakscope.web.gunicorn import child_exit, post_fork, post_worker_init, worker_exit
from leakscope.web.workers import read_workers

GUNICORN = Path(sys.executable).parent / "gunicorn"

SERVICE = """
from leakscope.web.middleware import LeakMiddleware

LEAK = []


class Blob:
    def __init__(self, n):
        self.n = n


def _app(environ, start_response):
    path = environ["PATH_INFO"]
    if path.startswith("/leaky/"):
        LEAK.append(Blob(path))
    body = b"ok " + path.encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-Len", str(len(body)))])
    return [body]


app = LeakMiddleware(_app, sample=1.0, budget=1.0, interval=0.05)
# Publish after every request: the test reads each worker's request count to know when no
# worker is about to be recycled (see booted_and_settled).
app.monitor.publisher.every = 0.0
"""

CONFIG = """
from leakscope.web.gunicorn import child_exit, post_fork, post_worker_init, worker_exit
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(port: int, path: str, deadline: float) -> int:
    """GET ``path``; retried while a recycled worker is replaced, until ``deadline``."""
    while True:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            return response.status
        except (ConnectionError, http.client.HTTPException):
            if time.monotonic() > deadline:
                raise
        finally:
            conn.close()


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def children(pid: int) -> set[int]:
    """The live child processes of ``pid`` (gunicorn's workers), read from /proc."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(entry))
    return found


def booted_and_settled(server: Server, max_requests: int) -> bool:
    """Every current worker is past its boot and none is about to be recycled.

    gunicorn loses a SIGTERM that reaches a worker between its fork and its own signal
    set-up (the master's handler, inherited, queues the signal where nobody reads it):
    that worker is SIGKILLed after the graceful timeout and writes no exit snapshot.  So
    the test stops the server only when each worker has published a state (post_worker_init
    runs after the set-up) with fewer requests than ``max_requests`` (it will not exit and
    be replaced meanwhile), and no worker has begun to exit.
    """
    pids = children(server.process.pid)
    states = {w["pid"]: w for w in read_workers(server.state)}
    return len(pids) == 2 and all(
        pid in states
        and states[pid]["requests"] < max_requests
        and not (server.state / f"exit-{pid}.json").exists()
        for pid in pids
    )


def wait_until(condition: object, deadline: float, what: str) -> None:
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class Server:
    """A gunicorn serving ``svc:app`` from ``tmp_path``; stopped (SIGTERM) on exit."""

    def __init__(self, tmp_path: Path, *options: str) -> None:
        (tmp_path / "svc.py").write_text(textwrap.dedent(SERVICE))
        (tmp_path / "gunicorn.conf.py").write_text(textwrap.dedent(CONFIG))
        self.state = tmp_path / "state"
        self.port = free_port()
        env = child_env({"LEAKSCOPE_DIR": str(self.state)}, tmp_path)
        args = [str(GUNICORN), "-w", "2", "-b", f"127.0.0.1:{self.port}"]
        args += ["-c", "gunicorn.conf.py", "--graceful-timeout", "5", "--log-level", "warning"]
        self.process = subprocess.Popen(
            [*args, *options, "svc:app"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.output = ""
        self.deadline = time.monotonic() + 30

    def __enter__(self) -> Server:
        try:
            wait_until(
                lambda: listening(self.port) or self.process.poll() is not None,
                self.deadline,
                "gunicorn to listen",
            )
            assert self.process.poll() is None, self.process.communicate()[0].decode()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.output = self.process.communicate(timeout=30)[0].decode()
        except subprocess.TimeoutExpired:  # pragma: no cover - a hung server
            self.process.kill()
            self.output = self.process.communicate()[0].decode()


needs_gunicorn = pytest.mark.skipif(not GUNICORN.exists(), reason="gunicorn is not installed")


@pytest.mark.slow
@pytest.mark.integration
@needs_gunicorn
@pytest.mark.parametrize("preload", [False, True], ids=["no-preload", "preload"])
def test_real_gunicorn_workers_publish_and_write_exit_snapshots(
    tmp_path: Path, preload: bool
) -> None:
    options = ["--max-requests", "40", *["--preload"] * preload]
    with Server(tmp_path, *options) as server:
        port, state, deadline = server.port, server.state, server.deadline
        for i in range(100):
            assert get(port, f"/leaky/{i}", deadline) == 200
            assert get(port, f"/clean/{i}", deadline) == 200
        # 200 requests, recycled every 40: at least 3 workers have exited by now.
        wait_until(lambda: len(list(state.glob("exit-*.json"))) >= 3, deadline, "exit snapshots")
        wait_until(lambda: booted_and_settled(server, 40), deadline, "the workers to settle")
    output = server.output
    assert server.process.returncode == 0, output
    assert "Traceback" not in output and "AssertionError" not in output, output
    exits = sorted(state.glob("exit-*.json"))
    assert len(exits) >= 5  # the recycled workers and the two stopped at shutdown
    for path in exits:
        snap = Snapshot.load(path)
        assert path.name == f"exit-{snap.pid}.json"
        assert snap.objects > 0
    assert max(Snapshot.load(p).types.get("svc.Blob", 0) for p in exits) >= 10
    workers = read_workers(state)
    pids = {w["pid"] for w in workers}
    assert pids == {int(p.stem.split("-")[1]) for p in exits}
    assert not any(w["alive"] for w in workers)
    assert sum(w["requests"] for w in workers) == 200
    routes = [r for w in workers for r in w["routes"]]
    assert {r["route"] for r in routes} == {"GET /leaky/{id}", "GET /clean/{id}"}
    assert any(r["leaking"] for r in routes if r["route"] == "GET /leaky/{id}"), routes
    assert not any(r["leaking"] for r in routes if r["route"] == "GET /clean/{id}"), routes
    leaky = [r for r in routes if r["leaking"]]
    assert all(r["top_types"][0]["type"] == "svc.Blob" for r in leaky)


def test_hooks_take_any_objects_and_never_raise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEAKSCOPE_DIR", str(tmp_path))
    post_fork(None, None)
    post_worker_init(object())
    worker_exit(None, object())
    child_exit(None, None)
    snap = Snapshot.load(tmp_path / f"exit-{os.getpid()}.json")
    assert snap.pid == os.getpid()
    monkeypatch.setenv("LEAKSCOPE_DIR", str(tmp_path / "file"))
    (tmp_path / "file").write_text("not a directory")
    worker_exit(None, None)  # logged, not raised
    monkeypatch.delenv("LEAKSCOPE_DIR")
    worker_exit(None, None)  # no directory: nothing to write


@pytest.mark.slow
def test_the_hooks_import_without_gunicorn() -> None:
    out = run_python(
        """
        import sys
        sys.modules["gunicorn"] = None  # import gunicorn would fail
        from leakscope.web.gunicorn import child_exit, post_fork, post_worker_init, worker_exit
        print("imported", "gunicorn" in sys.modules and sys.modules["gunicorn"] is None)
        """
    )
    assert out.strip() == "imported True"


@pytest.mark.slow
@pytest.mark.integration
@needs_gunicorn
def test_threaded_workers_serve_concurrent_requests(tmp_path: Path) -> None:
    errors: list[BaseException] = []
    with Server(tmp_path, "--threads", "4") as server:

        def client(k: int) -> None:
            try:
                for i in range(50):
                    path = f"/{'leaky' if i % 2 else 'clean'}/{k * 100 + i}"
                    assert get(server.port, path, server.deadline) == 200
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=client, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not errors
    assert server.process.returncode == 0, server.output
    assert "Traceback" not in server.output, server.output
    workers = read_workers(server.state)
    assert sum(w["requests"] for w in workers) == 200
    for w in workers:
        assert w["sampled"] + w["overhead"]["skipped_busy"] <= w["requests"]
        assert not any(r["leaking"] for r in w["routes"] if r["route"] == "GET /clean/{id}")


def test_child_exit_marks_the_worker_dead_for_prometheus_multiprocess_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("prometheus_client")
    from prometheus_client import multiprocess

    dead: list[int] = []
    monkeypatch.setattr(multiprocess, "mark_process_dead", dead.append)

    class Worker:
        pid = 4242

    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    child_exit(None, Worker())
    assert dead == []  # not in multiprocess mode: nothing to mark
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    child_exit(None, Worker())
    child_exit(None, object())  # no pid: ignored
    assert dead == [4242]
