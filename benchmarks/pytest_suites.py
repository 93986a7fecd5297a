"""What ``pytest --leakscope`` costs on real projects' own test suites, and what it flags.

Downloads (at run time, never committed) the sdists of a few well-kept pure-Python
projects whose sdists ship their tests, into ``benchmarks/.cache/`` (ignored by git),
makes a virtual environment there with pytest (and pytest-memray where it installs),
then runs each suite in fresh processes:

- plain ``pytest`` (leakscope's plugin loaded, off);
- ``pytest --leakscope`` (every test screened, suspects checked in full);
- ``pytest --memray`` with ``limit_leaks`` on every test, when pytest-memray installs.

and prints, per suite: plain seconds, the ``--leakscope`` ratio, tests flagged,
screened, re-run, suspects, re-run calls, and memray's ratio and false alarms (tests
that fail under it and pass plain).  The suites do not leak: every flagged test is a
false alarm.  Target (issue 16): ``--leakscope`` at most 2x the plain run, 0 flagged.

    python benchmarks/pytest_suites.py [--only NAME ...] [--no-memray] [--json]

The synthetic suite of ``benchmarks/pytest_overhead.py`` stays the accuracy check (its
leaks must all be caught).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tarfile
import time
import venv
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(__file__).resolve().parent / ".cache"
MEMRAY_LIMIT = "4 KB"


@dataclass(frozen=True)
class Suite:
    """One project's test suite: where its tests are and how to run them offline."""

    name: str
    requirement: str  # pinned, so every run measures the same tests
    kind: str
    tests: str
    pythonpath: str = "."
    args: tuple[str, ...] = ()
    deps: tuple[str, ...] = ()
    ini: str = ""  # written as pytest.ini when given (the project's own is left alone)

    @property
    def folder(self) -> Path:
        return CACHE / "src" / self.requirement.replace("==", "-")


SUITES = (
    Suite(
        "cachetools",
        "cachetools==8.0.2",
        "several hundred small tests",
        "tests",
        pythonpath="src",
    ),
    Suite(
        "pyparsing",
        "pyparsing==3.3.3",
        "individually slow tests (up to seconds each)",
        "tests",
        args=("--ignore=tests/test_diagram.py",),
    ),
    Suite(
        "more-itertools",
        "more-itertools==11.2.1",
        "unittest tests with ~21,000 subtests",
        "tests",
    ),
    Suite(
        "attrs",
        "attrs==26.1.0",
        "hypothesis property tests (100 examples per test)",
        "tests",
        pythonpath="src",
    ),
    Suite(
        "idna",
        "idna==3.20",
        "~6,400 parametrized cases",
        "tests",
    ),
)

# A tiny plugin putting pytest-memray's limit_leaks marker on every test.
_MEMRAY_PLUGIN = f'''
import pytest

def pytest_collection_modifyitems(items):
    for item in items:
        item.add_marker(pytest.mark.limit_leaks("{MEMRAY_LIMIT}"))
'''


@dataclass
class Result:
    """The figures of one suite."""

    suite: Suite
    tests: int = 0
    plain_s: float = 0.0
    leakscope_s: float = 0.0
    summary: dict[str, Any] = field(default_factory=dict)
    flagged: list[str] = field(default_factory=list)
    broken: list[str] = field(default_factory=list)  # fail under --leakscope, pass plain
    memray_s: float | None = None
    memray_false: int | None = None
    memray_note: str = ""

    def row(self) -> dict[str, Any]:
        return {
            "suite": self.suite.name,
            "kind": self.suite.kind,
            "tests": self.tests,
            "plain_s": round(self.plain_s, 2),
            "leakscope_s": round(self.leakscope_s, 2),
            "ratio": round(self.leakscope_s / self.plain_s, 2) if self.plain_s else None,
            "flagged": len(self.flagged),
            "broken": len(self.broken),
            "screened": self.summary.get("screened"),
            "rerun": self.summary.get("rerun"),
            "rerun_calls": self.summary.get("rerun_calls"),
            "suspects": self.summary.get("suspects"),
            "fully_checked": self.summary.get("fully_checked"),
            "added_s": self.summary.get("seconds_added"),
            "memray_ratio": (
                round(self.memray_s / self.plain_s, 2)
                if self.memray_s is not None and self.plain_s
                else None
            ),
            "memray_false_alarms": self.memray_false,
            "memray_note": self.memray_note,
            "flagged_tests": self.flagged[:10],
            "broken_tests": self.broken[:10],
        }


def _python() -> Path:
    return CACHE / "venv" / "bin" / "python"


def _pip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(_python()), "-m", "pip", "-q", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        check=False,
    )


