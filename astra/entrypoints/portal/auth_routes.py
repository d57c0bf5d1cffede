"""Portal accounts over HTTP: /auth/local/*, /auth/logout, /auth/discord[/callback], /api/me.

Registration and login take JSON (`{"email", "password", "name"}`; answered with the user and the
CSRF token) or an HTML form (answered with a 303 to `/dashboard`, or to a local `next`). Every
refusal is a 4xx JSON body `{"error": code, "message"}` in the visitor's language (cookie `lang`,
pt-BR by default); throttled logins also carry `Retry-After`.

Discord login is the OAuth2 authorization-code flow: `/auth/discord` sends the browser to Discord
with a random `state` that is also kept in a short-lived signed HttpOnly cookie; the callback
accepts only that state, exchanges the code, reads `/users/@me` and logs in (or links, when the
flow was started by a logged-in user).
"""

from __future__ import annotations

import hmac
import html
import secrets
import time
from typing import Any, TypeVar
from urllib.parse import quote, urlencode, urlsplit

import aiohttp
import orjson
from aiohttp import web

from astra.domain.errors import DomainError
from astra.domain.messages import DEFAULT_LANGUAGE, LANGUAGES, render
from astra.domain.services.accounts import public_user
from astra.domain.services.plans import plan_state
from astra.entrypoints.instance_turns import run_blocking
from astra.entrypoints.middleware import (
    client_address,
    json_error,
    json_response,
    loads_request_json,
    read_form,
)
from astra.entrypoints.portal import api_schemas as schemas
from astra.entrypoints.portal import openapi, sessions
from astra.logs import get_logger

log = get_logger("astra.portal.auth")

CONTAINER_KEY = web.AppKey("auth_container", object)

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
DEFAULT_LANDING = "/dashboard"
STATE_COOKIE = "astra_oauth_state"
STATE_COOKIE_PATH = "/auth/discord"
STATE_TTL_SECONDS = 600
# A different key than the session's, so a state cookie can never pass for a session.
STATE_KEY_SUFFIX = ":oauth-state"
DISCORD_SCOPES = "identify email"
DISCORD_TIMEOUT = aiohttp.ClientTimeout(total=15, connect=5)
MAX_DISCORD_BODY = 64 * 1024
USER_AGENT = "Astra-Portal/1.0"


class _Refusal(Exception):
    """A request refused with a status and a message code (rendered in the visitor's language)."""

    def __init__(self, status: int, code: str, **params: object) -> None:
        super().__init__(code)
        self.status = status
        self.code = code
        self.params = params


def _language(request: web.Request) -> str:
    wanted = request.cookies.get("lang", "")
    return wanted if wanted in LANGUAGES else DEFAULT_LANGUAGE


def _client(request: web.Request) -> str:
    return client_address(request)


_R = TypeVar("_R", bound=web.StreamResponse)


def _no_store(response: _R) -> _R:
    response.headers["Cache-Control"] = "no-store"
    return response


def _domain_error(request: web.Request, exc: DomainError) -> web.Response:
    response = json_error(exc.http_status, exc.code, exc.message(_language(request)))
    retry_after = getattr(exc, "retry_after", None)
    if retry_after:
        response.headers["Retry-After"] = str(int(retry_after))
    return response


def _refusal(request: web.Request, refusal: _Refusal) -> web.Response:
    message = render(refusal.code, _language(request), **refusal.params)
    return json_error(refusal.status, refusal.code, message)


def _redirect(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location, "Cache-Control": "no-store"})


def _safe_next(value: object) -> str:
    """A local path to land on after a form login; anything else (another site) is ignored."""
    if (
        isinstance(value, str)
        and value.startswith("/")
        and not value.startswith(("//", "/\\"))
        and len(value) <= 512
        and value.isprintable()
    ):
        return value
    return DEFAULT_LANDING


def _same_origin(request: web.Request) -> bool:
    """False for a form posted from another site (login CSRF: being logged in as the attacker).

    Browsers send `Origin` with every form POST; a request without one is not a browser's."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    netloc = urlsplit(origin).netloc
    public = urlsplit(_container(request).settings().public_url).netloc
    return bool(netloc) and netloc in (request.host, public)


async def _read_fields(request: web.Request) -> tuple[dict[str, Any], bool]:
    """The body's fields and whether they came from an HTML form."""
    if request.content_type in FORM_TYPES:
        if not _same_origin(request):
            raise _Refusal(403, "cross_site_form")
        form = await read_form(request)
        return {k: v for k, v in form.items() if isinstance(v, str)}, True
    if request.content_type == "application/json":
        try:
            data = loads_request_json(await request.read())
        except ValueError:  # malformed (UnicodeDecodeError too), or nested too deeply
            raise _Refusal(400, "malformed_json") from None
        if not isinstance(data, dict):
            raise _Refusal(400, "malformed_json")
        return data, False
    raise _Refusal(415, "unsupported_body")


def _container(request: web.Request) -> Any:
    return request.app[CONTAINER_KEY]


