"""The admin panel's aiohttp application (:3000)."""

from __future__ import annotations

from aiohttp import web

from astra.container import Container
from astra.entrypoints.admin import api, auth, metrics, pages
from astra.entrypoints.health import SERVICE_KEY, STORE_KEY, health, report_leads
from astra.entrypoints.middleware import (
    TRUSTED_PROXIES_KEY,
    errors_as_json,
    request_timeout,
    security_headers,
    trusted_networks,
)

MAX_BODY_BYTES = 1024 * 1024


def create_admin_app(container: Container) -> web.Application:
    settings = container.settings()
    # pages.login_redirect sits outside admin_auth: it turns a page visit's 401 into the login.
    app = web.Application(
        middlewares=[errors_as_json, request_timeout, pages.login_redirect, auth.admin_auth],
        client_max_size=MAX_BODY_BYTES,
    )
    app.on_response_prepare.append(security_headers)
    app[STORE_KEY] = container.store()
    app[SERVICE_KEY] = "admin"
    app[TRUSTED_PROXIES_KEY] = trusted_networks(settings.trusted_proxies)
    app[auth.ACCESS_KEY] = auth.AdminAccess(
        token=settings.admin_token, monitor_token=settings.admin_monitor_token,
        user=settings.admin_user, password=settings.admin_password,
        session_secret=settings.session_secret,
        secure=settings.public_url.startswith("https://"), store=container.store(),
        throttles=container.coordination().throttles)
    app[metrics.CONTAINER_KEY] = container
    report_leads(app, container)
    app.router.add_get("/health", health)
    app.router.add_post("/admin/login", auth.login)
    app.router.add_post("/admin/logout", auth.logout)
    app.router.add_get("/metrics", metrics.metrics)
    api.add_routes(app, container)
    pages.add_routes(app)
    return app
