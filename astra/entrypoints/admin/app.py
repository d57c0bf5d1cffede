"""The admin panel's aiohttp application (:3000)."""

from __future__ import annotations

from aiohttp import web

from astra.container import Container
from astra.entrypoints.health import SERVICE_KEY, STORE_KEY, health
from astra.entrypoints.middleware import errors_as_json

MAX_BODY_BYTES = 1024 * 1024


def create_admin_app(container: Container) -> web.Application:
    app = web.Application(middlewares=[errors_as_json], client_max_size=MAX_BODY_BYTES)
    app[STORE_KEY] = container.store()
    app[SERVICE_KEY] = "admin"
    app.router.add_get("/health", health)
    return app
