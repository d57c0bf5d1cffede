"""Who may use the admin panel, and how much.

`Authorization: Bearer ADMIN_PANEL_TOKEN` (compared in constant time) or a login with
ADMIN_PANEL_USER / ADMIN_PANEL_PASSWORD gives full access; ADMIN_MONITOR_TOKEN, or a login in
monitor mode, gives read-only access (every write refused).

A login's cookie lives 12 hours, checked on the server (not only by the browser); it names the
credentials it was made with, so changing ADMIN_PANEL_PASSWORD, ADMIN_PANEL_TOKEN or
ADMIN_PANEL_USER (and restarting) ends every admin session; logging out ends that session in
the store, so a saved copy of the cookie is refused afterwards.

Failed logins count per (user name, client address): 5 in 10 minutes lock that pair for 15
minutes, so a stranger locks out only themselves. From an address the admin has logged in from
before (a known source), the same failures only slow it down (30 s), so an attacker who shares
it (a NAT, an office) cannot keep the owner out either. 20 failures from one address, whatever
the names, lock that address. The counters live in the coordination port's throttles when the
container gives them (the database, with replicas: every replica sees the same counts), else in
this object.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from astra.entrypoints.middleware import (
    client_address,
    json_error,
    json_response,
    loads_request_json,
)
from astra.entrypoints.portal.sessions import sign, unsign

COOKIE = "astra_admin"
MAX_AGE = 12 * 3600
MAX_FAILURES = 5
CLIENT_MAX_FAILURES = 20
FAILURE_WINDOW = 600.0
LOCK_SECONDS = 900.0
KNOWN_SOURCE_DELAY = 30.0
MAX_KNOWN_SOURCES = 20
MAX_TRACKED = 10_000  # failure counters kept in memory, so a flood cannot exhaust it
SESSIONS_DOC = "admin_sessions"  # in the portal's `meta`: ended sessions, known sources
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
    store: Any = None  # the platform store (portal `meta`); None: sessions end with the cookie
    throttles: Any = None  # the coordination port's Throttles; None: counters in memory
    failures: dict[Any, list[float]] = field(default_factory=dict)
    locked: dict[Any, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def generation(self) -> str:
        """A fingerprint of the credentials a login cookie was issued under: new credentials,
        a new generation, and every older cookie is refused."""
        material = "\0".join((self.user, self.password, self.token, self.monitor_token))
        return hmac.new(self.session_secret.encode(), b"admin-generation\0" + material.encode(),
                        hashlib.sha256).hexdigest()[:32]

    def bearer(self, value: str) -> str | None:
        """The role a bearer token grants (constant-time compares, both always made)."""
        admin = bool(self.token) and hmac.compare_digest(value.encode(), self.token.encode())
        monitor = bool(self.monitor_token) and hmac.compare_digest(
            value.encode(), self.monitor_token.encode())
        return "admin" if admin else "monitor" if monitor else None

    # -- lockout ------------------------------------------------------------------------------

    @staticmethod
    def _keys(user: str, client: str) -> tuple[str, str]:
        return f"admin-login:{user}\n{client}", f"admin-client:{client}"

    def locked_for(self, user: str, client: str, now: float) -> float:
        if self.throttles is not None:
            return max(0.0, *(self.throttles.locked_until(k) - now
                              for k in self._keys(user, client)))
        with self._lock:
            return max(0.0, self.locked.get((user, client), 0.0) - now,
                       self.locked.get(client, 0.0) - now)

    def fail(self, user: str, client: str, now: float, *, known: bool) -> None:
        if self.throttles is not None:
            lock = KNOWN_SOURCE_DELAY if known else LOCK_SECONDS
            for key, limit in zip(self._keys(user, client), (MAX_FAILURES, CLIENT_MAX_FAILURES),
                                  strict=True):
                self.throttles.add(key, now, FAILURE_WINDOW)
                if len(self.throttles.recent(key, now - FAILURE_WINDOW)) >= limit:
                    self.throttles.lock(key, now + lock)
                    self.throttles.clear(key)
            return
        with self._lock:
            if len(self.failures) > MAX_TRACKED:
                self._prune(now)
            for key, limit, lock in (((user, client), MAX_FAILURES,
                                      KNOWN_SOURCE_DELAY if known else LOCK_SECONDS),
                                     (client, CLIENT_MAX_FAILURES,
                                      KNOWN_SOURCE_DELAY if known else LOCK_SECONDS)):
                recent = [t for t in self.failures.get(key, []) if now - t < FAILURE_WINDOW]
                recent.append(now)
                self.failures[key] = recent
                if len(recent) >= limit:
                    self.locked[key] = now + lock
                    self.failures[key] = []

    def succeeded(self, user: str, client: str) -> None:
        if self.throttles is not None:
            self.throttles.clear(self._keys(user, client)[0])
            return
        with self._lock:
            self.failures.pop((user, client), None)

    def _prune(self, now: float) -> None:
        for key in [k for k, v in self.failures.items() if not v or now - v[-1] >= FAILURE_WINDOW]:
            del self.failures[key]
        for key in [k for k, until in self.locked.items() if until <= now]:
            del self.locked[key]
        while len(self.failures) > MAX_TRACKED:
            del self.failures[next(iter(self.failures))]

    # -- sessions and known sources, kept in the store so a restart forgets none ---------------

    def _doc(self, uow: Any) -> dict[str, Any]:
        return uow.meta.get(SESSIONS_DOC) or {"id": SESSIONS_DOC, "ended": {}, "sources": []}

    def session_ended(self, sid: str) -> bool:
        if self.store is None:
            return False
        with self.store.portal(write=False) as uow:
            return sid in self._doc(uow)["ended"]

    def end_session(self, sid: str, until: int) -> None:
        if self.store is None:
            return
        now = time.time()
        with self.store.portal() as uow:
            doc = self._doc(uow)
            # Forget sessions whose cookies have expired anyway: the document stays small.
            doc["ended"] = {k: v for k, v in doc["ended"].items() if v > now}
            doc["ended"][sid] = until
            uow.meta.put(doc)
            uow.commit()

    def known_source(self, client: str) -> bool:
        if self.store is None:
            return False
        with self.store.portal(write=False) as uow:
            return client in self._doc(uow)["sources"]

    def remember_source(self, client: str) -> None:
        if self.store is None:
            return
        with self.store.portal() as uow:
            doc = self._doc(uow)
            sources = [s for s in doc["sources"] if s != client] + [client]
            doc["sources"] = sources[-MAX_KNOWN_SOURCES:]
            uow.meta.put(doc)
            uow.commit()


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
        payload = unsign(access.session_secret, request.cookies[COOKIE], max_age=MAX_AGE)
        if (payload and payload.get("kind") == "admin"
                and isinstance(payload.get("sid"), str)
                and hmac.compare_digest(str(payload.get("gen", "")), access.generation)
                and not await asyncio.to_thread(access.session_ended, payload["sid"])):
            request[ADMIN_KEY] = {"name": payload["name"], "role": payload["role"],
                                "csrf": payload["csrf"], "sid": payload["sid"],
                                "iat": int(payload.get("iat", 0))}
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
    client = client_address(request)
    now = time.time()
    try:
        data = loads_request_json(await request.read())
        user, password = str(data.get("user", "")), str(data.get("password", ""))
        monitor = bool(data.get("monitor", False))
    except (ValueError, AttributeError):
        return json_error(400, "bad_request", "Send JSON {\"user\", \"password\"}.")
    name = user.strip().lower()[:64]
    wait = await asyncio.to_thread(access.locked_for, name, client, now)
    if wait:
        return web.Response(
            status=429, content_type="application/json",
            headers={"Retry-After": str(int(wait) + 1)},
            body=orjson.dumps({"error": "locked",
                               "message": "Muitas tentativas. Tente de novo mais tarde."}))
    good_user = hmac.compare_digest(user.encode(), access.user.encode())
    good_password = bool(access.password) and hmac.compare_digest(password.encode(),
                                                                  access.password.encode())
    if not (good_user and good_password):
        known = await asyncio.to_thread(access.known_source, client)
        await asyncio.to_thread(access.fail, name, client, now, known=known)
        return json_error(401, "invalid_credentials", "Usuário ou senha inválidos.")
    await asyncio.to_thread(access.succeeded, name, client)
    await asyncio.to_thread(access.remember_source, client)
    csrf = secrets.token_urlsafe(24)
    role = "monitor" if monitor else "admin"
    response = json_response({"ok": True, "role": role, "csrf_token": csrf})
    response.set_cookie(COOKIE, sign(access.session_secret, {
        "kind": "admin", "name": user, "role": role, "csrf": csrf,
        "sid": secrets.token_urlsafe(12), "gen": access.generation, "iat": int(time.time())}),
        httponly=True, samesite="Strict", secure=access.secure, path="/", max_age=MAX_AGE)
    return response


async def end_session(request: web.Request, response: web.StreamResponse) -> None:
    """Drop the cookie and, for a login session, end it in the store: a copy of the cookie
    saved before the logout is refused afterwards."""
    response.del_cookie(COOKIE, path="/")
    admin = request.get(ADMIN_KEY) or {}
    if admin.get("sid"):
        await asyncio.to_thread(request.app[ACCESS_KEY].end_session, admin["sid"],
                                admin["iat"] + MAX_AGE)


async def logout(request: web.Request) -> web.Response:
    response = json_response({"ok": True})
    await end_session(request, response)
    return response
