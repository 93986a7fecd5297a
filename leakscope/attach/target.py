"""The process to attach to: is it alive, is it CPython, which version, may we trace it.

Everything here reads ``/proc`` and never stops the target.  Each refusal is an
:class:`~leakscope.attach.errors.AttachError` whose message is one line saying why
and what to do::

    target = inspect(4242)          # AttachError("no such process: 4242") if gone
    refuse_incompatible(target)     # a different minor version, remote debugging off
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from leakscope.errors import AttachError

__all__ = [
    "DISABLE_REMOTE_DEBUG",
    "Target",
    "children",
    "inspect",
    "is_alive",
    "ptrace_refusal",
    "refuse_incompatible",
]

DISABLE_REMOTE_DEBUG = "PYTHON_DISABLE_REMOTE_DEBUG"
"""The environment variable (PEP 768) by which a process opts out of remote debugging."""

_PROC = Path("/proc")
_LIBPYTHON = re.compile(r"libpython(\d+)\.(\d+)")
_PYTHON_EXE = re.compile(r"^python(\d+)\.(\d+)")
_CPYTHON_SYMBOL = b"Py_AddPendingCall"
_SCOPE_FILE = _PROC / "sys/kernel/yama/ptrace_scope"


@dataclass(frozen=True, slots=True)
class Target:
    """A running CPython process, as ``/proc`` describes it.

    ``version`` is the ``(major, minor)`` of its interpreter, ``argv`` its command
    line and ``environ_keys`` the names of its environment variables (at its start).
    """

    pid: int
    name: str
    exe: str
    version: tuple[int, int]
    uid: int
    gid: int
    argv: tuple[str, ...]
    environ_keys: frozenset[str]

    def __str__(self) -> str:
        return f"process {self.pid} ({self.name}, Python {self.version[0]}.{self.version[1]})"


def is_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists and is not a zombie."""
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def _scope() -> int | None:
    try:
        return int(_SCOPE_FILE.read_text().strip())
    except (OSError, ValueError):
        return None


def ptrace_refusal(pid: int, detail: str = "") -> AttachError:
    """The error for a process that this one may not trace, naming the ways to allow it."""
    scope = _scope()
    setting = (
        f"kernel.yama.ptrace_scope is {scope}"
        if scope is not None
        else "kernel.yama.ptrace_scope is not set here"
    )
    why = f" ({detail})" if detail else ""
    return AttachError(
        f"cannot attach to process {pid}: ptrace is not permitted{why}; {setting}: run "
        "leakscope as the process's user with kernel.yama.ptrace_scope=0, or as root / with "
        "CAP_SYS_PTRACE (docker run --cap-add=SYS_PTRACE; Kubernetes: "
        "securityContext.capabilities.add: [SYS_PTRACE])"
    )


def _read_proc(pid: int, name: str) -> bytes:
    """A /proc/PID file, mapping the errors to refusals."""
    try:
        return (_PROC / str(pid) / name).read_bytes()
    except FileNotFoundError:
        raise AttachError(f"no such process: {pid}") from None
    except PermissionError:
        raise ptrace_refusal(pid, f"cannot read /proc/{pid}/{name}") from None
    except ProcessLookupError:
        raise AttachError(f"no such process: {pid}") from None


def _exe(pid: int) -> str:
    try:
        return os.readlink(_PROC / str(pid) / "exe")
    except FileNotFoundError:
        if (_PROC / str(pid)).exists():  # a kernel thread, or gone meanwhile
            raise AttachError(f"process {pid} has no executable (a kernel thread?)") from None
        raise AttachError(f"no such process: {pid}") from None
    except PermissionError:
        raise ptrace_refusal(pid, f"cannot read /proc/{pid}/exe") from None


def _has_symbol(pid: int) -> bool:
    """Whether the executable holds CPython's C API (a statically linked python)."""
    try:
        with open(_PROC / str(pid) / "exe", "rb") as f:
            return _CPYTHON_SYMBOL in f.read(256 << 20)
    except OSError:
        return False


