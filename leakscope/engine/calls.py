"""Running the user's function: names, async functions, errors, warm-up calls.

Nothing here calls user code except :class:`Runner`, which calls the function itself.
"""

from __future__ import annotations

import asyncio
import dis
import functools
import inspect
import os
import sys
import sysconfig
import time
import types
from collections.abc import Callable
from typing import Any

from leakscope._heap import object_type_name, type_name

__all__ = [
    "OWN_DIR",
    "STDLIB_DIRS",
    "Runner",
    "Stopped",
    "as_sync",
    "call_name",
    "error_text",
    "is_async",
    "is_user_file",
    "runner_dirs",
    "running_loop",
    "type_names",
    "warm_up",
]

_WARMUP_MIN = 3
_WARMUP_MAX = 32
_WARMUP_SECONDS = 0.05


OWN_DIR = os.path.dirname(os.path.abspath(__file__))
"""The engine's own directory: its frames are never the user's."""


def _stdlib_dirs() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    dirs = {os.path.abspath(paths[k]) for k in ("stdlib", "platstdlib") if k in paths}
    return tuple(sorted(dirs))


STDLIB_DIRS = _stdlib_dirs()
"""The standard library's directories (site-packages inside them excepted)."""

# Test runners whose frames sit between leakscope and the user's code (pytest runs
# the test body through pluggy's hooks): never named as an allocation site.
_RUNNER_PACKAGES = ("_pytest", "pytest", "pluggy")


def runner_dirs() -> tuple[str, ...]:
    """The directories of the test-runner packages already imported (none are imported here)."""
    dirs = []
    for name in _RUNNER_PACKAGES:
        file = getattr(sys.modules.get(name), "__file__", None)
        if isinstance(file, str) and os.path.basename(file) == "__init__.py":
            dirs.append(os.path.dirname(os.path.abspath(file)) + os.sep)
    return tuple(dirs)


def is_user_file(filename: str, runners: tuple[str, ...] = ()) -> bool:
    """Whether ``filename`` is the user's code: not leakscope's, the stdlib's or a runner's.

    >>> is_user_file("/srv/app/jobs.py"), is_user_file(os.__file__), is_user_file("<string>")
    (True, False, False)
    """
    if not filename or filename.startswith("<"):
        return False
    path = os.path.abspath(filename)
    if path.startswith(OWN_DIR + os.sep) or (runners and path.startswith(runners)):
        return False
    for d in STDLIB_DIRS:
        if path.startswith(d + os.sep) and "site-packages" not in path[len(d) :]:
            return False
    return True


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
            name = qualname if module == "builtins" else f"{module}.{qualname}"
            callee = _lambda_callee(target) if qualname.endswith("<lambda>") else None
            return f"{call_name(callee)} (called by {name})" if callee is not None else name
    return f"{object_type_name(target)} instance"


def _lambda_callee(func: types.FunctionType) -> Any:
    """The function a lambda calls (``lambda: handle(request)``), when it is a name it loads.

    Only a lambda whose body calls one global or closure function is named after it;
    read from the bytecode and the function's globals and cells, never by calling it.
    """
    try:
        loads = [
            ins
            for ins in dis.get_instructions(func.__code__)
            if ins.opname in ("LOAD_GLOBAL", "LOAD_DEREF")
        ]
        if not loads:
            return None
        name = loads[0].argval
        if loads[0].opname == "LOAD_GLOBAL":
            value = dict.get(func.__globals__, name)
        else:
            names = func.__code__.co_freevars
            cells = func.__closure__ or ()
            value = cells[names.index(name)].cell_contents if name in names else None
    except Exception:
        return None
    named = (types.FunctionType, types.BuiltinFunctionType, types.MethodType, functools.partial)
    if type(value) in named and not getattr(value, "__qualname__", "").endswith("<lambda>"):
        return value
    return None


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


def _raising_frame(tb: types.TracebackType | None) -> tuple[str, int] | None:
    """(file, line) of the innermost frame in the user's code, else the innermost frame.

    An error raised in ``json/decoder.py`` or by leakscope itself (a missing argument)
    is named where the user's code made the call.
    """
    innermost = user = None
    runners = runner_dirs()
    while tb is not None:
        where = (tb.tb_frame.f_code.co_filename, tb.tb_lineno)
        innermost = where
        name = where[0]
        if is_user_file(name, runners) or (name.startswith("<") and "frozen" not in name):
            user = where  # "<string>", "<stdin>": code typed or passed with -c
        tb = tb.tb_next
    return user or innermost


def error_text(exc: BaseException, phase: str) -> str:
    """``ValueError: message (raised at file.py:12 during warm-up call 1)``, never calling user code."""
    name = object_type_name(exc)
    message = ""
    args = BaseException.__dict__["args"].__get__(exc)
    if isinstance(args, tuple) and len(args) == 1 and type(args[0]) is str:
        message = args[0][:300]
    where = ""
    frame = _raising_frame(exc.__traceback__)
    if frame is not None:
        where = f" at {frame[0]}:{frame[1]}"
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
