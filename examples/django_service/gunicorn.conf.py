"""gunicorn settings for the example Django service, with leakscope's worker hooks."""

import os
import tempfile

from leakscope.gunicorn import child_exit, post_fork, post_worker_init, worker_exit

bind = "127.0.0.1:8000"
workers = 2

# Every worker publishes its state here (the dashboard shows all of them) and writes its
# final snapshot (exit-<pid>.json) here when it stops.
os.environ.setdefault("LEAKSCOPE_DIR", os.path.join(tempfile.gettempdir(), "leakscope-django"))

__all__ = ["bind", "child_exit", "post_fork", "post_worker_init", "worker_exit", "workers"]
