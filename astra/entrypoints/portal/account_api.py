"""Seller API: the account itself — its name and e-mail, changed with the current password.

The password itself changes at `/auth/local/change-password` (it starts a new session); a wrong
password here counts toward the same lockout.
"""

from __future__ import annotations

from aiohttp import web

from astra.domain.services.accounts import public_user
from astra.entrypoints.middleware import client_address
from astra.entrypoints.portal import api_schemas as schemas
from astra.entrypoints.portal.seller_api import (
    blocking,
    container_of,
    read_body,
    respond,
    seller_route,
    user_id,
)


@seller_route(body=schemas.PROFILE_UPDATE, response=schemas.PROFILE, errors=(409, 429))
async def update_profile(request: web.Request) -> web.Response:
    """Change your name and/or e-mail; `current_password` confirms it is you."""
    body = await read_body(request)
    user = await blocking(
        container_of(request).accounts().update_profile,
        user_id(request),
        body["current_password"],
        name=body.get("name"),
        email=body.get("email"),
        client=client_address(request),
    )
    return respond({"user": public_user(user)})
