"""A local stand-in for Discord's OAuth2 authorization-code flow.

Written from Discord's public OAuth2 documentation (docs/topics/oauth2, "Authorization Code
Grant"): the routes are Discord's own paths, so an app pointed at `base_url` instead of
https://discord.com (DISCORD_OAUTH_BASE) and `api_base` instead of https://discord.com/api/v10
(DISCORD_API_BASE) runs its real flow against it:

- `GET /oauth2/authorize?response_type=code&client_id&scope&state&redirect_uri` — no consent
  screen: approves at once as the configured user and redirects to
  `redirect_uri?code=...&state=...` (or `?error=access_denied&state=...` when told to deny);
- `POST /api/oauth2/token` (also `/api/v10/oauth2/token`) — form-encoded only, client
  credentials as HTTP Basic or `client_id`/`client_secret` fields; `grant_type=authorization_code`
  with a one-time `code` and the same `redirect_uri` as the authorization. Answers
  `{"access_token", "token_type": "Bearer", "expires_in", "refresh_token", "scope"}`, or an RFC 6749
  error (`invalid_request`, `invalid_client` 401, `invalid_grant`, `unsupported_grant_type`);
- `GET /api/v10/users/@me` with `Authorization: Bearer <access token>` — the user object
  (`id`, `username`, `discriminator`, `global_name`, `avatar`, and `email`/`verified` only when
  the `email` scope was granted).

Tests steer it with `set_user(...)`, `fail_token(status)`, `deny_next()`, or from another process
with `POST /_fake/user`, `POST /_fake/fail-token` (`{"status": 500}` or `{"status": null}`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import secrets
import threading
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from aiohttp import web

__all__ = ["DEFAULT_USER", "FakeDiscordOAuth", "FakeDiscordOAuthThread", "Grant"]

CODE_LIFETIME = 600  # seconds
TOKEN_LIFETIME = 604_800  # what Discord's example answers

DEFAULT_USER: dict[str, Any] = {
    "id": "80351110224678912",
    "username": "nelly",
    "discriminator": "0",
    "global_name": "Nelly",
    "avatar": "8342729096ea3675442027381ff50dfe",
    "email": "nelly@example.com",
    "verified": True,
    "locale": "pt-BR",
    "mfa_enabled": False,
    "flags": 0,
    "public_flags": 0,
    "premium_type": 0,
}


@dataclass
class Grant:
    """One authorization: the code, then the tokens it was exchanged for."""

    code: str
    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    user: dict[str, Any]
    issued: float
    used: bool = False
    access_token: str | None = None
    refresh_token: str | None = None


@dataclass
class FakeDiscordOAuth:
    client_id: str = "1234567890123456789"
    client_secret: str = "fake-client-secret"
    # None accepts any redirect URI; a tuple holds the ones "registered" in the developer portal.
    redirect_uris: tuple[str, ...] | None = None
    user: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_USER))
    token_failure: int | None = None  # status the token endpoint answers with, when set
    deny: bool = False  # the next authorization is cancelled by the "user"
    grants: dict[str, Grant] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path)
    _runner: web.AppRunner | None = None
    base_url: str = ""

    # -- test controls ----------------------------------------------------------------------

    def set_user(self, **fields: Any) -> dict[str, Any]:
        """Who approves the next authorization: DEFAULT_USER with these fields changed."""
        self.user = {**DEFAULT_USER, **fields}
        return self.user

    def fail_token(self, status: int | None = 500) -> None:
        """Make the token endpoint answer `status` (None: work again)."""
        self.token_failure = status

    def deny_next(self) -> None:
        self.deny = True

    @property
    def oauth_base(self) -> str:
        """What DISCORD_OAUTH_BASE should be."""
        return self.base_url

    @property
    def api_base(self) -> str:
        """What DISCORD_API_BASE should be."""
        return f"{self.base_url}/api/v10"

    # -- lifecycle --------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._record])
        app.router.add_get("/oauth2/authorize", self.authorize)
        app.router.add_get("/api/oauth2/authorize", self.authorize)
        for prefix in ("/api", "/api/v10"):
            app.router.add_post(f"{prefix}/oauth2/token", self.token)
            app.router.add_get(f"{prefix}/users/@me", self.users_me)
        app.router.add_post("/_fake/user", self._control_user)
        app.router.add_post("/_fake/fail-token", self._control_fail_token)
        return app

    async def start(self, port: int = 0, host: str = "127.0.0.1") -> str:
        runner = web.AppRunner(self.app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        self._runner = runner
        sockets = site._server.sockets if site._server else ()  # type: ignore[union-attr]
        bound = sockets[0].getsockname()[1]
        self.base_url = f"http://{host}:{bound}"
        return self.base_url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeDiscordOAuth:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests.append((request.method, request.path))
        return await handler(request)

    # -- Discord's routes -------------------------------------------------------------------

    async def authorize(self, request: web.Request) -> web.Response:
        q = request.query
        redirect_uri = q.get("redirect_uri", "")
        if q.get("client_id") != self.client_id:
            return _json_error(400, "invalid_client", "Unknown application")
        if not redirect_uri.startswith(("http://", "https://")) or (
            self.redirect_uris is not None and redirect_uri not in self.redirect_uris
        ):
            # Discord shows an error page instead of redirecting to an unregistered URI.
            return _json_error(400, "invalid_request", "Invalid OAuth2 redirect_uri")
        if q.get("response_type") != "code":
            return self._back(redirect_uri, error="unsupported_response_type", state=q.get("state"))
        scopes = tuple(q.get("scope", "").split())
        if not scopes or ("identify" not in scopes and "email" not in scopes):
            return self._back(redirect_uri, error="invalid_scope", state=q.get("state"))
        if self.deny:
            self.deny = False
            return self._back(
                redirect_uri,
                error="access_denied",
                error_description="The resource owner or authorization server denied the request",
                state=q.get("state"),
            )
        code = secrets.token_urlsafe(22)
        self.grants[code] = Grant(
            code=code,
            client_id=self.client_id,
            redirect_uri=redirect_uri,
            scopes=scopes,
            user=dict(self.user),
            issued=time.monotonic(),
        )
        return self._back(redirect_uri, code=code, state=q.get("state"))

    @staticmethod
    def _back(redirect_uri: str, **params: str | None) -> web.Response:
        parts = urlsplit(redirect_uri)
        query = parse_qsl(parts.query, keep_blank_values=True)
        query += [(k, v) for k, v in params.items() if v is not None]
        location = urlunsplit(parts._replace(query=urlencode(query)))
        return web.Response(status=302, headers={"Location": location})

    async def token(self, request: web.Request) -> web.Response:
        if request.content_type != "application/x-www-form-urlencoded":
            return _json_error(400, "invalid_request", "Content-Type must be form-urlencoded")
        form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
        client_id, client_secret = _basic_auth(request) or (
            form.get("client_id", ""),
            form.get("client_secret", ""),
        )
        if client_id != self.client_id or client_secret != self.client_secret:
            return _json_error(401, "invalid_client", None)
        if self.token_failure is not None:
            return web.json_response(
                {"message": "fake failure", "code": 0}, status=self.token_failure
            )
        grant_type = form.get("grant_type")
        if grant_type == "refresh_token":
            return self._refresh(form.get("refresh_token", ""))
        if grant_type != "authorization_code":
            return _json_error(400, "unsupported_grant_type", None)
        code = form.get("code", "")
        if not code or "redirect_uri" not in form:
            return _json_error(400, "invalid_request", "Missing code or redirect_uri")
        grant = self.grants.get(code)
        if (
            grant is None
            or grant.used
            or time.monotonic() - grant.issued > CODE_LIFETIME
            or grant.client_id != client_id
        ):
            return _json_error(400, "invalid_grant", 'Invalid "code" in request.')
        if grant.redirect_uri != form["redirect_uri"]:
            return _json_error(400, "invalid_grant", 'Invalid "redirect_uri" in request.')
        grant.used = True
        return self._issue(grant)

    def _refresh(self, refresh_token: str) -> web.Response:
        for grant in self.grants.values():
            if refresh_token and grant.refresh_token == refresh_token:
                return self._issue(grant)
        return _json_error(400, "invalid_grant", None)

    @staticmethod
    def _issue(grant: Grant) -> web.Response:
        grant.access_token = secrets.token_urlsafe(22)
        grant.refresh_token = secrets.token_urlsafe(22)
        return web.json_response(
            {
                "access_token": grant.access_token,
                "token_type": "Bearer",
                "expires_in": TOKEN_LIFETIME,
                "refresh_token": grant.refresh_token,
                "scope": " ".join(grant.scopes),
            }
        )

    async def users_me(self, request: web.Request) -> web.Response:
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header.startswith("Bearer ") else ""
        grant = next((g for g in self.grants.values() if token and g.access_token == token), None)
        if grant is None:
            return web.json_response({"message": "401: Unauthorized", "code": 0}, status=401)
        user = {k: v for k, v in grant.user.items() if k not in ("email", "verified")}
        if "email" in grant.scopes:
            user["email"] = grant.user.get("email")
            user["verified"] = bool(grant.user.get("verified"))
        return web.json_response(user)

    # -- controls over HTTP -----------------------------------------------------------------

    async def _control_user(self, request: web.Request) -> web.Response:
        fields = await request.json()
        return web.json_response(self.set_user(**fields))

    async def _control_fail_token(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.fail_token(body.get("status"))
        return web.json_response({"status": self.token_failure})


def _json_error(status: int, error: str, description: str | None) -> web.Response:
    body: dict[str, Any] = {"error": error}
    if description:
        body["error_description"] = description
    return web.json_response(body, status=status)


def _basic_auth(request: web.Request) -> tuple[str, str] | None:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Basic "):
        return None
    try:
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user, password


class FakeDiscordOAuthThread:
    """The fake on an event loop thread of its own, for synchronous tests (browser tests)."""

    def __init__(self, fake: FakeDiscordOAuth | None = None, **kwargs: Any) -> None:
        self.fake = fake if fake is not None else FakeDiscordOAuth(**kwargs)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="fake-discord-oauth", daemon=True
        )

    def start(self, port: int = 0) -> str:
        self._thread.start()
        return self.call(self.fake.start(port))

    def call(self, coro: Coroutine[Any, Any, Any], timeout: float = 30.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def stop(self) -> None:
        self.call(self.fake.stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
