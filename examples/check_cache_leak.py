"""Finding a cache leak with ``leakscope.check``.

    python examples/check_cache_leak.py

``lookup_price`` memoises prices in a module-level dict keyed by request id: every
call adds an entry that is never removed.  ``leakscope.check`` calls the function
repeatedly (warm-up first, then measured runs of doubling length), decides that it
leaks and names what holds the leaked objects: the ``_PRICES`` dict.
"""

from __future__ import annotations

import itertools

import leakscope


class Price:
    """A computed price: the objects that pile up."""

    def __init__(self, amount: float) -> None:
        self.amount = amount


_PRICES: dict[int, Price] = {}  # the "cache": grows with every new request id
_request_ids = itertools.count()


def lookup_price() -> Price:
    request_id = next(_request_ids)  # a fresh key per call: the cache never hits
    if request_id not in _PRICES:
        _PRICES[request_id] = Price(request_id * 1.5)
    return _PRICES[request_id]


def lookup_price_no_cache() -> Price:
    return Price(next(_request_ids) * 1.5)  # the same work, nothing kept


def main() -> int:
    report = leakscope.check(lookup_price)
    print(report)  # the verdict, the culprit type, its holder and the allocation site
    print()
    clean = leakscope.check(lookup_price_no_cache)
    print(clean)
    print()
    holders = [h.description for c in report.culprits for h in c.holders]
    print("Leaking:", report.leaked, "| held by:", holders[0] if holders else "?")
    print("Without the cache, leaking:", clean.leaked)
    return 0 if report.leaked and not clean.leaked else 1


if __name__ == "__main__":
    raise SystemExit(main())
