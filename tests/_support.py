"""Helpers shared by the test modules (imported as ``from _support import ...``)."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def child_env(
    extra: dict[str, str] | None = None, *paths: str | os.PathLike[str]
) -> dict[str, str]:
    """This environment for a child process that imports leakscope from this checkout.

    ``paths`` come after the project on ``PYTHONPATH``; leakscope's own settings
    (``LEAKSCOPE_SAMPLE``, ``LEAKSCOPE_BUDGET``) are dropped so that the defaults apply,
    then ``extra`` is added.
    """
    env = dict(os.environ)
    path = [str(PROJECT_ROOT), *map(str, paths), *filter(None, [env.get("PYTHONPATH")])]
    env["PYTHONPATH"] = os.pathsep.join(path)
    env.pop("LEAKSCOPE_SAMPLE", None)
    env.pop("LEAKSCOPE_BUDGET", None)
    env.update(extra or {})
    return env


def run_cli(
    *args: str, cwd: str | os.PathLike[str] = PROJECT_ROOT, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``python -m leakscope ARGS`` in a fresh interpreter (see :func:`child_env`)."""
    return subprocess.run(
        [sys.executable, "-m", "leakscope", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
        env=child_env(),
        timeout=timeout,
    )


def run_python(
    code: str,
    *,
    python: str = sys.executable,
    timeout: float = 120.0,
    env_extra: dict[str, str] | None = None,
) -> str:
    """Run ``code`` in a fresh interpreter that can import leakscope; return its stdout.

    ``env_extra`` adds environment variables.  The test fails with the child's stderr
    when it exits non-zero.
    """
    env = child_env(env_extra)
    proc = subprocess.run(
        [python, "-c", textwrap.dedent(code)],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=PROJECT_ROOT,
    )
    if proc.returncode != 0:
        raise AssertionError(
            f"child Python exited with {proc.returncode}\n--- stdout\n{proc.stdout}"
            f"\n--- stderr\n{proc.stderr}"
        )
    return proc.stdout


def run_python_json(code: str, **kwargs: Any) -> Any:
    """Like :func:`run_python`, for code whose last line of output is a JSON document."""
    out = run_python(code, **kwargs).strip().splitlines()
    return json.loads(out[-1])


CHROMIUM = "/usr/bin/chromium"  # Debian's package; .ci/run installs it
# Headless, and no background connections: the test machines have no network.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def require_browser() -> Any:
    """``playwright.sync_api``; skips the calling test when it or Chromium is missing.

    Launch with ``p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)``.
    """
    import pytest

    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    return sync_api


GUNICORN = Path(sys.executable).parent / "gunicorn"
GUNICORN_HOOKS = (
    "from leakscope.web.gunicorn import child_exit, post_fork, post_worker_init, worker_exit\n"
)


class Gunicorn:
    """A real ``gunicorn -w N`` serving ``module:app`` from ``directory`` on loopback.

    Writes ``gunicorn.conf.py`` with leakscope's hooks and sets ``LEAKSCOPE_DIR`` to
    ``directory/state``.  Use as a context manager: it waits (at most ``timeout``
    seconds) until the port listens, and stops the server with SIGTERM on exit, keeping
    its output in :attr:`output`.  The caller skips when :data:`GUNICORN` is missing.
    """

    def __init__(
        self, directory: Path, app: str, *options: str, workers: int = 2, timeout: float = 30
    ) -> None:
        (directory / "gunicorn.conf.py").write_text(GUNICORN_HOOKS)
        self.state = directory / "state"
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self._args = [str(GUNICORN), "-w", str(workers), "-b", f"127.0.0.1:{self.port}"]
        self._args += ["-c", "gunicorn.conf.py", "--graceful-timeout", "5"]
        self._args += ["--log-level", "warning", *options, app]
        self._env = child_env({"LEAKSCOPE_DIR": str(self.state)}, directory)
        self._cwd = directory
        self._timeout = timeout
        self.output = ""
        self.returncode: int | None = None

    def __enter__(self) -> Gunicorn:
        self.process = subprocess.Popen(
            self._args,
            cwd=self._cwd,
            env=self._env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.deadline = time.monotonic() + self._timeout
        while self.process.poll() is None:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            if time.monotonic() > self.deadline:
                break
            time.sleep(0.05)
        self.__exit__()
        raise AssertionError(f"gunicorn did not start listening:\n{self.output}")

    def get(self, path: str) -> int:
        """GET ``path`` (one new connection); the response status."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            return response.status
        finally:
            conn.close()

    def __exit__(self, *exc_info: object) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.output = self.process.communicate(timeout=30)[0].decode()
        except subprocess.TimeoutExpired:  # pragma: no cover - a hung server
            self.process.kill()
            self.output = self.process.communicate()[0].decode()
        self.returncode = self.process.returncode
