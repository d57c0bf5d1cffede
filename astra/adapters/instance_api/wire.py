"""The internal API's wire contract: every operation a runtime may call, its route, the fields it
takes (checked on the platform's side as strictly as the seller API's), and how its answer is
written and read back.

Both ends import this table: the platform's server (`entrypoints/internal/api.py`)
registers one route per operation and validates each request with it; the HTTP adapter builds
requests and decodes answers from it. A field a runtime sends that is not declared here is
refused, and every id is matched against the calling instance's own data by the platform.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from astra.domain import errors as domain_errors
from astra.domain.cart import Cart
from astra.domain.catalog import Product
from astra.domain.coupon import Coupon
from astra.domain.errors import DomainError
from astra.domain.order import Order
from astra.domain.pricing import Adjustment, Quote
from astra.domain.services.sales import CartView
from astra.domain.stock import ImportReport
from astra.ports.chat import InteractionRef
from astra.ports.instance_api import Heartbeat, PaymentStart
from astra.ports.payments import Charge

SNOWFLAKE = re.compile(r"^\d{5,25}$")
ENTITY_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
COUPON_CODE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
INTERACTION_TOKEN = re.compile(r"^[A-Za-z0-9._-]{20,500}$")
# Ordinary requests are small; a stock import may carry a file of keys.
MAX_BODY = 64 * 1024
MAX_STOCK_BODY = 2 * 1024 * 1024


class FieldError(ValueError):
    """A request field is missing, of the wrong type, or out of range."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field


# -- field checks ----------------------------------------------------------------------------------

Check = Callable[[str, Any], Any]


def snowflake(name: str, value: Any) -> str:
    if not isinstance(value, str) or not SNOWFLAKE.fullmatch(value):
        raise FieldError(name, "must be a Discord id")
    return value


def entity_id(name: str, value: Any) -> str:
    if not isinstance(value, str) or not ENTITY_ID.fullmatch(value):
        raise FieldError(name, "must be an id")
    return value


def interaction_token(name: str, value: Any) -> str:
    if not isinstance(value, str) or not INTERACTION_TOKEN.fullmatch(value):
        raise FieldError(name, "must be an interaction token")
    return value


def interaction(name: str, value: Any) -> InteractionRef:
    """The Discord interaction an operation is done for: {"id", "token"}. Never a user id:
    the platform asks Discord who made it."""
    if not isinstance(value, dict) or set(value) != {"id", "token"}:
        raise FieldError(name, "must be {id, token} of a Discord interaction")
    return InteractionRef(
        id=snowflake(f"{name}.id", value["id"]),
        token=interaction_token(f"{name}.token", value["token"]),
    )


def interaction_to_doc(ref: InteractionRef) -> dict[str, str]:
    return {"id": ref.id, "token": ref.token}


def coupon_code(name: str, value: Any) -> str:
    if not isinstance(value, str) or not COUPON_CODE.fullmatch(value.strip()):
        raise FieldError(name, "must be a coupon code (letters, digits, - and _)")
    return value.strip()


def text(limit: int) -> Check:
    def check(name: str, value: Any) -> str:
        if not isinstance(value, str) or len(value) > limit:
            raise FieldError(name, f"must be text of at most {limit} characters")
        return value

    return check


