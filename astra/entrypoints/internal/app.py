"""The internal API's own aiohttp application (ASTRA_INTERNAL_HOST:ASTRA_INTERNAL_PORT, 3200).

It is the only thing an instance runtime may reach: Docker runtimes sit on a bridge network
whose gateway address the platform binds for this app alone, so the portal and the admin panel
(on loopback) are never on an address a bot can route to. Nothing here knows sessions, cookies
or CSRF: every route takes a runtime credential (see `api.py`).
"""

from __future__ import annotations

from aiohttp import web

from astra.adapters.instance_api.wire import OPERATIONS
from astra.entrypoints.health import SERVICE_KEY, STORE_KEY, health
from astra.entrypoints.internal import api
from astra.entrypoints.middleware import errors_as_json, request_timeout, security_headers


def create_internal_app(container: object) -> web.Application:
    # Each operation reads its own body with its own cap; this only bounds aiohttp's reader.
    largest = max(op.max_body for op in OPERATIONS.values())
    app = web.Application(
        middlewares=[errors_as_json, request_timeout], client_max_size=largest + 1024
    )
    app.on_response_prepare.append(security_headers)
    app[STORE_KEY] = container.store()  # type: ignore[attr-defined]
    app[SERVICE_KEY] = "internal"
    app.router.add_get("/health", health)
    api.add_routes(app, container)

    async def close_discord(_: web.Application) -> None:
        # The keep-alive session the platform asks Discord "who clicked?" through.
        await container.actors().close()  # type: ignore[attr-defined]

    app.on_cleanup.append(close_discord)
    return app
