"""The Django adapter: ``"leakscope.django.LeakMiddleware"`` in ``MIDDLEWARE``.

This is the documented import path; the implementation lives in :mod:`leakscope.web.django`.
The endpoints are mounted with ``path("_leakscope/", include("leakscope.django.urls"))``.
"""

from __future__ import annotations

from leakscope.web.django import LeakMiddleware

__all__ = ["LeakMiddleware"]
