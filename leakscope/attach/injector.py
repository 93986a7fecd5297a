"""Getting the bootstrap into the target: ``sys.remote_exec`` (3.14+) or gdb (3.10-3.13).

Both run the code in the target's main thread at a safe point, with the GIL held,
between two bytecodes; neither runs Python code at an arbitrary stop.

With gdb (the way memray does it): attach, queue a *pending call* with
``Py_AddPendingCall`` whose function is the harmless ``PyCallable_Check`` (called
with NULL, it returns 0), put a breakpoint on that function and let the target run.
The interpreter calls pending functions only where it is safe to run Python code,
so when the breakpoint is hit the bootstrap is run there with ``PyRun_SimpleString``,
and gdb detaches.  Any other thread calling ``PyCallable_Check`` first also holds
the GIL (the C API requires it), so that stop is as safe; the queued call then runs
later and does nothing.  The target is stopped from the attach to the detach,
about a quarter of a second here, most of it gdb reading the symbols.

If the main thread does not reach a safe point in time (it is blocked in C code or
a system call), gdb is interrupted and detaches, the breakpoint removed; the queued
call does nothing when it eventually runs.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from leakscope.attach.bootstrap import one_liner
from leakscope.attach.target import Target, ptrace_refusal
from leakscope.errors import AttachError

__all__ = ["Injection", "gdb_commands", "inject"]

_MARK = "LEAKSCOPE:"


@dataclass(frozen=True, slots=True)
class Injection:
    """How the bootstrap got in, and for how long the target was stopped for it.

    ``stopped`` is an upper bound (gdb's whole run, its start-up included); ``None``
    with ``sys.remote_exec``, which does not stop the target.
    """

    method: Literal["gdb", "remote_exec"]
    stopped: float | None


def gdb_commands(code: str) -> str:
    """The gdb command file that runs ``code`` in the target at a safe point.

    >>> "Py_AddPendingCall" in gdb_commands("pass")
    True
    """
    statement = one_liner(code)
    return "\n".join(
        [
            "set pagination off",
            "set confirm off",
            "set unwindonsignal on",
            "set breakpoint pending on",
            "sharedlibrary libc",
            "sharedlibrary libpython",
            f'printf "{_MARK} attached\\n"',
            "info address Py_AddPendingCall",
            "info address PyRun_SimpleString",
            f'printf "{_MARK} cpython\\n"',
            f'printf "{_MARK} pending %d\\n", '
            "(int)Py_AddPendingCall((int (*)(void *))PyCallable_Check, (void *)0)",
            "break PyCallable_Check",
            "commands",
            "silent",
            "delete breakpoints",
            f'printf "{_MARK} safe point\\n"',
            f'printf "{_MARK} bootstrap %d\\n", (int)PyRun_SimpleString("{statement}")',
            "end",
            "continue",
            "detach",
            "quit",
            "",
        ]
    )


def _gdb_failure(target: Target, output: str) -> AttachError:
    if "ptrace: Operation not permitted" in output or "Could not attach to process" in output:
        return ptrace_refusal(target.pid, "gdb: ptrace: Operation not permitted")
    if "No such process" in output or "ptrace: No such process" in output:
        return AttachError(f"no such process: {target.pid} (it exited)")
    if f"{_MARK} attached" in output and f"{_MARK} cpython" not in output:
        return AttachError(f"{target} is not a CPython process: gdb found no Py_AddPendingCall")
    if f"{_MARK} pending -1" in output:
        return AttachError(f"{target}: its pending-call queue is full; try again")
    if f"{_MARK} bootstrap -1" in output:
        return AttachError(f"{target}: the bootstrap failed to run in the target")
    last = next((line for line in reversed(output.splitlines()) if line.strip()), "no output")
    return AttachError(f"gdb could not inject into {target}: {last.strip()}")


def _run_gdb(target: Target, directory: Path, code: str, timeout: float) -> Injection:
    gdb = shutil.which("gdb")
    if gdb is None:
        raise AttachError(
            "gdb is not installed (on Debian/Ubuntu: apt-get install gdb, the package 'gdb'); "
            "leakscope attach needs it on Python 3.10-3.13 (3.14+ uses sys.remote_exec)"
        )
    commands = directory / "inject.gdb"
    commands.write_text(gdb_commands(code), encoding="utf-8")
    argv = [gdb, "-batch", "-nx", "-nw", "-iex", "set auto-load off"]
    argv += ["-iex", "set auto-solib-add off", "-p", str(target.pid), "-x", str(commands)]
    begun = time.monotonic()
    proc = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        # Interrupt the `continue`: gdb stops the target, ends the script and detaches.
        proc.send_signal(signal.SIGINT)
        try:
            output, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
        if f"{_MARK} safe point" not in output:
            raise AttachError(
                f"{target}: its main thread reached no safe point within {timeout:g} s (blocked "
                "in C code or a system call?); gdb detached and nothing was run"
            ) from None
    stopped = time.monotonic() - begun
    if proc.returncode != 0 or f"{_MARK} bootstrap 0" not in output:
        raise _gdb_failure(target, output)
    return Injection("gdb", stopped)


def _remote_exec(target: Target, directory: Path, code: str) -> Injection:
    script = directory / "bootstrap.py"
    script.write_text(one_liner(code) + "\n", encoding="utf-8")
    remote_exec = getattr(sys, "remote_exec")  # noqa: B009 - 3.14+, guarded by the caller
    try:
        remote_exec(target.pid, str(script))
    except PermissionError as exc:
        raise ptrace_refusal(target.pid, f"sys.remote_exec: {exc}") from None
    except ProcessLookupError:
        raise AttachError(f"no such process: {target.pid} (it exited)") from None
    except (RuntimeError, OSError) as exc:
        text = str(exc)
        if "disable" in text.lower() or "not enabled" in text.lower():
            raise AttachError(
                f"{target} has remote debugging disabled (PYTHON_DISABLE_REMOTE_DEBUG or "
                f"-X disable_remote_debug): {text}"
            ) from None
        raise AttachError(f"sys.remote_exec could not inject into {target}: {text}") from None
    return Injection("remote_exec", None)


def inject(target: Target, directory: Path, code: str, *, timeout: float = 20.0) -> Injection:
    """Run ``code`` in ``target``'s main thread at its next safe point.

    ``directory`` is the private directory (the gdb command file or the script goes
    there).  Uses ``sys.remote_exec`` where this interpreter has it (3.14+; the
    target has the same version), gdb otherwise.  Raises :class:`AttachError`.
    """
    if hasattr(sys, "remote_exec"):
        return _remote_exec(target, directory, code)
    return _run_gdb(target, directory, code, timeout)
