"""Where the process's memory is: RSS, pymalloc arenas, malloc heaps, traced and native.

RSS keeps growing but object counts are flat: is it a leak, allocator
fragmentation, or native memory?  :func:`memory_breakdown` reads every cheap
source CPython and the kernel offer, and ``after - before`` (or
``after.diff(before)``) classifies the growth::

    before = memory_breakdown()
    work()
    growth = memory_breakdown() - before
    print(growth.kind)        # 'python_objects', 'allocator_retention', 'native' or 'none'
    print(growth)             # the figures and what to do next

Sources, each reported as unavailable (``None``, with the reason in
``MemoryBreakdown.unavailable``) where it cannot be read, never guessed:

- ``/proc/self/statm`` and ``/proc/self/smaps_rollup`` (Linux): RSS, PSS, USS,
  anonymous memory and swap;
- ``sys._debugmallocstats()``: pymalloc's arenas, pools and blocks (objects of up
  to 512 bytes); it writes to the C-level stderr, which is captured by pointing
  file descriptor 2 at a temporary file for the duration of the call;
- glibc's ``mallinfo2()``: the malloc heaps (objects above 512 bytes, C extensions),
  including freed memory malloc keeps instead of returning it to the OS;
- ``tracemalloc``, when it is tracing: bytes allocated by Python;
- ``sys.getallocatedblocks()`` and the collector's counters (:func:`gc_counters`).
"""

from __future__ import annotations

import contextlib
import gc
import os
import re
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from leakscope._fields import Fields, is_int
from leakscope._format import format_bytes as _size
from leakscope._format import format_bytes_delta as _delta
from leakscope._heap import PYTHON_VERSION, rss_bytes
from leakscope.errors import MallocStatsError, SnapshotError

__all__ = [
    "MallocInfo",
    "MallocStatsError",
    "MemoryBreakdown",
    "MemoryGrowth",
    "PymallocStats",
    "SizeClass",
    "gc_counters",
    "memory_breakdown",
    "parse_mallocstats",
    "read_mallinfo2",
    "read_mallocstats",
]

_MiB = 1 << 20
_FORMAT = 1  # version of the dictionaries written by ``to_dict``

GrowthKind = Literal["python_objects", "allocator_retention", "native", "none"]
"""What :attr:`MemoryGrowth.kind` can be."""

KINDS: tuple[GrowthKind, ...] = ("python_objects", "allocator_retention", "native", "none")


# --------------------------------------------------------------------------------------
# Collector counters


def gc_counters() -> dict[str, Any]:
    """The collector's cheap counters as plain, JSON-ready dictionaries.

    ``enabled``, ``thresholds`` and ``counts`` (``gc.get_threshold()`` /
    ``gc.get_count()``), ``freeze_count`` (objects moved out of collection by
    ``gc.freeze()``) and, per generation, the cumulative ``collections``,
    ``collected`` and ``uncollectable`` from ``gc.get_stats()``.  Costs a few
    microseconds whatever the size of the heap.

    >>> sorted(gc_counters())
    ['counts', 'enabled', 'freeze_count', 'generations', 'thresholds']
    """
    return {
        "enabled": gc.isenabled(),
        "thresholds": list(gc.get_threshold()),
        "counts": list(gc.get_count()),
        "freeze_count": gc.get_freeze_count(),
        "generations": [
            {
                "collections": int(s.get("collections", 0)),
                "collected": int(s.get("collected", 0)),
                "uncollectable": int(s.get("uncollectable", 0)),
            }
            for s in gc.get_stats()
        ],
    }


# --------------------------------------------------------------------------------------
# pymalloc: sys._debugmallocstats()


@dataclass(frozen=True)
class SizeClass:
    """One pymalloc size class: its block size, pools, and used and free blocks."""

    index: int
    size: int
    pools: int
    used_blocks: int
    free_blocks: int


@dataclass(frozen=True)
class PymallocStats:
    """pymalloc's arenas, pools and blocks, parsed from ``sys._debugmallocstats()``.

    pymalloc serves objects of up to 512 bytes from pools (16 KiB on 3.10+) carved
    out of arenas (1 MiB on 64-bit 3.10+).  An arena goes back to the OS only once
    every block in it is free, so a few long-lived survivors scattered over many
    arenas hold all of them: ``arena_bytes`` stays high while ``used_bytes`` is low.
    """

    arenas_allocated_total: int
    arenas_reclaimed: int
    arenas_highwater: int
    arenas: int
    arena_size: int
    arena_bytes: int
    used_bytes: int
    available_bytes: int
    unused_pools: int
    pool_size: int
    pool_header_bytes: int
    quantization_bytes: int
    alignment_bytes: int
    size_classes: tuple[SizeClass, ...] = ()

    @property
    def free_bytes(self) -> int:
        """Bytes of arenas not holding a live block: retained by pymalloc for reuse."""
        return self.arena_bytes - self.used_bytes

    @property
    def utilization(self) -> float:
        """Fraction of the arenas' bytes that hold live blocks (1.0 when there are no arenas)."""
        return self.used_bytes / self.arena_bytes if self.arena_bytes else 1.0

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            name: getattr(self, name) for name in _PYMALLOC_INTS if name != "size_classes"
        }
        d["size_classes"] = [
            [c.index, c.size, c.pools, c.used_blocks, c.free_blocks] for c in self.size_classes
        ]
        return d

    @classmethod
    def from_dict(cls, data: object, where: str = "pymalloc") -> PymallocStats:
        """Rebuild from :meth:`to_dict`; :class:`SnapshotError` naming the field if malformed."""
        f = Fields(data, where, SnapshotError)
        values = {name: f.integer(name) for name in _PYMALLOC_INTS}
        classes = []
        for i, row in enumerate(f.items("size_classes", optional=True)):
            if not (isinstance(row, list) and len(row) == 5 and all(is_int(x) for x in row)):
                raise f.fail("must be a list of 5 integers", f"size_classes[{i}]")
            classes.append(SizeClass(*row))
        return cls(**values, size_classes=tuple(classes))


