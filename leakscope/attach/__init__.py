"""``leakscope attach PID``: diagnose a running CPython process without restarting it.

The pieces, one module per concept:

- :mod:`~leakscope.attach.target`: what the process is (alive, CPython, which
  version, may we trace it), and the workers of a pre-fork master;
- :mod:`~leakscope.attach.bootstrap`: the few lines of code run inside the target,
  which start the agent on its own thread and clean up after it;
- :mod:`~leakscope.attach.injector`: how that code gets in (``sys.remote_exec`` on
  3.14+, gdb and a pending call at a safe point on 3.10-3.13);
- :mod:`~leakscope.attach.agent`: the snapshots and the analysis, in the target;
- :mod:`~leakscope.attach.protocol`: the messages between the two processes;
- :mod:`~leakscope.attach.session`: one attachment, seen from this process;
- :mod:`~leakscope.attach.report`: the report as text;
- :mod:`~leakscope.attach.command`: the command line.
"""

from __future__ import annotations

__all__: list[str] = []
