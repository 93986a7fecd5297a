"""Clean: the same warning and the same logger, over and over."""

import logging
import warnings

EXPECT = "clean"

log = logging.getLogger("app.worker")


def run():
    warnings.warn("the old API is deprecated", UserWarning, stacklevel=1)
    logging.getLogger("app.worker").debug("working")
    log.info("done")