_PYMALLOC_INTS = (
    "arenas_allocated_total",
    "arenas_reclaimed",
    "arenas_highwater",
    "arenas",
    "arena_size",
    "arena_bytes",
    "used_bytes",
    "available_bytes",
    "unused_pools",
    "pool_size",
    "pool_header_bytes",
    "quantization_bytes",
    "alignment_bytes",
)

_NUM = r"(\d[\d,]*)"
_HEADER = re.compile(r"^Small block threshold = (\d+), in (\d+) size classes\.?$")
_ROW = re.compile(r"^(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)$")
_HASH = re.compile(r"^# ([a-z ]+?)\s*=\s*" + _NUM + "$")
_ARENAS = re.compile(r"^(\d+) arenas \* (\d+) bytes/arena\s*=\s*" + _NUM + "$")
_POOLS = re.compile(r"^(\d+) unused pools \* (\d+) bytes\s*=\s*" + _NUM + "$")
_TOTAL = re.compile(r"^Total\s*=\s*" + _NUM + "$")
_FREELIST = re.compile(r"^\d+ free .+ = \s*" + _NUM + "$")
_STAT = re.compile(r"^[^=]+=\s*" + _NUM + "$")  # any "label = number" line of a future version
_KNOWN_TEXT = {"", "arena map counts", "class   size   num pools   blocks in use  avail blocks"}

_HASH_KEYS = {
    "arenas allocated total": "arenas_allocated_total",
    "arenas reclaimed": "arenas_reclaimed",
    "arenas highwater mark": "arenas_highwater",
    "arenas allocated current": "arenas",
    "bytes in allocated blocks": "used_bytes",
    "bytes in available blocks": "available_bytes",
    "bytes lost to pool headers": "pool_header_bytes",
    "bytes lost to quantization": "quantization_bytes",
    "bytes lost to arena alignment": "alignment_bytes",
}


def _num(text: str) -> int:
    return int(text.replace(",", ""))


def _recognized(line: str) -> bool:
    """Whether ``line`` is one of the lines ``sys._debugmallocstats()`` writes."""
    s = line.strip()
    return bool(
        s in _KNOWN_TEXT
        or set(s) <= {"-", " "}
        or _HEADER.match(s)
        or _ROW.match(s)
        or _HASH.match(s)
        or _ARENAS.match(s)
        or _POOLS.match(s)
        or _TOTAL.match(s)
        or _FREELIST.match(s)
        or _STAT.match(s)
    )


def parse_mallocstats(text: str) -> PymallocStats | None:
    """Parse the text ``sys._debugmallocstats()`` writes (CPython 3.10-3.13).

    Returns ``None`` when the text has no pymalloc section (``PYTHONMALLOC=malloc``,
    a free-threaded build); raises :class:`MallocStatsError` naming the problem when
    the section is there but truncated, garbled or inconsistent.  Lines the parser
    does not know (free-list statistics, future additions) are skipped; the figures
    it keeps are cross-checked against the per-class table and the printed totals.
    """
    if not isinstance(text, str):
        raise TypeError(f"parse_mallocstats() needs a str, not {type(text).__name__}")
    values: dict[str, int] = {}
    classes: list[SizeClass] = []
    header = False
    seen_pymalloc_line = False
    arena_total: int | None = None
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if _HEADER.match(line):
            if header:
                raise MallocStatsError(f"line {lineno}: a second pymalloc header")
            header = True
            continue
        row = _ROW.match(line)
        if row and header and "used_bytes" not in values:
            classes.append(SizeClass(*map(int, row.groups())))
            continue
        m = _HASH.match(line)
        if m and m.group(1) in _HASH_KEYS:
            values[_HASH_KEYS[m.group(1)]] = _num(m.group(2))
            seen_pymalloc_line = True
            continue
        if _arena_or_pool_line(line, lineno, values):
            seen_pymalloc_line = True
            continue
        m = _TOTAL.match(line)
        if m and arena_total is None and "alignment_bytes" in values:
            arena_total = _num(m.group(1))
            continue
    if not header and not seen_pymalloc_line:
        return None
    missing = [name for name in _PYMALLOC_INTS if name not in values]
    if not header:
        missing.insert(0, "the 'Small block threshold' header")
    if missing:
        raise MallocStatsError(
            "sys._debugmallocstats() output is truncated or garbled: missing " + ", ".join(missing)
        )
    stats = PymallocStats(**values, size_classes=tuple(classes))
    _check_consistency(stats, arena_total)
    return stats


