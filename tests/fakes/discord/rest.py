"""The REST API's plumbing: body parsing (JSON or multipart with payload_json + files[n]), the
bot-token check, recording every call, injected 429s and failures, and Discord-shaped errors.
The routes themselves live in rest_guilds.py, rest_messages.py and rest_interactions.py."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from . import permissions as P
from .entities import Channel, Guild, StoredFile
from .errors import (
    ApiError,
    invalid_json,
    json_response,
    missing_access,
    missing_permissions,
    unauthorized,
)
from .ratelimit import normal_headers
from .state import World

if TYPE_CHECKING:
    from .fake import FakeDiscord

API = "/api/v10"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# Routes that authenticate with the token in the URL (or need no auth at all).
# Where the middleware leaves the parsed body for the route (web.RequestKey on aiohttp >= 3.13).
BODY: Any = web.RequestKey("body", object) if hasattr(web, "RequestKey") else "fake_discord_body"
NO_AUTH = re.compile(r"^/(webhooks/\d+/[^/]+|interactions/\d+/[^/]+/callback|gateway$)")


@dataclass
class UploadedFile:
    index: int
    filename: str
    content_type: str
    data: bytes


@dataclass
class Body:
    json: Any = None
    files: list[UploadedFile] = field(default_factory=list)
    multipart: bool = False


@dataclass
class RestCall:
    """One REST request as the fake saw it (Authorization masked)."""

    method: str
    path: str  # after /api/v10, e.g. "/channels/123/messages"
    query: dict[str, str]
    json: Any
    files: list[dict[str, Any]]
    headers: dict[str, str]
    status: int = 0
    at: float = field(default_factory=time.time)  # when the fake received it (wall clock)


@dataclass
class ForcedFailure:
    remaining: int
    status: int
    code: int
    message: str
    path_contains: str | None


async def parse_body(request: web.Request) -> Body:
    if request.content_type == "multipart/form-data":
        body = Body(multipart=True)
        form = await request.post()
        for name, value in form.items():
            if name == "payload_json":
                text = value if isinstance(value, str) else value.file.read().decode()
                try:
                    body.json = json.loads(text)
                except ValueError:
                    raise invalid_json() from None
            elif (match := re.fullmatch(r"files\[(\d+)\]", name)) and hasattr(value, "file"):
                body.files.append(UploadedFile(
                    int(match.group(1)), value.filename or f"file{match.group(1)}",
                    value.content_type or "application/octet-stream", value.file.read()))
        return body
    raw = await request.read()
    if not raw.strip():
        return Body()
    try:
        return Body(json=json.loads(raw))
    except ValueError:
        raise invalid_json() from None


def body_of(request: web.Request) -> Body:
    return request[BODY]


def json_of(request: web.Request) -> dict[str, Any]:
    data = body_of(request).json
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise invalid_json()
    return data


def ok(body: Any, status: int = 200) -> web.Response:
    return json_response(body, status)


class RestCore:
    """What every route module shares: the fake's world, permission checks, file handling."""

    def __init__(self, fake: FakeDiscord) -> None:
        self.fake = fake
        self.world: World = fake.world

    # --- permissions of the bot (Discord checks them on every call) --------------------------

    def bot_guild_permissions(self, guild: Guild) -> int:
        member = guild.members.get(self.world.bot.id)
        if member is None:
            raise missing_access()
        return self.world.guild_permissions(guild, member)

    def require_guild(self, guild: Guild, bits: int) -> int:
        perms = self.bot_guild_permissions(guild)
        if self.fake.enforce_permissions and perms & bits != bits:
            raise missing_permissions()
        return perms

    def require_channel(self, channel: Channel, bits: int = 0) -> int:
        if channel.guild_id is None:
            return P.ALL
        perms = self.world.permissions_in(channel, self.world.bot.id)
        if not self.fake.enforce_permissions:
            return perms
        if not perms & P.VIEW_CHANNEL:
            raise missing_access()
        if perms & bits != bits:
            raise missing_permissions()
        return perms

    # --- uploads ----------------------------------------------------------------------------

    def attachments_from(self, body: Body, payload: dict[str, Any], *, folder: str,
                         ephemeral: bool = False,
                         sink: list[Any] | None = None) -> list[dict[str, Any]]:
        """Store files[n] and render them as attachment objects (descriptions and filenames
        from the payload's "attachments": [{"id": n, ...}])."""
        meta = {str(a.get("id")): a for a in payload.get("attachments") or []
                if isinstance(a, dict)}
        found = []
        for upload in sorted(body.files, key=lambda f: f.index):
            info = meta.get(str(upload.index), {})
            # Discord types a file by its content/extension, not by a generic part header.
            given = upload.content_type.split(";")[0].strip()
            content_type = None if given in ("", "application/octet-stream") else given
            if content_type and content_type.startswith("text/"):
                content_type += "; charset=utf-8"
            stored: StoredFile = self.world.store_file(
                info.get("filename") or upload.filename, upload.data, content_type,
                folder=folder)
            if sink is not None:
                sink.append(stored)
            found.append(self.world.attachment_json(stored, description=info.get("description"),
                                                    ephemeral=ephemeral))
        return found


