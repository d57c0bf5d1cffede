"""Seller API: personal API tokens (Conta) — list, create (the token is in this answer only),
revoke. Managed with the session only: a token cannot list, mint or revoke tokens (`api_auth`),
and creating or revoking one takes the current password too (`reauth`)."""

from __future__ import annotations

from aiohttp import web

from astra.entrypoints.portal import api_schemas as schemas
from astra.entrypoints.portal.reauth import sensitive_route
from astra.entrypoints.portal.seller_api import (
    blocking,
    container_of,
    read_body,
    respond,
    seller_route,
    user_id,
)

TOKEN = schemas.obj(
    {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "scope": {"type": "string", "enum": ["read", "read-write"]},
        "hint": {"type": "string"},
        "created_at": {"type": "string"},
        "last_used_at": {"type": ["string", "null"]},
        "revoked_at": {"type": ["string", "null"]},
        "active": schemas.BOOLEAN,
    },
    "id", "name", "scope", "active",
    extra=True,
)
TOKEN_LIST = schemas.obj({"tokens": schemas.array(TOKEN)}, "tokens", extra=True)
TOKEN_CREATE = schemas.obj(
    {
        "name": schemas.string(60, min_length=1),
        "scope": {"type": "string", "enum": ["read", "read-write"]},
    },
    "name", "scope",
)
TOKEN_CREATED = schemas.obj(
    {"token": TOKEN, "key": {"type": "string"}, "message": {"type": "string"}},
    "token", "key",
    extra=True,
)


@seller_route(response=TOKEN_LIST)
async def list_tokens(request: web.Request) -> web.Response:
    """Your API tokens (never the tokens themselves: a name, a scope and when they were used)."""
    tokens = await blocking(container_of(request).api_tokens().list, user_id(request))
    return respond({"tokens": tokens})


@sensitive_route(body=TOKEN_CREATE, response=TOKEN_CREATED, status=201, errors=(409,))
async def create_token(request: web.Request) -> web.Response:
    """Create an API token: `read` (GET only) or `read-write`. The token is in this answer only.

    Send it as `Authorization: Bearer <token>` on any /api/* route, with no cookie and no
    X-CSRF-Token (except the routes that move money or hand out keys: they take the session and
    the password). Only a logged-in session, with your current password (`password`), can
    create or revoke tokens.
    """
    body = await read_body(request)
    doc, token = await blocking(
        container_of(request).api_tokens().create, user_id(request), body["name"], body["scope"]
    )
    return respond(
        {
            "token": doc,
            "key": token,
            "message": "Guarde este token agora: ele não será mostrado de novo.",
        },
        status=201,
    )


@sensitive_route(response=TOKEN)
async def revoke_token(request: web.Request) -> web.Response:
    """Revoke an API token: refused from the next request on.

    The body carries your current password (`password`).
    """
    doc = await blocking(
        container_of(request).api_tokens().revoke, user_id(request), request.match_info["token_id"]
    )
    return respond(doc)


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/me/tokens", list_tokens)
    r.add_post("/api/me/tokens", create_token)
    r.add_delete("/api/me/tokens/{token_id}", revoke_token)
