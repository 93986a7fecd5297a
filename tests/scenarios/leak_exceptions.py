"""Leak: failed jobs keep their exception, and with it the traceback and its frames."""

EXPECT = "leak"
TYPES = ("leak_exceptions.JobError", "traceback", "frame")
HOLDER = "_FAILURES"

_FAILURES = []


class JobError(Exception):
    pass


def _work(payload):
    buffer = [payload] * 10
    raise JobError(f"job failed with {len(buffer)} items")


def run():
    try:
        _work("x")
    except JobError as exc:
        _FAILURES.append(exc)
