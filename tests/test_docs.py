"""The documentation: every runnable snippet runs, and the API reference covers ``__all__``.

A ```python block in a page under ``docs/`` is runnable unless its first line is a
comment starting with ``# not run`` (fragments, signatures, code that needs your own
application).  Each runs alone in a fresh interpreter.  ``docs/pytest.md`` holds pytest
test functions, not scripts, and is left out.
"""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import os
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest
from _support import PROJECT_ROOT, run_python

import leakscope

DOCS = PROJECT_ROOT / "docs"
NOT_SCRIPTS = {"pytest.md"}  # pytest test functions, run by pytest itself in examples/
_FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def _pages() -> list[Path]:
    return sorted(
        p
        for p in DOCS.rglob("*.md")
        if p.name not in NOT_SCRIPTS and "_generated" not in p.relative_to(DOCS).parts
    )


def _snippets() -> list[tuple[str, int, str]]:
    found = []
    for page in _pages():
        for i, match in enumerate(_FENCE.finditer(page.read_text(encoding="utf-8"))):
            code = match.group(1)
            if not code.lstrip().startswith("# not run"):
                found.append((page.relative_to(DOCS).as_posix(), i + 1, code))
    return found


SNIPPETS = _snippets()


def test_the_docs_have_runnable_snippets() -> None:
    pages = {page for page, _, _ in SNIPPETS}
    assert len(SNIPPETS) >= 20, SNIPPETS
    assert {"index.md", "quickstart.md", "guides/import.md"} <= pages


def test_snippet_marker_is_found() -> None:
    text = "```python\n# not run: a fragment\nx(\n```\n\n```python\nprint(1)\n```\n"
    blocks = [m.group(1) for m in _FENCE.finditer(text)]
    assert blocks == ["# not run: a fragment\nx(\n", "print(1)\n"]


@pytest.mark.parametrize(
    "code", [c for _, _, c in SNIPPETS], ids=[f"{p}#{i}" for p, i, _ in SNIPPETS]
)
@pytest.mark.slow
def test_snippet_runs(code: str) -> None:
    run_python(code, timeout=60)


def _documented(name: str, html: str) -> bool:
    """An entry for ``leakscope.name``, or for the object under its defining module's name
    (``leakscope.snapshot`` the function shares its name with the module that defines it)."""
    if name.startswith("__"):
        return name in html
    obj = getattr(leakscope, name)
    anchors = {f'id="leakscope.{name}"', f'id="{getattr(obj, "__module__", "")}.{name}"'}
    return any(anchor in html for anchor in anchors)


# -- docstring examples ---------------------------------------------------------------------


def _modules() -> list[str]:
    names = ["leakscope"]
    for info in pkgutil.walk_packages(leakscope.__path__, "leakscope."):
        names.append(info.name)
    return sorted(names)


@pytest.mark.parametrize("module", _modules())
def test_docstring_examples_run_and_are_true(module: str) -> None:
    try:
        imported = importlib.import_module(module)
    except ImportError as exc:  # an optional dependency (flask...) that is not installed
        pytest.skip(f"{module} needs {exc.name}")
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    tests = [t for t in finder.find(imported, module) if t.examples]
    for test in tests:
        runner.run(test, out=lambda text: print(text, end=""))
    failed, attempted = runner.summarize(verbose=False)
    assert failed == 0, f"{failed} of {attempted} examples in {module} failed (output above)"


def test_the_docstring_examples_are_found() -> None:
    finder = doctest.DocTestFinder(exclude_empty=True)
    found = sum(
        len(t.examples)
        for name in ("leakscope._snapshot", "leakscope.cli.common", "leakscope._fields")
        for t in finder.find(importlib.import_module(name), name)
    )
    assert found >= 10


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.skipif(
    importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("mkdocstrings") is None,
    reason="mkdocs and mkdocstrings are not installed (the docs extra)",
)
def test_site_builds_strict_and_the_api_reference_lists_every_public_name(
    tmp_path: Path,
) -> None:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(tmp_path)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    html = (tmp_path / "reference" / "api" / "index.html").read_text(encoding="utf-8")
    missing = [name for name in leakscope.__all__ if not _documented(name, html)]
    assert not missing, f"public names without an entry in the API reference: {missing}"
