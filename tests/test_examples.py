"""Every example runs as ``python examples/NAME.py`` and prints what it finds."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _support import PROJECT_ROOT, child_env, run_python_json

EXAMPLES = PROJECT_ROOT / "examples"


def _run(*args: str, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = child_env(env_extra)
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=PROJECT_ROOT,
        env=env,
        timeout=120,
    )


def _example(name: str, *args: str) -> str:
    result = _run(str(EXAMPLES / name), *args)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_check_example_names_the_leaking_cache() -> None:
    out = _example("check_cache_leak.py")
    assert "LEAK in __main__.lookup_price:" in out
    assert "__main__.Price: +1.0 objects/call" in out
    assert "held by: module __main__: _PRICES (dict" in out
    assert "no leak in __main__.lookup_price_no_cache" in out


def test_del_cycle_example_finds_the_finalizer_cycle() -> None:
    out = _example("del_cycle.py")
    assert "Connection <-> Cursor: 3 cycles" in out
    assert "[has __del__]" in out
    assert "Cycles found: 3 | with __del__: True" in out


def test_why_alive_example_renders_the_graph(tmp_path: Path) -> None:
    svg = tmp_path / "why.svg"
    out = _example("why_alive_graph.py", str(svg))
    assert "_LISTENERS['shutdown'][0].__self__" in out
    if shutil.which("dot") is None:
        assert "Graphviz 'dot' is not installed" in out
        assert not svg.exists()
    else:
        assert f"Graph rendered to {svg}" in out
        assert svg.read_text(encoding="utf-8").lstrip().startswith(("<?xml", "<svg"))


def test_why_alive_example_without_graphviz(tmp_path: Path) -> None:
    svg = tmp_path / "why.svg"
    # A PATH where no 'dot' can be found: the example falls back to the text paths.
    result = _run(str(EXAMPLES / "why_alive_graph.py"), str(svg), env_extra={"PATH": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert "_LISTENERS['shutdown'][0].__self__" in result.stdout
    assert "Graphviz 'dot' is not installed: showing the text paths only." in result.stdout
    assert not svg.exists()


def test_decorators_example() -> None:
    out = _example("decorators.py")
    assert "@no_leaks render_page: no leak" in out
    assert "@no_leaks record_login raised LeakError:" in out
    assert "LEAK in __main__.record_login" in out
    assert "@watch handle_request after 20,000 calls: leaking = True" in out
    assert "module __main__: _AUDIT_LOG (list" in out


def test_compare_snapshots_example(tmp_path: Path) -> None:
    out = _example("compare_snapshots.py", str(tmp_path))
    assert (tmp_path / "before.json").is_file()
    assert (tmp_path / "after.json").is_file()
    assert "__main__.Order" in out
    assert "Orders kept: 1000" in out
    # The saved files work with the command line too.
    cli = _run(
        "-m", "leakscope", "diff", str(tmp_path / "before.json"), str(tmp_path / "after.json")
    )
    assert cli.returncode == 0
    assert "__main__:_OPEN_ORDERS (list)" in cli.stdout


def test_pytest_example_suite_fails_on_the_leaking_test() -> None:
    result = _run(
        "-m", "pytest", "examples/pytest_suite", "-p", "no:cacheprovider", "-p", "no:xdist", "-q"
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAILED examples/pytest_suite/test_shop.py::test_receipt_does_not_leak" in result.stdout
    assert "module shop: _RECEIPTS (list" in result.stdout
    assert "1 failed, 2 passed" in result.stdout


def test_pytest_example_suite_is_not_in_the_projects_test_run() -> None:
    # Only the file names matter here (a collection error elsewhere would not change them).
    result = _run("-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider")
    assert "tests/test_examples.py" in result.stdout, result.stdout[-2000:] + result.stderr
    assert "pytest_suite" not in result.stdout


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.py")))
def test_every_example_has_a_docstring_with_its_command(name: str) -> None:
    text = (EXAMPLES / name).read_text(encoding="utf-8")
    assert text.startswith('"""'), name
    if name != "demo_app.py":  # a module the demo imports, not a program
        assert f"python examples/{name}" in text, name


