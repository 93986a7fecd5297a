"""Clean: a lazily started thread pool, reused by every call."""

from concurrent.futures import ThreadPoolExecutor

EXPECT = "clean"

_pool = None


def _pool_get():
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=2)
    return _pool


def run():
    futures = [_pool_get().submit(pow, 2, i) for i in range(4)]
    for f in futures:
        f.result()
