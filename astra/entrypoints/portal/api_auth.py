"""`Authorization: Bearer astra_pat_...` on /api/*: a seller's personal API token instead of the
session cookie.

A browser never attaches this header by itself to a cross-site request, so a token needs no CSRF
token; the cookie, if one came too, is ignored (the token decides who is calling). The answers:
401 for a malformed, unknown or revoked token (nothing says which), 403 when a `read` token asks to
change something or when any token asks to manage tokens (that stays with a logged-in person;
the routes that move money, hand out credentials or set the bot token or the outgoing webhook
refuse tokens too, in `reauth`),
429 when a client keeps sending bad tokens (like failed logins) or a token calls too fast. The
token never reaches a log: the logger redacts `Bearer ...` and `astra_pat_...` wherever they
appear (see astra/logs.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

from aiohttp import web

from astra.domain.services.accounts import _Window
from astra.domain.services.api_tokens import ApiTokenService
from astra.entrypoints.instance_turns import run_blocking
from astra.entrypoints.middleware import client_address, json_error
from astra.entrypoints.portal import sessions
from astra.ports.clock import Clock

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

TOKEN_KEY = web.RequestKey("api_token", object)
# Routes a token may not use whatever its scope: a stolen token must not mint more tokens.
SESSION_ONLY_PREFIXES = ("/api/me/tokens",)

# Bad tokens per client address within the window, then 429 (the login's per-client limit).
MAX_FAILURES = 20
FAILURE_WINDOW = timedelta(minutes=10)
# Requests per token within the window: generous for a script, a brake on a runaway loop.
MAX_REQUESTS = 300
REQUEST_WINDOW = timedelta(minutes=1)


class BearerAuth:
    def __init__(self, tokens: ApiTokenService, clock: Clock) -> None:
        self.tokens = tokens
        self.clock = clock
        self.failures = _Window(FAILURE_WINDOW, max_keys=10_000)
        self.requests = _Window(REQUEST_WINDOW, max_keys=10_000)

    @staticmethod
    def applies(request: web.Request) -> bool:
        return "Authorization" in request.headers and request.path.startswith("/api/")

    @staticmethod
    def _too_many(retry_after: int, message: str) -> web.Response:
        response = json_error(429, "too_many_requests", message)
        response.headers["Retry-After"] = str(max(1, retry_after))
        return response

    async def __call__(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        now = self.clock.now()
        client = client_address(request)
        wait = self.failures.retry_after(client, now, MAX_FAILURES)
        if wait:
            return self._too_many(wait, "Too many invalid API tokens. Try again later.")
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        found = None
        if scheme.lower() == "bearer" and token.strip():
            found = await run_blocking(self.tokens.authenticate, token.strip())
        if found is None:
            self.failures.add(client, now)
            response = json_error(401, "invalid_token", "Invalid or revoked API token.")
            response.headers["WWW-Authenticate"] = 'Bearer realm="astra"'
            return response
        user, doc = found
        request[sessions.USER_KEY] = user
        request[sessions.SESSION_KEY] = None
        request[TOKEN_KEY] = doc
        if request.path.startswith(SESSION_ONLY_PREFIXES):
            return json_error(403, "session_required",
                              "API tokens are managed in the portal (Conta), not with a token.")
        if request.method not in sessions.SAFE_METHODS and doc.get("scope") != "read-write":
            return json_error(403, "read_only_token",
                              "This API token is read-only: it cannot change anything.")
        wait = self.requests.retry_after(doc["id"], now, MAX_REQUESTS)
        if wait:
            return self._too_many(wait, "Too many requests with this API token. Slow down.")
        self.requests.add(doc["id"], now)
        return await handler(request)


def install(app: web.Application, tokens: ApiTokenService, clock: Clock) -> None:
    """Let the session middleware hand Bearer requests to the token check (it must run in its
    place: the CSRF rule is the session's)."""
    app[sessions.BEARER_KEY] = BearerAuth(tokens, clock)
