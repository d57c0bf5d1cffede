"""Who may use the admin panel, and how much.

`Authorization: Bearer ADMIN_PANEL_TOKEN` (compared in constant time) or a login with
ADMIN_PANEL_USER / ADMIN_PANEL_PASSWORD gives full access; ADMIN_MONITOR_TOKEN, or a login in
monitor mode, gives read-only access (every write refused). Logins are limited to 5 failures per
10 minutes per client, then locked for 15 minutes.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import orjson
from aiohttp import web

from astra.entrypoints.middleware import json_error, json_response
from astra.entrypoints.portal.sessions import sign, unsign

COOKIE = "astra_admin"
MAX_FAILURES = 5
FAILURE_WINDOW = 600.0
LOCK_SECONDS = 900.0
PUBLIC = ("/health", "/admin/login", "/api/openapi.json")
SAFE = frozenset({"GET", "HEAD", "OPTIONS"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class AdminAccess:
    token: str
    monitor_token: str
    user: str
    password: str
    session_secret: str
    secure: bool
    failures: dict[str, list[float]] = field(default_factory=dict)
    locked: dict[str, float] = field(default_factory=dict)

    def bearer(self, value: str) -> str | None:
        """The role a bearer token grants (constant-time compares, both always made)."""
        admin = bool(self.token) and hmac.compare_digest(value.encode(), self.token.encode())
        monitor = bool(self.monitor_token) and hmac.compare_digest(
            value.encode(), self.monitor_token.encode())
        return "admin" if admin else "monitor" if monitor else None

    def locked_for(self, client: str, now: float) -> float:
        return max(0.0, self.locked.get(client, 0.0) - now)

    def fail(self, client: str, now: float) -> None:
        recent = [t for t in self.failures.get(client, []) if now - t < FAILURE_WINDOW]
        recent.append(now)
        self.failures[client] = recent
        if len(recent) >= MAX_FAILURES:
            self.locked[client] = now + LOCK_SECONDS
            self.failures[client] = []


ACCESS_KEY = web.AppKey("admin_access", AdminAccess)
ADMIN_KEY = web.RequestKey("admin", dict)


def actor(request: web.Request) -> str:
    return f"admin:{request[ADMIN_KEY]['name']}"


@web.middleware
async def admin_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    access = request.app[ACCESS_KEY]
    request[ADMIN_KEY] = None
    header = request.headers.get("Authorization", "")
    via_cookie = False
    if header.startswith("Bearer "):
        role = access.bearer(header[7:].strip())
        if role:
            request[ADMIN_KEY] = {"name": "token" if role == "admin" else "monitor", "role": role}
    elif request.cookies.get(COOKIE):
        payload = unsign(access.session_secret, request.cookies[COOKIE])
        if payload and payload.get("kind") == "admin":
            request[ADMIN_KEY] = {"name": payload["name"], "role": payload["role"],
                                "csrf": payload["csrf"]}
            via_cookie = True
    if request.path in PUBLIC or request.path.startswith("/static/"):
        return await handler(request)
    if request[ADMIN_KEY] is None:
        return json_error(401, "unauthenticated",
                          "Admin credentials required (Bearer token or /admin/login).")
    if request.method not in SAFE and request.path != "/admin/logout":
        # Logging out is not a write: monitor sessions may end themselves too.
        if request[ADMIN_KEY]["role"] != "admin":
            return json_error(403, "read_only", "Monitor mode is read-only.")
        if via_cookie and not hmac.compare_digest(request.headers.get("X-CSRF-Token", ""),
                                                  request[ADMIN_KEY]["csrf"]):
            return json_error(403, "csrf_failed", "Missing or wrong X-CSRF-Token.")
    return await handler(request)


async def login(request: web.Request) -> web.Response:
    access = request.app[ACCESS_KEY]
    client = request.remote or "unknown"
    now = time.monotonic()
    wait = access.locked_for(client, now)
    if wait:
        return web.Response(
            status=429, content_type="application/json",
            headers={"Retry-After": str(int(wait) + 1)},
            body=orjson.dumps({"error": "locked",
                               "message": "Muitas tentativas. Tente de novo mais tarde."}))
    try:
        data = await request.json()
        user, password = str(data.get("user", "")), str(data.get("password", ""))
        monitor = bool(data.get("monitor", False))
    except (ValueError, AttributeError):
        return json_error(400, "bad_request", "Send JSON {\"user\", \"password\"}.")
    good_user = hmac.compare_digest(user.encode(), access.user.encode())
    good_password = bool(access.password) and hmac.compare_digest(password.encode(),
                                                                  access.password.encode())
    if not (good_user and good_password):
        access.fail(client, now)
        return json_error(401, "invalid_credentials", "Usuário ou senha inválidos.")
    access.failures.pop(client, None)
    csrf = secrets.token_urlsafe(24)
    role = "monitor" if monitor else "admin"
    response = json_response({"ok": True, "role": role, "csrf_token": csrf})
    response.set_cookie(COOKIE, sign(access.session_secret, {
        "kind": "admin", "name": user, "role": role, "csrf": csrf, "iat": int(time.time())}),
        httponly=True, samesite="Strict", secure=access.secure, path="/", max_age=12 * 3600)
    return response


async def logout(request: web.Request) -> web.Response:
    response = json_response({"ok": True})
    response.del_cookie(COOKIE, path="/")
    return response
