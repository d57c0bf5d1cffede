"""The JSON shapes of the seller API: checked on the way in, published in /api/openapi.json.

Schemas are plain JSON Schema (the 2020-12 dialect OpenAPI 3.1 uses). `first_problem` checks the
subset written here — type, required, properties, additionalProperties, items, enum, pattern,
lengths, bounds — so a body of the wrong shape is a 422 naming the field before any service
sees it; the domain then checks what only it knows (prices, names, uniqueness).
"""

from __future__ import annotations

import re
from typing import Any

Schema = dict[str, Any]

SNOWFLAKE = r"^\d{5,25}$"
INSTANCE_ID = r"^[a-z0-9][a-z0-9-]{2,39}$"


def obj(properties: dict[str, Schema], *required: str, extra: bool = False) -> Schema:
    schema: Schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    if not extra:
        schema["additionalProperties"] = False
    return schema


def string(max_length: int = 1000, *, min_length: int = 0, pattern: str = "") -> Schema:
    schema: Schema = {"type": "string", "maxLength": max_length}
    if min_length:
        schema["minLength"] = min_length
    if pattern:
        schema["pattern"] = pattern
    return schema


def integer(minimum: int | None = None, maximum: int | None = None) -> Schema:
    schema: Schema = {"type": "integer"}
    if minimum is not None:
        schema["minimum"] = minimum
    if maximum is not None:
        schema["maximum"] = maximum
    return schema


def nullable(schema: Schema) -> Schema:
    return {**schema, "type": [schema["type"], "null"]}


def array(items: Schema, max_items: int = 1000) -> Schema:
    return {"type": "array", "items": items, "maxItems": max_items}


BOOLEAN: Schema = {"type": "boolean"}
ANY_OBJECT: Schema = {"type": "object"}
CENTS = integer(0, 100_000_000_00)

# -- requests ------------------------------------------------------------------------------------

# Local accounts (JSON or an HTML form with the same fields; `next` is where a form lands).
REGISTER = obj(
    {
        "email": string(254),
        "password": string(1024),
        "name": string(80),
        "next": string(512),
    },
    "email",
    "password",
)
LOGIN = obj({"email": string(254), "password": string(1024), "next": string(512)},
            "email", "password")
SESSION_STARTED = obj(
    {"user": ANY_OBJECT, "csrf_token": string(100)}, "user", "csrf_token", extra=True
)
# The trial takes no fields: an empty object (or no body at all).
NO_FIELDS = obj({})

INSTANCE_CREATE = obj(
    {
        "id": string(40, min_length=3, pattern=INSTANCE_ID),
        "name": string(80, min_length=1),
        "bot_token": string(200),
    },
    "id",
    "name",
)
INSTANCE_UPDATE = obj(
    {
        "name": string(80, min_length=1),
        # The instance's own settings (language, cart TTL, channels): see InstanceService.
        "settings": ANY_OBJECT,
    }
)
BOT_TOKEN = obj({"token": string(200, min_length=1)}, "token")

VARIANT = obj(
    {
        "id": string(64),
        "name": string(100),
        "price_cents": CENTS,
        "max_per_order": integer(1, 100),
        "active": BOOLEAN,
        "period_days": integer(0, 3650),  # subscription products
        # issue 15: shown in the post (the domain checks the emoji itself)
        "emoji": string(64),
        "duration": string(40),
    },
    "name",
    "price_cents",
)
_PRODUCT_FIELDS: dict[str, Schema] = {
    "name": string(100),
    "description": string(4000),
    "category": string(100),
    "image_url": string(1000),
    "banner_url": string(1000),
    "active": BOOLEAN,
    "delivery_kind": {"type": "string", "enum": ["key", "text", "file", "role", "subscription"]},
    "dm_template": string(2000),
    "content": string(2000),
    "variants": array(VARIANT, 25),
    # -- issue 15: branding of the post and the DM (the domain checks https, colours,
    # placeholders and Discord's embed limits) --
    "color": {"type": ["string", "integer", "null"], "maxLength": 7},
    "show_thumbnail": BOOLEAN,
    "footer_text": string(500),
    "sections": array(obj({"title": string(256), "text": string(1024)}, "title", "text"), 10),
    "demo_url": string(1000),
    "demo_label": string(80),
    "staff_dm_template": string(2000),
    "unlimited_stock": BOOLEAN,
}
PRODUCT_CREATE = obj(_PRODUCT_FIELDS, "name", "variants")
PRODUCT_UPDATE = obj(_PRODUCT_FIELDS)

# What the product editor shows before saving: the same fields, of a new product or of
# `product_id` with these changes (nothing is saved).
PRODUCT_PREVIEW = obj({**_PRODUCT_FIELDS, "product_id": string(64)})

