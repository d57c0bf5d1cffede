"""Portal sessions: a signed cookie, a CSRF token, and the user behind them.

The cookie holds {user id, session id, session version, CSRF token, issued at} signed with
PORTAL_SESSION_SECRET (HMAC-SHA256). Nothing secret is in it; changing the password bumps the
user's session version, which ends every other session. Logging out records the session id as
ended in the user's document, so a copy of the cookie (saved before the logout, stolen) is
refused from then on, in every process. State-changing requests that come with
the cookie must carry the CSRF token (`X-CSRF-Token` header or a `csrf_token` form field);
`GET /api/me` hands it to API clients.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from astra.entrypoints.instance_turns import run_blocking
from astra.entrypoints.middleware import json_error, read_form

COOKIE = "astra_session"
MAX_AGE = 7 * 24 * 3600
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Routes that authenticate otherwise (signatures, instance keys) or start a session.
CSRF_EXEMPT_PREFIXES = ("/api/webhooks/", "/webhooks/", "/auth/local/login",
                        "/auth/local/register", "/auth/discord")

SECRET_KEY = web.AppKey("session_secret", str)
SECURE_KEY = web.AppKey("session_secure", bool)
USERS_KEY = web.AppKey("session_users", object)  # callable(user_id) -> user doc | None
# callable(user_id, session id, until epoch seconds): ends one session for good.
REVOKE_KEY = web.AppKey("session_revoke", object)
USER_KEY = web.RequestKey("user", object)
SESSION_KEY = web.RequestKey("session", object)
# An `api_auth.BearerAuth` when the app accepts personal API tokens on /api/*.
BEARER_KEY = web.AppKey("bearer_auth", object)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(secret: str, payload: dict[str, Any]) -> str:
    body = _b64(orjson.dumps(payload))
    mac = hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest()
    return f"{body}.{_b64(mac)}"


def unsign(secret: str, value: str, max_age: int = MAX_AGE) -> dict[str, Any] | None:
    try:
        body, mac = value.split(".", 1)
        expected = hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, _unb64(mac)):
            return None
        payload = orjson.loads(_unb64(body))
    except (ValueError, orjson.JSONDecodeError):
        return None
    if not isinstance(payload, dict) or time.time() - float(payload.get("iat", 0)) > max_age:
        return None
    return payload


def start_session(request: web.Request, response: web.StreamResponse,
                  user: dict[str, Any]) -> str:
    """Put a new session for `user` on `response`; returns its CSRF token."""
    csrf = secrets.token_urlsafe(24)
    payload = {"uid": user["id"], "sid": secrets.token_urlsafe(12),
               "ver": int(user.get("session_version") or 0),
               "csrf": csrf, "iat": int(time.time())}
    response.set_cookie(COOKIE, sign(request.app[SECRET_KEY], payload), max_age=MAX_AGE,
                        httponly=True, samesite="Lax", secure=request.app[SECURE_KEY],
                        path="/")
    return csrf


def session_live(user: dict[str, Any], payload: dict[str, Any]) -> bool:
    """Whether a validly signed session still stands for this user: not blocked, same session
    version, and not ended by a logout."""
    sid = payload.get("sid")
    return (
        not user.get("blocked")
        and int(user.get("session_version") or 0) == int(payload.get("ver", -1))
        # A cookie from before session ids could not be ended one by one: it is not accepted.
        and isinstance(sid, str)
        and sid not in (user.get("revoked_sessions") or {})
    )


async def end_session(request: web.Request, response: web.StreamResponse) -> None:
    """Drop the cookie and end the session server-side, so a saved copy is refused too."""
    response.del_cookie(COOKIE, path="/")
    session = request.get(SESSION_KEY)
    if session:
        until = int(session.get("iat", 0)) + MAX_AGE
        await run_blocking(request.app[REVOKE_KEY], str(session["uid"]),
                                str(session["sid"]), until)


def current_user(request: web.Request) -> dict[str, Any] | None:
    return request.get(USER_KEY)


def csrf_token(request: web.Request) -> str | None:
    session = request.get(SESSION_KEY)
    return session.get("csrf") if session else None


@web.middleware
async def session_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    request[USER_KEY] = None
    request[SESSION_KEY] = None
    bearer = request.app.get(BEARER_KEY)
    if bearer is not None and bearer.applies(request) and \
            not request.path.startswith(CSRF_EXEMPT_PREFIXES):
        return await bearer(request, handler)  # a token, not the cookie, says who calls
    raw = request.cookies.get(COOKIE)
    if raw:
        payload = unsign(request.app[SECRET_KEY], raw)
        if payload is not None:
            load = request.app[USERS_KEY]
            user = await run_blocking(load, str(payload.get("uid")))
            if user is not None and session_live(user, payload):
                request[USER_KEY] = user
                request[SESSION_KEY] = payload
    if request.method not in SAFE_METHODS and request[SESSION_KEY] is not None and \
            not request.path.startswith(CSRF_EXEMPT_PREFIXES):
        sent = request.headers.get("X-CSRF-Token")
        if sent is None and request.content_type in ("application/x-www-form-urlencoded",
                                                     "multipart/form-data"):
            form = await read_form(request)
            value = form.get("csrf_token")
            sent = value if isinstance(value, str) else None
        if not sent or not hmac.compare_digest(sent, request[SESSION_KEY]["csrf"]):
            return json_error(403, "csrf_failed",
                              "Missing or wrong CSRF token (send X-CSRF-Token; see /api/me).")
    return await handler(request)


def require_user(handler: Handler) -> Handler:
    """401 for API clients, a redirect to the login page for browsers."""

    @functools.wraps(handler)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        if request.get(USER_KEY) is None:
            if request.path.startswith("/api/"):
                return json_error(401, "unauthenticated", "Log in first.")
            raise web.HTTPSeeOther(f"/login?next={request.path}")
        return await handler(request)

    return wrapper


def install(app: web.Application, *, secret: str, secure: bool,
            load_user: Callable[[str], dict[str, Any] | None],
            revoke: Callable[[str, str, int], None]) -> None:
    app[SECRET_KEY] = secret
    app[SECURE_KEY] = secure
    app[USERS_KEY] = load_user
    app[REVOKE_KEY] = revoke
    app.middlewares.append(session_middleware)
