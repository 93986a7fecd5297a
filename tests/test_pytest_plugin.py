"""The pytest plugin, driven through ``pytester`` exactly as a user would.

Every run is a fresh ``pytest`` subprocess: leak checks read the whole heap,
and each suite must see its own interpreter.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

# A realistic little suite: leaking and clean tests of every shape the plugin supports.
SUITE = """
import functools
import logging
import unittest
import warnings

import pytest

REGISTRY = []


class Session:
    def __init__(self):
        self.data = {"user": 1}


def open_session():
    session = Session()
    REGISTRY.append(session)  # never removed: the leak
    return session


@functools.lru_cache(maxsize=64)
def render(n):
    return f"<p>{n}</p>" * 3


COUNTER = [0]


@pytest.fixture(scope="session")
def big_session_fixture():
    return [Session() for _ in range(500)]


@pytest.fixture(scope="module")
def module_fixture():
    return {i: Session() for i in range(100)}


@pytest.fixture
def function_fixture():
    return [object() for _ in range(50)]


def test_clean(big_session_fixture, module_fixture, function_fixture):
    d = {i: str(i) for i in range(50)}
    assert len(d) == 50 and big_session_fixture and module_fixture and function_fixture


def test_leak():
    open_session()


@pytest.mark.parametrize("leak", [False, True])
def test_param(leak):
    if leak:
        open_session()
    else:
        Session()


class TestClass:
    def test_method_clean(self):
        assert sorted([3, 1, 2]) == [1, 2, 3]

    def test_method_leak(self):
        open_session()


class TestUnit(unittest.TestCase):
    def setUp(self):
        self.scratch = [Session()]

    def test_unit_clean(self):
        self.scratch.append(Session())
        self.assertEqual(len(self.scratch), 2)

    def test_unit_leak(self):
        open_session()


def test_bounded_cache():
    COUNTER[0] += 1
    render(COUNTER[0] % 200)


def test_pytest_buffers(capsys, caplog, recwarn, monkeypatch):
    print("output " * 20)
    logging.getLogger("app").warning("something %s", "odd")
    warnings.warn("old api", DeprecationWarning)
    monkeypatch.setattr(Session, "flag", True, raising=False)
    monkeypatch.setenv("APP_MODE", "test")
    assert caplog.records and capsys.readouterr().out.startswith("output")
    assert len(recwarn) == 1


def test_fails():
    open_session()
    assert False, "ordinary failure"


def test_skips():
    pytest.skip("not today")


@pytest.mark.leakscope_skip
def test_opted_out():
    open_session()


def test_unrepeatable():
    COUNTER.append([])  # a tracked object: its real run grows, so the screen runs it again
    assert len(COUNTER) == 2