STOCK_IMPORT = obj(
    {
        "variant_id": string(64, min_length=1),
        "keys": {"type": ["string", "array"], "items": string(500)},
    },
    "variant_id",
    "keys",
)
STOCK_UPLOAD_FORM = obj(
    {
        "variant_id": string(64, min_length=1),
        "file": {"type": "string", "contentMediaType": "text/plain"},
        "keys": string(),
    },
    "variant_id",
)

STOCK_REMOVE = obj(
    {
        "variant_id": string(64, min_length=1),
        "key_ids": {**array(string(64, min_length=1), 1000), "minItems": 1},
    },
    "variant_id",
    "key_ids",
)

PROFILE_UPDATE = obj(
    {
        "name": string(80),
        "email": string(254),
        "current_password": string(1024),
    },
    "current_password",
)

COUPON_CREATE = obj(
    {
        "code": string(32, min_length=1),
        "kind": {"type": "string", "enum": ["percent", "fixed"]},
        "value": integer(1),
        "min_order_cents": CENTS,
        "max_uses": nullable(integer(1)),
        "per_buyer_limit": nullable(integer(1)),
        "expires_at": nullable(string(40)),
        "product_ids": array(string(64), 100),
        "active": BOOLEAN,
    },
    "code",
    "value",
)

POST_PRODUCT = obj(
    {
        "product_id": string(64, min_length=1),
        "channel_id": string(25, pattern=SNOWFLAKE),
        # issue 15: delete the bot's older posts of this product in the channel first
        "purge": BOOLEAN,
    },
    "product_id",
    "channel_id",
)

PLAN_CHECKOUT = obj({"plan_id": {"type": "string", "enum": ["monthly"]}})
WITHDRAWAL_CREATE = obj(
    {"amount_cents": integer(1, 100_000_000_00), "pix_key": string(120, min_length=1)},
    "amount_cents",
    "pix_key",
)

# -- responses (what a client may rely on; documents may carry more) ---------------------------

