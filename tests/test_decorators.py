"""@no_leaks and @watch, each scenario in a fresh interpreter."""

from __future__ import annotations

from pathlib import Path

import pytest
from _support import run_python

ROOT = Path(__file__).resolve().parents[1]


def _python(code: str, **env_extra: str) -> str:
    return run_python(code, env_extra=env_extra)


def test_no_leaks_plain_method_async_and_errors() -> None:
    out = _python(
        """
        import asyncio
        from leakscope.engine.watch import no_leaks
        from leakscope.errors import LeakError
        KEEP = []

        @no_leaks
        def double(x):
            return [x * 2]

        @no_leaks(runs=6, trace=False)
        def leaky(x):
            KEEP.append([x])

        class Service:
            @no_leaks
            def handle(self, n):
                return n + 1

        @no_leaks
        async def fetch(n):
            await asyncio.sleep(0)
            return n * 3

        @no_leaks
        def broken():
            raise KeyError("missing")

        print(double(21), Service().handle(1), fetch(2), double.__name__)
        try:
            leaky(1)
        except LeakError as exc:
            print("LeakError", isinstance(exc, AssertionError), "list" in str(exc))
        try:
            broken()
        except KeyError as exc:
            print("KeyError", exc.args[0])
        """
    )
    assert out.splitlines() == ["[42] 2 6 double", "LeakError True True", "KeyError missing"]


def test_watch_reports_the_leaking_function_once_and_not_its_neighbour() -> None:
    out = _python(
        """
        import logging
        from leakscope.engine.watch import watch
        records = []
        class Catch(logging.Handler):
            def emit(self, record):
                records.append((record.name, record.levelname, record.getMessage()))
        logging.getLogger("leakscope").addHandler(Catch())
        KEEP = []
        class Order:
            pass

        @watch(sample=0.1)
        def leaky(n):
            KEEP.append(Order())
            return n

        @watch(sample=0.1)
        def fine(n):
            return [Order() for _ in range(3)]

        for i in range(3000):
            leaky(i)
            fine(i)
        print(leaky.leakscope_report().leaked, fine.leakscope_report().leaked)
        print(len(records), records[0][:2], "__main__.Order" in records[0][2])
        print(leaky.leakscope_report().culprits[0].types)
        """
    )
    lines = out.splitlines()
    assert lines[0] == "True False"
    assert lines[1] == "1 ('leakscope', 'WARNING') True"
    assert lines[2] == "('__main__.Order',)"


def test_watch_threads_async_env_and_arguments() -> None:
    out = _python(
        """
        import asyncio, threading
        from leakscope.engine.watch import watch, _check_sample

        @watch
        def work(n):
            return n

        def spin():
            for i in range(2000):
                work(i)
        threads = [threading.Thread(target=spin) for _ in range(4)]
        for t in threads: t.start()
        for t in threads: t.join()
        report = work.leakscope_report()
        print(report.leaked, _check_sample(None))

        @watch(sample=1.0)
        async def co(n):
            await asyncio.sleep(0)
            return n
        print(asyncio.run(co(5)), co.leakscope_report().leaked)
        for bad in (0, 1.5, "x"):
            try:
                watch(sample=bad)
            except ValueError:
                print("ValueError")
        """,
        LEAKSCOPE_SAMPLE="0.5",
    )
    assert out.splitlines() == ["False 0.5", "5 False", "ValueError", "ValueError", "ValueError"]


@pytest.mark.parametrize("bad", ["nope", "2"])
def test_bad_env_sample_falls_back_with_a_warning(bad: str) -> None:
    out = _python(
        """
        import logging
        logging.basicConfig(level=logging.WARNING, format="%(name)s %(message)s")
        from leakscope.engine.watch import _check_sample
        print(_check_sample(None))
        """,
        LEAKSCOPE_SAMPLE=bad,
    )
    assert out.strip() == "0.01"


def test_error_names_the_users_frame_and_a_lambda_its_callee() -> None:
    out = run_python(
        """
        import json
        from leakscope.engine.check import check
        def parse(text):
            return json.loads(text)
        def main():
            report = check(lambda: parse("{broken"))
            print(report.function)
            print(report.error)
        main()
        """
    )
    name, error = out.splitlines()
    assert name == "__main__.parse (called by __main__.main.<locals>.<lambda>)"
    assert error.startswith("json.decoder.JSONDecodeError:") and " at <string>:5 during " in error
    assert "json/decoder.py" not in error