def _signed_in(
    request: web.Request, user: dict[str, Any], *, form: bool, landing: str, status: int = 200
) -> web.Response:
    if form:
        response = _redirect(landing)
        sessions.start_session(request, response, user)
        return response
    response = web.Response(status=status, content_type="application/json")
    csrf = sessions.start_session(request, response, user)
    response.body = orjson.dumps({"user": public_user(user), "csrf_token": csrf})
    return _no_store(response)


# -- local accounts ---------------------------------------------------------------------------


async def register(request: web.Request) -> web.Response:
    try:
        fields, form = await _read_fields(request)
    except _Refusal as refusal:
        return _refusal(request, refusal)
    accounts = _container(request).accounts()
    try:
        user = await run_blocking(
            accounts.register,
            fields.get("email"),
            fields.get("password"),
            fields.get("name"),
            client=_client(request),
        )
    except DomainError as exc:
        return _domain_error(request, exc)
    log.info("portal.registered", user_id=user["id"])
    return _signed_in(request, user, form=form, landing=_safe_next(fields.get("next")), status=201)


async def login(request: web.Request) -> web.Response:
    try:
        fields, form = await _read_fields(request)
    except _Refusal as refusal:
        return _refusal(request, refusal)
    accounts = _container(request).accounts()
    try:
        user = await run_blocking(
            accounts.authenticate,
            fields.get("email"),
            fields.get("password"),
            client=_client(request),
        )
    except DomainError as exc:
        return _domain_error(request, exc)
    return _signed_in(request, user, form=form, landing=_safe_next(fields.get("next")))


async def logout(request: web.Request) -> web.Response:
    # With a session, the CSRF middleware has already checked the token: a third-party page
    # cannot log anyone out.
    form = request.content_type in FORM_TYPES
    response = _redirect("/") if form else json_response({"ok": True})
    await sessions.end_session(request, response)
    return _no_store(response)


async def change_password(request: web.Request) -> web.Response:
    user = sessions.current_user(request)
    if user is None:
        return json_error(401, "unauthenticated", "Log in first.")
    try:
        fields, form = await _read_fields(request)
    except _Refusal as refusal:
        return _refusal(request, refusal)
    accounts = _container(request).accounts()
    try:
        updated = await run_blocking(
            accounts.change_password,
            user["id"],
            fields.get("current_password"),
            fields.get("new_password"),
            client=_client(request),
        )
    except DomainError as exc:
        return _domain_error(request, exc)
    # Every other session ended with the old session version; this one carries on with a new
    # cookie (and a new CSRF token).
    return _signed_in(request, updated, form=form, landing=_safe_next(fields.get("next")))


@sessions.require_user
async def me(request: web.Request) -> web.Response:
    user = sessions.current_user(request)
    assert user is not None
    now = _container(request).clock().now()
    return _no_store(
        json_response(
            {
                "user": public_user(user),
                "plan": plan_state(user, now),
                "csrf_token": sessions.csrf_token(request),
            }
        )
    )


# -- Discord OAuth2 ---------------------------------------------------------------------------


def _wants_html(request: web.Request) -> bool:
    return "text/html" in request.headers.get("Accept", "")


def _oauth_error(
    request: web.Request, status: int, code: str, message: str | None = None
) -> web.Response:
    """A browser arriving from Discord gets a page; an API client gets JSON."""
    message = message or render(code, _language(request))
    if _wants_html(request):
        title = "Astra"
        body = (
            f'<!doctype html><html lang="{_language(request)}"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{title}</title></head><body><main><h1>{title}</h1>"
            f'<p role="alert">{html.escape(message)}</p>'
            f'<p><a href="/login">Voltar / Back</a></p></main></body></html>'
        )
        response = web.Response(status=status, text=body, content_type="text/html", charset="utf-8")
    else:
        response = json_error(status, code, message)
    response.del_cookie(STATE_COOKIE, path=STATE_COOKIE_PATH)
    return _no_store(response)


def _redirect_uri(request: web.Request) -> str:
    base = _container(request).settings().public_url.rstrip("/")
    if not base:
        base = f"{request.scheme}://{request.host}"
    return f"{base}/auth/discord/callback"


def _state_key(request: web.Request) -> str:
    return request.app[sessions.SECRET_KEY] + STATE_KEY_SUFFIX


async def discord_start(request: web.Request) -> web.Response:
    settings = _container(request).settings()
    if not settings.discord_client_id:
        return _oauth_error(request, 404, "discord_oauth_disabled")
    state = secrets.token_urlsafe(24)
    user = sessions.current_user(request)
    cookie = sessions.sign(
        _state_key(request),
        {"state": state, "uid": user["id"] if user else None, "iat": int(time.time())},
    )
    query = urlencode(
        {
            "response_type": "code",
            "client_id": settings.discord_client_id,
            "scope": DISCORD_SCOPES,
            "state": state,
            "redirect_uri": _redirect_uri(request),
        },
        quote_via=quote,
    )
    response = _redirect(f"{settings.discord_oauth_base.rstrip('/')}/oauth2/authorize?{query}")
    response.set_cookie(
        STATE_COOKIE,
        cookie,
        max_age=STATE_TTL_SECONDS,
        httponly=True,
        # Lax: the cookie must come back on the top-level redirect from discord.com.
        samesite="Lax",
        secure=request.app[sessions.SECURE_KEY],
        path=STATE_COOKIE_PATH,
    )
    return response


