r"""The data of a leak verdict: :class:`LeakReport` and the :class:`Culprit`\ s it names.

Each class is immutable, round-trips through ``to_dict``/``from_dict`` and reads as text
with ``str()``; :func:`format_report` is that text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from leakscope._format import format_bytes, format_rate
from leakscope.errors import LeakError, LeakscopeError

__all__ = ["FORMAT", "Culprit", "Holder", "LeakReport", "PerCall", "Run", "format_report"]

FORMAT = "leakscope.leak_report"


@dataclass(frozen=True, slots=True)
class PerCall:
    """What one call retains, measured over the runs that decided the verdict.

    ``objects`` counts objects the cyclic collector tracks; ``blocks`` counts
    allocated memory blocks, which also see strings, bytes and numbers;
    ``bytes`` is traced memory per call (``None`` when it was not traced).
    """

    objects: float
    blocks: float
    bytes: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"objects": self.objects, "blocks": self.blocks, "bytes": self.bytes}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PerCall:
        raw = data.get("bytes")
        return cls(
            float(data["objects"]), float(data["blocks"]), None if raw is None else float(raw)
        )

    def __str__(self) -> str:
        parts = [f"{format_rate(self.objects)} objects", f"{format_rate(self.blocks)} blocks"]
        if self.bytes is not None:
            parts.append(f"~{format_bytes(self.bytes)}")
        return ", ".join(parts) + " per call"


@dataclass(frozen=True, slots=True)
class Run:
    """One measured run: ``calls`` calls, then a collection and a census.

    The other fields are the growth over the run: tracked ``objects``,
    allocated ``blocks``, resident bytes (``rss``, ``None`` where unreadable)
    and ``garbage``, the unreachable objects the collection after the run freed.
    """

    calls: int
    seconds: float
    objects: int
    blocks: int
    rss: int | None
    garbage: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "seconds": self.seconds,
            "objects": self.objects,
            "blocks": self.blocks,
            "rss": self.rss,
            "garbage": self.garbage,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Run:
        return cls(
            int(data["calls"]),
            float(data["seconds"]),
            int(data["objects"]),
            int(data["blocks"]),
            None if data.get("rss") is None else int(data["rss"]),
            int(data["garbage"]),
        )


@dataclass(frozen=True, slots=True)
class Holder:
    """Something that keeps leaked objects alive, named so a person recognises it.

    ``description`` reads like ``module app.cache: _CACHE (dict, +3.0 entries/call)``
    or is a retention path from a root; ``detail`` is the same path with
    dict-key values shown (only rendered with ``show_values=True``).
    """

    description: str
    kind: str = "path"
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"description": self.description, "kind": self.kind, "detail": self.detail}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Holder:
        return cls(
            str(data["description"]), str(data.get("kind", "path")), str(data.get("detail", ""))
        )


@dataclass(frozen=True, slots=True)
class Culprit:
    """One leak, ranked in :attr:`LeakReport.culprits`.

    ``kind`` says what grows: ``objects`` (instances of ``types``), ``container``
    (a module/class container of untracked items such as strings), ``untracked``
    (memory blocks that no tracked object accounts for), ``memory`` (resident
    memory only), ``cycles`` (cyclic garbage never collected because ``gc`` is
    disabled) or ``gc.garbage``.  ``per_call`` is in the unit of the kind
    (objects, entries, blocks or bytes per call); ``related`` lists the types
    that leak along with the first one (an instance's ``dict``, an exception's
    ``traceback``...).
    """

    kind: str
    types: tuple[str, ...]
    per_call: float
    unit: str = "objects"
    related: tuple[tuple[str, float], ...] = ()
    bytes_per_call: float | None = None
    holders: tuple[Holder, ...] = ()
    allocated_at: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    hint: str = ""

    @property
    def type(self) -> str:
        """The main type retained (empty for untracked growth)."""
        return self.types[0] if self.types else ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "types": list(self.types),
            "per_call": self.per_call,
            "unit": self.unit,
            "related": [[name, rate] for name, rate in self.related],
            "bytes_per_call": self.bytes_per_call,
            "holders": [h.to_dict() for h in self.holders],
            "allocated_at": list(self.allocated_at),
            "notes": list(self.notes),
            "hint": self.hint,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Culprit:
        raw_bytes = data.get("bytes_per_call")
        return cls(
            kind=str(data["kind"]),
            types=tuple(str(t) for t in data.get("types", ())),
            per_call=float(data["per_call"]),
            unit=str(data.get("unit", "objects")),
            related=tuple((str(n), float(r)) for n, r in data.get("related", ())),
            bytes_per_call=None if raw_bytes is None else float(raw_bytes),
            holders=tuple(Holder.from_dict(h) for h in data.get("holders", ())),
            allocated_at=tuple(str(s) for s in data.get("allocated_at", ())),
            notes=tuple(str(n) for n in data.get("notes", ())),
            hint=str(data.get("hint", "")),
        )


@dataclass(frozen=True)
class LeakReport:
    """The outcome of :func:`check`: whether ``function`` leaks, and why.

    ``leaked`` is the verdict; ``per_call`` what a call retains; ``culprits``
    the leaks, most important first; ``runs`` the measured runs (``len(report.runs)``
    is their number, ``calls`` the measured calls in all).  When the function
    raised, ``error`` says so and there is no verdict (``leaked`` is False and
    :meth:`raise_if_leaked` raises :class:`~leakscope.LeakscopeError`).

    ``str(report)`` is the explanation for people; it shows type names,
    container names and paths only, never object values (use
    ``report.format(show_values=True)`` to see dict keys on paths).
    """

    function: str
    leaked: bool
    per_call: PerCall
    culprits: tuple[Culprit, ...] = ()
    runs: tuple[Run, ...] = ()
    warmup: int = 0
    seconds: float = 0.0
    error: str | None = None
    notes: tuple[str, ...] = ()
    settled: tuple[str, ...] = field(default=())
    """Signals that grew early and then stopped (caches filling up): reported, not leaks."""

    @property
    def calls(self) -> int:
        """Measured calls over all runs (warm-up calls not included)."""
        return sum(run.calls for run in self.runs)

    def raise_if_leaked(self) -> None:
        """Raise :class:`~leakscope.LeakError` with the explanation when the function leaked.

        Raises :class:`~leakscope.LeakscopeError` when there is no verdict
        because the function raised.
        """
        if self.error is not None:
            raise LeakscopeError(self.format())
        if self.leaked:
            raise LeakError(self.format(), self)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict of the report (no object values)."""
        return {
            "format": FORMAT,
            "function": self.function,
            "leaked": self.leaked,
            "per_call": self.per_call.to_dict(),
            "culprits": [c.to_dict() for c in self.culprits],
            "runs": [r.to_dict() for r in self.runs],
            "warmup": self.warmup,
            "calls": self.calls,
            "seconds": self.seconds,
            "error": self.error,
            "notes": list(self.notes),
            "settled": list(self.settled),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LeakReport:
        """Rebuild a report from :meth:`to_dict` output."""
        if not isinstance(data, Mapping) or data.get("format") != FORMAT:
            raise ValueError("not a leakscope leak report")
        return cls(
            function=str(data["function"]),
            leaked=bool(data["leaked"]),
            per_call=PerCall.from_dict(data["per_call"]),
            culprits=tuple(Culprit.from_dict(c) for c in data.get("culprits", ())),
            runs=tuple(Run.from_dict(r) for r in data.get("runs", ())),
            warmup=int(data.get("warmup", 0)),
            seconds=float(data.get("seconds", 0.0)),
            error=None if data.get("error") is None else str(data["error"]),
            notes=tuple(str(n) for n in data.get("notes", ())),
            settled=tuple(str(s) for s in data.get("settled", ())),
        )

    def format(self, show_values: bool = False) -> str:
        """The explanation; ``show_values=True`` also shows dict keys on retention paths."""
        return format_report(self, show_values=show_values)

    def __str__(self) -> str:
        return self.format()


# -- the text of a report ------------------------------------------------------------


def _unit_rate(c: Culprit) -> str:
    if c.unit == "bytes":
        return f"+{format_bytes(c.per_call)}/call"
    return f"+{format_rate(c.per_call)} {c.unit}/call"


def format_report(report: LeakReport, show_values: bool = False) -> str:
    """The human explanation of ``report`` (``str(report)``)."""
    runs = len(report.runs)
    measured = (
        f"{report.calls:,} calls measured in {runs} run{'s' if runs != 1 else ''} after "
        f"{report.warmup} warm-up call{'s' if report.warmup != 1 else ''}, {report.seconds:.2f} s"
    )
    if report.error is not None:
        lines = [f"leakscope: no verdict for {report.function}: it raised {report.error}"]
        lines.extend(f"note: {n}" for n in report.notes)
        return "\n".join(lines)
    if not report.leaked:
        lines = [f"leakscope: no leak in {report.function}: nothing grew steadily ({measured})"]
        if report.settled:
            lines.append("  grew, then settled: " + ", ".join(report.settled))
        lines.extend(f"  note: {n}" for n in report.notes)
        return "\n".join(lines)
    lines = [f"leakscope: LEAK in {report.function}: {report.per_call} ({measured})"]
    for i, c in enumerate(report.culprits, 1):
        lines.append("")
        label = (
            ", ".join(c.types)
            if c.types
            else {
                "untracked": "untracked memory blocks",
                "memory": "resident memory",
                "gc.garbage": "gc.garbage entries",
            }.get(c.kind, c.kind)
        )
        what = {
            "container": "a growing container",
            "cycles": "uncollected cyclic garbage",
        }.get(c.kind)
        head = f"{i}. {label}: {_unit_rate(c)}"
        if what:
            head += f" ({what})"
        if c.bytes_per_call is not None and c.unit != "bytes":
            head += f", ~{format_bytes(c.bytes_per_call)}/call"
        lines.append(head)
        if c.related:
            lines.append(
                "   with it:      "
                + ", ".join(f"{name} +{format_rate(rate)}/call" for name, rate in c.related[:6])
            )
        for j, h in enumerate(c.holders):
            text = h.detail if show_values and h.detail else h.description
            lines.append(("   held by:      " if j == 0 else "                 ") + text)
        if c.allocated_at:
            lines.append("   allocated at: " + ", ".join(c.allocated_at))
        for note in c.notes:
            lines.append("   note:         " + note)
        if c.hint:
            lines.append("   fix:          " + c.hint)
    if not report.culprits:
        lines.append("")
        lines.append("(no culprit could be pinned down; see the runs in report.runs)")
    if report.notes:
        lines.append("")
        lines.extend(f"note: {n}" for n in report.notes)
    return "\n".join(lines)