def _arena_or_pool_line(line: str, lineno: int, values: dict[str, int]) -> bool:
    """Read an ``N arenas * S bytes/arena = T`` or ``N unused pools * S bytes = T`` line."""
    m = _ARENAS.match(line)
    if m:
        values["arena_size"] = int(m.group(2))
        values["arena_bytes"] = _num(m.group(3))
        if int(m.group(1)) * int(m.group(2)) != values["arena_bytes"]:
            raise MallocStatsError(f"line {lineno}: arena count * size != total: {line!r}")
        return True
    m = _POOLS.match(line)
    if m:
        values["unused_pools"] = int(m.group(1))
        values["pool_size"] = int(m.group(2))
        if int(m.group(1)) * int(m.group(2)) != _num(m.group(3)):
            raise MallocStatsError(f"line {lineno}: pool count * size != total: {line!r}")
        return True
    return False


def _check_consistency(stats: PymallocStats, arena_total: int | None) -> None:
    problems = []
    if stats.arenas * stats.arena_size != stats.arena_bytes:
        problems.append("arenas * arena size != arena bytes")
    if stats.size_classes:
        used = sum(c.size * c.used_blocks for c in stats.size_classes)
        avail = sum(c.size * c.free_blocks for c in stats.size_classes)
        if used != stats.used_bytes:
            problems.append(f"size classes hold {used:,} bytes, summary says {stats.used_bytes:,}")
        if avail != stats.available_bytes:
            problems.append(
                f"size classes have {avail:,} free bytes, summary says {stats.available_bytes:,}"
            )
    elif stats.used_bytes:
        problems.append("no size-class table although blocks are in use")
    parts = (
        stats.used_bytes
        + stats.available_bytes
        + stats.unused_pools * stats.pool_size
        + stats.pool_header_bytes
        + stats.quantization_bytes
        + stats.alignment_bytes
    )
    if parts != stats.arena_bytes:
        problems.append(f"parts add up to {parts:,} bytes, arenas hold {stats.arena_bytes:,}")
    if arena_total is not None and arena_total != stats.arena_bytes:
        problems.append(f"printed total {arena_total:,} != arena bytes {stats.arena_bytes:,}")
    if problems:
        raise MallocStatsError(
            "sys._debugmallocstats() output is inconsistent: " + "; ".join(problems)
        )


_capture_lock = threading.Lock()


def _new_capture_lock() -> None:
    global _capture_lock
    _capture_lock = threading.Lock()


if hasattr(os, "register_at_fork"):  # a fork while another thread captures must not deadlock
    os.register_at_fork(after_in_child=_new_capture_lock)
_CAPTURE_LIMIT = 1 << 20


def read_mallocstats() -> str:
    """Run ``sys._debugmallocstats()`` and return what it wrote to the C-level stderr.

    File descriptor 2 points at an anonymous temporary file for the duration of
    the call and is restored exactly afterwards, even on error (closed again if it
    was closed).  Lines written meanwhile by other threads or native code that are
    not part of the statistics are written back to the real stderr.  Raises
    :class:`MallocStatsError` when the interpreter has no ``sys._debugmallocstats``
    and ``OSError`` when no temporary file can be made.
    """
    debug: Callable[[], None] | None = getattr(sys, "_debugmallocstats", None)
    if debug is None:
        raise MallocStatsError("this interpreter has no sys._debugmallocstats()")
    with _capture_lock, tempfile.TemporaryFile() as tmp:
        stream = sys.stderr
        if stream is not None:
            with contextlib.suppress(Exception):
                stream.flush()
        try:
            inheritable: bool | None = os.get_inheritable(2)
            saved = os.dup(2)
        except OSError:  # fd 2 is closed: close it again afterwards
            inheritable, saved = None, -1
        # (When fd 2 was closed, the temporary file itself may be fd 2: then ``saved``
        # duplicates it, and closing the file on exit leaves fd 2 closed as it was.)
        try:
            os.dup2(tmp.fileno(), 2)
            try:
                debug()
            finally:
                if saved >= 0:
                    os.dup2(saved, 2, inheritable=bool(inheritable))
                else:
                    os.close(2)
        finally:
            if saved >= 0:
                os.close(saved)
        tmp.seek(0)
        data = tmp.read(_CAPTURE_LIMIT)
    text = data.decode("ascii", "replace")
    stray = [line for line in text.splitlines() if not _recognized(line)]
    if stray and saved >= 0:
        with contextlib.suppress(OSError):
            os.write(2, ("\n".join(stray) + "\n").encode("ascii", "replace"))
    return text


# --------------------------------------------------------------------------------------
# glibc malloc: mallinfo2()