def integer(low: int, high: int) -> Check:
    def check(name: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise FieldError(name, f"must be an integer from {low} to {high}")
        return value

    return check


def optional(inner: Check) -> Check:
    def check(name: str, value: Any) -> Any:
        return None if value is None else inner(name, value)

    return check


def boolean(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise FieldError(name, "must be true or false")
    return value


def number(name: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1e12:
        raise FieldError(name, "must be a non-negative number")
    return float(value)


def mapping(limit: int) -> Check:
    """A JSON object handed to a service that validates its fields (product, coupon and
    settings changes: the same rules as the portal's)."""

    def check(name: str, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict) or len(value) > limit:
            raise FieldError(name, f"must be an object of at most {limit} fields")
        return value

    return check


def posts(name: str, value: Any) -> list[dict[str, str]]:
    if not isinstance(value, list) or len(value) > 25:
        raise FieldError(name, "must be a list of at most 25 posts")
    out = []
    for post in value:
        if (
            not isinstance(post, dict)
            or not {"channel_id", "message_id"} <= set(post)
            or set(post) - {"channel_id", "message_id", "banner_message_id"}
        ):
            raise FieldError(name, "each post is {channel_id, message_id[, banner_message_id]}")
        clean = {
            "channel_id": snowflake(f"{name}.channel_id", post["channel_id"]),
            "message_id": snowflake(f"{name}.message_id", post["message_id"]),
        }
        if "banner_message_id" in post:
            clean["banner_message_id"] = snowflake(
                f"{name}.banner_message_id", post["banner_message_id"]
            )
        out.append(clean)
    return out


LOG_LEVELS = ("warning", "error")


def log_lines(name: str, value: Any) -> list[dict[str, str]]:
    if not isinstance(value, list) or not 1 <= len(value) <= 50:
        raise FieldError(name, "must be a list of 1 to 50 lines")
    out = []
    for line in value:
        if not isinstance(line, dict) or set(line) != {"level", "logger", "text"}:
            raise FieldError(name, "each line is {level, logger, text}")
        if line["level"] not in LOG_LEVELS:
            raise FieldError(f"{name}.level", "must be warning or error")
        out.append(
            {
                "level": line["level"],
                "logger": text(80)(f"{name}.logger", line["logger"]),
                "text": text(2000)(f"{name}.text", line["text"]),
            }
        )
    return out


def stock_data(name: str, value: Any) -> str | bytes:
    """Keys as text, or a file's bytes as {"base64": ...}."""
    if isinstance(value, str) and len(value) <= MAX_STOCK_BODY:
        return value
    if isinstance(value, dict) and set(value) == {"base64"} and isinstance(value["base64"], str):
        try:
            return base64.b64decode(value["base64"], validate=True)
        except ValueError:
            raise FieldError(name, "is not valid base64") from None
    raise FieldError(name, "must be text or {base64}")


def encode_stock_data(data: bytes | str) -> Any:
    return data if isinstance(data, str) else {"base64": base64.b64encode(data).decode()}


# -- answers ---------------------------------------------------------------------------------------


def _quote_from_doc(doc: dict[str, Any]) -> Quote:
    return Quote(
        subtotal_cents=int(doc["subtotal_cents"]),
        adjustments=[Adjustment(**a) for a in doc.get("adjustments") or []],
    )


def cart_view_to_doc(view: CartView | None) -> Any:
    if view is None:
        return None
    return {
        "cart": view.cart.to_doc(),
        "quote": view.quote.to_doc(),
        "coupon_problem": view.coupon_problem,
    }


def cart_view_from_doc(doc: Any) -> CartView | None:
    if doc is None:
        return None
    return CartView(
        cart=Cart.from_doc(doc["cart"]),
        quote=_quote_from_doc(doc["quote"]),
        coupon_problem=doc.get("coupon_problem"),
    )


def payment_to_doc(start: PaymentStart) -> dict[str, Any]:
    return {
        "order": start.order.to_doc(),
        "charge": start.charge.to_doc() if start.charge else None,
        "sandbox": start.sandbox,
    }


def payment_from_doc(doc: dict[str, Any]) -> PaymentStart:
    return PaymentStart(
        order=Order.from_doc(doc["order"]),
        charge=Charge.from_doc(doc["charge"]) if doc.get("charge") else None,
        sandbox=bool(doc.get("sandbox")),
    )


def report_from_doc(doc: dict[str, Any]) -> ImportReport:
    fields = {k: v for k, v in doc.items() if k != "skipped"}
    return ImportReport(**fields)


@dataclass(frozen=True)
class Codec:
    encode: Callable[[Any], Any]
    decode: Callable[[Any], Any]


def _same(value: Any) -> Any:
    return value


RAW = Codec(_same, _same)
NOTHING = Codec(lambda _: None, lambda _: None)
CART_VIEW = Codec(cart_view_to_doc, cart_view_from_doc)
CART = Codec(lambda c: c.to_doc(), Cart.from_doc)
ORDER = Codec(lambda o: o.to_doc(), Order.from_doc)
ORDERS = Codec(lambda os: [o.to_doc() for o in os], lambda ds: [Order.from_doc(d) for d in ds])
PRODUCT = Codec(lambda p: p.to_doc(), Product.from_doc)
PRODUCTS = Codec(
    lambda ps: [p.to_doc() for p in ps], lambda ds: [Product.from_doc(d) for d in ds]
)
COUPON = Codec(lambda c: c.to_doc(), Coupon.from_doc)
COUPONS = Codec(lambda cs: [c.to_doc() for c in cs], lambda ds: [Coupon.from_doc(d) for d in ds])
PAYMENT = Codec(payment_to_doc, payment_from_doc)
REPORT = Codec(lambda r: r.to_doc(), report_from_doc)


# -- the operations --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    """One call of the port. Path fields come from the route (`{name}` in `path`); the others
    from the JSON body (writes) or the query string (reads: strings only)."""

    name: str
    method: str
    path: str
    fields: dict[str, Check]
    result: Codec = RAW
    max_body: int = MAX_BODY

    @property
    def write(self) -> bool:
        return self.method != "GET"

    @property
    def path_fields(self) -> list[str]:
        return re.findall(r"\{(\w+)\}", self.path)


# An operation done for a person carries their interaction, in the body (it is a credential
# for 15 minutes: never in a URL, which logs keep). Reads that need one are POSTs for that.
BY = {"interaction": interaction}

OPERATIONS: dict[str, Operation] = {
    op.name: op
    for op in (
        Operation("settings", "GET", "/settings", {}),
        Operation("update_settings", "PATCH", "/settings", {**BY, "changes": mapping(32)}),
        Operation("bind_guild", "POST", "/guild", {**BY, "instance_key": text(200)}),
        Operation("get_cart", "POST", "/cart/view", BY, CART_VIEW),
        Operation("get_cart_by_id", "GET", "/carts/{cart_id}", {"cart_id": entity_id}, CART),
        Operation(
            "cart_in_channel",
            "GET",
            "/channels/{channel_id}/cart",
            {"channel_id": snowflake},
            CART_VIEW,
        ),
        Operation(
            "add_item",
            "POST",
            "/cart/items",
            {
                **BY,
                "product_id": entity_id,
                "variant_id": entity_id,
                "quantity": integer(1, 1000),
            },
            CART_VIEW,
        ),
        Operation(
            "set_item",
            "PUT",
            "/cart/items",
            {
                **BY,
                "product_id": entity_id,
                "variant_id": entity_id,
                "quantity": integer(0, 1000),
            },
            CART_VIEW,
        ),
        Operation("apply_coupon", "POST", "/cart/coupon", {**BY, "code": text(64)}, CART_VIEW),
        Operation("remove_coupon", "POST", "/cart/coupon/remove", BY, CART_VIEW),
        Operation("cancel_cart", "POST", "/cart/cancel", BY, NOTHING),
        Operation(
            "bind_cart_channel",
            "PUT",
            "/carts/{cart_id}/channel",
            {"cart_id": entity_id, "channel_id": snowflake, "message_id": snowflake},
            NOTHING,
        ),
        Operation("pay", "POST", "/cart/pay", BY, PAYMENT),
        Operation("get_order", "GET", "/orders/{order_id}", {"order_id": entity_id}, ORDER),
        Operation(
            "check_payment", "POST", "/orders/{order_id}/check", {"order_id": entity_id}, ORDER
        ),
        Operation("carts_with_open_channels", "GET", "/cart-channels", {}),
        Operation(
            "acknowledge_delivery",
            "POST",
            "/orders/{order_id}/received",
            {"order_id": entity_id, **BY},
        ),
        Operation("send_purchases", "POST", "/purchases", BY),
        Operation(
            "mark_cart_channel_closed",
            "POST",
            "/carts/{cart_id}/channel/closed",
            {"cart_id": entity_id},
            NOTHING,
        ),
        Operation(
            "staff_confirm",
            "POST",
            "/carts/{cart_id}/staff-confirm",
            {"cart_id": entity_id, **BY},
            ORDER,
        ),
        Operation("list_products", "GET", "/products", {}, PRODUCTS),
        Operation(
            "get_product", "GET", "/products/{product_id}", {"product_id": entity_id}, PRODUCT
        ),
        Operation("create_product", "POST", "/products", {**BY, "data": mapping(32)}, PRODUCT),
        Operation(
            "update_product",
            "PATCH",
            "/products/{product_id}",
            {"product_id": entity_id, **BY, "changes": mapping(32)},
            PRODUCT,
        ),
        Operation(
            "remove_product",
            "POST",
            "/products/{product_id}/remove",
            {"product_id": entity_id, **BY},
            PRODUCT,
        ),
        Operation(
            "record_posts",
            "PUT",
            "/products/{product_id}/posts",
            {"product_id": entity_id, **BY, "posts": posts},
            NOTHING,
        ),
        Operation("stock_counts", "GET", "/stock/counts", {}),
        Operation(
            "import_stock",
            "POST",
            "/products/{product_id}/variants/{variant_id}/stock",
            {"product_id": entity_id, "variant_id": entity_id, **BY, "data": stock_data},
            REPORT,
            max_body=MAX_STOCK_BODY * 2,
        ),
        Operation(
            "send_keys",
            "POST",
            "/variants/{variant_id}/keys",
            {"variant_id": entity_id, **BY, "limit": integer(1, 100)},
            RAW,
        ),
        Operation("list_coupons", "POST", "/coupons/list", BY, COUPONS),
        Operation("create_coupon", "POST", "/coupons", {**BY, "data": mapping(16)}, COUPON),
        Operation(
            "set_coupon_active",
            "PUT",
            "/coupons/{code}/active",
            {"code": coupon_code, **BY, "active": boolean},
            COUPON,
        ),
        Operation(
            "list_orders", "POST", "/orders/list", {**BY, "status": optional(text(20))}, ORDERS
        ),
        # Subscriptions: nothing here moves an end date; a renewal is a cart that must be
        # paid, and a join re-grants only what the platform's records say is paid.
        Operation("list_subscriptions", "POST", "/subscriptions/list", BY),
        Operation(
            "renew_subscription",
            "POST",
            "/subscriptions/{subscription_id}/renew",
            {"subscription_id": entity_id, **BY},
            PAYMENT,
        ),
        Operation(
            "start_card_renewal",
            "POST",
            "/subscriptions/{subscription_id}/card",
            {"subscription_id": entity_id, **BY},
        ),
        Operation(
            "cancel_card_renewal",
            "POST",
            "/subscriptions/{subscription_id}/card/cancel",
            {"subscription_id": entity_id, **BY},
        ),
        Operation("member_joined", "POST", "/members/{member_id}/joined",
                  {"member_id": snowflake}),
        Operation("log", "POST", "/logs", {"lines": log_lines}, NOTHING),
        Operation(
            "heartbeat",
            "POST",
            "/heartbeat",
            {
                "ready_at": number,
                "latency_ms": number,
                "guilds": integer(0, 10_000_000),
                "bot_user": optional(text(25)),
                "pid": integer(0, 1 << 32),
                "error": optional(text(40)),
            },
            NOTHING,
        ),
    )
}


def heartbeat_to_fields(beat: Heartbeat) -> dict[str, Any]:
    return {
        "ready_at": beat.ready_at,
        "latency_ms": beat.latency_ms,
        "guilds": beat.guilds,
        "bot_user": beat.bot_user or None,
        "pid": beat.pid,
        "error": beat.error,
    }


def validate(op: Operation, values: dict[str, Any]) -> dict[str, Any]:
    """The operation's fields from a request, each checked; unknown fields are refused."""
    unknown = set(values) - set(op.fields)
    if unknown:
        raise FieldError(sorted(unknown)[0], "is not a field of this operation")
    clean: dict[str, Any] = {}
    for name, check in op.fields.items():
        clean[name] = check(name, values.get(name))
    return clean


# -- errors ----------------------------------------------------------------------------------------

_ERROR_KINDS: dict[str, type[DomainError]] = {
    cls.__name__: cls
    for cls in vars(domain_errors).values()
    if isinstance(cls, type) and issubclass(cls, DomainError)
}


def error_to_doc(error: DomainError) -> dict[str, Any]:
    return {
        "kind": type(error).__name__ if type(error).__name__ in _ERROR_KINDS else "DomainError",
        "code": error.code,
        "params": {k: v for k, v in error.params.items() if isinstance(v, str | int | float)},
    }


def error_from_doc(doc: dict[str, Any]) -> DomainError:
    """The domain error the platform raised, rebuilt so the bot words it in the buyer's
    language exactly as it would have in process."""
    cls = _ERROR_KINDS.get(str(doc.get("kind")), DomainError)
    error = cls.__new__(cls)
    error.code = str(doc.get("code") or "error_generic")
    params = doc.get("params")
    error.params = params if isinstance(params, dict) else {}
    Exception.__init__(error, error.message())
    return error
