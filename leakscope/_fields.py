"""Reading the fields of a ``from_dict`` document, each error naming its field.

Every data object's ``from_dict`` reads its dictionary through :class:`Fields`, so a
wrong document raises :class:`~leakscope.errors.DataError` (or the subclass the caller
names, :class:`~leakscope.errors.SnapshotError` for snapshots) with ``field`` set to
the path of the offending value (``"generations[1].pause_max_ns"``), never a bare
``KeyError`` or ``TypeError``.

>>> f = Fields({"size": 3, "name": "ring"}, "cycles[0]")
>>> f.integer("size"), f.text("name")
(3, 'ring')
>>> f.integer("count")
Traceback (most recent call last):
    ...
leakscope.errors.DataError: cycles[0].count: missing
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterator, Mapping
from typing import Any, TypeGuard

from leakscope.errors import DataError

__all__ = ["Fields", "is_int"]


def is_int(value: object) -> TypeGuard[int]:
    """An ``int`` that is not a ``bool``.

    >>> is_int(3), is_int(True), is_int(3.0)
    (True, False, False)
    """
    return isinstance(value, int) and not isinstance(value, bool)


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "\u2026"


class Fields:
    """Typed reads of one mapping in a document; ``where`` is its path in the document.

    ``error`` is the :class:`DataError` subclass raised (``DataError`` by default).
    Construction fails when ``data`` is not a mapping with string keys.
    """

    __slots__ = ("data", "error", "where")

    def __init__(self, data: object, where: str = "", error: type[DataError] = DataError) -> None:
        self.where = where
        self.error = error
        if not isinstance(data, Mapping):
            raise self.fail(f"must be a mapping, not {type(data).__name__}")
        self.data: Mapping[str, Any] = data

    # -- paths and errors -------------------------------------------------------------------

    def path(self, key: str | int) -> str:
        """The path of ``key`` inside this mapping (``gc.counts``, ``types[2]``)."""
        if isinstance(key, int):
            return f"{self.where}[{key}]"
        return f"{self.where}.{key}" if self.where else key

    def fail(self, message: str, key: str | int | None = None) -> DataError:
        """The error to raise for ``key`` (or for this mapping itself when ``None``)."""
        return self.error(message, field=self.where if key is None else self.path(key))

    # -- single values ----------------------------------------------------------------------

    def has(self, key: str) -> bool:
        """Whether ``key`` is present (even with a ``None`` value)."""
        return key in self.data

    def value(self, key: str) -> Any:
        """The value of ``key``, which must be present."""
        if key not in self.data:
            raise self.fail("missing", key)
        return self.data[key]

    def integer(self, key: str, *, minimum: int | None = None) -> int:
        """An integer (not a bool), at least ``minimum`` when given."""
        return self._int(key, self.value(key), minimum)

    def optional_integer(self, key: str, *, minimum: int | None = None) -> int | None:
        """An integer or ``None`` (also when missing)."""
        value = self.data.get(key)
        return None if value is None else self._int(key, value, minimum)

    def number(self, key: str) -> float:
        """A finite int or float (not a bool)."""
        return self._number(key, self.value(key))

    def optional_number(self, key: str) -> float | None:
        """A finite number or ``None`` (also when missing)."""
        value = self.data.get(key)
        return None if value is None else self._number(key, value)

    def text(self, key: str) -> str:
        """A string."""
        value = self.value(key)
        if not isinstance(value, str):
            raise self.fail(f"must be a string, not {_shown(value)}", key)
        return value

    def flag(self, key: str) -> bool:
        """``True`` or ``False``."""
        value = self.value(key)
        if not isinstance(value, bool):
            raise self.fail(f"must be true or false, not {_shown(value)}", key)
        return value

    def choice(self, key: str, choices: Collection[str]) -> str:
        """A string among ``choices``."""
        value = self.value(key)
        if value not in choices:
            allowed = ", ".join(sorted(choices))
            raise self.fail(f"must be one of {allowed}, not {_shown(value)}", key)
        return str(value)

    # -- containers -------------------------------------------------------------------------

    def items(self, key: str, *, optional: bool = False) -> list[Any]:
        """A list (``[]`` when ``optional`` and missing)."""
        if optional and key not in self.data:
            return []
        value = self.value(key)
        if not isinstance(value, list):
            raise self.fail(f"must be a list, not {_shown(value)}", key)
        return value

    def each(self, key: str, *, optional: bool = False) -> Iterator[Fields]:
        """The mappings of the list ``key``, each as :class:`Fields` (``key[i]``)."""
        where = self.path(key)
        for i, entry in enumerate(self.items(key, optional=optional)):
            yield Fields(entry, f"{where}[{i}]", self.error)

    def sub(self, key: str) -> Fields:
        """The mapping ``key`` as :class:`Fields`."""
        return Fields(self.value(key), self.path(key), self.error)

    def integers(
        self, key: str, *, minimum: int | None = None, optional: bool = False
    ) -> list[int]:
        """A list of integers."""
        where = self.path(key)
        return [
            self._int_at(where, i, v, minimum)
            for i, v in enumerate(self.items(key, optional=optional))
        ]

    def strings(self, key: str, *, optional: bool = False) -> list[str]:
        """A list of strings."""
        values = self.items(key, optional=optional)
        for i, v in enumerate(values):
            if not isinstance(v, str):
                raise self.error(
                    f"must be a string, not {_shown(v)}", field=f"{self.path(key)}[{i}]"
                )
        return values

    def pairs(
        self, key: str, first: type, second: type, *, optional: bool = False
    ) -> list[tuple[Any, Any]]:
        """A list of two-element lists ``[first, second]`` (``[name, count]``)."""
        out = []
        for i, v in enumerate(self.items(key, optional=optional)):
            if not (
                isinstance(v, (list, tuple))
                and len(v) == 2
                and _is(v[0], first)
                and _is(v[1], second)
            ):
                raise self.error(
                    f"must be a [{first.__name__}, {second.__name__}] pair, not {_shown(v)}",
                    field=f"{self.path(key)}[{i}]",
                )
            out.append((v[0], v[1]))
        return out

    def counts(self, key: str) -> dict[str, int]:
        """A mapping of names to non-negative integers."""
        raw = self.sub(key)
        return {str(name): raw._int(str(name), v, 0) for name, v in raw.data.items()}

    # -- checks -----------------------------------------------------------------------------

    def _int(self, key: str, value: object, minimum: int | None) -> int:
        if not is_int(value):
            raise self.fail(f"must be an integer, not {_shown(value)}", key)
        if minimum is not None and value < minimum:
            raise self.fail(f"must be an integer >= {minimum}, not {value}", key)
        return value

    def _int_at(self, where: str, index: int, value: object, minimum: int | None) -> int:
        if not is_int(value) or (minimum is not None and value < minimum):
            bound = "" if minimum is None else f" >= {minimum}"
            raise self.error(
                f"must be an integer{bound}, not {_shown(value)}", field=f"{where}[{index}]"
            )
        return value

    def _number(self, key: str, value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(f"must be a number, not {_shown(value)}", key)
        if not math.isfinite(value):
            raise self.fail(f"must be a finite number, not {value}", key)
        return float(value)


def _is(value: object, kind: type) -> bool:
    if kind is int:
        return is_int(value)
    if kind is float:
        return is_int(value) or isinstance(value, float)
    return isinstance(value, kind)