@dataclass(frozen=True)
class MallocInfo:
    """glibc's malloc heaps, from ``mallinfo2()``: everything above pymalloc's 512 bytes.

    ``free_bytes`` is memory freed by the program that malloc keeps in its heaps
    instead of returning it to the OS; ``malloc_trim(0)`` hands it back.
    """

    heap_bytes: int  # sbrk/mmap'd heap arenas (mallinfo2.arena)
    mmap_bytes: int  # chunks mmap'd individually (mallinfo2.hblkhd)
    in_use_bytes: int  # allocated chunks in the heaps (mallinfo2.uordblks)
    free_bytes: int  # free chunks kept in the heaps (mallinfo2.fordblks)
    releasable_bytes: int  # free at the top of the main heap (mallinfo2.keepcost)

    def to_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in _MALLOC_INTS}

    @classmethod
    def from_dict(cls, data: object, where: str = "malloc") -> MallocInfo:
        """Rebuild from :meth:`to_dict`; :class:`SnapshotError` naming the field if malformed."""
        f = Fields(data, where, SnapshotError)
        return cls(**{name: f.integer(name) for name in _MALLOC_INTS})


_MALLOC_INTS = ("heap_bytes", "mmap_bytes", "in_use_bytes", "free_bytes", "releasable_bytes")
_mallinfo2: Callable[[], MallocInfo] | str | None = None


def _load_mallinfo2() -> Callable[[], MallocInfo] | str:
    """The reader of glibc's ``mallinfo2()``, or the reason there is none."""
    try:
        libc_version = os.confstr("CS_GNU_LIBC_VERSION")
    except (AttributeError, ValueError, OSError):
        libc_version = None
    if not libc_version:
        return "not glibc: malloc heap statistics (mallinfo2) are unavailable"
    try:
        import ctypes

        func = ctypes.CDLL(None).mallinfo2
    except (ImportError, OSError, AttributeError):
        return f"{libc_version} has no mallinfo2() (glibc 2.33+ needed)"

    class _Struct(ctypes.Structure):
        _fields_ = [
            (name, ctypes.c_size_t)
            for name in (
                "arena",
                "ordblks",
                "smblks",
                "hblks",
                "hblkhd",
                "usmblks",
                "fsmblks",
                "uordblks",
                "fordblks",
                "keepcost",
            )
        ]

    func.restype = _Struct
    func.argtypes = []

    def read() -> MallocInfo:
        s = func()
        return MallocInfo(
            heap_bytes=s.arena,
            mmap_bytes=s.hblkhd,
            in_use_bytes=s.uordblks,
            free_bytes=s.fordblks,
            releasable_bytes=s.keepcost,
        )

    return read


def read_mallinfo2() -> MallocInfo | None:
    """glibc's malloc heaps now (``mallinfo2()``, a few microseconds), or None without glibc 2.33+.

    >>> info = read_mallinfo2()
    >>> info is None or info.in_use_bytes >= 0
    True
    """
    global _mallinfo2
    if _mallinfo2 is None:
        _mallinfo2 = _load_mallinfo2()
    return None if isinstance(_mallinfo2, str) else _mallinfo2()


# --------------------------------------------------------------------------------------
# /proc/self/smaps_rollup

_SMAPS_KEYS = {
    "Rss": "rss",
    "Pss": "pss",
    "Private_Clean": "uss",
    "Private_Dirty": "uss",
    "Anonymous": "anonymous",
    "Swap": "swap",
}


def _read_smaps_rollup() -> dict[str, int] | str:
    try:
        with open("/proc/self/smaps_rollup", "rb") as f:
            text = f.read().decode("ascii", "replace")
    except OSError as e:
        return f"/proc/self/smaps_rollup cannot be read ({e.strerror or e}): PSS/USS unavailable"
    out: dict[str, int] = {}
    for line in text.splitlines():
        key, sep, rest = line.partition(":")
        name = _SMAPS_KEYS.get(key)
        if not sep or name is None:
            continue
        parts = rest.split()
        if len(parts) == 2 and parts[0].isdigit() and parts[1] == "kB":
            out[name] = out.get(name, 0) + int(parts[0]) * 1024
    if "pss" not in out or "uss" not in out:
        return "/proc/self/smaps_rollup has no Pss/Private lines: PSS/USS unavailable"
    return out


# --------------------------------------------------------------------------------------
# The breakdown


