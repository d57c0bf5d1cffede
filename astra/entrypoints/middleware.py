"""aiohttp middlewares shared by the portal and the admin apps.

Every error leaves as JSON with a clear message for API clients: aiohttp's own 4xx (bad method,
unknown route, body too large) keep their status; anything unexpected becomes a 500 whose body
names no internals, while the log keeps the traceback (through the redacting logger).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from astra.domain.errors import DomainError
from astra.logs import get_logger

log = get_logger("astra.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_response(data: object, status: int = 200) -> web.Response:
    # Exactly `application/json`: some clients (interactions.py among them) decode nothing else.
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


async def read_form(request: web.Request) -> Any:
    """The request's form (urlencoded or multipart). A malformed body (a multipart without its
    boundary, say) is the client's mistake: 400, not a crash."""
    try:
        return await request.post()
    except (ValueError, UnicodeDecodeError, HttpProcessingError) as exc:
        # HttpProcessingError: a part whose headers do not parse (aiohttp's InvalidHeader).
        raise web.HTTPBadRequest(reason="Malformed form body") from exc


def json_error(status: int, code: str, message: str) -> web.Response:
    return json_response({"error": code, "message": message}, status=status)


@web.middleware
async def errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except DomainError as exc:
        # A rule said no: its status and its message (pt-BR), nothing changed.
        return json_response({"error": exc.code, "message": exc.message()},
                             status=exc.http_status)
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type == "application/json":
            raise
        return json_error(exc.status, exc.reason.lower().replace(" ", "_"), exc.reason)
    except Exception:
        log.exception("http.unhandled", method=request.method, path=request.path)
        return json_error(500, "internal_error", "Erro interno. Tente novamente em instantes.")


# A request (reading its body included) gets this long. A client that trickles its body holds a
# connection and a task: it gets 408. A handler that hangs (an upstream that never answers past
# its own timeout) gets 503; the store's commits run in threads and finish whole either way.
REQUEST_TIMEOUT_SECONDS = 30.0


@web.middleware
async def request_timeout(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        async with asyncio.timeout(REQUEST_TIMEOUT_SECONDS):
            return await handler(request)
    except TimeoutError:
        if request.body_exists and not request.content.at_eof():
            log.warning("http.body_timeout", method=request.method, path=request.path)
            return json_error(408, "request_timeout", "O envio da requisição demorou demais.")
        log.warning("http.handler_timeout", method=request.method, path=request.path)
        return json_error(503, "timeout", "Tempo esgotado. Tente novamente em instantes.")


# Every response, pages or API, errors included: what a browser must not do with it. Pages set
# their own Content-Security-Policy (with their scripts and styles); anything else gets none.
_SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'; base-uri 'none'",
    "Cross-Origin-Opener-Policy": "same-origin",
}


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in _SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if request.secure or request.headers.get("X-Forwarded-Proto") == "https":
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
