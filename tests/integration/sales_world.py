"""A small shop on a real store, through the real container, for the sales tests.

The store is the JSON store in `data_dir`, or PostgreSQL when ASTRA_DATABASE_URL is set (the
`store_backend` fixture sets it for its PostgreSQL run)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dependency_injector import providers

from astra.adapters.clock import FrozenClock
from astra.container import Container, build_container
from astra.ports.chat import DirectMessagesClosed, OutgoingMessage
from astra.settings import Settings, ensure_dev_secrets

INSTANCE = "shop-1"
OWNER = "usr_owner"


def text_of(message: OutgoingMessage) -> str:
    """What a reader sees of a message: its text, then its embeds' titles and descriptions (a
    delivery is an embed when the seller's template fits one)."""
    parts = [message.content] if message.content else []
    for embed in message.embeds:
        parts += [str(embed.get(k)) for k in ("title", "description") if embed.get(k)]
    return "\n".join(parts)


class RecordingChat:
    """Stands in for Discord (an external service) where a test needs a ChatPlatform."""

    def __init__(self, dms_closed: bool = False) -> None:
        self.dms: list[tuple[str, str]] = []
        self.channel_messages: list[tuple[str, str]] = []
        self.roles: list[tuple[str, str, str]] = []
        self.dms_closed = dms_closed

    async def send_dm(self, user_id: str, message: OutgoingMessage) -> str:
        if self.dms_closed:
            raise DirectMessagesClosed()
        self.dms.append((user_id, text_of(message)))
        return f"dm{len(self.dms)}"

    async def send_message(self, channel_id: str, message: OutgoingMessage) -> str:
        self.channel_messages.append((channel_id, text_of(message)))
        return f"m{len(self.channel_messages)}"

    async def grant_role(self, guild_id: str, user_id: str, role_id: str) -> None:
        self.roles.append((guild_id, user_id, role_id))


@dataclass
class Shop:
    container: Container
    clock: FrozenClock
    product_id: str
    variant_id: str
    other_variant_id: str

    def __getattr__(self, name: str) -> Any:
        # shop.sales, shop.settlement, ... are the container's services
        return getattr(self.container, name)()

    def keys(self, n: int, prefix: str = "KEY") -> str:
        return "\n".join(f"{prefix}-{i:05d}" for i in range(n))


def make_shop(data_dir: Path, *, keys: int = 10, fee_bps: int = 600,
              start: datetime | None = None, **settings: Any) -> Shop:
    # A fixed instant by default; tests that talk to a gateway with its own clock pass now.
    clock = FrozenClock(start or datetime(2026, 11, 29, 12, 0, tzinfo=UTC))
    settings.setdefault("database_url", os.environ.get("ASTRA_DATABASE_URL", ""))
    container = build_container(
        ensure_dev_secrets(Settings(data_dir=data_dir, platform_fee_bps=fee_bps, **settings))
    )
    container.clock.override(providers.Object(clock))
    container.instances().create(INSTANCE, owner_id=OWNER, name="Loja Teste", actor="test")
    product = container.catalog().create_product(
        INSTANCE,
        {
            "name": "Steam Key",
            "variants": [
                {"name": "Mensal", "price_cents": 1990, "max_per_order": 5},
                {"name": "Anual", "price_cents": 9990, "max_per_order": 2},
            ],
        },
        actor="test",
    )
    shop = Shop(container, clock, product.id, product.variants[0].id, product.variants[1].id)
    if keys:
        shop.catalog.import_stock(
            INSTANCE, product.id, shop.variant_id, shop.keys(keys), actor="test"
        )
    return shop


def key_states(shop: Shop) -> dict[str, int]:
    with shop.store.instance(INSTANCE, write=False) as uow:
        docs = uow.stock.all()
    out: dict[str, int] = {}
    for d in docs:
        out[d["state"]] = out.get(d["state"], 0) + 1
    return out


def check_key_invariants(shop: Shop) -> None:
    """Each key in exactly one consistent state; no key in two orders or two carts."""
    with shop.store.instance(INSTANCE, write=False) as uow:
        keys = uow.stock.all()
        orders = {o["id"]: o for o in uow.orders.all()}
        carts = {c["id"]: c for c in uow.carts.all()}
    seen_in_orders: dict[str, str] = {}
    for order in orders.values():
        for line in order["lines"]:
            for kid in line["key_ids"]:
                if order["status"] in ("paid", "delivered", "waiting_stock", "refunded"):
                    assert kid not in seen_in_orders, f"key {kid} in two orders"
                    seen_in_orders[kid] = order["id"]
    for k in keys:
        if k["state"] == "available":
            assert k["cart_id"] is None and k["order_id"] is None
        elif k["state"] == "reserved":
            cart = carts[k["cart_id"]]
            assert cart["state"] in ("open", "checkout") and k["order_id"] is None
            assert k["id"] in [x for ln in cart["lines"] for x in ln["key_ids"]]
        else:
            assert k["state"] == "sold" and k["cart_id"] is None
            assert seen_in_orders.get(k["id"]) == k["order_id"]


def stored_bytes(shop: Shop) -> dict[str, bytes]:
    """Everything the store holds for the shop, as stored: the JSON store's files of the portal
    and the instance, or the rows of every PostgreSQL table (documents as the server keeps them).
    Equal before and after means nothing was written."""
    store = shop.store
    if not shop.container.settings().database_url:
        data_dir = shop.container.settings().data_dir
        files = [data_dir / "portal.journal", data_dir / "portal.json",
                 *sorted((data_dir / "instances" / INSTANCE).iterdir())]
        return {str(p): p.read_bytes() for p in files if p.is_file()}
    from astra.adapters.store.postgresql.unit_of_work import TABLES

    out = {}
    with store.connect() as conn:
        for table in TABLES.values():
            rows = conn.execute(
                f"SELECT domain, id, seq, doc::text FROM {table} ORDER BY domain, seq"
            ).fetchall()
            out[table] = repr(rows).encode()
    return out
