"""Two views: one leaks (an unbounded module-level cache), one does not."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse


class Item:
    """What the service computes for an item id."""

    def __init__(self, item_id: int) -> None:
        self.item_id = item_id
        self.payload = [item_id] * 8


_CACHE: dict[int, Item] = {}  # never trimmed: this is the leak


def item(request: HttpRequest, item_id: int) -> JsonResponse:
    """Computes the item and keeps it forever, under a key that never repeats."""
    key = len(_CACHE)
    _CACHE[key] = Item(item_id)
    return JsonResponse({"id": item_id, "cached": len(_CACHE)})


def clean_item(request: HttpRequest, item_id: int) -> JsonResponse:
    """Computes the item and lets it go."""
    found = Item(item_id)
    return JsonResponse({"id": found.item_id, "size": len(found.payload)})
