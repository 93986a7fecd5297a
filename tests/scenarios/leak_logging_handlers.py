"""Leak: a handler added to a logger on every call (a common logging mistake)."""

import logging

EXPECT = "leak"
TYPES = ("logging.StreamHandler",)
HOLDER = "handlers"
HINT = "a logging handler added on every call"

_log = logging.getLogger("leak_logging_handlers.jobs")
_log.propagate = False


class _Sink:
    def write(self, text):
        pass

    def flush(self):
        pass


_SINK = _Sink()


def run():
    _log.addHandler(logging.StreamHandler(_SINK))
