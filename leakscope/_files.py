"""Writing files so that a reader never sees half of one."""

from __future__ import annotations

import contextlib
import os

__all__ = ["atomic_write"]

_EXCLUSIVE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)


def atomic_write(path: str | os.PathLike[str], data: str | bytes) -> None:
    """Write ``data`` to ``path`` atomically: through a temporary file in the same directory,
    renamed over ``path`` once complete (``os.replace``), and removed if anything fails.

    ``str`` is written as UTF-8.  The directory must exist.  The temporary name comes from
    ``os.urandom``, not :mod:`tempfile`, whose first use leaves a ``random.Random`` and a
    ``tempfile._RandomNameSequence`` alive in the process: objects that the next snapshot
    would count as growth.

    >>> import pathlib, tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     atomic_write(pathlib.Path(d, "out.json"), "{}")
    ...     pathlib.Path(d, "out.json").read_text()
    '{}'
    """
    target = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(target))
    for _attempt in range(100):
        tmp = os.path.join(directory, f".leakscope-{os.urandom(6).hex()}.tmp")
        try:
            fd = os.open(tmp, _EXCLUSIVE, 0o600)
        except FileExistsError:
            continue
        break
    else:  # pragma: no cover - 100 collisions of 48 random bits
        raise FileExistsError(f"no free temporary name in {directory}")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
