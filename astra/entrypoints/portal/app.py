"""The seller portal's aiohttp application (:3100). The internal API that instance runtimes
call is not here: it has its own listener (`entrypoints/internal/app.py`), so the address
runtimes can reach serves nothing else."""

from __future__ import annotations

from aiohttp import web

from astra.container import Container
from astra.entrypoints.health import SERVICE_KEY, STORE_KEY, health, report_leads
from astra.entrypoints.instance_turns import (
    PORTAL_CONCURRENT,
    PORTAL_WAIT_SECONDS,
    InstanceTurns,
    turns_middleware,
)
from astra.entrypoints.middleware import (
    TRUSTED_PROXIES_KEY,
    errors_as_json,
    request_timeout,
    security_headers,
    trusted_networks,
)
from astra.entrypoints.portal import api_auth, api_routes, auth_routes, pages, sessions
from astra.entrypoints.portal.webhooks import (
    WEBHOOK_QUEUE_KEY,
    WebhookQueue,
    mercadopago_webhook,
)
from astra.ports.store import INSTANCE_ID_PATTERN

# Large enough for a stock file of many thousand keys, small enough to refuse abuse early.
MAX_BODY_BYTES = 2 * 1024 * 1024


def _instance_in_path(request: web.Request) -> str:
    if not request.path.startswith("/api/instances/"):
        return ""
    instance_id = request.match_info.get("id", "")
    return instance_id if INSTANCE_ID_PATTERN.fullmatch(instance_id) else ""


def create_portal_app(container: Container) -> web.Application:
    # A seller's routes take turns of their instance (instance_turns.py): one instance's
    # stuck or flooded routes cannot take the threads every other seller's requests need.
    turns = turns_middleware(InstanceTurns(PORTAL_CONCURRENT, PORTAL_WAIT_SECONDS),
                             _instance_in_path)
    app = web.Application(
        middlewares=[errors_as_json, request_timeout, turns], client_max_size=MAX_BODY_BYTES
    )
    app.on_response_prepare.append(security_headers)
    app[STORE_KEY] = container.store()
    app[SERVICE_KEY] = "portal"
    queue = WebhookQueue(container.payments(), container.webhook_stats(),
                         container.coordination().inbox)
    app[WEBHOOK_QUEUE_KEY] = queue
    app.on_startup.append(queue.start)
    app.on_shutdown.append(queue.stop)
    settings = container.settings()
    store = container.store()
    app[TRUSTED_PROXIES_KEY] = trusted_networks(settings.trusted_proxies)

    def load_user(user_id: str) -> dict | None:
        with store.portal(write=False) as uow:
            return uow.users.get(user_id)

    sessions.install(app, secret=settings.session_secret,
                     secure=settings.public_url.startswith("https://"), load_user=load_user,
                     revoke=container.accounts().end_session)
    report_leads(app, container)
    api_auth.install(app, container.api_tokens(), container.clock())
    app.router.add_get("/health", health)
    app.router.add_post("/api/webhooks/mercadopago", mercadopago_webhook)
    # The original's path, for Mercado Pago dashboards configured before the move.
    app.router.add_post("/webhooks/mercadopago", mercadopago_webhook)
    api_routes.add_routes(app, container)
    auth_routes.add_routes(app, container)
    pages.add_routes(app, container)
    return app
