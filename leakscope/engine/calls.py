"""Running the user's function: names, async functions, errors, warm-up calls.

Nothing here calls user code except :class:`Runner`, which calls the function itself.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import time
import types
from collections.abc import Callable
from typing import Any

from leakscope._heap import object_type_name, type_name

__all__ = [
    "Runner",
    "Stopped",
    "as_sync",
    "call_name",
    "error_text",
    "is_async",
    "running_loop",
    "type_names",
    "warm_up",
]

_WARMUP_MIN = 3
_WARMUP_MAX = 32
_WARMUP_SECONDS = 0.05


class Stopped(Exception):
    """Internal: the measured function raised; carries the exception to the caller."""

    def __init__(self, exc: BaseException, phase: str) -> None:
        super().__init__(phase)
        self.exc = exc
        self.phase = phase


def call_name(func: Callable[..., Any]) -> str:
    """A readable name for ``func`` without calling user code."""
    target: Any = func
    for _ in range(8):
        if type(target) is functools.partial:
            target = target.func
        elif type(target) is types.MethodType:
            target = target.__func__
        else:
            break
    if type(target) in (types.FunctionType, types.BuiltinFunctionType):
        module = target.__module__
        qualname = target.__qualname__
        if isinstance(module, str) and isinstance(qualname, str):
            return qualname if module == "builtins" else f"{module}.{qualname}"
    return f"{object_type_name(target)} instance"


def is_async(func: Callable[..., Any]) -> bool:
    target: Any = func
    while type(target) is functools.partial:
        target = target.func
    return inspect.iscoroutinefunction(target)


def running_loop() -> bool:
    """True when an asyncio event loop is running in this thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _run_coroutine(coro: Any) -> Any:
    """Run ``coro`` to completion in a fresh event loop."""
    return asyncio.run(coro)


def as_sync(func: Callable[[], Any]) -> Callable[[], Any]:
    """``func`` itself, or for an async function a callable running it in a fresh loop per call."""
    if not is_async(func):
        return func
    if running_loop():
        raise TypeError(
            f"{call_name(func)} is an async function and an event loop is already running in "
            "this thread: leakscope runs each call in a fresh event loop, so call it from "
            "synchronous code (or check a synchronous wrapper)"
        )

    def call() -> Any:
        return _run_coroutine(func())

    return call


def error_text(exc: BaseException, phase: str) -> str:
    """``ValueError: message (raised at file.py:12 during warm-up call 1)``, never calling user code."""
    name = object_type_name(exc)
    message = ""
    args = BaseException.__dict__["args"].__get__(exc)
    if isinstance(args, tuple) and len(args) == 1 and type(args[0]) is str:
        message = args[0][:300]
    where = ""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is not None:
        code = tb.tb_frame.f_code
        where = f" at {code.co_filename}:{tb.tb_lineno}"
    return f"{name}{': ' + message if message else ''} (raised{where} during {phase})"


class Runner:
    """Calls the function, keeping the last result only when asked."""

    def __init__(self, call: Callable[[], Any], keep_result: bool) -> None:
        self.call = call
        self.keep_result = keep_result
        self.result: Any = None
        self.count = 0

    def run(self, n: int, phase: str, deadline: float | None) -> tuple[int, float]:
        call = self.call
        done = 0
        start = time.perf_counter()
        try:
            if self.keep_result:
                for _ in range(n):
                    self.result = call()
                    done += 1
                    if deadline is not None and time.perf_counter() > deadline:
                        break
            else:
                for _ in range(n):
                    call()
                    done += 1
                    if deadline is not None and time.perf_counter() > deadline:
                        break
        except Exception as exc:
            raise Stopped(exc, f"{phase} call {self.count + done + 1}") from None
        finally:
            self.count += done
        return done, time.perf_counter() - start


def warm_up(runner: Runner, warmup: int | None, deadline: float | None) -> tuple[int, float]:
    """Warm-up calls; returns (calls, estimated seconds per call)."""
    durations: list[float] = []
    start = time.perf_counter()
    while True:
        _, seconds = runner.run(1, "warm-up", None)
        durations.append(seconds)
        n = len(durations)
        if warmup is not None:
            if n >= warmup:
                break
        elif n >= _WARMUP_MAX or (
            n >= _WARMUP_MIN and time.perf_counter() - start >= _WARMUP_SECONDS
        ):
            break
        if deadline is not None and time.perf_counter() > deadline:
            break
    later = durations[1:] or durations
    per_call = sorted(later)[len(later) // 2] if later else 0.0
    return len(durations), per_call


def type_names(types_: object) -> frozenset[str]:
    """The qualified names of ``ignore_types`` (types or non-empty names); TypeError otherwise."""
    if isinstance(types_, (str, type)):
        types_ = (types_,)
    if not isinstance(types_, (list, tuple, set, frozenset)):
        raise TypeError(f"ignore_types must be a list of type names or types, not {types_!r:.60}")
    names = set()
    for t in types_:
        if isinstance(t, type):
            names.add(type_name(t))
        elif isinstance(t, str) and t:
            names.add(t)
        else:
            raise TypeError(f"ignore_types entries must be type names or types, not {t!r:.60}")
    return frozenset(names)