def _version(pid: int, exe: str, maps: str) -> tuple[int, int] | None:
    found = _LIBPYTHON.search(maps) or _PYTHON_EXE.match(os.path.basename(exe))
    if found:
        return int(found.group(1)), int(found.group(2))
    if not _has_symbol(pid):
        return None
    # A CPython whose file name does not say its version (python, python3): ask it.
    try:
        out = subprocess.run(
            [
                str(_PROC / str(pid) / "exe"),
                "-I",
                "-S",
                "-c",
                "import sys; print(*sys.version_info[:2])",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        ).stdout.split()
        return int(out[0]), int(out[1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def inspect(pid: int) -> Target:
    """Describe process ``pid``; raise :class:`AttachError` unless it is a live CPython."""
    if pid <= 0:
        raise AttachError(f"no such process: {pid}")
    if not is_alive(pid):
        raise AttachError(f"no such process: {pid}")
    if pid == os.getpid():
        raise AttachError(f"process {pid} is leakscope itself")
    status = _read_proc(pid, "status").decode(errors="replace")
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    name = fields.get("Name", "?").strip()
    exe = _exe(pid)
    maps = _read_proc(pid, "maps").decode(errors="replace")
    version = _version(pid, exe, maps)
    if version is None:
        raise AttachError(f"process {pid} ({name}, {exe}) is not a CPython process")
    tracer = int(fields.get("TracerPid", "0").strip() or 0)
    if tracer:
        raise AttachError(
            f"cannot attach to process {pid}: it is already being traced by process {tracer} "
            "(a debugger or another leakscope attach); detach that first"
        )
    uid = int(fields.get("Uid", "0").split()[1])  # effective
    gid = int(fields.get("Gid", "0").split()[1])
    argv = tuple(
        part.decode(errors="replace") for part in _read_proc(pid, "cmdline").split(b"\0") if part
    )
    environ = _read_proc(pid, "environ").split(b"\0")
    keys = frozenset(item.partition(b"=")[0].decode(errors="replace") for item in environ if item)
    return Target(pid, name, exe, version, uid, gid, argv, keys)


def _disables_remote_debug(target: Target) -> bool:
    if DISABLE_REMOTE_DEBUG in target.environ_keys:
        return True
    argv = target.argv
    return any(
        arg == "-Xdisable_remote_debug"
        or (arg == "-X" and i + 1 < len(argv) and argv[i + 1] == "disable_remote_debug")
        for i, arg in enumerate(argv[1:], 1)
    )


def refuse_incompatible(target: Target) -> None:
    """Raise :class:`AttachError` when this leakscope cannot run inside ``target``.

    Its interpreter must be this one's minor version (the agent is imported from this
    install), and it must not have opted out of remote debugging: the environment
    variable ``PYTHON_DISABLE_REMOTE_DEBUG`` or ``-X disable_remote_debug`` (PEP 768)
    are honoured on every version, gdb included.
    """
    ours = sys.version_info[:2]
    if target.version != ours:
        raise AttachError(
            f"{target} runs Python {target.version[0]}.{target.version[1]}, but this leakscope "
            f"runs on Python {ours[0]}.{ours[1]}: run leakscope attach with a Python "
            f"{target.version[0]}.{target.version[1]} that has pyleakscope installed"
        )
    if _disables_remote_debug(target):
        raise AttachError(
            f"{target} has remote debugging disabled ({DISABLE_REMOTE_DEBUG} is set in its "
            "environment, or -X disable_remote_debug): restart it without that to attach"
        )
    if _scope() == 3:
        raise ptrace_refusal(target.pid, "ptrace_scope 3 forbids every attach until reboot")


def children(pid: int) -> list[int]:
    """The pids of the live direct children of ``pid`` (a gunicorn/uvicorn/Celery master's workers)."""
    if not is_alive(pid):
        raise AttachError(f"no such process: {pid}")
    found = []
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()
        if len(fields) > 1 and fields[1] == str(pid) and fields[0] != "Z":
            found.append(int(entry.name))
    return sorted(found)
