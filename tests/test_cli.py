"""The ``leakscope`` command line, driven as a user would: ``python -m leakscope ...``."""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from _support import GUNICORN, PROJECT_ROOT, Gunicorn, child_env, run_cli

LEAKY_SCRIPT = """
import sys, time
_CACHE = {}

class Session:
    pass

deadline = time.monotonic() + float(sys.argv[1])
i = 0
while time.monotonic() < deadline:
    _CACHE[i] = Session()
    i += 1
    time.sleep(0.0005)
print("stored", len(_CACHE), "args", sys.argv[2:])
"""

CLEAN_SCRIPT = """
import sys, time
deadline = time.monotonic() + float(sys.argv[1])
while time.monotonic() < deadline:
    scratch = [object() for _ in range(50)]
    time.sleep(0.0005)
print("clean done")
"""


def _last_json(stdout: str) -> Any:
    return json.loads(stdout.strip().splitlines()[-1])


def _html_available() -> bool:
    try:
        import leakscope.render.html  # noqa: F401
    except ImportError:
        return False
    return True


def _script(tmp_path: Path, name: str, source: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return path


# -- help -----------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["run", "check", "diff", "show", "report"])
def test_every_command_has_help_with_exit_codes(command: str) -> None:
    result = run_cli(command, "--help")
    assert result.returncode == 0
    assert f"usage: leakscope {command}" in result.stdout
    assert "Exit codes" in result.stdout
    assert "130" in result.stdout


def test_top_level_help_lists_the_commands() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("run", "check", "diff", "show", "report"):
        assert command in result.stdout


# -- run ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_run_finds_a_leaking_cache_and_names_its_holder(tmp_path: Path) -> None:
    script = _script(tmp_path, "leaky.py", LEAKY_SCRIPT)
    result = run_cli("run", "--interval", "0.05", str(script), "0.6", "extra")
    assert result.returncode == 1, result.stderr
    assert "args ['extra']" in result.stdout  # the script's own argv
    assert "__main__.Session" in result.stdout
    assert "module __main__: _CACHE" in result.stdout
    assert "Verdict: LEAK" in result.stdout


@pytest.mark.slow
def test_run_json_is_the_contract_d_document(tmp_path: Path) -> None:
    script = _script(tmp_path, "leaky.py", LEAKY_SCRIPT)
    result = run_cli("run", "--json", "--interval", "0.05", str(script), "0.6")
    assert result.returncode == 1, result.stderr
    data = _last_json(result.stdout)
    assert set(data) == {
        "format", "version", "argv", "python", "pid", "started", "elapsed", "exit_code",
        "error", "verdict", "timeline", "growth", "culprits", "cycles",
    }  # fmt: skip
    assert data["format"] == "leakscope.run"
    assert data["version"] == 1
    for point in data["timeline"]:
        assert set(point) == {"time", "rss", "blocks", "objects", "traced", "types"}
        assert isinstance(point["objects"], int) and isinstance(point["blocks"], int)
    times = [p["time"] for p in data["timeline"]]
    assert times == sorted(times) and times[0] == 0.0
    assert data["verdict"] == "leak"
    assert data["exit_code"] == 0
    assert data["error"] is None
    assert data["argv"] == [str(script), "0.6"]
    assert len(data["timeline"]) >= 6
    first, last = data["timeline"][0], data["timeline"][-1]
    assert set(first["types"]) == set(last["types"])  # the same types at every point
    assert last["types"]["__main__.Session"] > first["types"].get("__main__.Session", 0)
    assert [c["types"][0] for c in data["culprits"]] == ["__main__.Session"]
    assert any(
        d["name"] == "__main__.Session" and d["delta"] > 100 for d in data["growth"]["types"]
    )
    assert data["cycles"] is not None


@pytest.mark.slow
def test_run_a_clean_program_is_clean(tmp_path: Path) -> None:
    script = _script(tmp_path, "clean.py", CLEAN_SCRIPT)
    result = run_cli("run", "--json", "--interval", "0.05", str(script), "0.6")
    assert result.returncode == 0, result.stdout + result.stderr
    data = _last_json(result.stdout)
    assert data["verdict"] == "clean"
    assert data["culprits"] == []


@pytest.mark.parametrize(
    "source",
    [
        # Start-up imports: a burst of growth at the start, then nothing.
        """
        import json, decimal, email.mime.text, http.client, xml.dom.minidom, argparse, asyncio
        import sys, time
        deadline = time.monotonic() + float(sys.argv[1])
        while time.monotonic() < deadline:
            json.dumps({"a": [1, 2, 3]})
            time.sleep(0.001)
        """,
        # A bounded cache that fills up early and then stays full.
        """
        import functools, sys, time
        @functools.lru_cache(maxsize=300)
        def square(i):
            return [i * i]
        deadline = time.monotonic() + float(sys.argv[1])
        i = 0
        while time.monotonic() < deadline:
            square(i % 3000)
            i += 1
            time.sleep(0.0002)
        """,
    ],
    ids=["imports", "bounded-cache"],
)
@pytest.mark.slow
def test_run_no_false_alarm(tmp_path: Path, source: str) -> None:
    script = _script(tmp_path, "prog.py", source)
    result = run_cli("run", "--json", "--interval", "0.05", str(script), "0.8")
    data = _last_json(result.stdout)
    assert data["culprits"] == [], data["culprits"]
    assert data["verdict"] == "clean"
    assert result.returncode == 0


@pytest.mark.slow
def test_run_too_short_for_a_trend_says_growth_not_leak(tmp_path: Path) -> None:
    script = _script(tmp_path, "burst.py", "keep = [[i] for i in range(40_000)]\n")
    result = run_cli("run", str(script))
    assert result.returncode == 0, result.stderr
    assert "Verdict: memory grew over the run, no culprit found" in result.stdout
    assert "too short to see a trend" in result.stdout
    assert _last_json(run_cli("run", "--json", str(script)).stdout)["verdict"] == "growth"


@pytest.mark.slow
def test_run_shows_a_live_progress_line_on_a_terminal_only(tmp_path: Path) -> None:
    script = _script(tmp_path, "clean.py", CLEAN_SCRIPT)
    primary, secondary = pty.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "leakscope", "run", "--interval", "0.05", str(script), "0.5"],
            stdout=subprocess.PIPE,
            stderr=secondary,
            text=True,
            cwd=PROJECT_ROOT,
            env=child_env(),
        )
        os.close(secondary)
        chunks = []
        while True:
            try:
                chunk = os.read(primary, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        out, _ = proc.communicate(timeout=30)
    finally:
        os.close(primary)
    terminal = b"".join(chunks).decode("utf-8", "replace")
    assert proc.returncode == 0
    assert "[leakscope]" in terminal
    assert "RSS" in terminal and "objects" in terminal
    assert "[leakscope]" not in out
    # Not a terminal: no progress line at all.
    piped = run_cli("run", "--interval", "0.05", str(script), "0.3")
    assert "[leakscope]" not in piped.stderr


@pytest.mark.slow
def test_run_module(tmp_path: Path) -> None:
    pkg = tmp_path / "leakyapp"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("", encoding="utf-8")
    (pkg / "__main__.py").write_text(textwrap.dedent(LEAKY_SCRIPT), encoding="utf-8")
    result = run_cli("run", "--interval", "0.05", "-m", "leakyapp", "0.6", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert "stored" in result.stdout
    assert "Verdict: LEAK" in result.stdout


@pytest.mark.slow
def test_run_a_script_that_raises_shows_its_traceback_and_still_reports(tmp_path: Path) -> None:
    script = _script(
        tmp_path,
        "boom.py",
        """
        def handler():
            raise RuntimeError("the database is gone")
        handler()
        """,
    )
    result = run_cli("run", "--json", str(script))
    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert "RuntimeError: the database is gone" in result.stderr
    assert "leakscope/_run.py" not in result.stderr  # only the program's frames
    data = _last_json(result.stdout)
    assert data["exit_code"] == 1
    assert "RuntimeError: the database is gone" in data["error"]


@pytest.mark.slow
def test_run_passes_the_programs_exit_code_through(tmp_path: Path) -> None:
    script = _script(tmp_path, "exit3.py", "import sys\nsys.exit(3)\n")
    result = run_cli("run", str(script))
    assert result.returncode == 3
    assert "exit code 3" in result.stdout


@pytest.mark.slow
def test_run_ctrl_c_still_reports_and_exits_130(tmp_path: Path) -> None:
    script = _script(
        tmp_path,
        "loop.py",
        """
        import time
        print("ready", flush=True)
        while True:
            time.sleep(0.01)
        """,
    )
    html = tmp_path / "interrupted.html"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "leakscope",
            "run",
            "--json",
            "--interval",
            "0.05",
            "--html",
            str(html),
            str(script),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=PROJECT_ROOT,
        env=child_env(),
    )
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 30
        line = proc.stdout.readline()  # blocks until the program has started
        assert line.strip() == "ready"
        assert time.monotonic() < deadline
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    data = _last_json(out)
    assert data["error"] == "interrupted"
    assert data["exit_code"] == 130
    if _html_available():
        assert "interrupted" in html.read_text(encoding="utf-8")


@pytest.mark.slow
def test_run_html_writes_the_report(tmp_path: Path) -> None:
    pytest.importorskip("leakscope.report.html", reason="the HTML report (engineer H) not landed")
    script = _script(tmp_path, "leaky.py", LEAKY_SCRIPT)
    out = tmp_path / "report.html"
    result = run_cli("run", "--interval", "0.05", "--html", str(out), str(script), "0.6")
    assert result.returncode == 1, result.stderr
    html = out.read_text(encoding="utf-8")
    assert "<html" in html.lower()
    assert 'class="badge leak"' in html  # the verdict
    assert "__main__.Session" in html


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run"], "needs a script"),
        (["run", "no-such-script.py"], "no such script: no-such-script.py"),
        (["run", "-m", "no_such_module_xyz"], "no module named 'no_such_module_xyz'"),
        (["run", "--interval", "0", "x.py"], "--interval must be a number of seconds >= 0.01"),
        (["run", "--interval", "inf", "x.py"], "--interval must be a number of seconds"),
        (["run", "--interval", "soon", "x.py"], "invalid float value: 'soon'"),
        (["run", "--html", "/no/such/dir/out.html", "x.py"], "--html: no such directory"),
    ],
)
def test_run_bad_input(args: list[str], message: str) -> None:
    result = run_cli(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


# -- check ----------------------------------------------------------------------------------

CHECK_MODULE = """
_SEEN = []

def leaky():
    _SEEN.append(object())

def clean():
    return [object() for _ in range(5)]

NOT_CALLABLE = 42

def broken():
    raise KeyError("no such user")
"""


def test_check_leaky_function_exits_1_and_names_the_container(tmp_path: Path) -> None:
    _script(tmp_path, "svc.py", CHECK_MODULE)
    result = run_cli("check", "svc:leaky", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert "_SEEN" in result.stdout


def test_check_clean_function_exits_0_with_json(tmp_path: Path) -> None:
    _script(tmp_path, "svc.py", CHECK_MODULE)
    result = run_cli("check", "svc:clean", "--json", "--runs", "6", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    data = _last_json(result.stdout)
    assert data["format"] == "leakscope.leak_report"
    assert data["leaked"] is False
    assert len(data["runs"]) == 6


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("svc", "bad function spec 'svc'"),
        ("nomodule_xyz:f", "cannot import module 'nomodule_xyz'"),
        ("svc:missing", "'svc' has no attribute 'missing'"),
        ("svc:NOT_CALLABLE", "is not callable"),
    ],
)
def test_check_bad_spec(tmp_path: Path, spec: str, message: str) -> None:
    _script(tmp_path, "svc.py", CHECK_MODULE)
    result = run_cli("check", spec, cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


# -- show / diff ----------------------------------------------------------------------------


@pytest.fixture
def snapshots(tmp_path: Path) -> tuple[Path, Path]:
    code = f"""
import leakscope
leakscope.snapshot().save({str(tmp_path / "a.json")!r})
class Widget:
    pass
keep = [Widget() for _ in range(500)]
leakscope.snapshot().save({str(tmp_path / "b.json")!r})
"""
    subprocess.run([sys.executable, "-c", code], check=True, env=child_env(), cwd=tmp_path)
    return tmp_path / "a.json", tmp_path / "b.json"


def test_show_and_diff(snapshots: tuple[Path, Path]) -> None:
    a, b = snapshots
    shown = run_cli("show", str(a))
    assert shown.returncode == 0
    assert "Snapshot of pid" in shown.stdout
    shown_json = _last_json(run_cli("show", "--json", str(a)).stdout)
    assert shown_json["format"] == "leakscope.snapshot"
    diff = run_cli("diff", str(a), str(b))
    assert diff.returncode == 0
    assert "__main__.Widget" in diff.stdout
    assert "+500" in diff.stdout
    data = _last_json(run_cli("diff", "--json", str(a), str(b)).stdout)
    assert {"name": "__main__.Widget", "delta": 500}.items() <= next(
        d for d in data["types"] if d["name"] == "__main__.Widget"
    ).items()


def test_show_and_diff_bad_files(tmp_path: Path, snapshots: tuple[Path, Path]) -> None:
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text('{"format": "leakscope.snapshot", "vers', encoding="utf-8")
    other = tmp_path / "other.json"
    other.write_text('{"hello": 1}', encoding="utf-8")
    for args, message in [
        (["show", str(tmp_path / "missing.json")], "no such file"),
        (["show", str(corrupt)], "invalid JSON"),
        (["show", str(other)], "other.json"),
        (["show", str(tmp_path)], "is a directory"),
        (["diff", str(snapshots[0]), str(corrupt)], "corrupt.json"),
    ]:
        result = run_cli(*args)
        assert result.returncode == 2, args
        assert message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


# -- report ---------------------------------------------------------------------------------


def test_report_aggregates_worker_snapshots(tmp_path: Path, snapshots: tuple[Path, Path]) -> None:
    workers = tmp_path / "workers"
    workers.mkdir()
    a, b = snapshots
    (workers / "exit-101.json").write_bytes(a.read_bytes())
    (workers / "exit-202.json").write_bytes(b.read_bytes())
    (workers / "worker-202.json").write_text(
        json.dumps(
            {
                "pid": 202,
                "requests": 10,
                "rss": 1 << 20,
                "objects": 5,
                "blocks": 7,
                "growth": {"rss": 4096, "blocks": 3, "objects": 2, "types": []},
                "routes": [{"route": "GET /leaky/items/{id}", "leaking": True}],
            }
        ),
        encoding="utf-8",
    )
    (workers / "exit-303.json").write_text("garbage", encoding="utf-8")
    result = run_cli("report", str(workers))
    assert result.returncode == 1  # a route was flagged as leaking
    assert "101" in result.stdout and "202" in result.stdout
    assert "total" in result.stdout
    assert "GET /leaky/items/{id}" in result.stdout
    assert "exit-303.json" in result.stdout  # skipped, said so
    data = _last_json(run_cli("report", "--json", str(workers)).stdout)
    assert [w["pid"] for w in data["workers"]] == [101, 202]
    exits = [w["exit"]["objects"] for w in data["workers"]]
    assert data["total"]["objects"] == sum(exits)
    assert data["total"]["workers"] == 2
    assert data["total"]["growth"] == {"objects": 2, "blocks": 3, "rss": 4096}


def test_report_bad_directories(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    for path, message in [
        (empty, "no leakscope snapshots"),
        (tmp_path / "missing", "no such directory"),
    ]:
        result = run_cli("report", str(path))
        assert result.returncode == 2
        assert message in result.stderr
        assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_run_waits_for_the_programs_threads(tmp_path: Path) -> None:
    script = _script(
        tmp_path,
        "threads.py",
        """
        import threading
        _KEEP = []
        gate = threading.Event()
        def work():
            gate.wait(30)
            _KEEP.extend([i] for i in range(2000))
            print("worker done", flush=True)
        threading.Thread(target=work).start()
        print("main done", flush=True)
        gate.set()
        """,
    )
    result = run_cli("run", str(script))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.index("main done") < out.index("worker done") < out.index("leakscope run:")
    assert "container __main__:_KEEP: +2,000 entries" in out


def test_check_a_function_that_raises_has_no_verdict(tmp_path: Path) -> None:
    _script(tmp_path, "svc.py", CHECK_MODULE)
    result = run_cli("check", "svc:broken", cwd=tmp_path)
    assert result.returncode == 2
    assert "KeyError" in result.stdout
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_run_passes_option_like_arguments_to_the_program(tmp_path: Path) -> None:
    _script(tmp_path, "echo_args.py", "import sys\nprint('ARGS', sys.argv[1:])\n")
    for args, expected in [
        (
            ["run", "echo_args.py", "--json", "-h", "--interval", "3"],
            "['--json', '-h', '--interval', '3']",
        ),
        (["run", "--interval=0.5", "-m", "echo_args", "--html", "x"], "['--html', 'x']"),
        (["run", "-mecho_args", "-v"], "['-v']"),
        (["run", "--", "echo_args.py", "-m", "z"], "['-m', 'z']"),
    ]:
        result = run_cli(*args, cwd=tmp_path)
        assert result.returncode == 0, (args, result.stderr)
        assert f"ARGS {expected}" in result.stdout, args


# -- bad modules and limits (issue 15, point 8) ---------------------------------------------


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("def f(:\n    pass\n", "invalid syntax (broken_mod.py, line 1)"),
        (
            "x = 1\nraise ValueError('no config')\ndef f():\n    pass\n",
            "it raised ValueError: no config (",
        ),
        ("import sys\nsys.exit(3)\ndef f():\n    pass\n", "it raised SystemExit: 3 ("),
    ],
    ids=["syntax-error", "raises", "exits"],
)
def test_check_a_module_that_cannot_be_imported_exits_2_in_one_line(
    tmp_path: Path, source: str, message: str
) -> None:
    _script(tmp_path, "broken_mod.py", source)
    result = run_cli("check", "broken_mod:f", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "cannot import module 'broken_mod'" in result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    if "(" in message and "line" not in message:
        assert "broken_mod.py:2)" in result.stderr  # the module's own line, not importlib's


@pytest.mark.parametrize(
    ("option", "value"),
    [("--runs", "1"), ("--runs", "2"), ("--runs", "17"), ("--warmup", "0"), ("--warmup", "-1")],
)
def test_check_limits_are_in_the_help_and_checked_first(
    tmp_path: Path, option: str, value: str
) -> None:
    help_text = " ".join(run_cli("check", "--help").stdout.split())
    assert "measured runs, 3 to 16" in help_text
    assert "warm-up calls, 1 to 100,000" in help_text
    # Checked before the module is imported: this one would print if it were.
    _script(tmp_path, "noisy.py", "print('imported')\ndef f():\n    pass\n")
    result = run_cli("check", "noisy:f", option, value, cwd=tmp_path)
    assert result.returncode == 2
    assert f"{option} must be from" in result.stderr
    assert "imported" not in result.stdout
    assert len(result.stderr.strip().splitlines()) == 1


def test_diff_limit_caps_the_json_rows(snapshots: tuple[Path, Path]) -> None:
    a, b = snapshots
    full = _last_json(run_cli("diff", "--json", str(a), str(b)).stdout)
    assert len(full["types"]) > 3
    data = _last_json(run_cli("diff", "--limit", "3", "--json", str(a), str(b)).stdout)
    assert data["types"] == full["types"][:3]
    assert len(data["containers"]) <= 3
    bad = run_cli("diff", "--limit", "-1", str(a), str(b))
    assert bad.returncode == 2 and "--limit must be >= 0" in bad.stderr


# -- report on a real gunicorn -w 2 (issue 17) ----------------------------------------------

LEAKY_SERVICE = """
from leakscope.web.middleware import LeakMiddleware

ITEMS = []


class Item:
    def __init__(self, path):
        self.path = path


def _app(environ, start_response):
    path = environ["PATH_INFO"]
    if path.startswith("/leaky/"):
        ITEMS.append(Item(path))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


app = LeakMiddleware(_app)
"""


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.skipif(not GUNICORN.exists(), reason="gunicorn is not installed")
def test_report_on_the_exit_snapshots_of_a_real_gunicorn_run(tmp_path: Path) -> None:
    # Default middleware settings: few censuses, so the workers' own growth figures lag;
    # the report's growth since start comes from the start and exit snapshots.
    _script(tmp_path, "svc.py", LEAKY_SERVICE)
    with Gunicorn(tmp_path, "svc:app") as server:
        for i in range(200):
            assert server.get(f"/leaky/{i}") == 200
            assert server.get(f"/clean/{i}") == 200
    assert server.returncode == 0, server.output
    assert "Traceback" not in server.output, server.output
    state = server.state
    pids = sorted(int(p.stem.split("-")[1]) for p in state.glob("exit-*.json"))
    assert len(pids) == 2
    assert sorted(int(p.stem.split("-")[1]) for p in state.glob("start-*.json")) == pids

    data = _last_json(run_cli("report", "--json", str(state)).stdout)
    workers = data["workers"]
    assert [w["pid"] for w in workers] == pids
    assert sum(w["requests"] for w in workers) == 400 == data["total"]["requests"]
    items = 0
    for w in workers:
        growth = w["growth_since_start"]
        assert growth["source"] == "snapshots"
        user = {t["type"]: t["delta"] for t in growth["user_types"]}
        assert not any(name in user for name in ("dict", "list", "function"))
        items += user.get("svc.Item", 0)
        if user.get("svc.Item"):
            assert growth["user_types"][0]["type"] == "svc.Item"  # user types first
            assert growth["objects"] >= user["svc.Item"]
        assert not any(t["type"].startswith("svc.") for t in growth["builtin_types"])
        trend = w["rss_trend"]
        assert trend is not None and trend["points"] >= 2 and trend["first"] > 0
    assert items == 200  # every leaked Item, split between the two workers
    total = data["total"]["growth_since_start"]
    assert total["user_types"][0] == {"type": "svc.Item", "delta": 200}
    assert total["objects"] >= 200

    result = run_cli("report", str(state))
    text = result.stdout
    assert "growth since start: +0 objects" not in text
    assert "svc.Item +200" in text  # the total
    assert "requests" in text and "RSS" in text
    if data["leaking_routes"]:  # the middleware's verdict, at default settings
        assert result.returncode == 1
        assert data["leaking_routes"] == ["GET /leaky/{id}"]
        assert "held by module svc: ITEMS" in text
    else:
        assert result.returncode == 0


def test_report_growth_since_start_without_start_snapshots(
    tmp_path: Path, snapshots: tuple[Path, Path]
) -> None:
    # An older directory (no start-<pid>.json): the worker's own first census is the start.
    workers = tmp_path / "old"
    workers.mkdir()
    b = snapshots[1]
    exit_snap = json.loads(b.read_text())
    exit_objects, exit_time, exit_rss = exit_snap["objects"], exit_snap["time"], exit_snap["rss"]
    (workers / "exit-7.json").write_bytes(b.read_bytes())
    (workers / "worker-7.json").write_text(
        json.dumps(
            {
                "pid": 7,
                "requests": 3,
                "objects": exit_objects - 100,
                "growth": {"objects": 0, "types": []},
                "timeline": [
                    {"time": exit_time - 120, "rss": exit_rss // 4},
                    {"time": exit_time - 60, "rss": exit_rss // 2},
                ],
            }
        ),
        encoding="utf-8",
    )
    data = _last_json(run_cli("report", "--json", str(workers)).stdout)
    (w,) = data["workers"]
    assert w["growth_since_start"]["source"] == "worker state"
    assert w["growth_since_start"]["objects"] == 100
    assert w["rss_trend"]["trend"] == "rising"
    text = run_cli("report", str(workers)).stdout
    assert "+100 objects" in text and "no start-<pid>.json" in text
