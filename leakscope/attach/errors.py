"""The error ``leakscope attach`` raises when it cannot attach.

(It belongs in :mod:`leakscope.errors` with the others once the layout of issue 14
lands; it is here so that this package touches no other module.)
"""

from __future__ import annotations

from leakscope.errors import LeakscopeError

__all__ = ["AttachError"]


class AttachError(LeakscopeError):
    """Cannot attach to the process: the message is one line for people, saying why and what to do.

    >>> str(AttachError("no such process: 4242"))
    'no such process: 4242'
    """
