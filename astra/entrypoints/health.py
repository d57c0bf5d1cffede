"""`GET /health`: liveness of the process and of the store, for monitors and load balancers."""

from __future__ import annotations

import asyncio

from aiohttp import web

from astra import __version__
from astra.entrypoints.middleware import json_response
from astra.ports.store import Store

STORE_KEY = web.AppKey("store", Store)
SERVICE_KEY = web.AppKey("service", str)


async def health(request: web.Request) -> web.Response:
    store = request.app[STORE_KEY]
    # The store reads files under a lock: keep it off the event loop.
    status = await asyncio.to_thread(store.health)
    body = {
        "status": "ok" if status.get("ok") else "degraded",
        "service": request.app[SERVICE_KEY],
        "version": __version__,
        "store": status,
    }
    return json_response(body, status=200 if status.get("ok") else 503)
