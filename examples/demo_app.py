"""A tiny request handler with a classic leak, used by ``examples/demo.py``.

``render_profile`` caches every rendered page in a module-level dict keyed by user
id and never evicts anything: each new user adds an entry that lives forever.
``render_profile_bounded`` does the same work with a bounded ``functools.lru_cache``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass


@dataclass
class Page:
    user_id: int
    html: str
    headers: dict[str, str]


_RENDERED: dict[int, Page] = {}  # the leak: an unbounded cache


def _render(user_id: int) -> Page:
    html = f"<h1>Profile {user_id}</h1>" + "<p>lorem ipsum</p>" * 20
    return Page(user_id, html, {"Content-Type": "text/html", "X-User": str(user_id)})


def render_profile(user_id: int) -> str:
    """Render a user's profile page, caching it forever (leaks one Page per new user)."""
    page = _RENDERED.get(user_id)
    if page is None:
        page = _RENDERED[user_id] = _render(user_id)
    return page.html


@functools.lru_cache(maxsize=64)
def _render_cached(user_id: int) -> Page:
    return _render(user_id)


def render_profile_bounded(user_id: int) -> str:
    """The same page with a bounded cache: memory plateaus, so this does not leak."""
    return _render_cached(user_id).html