@dataclass(frozen=True)
class MemoryBreakdown:
    """One reading of where the process's memory is; ``None`` marks what could not be read.

    Byte counts: ``rss`` (resident set), ``pss``/``uss`` (proportional / unique set
    size), ``anonymous`` and ``swap`` from ``/proc/self/smaps_rollup``;
    ``traced``/``traced_peak``/``tracemalloc_overhead`` when ``tracemalloc`` is
    tracing; ``pymalloc`` (arenas for objects up to 512 bytes) and ``malloc``
    (glibc heaps) statistics; ``allocated_blocks`` is ``sys.getallocatedblocks()``
    and ``gc`` the collector's counters (:func:`gc_counters`).  ``unavailable``
    maps each part that is ``None`` to the reason.
    """

    timestamp: float
    python: str
    rss: int | None
    pss: int | None
    uss: int | None
    anonymous: int | None
    swap: int | None
    traced: int | None
    traced_peak: int | None
    tracemalloc_overhead: int | None
    allocated_blocks: int
    pymalloc: PymallocStats | None
    malloc: MallocInfo | None
    gc: dict[str, Any] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)

    @property
    def python_large_bytes(self) -> int | None:
        """Bytes tracemalloc sees outside pymalloc's blocks (objects above 512 bytes)."""
        if self.traced is None or self.pymalloc is None:
            return None
        return max(0, self.traced - self.pymalloc.used_bytes)

    @property
    def unexplained(self) -> int | None:
        """Anonymous memory (or RSS) not in pymalloc's arenas nor traced by Python.

        Native and C-extension memory, malloc's own free space, thread stacks and,
        when ``tracemalloc`` is off, Python objects above 512 bytes.  ``None`` when
        RSS or the pymalloc statistics are unavailable.
        """
        total = self.anonymous if self.anonymous is not None else self.rss
        if total is None or self.pymalloc is None:
            return None
        rest = total - self.pymalloc.arena_bytes
        rest -= self.python_large_bytes or 0
        rest -= self.tracemalloc_overhead or 0
        return rest

    def diff(self, earlier: MemoryBreakdown, *, min_bytes: int | None = None) -> MemoryGrowth:
        """Classify the growth from ``earlier`` to this breakdown (same as ``self - earlier``).

        A component counts only when it grew by at least ``min_bytes`` (default:
        4 MiB or 1% of the earlier RSS, whichever is larger); allocator retention and
        native memory count only when RSS grew by that much too.
        """
        if not isinstance(earlier, MemoryBreakdown):
            raise TypeError(f"diff() needs a MemoryBreakdown, not {type(earlier).__name__}")
        return _classify(earlier, self, min_bytes)

    def __sub__(self, earlier: object) -> MemoryGrowth:
        if not isinstance(earlier, MemoryBreakdown):
            return NotImplemented
        return _classify(earlier, self, None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": _FORMAT,
            "timestamp": self.timestamp,
            "python": self.python,
            **{name: getattr(self, name) for name in _BREAKDOWN_OPTIONAL_INTS},
            "allocated_blocks": self.allocated_blocks,
            "pymalloc": None if self.pymalloc is None else self.pymalloc.to_dict(),
            "malloc": None if self.malloc is None else self.malloc.to_dict(),
            "gc": _copy_json(self.gc),
            "unavailable": dict(self.unavailable),
        }

    @classmethod
    def from_dict(cls, data: object, where: str = "") -> MemoryBreakdown:
        """Rebuild a breakdown from :meth:`to_dict`; :class:`SnapshotError` naming the field.

        ``where`` is the breakdown's path in a larger document (``memory`` in a snapshot).
        """
        f = Fields(data, where, SnapshotError)
        if f.data.get("format") != _FORMAT:
            raise f.fail(f"unknown memory breakdown format {f.data.get('format')!r:.40}", "format")
        gc_data = f.value("gc") if f.has("gc") else {}
        if not isinstance(gc_data, dict):
            raise f.fail("must be a mapping", "gc")
        unavailable = f.sub("unavailable").data if f.has("unavailable") else {}
        for key, reason in unavailable.items():
            if not isinstance(key, str) or not isinstance(reason, str):
                raise f.fail("must map strings to strings", "unavailable")
        pym, mal = f.data.get("pymalloc"), f.data.get("malloc")
        return cls(
            timestamp=f.number("timestamp"),
            python=f.text("python"),
            **{name: f.optional_integer(name) for name in _BREAKDOWN_OPTIONAL_INTS},
            allocated_blocks=f.integer("allocated_blocks"),
            pymalloc=None if pym is None else PymallocStats.from_dict(pym, f.path("pymalloc")),
            malloc=None if mal is None else MallocInfo.from_dict(mal, f.path("malloc")),
            gc=_copy_json(gc_data, f.path("gc")),
            unavailable=dict(unavailable),
        )

    def __str__(self) -> str:
        lines = [f"Memory breakdown (Python {self.python})"]
        lines.append(f"  RSS                  {_size(self.rss)}")
        lines.append(f"  PSS / USS            {_size(self.pss)} / {_size(self.uss)}")
        if self.pymalloc is not None:
            p = self.pymalloc
            lines.append(
                f"  pymalloc arenas      {_size(p.arena_bytes)}"
                f" ({p.arenas} x {_size(p.arena_size)}),"
                f" {_size(p.used_bytes)} in use ({p.utilization:.0%})"
            )
        if self.malloc is not None:
            m = self.malloc
            lines.append(
                f"  malloc heaps         {_size(m.heap_bytes + m.mmap_bytes)},"
                f" {_size(m.in_use_bytes + m.mmap_bytes)} in use, {_size(m.free_bytes)} free"
            )
        if self.traced is not None:
            lines.append(
                f"  traced by Python     {_size(self.traced)} (peak {_size(self.traced_peak)})"
            )
        lines.append(f"  allocated blocks     {self.allocated_blocks:,}")
        if self.unexplained is not None:
            note = "" if self.traced is not None else "; includes Python objects > 512 B"
            lines.append(
                f"  unexplained          {_size(self.unexplained)} (native, C extensions{note})"
            )
        for part, reason in sorted(self.unavailable.items()):
            lines.append(f"  {part}: unavailable: {reason}")
        return "\n".join(lines)


