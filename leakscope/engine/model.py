r"""The data of a leak verdict: :class:`LeakReport` and the :class:`Culprit`\ s it names.

Each class is immutable, round-trips through ``to_dict``/``from_dict`` and reads as text
with ``str()``; :func:`format_report` is that text.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, get_args

from leakscope._format import format_bytes, format_rate
from leakscope._roots import ContainerKey
from leakscope.errors import DataError, LeakError, LeakscopeError

__all__ = [
    "FORMAT",
    "Culprit",
    "CulpritKind",
    "Holder",
    "HolderKind",
    "LeakReport",
    "PerCall",
    "Run",
    "Unit",
    "format_report",
]

FORMAT = "leakscope.leak_report"

CulpritKind = Literal[
    "objects", "container", "untracked", "memory", "cycles", "gc.garbage", "thread"
]
"""What a :class:`Culprit` says grows (see :class:`Culprit`)."""
HolderKind = Literal["container", "path", "cycles", "thread", "context"]
"""What a :class:`Holder` is: a module/class container, a retention path from a root,
the cyclic garbage itself, a thread or a context variable."""
Unit = Literal["objects", "entries", "blocks", "bytes"]
"""The unit of a culprit's ``per_call`` rate."""

_CULPRIT_KINDS: frozenset[str] = frozenset(get_args(CulpritKind))
_HOLDER_KINDS: frozenset[str] = frozenset(get_args(HolderKind))
_UNITS: frozenset[str] = frozenset(get_args(Unit))

# -- validating readers for from_dict ------------------------------------------------------

_T = TypeVar("_T")
_MISSING: Any = object()


def _at(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def _mapping(data: object, where: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise DataError(f"expected an object, not {type(data).__name__}", field=where)
    return data


def _value(data: Mapping[str, Any], name: str, where: str, default: Any) -> Any:
    if name in data:
        return data[name]
    if default is _MISSING:
        raise DataError("missing", field=_at(where, name))
    return default


def _number(data: Mapping[str, Any], name: str, where: str, default: Any = _MISSING) -> float:
    raw = _value(data, name, where, default)
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise DataError(f"expected a number, not {raw!r:.40}", field=_at(where, name))
    return float(raw)


def _optional_number(data: Mapping[str, Any], name: str, where: str) -> float | None:
    return None if data.get(name) is None else _number(data, name, where)


def _integer(data: Mapping[str, Any], name: str, where: str, default: Any = _MISSING) -> int:
    raw = _value(data, name, where, default)
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise DataError(f"expected an integer, not {raw!r:.40}", field=_at(where, name))
    return raw


def _text(data: Mapping[str, Any], name: str, where: str, default: Any = _MISSING) -> str:
    raw = _value(data, name, where, default)
    if not isinstance(raw, str):
        raise DataError(f"expected a string, not {raw!r:.40}", field=_at(where, name))
    return raw


def _choice(
    data: Mapping[str, Any], name: str, where: str, allowed: frozenset[str], default: Any
) -> Any:
    raw = _text(data, name, where, default)
    if raw not in allowed:
        raise DataError(
            f"expected one of {', '.join(sorted(allowed))}, not {raw!r:.40}", field=_at(where, name)
        )
    return raw


def _items(
    data: Mapping[str, Any], name: str, where: str, read: Callable[[Any, str], _T]
) -> tuple[_T, ...]:
    raw = _value(data, name, where, ())
    if not isinstance(raw, (list, tuple)):
        raise DataError(f"expected a list, not {type(raw).__name__}", field=_at(where, name))
    return tuple(read(item, f"{_at(where, name)}[{i}]") for i, item in enumerate(raw))


def _string_item(item: Any, where: str) -> str:
    if not isinstance(item, str):
        raise DataError(f"expected a string, not {item!r:.40}", field=where)
    return item


def _related_item(item: Any, where: str) -> tuple[str, float]:
    if not isinstance(item, (list, tuple)) or len(item) != 2:
        raise DataError("expected a [name, rate] pair", field=where)
    name, rate = item
    if not isinstance(name, str) or isinstance(rate, bool) or not isinstance(rate, (int, float)):
        raise DataError("expected a [name, rate] pair", field=where)
    return name, float(rate)


@dataclass(frozen=True, slots=True)
class PerCall:
    """What one call retains, measured over the runs that decided the verdict.

    ``objects`` counts objects the cyclic collector tracks; ``blocks`` counts
    allocated memory blocks, which also see strings, bytes and numbers;
    ``bytes`` is traced memory per call (``None`` when it was not traced).

    >>> str(PerCall(1.0, 3.0, 200.0))
    '1.0 objects, 3.0 blocks, ~200 B per call'
    >>> str(PerCall(0.0, 1.0, 68.0))
    '1.0 blocks, ~68 B per call'
    """

    objects: float
    blocks: float
    bytes: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"objects": self.objects, "blocks": self.blocks, "bytes": self.bytes}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, path: str = "") -> PerCall:
        """Rebuild from :meth:`to_dict` output; :class:`~leakscope.DataError` names a bad field.

        ``path`` prefixes the field names in errors (``per_call``).
        """
        data = _mapping(data, path)
        return cls(
            _number(data, "objects", path),
            _number(data, "blocks", path),
            _optional_number(data, "bytes", path),
        )

    def __str__(self) -> str:
        # What grows comes first: untracked growth reads "1.0 blocks", not "0 objects, ...".
        parts = [f"{format_rate(self.objects)} objects"] if self.objects else []
        parts.append(f"{format_rate(self.blocks)} blocks")
        if self.bytes is not None:
            parts.append(f"~{format_bytes(self.bytes)}")
        return ", ".join(parts) + " per call"


