"""Graphviz DOT text for retention paths and cycles, and rendering through ``dot``.

The DOT text is built here from the data objects alone (they hold strings only);
:func:`render` writes it next to the requested file and runs the ``dot`` binary::

    render(why_alive(obj).to_dot(), "alive.svg")   # writes alive.dot and alive.svg
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from leakscope.errors import LeakscopeError

if TYPE_CHECKING:
    from leakscope._refgraph import RetentionPath

__all__ = ["cycle_dot", "paths_dot", "quote", "render"]

_FORMATS = frozenset({"svg", "png", "pdf", "jpg", "jpeg", "gif", "ps"})


def quote(text: str) -> str:
    """``text`` as a DOT double-quoted string."""
    text = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{text}"'


def paths_dot(title: str, target: str, paths: Sequence[RetentionPath]) -> str:
    """A graph of retention paths: roots at the top, the target at the bottom.

    Paths share nodes where they share a prefix (same root, same first steps).
    """
    lines = [
        "digraph retention {",
        "  rankdir=TB;",
        f'  label={quote(title)}; labelloc=t; fontname="Helvetica";',
        '  node [shape=box, style="rounded,filled", fillcolor="#f2f2f2", fontname="Helvetica"];',
        '  edge [fontname="Helvetica", fontsize=10];',
        f'  target [label={quote(target)}, fillcolor="#f4b6b6"];',
    ]
    ids: dict[tuple[str, ...], str] = {}
    edges: set[tuple[str, str, str]] = set()
    for path in paths:
        key: tuple[str, ...] = (path.root,)
        if key not in ids:
            ids[key] = f"n{len(ids)}"
            lines.append(f'  {ids[key]} [label={quote(path.root)}, fillcolor="#b6d7f4"];')
        prev = ids[key]
        for i, step in enumerate(path.steps):
            last = i == len(path.steps) - 1
            key = (*key, step)
            if last:
                node = "target"
            elif key in ids:
                node = ids[key]
            else:
                node = ids[key] = f"n{len(ids)}"
                tp = path.types[i + 1] if i + 1 < len(path.types) else "?"
                lines.append(f"  {node} [label={quote(tp)}];")
            edge = (prev, node, step)
            if edge not in edges:
                edges.add(edge)
                lines.append(f"  {prev} -> {node} [label={quote(step)}];")
            prev = node
    lines.append("}")
    return "\n".join(lines) + "\n"


def cycle_dot(title: str, cycles: Iterable[tuple[str, Sequence[tuple[str, str]]]]) -> str:
    """A graph with one cluster per cycle: ``(caption, [(node type, edge label), ...])``.

    Each cycle is drawn as a ring: node ``i`` points to node ``i + 1`` with its label,
    the last one back to the first.
    """
    lines = [
        "digraph cycles {",
        f'  label={quote(title)}; labelloc=t; fontname="Helvetica";',
        '  node [shape=box, style="rounded,filled", fillcolor="#f2f2f2", fontname="Helvetica"];',
        '  edge [fontname="Helvetica", fontsize=10];',
    ]
    for c, (caption, ring) in enumerate(cycles):
        lines.append(f"  subgraph cluster_{c} {{")
        lines.append(f"    label={quote(caption)};")
        for i, (tp, _label) in enumerate(ring):
            lines.append(f"    c{c}_{i} [label={quote(tp)}];")
        for i, (_tp, label) in enumerate(ring):
            j = (i + 1) % len(ring)
            lines.append(f"    c{c}_{i} -> c{c}_{j} [label={quote(label)}];")
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(dot_text: str, path: str | Path, *, timeout: float = 60.0) -> Path:
    """Write ``dot_text`` to ``<path>.dot`` and render ``path`` (svg, png, pdf...) with ``dot``.

    The format is the suffix of ``path``.  Raises :class:`LeakscopeError` naming the
    missing ``dot`` binary (Graphviz) when it is not on ``PATH``; the ``.dot`` text
    is written first either way.  Returns the rendered file's path.
    """
    target = Path(path)
    fmt = target.suffix.lstrip(".").lower()
    dot_path = target.with_suffix(".dot")
    dot_path.write_text(dot_text, encoding="utf-8")
    if fmt == "dot":
        return dot_path
    if fmt not in _FORMATS:
        raise ValueError(
            f"cannot render {target.name!r}: unknown format {fmt!r} "
            f"(use one of {', '.join(sorted(_FORMATS))} or .dot); DOT text written to {dot_path}"
        )
    binary = shutil.which("dot")
    if binary is None:
        raise LeakscopeError(
            f"rendering {target.name!r} needs the Graphviz 'dot' binary, which is not on PATH "
            f"(install Graphviz, e.g. apt-get install graphviz); the DOT text was written "
            f"to {dot_path}"
        )
    try:
        proc = subprocess.run(
            [binary, f"-T{fmt}", "-o", str(target), str(dot_path)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LeakscopeError(f"running {binary!r} failed: {exc}; DOT text in {dot_path}") from exc
    if proc.returncode != 0:
        raise LeakscopeError(
            f"{binary!r} exited with {proc.returncode}: {proc.stderr.strip()[:500]}; "
            f"DOT text in {dot_path}"
        )
    return target
