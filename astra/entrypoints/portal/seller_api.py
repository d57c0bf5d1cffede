"""What every handler of the seller's JSON API shares.

`seller_route` makes a handler a seller route: a logged-in user (`require_user`), its declared
body checked against its schema (`read_body`), refusals as `{"error", "message"}` JSON with
pt-BR text, and the declaration published in /api/openapi.json. `owned_instance` is the tenant
check: an instance that does not exist, was deleted or belongs to someone else is the same 404,
so nobody learns which instance ids exist.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

from aiohttp import web

from astra.domain.errors import DomainError, InvalidInput, NotFoundError
from astra.domain.messages import DEFAULT_LANGUAGE, LANGUAGES
from astra.entrypoints.instance_turns import run_blocking
from astra.entrypoints.middleware import json_error, json_response, loads_request_json
from astra.entrypoints.portal import api_schemas, openapi
from astra.entrypoints.portal.sessions import current_user, require_user

P = ParamSpec("P")
T = TypeVar("T")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CONTAINER_KEY = web.AppKey("seller_api_container", object)
_BODY_SCHEMA = web.RequestKey("seller_api_body_schema", object)

INSTANCE_NOT_FOUND = "Instância não encontrada."


class ApiError(Exception):
    """A refusal of the API itself (not of a domain rule), with its status and pt-BR text."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def response(self) -> web.Response:
        resp = json_error(self.status, self.code, self.message)
        resp.headers.update(self.headers)
        return resp


def instance_not_found() -> ApiError:
    return ApiError(404, "instance_not_found", INSTANCE_NOT_FOUND)


def domain_error_response(exc: DomainError, language: str = DEFAULT_LANGUAGE) -> web.Response:
    """A domain refusal as JSON: its own HTTP status, its code, its message in `language`."""
    message = exc.message(language)
    return json_error(exc.http_status, exc.code, message[:1].upper() + message[1:])


def container_of(request: web.Request) -> Any:
    return request.app[CONTAINER_KEY]


def user_id(request: web.Request) -> str:
    user = current_user(request)
    assert user is not None, "seller routes run under require_user"
    return str(user["id"])


def actor(request: web.Request) -> str:
    return f"user:{user_id(request)}"


def language_of(request: web.Request) -> str:
    user = current_user(request) or {}
    # The user's choice, else the page's language switch (the `lang` cookie).
    language = user.get("language") or request.cookies.get("lang")
    return language if language in LANGUAGES else DEFAULT_LANGUAGE


async def blocking(func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Services read and write files under locks: never on the event loop."""
    return await run_blocking(func, *args, **kwargs)


def respond(data: object, status: int = 200) -> web.Response:
    return json_response(data, status=status)


async def owned_instance(request: web.Request, param: str = "id") -> dict[str, Any]:
    """The instance named in the path, if the logged-in user owns it; otherwise 404."""
    instance_id = request.match_info.get(param, "")
    try:
        doc = await blocking(container_of(request).instances().get, instance_id)
    except NotFoundError:
        raise instance_not_found() from None
    if doc.get("owner_id") != user_id(request) or doc.get("deleted_at"):
        raise instance_not_found()
    return doc


def parse_json(raw: bytes) -> Any:
    if not raw.strip():
        return {}
    try:
        return loads_request_json(raw)
    except ValueError:  # malformed, or nested deeper than any body of this API
        raise ApiError(400, "invalid_json", "O corpo da requisição não é um JSON válido.") from None


def check(schema: dict[str, Any], data: Any) -> Any:
    problem = api_schemas.first_problem(schema, data)
    if problem is not None:
        raise InvalidInput("invalid_field", field=problem)
    return data


async def read_body(request: web.Request) -> dict[str, Any]:
    """The JSON body, checked against the route's declared schema (400 / 413 / 422)."""
    data = parse_json(await request.read())
    schema = request.get(_BODY_SCHEMA)
    return check(schema, data) if schema is not None else data


def seller_route(
    *,
    body: dict[str, Any] | None = None,
    form: dict[str, Any] | None = None,
    body_required: bool = True,
    response: dict[str, Any] | None = None,
    status: int = 200,
    errors: tuple[int, ...] = (),
    session_only: bool = False,
) -> Callable[[Handler], Handler]:
    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def run(request: web.Request) -> web.StreamResponse:
            request[_BODY_SCHEMA] = body
            try:
                return await handler(request)
            except ApiError as exc:
                return exc.response()
            except web.HTTPRequestEntityTooLarge:
                return json_error(
                    413,
                    "payload_too_large",
                    "O conteúdo enviado é grande demais. Divida-o em partes menores.",
                )
            except DomainError as exc:
                return domain_error_response(exc, language_of(request))

        return openapi.describe(
            require_user(run),
            body=body,
            form=form,
            body_required=body_required,
            response=response,
            status=status,
            errors=errors,
            session_only=session_only,
        )

    return decorate
