"""Leak: a logger per request id; logging keeps every logger forever."""

import itertools
import logging

EXPECT = "leak"
TYPES = ("logging.Logger",)
HOLDER = "loggerDict"

_ids = itertools.count()


def run():
    logging.getLogger(f"app.request.{next(_ids)}").debug("handled")