"""

LEAKING = {
    "test_suite.py::test_leak",
    "test_suite.py::test_param[True]",
    "test_suite.py::TestClass::test_method_leak",
    "test_suite.py::TestUnit::test_unit_leak",
}
CLEAN = {
    "test_suite.py::test_clean",
    "test_suite.py::test_param[False]",
    "test_suite.py::TestClass::test_method_clean",
    "test_suite.py::TestUnit::test_unit_clean",
    "test_suite.py::test_bounded_cache",
    "test_suite.py::test_pytest_buffers",
}


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)


def _verdicts(path: Path) -> dict[str, Any]:
    document = json.loads(path.read_text(encoding="utf-8"))
    assert document["format"] == "leakscope.pytest_report"
    return document


def _by_verdict(document: dict[str, Any]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for entry in document["tests"]:
        out.setdefault(entry["verdict"], set()).add(entry["nodeid"])
    return out


def _summary_leaks(result: pytest.RunResult) -> set[str]:
    return {m.group(1) for line in result.outlines if (m := re.match(r"LEAK (\S+) - ", line))}


def _after_header(result: pytest.RunResult) -> list[str]:
    """The output after the session header, without progress, separators and timings."""
    lines = result.outlines[next(i for i, x in enumerate(result.outlines) if "collected" in x) :]
    out = []
    for raw in lines[1:]:
        text = re.sub(r"\s*\[\s*\d+%\]$", "", raw).strip("=- ")
        text = re.sub(r" in [\d.]+s( \(.*\))?$", "", text)
        if text:
            out.append(text)
    return out


def _check_suite_result(result: pytest.RunResult, document: dict[str, Any]) -> None:
    assert result.ret == 1
    outcomes = result.parseoutcomes()
    assert outcomes["failed"] == len(LEAKING) + 1  # the leaks and the ordinary failure
    assert outcomes["passed"] == len(CLEAN) + 2  # opted out, not repeatable
    assert outcomes["skipped"] == 1
    assert _summary_leaks(result) == LEAKING
    verdicts = _by_verdict(document)
    assert verdicts["leaked"] == LEAKING
    assert verdicts["clean"] == CLEAN
    assert verdicts["error"] == {"test_suite.py::test_unrepeatable"}
    assert verdicts["not checked"] == {"test_suite.py::test_opted_out"}
    # Failing and skipped tests get no verdict at all.
    everything = set().union(*verdicts.values())
    assert "test_suite.py::test_fails" not in everything
    assert "test_suite.py::test_skips" not in everything
    summary = document["summary"]
    assert {k: summary[k] for k in ("checked", "leaked", "clean", "errors", "not_checked")} == {
        "checked": len(LEAKING) + len(CLEAN),
        "leaked": len(LEAKING),
        "clean": len(CLEAN),
        "errors": 1,
        "not_checked": 1,
    }
    # The screen read every checked test; its suspects got the full check, and only they.
    assert summary["screened"] == len(LEAKING) + len(CLEAN)
    assert summary["fully_checked"] == summary["suspects"] >= len(LEAKING)
    entries = [e for e in document["tests"] if "screen" in e]
    assert all(e["cost"] >= 0 and e["seconds"] >= 0 for e in entries)
    assert all(("report" in e) == e["screen"]["suspect"] for e in entries)
    # The table at the end counts the same.
    head = next(i for i, line in enumerate(result.outlines) if line.startswith("screened"))
    cells = result.outlines[head + 1].split()
    assert cells[:6] == [
        str(summary[k])
        for k in ("screened", "rerun", "suspects", "fully_checked", "leaked", "not_checked")
    ]


def test_suite_wide_mode_fails_exactly_the_leaking_tests(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=SUITE)
    result = _run(pytester, "--leakscope", "--leakscope-report=out/verdicts.json", "-rf")
    document = _verdicts(pytester.path / "out" / "verdicts.json")
    _check_suite_result(result, document)
    text = result.stdout.str()
    # The failure shows the explanation: culprit, holder path, allocation site.
    assert "LeakError: leakscope: LEAK in test_suite.test_leak" in text
    assert "test_suite.Session: +1.0 objects/call" in text
    assert "held by:      module test_suite: REGISTRY (list" in text
    assert re.search(r"allocated at: \S*test_suite\.py:\d+", text)
    assert "ordinary failure" in text
    assert "1 test not checked: they do not pass when run again" in text
    leak = next(e for e in document["tests"] if e["nodeid"] == "test_suite.py::test_leak")
    assert leak["mode"] == "suite"
    assert leak["report"]["leaked"] is True
    assert leak["report"]["culprits"][0]["types"][0] == "test_suite.Session"
    assert "REGISTRY" in leak["summary"] and "test_suite.Session" in leak["explanation"]


def test_suite_wide_mode_under_xdist(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    pytester.makepyfile(test_suite=SUITE)
    result = _run(pytester, "-n", "2", "--leakscope", "--leakscope-report=verdicts.json")
    document = _verdicts(pytester.path / "verdicts.json")
    _check_suite_result(result, document)
    assert len(document["tests"]) == len(LEAKING) + len(CLEAN) + 2  # each verdict once


def test_plugin_is_quiet_on_clean_tests_and_off_by_default(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_quiet="""
        import pytest
        KEPT = []

        def test_clean():
            assert sum(range(10)) == 45

        @pytest.mark.no_leaks
        def test_marked_clean():
            {"a": [1, 2, 3]}

        def test_leaks_but_unchecked():
            KEPT.append(object())
        """
    )
    result = _run(pytester, "--strict-markers")
    result.assert_outcomes(passed=3)
    assert _after_header(result) == ["test_quiet.py ...", "3 passed"]
    # Suite-wide, a run of clean tests prints nothing extra either.
    result = _run(pytester, "--leakscope", "-k", "clean")
    result.assert_outcomes(passed=2, deselected=1)
    lines = _after_header(result)
    assert lines[:2] == ["test_quiet.py ..", "leakscope"]  # then the verdict table
    assert lines[2].split() == [
        "screened",
        "re-run",
        "suspects",
        "fully",
        "checked",
        "flagged",
        "not",
        "checked",
        "time",
        "added",
    ]
    assert lines[3].split()[4] == "0"  # flagged
    assert lines[4:] == ["2 passed, 1 deselected"]


def test_marker_arguments_and_errors(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_marks="""
        import pytest
        KEPT = []

        class Blob:
            pass

        @pytest.mark.no_leaks(warmup=5, runs=6)
        def test_measured_as_asked():
            [Blob() for _ in range(3)]

        @pytest.mark.no_leaks(ignore_types=["test_marks.Blob"])
        def test_expected_growth_ignored():
            KEPT.append(Blob())

        @pytest.mark.no_leaks(ignore_types=[dict])
        def test_other_growth_still_fails():
            KEPT.append(Blob())

        @pytest.mark.no_leaks(runs=1)
        def test_bad_runs():
            pass

        @pytest.mark.no_leaks(repeat=3)
        def test_unknown_argument():
            pass

        COUNT = [0]

        @pytest.mark.no_leaks
        def test_not_repeatable():
            COUNT[0] += 1
            assert COUNT[0] == 1

        @pytest.mark.xfail(raises=AssertionError, strict=True)
        @pytest.mark.no_leaks
        def test_known_leak():
            KEPT.append(Blob())
        """
    )
    result = _run(pytester, "--strict-markers", "--leakscope-report=r.json", "-rfE")
    outcomes = result.parseoutcomes()
    assert outcomes == {"passed": 2, "failed": 4, "xfailed": 1}
    text = result.stdout.str()
    assert "no_leaks(runs=...) must be an integer >= 2, not 1" in text
    assert "got unknown argument(s) repeat" in text
    assert "no leak verdict: the test does not pass when run again" in text
    assert "LEAK test_marks.py::test_other_growth_still_fails" in text
    entries = {e["nodeid"].split("::")[1]: e for e in _verdicts(pytester.path / "r.json")["tests"]}
    measured = entries["test_measured_as_asked"]
    assert (measured["verdict"], measured["mode"]) == ("clean", "marker")
    assert len(measured["report"]["runs"]) == 6 and measured["report"]["warmup"] == 5
    assert entries["test_expected_growth_ignored"]["verdict"] == "clean"
    ignored = entries["test_expected_growth_ignored"]["report"]
    assert ignored["leaked"] is False and ignored["culprits"] == []
    assert any("ignored (ignore_types): test_marks.Blob" in n for n in ignored["notes"])
    assert entries["test_known_leak"]["verdict"] == "leaked"

    markers = _run(pytester, "--markers").stdout.str()
    assert "@pytest.mark.no_leaks(warmup=None, runs=None, ignore_types=())" in markers
    assert "@pytest.mark.leakscope_skip" in markers


def test_fixture(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_fx="""
        import gc
        import pytest
        from leakscope.errors import LeakError

        KEPT = []

        class Node:
            pass

        def test_check_leaky(leakscope):
            leakscope.check(lambda: KEPT.append(Node()))

        def test_check_clean_returns_report(leakscope):
            report = leakscope.check(lambda: [Node() for _ in range(5)])
            assert report.leaked is False and len(report.runs) >= 2

        def test_check_reraises(leakscope):
            def broken():
                raise KeyError("missing")
            with pytest.raises(KeyError, match="missing"):
                leakscope.check(broken)

        def test_leak_error_is_an_assertion(leakscope):
            with pytest.raises(AssertionError):
                leakscope.check(lambda: KEPT.append(Node()), runs=6)

        def test_snapshot_and_track(leakscope):
            before = leakscope.snapshot()
            with leakscope.track() as t:
                keep = [Node() for _ in range(100)]
            assert t.growth.types_changed("test_fx.Node") == 100
            assert (leakscope.snapshot() - before).types_changed("test_fx.Node") >= 100
            del keep

        def test_assert_collected_passes(leakscope):
            node = Node()
            leakscope.assert_collected(node)

        def test_assert_collected_fails(leakscope):
            node = Node()
            KEPT.append(node)
            leakscope.assert_collected(node)

        def test_find_cycles(leakscope):
            def make_cycle():
                a = Node(); b = Node(); a.b = b; b.a = a
            report = leakscope.find_cycles(make_cycle)
            assert "test_fx.Node" in str(report)
        """
    )
    result = _run(pytester, "--leakscope-report=r.json")
    result.assert_outcomes(passed=6, failed=2)
    text = result.stdout.str()
    assert "LeakError: leakscope: LEAK in test_fx.test_check_leaky" in text
    assert "test_fx.Node: +1.0 objects/call" in text
    assert "test_fx.Node object was not collected" in text
    verdicts = _by_verdict(_verdicts(pytester.path / "r.json"))
    assert verdicts["leaked"] == {
        "test_fx.py::test_check_leaky",
        "test_fx.py::test_leak_error_is_an_assertion",
    }
    assert verdicts["clean"] == {"test_fx.py::test_check_clean_returns_report"}
    assert verdicts["error"] == {"test_fx.py::test_check_reraises"}
    # Under --leakscope, tests using the fixture check their own code and are not repeated.
    result = _run(pytester, "--leakscope", "-k", "check_clean or check_leaky")
    result.assert_outcomes(passed=1, failed=1)


def test_ini_options_and_command_line_precedence(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        """
        [pytest]
        leakscope = true
        leakscope_runs = 6
        leakscope_warmup = 4
        leakscope_report = reports/ini.json
        """
    )
    pytester.makepyfile(
        test_ini="""
        KEPT = []
        def test_leak():
            KEPT.append([])
        def test_clean():
            [] + []
        """
    )
    result = _run(pytester)
    result.assert_outcomes(passed=1, failed=1)
    entries = _verdicts(pytester.path / "reports" / "ini.json")["tests"]
    assert {(e["nodeid"], e["verdict"]) for e in entries} == {
        ("test_ini.py::test_leak", "leaked"),
        ("test_ini.py::test_clean", "clean"),
    }
    # Setting runs or warmup forces the full check on every test, with those settings.
    by_id = {e["nodeid"]: e for e in entries}
    leak = by_id["test_ini.py::test_leak"]["report"]
    assert len(leak["runs"]) == 6 and leak["warmup"] == 4
    clean = by_id["test_ini.py::test_clean"]
    assert "screen" not in clean and len(clean["report"]["runs"]) == 6

    result = _run(pytester, "--leakscope-runs=7", "--leakscope-report=cli.json")
    result.assert_outcomes(passed=1, failed=1)
    entries = _verdicts(pytester.path / "cli.json")["tests"]
    leak = next(e["report"] for e in entries if e["verdict"] == "leaked")
    assert len(leak["runs"]) == 7 and leak["warmup"] == 4

    result = _run(pytester, "--no-leakscope")
    result.assert_outcomes(passed=2)

    result = _run(pytester, "--leakscope-runs=1")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--leakscope-runs must be at least 2, not 1" in result.stderr.str()


def test_disabled_with_p_no_leakscope(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_off="""
        import pytest
        KEPT = []
        @pytest.mark.no_leaks
        def test_marked():
            KEPT.append(object())
        def test_fixture(leakscope):
            pass
        """
    )
    result = _run(pytester, "-p", "no:leakscope")
    result.assert_outcomes(passed=1, errors=1)
    assert "fixture 'leakscope' not found" in result.stdout.str()


def test_async_tests_under_pytest_asyncio(pytester: pytest.Pytester) -> None:
    pytest.importorskip("pytest_asyncio")
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(
        test_async="""
        import asyncio
        import pytest
        import pytest_asyncio
        KEPT = []

        class Job:
            pass

        @pytest_asyncio.fixture
        async def ready():
            await asyncio.sleep(0)
            return Job()

        @pytest.mark.asyncio
        @pytest.mark.no_leaks
        async def test_async_leak(ready):
            await asyncio.sleep(0)
            KEPT.append(Job())

        @pytest.mark.asyncio
        @pytest.mark.no_leaks
        async def test_async_clean(ready):
            await asyncio.sleep(0)
            Job()
        """
    )
    result = _run(pytester, "--asyncio-mode=strict")
    result.assert_outcomes(passed=1, failed=1)
    assert "LEAK test_async.py::test_async_leak - test_async.Job" in result.stdout.str()


def test_async_tests_under_anyio(pytester: pytest.Pytester) -> None:
    pytest.importorskip("anyio")
    pytester.makepyfile(
        test_anyio="""
        import anyio
        import pytest
        KEPT = []

        class Job:
            pass

        @pytest.fixture
        def anyio_backend():
            return "asyncio"

        @pytest.mark.anyio
        @pytest.mark.no_leaks
        async def test_anyio_leak():
            await anyio.sleep(0)
            KEPT.append(Job())

        @pytest.mark.anyio
        @pytest.mark.no_leaks
        async def test_anyio_clean():
            await anyio.sleep(0)
            Job()
        """
    )
    result = _run(pytester)
    result.assert_outcomes(passed=1, failed=1)
    assert "LEAK test_anyio.py::test_anyio_leak - test_anyio.Job" in result.stdout.str()


def test_suite_screen_passes_clean_tests_and_escalates_tracked_and_untracked_leaks(
    pytester: pytest.Pytester,
) -> None:
    # The cheap screen decides the clean tests; every leak reaches the full check, including
    # one it sees only in malloc'd bytes (a 1 MiB bytes object per call: neither gc-tracked
    # nor a pymalloc block).  A leak of one small untracked object per call is below what
    # one run shows; the marker's full check finds it.
    pytester.makepyfile(
        test_screen="""
        import itertools
        import pytest
        IDS = itertools.count(10**6)
        NUMBERS, BLOBS, OBJECTS = [], [], []

        def test_clean_sorting():
            assert sorted([3, 1, 2]) == [1, 2, 3]

        def test_clean_dict():
            d = {str(i): [i] for i in range(100)}
            assert len(d) == 100

        @pytest.mark.no_leaks
        def test_int_per_call():
            NUMBERS.append(next(IDS))

        def test_bytes_per_call():
            BLOBS.append(bytes(1 << 20))

        class Node:
            pass

        def test_object_per_call():
            OBJECTS.append(Node())
        """
    )
    result = _run(pytester, "--leakscope", "--leakscope-report=r.json")
    result.assert_outcomes(passed=2, failed=3)
    entries = {e["nodeid"].split("::")[1]: e for e in _verdicts(pytester.path / "r.json")["tests"]}
    assert entries["test_int_per_call"]["mode"] == "marker"
    assert entries["test_int_per_call"]["verdict"] == "leaked"
    for name in ("test_bytes_per_call", "test_object_per_call"):
        assert entries[name]["verdict"] == "leaked", name
        assert entries[name]["screen"]["suspect"] is True  # why it got the full check
    for name in ("test_clean_sorting", "test_clean_dict"):
        assert entries[name]["verdict"] == "clean"
        assert "report" not in entries[name] and entries[name]["screen"]["suspect"] is False


def test_suite_screen_leaves_objects_the_host_froze_frozen(pytester: pytest.Pytester) -> None:
    # The screen works by freezing (gc.freeze) and unfreezing; when the host froze objects
    # itself, it must not unfreeze them: those tests get the full check instead.
    pytester.makepyfile(
        test_frozen="""
        import gc
        KEPT = []
        gc.freeze()
        FROZEN = gc.get_freeze_count()

        def test_clean():
            assert sorted([2, 1]) == [1, 2]

        def test_leak():
            KEPT.append([])

        def test_still_frozen():
            assert FROZEN > 0 and gc.get_freeze_count() > FROZEN // 2
        """
    )
    result = _run(pytester, "--leakscope", "--leakscope-report=r.json")
    result.assert_outcomes(passed=2, failed=1)
    entries = {e["nodeid"].split("::")[1]: e for e in _verdicts(pytester.path / "r.json")["tests"]}
    assert entries["test_leak"]["verdict"] == "leaked"
    assert entries["test_clean"]["verdict"] == "clean"
    assert "screen" not in entries["test_clean"] and "report" in entries["test_clean"]


def test_subtests_are_reported_once_and_subtest_leaks_caught(pytester: pytest.Pytester) -> None:
    # unittest's subTest runs again through TestCase.debug(), which reports nothing; the
    # subtests fixture reports each subtest, so such a test is never run again: its real
    # run alone is read, and it is "not checked" when that grew.
    pytester.makepyfile(
        test_sub="""
        import unittest
        KEPT = []

        def test_fixture_subtests(subtests):
            for i in range(3):
                with subtests.test(i=i):
                    KEPT.append([i])

        class T(unittest.TestCase):
            def test_subtest(self):
                for i in range(3):
                    with self.subTest(i=i):
                        self.assertLess(i, 3)

            def test_subtest_leak(self):
                for i in range(3):
                    with self.subTest(i=i):
                        KEPT.append([i])
        """
    )
    plain = _run(pytester, "-q")
    assert "3 passed, 9 subtests passed" in plain.stdout.str()
    result = _run(pytester, "-q", "--leakscope", "--leakscope-report=r.json")
    assert "1 failed, 2 passed, 9 subtests passed" in result.stdout.str()
    entries = {
        e["nodeid"].split("::", 1)[1]: e for e in _verdicts(pytester.path / "r.json")["tests"]
    }
    assert entries["T::test_subtest_leak"]["verdict"] == "leaked"
    assert entries["T::test_subtest"]["verdict"] == "clean"
    fixture = entries["test_fixture_subtests"]
    assert fixture["verdict"] == "not checked" and "subtests fixture" in fixture["reason"]
    assert fixture["screen"]["calls"] == 0  # never run again