def _checked_state(request: web.Request) -> dict[str, Any] | None:
    raw = request.cookies.get(STATE_COOKIE)
    sent = request.query.get("state", "")
    if not raw or not sent:
        return None
    payload = sessions.unsign(_state_key(request), raw)
    if payload is None or not isinstance(payload.get("state"), str):
        return None
    if time.time() - float(payload.get("iat", 0)) > STATE_TTL_SECONDS:
        return None
    if not hmac.compare_digest(sent.encode(), payload["state"].encode()):
        return None
    user = sessions.current_user(request)
    # Linking is decided when the flow starts; a session that changed since is not trusted.
    if payload.get("uid") != (user["id"] if user else None):
        return None
    return payload


async def _discord_json(response: aiohttp.ClientResponse) -> Any:
    raw = await response.content.read(MAX_DISCORD_BODY + 1)
    if len(raw) > MAX_DISCORD_BODY:
        raise ValueError("answer too large")
    return orjson.loads(raw) if raw else None


async def _discord_profile(request: web.Request, code: str) -> dict[str, Any]:
    """Exchange the code and read the user; _Refusal(502) when Discord cannot be used."""
    settings = _container(request).settings()
    token_url = f"{settings.discord_oauth_base.rstrip('/')}/api/oauth2/token"
    me_url = f"{settings.discord_api_base.rstrip('/')}/users/@me"
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": _redirect_uri(request),
        "client_id": settings.discord_client_id,
        "client_secret": settings.discord_client_secret,
    }
    headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
    try:
        async with aiohttp.ClientSession(timeout=DISCORD_TIMEOUT, headers=headers) as http:
            async with http.post(token_url, data=form) as resp:
                body = await _discord_json(resp)
                if (
                    resp.status == 400
                    and isinstance(body, dict)
                    and body.get("error") == "invalid_grant"
                ):
                    raise _Refusal(400, "oauth_code_invalid")
                if (
                    resp.status != 200
                    or not isinstance(body, dict)
                    or not isinstance(body.get("access_token"), str)
                ):
                    log.warning("portal.discord_token_failed", status=resp.status)
                    raise _Refusal(502, "discord_unavailable")
                token = body["access_token"]
            async with http.get(me_url, headers={"Authorization": f"Bearer {token}"}) as resp:
                profile = await _discord_json(resp)
                if resp.status != 200 or not isinstance(profile, dict):
                    log.warning("portal.discord_me_failed", status=resp.status)
                    raise _Refusal(502, "discord_unavailable")
    except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
        log.warning("portal.discord_unreachable", error=type(exc).__name__)
        raise _Refusal(502, "discord_unavailable") from None
    return profile


async def discord_callback(request: web.Request) -> web.Response:
    container = _container(request)
    if not container.settings().discord_client_id:
        return _oauth_error(request, 404, "discord_oauth_disabled")
    payload = _checked_state(request)
    if payload is None:
        return _oauth_error(request, 400, "oauth_state_mismatch")
    if "error" in request.query:  # the person pressed "Cancel" on Discord
        return _oauth_error(request, 400, "oauth_denied")
    code = request.query.get("code", "")
    if not code or len(code) > 512 or not code.isprintable():
        return _oauth_error(request, 400, "oauth_code_invalid")
    try:
        profile = await _discord_profile(request, code)
    except _Refusal as refusal:
        return _oauth_error(request, refusal.status, refusal.code)
    accounts = container.accounts()
    linking = payload.get("uid")
    try:
        if linking:
            user = await run_blocking(accounts.link_discord, linking, profile)
        else:
            user = await run_blocking(accounts.login_with_discord, profile)
    except DomainError as exc:
        return _oauth_error(request, exc.http_status, exc.code, exc.message(_language(request)))
    response = _redirect(DEFAULT_LANDING)
    response.del_cookie(STATE_COOKIE, path=STATE_COOKIE_PATH)
    if not linking:
        sessions.start_session(request, response, user)
    return response


def add_routes(app: web.Application, container: Any) -> None:
    app[CONTAINER_KEY] = container
    app.router.add_post("/auth/local/register", openapi.describe(
        register, body=schemas.REGISTER, urlencoded=schemas.REGISTER,
        response=schemas.SESSION_STARTED, status=201, errors=(403, 409, 415, 429),
        authenticated=False))
    app.router.add_post("/auth/local/login", openapi.describe(
        login, body=schemas.LOGIN, urlencoded=schemas.LOGIN, response=schemas.SESSION_STARTED,
        errors=(401, 403, 415, 429), authenticated=False))
    app.router.add_post("/auth/local/change-password", change_password)
    app.router.add_post("/auth/logout", logout)
    app.router.add_get("/api/me", me)
    app.router.add_get("/auth/discord", discord_start)
    app.router.add_get("/auth/discord/callback", discord_callback)