def test_leaky_program_runs_alone_and_under_leakscope_run() -> None:
    out = _example("leaky_program.py", "0.2")
    assert "sessions still registered" in out
    result = _run(
        "-m", "leakscope", "run", "--json", "--interval", "0.05", "examples/leaky_program.py", "0.3"
    )
    # Wall-clock sampling: how many snapshots a 0.3 s run gets depends on the machine,
    # so only the plumbing is asserted here (the verdict is forced below, by ticks).
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert data["format"] == "leakscope.run" and data["exit_code"] == 0
    assert result.returncode == (1 if data["verdict"] == "leak" else 0), result.stderr
    assert "sessions still registered" in result.stdout


_DRIVER = """
import sys
sys.path.insert(0, {examples!r})
import leaky_program
from _ticks import tick
for job in range({jobs}):
    leaky_program.handle(job)
    if job % {every} == {every} - 1:
        tick()
"""

_HARNESS = """
import json, sys, types
from leakscope.engine.program import Ticks, run_program
ticks = Ticks()
sys.modules["_ticks"] = types.SimpleNamespace(tick=ticks.tick)
data = run_program({driver!r}, trigger=ticks)
print(json.dumps(data))
"""


def test_leaky_program_is_caught_with_the_adaptive_sampler(tmp_path: Path) -> None:
    # The snapshots are forced by ticks (one every 40 jobs, 100 in all) instead of the
    # clock: the adaptive sampler halves its points past 32 and then keeps one tick in
    # two (as it doubles its interval on a clock), and the leak shows in every interval
    # whatever the machine's load.
    driver = tmp_path / "driver.py"
    driver.write_text(_DRIVER.format(examples=str(EXAMPLES), jobs=4000, every=40))
    data = run_python_json(_HARNESS.format(driver=str(driver)))
    assert data["verdict"] == "leak"
    assert [c["types"][0] for c in data["culprits"]] == ["leaky_program.Session"]
    holders = [h["description"] for h in data["culprits"][0]["holders"]]
    assert any("module leaky_program: _SESSIONS (dict" in h for h in holders), holders
    assert 6 <= len(data["timeline"]) <= 40
    # Halved at 33 points (stride 2 ticks), then again (stride 4): 4 ticks of 40 jobs.
    assert data["culprits"][0]["per_call"] == 160.0
    assert len(data["timeline"]) == 1 + 16 + 9 + 1  # start, 64 ticks halved twice, 36 more, exit


def test_ticks_without_a_leak_give_a_clean_run(tmp_path: Path) -> None:
    driver = tmp_path / "driver.py"
    driver.write_text(
        "from _ticks import tick\n"
        "for i in range(60):\n"
        "    junk = [object() for _ in range(50)]\n"
        "    del junk\n"
        "    tick()\n"
    )
    data = run_python_json(_HARNESS.format(driver=str(driver)))
    assert data["verdict"] == "clean" and data["culprits"] == []
    assert len(data["timeline"]) >= 30


def test_leakscope_run_gives_each_of_two_leaks_its_own_holder(tmp_path: Path) -> None:
    driver = tmp_path / "driver.py"
    driver.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(PROJECT_ROOT / 'tests' / 'scenarios')!r})\n"
        "import leak_two_at_once as app\n"
        "from _ticks import tick\n"
        "for i in range(600):\n"
        "    app.run()\n"
        "    if i % 30 == 29:\n"
        "        tick()\n"
    )
    data = run_python_json(_HARNESS.format(driver=str(driver)))
    assert data["verdict"] == "leak"
    by_type = {c["types"][0]: c for c in data["culprits"]}
    orders = by_type["leak_two_at_once.ParsedOrder"]
    handlers = by_type["leak_two_at_once.Handler"]
    assert [h["description"] for h in orders["holders"]] == [
        "module leak_two_at_once: _ORDERS (dict, +30.0 entries/interval)"
    ]
    assert [h["description"] for h in handlers["holders"]] == [
        "class leak_two_at_once.EventBus: attribute listeners (list, +30.0 entries/interval)"
    ]
    assert "unbounded cache" in orders["hint"] and "callbacks" in handlers["hint"]
