"""Leak: a logging handler writing into an io.StringIO that nobody empties."""

import io
import logging

EXPECT = "leak"
TYPES = ()
HOLDER = "logging.getLogger('leak_stringio_handler.jobs').handlers[0].stream"
HINT = "a buffer that only grows"

_log = logging.getLogger("leak_stringio_handler.jobs")
_log.propagate = False
_log.setLevel(logging.INFO)
_log.addHandler(logging.StreamHandler(io.StringIO()))


def run():
    _log.info("job done: %s", "ok" * 20)