_BREAKDOWN_OPTIONAL_INTS = (
    "rss",
    "pss",
    "uss",
    "anonymous",
    "swap",
    "traced",
    "traced_peak",
    "tracemalloc_overhead",
)


def memory_breakdown() -> MemoryBreakdown:
    """Read RSS/PSS/USS, pymalloc, malloc, tracemalloc and the collector's counters now.

    Cheap enough for every snapshot: it does not walk objects, only allocator
    bookkeeping (about a millisecond; see ``benchmarks/gc_monitor.py``).  Never
    raises for a part that cannot be read: that part is ``None`` and
    ``unavailable`` says why.

    >>> b = memory_breakdown()
    >>> b.allocated_blocks > 0
    True
    """
    global _mallinfo2
    unavailable: dict[str, str] = {}
    rss = rss_bytes()
    if rss is None:
        unavailable["rss"] = "/proc/self/statm cannot be read on this platform"
    smaps = _read_smaps_rollup()
    if isinstance(smaps, str):
        unavailable["pss"] = unavailable["uss"] = smaps
        smaps = {}
    traced = traced_peak = overhead = None
    if tracemalloc.is_tracing():
        traced, traced_peak = tracemalloc.get_traced_memory()
        overhead = tracemalloc.get_tracemalloc_memory()
    else:
        unavailable["traced"] = "tracemalloc is not tracing"
    pymalloc: PymallocStats | None = None
    try:
        pymalloc = parse_mallocstats(read_mallocstats())
        if pymalloc is None and traced is not None:
            unavailable["pymalloc"] = (
                "tracemalloc is tracing: CPython does not report pymalloc's arenas"
                " while its allocator hooks are installed"
            )
        elif pymalloc is None:
            unavailable["pymalloc"] = (
                "sys._debugmallocstats() reports no pymalloc arenas"
                " (PYTHONMALLOC=malloc or a build without pymalloc)"
            )
    except (MallocStatsError, OSError) as e:
        unavailable["pymalloc"] = str(e)
    if _mallinfo2 is None:
        _mallinfo2 = _load_mallinfo2()
    malloc = None
    if isinstance(_mallinfo2, str):
        unavailable["malloc"] = _mallinfo2
    else:
        malloc = _mallinfo2()
    return MemoryBreakdown(
        timestamp=time.time(),
        python=PYTHON_VERSION,
        rss=rss,
        pss=smaps.get("pss"),
        uss=smaps.get("uss"),
        anonymous=smaps.get("anonymous"),
        swap=smaps.get("swap"),
        traced=traced,
        traced_peak=traced_peak,
        tracemalloc_overhead=overhead,
        allocated_blocks=sys.getallocatedblocks(),
        pymalloc=pymalloc,
        malloc=malloc,
        gc=gc_counters(),
        unavailable=unavailable,
    )


# --------------------------------------------------------------------------------------
# Growth between two breakdowns