def prepare(suites: tuple[Suite, ...], memray: bool) -> bool:
    """The cache: a venv with pytest (and pytest-memray), and each suite's sdist unpacked.

    Returns whether pytest-memray is installed.
    """
    CACHE.mkdir(parents=True, exist_ok=True)
    if not _python().exists():
        venv.create(CACHE / "venv", with_pip=True)
    if _pip("install", "pytest", "hypothesis").returncode != 0:
        raise SystemExit("cannot install pytest into benchmarks/.cache/venv")
    have_memray = memray and _pip("install", "pytest-memray").returncode == 0
    sdists = CACHE / "sdists"
    for suite in suites:
        if suite.deps:
            _pip("install", *suite.deps)
        if suite.folder.exists():
            continue
        before = set(sdists.glob("*")) if sdists.exists() else set()
        done = _pip(
            "download", "--no-deps", "--no-binary", ":all:", suite.requirement, "-d", str(sdists)
        )
        if done.returncode != 0:
            raise SystemExit(f"cannot download {suite.requirement}: {done.stderr.strip()[-300:]}")
        new = set(sdists.glob("*")) - before
        stem = suite.requirement.split("==")[0].replace("-", "_").lower()
        archive = next(
            iter(new or [p for p in sdists.glob("*.tar.gz") if p.name.lower().startswith(stem)])
        )
        target = suite.folder.parent
        target.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archive) as tar:
            top = tar.getnames()[0].split("/")[0]
            if hasattr(tarfile, "data_filter"):
                tar.extractall(target, filter="data")
            else:  # pragma: no cover - Pythons before the extraction filters
                tar.extractall(target)
        (target / top).rename(suite.folder)
    (CACHE / "plugins").mkdir(exist_ok=True)
    (CACHE / "plugins" / "bench_limit_leaks.py").write_text(_MEMRAY_PLUGIN, encoding="utf-8")
    return have_memray


def _env(suite: Suite) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as users run: byte code cached
    paths = [str(suite.folder / suite.pythonpath), str(PROJECT_ROOT), str(CACHE / "plugins")]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def _pytest(suite: Suite, *args: str) -> tuple[float, int]:
    command = [
        str(_python()),
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "leakscope.pytest_plugin",
        *suite.args,
        *args,
        suite.tests,
    ]
    start = time.perf_counter()
    done = subprocess.run(
        command,
        cwd=suite.folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
        env=_env(suite),
    )
    return time.perf_counter() - start, done.returncode


def _failed(path: Path) -> set[str]:
    out = set()
    for case in ET.parse(path).getroot().iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            out.add(f"{case.get('classname')}::{case.get('name')}")
    return out


def _count(path: Path) -> int:
    return sum(1 for _ in ET.parse(path).getroot().iter("testcase"))


def measure(suite: Suite, memray: bool) -> Result:
    result = Result(suite)
    out = CACHE / "out" / suite.name
    out.mkdir(parents=True, exist_ok=True)
    if suite.ini:
        (suite.folder / "pytest.ini").write_text(suite.ini, encoding="utf-8")
    _pytest(suite, "--co")  # byte code compiled and cached before the timed runs
    result.plain_s, _ = _pytest(suite, f"--junitxml={out / 'plain.xml'}")
    plain_failed = _failed(out / "plain.xml")
    result.tests = _count(out / "plain.xml")
    result.leakscope_s, _ = _pytest(
        suite,
        "--leakscope",
        f"--leakscope-report={out / 'leakscope.json'}",
        f"--junitxml={out / 'leakscope.xml'}",
    )
    report = json.loads((out / "leakscope.json").read_text(encoding="utf-8"))
    result.summary = report["summary"]
    result.flagged = sorted(t["nodeid"] for t in report["tests"] if t["verdict"] == "leaked")
    result.broken = sorted(_failed(out / "leakscope.xml") - plain_failed)
    if memray:
        seconds, _ = _pytest(
            suite, "--memray", "-p", "bench_limit_leaks", f"--junitxml={out / 'memray.xml'}"
        )
        result.memray_s = seconds
        result.memray_false = len(_failed(out / "memray.xml") - plain_failed)
    else:
        result.memray_note = "pytest-memray not installed"
    return result


def _table(rows: list[dict[str, Any]]) -> str:
    heads = (
        "suite",
        "tests",
        "plain s",
        "--leakscope",
        "flagged",
        "screened",
        "re-run",
        "suspects",
        "re-run calls",
        "memray",
        "memray false alarms",
    )
    lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    for r in rows:
        memray = "-" if r["memray_ratio"] is None else f"{r['memray_ratio']:.2f}x"
        false = "-" if r["memray_false_alarms"] is None else str(r["memray_false_alarms"])
        cells = (
            f"{r['suite']} ({r['kind']})",
            str(r["tests"]),
            f"{r['plain_s']:.1f}",
            f"{r['ratio']:.2f}x",
            str(r["flagged"]),
            str(r["screened"]),
            str(r["rerun"]),
            str(r["suspects"]),
            str(r["rerun_calls"]),
            memray,
            false,
        )
        lines.append("| " + " | ".join(cells) + " |")
    for r in rows:
        if r["flagged"] or r["broken"]:
            lines.append(f"{r['suite']}: flagged {r['flagged_tests']}, broken {r['broken_tests']}")
    return "\n".join(lines)


def run(names: list[str] | None = None, memray: bool = True) -> list[dict[str, Any]]:
    suites = tuple(s for s in SUITES if not names or s.name in names)
    have_memray = prepare(suites, memray)
    return [measure(s, have_memray).row() for s in suites]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--only", nargs="*", help="suite names (default: all)")
    parser.add_argument("--no-memray", action="store_true", help="skip pytest-memray")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args(argv)
    rows = run(args.only, memray=not args.no_memray)
    print(json.dumps(rows, indent=2) if args.json else _table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