@dataclass(frozen=True, slots=True)
class Run:
    """One measured run: ``calls`` calls, then a collection and a census.

    The other fields are the growth over the run: tracked ``objects``,
    allocated ``blocks``, resident bytes (``rss``, ``None`` where unreadable)
    and ``garbage``, the unreachable objects the collection after the run freed.

    >>> Run.from_dict(Run(32, 0.01, 32, 40, None, 0).to_dict()).calls
    32
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
    def from_dict(cls, data: Mapping[str, Any], *, path: str = "") -> Run:
        """Rebuild from :meth:`to_dict` output; :class:`~leakscope.DataError` names a bad field."""
        data = _mapping(data, path)
        return cls(
            _integer(data, "calls", path),
            _number(data, "seconds", path),
            _integer(data, "objects", path),
            _integer(data, "blocks", path),
            None if data.get("rss") is None else _integer(data, "rss", path),
            _integer(data, "garbage", path),
        )


@dataclass(frozen=True, slots=True)
class Holder:
    """Something that keeps leaked objects alive, named so a person recognises it.

    ``description`` reads like ``module app.cache: _CACHE (dict, +3.0 entries/call)``
    or is a retention path from a root; ``detail`` is the same path with
    dict-key values shown (only rendered with ``show_values=True``).  A container
    holder also carries its structured ``key`` (a
    :class:`~leakscope._roots.ContainerKey`), the container's type name and its
    growth ``rate`` (entries per call, or bytes for a ``bytearray``).

    >>> from leakscope._roots import ContainerKey
    >>> h = Holder.container(ContainerKey.global_("app", "_CACHE"), "dict", 1.0)
    >>> h.description
    'module app: _CACHE (dict, +1.0 entries/call)'
    >>> Holder.from_dict(h.to_dict()) == h
    True
    """

    description: str
    kind: HolderKind = "path"
    detail: str = ""
    key: ContainerKey | None = None
    container_type: str = ""
    rate: float | None = None

    @classmethod
    def container(
        cls,
        key: ContainerKey,
        container_type: str = "",
        rate: float | None = None,
        per: str = "call",
    ) -> Holder:
        """The holder for a growing module/class container (``rate`` entries per ``per``)."""
        return cls(
            key.format(container_type, rate, per),
            "container",
            key=key,
            container_type=container_type,
            rate=rate,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "description": self.description,
            "kind": self.kind,
            "detail": self.detail,
            "key": None if self.key is None else str(self.key),
            "container_type": self.container_type,
            "rate": self.rate,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, path: str = "") -> Holder:
        """Rebuild from :meth:`to_dict` output; :class:`~leakscope.DataError` names a bad field."""
        data = _mapping(data, path)
        raw_key = data.get("key")
        key = None
        if raw_key is not None:
            try:
                key = ContainerKey.parse(_text(data, "key", path))
            except ValueError as exc:
                if isinstance(exc, DataError):
                    raise
                raise DataError(str(exc), field=_at(path, "key")) from None
        return cls(
            _text(data, "description", path),
            _choice(data, "kind", path, _HOLDER_KINDS, "path"),
            _text(data, "detail", path, ""),
            key,
            _text(data, "container_type", path, ""),
            _optional_number(data, "rate", path),
        )


@dataclass(frozen=True, slots=True)
class Culprit:
    """One leak, ranked in :attr:`LeakReport.culprits`.

    ``kind`` says what grows: ``objects`` (instances of ``types``), ``container``
    (a module/class container of untracked items such as strings), ``untracked``
    (memory blocks that no tracked object accounts for), ``memory`` (resident
    memory only), ``cycles`` (cyclic garbage never collected because ``gc`` is
    disabled), ``gc.garbage`` or ``thread`` (threads started and never stopped).
    ``per_call`` is in the unit of the kind (objects, entries, blocks or bytes per
    call); ``related`` lists the types that leak along with the first one (an
    instance's ``dict``, an exception's ``traceback``...).

    >>> c = Culprit("objects", ("app.Session",), 1.0)
    >>> c.type, Culprit.from_dict(c.to_dict()) == c
    ('app.Session', True)
    """

    kind: CulpritKind
    types: tuple[str, ...]
    per_call: float
    unit: Unit = "objects"
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
    def from_dict(cls, data: Mapping[str, Any], *, path: str = "") -> Culprit:
        """Rebuild from :meth:`to_dict` output; :class:`~leakscope.DataError` names a bad field."""
        data = _mapping(data, path)
        return cls(
            kind=_choice(data, "kind", path, _CULPRIT_KINDS, _MISSING),
            types=_items(data, "types", path, _string_item),
            per_call=_number(data, "per_call", path),
            unit=_choice(data, "unit", path, _UNITS, "objects"),
            related=_items(data, "related", path, _related_item),
            bytes_per_call=_optional_number(data, "bytes_per_call", path),
            holders=_items(data, "holders", path, lambda h, w: Holder.from_dict(h, path=w)),
            allocated_at=_items(data, "allocated_at", path, _string_item),
            notes=_items(data, "notes", path, _string_item),
            hint=_text(data, "hint", path, ""),
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
    bounded: tuple[str, ...] = ()
    """Bounded caches still filling toward their declared size: reported, not leaks
    (``filling a bounded cache (2,048 of 5,000 entries): functools.lru_cache ...``)."""

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
            "bounded": list(self.bounded),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LeakReport:
        """Rebuild a report from :meth:`to_dict` output.

        Raises :class:`~leakscope.DataError` naming the field that is missing or wrong
        (``culprits[0].holders[1].rate``).
        """
        if not isinstance(data, Mapping) or data.get("format") != FORMAT:
            raise DataError("not a leakscope leak report", field="format")
        error = data.get("error")
        return cls(
            function=_text(data, "function", ""),
            leaked=_flag(data, "leaked"),
            per_call=PerCall.from_dict(_value(data, "per_call", "", _MISSING), path="per_call"),
            culprits=_items(data, "culprits", "", lambda c, w: Culprit.from_dict(c, path=w)),
            runs=_items(data, "runs", "", lambda r, w: Run.from_dict(r, path=w)),
            warmup=_integer(data, "warmup", "", 0),
            seconds=_number(data, "seconds", "", 0.0),
            error=None if error is None else _text(data, "error", ""),
            notes=_items(data, "notes", "", _string_item),
            settled=_items(data, "settled", "", _string_item),
            bounded=_items(data, "bounded", "", _string_item),
        )

    def format(self, show_values: bool = False) -> str:
        """The explanation; ``show_values=True`` also shows dict keys on retention paths."""
        return format_report(self, show_values=show_values)

    def __str__(self) -> str:
        return self.format()


def _flag(data: Mapping[str, Any], name: str) -> bool:
    raw = _value(data, name, "", _MISSING)
    if not isinstance(raw, bool):
        raise DataError(f"expected true or false, not {raw!r:.40}", field=name)
    return raw


# -- the text of a report ------------------------------------------------------------


def _unit_rate(c: Culprit) -> str:
    if c.unit == "bytes":
        return f"+{format_bytes(c.per_call)}/call"
    return f"+{format_rate(c.per_call)} {c.unit}/call"


_LABELS = {
    "untracked": "untracked memory blocks",
    "memory": "resident memory",
    "gc.garbage": "gc.garbage entries",
    "thread": "threads",
}
_WHAT = {"container": "a growing container", "cycles": "uncollected cyclic garbage"}


def _culprit_lines(i: int, c: Culprit, show_values: bool) -> list[str]:
    label = ", ".join(c.types) if c.types else _LABELS.get(c.kind, c.kind)
    head = f"{i}. {label}: {_unit_rate(c)}"
    what = _WHAT.get(c.kind)
    if what:
        head += f" ({what})"
    if c.bytes_per_call is not None and c.unit != "bytes":
        head += f", ~{format_bytes(c.bytes_per_call)}/call"
    lines = [head]
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
    lines.extend("   note:         " + note for note in c.notes)
    if c.hint:
        lines.append("   fix:          " + c.hint)
    return lines


def format_report(report: LeakReport, show_values: bool = False) -> str:
    """The human explanation of ``report`` (``str(report)``).

    >>> print(format_report(LeakReport("app.run", False, PerCall(0.0, 0.0))))
    leakscope: no leak in app.run: nothing grew steadily (0 calls measured in 0 runs after 0 warm-up calls, 0.00 s)
    """
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
        why = report.bounded[0] if report.bounded else "nothing grew steadily"
        lines = [f"leakscope: no leak in {report.function}: {why} ({measured})"]
        lines.extend(f"  also {b}" for b in report.bounded[1:])
        if report.settled:
            lines.append("  grew, then settled: " + ", ".join(report.settled))
        lines.extend(f"  note: {n}" for n in report.notes)
        return "\n".join(lines)
    lines = [f"leakscope: LEAK in {report.function}: {report.per_call} ({measured})"]
    for i, c in enumerate(report.culprits, 1):
        lines.append("")
        lines.extend(_culprit_lines(i, c, show_values))
    if not report.culprits:
        lines.append("")
        lines.append("(no culprit could be pinned down; see the runs in report.runs)")
    if report.notes:
        lines.append("")
        lines.extend(f"note: {n}" for n in report.notes)
    return "\n".join(lines)
