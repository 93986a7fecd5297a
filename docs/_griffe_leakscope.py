"""A Griffe extension for the API reference: render leakscope's docstrings as Markdown.

leakscope's docstrings use reST conventions (``>>>`` doctest blocks, ``:func:`name```
roles).  Markdown would read a doctest line such as ``x['k'][3]`` as a reference link, so
this turns each top-level doctest block into a fenced ``pycon`` code block, each role
into a code span, and a reST ``text::`` before an indented block into ``text:``.  Loaded by mkdocs.yml (``extensions:`` of the python handler).
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(?:func|class|meth|attr|mod|data|exc|obj|const):`~?([^`]+)`")


def _fence_doctests(text: str) -> str:
    out: list[str] = []
    in_fence = False
    in_doctest = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
        if in_fence:
            out.append(line)
            continue
        if not in_doctest and line.startswith(">>>"):
            out.append("```pycon")
            in_doctest = True
        elif in_doctest and not line.strip():
            out.append("```")
            in_doctest = False
        out.append(line)
    if in_doctest:
        out.append("```")
    return "\n".join(out)


_LITERAL = re.compile(r"(\S)::$", re.MULTILINE)


def _markdown(text: str) -> str:
    text = _ROLE.sub(lambda m: f"`{m.group(1)}`", text)
    text = _LITERAL.sub(r"\1:", text)  # reST "text::" before an indented block: "text:"
    return _fence_doctests(text)


class LeakscopeDocstrings(griffe.Extension):
    """Doctest blocks as fenced code, reST roles as code spans."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _markdown(obj.docstring.value)
