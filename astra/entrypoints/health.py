"""`GET /health`: liveness of the process and of the store, for monitors and load balancers."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from astra import __version__
from astra.entrypoints.middleware import json_response
from astra.ports.store import Store, StoreUnavailable

STORE_KEY = web.AppKey("store", Store)
SERVICE_KEY = web.AppKey("service", str)
# callable() -> the background loops this replica runs now, or None outside `astra serve`.
LEADS_KEY = web.AppKey("leads", object)


def report_leads(app: web.Application, container: Any) -> None:
    """Make `app`'s /health say which loops this replica leads (portal and admin panel)."""

    def leading() -> list[str] | None:
        leadership = container.leadership()
        return leadership.leading() if leadership is not None else None

    app[LEADS_KEY] = leading


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
    leads = request.app.get(LEADS_KEY)
    leading = leads() if callable(leads) else None
    if leading is not None:
        # Which loops (housekeeping, reconcile, monitor, courier) run on this replica: with
        # several replicas on one database, each runs on exactly one of them.
        body["leads"] = leading
    if status.get("ok"):
        return json_response(body)
    # The store does not answer (the database is down, say): a load balancer takes this
    # replica out of rotation, and everyone is told when to look again.
    body["error"] = "store_unavailable"
    response = json_response(body, status=503)
    response.headers["Retry-After"] = str(StoreUnavailable.retry_after)
    return response
