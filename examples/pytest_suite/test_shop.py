"""leakscope in a pytest suite: the ``no_leaks`` marker and the ``leakscope`` fixture.

Run it with::

    pytest examples/pytest_suite

``test_receipt_does_not_leak`` FAILS on purpose: ``print_receipt`` keeps every
receipt, and leakscope explains the leak (what is retained per call, what holds
it, where it was allocated).  The other tests pass.  ``pytest --leakscope`` would
check every test's body the same way without any marker.
"""

from __future__ import annotations

from typing import Any

import pytest
import shop

PRICES = [1.25, 3.5, 0.99]


@pytest.mark.no_leaks  # the test body is run repeatedly and must not leak
def test_total_does_not_leak() -> None:
    assert shop.basket_total(PRICES) == 5.74


@pytest.mark.no_leaks  # fails: every call keeps one receipt dict in shop._RECEIPTS
def test_receipt_does_not_leak() -> None:
    assert shop.print_receipt(PRICES) == "TOTAL 5.74"


def test_total_with_the_fixture(leakscope: Any) -> None:
    report = leakscope.check(lambda: shop.basket_total(PRICES))  # raises LeakError on a leak
    assert not report.leaked
