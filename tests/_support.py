"""Helpers shared by the test modules (imported as ``from _support import ...``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def run_python(
    code: str,
    *,
    python: str = sys.executable,
    timeout: float = 120.0,
    env_extra: dict[str, str] | None = None,
) -> str:
    """Run ``code`` in a fresh interpreter that can import leakscope; return its stdout.

    ``env_extra`` adds environment variables.  The test fails with the child's stderr
    when it exits non-zero.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(PROJECT_ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env.pop("LEAKSCOPE_SAMPLE", None)
    env.update(env_extra or {})
    proc = subprocess.run(
        [python, "-c", textwrap.dedent(code)],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=PROJECT_ROOT,
    )
    if proc.returncode != 0:
        raise AssertionError(
            f"child Python exited with {proc.returncode}\n--- stdout\n{proc.stdout}"
            f"\n--- stderr\n{proc.stderr}"
        )
    return proc.stdout


def run_python_json(code: str, **kwargs: Any) -> Any:
    """Like :func:`run_python`, for code whose last line of output is a JSON document."""
    out = run_python(code, **kwargs).strip().splitlines()
    return json.loads(out[-1])
