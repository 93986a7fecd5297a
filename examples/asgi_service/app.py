"""A small Starlette service with a leaking and a clean route, a WebSocket and a lifespan.

``/leaky/items/{item_id}`` stores a new object per request in a module-level dict that
is never trimmed (the classic unbounded cache); ``/clean/items/{item_id}`` builds the
same object and lets it go.  ``app`` is wrapped in leakscope's ASGI middleware
(endpoints under ``/_leakscope/``, enabled by ``LEAKSCOPE_TOKEN``); ``bare`` is the
application alone.  Run it::

    LEAKSCOPE_TOKEN=s3cret uvicorn app:app --workers 2
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from leakscope.asgi import LeakMiddleware


class Item:
    """What the service computes for an item id."""

    def __init__(self, item_id: int) -> None:
        self.item_id = item_id
        self.payload = [item_id] * 8


_CACHE: dict[int, Item] = {}  # never trimmed: this is the leak


async def item(request: Request) -> JSONResponse:
    """Computes the item and keeps it forever, under a key that never repeats."""
    item_id = int(request.path_params["item_id"])
    key = len(_CACHE)
    _CACHE[key] = Item(item_id)
    return JSONResponse({"id": item_id, "cached": len(_CACHE)})


async def clean_item(request: Request) -> JSONResponse:
    """Computes the item and lets it go."""
    found = Item(int(request.path_params["item_id"]))
    return JSONResponse({"id": found.item_id, "size": len(found.payload)})


async def lifespan_state(request: Request) -> JSONResponse:
    """What the lifespan handler set up (shows that lifespan reached the application)."""
    return JSONResponse({"started": request.app.state.started, "pid": os.getpid()})


async def echo(websocket: WebSocket) -> None:
    """Echoes every text message back until the client closes."""
    await websocket.accept()
    with contextlib.suppress(Exception):
        while True:
            await websocket.send_text("echo: " + await websocket.receive_text())


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    app.state.started = True
    yield


bare = Starlette(
    routes=[
        Route("/leaky/items/{item_id:int}", item),
        Route("/clean/items/{item_id:int}", clean_item),
        Route("/lifespan", lifespan_state),
        WebSocketRoute("/ws/echo", echo),
    ],
    lifespan=lifespan,
)
app = LeakMiddleware(bare)
