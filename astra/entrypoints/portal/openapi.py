"""`GET /api/openapi.json`: an OpenAPI 3.1 document generated from the app's route table.

Every route the app has appears — method, path with its {params}, a summary from the first line
of the handler's docstring and a description from the rest — so a new route is documented the
moment it is added. Request bodies and responses appear where a handler declares them with
`describe` (the seller API does it through `seller_api.seller_route`).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from aiohttp import web

from astra import __version__
from astra.entrypoints.middleware import json_response
from astra.entrypoints.portal.sessions import BEARER_KEY

F = TypeVar("F", bound=Callable[..., Any])

_ATTRIBUTE = "__openapi__"
_PARAM = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
_ERROR_SCHEMA = {
    "type": "object",
    "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
    "required": ["error", "message"],
}
_ERRORS = {
    "400": "Malformed request",
    "401": "Not logged in",
    "403": "Forbidden (or a missing X-CSRF-Token)",
    "415": "Unsupported body type",
    "429": "Too many attempts",
    "404": "Not found (or not yours)",
    "409": "Conflicts with the current state",
    "413": "Body too large",
    "422": "Invalid field",
}

TITLE_KEY = web.AppKey("openapi_title", str)
# OpenAPI 3.1 `webhooks`: requests the app sends (the sellers' outgoing webhooks).
WEBHOOKS_KEY = web.AppKey("openapi_webhooks", dict)


@dataclass(frozen=True)
class Operation:
    """What a handler declares beyond its route and docstring."""

    request: dict[str, dict[str, Any]] = field(default_factory=dict)  # content type -> schema
    request_required: bool = True
    response: dict[str, Any] | None = None
    status: int = 200
    errors: tuple[int, ...] = ()
    authenticated: bool = True
    # Refuses personal API tokens (money, keys, tokens: reauth.py); the session only.
    session_only: bool = False
    tags: tuple[str, ...] = ()


def describe(
    handler: F,
    *,
    body: dict[str, Any] | None = None,
    form: dict[str, Any] | None = None,
    urlencoded: dict[str, Any] | None = None,
    body_required: bool = True,
    response: dict[str, Any] | None = None,
    status: int = 200,
    errors: tuple[int, ...] = (),
    authenticated: bool = True,
    session_only: bool = False,
) -> F:
    """Declare a handler's request body (JSON `body`, multipart `form`, an HTML form's
    `urlencoded` fields; optional unless `body_required`) and response."""
    request: dict[str, dict[str, Any]] = {}
    if body is not None:
        request["application/json"] = body
    if form is not None:
        request["multipart/form-data"] = form
    if urlencoded is not None:
        request["application/x-www-form-urlencoded"] = urlencoded
    setattr(
        handler,
        _ATTRIBUTE,
        Operation(
            request=request,
            request_required=body_required,
            response=response,
            status=status,
            errors=errors,
            authenticated=authenticated,
            session_only=session_only,
        ),
    )
    return handler


def amend(handler: F, **changes: Any) -> F:
    """Change what `handler` declares (fields of Operation), keeping the rest."""
    declared = operation_of(handler) or Operation()
    setattr(handler, _ATTRIBUTE, replace(declared, **changes))
    return handler


def operation_of(handler: Any) -> Operation | None:
    while handler is not None:
        found = getattr(handler, _ATTRIBUTE, None)
        if found is not None:
            return found
        handler = getattr(handler, "__wrapped__", None)
    return None


def _operation_id(method: str, path: str) -> str:
    words = re.sub(r"[{}]", "", path).strip("/").replace(".", "_")
    return method.lower() + "_" + re.sub(r"[^A-Za-z0-9]+", "_", words).strip("_")


def _tag(path: str) -> str:
    # /api/<group>/..., or the first segment elsewhere (/auth, /internal, /health).
    parts = [p for p in path.split("/") if p]
    if parts[:1] == ["api"] and len(parts) > 1:
        return parts[1].split(".")[0]
    return parts[0] if parts else "root"


def _operation(method: str, path: str, handler: Any, bearer: bool = False) -> dict[str, Any]:
    declared = operation_of(handler) or Operation(authenticated=False)
    doc = inspect.getdoc(handler) or ""
    summary, _, rest = doc.partition("\n")
    op: dict[str, Any] = {
        "operationId": _operation_id(method, path),
        "summary": summary.strip() or f"{method} {path}",
        "tags": [_tag(path)],
    }
    if rest.strip():
        op["description"] = rest.strip()
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _PARAM.findall(path)
    ]
    if params:
        op["parameters"] = params
    if declared.request:
        op["requestBody"] = {
            "required": declared.request_required,
            "content": {ctype: {"schema": schema} for ctype, schema in declared.request.items()},
        }
    success: dict[str, Any] = {"description": "OK" if declared.status == 200 else "Created"}
    if declared.response is not None:
        success["content"] = {"application/json": {"schema": declared.response}}
    responses: dict[str, Any] = {str(declared.status): success}
    error_codes = {"404", "422"} if _PARAM.search(path) or declared.request else set()
    if declared.authenticated:
        error_codes |= {"401"} | ({"403"} if method not in _SAFE else set())
    if declared.request:
        error_codes |= {"400", "413"}
    error_codes |= {str(code) for code in declared.errors}
    for code in sorted(error_codes):
        responses[code] = {
            "description": _ERRORS.get(code, "Refused"),
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    op["responses"] = responses
    if declared.authenticated:
        # A change made with the session cookie also needs the session's CSRF token.
        op["security"] = [{"session": []} if method in _SAFE else {"session": [], "csrf": []}]
        if (bearer and path.startswith("/api/") and not path.startswith("/api/me/tokens")
                and not declared.session_only):
            # Or a seller's personal API token (no cookie, no CSRF); `read` tokens: GET only.
            op["security"].append({"bearer": []})
    return op


def document(app: web.Application, title: str = "Astra") -> dict[str, Any]:
    """The OpenAPI 3.1 document of every route of `app`."""
    paths: dict[str, dict[str, Any]] = {}
    for route in app.router.routes():
        method = route.method.upper()
        resource = route.resource
        if method in ("HEAD", "*") or resource is None:
            continue
        path = _PARAM.sub(lambda m: "{" + m.group(1) + "}", resource.canonical)
        paths.setdefault(path, {})[method.lower()] = _operation(
            method, path, route.handler, bearer=app.get(BEARER_KEY) is not None
        )
    schemes: dict[str, Any] = {
        "session": {"type": "apiKey", "in": "cookie", "name": "astra_session"},
        "csrf": {
            "type": "apiKey",
            "in": "header",
            "name": "X-CSRF-Token",
            "description": "The session's CSRF token (`csrf_token` from the login, or "
            "GET /api/me); required with the session cookie on every request that "
            "changes something.",
        },
    }
    if app.get(BEARER_KEY) is not None:
        schemes["bearer"] = {
            "type": "http",
            "scheme": "bearer",
            "description": "A personal API token (astra_pat_..., made in Conta). `read` "
            "tokens may only read (GET); `read-write` tokens may do what the session may, "
            "except manage tokens, withdraw, rotate the instance key or webhook secret, "
            "set or clear the bot token, or set or remove the outgoing webhook (those take "
            "the session and the password). Sent with no cookie and no X-CSRF-Token.",
        }
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": title, "version": __version__},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": {"Error": _ERROR_SCHEMA},
            "securitySchemes": schemes,
        },
    }
    if app.get(WEBHOOKS_KEY):
        doc["webhooks"] = app[WEBHOOKS_KEY]
    return doc


async def openapi_json(request: web.Request) -> web.Response:
    """The OpenAPI 3.1 description of this app's HTTP API."""
    return json_response(document(request.app, request.app.get(TITLE_KEY, "Astra")))


def add_routes(app: web.Application, title: str) -> None:
    app[TITLE_KEY] = title
    app.router.add_get("/api/openapi.json", openapi_json)