ERROR = obj({"error": {"type": "string"}, "message": {"type": "string"}}, "error", "message")
INSTANCE = obj(
    {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "owner_id": {"type": "string"},
        "status": {"type": "string"},
        "status_reason": nullable({"type": "string"}),
        "has_token": BOOLEAN,
        "has_key": BOOLEAN,
        "bot_profile": nullable(ANY_OBJECT),
        "settings": ANY_OBJECT,
    },
    "id",
    "name",
    extra=True,
)
INSTANCE_LIST = obj({"instances": array(INSTANCE)}, "instances", extra=True)
INSTANCE_KEY = obj({"key": {"type": "string"}, "message": {"type": "string"}}, "key", extra=True)
INSTANCE_STATUS = obj(
    {
        "status": {"type": "string"},
        "reason": nullable({"type": "string"}),
        "logs": array({"type": "string"}),
        "logs_available": BOOLEAN,
    },
    "status",
    "logs",
    extra=True,
)
INVITE = obj({"url": {"type": "string"}, "permissions": {"type": "string"}}, "url", extra=True)
PRODUCT = obj(
    {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "variants": array(ANY_OBJECT),
        "stock": ANY_OBJECT,
    },
    "id",
    "name",
    "variants",
    extra=True,
)
PRODUCT_LIST = obj({"products": array(PRODUCT)}, "products", extra=True)
IMPORT_REPORT = obj(
    {
        "added": {"type": "integer"},
        "skipped": {"type": "integer"},
        "duplicate_in_file": {"type": "integer"},
        "already_in_stock": {"type": "integer"},
        "blank": {"type": "integer"},
        "too_long": {"type": "integer"},
        "invalid": {"type": "integer"},
        "skipped_lines": array({"type": "integer"}),
    },
    "added",
    "skipped",
    extra=True,
)
STOCK_JOB = obj(
    {
        "id": {"type": "string"},
        "state": {"type": "string", "enum": ["preparing", "running", "done", "failed"]},
        "total": {"type": "integer"},
        "processed": {"type": "integer"},
        "percent": {"type": "integer"},
        "report": IMPORT_REPORT,
        "error": nullable({"type": "string"}),
    },
    "id",
    "state",
    "total",
    "processed",
    "percent",
    "report",
    extra=True,
)
STOCK_JOB_LIST = obj({"jobs": array(STOCK_JOB)}, "jobs")
STOCK_COUNTS = obj(
    {"product_id": {"type": "string"}, "variants": array(ANY_OBJECT)},
    "product_id",
    "variants",
    extra=True,
)
STOCK_KEYS = obj(
    {
        "variant_id": nullable({"type": "string"}),
        "keys": array(
            obj(
                {
                    "id": {"type": "string"},
                    "masked": {"type": "string"},
                    "state": {"type": "string", "enum": ["available", "reserved", "sold"]},
                    "removable": BOOLEAN,
                },
                "id",
                "masked",
                "state",
                "removable",
                extra=True,
            ),
            1000,
        ),
        "counts": ANY_OBJECT,
        "total": {"type": "integer"},
    },
    "keys",
    "counts",
    extra=True,
)
KEYS_REMOVED = obj(
    {
        "removed": array({"type": "string"}),
        "kept": array(ANY_OBJECT),
        "not_found": array({"type": "string"}),
    },
    "removed",
    "kept",
    "not_found",
    extra=True,
)
POST_PREVIEW = obj(
    {"message": ANY_OBJECT, "language": {"type": "string"}}, "message", extra=True
)
PROFILE = obj({"user": ANY_OBJECT}, "user", extra=True)
COUPON = obj({"code": {"type": "string"}, "active": BOOLEAN}, "code", extra=True)
COUPON_LIST = obj({"coupons": array(COUPON)}, "coupons", extra=True)
ORDER_LIST = obj(
    {"orders": array(ANY_OBJECT), "totals": ANY_OBJECT}, "orders", "totals", extra=True
)
CHANNEL_LIST = obj(
    {
        "guild_id": nullable({"type": "string"}),
        "guilds": array(ANY_OBJECT),
        "channels": array(ANY_OBJECT),
        "roles": array(ANY_OBJECT),
    },
    "channels",
    extra=True,
)
PRODUCT_POSTED = obj(
    {
        "channel_id": {"type": "string"},
        "message_id": {"type": "string"},
        "purged": {"type": "integer"},
    },
    "channel_id",
    "message_id",
    extra=True,
)
TEMPLATE_HELP = obj(
    {
        "placeholders": array({"type": "string"}),
        "aliases": ANY_OBJECT,
        "defaults": ANY_OBJECT,
        "limits": ANY_OBJECT,
    },
    "placeholders",
    extra=True,
)
PLAN_STATE = obj(
    {
        "kind": {"type": "string"},
        "active": BOOLEAN,
        "until": nullable({"type": "string"}),
        "days_left": {"type": "integer"},
    },
    "kind",
    "active",
    extra=True,
)
PLAN_CATALOG = obj({"plans": array(ANY_OBJECT), "plan": PLAN_STATE}, "plans", extra=True)
PLAN_CHARGE = obj(
    {
        "transaction_id": {"type": "string"},
        "amount_cents": {"type": "integer"},
        "pix_code": {"type": "string"},
        "qr_code_base64": {"type": "string"},
        "expires_at": nullable({"type": "string"}),
    },
    "transaction_id",
    "pix_code",
    "qr_code_base64",
    extra=True,
)
WALLET = obj(
    {"balance_cents": {"type": "integer"}, "entries": array(ANY_OBJECT)},
    "balance_cents",
    "entries",
    extra=True,
)
WITHDRAWAL = obj(
    {"id": {"type": "string"}, "status": {"type": "string"}, "amount_cents": {"type": "integer"}},
    "id",
    "status",
    extra=True,
)
WITHDRAWAL_LIST = obj({"withdrawals": array(WITHDRAWAL)}, "withdrawals", extra=True)

# -- checking --------------------------------------------------------------------------------------

_TYPES: dict[str, Any] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def first_problem(schema: Schema, value: Any, path: str = "") -> str | None:
    """The path of the first place `value` breaks `schema` ("body" for the whole), or None."""
    where = path or "body"
    types = schema.get("type")
    if types is not None:
        names = [types] if isinstance(types, str) else types
        if not any(_TYPES[name](value) for name in names):
            return where
    if "enum" in schema and value not in schema["enum"]:
        return where
    if isinstance(value, str):
        if len(value) > schema.get("maxLength", len(value)):
            return where
        if len(value) < schema.get("minLength", 0):
            return where
        if "pattern" in schema and not re.search(schema["pattern"], value):
            return where
    if isinstance(value, int) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            return where
        if "maximum" in schema and value > schema["maximum"]:
            return where
    if isinstance(value, list):
        if len(value) > schema.get("maxItems", len(value)):
            return where
        if len(value) < schema.get("minItems", 0):
            return where
        items = schema.get("items")
        if items is not None:
            for i, item in enumerate(value):
                problem = first_problem(items, item, f"{path}[{i}]" if path else f"[{i}]")
                if problem:
                    return problem
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                return f"{path}.{name}" if path else name
        for name, item in value.items():
            sub = f"{path}.{name}" if path else str(name)
            if name in properties:
                problem = first_problem(properties[name], item, sub)
                if problem:
                    return problem
            elif schema.get("additionalProperties") is False:
                return sub
    return None