@dataclass(frozen=True)
class MemoryGrowth:
    """What grew between two :class:`MemoryBreakdown` readings, and what kind of growth it is.

    ``kind`` is the largest component that grew by at least ``min_bytes``:

    - ``"python_objects"``: live Python objects (pymalloc blocks in use, or
      traced bytes when ``tracemalloc`` was on in both): leak candidates;
    - ``"allocator_retention"``: memory freed by Python but kept by pymalloc
      (arenas held by scattered survivors) or by malloc (heaps not trimmed):
      fragmentation, not a leak;
    - ``"native"``: RSS growth seen neither by pymalloc nor by tracemalloc;
    - ``"none"``: nothing grew by ``min_bytes``.

    Byte components are ``None`` where a source was unavailable in either reading.
    """

    kind: GrowthKind
    seconds: float
    rss: int | None
    python_objects: int | None
    pymalloc_retention: int | None
    malloc_retention: int | None
    native: int | None
    allocated_blocks: int
    arenas: int | None
    arena_size: int | None
    utilization: float | None
    traced: bool
    gc: dict[str, list[int]]
    min_bytes: int
    explanation: str
    caveats: tuple[str, ...] = ()

    @property
    def allocator_retention(self) -> int | None:
        """Bytes freed by Python but kept by the allocators (pymalloc plus malloc)."""
        parts = [p for p in (self.pymalloc_retention, self.malloc_retention) if p is not None]
        return sum(parts) if parts else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": _FORMAT,
            **{name: getattr(self, name) for name in _GROWTH_FIELDS},
            "gc": {k: list(v) for k, v in self.gc.items()},
            "caveats": list(self.caveats),
        }

    @classmethod
    def from_dict(cls, data: object, where: str = "") -> MemoryGrowth:
        """Rebuild from :meth:`to_dict`; :class:`SnapshotError` naming the field if malformed."""
        f = Fields(data, where, SnapshotError)
        if f.data.get("format") != _FORMAT:
            raise f.fail("not a leakscope memory growth dictionary", "format")
        kind: GrowthKind = f.choice("kind", KINDS)  # type: ignore[assignment]
        gc_data = f.sub("gc") if f.has("gc") else Fields({}, f.path("gc"), SnapshotError)
        return cls(
            kind=kind,
            seconds=f.number("seconds"),
            **{name: f.optional_integer(name) for name in _GROWTH_OPTIONAL_INTS},
            allocated_blocks=f.integer("allocated_blocks"),
            min_bytes=f.integer("min_bytes"),
            utilization=f.optional_number("utilization"),
            traced=f.flag("traced"),
            gc={str(k): gc_data.integers(str(k)) for k in gc_data.data},
            explanation=f.text("explanation"),
            caveats=tuple(f.strings("caveats", optional=True)),
        )

    def __str__(self) -> str:
        label = {
            "python_objects": "Python objects (leak candidates)",
            "allocator_retention": "allocator retention/fragmentation (not a leak)",
            "native": "native memory (not seen by pymalloc or tracemalloc)",
            "none": f"no significant growth (nothing grew by {_size(self.min_bytes)})",
        }[self.kind]
        lines = [f"Memory growth over {self.seconds:.1f} s: {label}"]
        lines.append(f"  RSS                  {_delta(self.rss)}")
        src = "traced by tracemalloc" if self.traced else "pymalloc blocks in use"
        lines.append(f"  Python objects       {_delta(self.python_objects)} ({src})")
        lines.append(
            f"  allocator retention  {_delta(self.allocator_retention)}"
            f" (pymalloc {_delta(self.pymalloc_retention)}, malloc {_delta(self.malloc_retention)})"
        )
        lines.append(f"  native/unexplained   {_delta(self.native)}")
        lines.append(f"  allocated blocks     {self.allocated_blocks:+,}")
        if self.arenas is not None and self.utilization is not None:
            lines.append(
                f"  pymalloc arenas      {self.arenas:+,} of {_size(self.arena_size)},"
                f" {self.utilization:.0%} of arena bytes in use now"
            )
        if self.gc:
            per_gen = ", ".join(
                f"gen{i}: {n:+,}" for i, n in enumerate(self.gc.get("collections", []))
            )
            lines.append(
                f"  collector            {per_gen} collections,"
                f" {sum(self.gc.get('collected', [])):+,} collected,"
                f" {sum(self.gc.get('uncollectable', [])):+,} uncollectable"
            )
        lines.append("")
        lines.append(self.explanation)
        lines.extend(f"Note: {c}" for c in self.caveats)
        return "\n".join(lines)


_GROWTH_OPTIONAL_INTS = (
    "rss",
    "python_objects",
    "pymalloc_retention",
    "malloc_retention",
    "native",
    "arenas",
    "arena_size",
)
_GROWTH_FIELDS = (
    "kind",
    "seconds",
    *_GROWTH_OPTIONAL_INTS,
    "allocated_blocks",
    "utilization",
    "traced",
    "min_bytes",
    "explanation",
)


def _sub(a: int | None, b: int | None) -> int | None:
    return None if a is None or b is None else a - b


def _gc_delta(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, list[int]]:
    b, a = before.get("generations"), after.get("generations")
    if not isinstance(a, list) or not isinstance(b, list) or len(a) != len(b):
        return {}
    out: dict[str, list[int]] = {}
    try:
        for key in ("collections", "collected", "uncollectable"):
            out[key] = [int(x[key]) - int(y[key]) for x, y in zip(a, b, strict=True)]
    except (KeyError, TypeError, ValueError):
        return {}
    return out


