"""aiohttp middlewares shared by the portal and the admin apps.

Every error leaves as JSON with a clear message for API clients: aiohttp's own 4xx (bad method,
unknown route, body too large) keep their status; anything unexpected becomes a 500 whose body
names no internals, while the log keeps the traceback (through the redacting logger).
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import orjson
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from astra.domain.errors import DomainError
from astra.logs import get_logger
from astra.ports.store import StoreBusy, StoreError, StoreUnavailable

log = get_logger("astra.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# The proxies whose X-Forwarded-For an app believes (ASTRA_TRUSTED_PROXIES), as networks.
TRUSTED_PROXIES_KEY = web.AppKey("trusted_proxies", tuple)

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def trusted_networks(items: Iterable[str]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(item, strict=False) for item in items)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None
    # An IPv4 client seen through an IPv6 socket is the same client.
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped or address


def client_address(request: web.Request) -> str:
    """The address rate limits and lockouts key on: the peer, or, when the peer is a trusted
    proxy, the nearest address in X-Forwarded-For that is not one (walking from the right, the
    part each proxy appended; what a client wrote on the left is never believed)."""
    trusted: tuple[IPNetwork, ...] = request.app.get(TRUSTED_PROXIES_KEY, ())
    peer = _address(request.remote or "")
    if peer is None:
        return request.remote or "unknown"

    def is_trusted(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        return any(address in network for network in trusted)

    if not trusted or not is_trusted(peer):
        return str(peer)
    hops = [h for line in request.headers.getall("X-Forwarded-For", ())
            for h in line.split(",")]
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            break  # garbage from here leftwards: the last proxy we trust is the client we know
        if not is_trusted(address):
            return str(address)
        peer = address
    return str(peer)


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


# No request of either API needs JSON nested deeper than this; anything deeper is refused before
# a validator, a repr() or an encoder recurses into it (RecursionError would be a 500).
MAX_JSON_DEPTH = 32


def json_depth_ok(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether `value` nests no deeper than `limit` (checked without recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return False
        stack.extend((child, depth + 1) for child in children)
    return True


def loads_request_json(raw: bytes) -> Any:
    """A request body's JSON; ValueError when it is malformed or nested too deep."""
    data = orjson.loads(raw)  # JSONDecodeError is a ValueError
    if not json_depth_ok(data):
        raise ValueError("JSON nested too deeply")
    return data


def json_error(status: int, code: str, message: str) -> web.Response:
    return json_response({"error": code, "message": message}, status=status)


def unavailable_response() -> web.Response:
    """503 for a database that does not answer now: retry shortly, nothing was done."""
    response = json_error(503, "store_unavailable",
                          "Serviço temporariamente indisponível. Tente de novo em instantes.")
    response.headers["Retry-After"] = str(StoreUnavailable.retry_after)
    return response


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
    except StoreBusy as exc:
        # One domain stuck (its lock not free in time): this request, not the platform.
        log.warning("http.store_busy", method=request.method, path=request.path,
                    domain=exc.domain)
        response = json_error(503, "busy", "Dados ocupados no momento. Tente de novo em instantes.")
        response.headers["Retry-After"] = "5"
        return response
    except StoreUnavailable as exc:
        # The database is down or restarting: every request is refused quickly and alike
        # until it is back (the log says it once, as database.down, and here per request).
        log.warning("http.database_unavailable", method=request.method, path=request.path,
                    error=str(exc)[:300])
        return unavailable_response()
    except StoreError as exc:
        # A damaged (quarantined) instance: its own requests fail, clearly; nobody else's do.
        log.error("http.store_unavailable", method=request.method, path=request.path,
                  error=str(exc))
        return json_error(503, "store_unavailable",
                          "Os dados desta loja estão indisponíveis. A equipe foi avisada.")
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
