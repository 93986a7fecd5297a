"""``leakscope attach PID``: real target processes, real gdb (or sys.remote_exec on 3.14+).

Targets signal readiness through a file (tests/attach_targets/leaky.py writes READY
once its loop runs) and stop when the test creates their STOP file, writing their
own state before and after the attachments.  Nothing waits on a clock.
"""

from __future__ import annotations

import glob
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from _support import PROJECT_ROOT, child_env, run_cli

from leakscope import snapshot
from leakscope.attach import bootstrap, protocol
from leakscope.attach.injector import gdb_commands
from leakscope.attach.report import aggregate, attach_data, format_aggregate, format_attach
from leakscope.attach.session import Options, Result, attach
from leakscope.attach.target import Target, children, inspect, refuse_incompatible
from leakscope.engine.program import run_data
from leakscope.errors import AttachError

TARGETS = Path(__file__).parent / "attach_targets"
LEAKY = TARGETS / "leaky.py"
HAS_REMOTE_EXEC = hasattr(sys, "remote_exec")


def _ptrace_blocked() -> str | None:
    try:
        scope = int(Path("/proc/sys/kernel/yama/ptrace_scope").read_text())
    except (OSError, ValueError):
        scope = 0
    if scope == 3:
        return "kernel.yama.ptrace_scope is 3: no process may be traced"
    if scope >= 1 and os.geteuid() != 0:
        return f"kernel.yama.ptrace_scope is {scope} and the tests do not run as root"
    return None


_BLOCKED = _ptrace_blocked()
needs_attach = pytest.mark.skipif(
    _BLOCKED is not None or (not HAS_REMOTE_EXEC and shutil.which("gdb") is None),
    reason=_BLOCKED or "needs gdb (the Debian package gdb) to attach on Python < 3.14",
)
needs_314 = pytest.mark.skipif(
    not HAS_REMOTE_EXEC, reason="needs a Python 3.14 interpreter (sys.remote_exec, PEP 768)"
)


# -- running targets ----------------------------------------------------------------------


@dataclass
class Running:
    """A target process started by a test."""

    proc: subprocess.Popen[str]
    ready: Path
    stop: Path
    out: Path
    err: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def finish(self) -> tuple[int, str, str, dict[str, Any]]:
        """Stop the target; its exit code, stdout, stderr and state before/after."""
        self.stop.write_text("stop")
        code = self.proc.wait(timeout=60)
        state_file = Path(str(self.stop) + ".state")
        state = json.loads(state_file.read_text()) if state_file.exists() else {}
        return code, self.out.read_text(), self.err.read_text(), state


