"""Packaging, the command line and the README's promises."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib import metadata

from _support import PROJECT_ROOT, run_cli

import leakscope


def test_version_comes_from_one_place() -> None:
    assert metadata.version("pyleakscope") == leakscope.__version__


def test_package_is_typed() -> None:
    assert (PROJECT_ROOT / "leakscope" / "py.typed").exists()


def test_readme_test_command_is_the_one_ci_runs() -> None:
    ci = (PROJECT_ROOT / ".ci" / "run").read_text()
    match = re.search(r"^TEST_COMMAND='(.+)'$", ci, re.MULTILINE)
    assert match, ".ci/run must define TEST_COMMAND"
    readme = (PROJECT_ROOT / "README.md").read_text()
    blocks = re.findall(r"```sh\n(.+?)\n```", readme, re.DOTALL)
    assert match.group(1) in blocks


def test_readme_demo_command_runs_an_existing_example() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text()
    demos = re.findall(r"\.venv/bin/python (examples/\S+\.py)", readme)
    assert demos
    for demo in demos:
        assert (PROJECT_ROOT / demo).is_file(), demo


def test_public_names_are_exported() -> None:
    for name in leakscope.__all__:
        assert hasattr(leakscope, name), name


def test_cli_version_and_help() -> None:
    version = run_cli("--version")
    assert version.returncode == 0
    assert version.stdout.strip() == f"leakscope {leakscope.__version__}"
    help_ = run_cli("--help")
    assert help_.returncode == 0
    assert "usage: leakscope" in help_.stdout
    assert "Exit codes" in help_.stdout


def test_cli_rejects_unknown_options_with_usage_error() -> None:
    result = run_cli("--no-such-option")
    assert result.returncode == 2
    assert "unrecognized arguments" in result.stderr


def test_main_demo_finds_and_explains_the_leak() -> None:
    result = subprocess.run(
        [sys.executable, "examples/demo.py"],
        capture_output=True,
        text=True,
        check=False,
        cwd=PROJECT_ROOT,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    leaky, clean = result.stdout.split("Checking render_profile_bounded")
    assert "LEAK" in leaky
    assert "demo_app.Page" in leaky  # what leaks
    assert "_RENDERED" in leaky  # what holds it
    assert "demo_app.py:" in leaky  # where it was allocated
    assert "no leak" in clean
