"""The instance API over HTTP: what a runtime in a container or subprocess uses.

One keep-alive aiohttp session to the platform's internal API, each request authenticated by the
runtime's credential. A pool of bots shares one session (`shared_session()`, passed as `session`):
every instance still sends its own credential, and closing one instance's API leaves the shared
session to its owner.

A call that could not reach the platform, or that the platform could not serve now
(502/503/504, 429), is tried again with backoff; a write carries an `Idempotency-Key` that
stays the same across its retries, so a write whose answer was lost is not done twice (the
platform answers the retry with the first answer).
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson

from astra.adapters.instance_api.wire import (
    OPERATIONS,
    encode_stock_data,
    error_from_doc,
    heartbeat_to_fields,
)
from astra.adapters.instance_api.wire import (
    interaction_to_doc as _by,
)
from astra.domain.cart import Cart
from astra.domain.catalog import Product
from astra.domain.coupon import Coupon
from astra.domain.order import Order
from astra.domain.services.sales import CartView
from astra.domain.stock import ImportReport
from astra.ports.chat import InteractionRef
from astra.ports.instance_api import Heartbeat, InstanceAPIUnavailable, PaymentStart

RETRY_PAUSES = (0.1, 0.3, 0.8, 2.0)
MAX_RETRY_AFTER = 5.0
TIMEOUT_SECONDS = 20.0
_RETRYABLE_STATUS = {429, 502, 503, 504}
_CONNECTION_ERRORS = (aiohttp.ClientError, TimeoutError, OSError)


def shared_session(limit: int = 32) -> aiohttp.ClientSession:
    """A keep-alive session to the internal API, with no credential of its own."""
    return aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=TIMEOUT_SECONDS),
        connector=aiohttp.TCPConnector(limit=limit, keepalive_timeout=60),
        json_serialize=lambda v: orjson.dumps(v).decode(),
    )




class HttpInstanceAPI:
    def __init__(
        self,
        base_url: str,
        instance_id: str,
        credential: str,
        *,
        retry_pauses: tuple[float, ...] = RETRY_PAUSES,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.base = f"{base_url.rstrip('/')}/internal/instances/{quote(instance_id, safe='')}"
        self.instance_id = instance_id
        self._auth = f"Bearer {credential}"
        # A session given by the caller is the caller's to close (a pool's, shared by all).
        self._session: aiohttp.ClientSession | None = session
        self._owns_session = session is None
        self.retry_pauses = retry_pauses

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or (self._session.closed and self._owns_session):
            self._session = shared_session()
        return self._session

    async def close(self) -> None:
        if self._owns_session and self._session is not None and not self._session.closed:
            await self._session.close()

    async def call(self, name: str, **fields: Any) -> Any:
        """One operation of the wire table; returns its decoded answer."""
        op = OPERATIONS[name]
        path_values = {f: fields.pop(f) for f in op.path_fields}
        path = op.path.format(**{k: quote(str(v), safe="") for k, v in path_values.items()})
        url = self.base + path
        # Per request, not per session: a pool's shared session carries many credentials.
        headers = {"Authorization": self._auth}
        if op.write:
            headers["Idempotency-Key"] = secrets.token_urlsafe(18)
            body: dict[str, Any] | None = fields
            params = None
        else:
            body = None
            params = {k: str(v) for k, v in fields.items() if v is not None}
        last: Exception | None = None
        for attempt in range(len(self.retry_pauses) + 1):
            if attempt:
                await asyncio.sleep(self.retry_pauses[attempt - 1])
            try:
                async with self._client().request(
                    op.method, url, json=body, params=params, headers=headers
                ) as response:
                    raw = await response.read()
                    status = response.status
                    retry_after = response.headers.get("Retry-After")
            except _CONNECTION_ERRORS as exc:
                last = exc
                continue
            if status in _RETRYABLE_STATUS:
                last = InstanceAPIUnavailable(f"{name}: HTTP {status}")
                if status == 429 and retry_after:
                    try:
                        await asyncio.sleep(min(float(retry_after), MAX_RETRY_AFTER))
                    except ValueError:
                        pass
                continue
            return self._answer(name, status, raw)
        raise InstanceAPIUnavailable(f"{name}: platform unreachable ({last})")

    @staticmethod
    def _answer(name: str, status: int, raw: bytes) -> Any:
        try:
            doc = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            raise InstanceAPIUnavailable(f"{name}: unreadable answer (HTTP {status})") from None
        if 200 <= status < 300:
            result = doc.get("result") if isinstance(doc, dict) else None
            return OPERATIONS[name].result.decode(result)
        error = doc.get("error") if isinstance(doc, dict) else None
        if isinstance(error, dict) and isinstance(error.get("domain"), dict):
            raise error_from_doc(error["domain"])
        message = error.get("message") if isinstance(error, dict) else None
        raise InstanceAPIUnavailable(f"{name}: HTTP {status} {message or ''}".strip())

    # -- the port ----------------------------------------------------------------------------------

    async def settings(self) -> dict[str, Any]:
        return await self.call("settings")

    async def update_settings(
        self, changes: dict[str, Any], *, interaction: InteractionRef
    ) -> dict[str, Any]:
        return await self.call("update_settings", changes=changes, interaction=_by(interaction))

    async def bind_guild(self, instance_key: str, *, interaction: InteractionRef) -> bool:
        return bool(await self.call(
            "bind_guild", instance_key=instance_key, interaction=_by(interaction)
        ))

    async def get_cart(self, interaction: InteractionRef) -> CartView | None:
        return await self.call("get_cart", interaction=_by(interaction))

    async def get_cart_by_id(self, cart_id: str) -> Cart:
        return await self.call("get_cart_by_id", cart_id=cart_id)

    async def cart_in_channel(self, channel_id: str) -> CartView | None:
        return await self.call("cart_in_channel", channel_id=channel_id)

    async def add_item(
        self, interaction: InteractionRef, product_id: str, variant_id: str, quantity: int
    ) -> CartView:
        return await self.call(
            "add_item",
            interaction=_by(interaction),
            product_id=product_id,
            variant_id=variant_id,
            quantity=quantity,
        )

    async def set_item(
        self, interaction: InteractionRef, product_id: str, variant_id: str, quantity: int
    ) -> CartView:
        return await self.call(
            "set_item",
            interaction=_by(interaction),
            product_id=product_id,
            variant_id=variant_id,
            quantity=quantity,
        )

    async def apply_coupon(self, interaction: InteractionRef, code: str) -> CartView:
        return await self.call("apply_coupon", interaction=_by(interaction), code=code)

    async def remove_coupon(self, interaction: InteractionRef) -> CartView:
        return await self.call("remove_coupon", interaction=_by(interaction))

    async def cancel_cart(self, interaction: InteractionRef) -> None:
        await self.call("cancel_cart", interaction=_by(interaction))

    async def bind_cart_channel(self, cart_id: str, channel_id: str, message_id: str) -> None:
        await self.call(
            "bind_cart_channel", cart_id=cart_id, channel_id=channel_id, message_id=message_id
        )

    async def pay(self, interaction: InteractionRef) -> PaymentStart:
        return await self.call("pay", interaction=_by(interaction))

    async def get_order(self, order_id: str) -> Order:
        return await self.call("get_order", order_id=order_id)

    async def check_payment(self, order_id: str) -> Order:
        return await self.call("check_payment", order_id=order_id)

    async def carts_with_open_channels(self) -> list[dict[str, Any]]:
        return await self.call("carts_with_open_channels")

    async def acknowledge_delivery(self, order_id: str, interaction: InteractionRef) -> bool:
        return bool(await self.call(
            "acknowledge_delivery", order_id=order_id, interaction=_by(interaction)
        ))

    async def send_purchases(self, interaction: InteractionRef) -> int:
        return int(await self.call("send_purchases", interaction=_by(interaction)) or 0)

    async def list_subscriptions(self, interaction: InteractionRef) -> list[dict[str, Any]]:
        return list(await self.call("list_subscriptions", interaction=_by(interaction)) or [])

    async def renew_subscription(
        self, interaction: InteractionRef, subscription_id: str
    ) -> PaymentStart:
        return await self.call(
            "renew_subscription", interaction=_by(interaction), subscription_id=subscription_id
        )

    async def start_card_renewal(
        self, interaction: InteractionRef, subscription_id: str
    ) -> dict[str, Any]:
        return dict(await self.call(
            "start_card_renewal", interaction=_by(interaction), subscription_id=subscription_id
        ) or {})

    async def cancel_card_renewal(
        self, interaction: InteractionRef, subscription_id: str
    ) -> bool:
        return bool(await self.call(
            "cancel_card_renewal", interaction=_by(interaction), subscription_id=subscription_id
        ))

    async def member_joined(self, member_id: str) -> int:
        return int(await self.call("member_joined", member_id=member_id) or 0)

    async def mark_cart_channel_closed(self, cart_id: str) -> None:
        await self.call("mark_cart_channel_closed", cart_id=cart_id)

    async def staff_confirm(self, cart_id: str, *, interaction: InteractionRef) -> Order:
        return await self.call("staff_confirm", cart_id=cart_id, interaction=_by(interaction))

    async def list_products(self) -> list[Product]:
        return await self.call("list_products")

    async def get_product(self, product_id: str) -> Product:
        return await self.call("get_product", product_id=product_id)

    async def create_product(
        self, data: dict[str, Any], *, interaction: InteractionRef
    ) -> Product:
        return await self.call("create_product", data=data, interaction=_by(interaction))

    async def update_product(
        self, product_id: str, changes: dict[str, Any], *, interaction: InteractionRef
    ) -> Product:
        return await self.call(
            "update_product", product_id=product_id, changes=changes,
            interaction=_by(interaction),
        )

    async def remove_product(self, product_id: str, *, interaction: InteractionRef) -> Product:
        return await self.call(
            "remove_product", product_id=product_id, interaction=_by(interaction)
        )

    async def record_posts(
        self, product_id: str, posts: list[dict[str, str]], *, interaction: InteractionRef
    ) -> None:
        await self.call(
            "record_posts", product_id=product_id, posts=posts, interaction=_by(interaction)
        )

    async def stock_counts(self) -> dict[str, dict[str, int]]:
        return await self.call("stock_counts")

    async def import_stock(
        self, product_id: str, variant_id: str, data: bytes | str, *,
        interaction: InteractionRef,
    ) -> ImportReport:
        return await self.call(
            "import_stock",
            product_id=product_id,
            variant_id=variant_id,
            data=encode_stock_data(data),
            interaction=_by(interaction),
        )

    async def send_keys(
        self, variant_id: str, *, interaction: InteractionRef, limit: int = 20
    ) -> int:
        return int(await self.call(
            "send_keys", variant_id=variant_id, limit=limit, interaction=_by(interaction)
        ) or 0)

    async def list_coupons(self, *, interaction: InteractionRef) -> list[Coupon]:
        return await self.call("list_coupons", interaction=_by(interaction))

    async def create_coupon(
        self, data: dict[str, Any], *, interaction: InteractionRef
    ) -> Coupon:
        return await self.call("create_coupon", data=data, interaction=_by(interaction))

    async def set_coupon_active(
        self, code: str, active: bool, *, interaction: InteractionRef
    ) -> Coupon:
        return await self.call(
            "set_coupon_active", code=code, active=active, interaction=_by(interaction)
        )

    async def list_orders(
        self, *, interaction: InteractionRef, status: str | None = None
    ) -> list[Order]:
        return await self.call("list_orders", status=status, interaction=_by(interaction))

    async def log(self, lines: list[dict[str, str]]) -> None:
        await self.call("log", lines=lines)

    async def heartbeat(self, beat: Heartbeat) -> None:
        await self.call("heartbeat", **heartbeat_to_fields(beat))