@dataclass
class Targets:
    """Starts targets and kills whatever is left at the end of the test."""

    tmp: Path
    started: list[subprocess.Popen[str]] = field(default_factory=list)

    def start(
        self, *args: str, python: str = sys.executable, env: dict[str, str] | None = None
    ) -> Running:
        n = len(self.started)
        ready, stop = self.tmp / f"ready-{n}", self.tmp / f"stop-{n}"
        out, err = self.tmp / f"out-{n}.txt", self.tmp / f"err-{n}.txt"
        with open(out, "w") as fout, open(err, "w") as ferr:
            proc = subprocess.Popen(
                [python, str(LEAKY), str(ready), str(stop), *args],
                stdout=fout,
                stderr=ferr,
                text=True,
                env={**os.environ, **(env or {})},
            )
        self.started.append(proc)
        running = Running(proc, ready, stop, out, err)
        _wait_for(lambda: ready.exists() or proc.poll() is not None, what="the target's READY")
        assert proc.poll() is None, err.read_text()
        return running

    def close(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                proc.kill()
            proc.wait()


def _wait_for(condition: Any, *, what: str, limit: float = 120.0) -> None:
    """Poll an event (a file appearing, a process ending); the limit only catches hangs."""
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


@pytest.fixture
def targets(tmp_path: Path) -> Iterator[Targets]:
    t = Targets(tmp_path)
    try:
        yield t
    finally:
        t.close()


def _attach_json(pid: int, *args: str, timeout: float = 180) -> tuple[int, dict[str, Any], str]:
    result = run_cli("attach", str(pid), "--json", *args, timeout=timeout)
    data = json.loads(result.stdout) if result.stdout.strip() else {}
    return result.returncode, data, result.stderr


def _assert_output_unchanged(code: int, out: str, err: str) -> None:
    """The target's own output: every tick in order, then ``done``; nothing on stderr."""
    assert code == 0, err
    assert err == ""
    lines = out.splitlines()
    assert lines[-1] == "done"
    ticks = [int(line.split()[1]) for line in lines[:-1]]
    assert ticks == list(range(200, 200 * len(ticks) + 1, 200))


def _assert_left_as_found(state: dict[str, Any]) -> None:
    before, after = state["before"], state["after"]
    assert after["threads"] == before["threads"]
    assert after["leakscope_modules"] == before["leakscope_modules"] == []
    assert after["fds"] == before["fds"]
    assert after["gc"] == before["gc"]
    assert after["path"] == before["path"]
    assert after["tracing"] == before["tracing"]
    # Only standard-library modules may stay (see bootstrap.py for why).
    stdlib = set(sys.stdlib_module_names)
    added = set(after["modules"]) - set(before["modules"])
    stdlib_data = "_sysconfigdata_"  # sysconfig's platform module, not in stdlib_module_names
    assert {m for m in added if m.split(".")[0] not in stdlib and stdlib_data not in m} == set()


# -- the real thing -------------------------------------------------------------------------


@needs_attach
@pytest.mark.slow
def test_leaking_target_names_the_type_and_its_holder(targets: Targets) -> None:
    target = targets.start("leak")
    code, data, stderr = _attach_json(target.pid, "--snapshots", "12", "--interval", "0.2")
    assert code == 1, stderr
    assert stderr == ""
    assert data["verdict"] == "leak"
    assert data["pid"] == target.pid
    culprit = data["culprits"][0]
    assert culprit["types"] == ["__main__.Record"]
    holders = [h["description"] for h in culprit["holders"]]
    assert any("_CACHE" in h and "module __main__" in h for h in holders), holders
    assert any(h.startswith("sys.modules['__main__']._CACHE[") for h in holders), holders
    facts = data["attach"]
    assert facts["complete"] and not facts["exited"]
    assert facts["gc_before"] == facts["gc_after"]
    assert facts["tracemalloc"] == "off"
    assert facts["longest_pause"] < 0.5
    assert target.proc.poll() is None  # it keeps running after the detach
    code, out, err, state = target.finish()
    _assert_output_unchanged(code, out, err)
    _assert_left_as_found(state)


@needs_attach
@pytest.mark.slow
def test_text_report_and_trace_allocations(targets: Targets, tmp_path: Path) -> None:
    target = targets.start("leak")
    html = tmp_path / "attach.html"
    result = run_cli(
        "attach", str(target.pid), "--snapshots", "10", "--interval", "0.5",
        "--trace-allocations", "--html", str(html), timeout=180,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    text = result.stdout
    assert text.startswith(f"leakscope attach: pid {target.pid} (")
    assert "__main__.Record" in text
    assert "held by module __main__: _CACHE" in text
    line = next(
        n for n, src in enumerate(LEAKY.read_text().splitlines(), 1) if "= Record(i)" in src
    )
    assert f"allocated at {LEAKY}:{line}" in text
    assert "Pauses: the longest the target waited" in text
    assert "Memory at the end of the window" in text
    assert "tracemalloc started and stopped by leakscope" in text
    assert "Verdict: LEAK" in text
    assert html.read_text().startswith("<!DOCTYPE html>")
    code, out, err, state = target.finish()
    _assert_output_unchanged(code, out, err)
    _assert_left_as_found(state)  # tracemalloc is off again


@needs_attach
@pytest.mark.slow
def test_tracemalloc_already_running_is_left_running(targets: Targets) -> None:
    target = targets.start("leak", env={"PYTHONTRACEMALLOC": "1"})
    code, data, stderr = _attach_json(
        target.pid, "--duration", "2", "--interval", "0.2", "--trace-allocations"
    )
    assert code in (0, 1), stderr
    assert data["attach"]["tracemalloc"] == "already running: left running"
    code, out, err, state = target.finish()
    assert state["after"]["tracing"] is True
    _assert_output_unchanged(code, out, err)


@needs_attach
@pytest.mark.slow
def test_clean_target_is_not_leaking(targets: Targets) -> None:
    target = targets.start("clean")  # READY once its bounded cache is full
    code, data, stderr = _attach_json(target.pid, "--snapshots", "12", "--interval", "0.2")
    assert code == 0, (stderr, data.get("culprits"))
    assert data["verdict"] == "clean"
    assert data["culprits"] == []
    _assert_output_unchanged(*target.finish()[:3])


@needs_attach
@pytest.mark.slow
@pytest.mark.parametrize("objects", [10_000, 1_000_000])
def test_pause_figure(targets: Targets, objects: int) -> None:
    target = targets.start(f"heap={objects}")
    begun = time.monotonic()
    code, data, stderr = _attach_json(target.pid, "--duration", "2", "--interval", "0.25")
    elapsed = time.monotonic() - begun
    assert code in (0, 1), stderr
    facts = data["attach"]
    assert data["timeline"][-1]["objects"] >= objects
    # The CPU time of the longest step: its wall time also counts the waits for a core
    # when other work loads the machine (both are printed).
    assert facts["longest_pause_cpu"] < 0.5
    print(
        f"\n{objects:,} objects: longest pause {facts['longest_pause']:.3f} s "
        f"(CPU {facts['longest_pause_cpu']:.3f} s), snapshot median "
        f"{sorted(facts['snapshot_pauses'])[len(facts['snapshot_pauses']) // 2]:.3f} s, "
        f"gdb stop {facts['stopped_seconds'] or 0:.2f} s, first snapshot after "
        f"{facts['first_snapshot_seconds']:.2f} s, whole command {elapsed:.1f} s"
    )
    _assert_output_unchanged(*target.finish()[:3])


@needs_attach
@pytest.mark.slow
def test_twenty_attach_detach_cycles(targets: Targets) -> None:
    target = targets.start("leak")
    tmpdir = targets.tmp / "tmpdir"  # this test's own: other tests attach in parallel
    tmpdir.mkdir()
    for _ in range(20):
        result = subprocess.run(
            [sys.executable, "-m", "leakscope", "attach", str(target.pid), "--duration", "0.3",
             "--interval", "0.05"],
            capture_output=True, text=True, check=False, cwd=PROJECT_ROOT, timeout=120,
            env=child_env({"TMPDIR": str(tmpdir)}),
        )  # fmt: skip
        assert result.returncode in (0, 1), result.stderr
        assert result.stderr == ""
        assert "Verdict:" in result.stdout
        assert target.proc.poll() is None
    code, out, err, state = target.finish()
    _assert_output_unchanged(code, out, err)
    _assert_left_as_found(state)
    assert list(tmpdir.iterdir()) == []  # every private directory removed


@needs_attach
@pytest.mark.slow
def test_target_exits_while_attached(targets: Targets) -> None:
    target = targets.start("leak")
    tool = subprocess.Popen(
        [sys.executable, "-m", "leakscope", "attach", str(target.pid), "--duration", "60",
         "--interval", "0.1", "--progress"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env(),
        cwd=PROJECT_ROOT,
    )  # fmt: skip
    assert tool.stderr is not None
    progress = [tool.stderr.readline() for _ in range(3)]  # three snapshots have arrived
    assert all("snapshot" in line for line in progress), progress
    target.finish()  # the target exits on its own
    out, err = tool.communicate(timeout=120)
    assert tool.returncode == 2
    lines = [line for line in err.splitlines() if not line.startswith("[leakscope] pid")]
    assert len(lines) == 1, err
    assert f"process {target.pid} exited while attached" in lines[0]
    assert "Traceback" not in err
    assert out.startswith(f"leakscope attach: pid {target.pid}")
    assert "the process exited while attached" in out


# -- gunicorn ---------------------------------------------------------------------------


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=30)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(30)
        sock.connect(self._path)
        self.sock = sock


def _get(path: str, route: str) -> int:
    conn = _UnixHTTPConnection(path)
    try:
        conn.request("GET", route)
        return int(conn.getresponse().read())
    finally:
        conn.close()


@needs_attach
@pytest.mark.slow
@pytest.mark.integration
def test_gunicorn_children_per_worker_reports(tmp_path: Path) -> None:
    gunicorn = shutil.which("gunicorn", path=os.path.dirname(sys.executable)) or shutil.which(
        "gunicorn"
    )
    if gunicorn is None:
        pytest.skip("needs gunicorn (pip install gunicorn)")
    bind = str(tmp_path / "g.sock")
    argv = [gunicorn, "-w", "2", "--bind", f"unix:{bind}", "--chdir", str(TARGETS)]
    argv += ["--timeout", "30", "--log-file", str(tmp_path / "gunicorn.log")]
    helptext = subprocess.run([gunicorn, "--help"], capture_output=True, text=True, check=False)
    if "--no-control-socket" in helptext.stdout:  # gunicorn 25+: none in ~/.gunicorn
        argv += ["--no-control-socket"]
    master = subprocess.Popen([*argv, "gunicorn_app:app"], env=child_env())
    stop = threading.Event()
    served: Counter[int] = Counter()
    lock = threading.Lock()
    try:
        _wait_for(lambda: os.path.exists(bind), what="gunicorn's socket")
        _wait_for(lambda: len(children(master.pid)) == 2, what="gunicorn's two workers")
        _get(bind, "/ok")

        def traffic() -> None:
            for _ in range(100_000):  # bounded: stops with the attach in any case
                if stop.is_set():
                    return
                pid = _get(bind, "/leak")
                with lock:
                    served[pid] += 1

        clients = [threading.Thread(target=traffic, daemon=True) for _ in range(2)]
        for client in clients:  # two at once: both workers stay busy in every interval
            client.start()
        _wait_for(lambda: sum(served.values()) >= 20, what="the first requests")
        result = run_cli(
            "attach", "--children", str(master.pid), "--snapshots", "10", "--interval", "0.5",
            "--json", timeout=240,
        )  # fmt: skip
        stop.set()
        for client in clients:
            client.join(60)
        assert result.returncode == 1, result.stderr
        doc = json.loads(result.stdout)
        assert doc["format"] == "leakscope.attach.children"
        workers = {w["pid"]: w for w in doc["workers"]}
        assert set(workers) == set(children(master.pid))
        named = {
            pid
            for pid, w in workers.items()
            if any(c["types"][:1] == ["gunicorn_app.Session"] for c in w["culprits"])
        }
        assert named, {pid: w["culprits"] for pid, w in workers.items()}
        assert all(served[pid] > 0 for pid in named)  # only workers that served /leak
        assert set(doc["aggregate"]["leaking"]) == named
        assert _get(bind, "/ok") in workers  # still serving after the detach
    finally:
        stop.set()
        master.send_signal(signal.SIGTERM)
        try:
            master.wait(timeout=30)
        except subprocess.TimeoutExpired:
            master.kill()
            master.wait()


# -- refusals -------------------------------------------------------------------------------


def _one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("leakscope attach: error: ")
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def test_refuses_no_such_process() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # reaped: the pid is free
    _one_line_error(run_cli("attach", str(proc.pid)), f"no such process: {proc.pid}")


def test_refuses_a_process_that_is_not_cpython(tmp_path: Path) -> None:
    proc = subprocess.Popen(["sleep", "600"])
    try:
        _one_line_error(run_cli("attach", str(proc.pid)), "is not a CPython process")
    finally:
        proc.kill()
        proc.wait()


def _other_minor_python() -> str | None:
    """A CPython 3 of another minor version than this one, if pyenv or Debian has one."""
    ours = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    patterns = [os.path.expanduser("~/.pyenv/versions/3.*/bin/python3.*"), "/usr/bin/python3.*"]
    for path in sorted(p for pattern in patterns for p in glob.glob(pattern)):
        name = os.path.basename(path)
        if name != ours and name.replace("python3.", "").isdigit() and os.access(path, os.X_OK):
            return path
    return None


def test_refuses_a_different_minor_version(targets: Targets) -> None:
    other = _other_minor_python()
    if other is None:
        pytest.skip("needs a CPython of another minor version than this one")
    target = targets.start("leak", python=other)
    _one_line_error(run_cli("attach", str(target.pid)), "but this leakscope runs on Python")
    target.finish()


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("capsh") is None,
    reason="needs root and capsh to drop CAP_SYS_PTRACE for the tool",
)
def test_refuses_when_ptrace_is_not_permitted(targets: Targets) -> None:
    target = targets.start("leak")
    command = " ".join(
        [sys.executable, "-m", "leakscope", "attach", str(target.pid), "--duration", "1"]
    )
    result = subprocess.run(
        ["capsh", "--drop=cap_sys_ptrace", "--", "-c", command],
        capture_output=True, text=True, env=child_env(), cwd=PROJECT_ROOT, timeout=60, check=False,
    )  # fmt: skip
    line = _one_line_error(result, "ptrace is not permitted", "kernel.yama.ptrace_scope")
    assert "CAP_SYS_PTRACE" in line and "--cap-add=SYS_PTRACE" in line
    _assert_output_unchanged(*target.finish()[:3])


@pytest.mark.skipif(HAS_REMOTE_EXEC, reason="Python 3.14+ attaches without gdb")
def test_refuses_without_gdb(targets: Targets, tmp_path: Path) -> None:
    target = targets.start("leak")
    result = subprocess.run(
        [sys.executable, "-m", "leakscope", "attach", str(target.pid), "--duration", "1"],
        capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=60, check=False,
        env={**child_env(), "PATH": str(tmp_path)},
    )  # fmt: skip
    _one_line_error(result, "gdb is not installed", "'gdb'")
    _assert_output_unchanged(*target.finish()[:3])


def test_refuses_when_remote_debugging_is_disabled(targets: Targets) -> None:
    target = targets.start("leak", env={"PYTHON_DISABLE_REMOTE_DEBUG": "1"})
    _one_line_error(
        run_cli("attach", str(target.pid)),
        "remote debugging disabled",
        "PYTHON_DISABLE_REMOTE_DEBUG",
    )
    _assert_output_unchanged(*target.finish()[:3])


def test_refuses_bad_arguments() -> None:
    _one_line_error(run_cli("attach"), "give a PID")
    _one_line_error(run_cli("attach", "1", "--duration", "0"), "--duration")
    _one_line_error(run_cli("attach", "1", "--interval", "0.001"), "--interval")
    _one_line_error(run_cli("attach", "1", "--snapshots", "1"), "--snapshots")
    _one_line_error(run_cli("attach", "1", "--html", "/no/such/dir/x.html"), "--html")


def test_refuses_attaching_to_itself() -> None:
    with pytest.raises(AttachError, match="leakscope itself"):
        inspect(os.getpid())


@needs_attach
@pytest.mark.slow
def test_main_thread_that_reaches_no_safe_point(tmp_path: Path) -> None:
    if HAS_REMOTE_EXEC:
        pytest.skip("the safe-point timeout is gdb's; sys.remote_exec waits by itself")
    script = tmp_path / "blocked.py"
    ready, release = tmp_path / "ready", tmp_path / "release"
    script.write_text(
        "import os, sys, time\n"
        f"open({str(ready)!r}, 'w').close()\n"
        f"fd = os.open({str(release)!r}, os.O_RDONLY)\n"  # blocks in C until a writer opens it
        "os.read(fd, 1)\n"
        "print('released', flush=True)\n"
    )
    os.mkfifo(release)
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        _wait_for(ready.exists, what="the blocked target")
        with pytest.raises(AttachError, match="reached no safe point within 1 s"):
            attach(inspect(proc.pid), Options(duration=1, interval=0.1, safe_point_timeout=1))
        assert "TracerPid:\t0" in Path(f"/proc/{proc.pid}/status").read_text()
        with open(release, "w") as f:  # unblock it: the queued call runs, and does nothing
            f.write("x")
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0
        assert out == "released\n"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@needs_314
@needs_attach
@pytest.mark.slow
def test_remote_exec_path(targets: Targets) -> None:
    target = targets.start("leak")
    code, data, stderr = _attach_json(target.pid, "--snapshots", "10", "--interval", "0.2")
    assert code == 1, stderr
    assert data["attach"]["method"] == "remote_exec"
    _assert_left_as_found(target.finish()[3])


# -- the pieces -----------------------------------------------------------------------------


def test_bootstrap_source_is_one_statement_binding_nothing() -> None:
    code = bootstrap.source("/tmp/d", "/tmp/d/agent.sock", {"duration": 5.0, "trace": True})
    compile(code, "bootstrap", "exec")
    line = bootstrap.one_liner(code)
    assert line.startswith("exec(bytes.fromhex(") and '"' not in line and "\\" not in line
    namespace: dict[str, Any] = {}
    exec(bootstrap.one_liner("x = 1"), namespace)  # the statement itself binds nothing
    assert set(namespace) == {"__builtins__"}
    with pytest.raises(TypeError):
        bootstrap.source("/d", "/d/s", {"bad": [1]})


def test_gdb_commands_use_a_pending_call_and_never_stop_at_random() -> None:
    text = gdb_commands("pass")
    assert "Py_AddPendingCall" in text and "break PyCallable_Check" in text
    # PyRun_SimpleString is only called from the breakpoint's commands (the safe point).
    before, _, after = text.partition("commands\n")
    assert "PyRun_SimpleString(" not in before
    assert "PyRun_SimpleString(" in after.partition("\nend\n")[0]


def test_protocol_round_trip_and_end_of_file() -> None:
    a, b = socket.socketpair()
    with a, b:
        reader = protocol.Reader(b)
        a.sendall(protocol.encode("hello", pid=1) + protocol.encode("snapshot", index=0)[:5])
        assert reader.read(5) == {"kind": "hello", "pid": 1}
        with pytest.raises(TimeoutError):
            reader.read(0.05)
        a.sendall(protocol.encode("snapshot", index=0)[5:])
        assert reader.read(5) == {"kind": "snapshot", "index": 0}
        a.close()
        assert reader.read(5) is None


def test_children_of_this_process() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                            stdin=subprocess.PIPE)  # fmt: skip
    try:
        assert proc.pid in children(os.getpid())
    finally:
        proc.communicate()
    with pytest.raises(AttachError, match="no such process"):
        children(proc.pid)