def _classify(
    before: MemoryBreakdown, after: MemoryBreakdown, min_bytes: int | None
) -> MemoryGrowth:
    if min_bytes is None:
        min_bytes = max(4 * _MiB, (before.rss or 0) // 100)
    caveats: list[str] = []
    d_rss = _sub(after.rss, before.rss)
    pb, pa = before.pymalloc, after.pymalloc
    traced = before.traced is not None and after.traced is not None
    if traced:
        python = _sub(after.traced, before.traced)
    elif pb is not None and pa is not None:
        python = pa.used_bytes - pb.used_bytes
        caveats.append(
            "tracemalloc was off: Python objects above 512 bytes (large lists, dicts,"
            " strings, buffers) are served by malloc and counted as native; start"
            " tracemalloc (PYTHONTRACEMALLOC=1) before both readings to tell them apart."
        )
    else:
        python = None
    pym_ret = None if pb is None or pa is None else pa.free_bytes - pb.free_bytes
    mal_ret = None
    if before.malloc is not None and after.malloc is not None:
        mal_ret = after.malloc.free_bytes - before.malloc.free_bytes
    else:
        caveats.append(
            "malloc heap statistics are unavailable: memory freed but kept by malloc"
            " counts as native."
        )
    native = None
    if d_rss is not None and python is not None:
        native = d_rss - python - (pym_ret or 0) - (mal_ret or 0)
        overhead = _sub(after.tracemalloc_overhead, before.tracemalloc_overhead)
        if overhead is not None:
            native -= overhead
    if d_rss is None:
        caveats.append("RSS is unavailable on this platform: native growth cannot be measured.")
    if pa is None or pb is None:
        reason = after.unavailable.get("pymalloc") or before.unavailable.get("pymalloc")
        caveats.append(
            f"pymalloc statistics are unavailable ({reason}): memory pymalloc keeps in"
            " partly used arenas (fragmentation) counts as native."
        )

    retention = None if pym_ret is None and mal_ret is None else (pym_ret or 0) + (mal_ret or 0)
    candidates: dict[GrowthKind, int | None] = {
        "python_objects": python,
        "allocator_retention": retention,
        "native": native,
    }
    if d_rss is not None and d_rss < min_bytes:
        # Retention and native memory explain RSS growth: without any, they are noise.
        candidates = {"python_objects": python}
    kind: GrowthKind = "none"
    size = min_bytes - 1
    for name, value in candidates.items():
        if value is not None and value > size:
            kind, size = name, value
    gc_delta = _gc_delta(before.gc, after.gc)
    growth = MemoryGrowth(
        kind=kind,
        seconds=after.timestamp - before.timestamp,
        rss=d_rss,
        python_objects=python,
        pymalloc_retention=pym_ret,
        malloc_retention=mal_ret,
        native=native,
        allocated_blocks=after.allocated_blocks - before.allocated_blocks,
        arenas=None if pa is None or pb is None else pa.arenas - pb.arenas,
        arena_size=None if pa is None else pa.arena_size,
        utilization=None if pa is None else round(pa.utilization, 4),
        traced=traced,
        gc=gc_delta,
        min_bytes=min_bytes,
        explanation="",
        caveats=tuple(caveats),
    )
    return _with_explanation(growth, after)


def _with_explanation(g: MemoryGrowth, after: MemoryBreakdown) -> MemoryGrowth:
    from dataclasses import replace

    if g.kind == "python_objects":
        text = (
            f"Live Python objects grew by {_size(g.python_objects)}"
            f" (sys.getallocatedblocks() {g.allocated_blocks:+,}). These are leak candidates:"
            " take leakscope snapshots before and after the work (leakscope.snapshot(),"
            " leakscope.track()) or run leakscope.check() to see which types grow and what"
            " keeps them alive."
        )
    elif g.kind == "allocator_retention":
        parts = []
        if (g.pymalloc_retention or 0) >= g.min_bytes and after.pymalloc is not None:
            p = after.pymalloc
            parts.append(
                f"pymalloc keeps {_size(g.pymalloc_retention)} more of freed memory: its"
                f" {p.arenas:,} arenas of {_size(p.arena_size)} ({_size(p.arena_bytes)}) hold only"
                f" {_size(p.used_bytes)} of live blocks ({p.utilization:.0%}). An arena is"
                " returned to the OS only when every block in it is free, so a few surviving"
                " small objects scattered over many arenas keep them all resident. The memory"
                " is reused for new small objects; it is fragmentation, not a leak. Allocate"
                " long-lived objects together (up front, or copy survivors into fresh"
                " containers), or recycle worker processes (gunicorn --max-requests)."
            )
        if (g.malloc_retention or 0) >= g.min_bytes and after.malloc is not None:
            parts.append(
                f"glibc malloc keeps {_size(g.malloc_retention)} more of freed memory in its"
                f" heaps ({_size(after.malloc.free_bytes)} free in total). malloc_trim(0)"
                " returns it to the OS (ctypes.CDLL('libc.so.6').malloc_trim(0)); the"
                " MALLOC_TRIM_THRESHOLD_, MALLOC_MMAP_THRESHOLD_ and MALLOC_ARENA_MAX"
                " environment variables bound how much malloc keeps."
            )
        if not parts:
            parts.append(
                f"The allocators keep {_size(g.allocator_retention)} more of freed memory:"
                " fragmentation, not a leak."
            )
        text = " ".join(parts)
    elif g.kind == "native":
        seen = (
            f"traced Python memory {_delta(g.python_objects)}"
            if g.traced
            else f"pymalloc blocks in use {_delta(g.python_objects)}, tracemalloc off"
        )
        text = (
            f"RSS grew by {_size(g.rss)}, of which {_size(g.native)} is seen neither by"
            f" pymalloc nor by tracemalloc ({seen}): memory allocated by C extensions or"
            " native libraries (malloc, mmap), thread stacks or loaded shared libraries."
            " Native profilers (memray --native, heaptrack, valgrind massif) show where it"
            " was allocated."
        )
    else:
        text = f"No component grew by {_size(g.min_bytes)} or more."
    return replace(g, explanation=text)


# --------------------------------------------------------------------------------------
# helpers


def _copy_json(value: Any, where: str = "gc", depth: int = 0) -> Any:
    """A deep copy of JSON data (dicts with str keys, lists, numbers, strings, bools, None)."""
    if depth > 10:
        raise SnapshotError("memory breakdown data nested too deeply", field=where)
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise SnapshotError("memory breakdown mappings must have string keys", field=where)
        return {k: _copy_json(v, f"{where}.{k}", depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_copy_json(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(value)]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise SnapshotError(f"unexpected {type(value).__name__} in memory breakdown data", field=where)
