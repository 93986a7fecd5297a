"""The code under test: a basket service with one leaking function."""

from __future__ import annotations

_RECEIPTS: list[dict[str, float]] = []  # every receipt ever printed: grows forever


def basket_total(prices: list[float]) -> float:
    """Clean: computes and keeps nothing."""
    return round(sum(prices), 2)


def print_receipt(prices: list[float]) -> str:
    """Leaks: remembers every receipt in a module-level list."""
    receipt = {"total": basket_total(prices), "items": float(len(prices))}
    _RECEIPTS.append(receipt)
    return f"TOTAL {receipt['total']:.2f}"
