"""Discord's error bodies ({"message", "code"} plus "errors" for form errors) and JSON responses.

The Content-Type must be exactly `application/json`: interactions.py decodes a body as JSON only
on that exact header value (aiohttp's json_response adds `; charset=utf-8`).
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

UNKNOWN = {
    "application": (10002, "Unknown Application"),
    "channel": (10003, "Unknown Channel"),
    "guild": (10004, "Unknown Guild"),
    "member": (10007, "Unknown Member"),
    "message": (10008, "Unknown Message"),
    "overwrite": (10009, "Unknown Permission Overwrite"),
    "role": (10011, "Unknown Role"),
    "user": (10013, "Unknown User"),
    "webhook": (10015, "Unknown Webhook"),
    "interaction": (10062, "Unknown interaction"),
    "command": (10063, "Unknown application command"),
    "attachment": (0, "404: Not Found"),
}


class ApiError(Exception):
    """An error answered the way Discord answers it."""

    def __init__(
        self,
        status: int,
        code: int,
        message: str,
        errors: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors
        self.headers = headers or {}
        self._body = body

    @property
    def body(self) -> dict[str, Any]:
        if self._body is not None:
            return self._body
        body: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.errors is not None:
            body["errors"] = self.errors
        return body

    def response(self) -> web.Response:
        return json_response(self.body, self.status, self.headers)


def unknown(kind: str) -> ApiError:
    code, message = UNKNOWN[kind]
    return ApiError(404, code, message)


def unauthorized() -> ApiError:
    return ApiError(401, 0, "401: Unauthorized")


def missing_access() -> ApiError:
    return ApiError(403, 50001, "Missing Access")


def missing_permissions() -> ApiError:
    return ApiError(403, 50013, "Missing Permissions")


def cannot_dm() -> ApiError:
    return ApiError(403, 50007, "Cannot send messages to this user")


def empty_message() -> ApiError:
    return ApiError(400, 50006, "Cannot send an empty message")


def already_acknowledged() -> ApiError:
    return ApiError(400, 40060, "Interaction has already been acknowledged.")


def invalid_json() -> ApiError:
    return ApiError(400, 50109, "The request body contains invalid JSON.")


def field_error(code: str, message: str) -> dict[str, Any]:
    return {"_errors": [{"code": code, "message": message}]}


def invalid_form(errors: dict[str, Any]) -> ApiError:
    return ApiError(400, 50035, "Invalid Form Body", errors)


def invalid_field(path: list[str | int], code: str, message: str) -> ApiError:
    """50035 with Discord's nested error tree: {"a": {"0": {"b": {"_errors": [...]}}}}."""
    tree: dict[str, Any] = field_error(code, message)
    for key in reversed(path):
        tree = {str(key): tree}
    return invalid_form(tree)


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    response = web.Response(
        body=json.dumps(body).encode(), status=status, content_type="application/json"
    )
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def no_content(headers: dict[str, str] | None = None) -> web.Response:
    response = web.Response(status=204)
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response
