"""check() and LeakReport: the scenario corpus in fresh interpreters, and the API's contracts."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from _support import child_env, run_python, run_python_json

from leakscope._roots import ContainerKey
from leakscope.engine.model import Culprit, Holder, LeakReport, PerCall, Run
from leakscope.errors import DataError

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "tests" / "scenarios"
NAMES = sorted(p.stem for p in SCENARIOS.glob("*.py") if not p.stem.startswith("_"))


def _scenario(name: str) -> dict:
    proc = subprocess.run(
        [sys.executable, str(SCENARIOS / "_run.py"), name],
        capture_output=True,
        check=False,
        text=True,
        timeout=120,
        env=child_env(),
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_corpus_covers_every_kind() -> None:
    leaks = [n for n in NAMES if n.startswith("leak_")]
    clean = [n for n in NAMES if n.startswith("clean_")]
    assert len(leaks) >= 13 and len(clean) >= 11


@pytest.mark.parametrize("name", NAMES)
def test_scenario_verdict_and_explanation(name: str) -> None:
    data = _scenario(name)
    report = LeakReport.from_dict(data["report"])
    text = data["text"]
    if data["expect"] == "clean":
        assert not report.leaked, text
        assert report.culprits == ()
        assert "no leak" in text
        if data["note"]:  # what grew is said, not hidden
            assert data["note"] in text, text
        return
    assert report.leaked, text
    assert report.culprits, text
    assert report.calls >= 100
    first = report.culprits[0]
    if data["types"]:  # the culprit type is named...
        assert any(t in first.types or t in text for t in data["types"]), text
    if data["holder"]:  # ...and so is what holds it
        assert data["holder"] in text, text
    assert first.hint, text
    if data["hint"]:
        assert data["hint"] in first.hint, text
    for culprit_type, (holder, hint) in data["each"].items():  # several leaks: each its own
        culprit = next(c for c in report.culprits if c.type == culprit_type)
        assert holder in culprit.holders[0].description, text
        assert all(
            holder not in h.description
            for c in report.culprits
            if c is not culprit
            for h in c.holders
        ), text
        assert hint in culprit.hint, text
    assert "LEAK in" in text
    # JSON round trip, and str() never shows values
    assert LeakReport.from_dict(json.loads(json.dumps(report.to_dict()))) == report


def _shape(report: LeakReport) -> list:
    """What a report says, without the numbers that vary from run to run."""

    def plain(text: str) -> str:
        return re.sub(r"[0-9][0-9,.]*", "#", text)

    return [
        (
            c.kind,
            c.types,
            sorted(name for name, _ in c.related),
            [plain(h.description) for h in c.holders],
            c.hint,
        )
        for c in report.culprits
    ]


def _scenario_with_seed(name: str, seed: int) -> LeakReport:
    proc = subprocess.run(
        [sys.executable, str(SCENARIOS / "_run.py"), name],
        capture_output=True,
        check=False,
        text=True,
        timeout=120,
        env=child_env({"PYTHONHASHSEED": str(seed)}),
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    return LeakReport.from_dict(json.loads(proc.stdout)["report"])


@pytest.mark.parametrize("name", ["leak_two_at_once", "leak_exceptions", "leak_handlers"])
def test_report_does_not_depend_on_the_hash_seed(name: str) -> None:
    shapes = [_shape(_scenario_with_seed(name, seed)) for seed in (0, 1, 2, 3, 5)]
    assert all(shape == shapes[0] for shape in shapes), shapes


def test_bounded_caches_are_known_by_their_bound() -> None:
    # Growth into a declared bound is no leak, and it is known long before the bound.
    out = run_python_json(
        """
        import collections, functools, itertools, json
        from leakscope.engine.check import check
        ids = itertools.count()
        class Row:
            pass
        @functools.lru_cache(maxsize=5000)
        def parse(n):
            return Row()
        @functools.cache
        def parse_all(n):
            return Row()
        recent = collections.deque(maxlen=100_000)
        reports = [
            check(lambda: parse(next(ids))),
            check(lambda: recent.append(Row())),
            check(lambda: parse_all(next(ids))),
        ]
        print(json.dumps([r.to_dict() for r in reports]))
        """
    )
    lru, deque, unbounded = (LeakReport.from_dict(r) for r in out)
    for report in (lru, deque):
        assert not report.leaked and not report.culprits, report
        assert report.calls < 5000
        assert "filling a bounded cache (" in str(report)
    assert " of 5,000 entries): functools.lru_cache" in lru.bounded[0]
    assert " of 100,000 entries): collections.deque" in deque.bounded[0]
    assert unbounded.leaked and unbounded.bounded == ()
    assert "lru_cache(maxsize=None)" in unbounded.culprits[0].hint
    assert "on a method" not in unbounded.culprits[0].hint


def test_explanations_name_holder_site_and_notes() -> None:
    data = _scenario("leak_exceptions")
    c = LeakReport.from_dict(data["report"]).culprits[0]
    assert c.types == ("leak_exceptions.JobError",)
    assert {"traceback", "frame"} <= {name for name, _ in c.related}
    assert c.holders[0].description == "module leak_exceptions: _FAILURES (list, +1.0 entries/call)"
    assert "tests/scenarios/leak_exceptions.py:" in " ".join(c.allocated_at)
    assert "traceback" in c.hint

    refcount = LeakReport.from_dict(_scenario("leak_refcount")["report"]).culprits[0]
    assert refcount.types == ("leak_refcount.Packet",)
    assert any("reference-count leak in C code" in n for n in refcount.notes)

    untracked = LeakReport.from_dict(_scenario("leak_untracked")["report"]).culprits[0]
    assert untracked.kind == "untracked"
    assert any("leak_untracked.py:" in s for s in untracked.allocated_at)

    resurrect = LeakReport.from_dict(_scenario("leak_del_resurrect")["report"]).culprits[0]
    assert any("__del__" in n for n in resurrect.notes)

    cycles = LeakReport.from_dict(_scenario("leak_gc_disabled")["report"]).culprits[0]
    assert cycles.kind == "cycles" and "leak_gc_disabled.Node" in cycles.types


def test_one_object_per_call_is_caught_and_plateaus_are_not() -> None:
    out = run_python(
        """
        import functools, itertools
        from leakscope.engine.check import check
        keep, ids = [], itertools.count()
        class Slow: pass
        def every_third():
            if next(ids) % 3 == 0:
                keep.append(Slow())
        big = {}
        def fills_to_700():
            n = next(ids)
            if len(big) < 700:
                big[n] = Slow()
        print(check(every_third).leaked, check(fills_to_700).leaked)
        """
    )
    assert out.split() == ["True", "False"]


def test_ignore_types_leaves_expected_growth_out_of_the_verdict() -> None:
    out = run_python(
        """
        import json
        from leakscope.engine.check import check
        kept = []
        class Session: pass
        class Other: pass
        def sessions():
            kept.append(Session())
        def both():
            kept.append(Session()); kept.append(Other())
        plain = check(sessions, trace=False)
        by_name = check(sessions, ignore_types=["__main__.Session"], trace=False)
        by_type = check(both, ignore_types=[Session], trace=False)
        print(json.dumps([
            plain.leaked, by_name.leaked, [c.types[0] for c in by_name.culprits],
            [n for n in by_name.notes if n.startswith("ignored")],
            by_type.leaked, [c.types[0] for c in by_type.culprits],
        ]))
        """
    )
    plain, by_name, names, notes, by_type, remaining = json.loads(out)
    assert plain is True and by_name is False and names == []
    assert len(notes) == 1 and "__main__.Session" in notes[0]
    assert by_type is True and "__main__.Session" not in remaining and remaining


def test_values_hidden_unless_asked() -> None:
    out = run_python(
        """
        import itertools
        from leakscope.engine.check import check
        SECRETS = {}
        class Token: pass
        ids = itertools.count()
        def run():
            SECRETS[f"password for user {next(ids)}"] = Token()
        report = check(run)
        print(json.dumps([str(report), report.format(show_values=True)]))
        """.replace("import itertools", "import itertools, json")
    )
    plain, shown = json.loads(out)
    assert "password" not in plain
    assert "password" in shown


def test_error_is_reported_and_state_restored() -> None:
    out = run_python(
        """
        import gc, tracemalloc, warnings
        from leakscope.errors import LeakscopeError
        from leakscope.engine.check import check
        gc.disable(); gc.set_threshold(500, 7, 3); gc.set_debug(gc.DEBUG_STATS * 0)
        filters = list(warnings.filters)
        calls = []
        def boom():
            calls.append(1)
            if len(calls) > 40:
                raise ValueError("broken on purpose")
        report = check(boom)
        print(report.leaked, report.error)
        print(gc.isenabled(), gc.get_threshold(), tracemalloc.is_tracing(), warnings.filters == filters)
        try:
            report.raise_if_leaked()
        except LeakscopeError as exc:
            print("raised", "no verdict" in str(exc))
        """
    )
    lines = out.splitlines()
    assert lines[0].startswith("False ValueError: broken on purpose (raised at")
    assert "during measured run" in lines[0]
    assert lines[1] == "False (500, 7, 3) False True"
    assert lines[2] == "raised True"


def test_measured_runs_freeze_the_heap_and_leave_the_hosts_freeze_alone() -> None:
    # check() freezes what is alive after the warm-up, so that its collections and censuses
    # see only what the runs made; it unfreezes on exit, even when the function raises.  A
    # host that froze objects itself (a pre-fork server) keeps them frozen, and still gets
    # a verdict, from whole-heap censuses.
    out = run_python_json(
        """
        import gc, json
        from leakscope.engine.check import check

        seen, kept = [], []

        def leaky():
            seen.append(gc.get_freeze_count())
            kept.append(object.__new__(type("Leaked", (), {})))

        def boom():
            if len(seen) > 30:
                raise ValueError("broken on purpose")
            seen.append(gc.get_freeze_count())

        start = gc.get_freeze_count()
        first = check(leaky).leaked, max(seen) > start, gc.get_freeze_count() - start
        seen.clear()
        check(boom)
        after_error = gc.get_freeze_count() - start
        host = [[i] for i in range(1000)]
        gc.freeze()
        frozen_by_host = gc.get_freeze_count()
        seen.clear()
        # Never more than the host froze (frozen objects freed meanwhile leave the count).
        second = check(leaky).leaked, max(seen) <= frozen_by_host, gc.get_freeze_count()
        print(json.dumps({"first": first, "after_error": after_error,
                          "second": second, "host": frozen_by_host}))
        """
    )
    assert out["first"] == [True, True, 0]  # frozen during the runs, not after
    assert out["after_error"] == 0
    leaked, untouched, count = out["second"]
    assert leaked and untouched and out["host"] // 2 < count <= out["host"], out


@pytest.mark.version_sensitive
def test_objects_a_host_froze_before_importing_leakscope_stay_frozen() -> None:
    # Python 3.12 starts with a few hundred objects frozen, which leakscope allows for
    # when it is imported; a host that froze its own heap first is not mistaken for that.
    out = run_python_json(
        """
        import gc, json
        heap = [[i] for i in range(5000)]
        gc.freeze()
        frozen = gc.get_freeze_count()
        from leakscope.engine.check import check
        kept = []
        leaked = check(lambda: kept.append([len(kept)])).leaked
        print(json.dumps({"leaked": leaked, "before": frozen, "after": gc.get_freeze_count()}))
        """
    )
    # Never unfrozen (that would drop the count to 0); frozen objects freed since leave it.
    assert out["leaked"] and out["before"] >= out["after"] > 5000, out


def test_no_reference_to_user_objects_after_check() -> None:
    out = run_python(
        """
        import gc, weakref
        from leakscope.engine.check import check
        class Thing: pass
        registry = []
        def run():
            registry.append(Thing())
        report = check(run)
        refs = [weakref.ref(t) for t in registry]
        registry.clear()
        gc.collect()
        print(report.leaked, sum(r() is not None for r in refs))
        """
    )
    assert out.split() == ["True", "0"]


def test_async_functions_and_running_loop() -> None:
    out = run_python(
        """
        import asyncio
        from leakscope.engine.check import check
        keep = []
        async def leaky():
            await asyncio.sleep(0)
            keep.append(object())
        async def fine():
            await asyncio.sleep(0)
        print(check(leaky, runs=6).leaked, check(fine).leaked)
        async def main():
            try:
                check(fine)
            except TypeError as exc:
                print("TypeError", "event loop is already running" in str(exc))
        asyncio.run(main())
        """
    )
    assert out.split() == ["True", "False", "TypeError", "True"]


def test_timeout_and_explicit_runs() -> None:
    out = run_python(
        """
        import time
        from leakscope.engine.check import check
        report = check(lambda: time.sleep(0.01), timeout=0.3)
        print(report.seconds < 2.0, any("timed out" in n for n in report.notes))
        print(len(check(lambda: None, runs=3, warmup=2).runs))
        """
    )
    assert out.split() == ["True", "True", "3"]


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"runs": 1}, ValueError),
        ({"warmup": 0}, ValueError),
        ({"timeout": -1}, ValueError),
        ({"trace": "yes"}, TypeError),
        ({"ignore_types": 3}, TypeError),
        ({"ignore_types": ["ok", ""]}, TypeError),
    ],
)
def test_bad_arguments(kwargs: dict, error: type) -> None:
    from leakscope.engine.check import check

    with pytest.raises(error):
        check(lambda: None, **kwargs)


def test_not_callable() -> None:
    from leakscope.engine.check import check

    with pytest.raises(TypeError, match="callable"):
        check(42)  # type: ignore[arg-type]


def test_report_round_trip_and_raise() -> None:
    from leakscope.errors import LeakError

    report = LeakReport(
        function="app.handle",
        leaked=True,
        per_call=PerCall(2.0, 3.0, 120.0),
        culprits=(
            Culprit(
                kind="objects",
                types=("app.Session",),
                per_call=1.0,
                related=(("dict", 1.0),),
                holders=(Holder("module app: _S (list, +1.0 entries/call)", "container"),),
                allocated_at=("app.py:3",),
                hint="remove entries",
            ),
        ),
        runs=(Run(32, 0.01, 32, 64, None, 0),),
        warmup=3,
        seconds=0.5,
    )
    assert LeakReport.from_dict(json.loads(json.dumps(report.to_dict()))) == report
    with pytest.raises(LeakError) as info:
        report.raise_if_leaked()
    assert info.value.report is report
    assert "app.Session: +1.0 objects/call" in str(info.value)
    assert "held by:      module app: _S" in str(report)
    assert "allocated at: app.py:3" in str(report)
    with pytest.raises(ValueError):
        LeakReport.from_dict({"format": "other"})


def _good_report() -> dict:
    return LeakReport(
        function="app.handle",
        leaked=True,
        per_call=PerCall(2.0, 3.0),
        culprits=(
            Culprit(
                kind="objects",
                types=("app.Session",),
                per_call=1.0,
                holders=(Holder.container(ContainerKey.global_("app", "_S"), "list", 1.0),),
            ),
        ),
        runs=(Run(32, 0.01, 32, 64, None, 0),),
    ).to_dict()


def _broken(path: tuple, value: object) -> dict:
    data = json.loads(json.dumps(_good_report()))
    target = data
    for step in path[:-1]:
        target = target[step]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return data


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("format",), "other", "format"),
        (("function",), _DELETE, "function"),
        (("leaked",), "yes", "leaked"),
        (("per_call",), _DELETE, "per_call"),
        (("per_call",), [1, 2], "per_call"),
        (("per_call", "objects"), "many", "per_call.objects"),
        (("per_call", "bytes"), "x", "per_call.bytes"),
        (("runs",), {"a": 1}, "runs"),
        (("runs", 0, "calls"), _DELETE, "runs[0].calls"),
        (("runs", 0, "calls"), 1.5, "runs[0].calls"),
        (("runs", 0, "rss"), "big", "runs[0].rss"),
        (("culprits", 0), "x", "culprits[0]"),
        (("culprits", 0, "kind"), _DELETE, "culprits[0].kind"),
        (("culprits", 0, "kind"), "weird", "culprits[0].kind"),
        (("culprits", 0, "unit"), "parsecs", "culprits[0].unit"),
        (("culprits", 0, "per_call"), None, "culprits[0].per_call"),
        (("culprits", 0, "types"), [1], "culprits[0].types[0]"),
        (("culprits", 0, "related"), [["dict"]], "culprits[0].related[0]"),
        (("culprits", 0, "holders", 0, "description"), 3, "culprits[0].holders[0].description"),
        (("culprits", 0, "holders", 0, "kind"), "ghost", "culprits[0].holders[0].kind"),
        (("culprits", 0, "holders", 0, "rate"), "fast", "culprits[0].holders[0].rate"),
        (("culprits", 0, "holders", 0, "key"), "nokey", "culprits[0].holders[0].key"),
        (("warmup",), "3", "warmup"),
        (("notes",), [None], "notes[0]"),
    ],
)
def test_from_dict_names_the_bad_field(path: tuple, value: object, field: str) -> None:
    data = _broken(path, value)
    with pytest.raises(DataError) as info:
        LeakReport.from_dict(data)
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}: ")


def test_each_engine_from_dict_raises_data_error() -> None:
    for cls in (PerCall, Run, Holder, Culprit, LeakReport):
        with pytest.raises(DataError):
            cls.from_dict({})  # type: ignore[attr-defined]
        with pytest.raises(DataError):
            cls.from_dict(None)  # type: ignore[attr-defined, arg-type]
    good = _good_report()
    assert LeakReport.from_dict(good).to_dict() == good
    # an older report without the holder's structured fields still loads
    del good["culprits"][0]["holders"][0]["key"]
    del good["culprits"][0]["holders"][0]["rate"]
    assert LeakReport.from_dict(good).culprits[0].holders[0].key is None


def test_bytes_per_call_is_close_to_a_long_traced_run() -> None:
    # Traced over enough analysis calls to get past the free lists (objects made before
    # tracing started are reused first) and the containers' amortised resizes.
    out = run_python_json(
        """
        import itertools, json, tracemalloc
        from leakscope.engine.check import check
        AUDIT = []
        KEEP = {}
        ids = itertools.count()
        class Order:
            def __init__(self, n):
                self.n, self.lines, self.meta = n, [n, n + 1], {"id": str(n)}
        def audit():
            AUDIT.append({"event": "login"})
        def orders():
            n = next(ids)
            KEEP[n] = Order(n)
        found = []
        for f in (audit, orders):
            reported = check(f).per_call.bytes
            tracemalloc.start()
            start = tracemalloc.get_traced_memory()[0]
            for _ in range(5000):
                f()
            found.append([reported, (tracemalloc.get_traced_memory()[0] - start) / 5000])
            tracemalloc.stop()
        print(json.dumps(found))
        """
    )
    for reported, long_run in out:
        assert abs(reported - long_run) <= 0.15 * long_run, out
