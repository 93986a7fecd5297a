"""A small Flask service with two blueprints: one leaks, one does not.

``leaky`` stores a new object per request in a module-level dict that is never
trimmed (the classic unbounded cache); ``clean`` builds the same object and lets it
go.  ``create_app()`` adds leakscope (dashboard under ``/_leakscope/``, enabled by
``LEAKSCOPE_TOKEN``); ``create_app(leakscope=False)`` serves the bare application.
"""

from __future__ import annotations

import os

from flask import Blueprint, Flask, jsonify
from flask.typing import ResponseReturnValue


class Item:
    """What the service computes for an item id."""

    def __init__(self, item_id: int) -> None:
        self.item_id = item_id
        self.payload = [item_id] * 8


_CACHE: dict[int, Item] = {}  # never trimmed: this is the leak

leaky = Blueprint("leaky", __name__, url_prefix="/leaky")
clean = Blueprint("clean", __name__, url_prefix="/clean")


@leaky.get("/items/<int:item_id>")
def item(item_id: int) -> ResponseReturnValue:
    """Computes the item and keeps it forever, under a key that never repeats."""
    key = len(_CACHE)
    _CACHE[key] = Item(item_id)
    return jsonify(id=item_id, cached=len(_CACHE))


@clean.get("/items/<int:item_id>")
def clean_item(item_id: int) -> ResponseReturnValue:
    """Computes the item and lets it go."""
    found = Item(item_id)
    return jsonify(id=found.item_id, size=len(found.payload))


def create_app(leakscope: bool = True) -> Flask:
    """The service; with ``leakscope`` its leak diagnosis (needs ``LEAKSCOPE_TOKEN``)."""
    app = Flask(__name__)
    app.config["SECRET_KEY"] = os.environ.get("SECRET_KEY", "demo-secret-key-not-for-production")
    app.register_blueprint(leaky)
    app.register_blueprint(clean)
    if leakscope:
        from leakscope.flask import LeakScope

        LeakScope(app)
    return app


app = create_app()