def test_incompatible_targets() -> None:
    target = Target(1, "python3", "/usr/bin/python3", (3, 9), 0, 0, ("python3",), frozenset())
    with pytest.raises(AttachError, match=r"runs Python 3\.9"):
        refuse_incompatible(target)
    ours = sys.version_info[:2]
    flagged = Target(1, "python3", "/x", ours, 0, 0, ("python3", "-X", "disable_remote_debug"),
                     frozenset())  # fmt: skip
    with pytest.raises(AttachError, match="remote debugging disabled"):
        refuse_incompatible(flagged)


def test_partial_report_and_aggregate() -> None:
    """A target that exited: the run data of the snapshots that came, formatted."""
    snaps = [snapshot().to_dict(), snapshot().to_dict()]
    me = Target(os.getpid(), "python3", sys.executable, sys.version_info[:2], 0, 0,
                ("app.py",), frozenset())  # fmt: skip
    result = Result(me, snapshots=snaps, pauses=[0.01, 0.02], exited=True)
    data = attach_data(result)
    assert data is not None
    assert data["format"] == "leakscope.run"
    assert data["attach"]["complete"] is False and data["attach"]["exited"] is True
    assert data["attach"]["longest_pause"] == 0.02
    text = format_attach(data)
    assert text.startswith(f"leakscope attach: pid {os.getpid()} (app.py;")
    assert "the process exited while attached" in text
    summary = aggregate([data], {4242: "no such process: 4242"})
    assert summary["leaking"] == []
    assert "4242  not attached: no such process" in format_aggregate(1, summary)
    assert attach_data(Result(me, snapshots=snaps[:1])) is None


def test_run_data_from_snapshots_matches_run_shape() -> None:
    snaps = [snapshot(), snapshot(collect=False, memory=False), snapshot()]
    data = run_data(snaps, argv=["x"], pid=1, interval=0.1)
    assert data["format"] == "leakscope.run" and len(data["timeline"]) == 3
    assert data["verdict"] == "clean"
    with pytest.raises(ValueError, match="at least two"):
        run_data(snaps[:1], argv=[], pid=1, interval=1.0)
