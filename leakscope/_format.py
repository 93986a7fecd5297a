"""Number formatting shared by every ``str()`` leakscope prints."""

from __future__ import annotations

__all__ = [
    "BYTE_UNITS",
    "format_bytes",
    "format_bytes_delta",
    "format_duration_ns",
    "format_rate",
]

BYTE_UNITS = (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10))
"""Binary units, largest first, as ``(name, bytes)``."""


def format_bytes(n: int | float | None) -> str:
    """``1.5 MiB``, ``512 B``; ``n/a`` for ``None``."""
    if n is None:
        return "n/a"
    for unit, scale in BYTE_UNITS:
        if abs(n) >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n:.0f} B"


def format_bytes_delta(n: int | float | None) -> str:
    """A signed size: ``+1.5 MiB``, ``-512 B``, ``+0 B``; ``n/a`` for ``None``."""
    if n is None:
        return "n/a"
    return ("-" if n < 0 else "+") + format_bytes(abs(n))


def format_duration_ns(ns: int) -> str:
    """``1.23 s``, ``4.56 ms``, ``7.8 us``, ``900 ns``."""
    if ns >= 1_000_000_000:
        return f"{ns / 1e9:.2f} s"
    if ns >= 1_000_000:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1_000:
        return f"{ns / 1e3:.1f} us"
    return f"{ns} ns"


def format_rate(value: float) -> str:
    """A per-call rate with as many digits as it needs: ``0``, ``0.25``, ``3.5``, ``12.5``, ``1,024``."""
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2g}" if abs(value) < 1 else f"{value:.1f}"
