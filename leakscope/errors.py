"""The exceptions leakscope raises on purpose.

Every error derives from :class:`LeakscopeError`, except :class:`LeakError`, which
derives from :class:`AssertionError` so that test runners report a leak as an
ordinary test failure.
"""

from __future__ import annotations

__all__ = [
    "AttachError",
    "DataError",
    "LeakError",
    "LeakscopeError",
    "MallocStatsError",
    "MissingDependencyError",
    "RunError",
    "SnapshotError",
]


class LeakscopeError(Exception):
    """Base class of the errors leakscope raises on purpose."""


class DataError(LeakscopeError, ValueError):
    """A dictionary given to a ``from_dict`` (or a file loaded) is not what it should be.

    Every data object's ``from_dict`` raises this error (or its subclass
    :class:`SnapshotError`), never a bare ``KeyError`` or ``TypeError``.  ``field`` names
    the offending field (``"culprits[0].holders[1].rate"``), or is ``""`` when the whole
    document is wrong; the message says what was expected.
    """

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field


class SnapshotError(DataError):
    """A snapshot file or dictionary is truncated, corrupt or not a leakscope snapshot."""


class MallocStatsError(LeakscopeError, ValueError):
    """``sys._debugmallocstats()`` output that cannot be read (truncated, garbled, unknown)."""


class RunError(LeakscopeError):
    """``leakscope run`` could not start the program (no such file, no such module)."""


class MissingDependencyError(LeakscopeError, ImportError):
    """An optional feature needs a package that is not installed.

    The message names the package and the ``pip install`` command that provides it.
    """

    def __init__(self, feature: str, package: str, extra: str) -> None:
        super().__init__(
            f"{feature} needs the optional package {package!r}; "
            f"install it with: pip install 'pyleakscope[{extra}]'"
        )
        self.feature = feature
        self.package = package
        self.extra = extra


class LeakError(AssertionError):
    """A leak was found: raised by ``raise_if_leaked``, ``@no_leaks`` and ``assert_collected``.

    The message is the human explanation of the leak.  ``report`` holds the data
    object behind it (a ``LeakReport`` or ``Retention``) when there is one.
    """

    def __init__(self, message: str, report: object | None = None) -> None:
        super().__init__(message)
        self.report = report


class AttachError(LeakscopeError):
    """``leakscope attach`` cannot attach to the process: one line for people, saying why and
    what to do.

    >>> str(AttachError("no such process: 4242"))
    'no such process: 4242'
    """