def build_app(fake: FakeDiscord,
              register: list[Callable[[web.UrlDispatcher], None]]) -> web.Application:
    app = web.Application(middlewares=[_middleware_for(fake)], client_max_size=26 * 1024 * 1024)
    for add in register:
        add(app.router)
    return app


def _middleware_for(fake: FakeDiscord) -> Any:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith(API + "/"):
            return await handler(request)
        path = request.path[len(API):]
        headers = {k: v for k, v in request.headers.items() if k.lower() != "authorization"}
        if "Authorization" in request.headers:
            scheme = request.headers["Authorization"].split(" ", 1)[0]
            headers["Authorization"] = f"{scheme} ***"
        call = RestCall(request.method, path, dict(request.query), None, [], headers)
        fake.calls.append(call)
        bucket_key = _bucket_key(request)
        parse_error: ApiError | None = None
        try:
            body = await parse_body(request)
        except ApiError as exc:
            body, parse_error = Body(), exc
        request[BODY] = body
        call.json = body.json
        call.files = [{"index": f.index, "filename": f.filename,
                       "content_type": f.content_type, "size": len(f.data)} for f in body.files]
        try:
            if not NO_AUTH.match(path) and not _authorized(request, fake.world.bot_token):
                raise unauthorized()
            if (limited := fake.rate_limiter.check(request.method, path, bucket_key)) is not None:
                raise limited
            if (forced := _forced_failure(fake, path)) is not None:
                raise forced
            if parse_error is not None:
                raise parse_error
            try:
                response = await handler(request)
            except web.HTTPNotFound:
                raise ApiError(404, 0, "404: Not Found") from None
            except web.HTTPMethodNotAllowed:
                raise ApiError(405, 0, "405: Method Not Allowed") from None
        except ApiError as exc:
            response = exc.response()
        if response.status < 300 and _lost_answer(fake, request.method, path):
            # Carried out, but the connection drops before the answer: the caller cannot tell.
            call.status = 0
            fake.world.changed()
            if request.transport is not None:
                request.transport.close()
            raise ConnectionResetError("fake Discord dropped the connection")
        if response.status != 429:
            for key, value in normal_headers(bucket_key).items():
                response.headers.setdefault(key, value)
        call.status = response.status
        fake.world.changed()
        return response

    return middleware


def _authorized(request: web.Request, token: str) -> bool:
    return request.headers.get("Authorization", "") == f"Bot {token}"


def _bucket_key(request: web.Request) -> str:
    info = request.match_info
    route = getattr(info, "route", None)
    resource = getattr(route, "resource", None)
    template = resource.canonical if resource is not None else request.path
    major = ""
    for key in ("channel_id", "guild_id"):
        if key in info:
            major = f"{key}={info[key]}"
            break
    else:
        if "token" in info:
            major = f"token={info.get('app_id') or info.get('interaction_id')}/{info['token']}"
    return f"{request.method} {template} {major}"


def _forced_failure(fake: FakeDiscord, path: str) -> ApiError | None:
    for rule in fake.forced_failures:
        if rule.remaining > 0 and (rule.path_contains is None or rule.path_contains in path):
            rule.remaining -= 1
            fake.forced_failures = [r for r in fake.forced_failures if r.remaining > 0]
            return ApiError(rule.status, rule.code, rule.message)
    return None


def _lost_answer(fake: FakeDiscord, method: str, path: str) -> bool:
    for rule in fake.lost_answers:
        if rule["remaining"] > 0 and rule["method"] in (None, method) and \
                (rule["path_contains"] is None or rule["path_contains"] in path):
            rule["remaining"] -= 1
            return True
    return False
