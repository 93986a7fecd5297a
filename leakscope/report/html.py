"""The HTML report: one self-contained page (documented path; see :mod:`leakscope.render.html`)."""

from __future__ import annotations

from leakscope.render.html import render_check, render_run, write_run

__all__ = ["render_check", "render_run", "write_run"]
