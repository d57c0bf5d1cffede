"""Routes that move money or hand out credentials: a logged-in session and the password again.

A personal API token is refused here (403 `session_required`) whatever its scope, and so is a
session that does not send the account's current password in the body (`password`): a stolen
token, or a browser left logged in, cannot withdraw to another PIX key, rotate the instance key
or the webhook secret, mint tokens, bind the instance to another bot (the bot token: the bot
delivers the keys by DM and can read them) or send its orders to another URL (the outgoing
webhook). The password is checked by
`AccountService.confirm_password`, the check and the lockout of the e-mail change: a wrong one
is 403 `wrong_password` and counts toward the login lockout (429 with Retry-After when locked);
an account with no password yet (Discord login only) is told to set one first. The session's
CSRF check stays where it is (sessions.session_middleware).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from aiohttp import web

from astra.domain.errors import Forbidden
from astra.domain.services.accounts import PasswordAttemptsLocked
from astra.entrypoints.middleware import client_address
from astra.entrypoints.portal import api_schemas as schemas
from astra.entrypoints.portal import openapi, sessions
from astra.entrypoints.portal.seller_api import (
    ApiError,
    Handler,
    blocking,
    container_of,
    language_of,
    read_body,
    seller_route,
    user_id,
)

PASSWORD_FIELD = "password"
PASSWORD_SCHEMA = {
    **schemas.string(1024),
    "description": "Your current portal password: this change needs a logged-in session and "
    "the password again (API tokens are refused). Missing or wrong: 403.",
}


def with_password(body: dict[str, Any] | None, *, required: bool) -> dict[str, Any]:
    """`body` (an object schema, or none) with the `password` field added.

    The published schema requires it; the one the body is checked against does not, so that a
    missing password is the same 403 as a wrong one rather than a 422 about the field."""
    # A route that took no body took any: it still ignores fields other than the password.
    base = body or schemas.obj({}, extra=True)
    schema = {**base, "properties": {**base["properties"], PASSWORD_FIELD: PASSWORD_SCHEMA}}
    if required:
        schema["required"] = [*base.get("required", []), PASSWORD_FIELD]
    return schema


async def confirm(request: web.Request) -> None:
    """Refuse unless the request comes with a session and the account's current password."""
    if request.get(sessions.SESSION_KEY) is None:  # an API token (api_auth), not a session
        raise Forbidden("session_required")
    body = await read_body(request)
    try:
        await blocking(
            container_of(request).accounts().confirm_password,
            user_id(request),
            body.get(PASSWORD_FIELD),
            client=client_address(request),
        )
    except PasswordAttemptsLocked as exc:
        raise ApiError(429, exc.code, exc.message(language_of(request)),
                       headers={"Retry-After": str(exc.retry_after)}) from None


def sensitive_route(
    *,
    body: dict[str, Any] | None = None,
    response: dict[str, Any] | None = None,
    status: int = 200,
    errors: tuple[int, ...] = (),
) -> Callable[[Handler], Handler]:
    """`seller_route` for a sensitive change: the body gains a required `password`, checked
    (with the session) before the handler runs; API tokens are refused and not offered in the
    OpenAPI document."""

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def checked(request: web.Request) -> web.StreamResponse:
            await confirm(request)
            return await handler(request)

        route = seller_route(
            body=with_password(body, required=False),
            response=response,
            status=status,
            errors=tuple(sorted({*errors, 403, 429})),
            session_only=True,
        )(checked)
        documented = with_password(body, required=True)
        return openapi.amend(route, request={"application/json": documented})

    return decorate
