"""The plugin manager on a real JSON store: discovery, persisted toggles seen by other managers and
processes, failure isolation, firstresult, and the default delivery plugin against a recording
stand-in for Discord."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from astra.adapters.clock import FrozenClock
from astra.adapters.store.json import JsonStore
from astra.domain.cart import Cart, CartLine, CartState
from astra.domain.catalog import DeliveryKind, Product, Variant
from astra.domain.coupon import Coupon, CouponKind
from astra.domain.errors import NotFoundError
from astra.domain.events import DomainEvent
from astra.domain.hooks import (
    CouponOutcome,
    DeliveryItem,
    DeliveryOutcome,
    SaleContext,
    Veto,
)
from astra.domain.order import Order, OrderLine, OrderStatus
from astra.domain.pricing import Adjustment, Quote
from astra.plugins import hookimpl
from astra.plugins.delivery import MAX_MESSAGE
from astra.plugins.manager import GLOBAL_TOGGLES_TTL_SECONDS, PluginManager, UnknownPlugin
from astra.ports.chat import ChatError, DirectMessagesClosed, OutgoingMessage
from astra.ports.store import LockOrderError

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
DEFAULTS = {"sales", "coupons", "delivery"}


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


@pytest.fixture
def manager(data_dir: Path, clock: FrozenClock) -> PluginManager:
    return PluginManager(JsonStore(data_dir), clock)


def ctx(buyer_id: str = "u1", **settings: Any) -> SaleContext:
    return SaleContext(instance_id="shop-1", buyer_id=buyer_id, now=NOW, settings=settings)


def a_cart(quantity: int = 1, unit: int = 1000) -> Cart:
    line = CartLine("p1", "v1", "Game", "Steam", "key", quantity, unit)
    return Cart("c1", "u1", CartState.OPEN, NOW.isoformat(), NOW.isoformat(), lines=[line])


def a_coupon() -> Coupon:
    return Coupon(id="cp", code="SAVE10", kind=CouponKind.PERCENT, value=10)


# -- discovery and toggles ------------------------------------------------------------------------


def test_entry_points_discover_the_default_plugins(manager: PluginManager) -> None:
    info = {p["name"]: p for p in manager.plugins()}
    assert set(info) >= DEFAULTS
    assert info["sales"]["hooks"] == ["astra_cart_line_check", "astra_checkout_check"]
    assert info["coupons"]["hooks"] == ["astra_coupon_evaluate"]
    assert info["delivery"]["hooks"] == ["astra_deliver_line"]
    for name in DEFAULTS:
        assert info[name]["default_enabled"] is True
        assert info[name]["description"]
        assert info[name]["errors"] == 0 and info[name]["last_error"] is None
    assert all(manager.effective("shop-1")[n] for n in DEFAULTS)


def test_a_plugin_that_fails_to_load_is_left_out(
    data_dir: Path, clock: FrozenClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An installed distribution (its metadata on sys.path) whose entry point cannot be imported.
    dist = tmp_path / "site" / "astra_broken-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: astra-broken\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[astra.plugins]\nbroken_ep = astra_no_such_module\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    with capture_logs() as logs:
        manager = PluginManager(JsonStore(data_dir), clock)
    assert set(manager.names()) >= DEFAULTS
    assert [(e["event"], e["plugin"]) for e in logs] == [("plugin.load_failed", "broken_ep")]
    (info,) = [p for p in manager.plugins() if p["name"] == "broken_ep"]
    assert info["loaded"] is False and "astra_no_such_module" in info["last_error"]
    with pytest.raises(UnknownPlugin):
        manager.set_global("broken_ep", True, "admin:ops")


def test_no_entry_points_when_asked(data_dir: Path, clock: FrozenClock) -> None:
    assert PluginManager(JsonStore(data_dir), clock, load_entry_points=False).names() == []


def test_global_toggle_is_persisted_audited_and_seen_by_another_manager(
    manager: PluginManager, data_dir: Path, clock: FrozenClock
) -> None:
    other = PluginManager(JsonStore(data_dir), clock)  # another process's view of the same data
    seconds = [100.0]
    other.monotonic = lambda: seconds[0]
    assert other.for_instance("shop-1").coupon(ctx(), a_cart(), a_coupon()) is not None

    doc = manager.set_global("coupons", False, "admin:ops")
    assert doc == {
        "id": "coupons",
        "enabled": False,
        "updated_at": NOW.isoformat(),
        "updated_by": "admin:ops",
    }
    assert manager.effective("shop-1")["coupons"] is False  # the writer's own view: at once
    # Another process keeps the global toggles it read for a moment (each sale asks for
    # them), then reads them again.
    assert other.effective("shop-1")["coupons"] is True
    seconds[0] += GLOBAL_TOGGLES_TTL_SECONDS
    assert other.effective("shop-1")["coupons"] is False
    assert other.for_instance("shop-1").coupon(ctx(), a_cart(), a_coupon()) is None
    assert other.effective()["coupons"] is False  # the global view, no instance

    with JsonStore(data_dir).portal(write=False) as uow:
        assert uow.plugin_toggles.require("coupons") == doc
        (entry,) = uow.audit.all()
    assert entry["action"] == "plugin.disabled"
    assert entry["target"] == "plugin:coupons"
    assert entry["actor"] == "admin:ops"
    assert entry["at"] == NOW.isoformat()
    assert entry["details"]["scope"] == "global" and entry["details"]["enabled"] is False

    manager.set_global("coupons", True, "admin:ops")
    seconds[0] += GLOBAL_TOGGLES_TTL_SECONDS
    assert other.for_instance("shop-1").coupon(ctx(), a_cart(), a_coupon()) is not None


def test_instance_override_beats_global_and_can_be_cleared(
    manager: PluginManager, data_dir: Path, clock: FrozenClock
) -> None:
    other = PluginManager(JsonStore(data_dir), clock)
    manager.set_global("sales", False, "admin:ops")
    manager.set_instance("shop-1", "sales", True, "seller:ana")
    assert other.effective("shop-1")["sales"] is True
    assert other.effective("shop-2")["sales"] is False  # other instances follow the global toggle
    blocked = SaleContext("shop-1", "u1", NOW, buyer={"blocked": True})
    assert other.for_instance("shop-1").check_checkout(blocked, a_cart(), Quote(1000)) == Veto(
        "buyer_blocked"
    )

    with JsonStore(data_dir).instance("shop-1", write=False) as uow:
        assert uow.plugin_toggles.require("sales")["updated_by"] == "seller:ana"
        (entry,) = uow.audit.all()
    assert entry["action"] == "plugin.enabled"
    assert entry["details"] == {
        "plugin": "sales",
        "scope": "instance",
        "instance_id": "shop-1",
        "enabled": True,
        "previous": None,
    }

    assert manager.set_instance("shop-1", "sales", None, "seller:ana") is None
    assert other.effective("shop-1")["sales"] is False
    assert other.for_instance("shop-1").check_checkout(blocked, a_cart(), Quote(1000)) is None
    with JsonStore(data_dir).instance("shop-1", write=False) as uow:
        assert uow.plugin_toggles.get("sales") is None
        assert [e["action"] for e in uow.audit.all()] == [
            "plugin.enabled",
            "plugin.override_cleared",
        ]


def test_toggle_from_another_process_applies_on_the_next_call(
    manager: PluginManager, data_dir: Path
) -> None:
    hooks = manager.for_instance("shop-1")
    assert hooks.coupon(ctx(), a_cart(), a_coupon()) is not None
    script = (
        "import sys\n"
        "from astra.adapters.clock import SystemClock\n"
        "from astra.adapters.store.json import JsonStore\n"
        "from astra.plugins.manager import PluginManager\n"
        "pm = PluginManager(JsonStore(sys.argv[1]), SystemClock())\n"
        "pm.set_instance('shop-1', 'coupons', False, 'seller:cli')\n"
    )
    subprocess.run([sys.executable, "-c", script, str(data_dir)], check=True, timeout=60)
    assert manager.for_instance("shop-1").coupon(ctx(), a_cart(), a_coupon()) is None


def test_unknown_plugin_is_a_clear_error(manager: PluginManager) -> None:
    with pytest.raises(UnknownPlugin) as info:
        manager.set_global("nope", True, "admin:ops")
    assert isinstance(info.value, KeyError) and isinstance(info.value, NotFoundError)
    assert "nope" in str(info.value)
    with pytest.raises(KeyError):
        manager.set_instance("shop-1", "nope", None, "seller:ana")


def test_without_the_portal_instance_overrides_and_defaults_apply(
    data_dir: Path, clock: FrozenClock
) -> None:
    writer = PluginManager(JsonStore(data_dir), clock)
    writer.set_instance("shop-1", "sales", False, "seller:ana")
    # The portal's file is unreadable here (as for a tenant container that cannot see it).
    (data_dir / "portal.json").write_bytes(b"\x00not json")
    tenant = PluginManager(JsonStore(data_dir), clock)
    with capture_logs() as logs:
        assert tenant.effective("shop-1") == {
            "coupons": True, "delivery": True, "sales": False, "subscriptions": True
        }
        tenant.for_instance("shop-1")
    assert [e["event"] for e in logs] == ["plugin.global_toggles_unreadable"]  # once


def test_for_instance_inside_an_instance_unit_of_work(
    manager: PluginManager, data_dir: Path
) -> None:
    manager.set_instance("shop-1", "coupons", False, "seller:ana")
    store = manager.store
    with store.instance("shop-1") as uow:
        with pytest.raises(LockOrderError):
            manager.for_instance("shop-1")
        hooks = manager.for_instance("shop-1", uow=uow)
    assert "coupons" not in hooks.enabled and "sales" in hooks.enabled


# -- isolation and call semantics -----------------------------------------------------------------


class Broken:
    NAME = "broken"
    DESCRIPTION = "raises everywhere"
    DEFAULT_ENABLED = True

    @hookimpl
    def astra_checkout_check(self, ctx: SaleContext) -> Veto | None:
        raise RuntimeError("boom")

    @hookimpl
    def astra_cart_adjustments(self, cart: Cart) -> list[Adjustment]:
        raise ValueError("bad price")

    @hookimpl
    def astra_event(self, event: DomainEvent) -> None:
        raise RuntimeError("event boom")


class Surcharge:
    NAME = "surcharge"
    DESCRIPTION = "adds a fee"
    DEFAULT_ENABLED = False

    @hookimpl
    def astra_cart_adjustments(self, ctx: SaleContext, cart: Cart) -> list[Adjustment]:
        return [Adjustment("surcharge", "fee", 150)]


def test_a_raising_plugin_is_logged_counted_and_skipped(manager: PluginManager) -> None:
    manager.register(Broken())
    manager.register(Surcharge())
    manager.set_global("surcharge", True, "admin:ops")
    hooks = manager.for_instance("shop-1")
    blocked = SaleContext("shop-1", "u1", NOW, buyer={"blocked": True})
    with capture_logs() as logs:
        # the default sales plugin still answers after the broken one failed
        assert hooks.check_checkout(blocked, a_cart(), Quote(1000)) == Veto("buyer_blocked")
        assert hooks.cart_adjustments(ctx(), a_cart()) == [Adjustment("surcharge", "fee", 150)]
        hooks.notify(ctx(), DomainEvent("stock.imported", "shop-1"))
    failures = [e for e in logs if e["event"] == "plugin.failed"]
    assert [(e["plugin"], e["hook"]) for e in failures] == [
        ("broken", "astra_checkout_check"),
        ("broken", "astra_cart_adjustments"),
        ("broken", "astra_event"),
    ]
    assert failures[0]["error"] == "RuntimeError('boom')"
    info = {p["name"]: p for p in manager.plugins()}
    assert info["broken"]["errors"] == 3
    assert info["broken"]["last_error"] == "astra_event: RuntimeError('event boom')"
    assert info["sales"]["errors"] == 0
    assert info["surcharge"]["default_enabled"] is False


def test_a_disabled_plugin_is_not_called(manager: PluginManager) -> None:
    manager.register(Broken())
    manager.set_instance("shop-1", "broken", False, "seller:ana")
    manager.for_instance("shop-1").check_checkout(ctx(), a_cart(), Quote(1000))
    assert {p["name"]: p["errors"] for p in manager.plugins()}["broken"] == 0
    manager.for_instance("shop-2").check_checkout(ctx(), a_cart(), Quote(1000))
    assert {p["name"]: p["errors"] for p in manager.plugins()}["broken"] == 1


def test_a_wrong_return_type_counts_as_a_failure(manager: PluginManager) -> None:
    class Sloppy:
        NAME = "sloppy"

        @hookimpl
        def astra_checkout_check(self) -> str:
            return "no"

        @hookimpl
        def astra_cart_adjustments(self) -> list[Any]:
            return [Adjustment("sloppy", "ok", -10), {"amount_cents": -99}]

    manager.register(Sloppy())
    hooks = manager.for_instance("shop-1")
    assert hooks.check_checkout(ctx(), a_cart(), Quote(1000)) is None
    assert hooks.cart_adjustments(ctx(), a_cart()) == []
    assert {p["name"]: p["errors"] for p in manager.plugins()}["sloppy"] == 2


class Fixed:
    NAME = "fixed"

    def __init__(self, cents: int | None) -> None:
        self.cents = cents
        self.calls = 0

    @hookimpl
    def astra_coupon_evaluate(self, coupon: Coupon) -> CouponOutcome | None:
        self.calls += 1
        return None if self.cents is None else CouponOutcome(discount_cents=self.cents)


def test_coupon_is_firstresult(data_dir: Path, clock: FrozenClock) -> None:
    manager = PluginManager(JsonStore(data_dir), clock, load_entry_points=False)
    first, second = Fixed(111), Fixed(222)
    manager.register(first, "first")
    manager.register(second, "second")
    hooks = manager.for_instance("shop-1")
    # pluggy's order: the last registered is asked first, and its answer ends the call
    assert hooks.coupon(ctx(), a_cart(), a_coupon()) == CouponOutcome(discount_cents=222)
    assert (first.calls, second.calls) == (0, 1)

    second.cents = None  # no opinion: the next plugin decides
    assert hooks.coupon(ctx(), a_cart(), a_coupon()) == CouponOutcome(discount_cents=111)
    manager.set_global("first", False, "admin:ops")
    assert manager.for_instance("shop-1").coupon(ctx(), a_cart(), a_coupon()) is None


def test_a_raising_coupon_plugin_leaves_the_decision_to_the_next(manager: PluginManager) -> None:
    class Crash:
        NAME = "crash"

        @hookimpl(tryfirst=True)
        def astra_coupon_evaluate(self) -> CouponOutcome:
            raise RuntimeError("crash")

    manager.register(Crash())
    outcome = manager.for_instance("shop-1").coupon(ctx(), a_cart(2), a_coupon())
    assert outcome == CouponOutcome(discount_cents=200)  # the default coupons plugin
    assert {p["name"]: p["errors"] for p in manager.plugins()}["crash"] == 1


def test_notify_calls_astra_event_and_the_order_hook(manager: PluginManager) -> None:
    seen: list[tuple[str, Any]] = []

    class Listener:
        NAME = "listener"

        @hookimpl
        def astra_event(self, event: DomainEvent) -> None:
            seen.append(("event", event.name))

        @hookimpl
        def astra_order_paid(self, ctx: SaleContext, order: dict[str, Any]) -> None:
            order["status"] = "tampered"  # a copy: the caller's document is untouched
            seen.append(("paid", order["id"]))

        @hookimpl
        def astra_order_refunded(self, order: dict[str, Any]) -> None:
            seen.append(("refunded", order["id"]))

    manager.register(Listener())
    hooks = manager.for_instance("shop-1")
    order = {"id": "o1", "status": "paid"}
    hooks.notify(ctx(), DomainEvent("order.paid", "shop-1", {"order": order}))
    hooks.notify(ctx(), DomainEvent("cart.expired", "shop-1", {"cart_id": "c1"}))
    hooks.notify(ctx(), DomainEvent("order.refunded", "shop-1", {"order": order}))
    assert seen == [
        ("event", "order.paid"),
        ("paid", "o1"),
        ("event", "cart.expired"),
        ("event", "order.refunded"),
        ("refunded", "o1"),
    ]
    assert order["status"] == "paid"


# -- delivery -------------------------------------------------------------------------------------


class RecordingChat:
    """Stands in for Discord (an external service): records calls, fails on request."""

    def __init__(
        self,
        *,
        dms_closed: bool = False,
        fail: ChatError | None = None,
        broken_channels: tuple[str, ...] = (),
    ) -> None:
        self.dms_closed = dms_closed
        self.fail = fail
        self.broken_channels = broken_channels
        self.dms: list[tuple[str, str]] = []
        self.posts: list[tuple[str, str]] = []
        self.roles: list[tuple[str, str, str]] = []
        self.nonces: list[str | None] = []

    async def send_dm(self, user_id: str, message: OutgoingMessage) -> str:
        if self.fail:
            raise self.fail
        if self.dms_closed:
            raise DirectMessagesClosed()
        assert len(message.content) <= MAX_MESSAGE
        self.dms.append((user_id, message.content))
        self.nonces.append(message.nonce)
        return f"m{len(self.dms)}"

    async def send_message(self, channel_id: str, message: OutgoingMessage) -> str:
        if channel_id in self.broken_channels:
            raise ChatError("missing access", retryable=False)
        assert len(message.content) <= MAX_MESSAGE
        self.posts.append((channel_id, message.content))
        self.nonces.append(message.nonce)
        return f"p{len(self.posts)}"

    async def grant_role(self, guild_id: str, user_id: str, role_id: str) -> None:
        if self.fail:
            raise self.fail
        self.roles.append((guild_id, user_id, role_id))


def an_item(
    kind: str = "key", keys: list[str] | None = None, content: str = "", message: str | None = None
) -> DeliveryItem:
    keys = ["AAAA-1111", "BBBB-2222"] if keys is None and kind == "key" else keys or []
    line = OrderLine("p1", "v1", "Game", "Steam", kind, len(keys) or 1, 1000)
    order = Order(
        "o1", "c1", "u1", OrderStatus.PAID, [line], 1000, 0, 1000, NOW.isoformat(), NOW.isoformat()
    )
    product = Product(
        "p1",
        "Game",
        [Variant("v1", "Steam", 1000)],
        delivery_kind=DeliveryKind(kind),
        content=content,
    )
    if message is None:
        message = "Obrigado!\n" + "\n".join(keys)
    return DeliveryItem(order=order, line=line, product=product, keys=keys, message=message)


async def test_key_delivery_by_dm(manager: PluginManager) -> None:
    chat = RecordingChat()
    outcome = await manager.for_instance("shop-1").deliver(ctx(), an_item(), {"chat": chat})
    assert outcome == DeliveryOutcome(ok=True, channel="dm")
    assert chat.dms == [("u1", "Obrigado!\nAAAA-1111\nBBBB-2222")]


class EmbedRefusingChat(RecordingChat):
    """Discord refusing an embed for good (400: a link it will not embed): plain text goes."""

    def __init__(self, refuse: bool) -> None:
        super().__init__()
        self.refuse = refuse
        self.embeds: list[dict] = []

    async def send_dm(self, user_id: str, message: OutgoingMessage) -> str:
        if message.embeds:
            if self.refuse:
                raise ChatError("discord 400 (50035): Invalid Form Body", retryable=False)
            self.embeds += message.embeds
            self.nonces.append(message.nonce)
            return "e1"
        return await super().send_dm(user_id, message)


async def test_a_dm_embed_carries_the_keys_the_template_left_out(
    manager: PluginManager,
) -> None:
    chat = EmbedRefusingChat(refuse=False)
    item = dataclasses.replace(
        an_item(message="Obrigado!"),
        embed={"title": "Entregue", "description": "Obrigado!", "color": 1},
        idempotency_key="shop-1:o1:0:0",
    )
    outcome = await manager.for_instance("shop-1").deliver(ctx(), item, {"chat": chat})
    assert outcome == DeliveryOutcome(ok=True, channel="dm")
    assert chat.embeds == [{"title": "Entregue", "color": 1,
                            "description": "Obrigado!\nAAAA-1111\nBBBB-2222"}]
    assert chat.dms == [] and chat.nonces[0]


async def test_an_embed_discord_refuses_falls_back_to_plain_text(manager: PluginManager) -> None:
    chat = EmbedRefusingChat(refuse=True)
    item = dataclasses.replace(
        an_item(message="Obrigado!"),
        embed={"title": "Entregue", "description": "Obrigado!", "color": 1},
    )
    outcome = await manager.for_instance("shop-1").deliver(ctx(), item, {"chat": chat})
    assert outcome == DeliveryOutcome(ok=True, channel="dm")
    assert chat.dms == [("u1", "Obrigado!\nAAAA-1111\nBBBB-2222")]


async def test_keys_missing_from_the_template_are_appended(manager: PluginManager) -> None:
    chat = RecordingChat()
    item = an_item(message="Obrigado pela compra!")
    await manager.for_instance("shop-1").deliver(ctx(), item, {"chat": chat})
    assert chat.dms == [("u1", "Obrigado pela compra!\nAAAA-1111\nBBBB-2222")]


async def test_file_delivery_appends_the_url(manager: PluginManager) -> None:
    chat = RecordingChat()
    item = an_item("file", content="https://files.example/game.zip", message="Seu arquivo:")
    outcome = await manager.for_instance("shop-1").deliver(ctx(), item, {"chat": chat})
    assert outcome is not None and outcome.ok
    assert chat.dms == [("u1", "Seu arquivo:\nhttps://files.example/game.zip")]


async def test_closed_dms_fall_back_to_the_cart_channel(manager: PluginManager) -> None:
    chat = RecordingChat(dms_closed=True)
    outcome = await manager.for_instance("shop-1").deliver(
        ctx(staff_channel_id="staff-9"), an_item(), {"chat": chat, "cart_channel_id": "cart-7"}
    )
    assert outcome == DeliveryOutcome(ok=True, channel="cart_channel")
    assert chat.posts == [("cart-7", "<@u1>\nObrigado!\nAAAA-1111\nBBBB-2222")]


async def test_closed_dms_then_staff_channel(manager: PluginManager) -> None:
    chat = RecordingChat(dms_closed=True, broken_channels=("cart-7",))
    outcome = await manager.for_instance("shop-1").deliver(
        ctx(staff_channel_id="staff-9"), an_item(), {"chat": chat, "cart_channel_id": "cart-7"}
    )
    assert outcome == DeliveryOutcome(ok=True, channel="staff")
    assert [c for c, _ in chat.posts] == ["staff-9"]


async def test_closed_dms_and_nowhere_else_is_a_failure(manager: PluginManager) -> None:
    outcome = await manager.for_instance("shop-1").deliver(
        ctx(), an_item(), {"chat": RecordingChat(dms_closed=True)}
    )
    assert outcome is not None and not outcome.ok and not outcome.retryable


async def test_a_crashing_delivery_plugin_is_named_in_the_outcome(
    manager: PluginManager,
) -> None:
    chat = RecordingChat(fail=RuntimeError("Session is closed"))
    outcome = await manager.for_instance("shop-1").deliver(ctx(), an_item(), {"chat": chat})
    assert outcome == DeliveryOutcome(
        ok=False, error="delivery plugin failed: delivery: RuntimeError", retryable=True
    )
    assert {p["name"]: p["errors"] for p in manager.plugins()}["delivery"] == 1


async def test_chat_error_is_a_failed_outcome(manager: PluginManager) -> None:
    chat = RecordingChat(fail=ChatError("503 from Discord", retryable=True))
    outcome = await manager.for_instance("shop-1").deliver(ctx(), an_item(), {"chat": chat})
    assert outcome == DeliveryOutcome(
        ok=False, channel="dm", error="503 from Discord", retryable=True
    )
    assert {p["name"]: p["errors"] for p in manager.plugins()}["delivery"] == 0  # not a crash


async def test_role_is_granted_even_with_closed_dms(manager: PluginManager) -> None:
    chat = RecordingChat(dms_closed=True)
    item = an_item("role", content="123456789012345678", message="Cargo liberado!")
    outcome = await manager.for_instance("shop-1").deliver(ctx(guild_id="g1"), item, {"chat": chat})
    assert outcome == DeliveryOutcome(ok=True, channel="role")
    assert chat.roles == [("g1", "u1", "123456789012345678")]

    chat = RecordingChat()
    await manager.for_instance("shop-1").deliver(ctx(guild_id="g1"), item, {"chat": chat})
    assert chat.dms == [("u1", "Cargo liberado!")]

    failing = RecordingChat(fail=ChatError("missing permissions", retryable=False))
    outcome = await manager.for_instance("shop-1").deliver(
        ctx(guild_id="g1"), item, {"chat": failing}
    )
    assert outcome is not None and not outcome.ok and outcome.channel == "role"


async def test_long_key_lists_are_split_without_cutting_a_key(manager: PluginManager) -> None:
    keys = [f"KEY-{i:05d}-ABCDEFGHIJKLMNOP" for i in range(300)]  # ~8 KB
    chat = RecordingChat()
    outcome = await manager.for_instance("shop-1").deliver(
        ctx(), an_item(keys=keys), {"chat": chat}
    )
    assert outcome == DeliveryOutcome(ok=True, channel="dm")
    assert len(chat.dms) >= 5
    assert all(len(text) <= MAX_MESSAGE for _, text in chat.dms)
    sent = [ln for _, text in chat.dms for ln in text.splitlines()]
    assert sent == ["Obrigado!", *keys]


async def test_messages_carry_nonces_stable_per_generation_target_and_chunk(
    manager: PluginManager,
) -> None:
    keys = [f"KEY-{i:05d}-ABCDEFGHIJKLMNOP" for i in range(300)]  # several messages
    hooks = manager.for_instance("shop-1")

    async def nonces(key: str, **chat_options: Any) -> list[str | None]:
        chat = RecordingChat(**chat_options)
        item = dataclasses.replace(an_item(keys=keys), idempotency_key=key)
        await hooks.deliver(ctx(), item, {"chat": chat, "cart_channel_id": "cart-7"})
        return chat.nonces

    first = await nonces("shop-1:o1:0:0")
    assert len(first) >= 5 and len(set(first)) == len(first)
    assert all(n is not None and len(n) <= 25 for n in first)
    assert await nonces("shop-1:o1:0:0") == first  # a retry: Discord drops the duplicates
    assert set(await nonces("shop-1:o1:0:1")).isdisjoint(first)  # a staff redelivery
    assert set(await nonces("shop-1:o1:0:0", dms_closed=True)).isdisjoint(first)  # fallback
    # No key, no nonce: a constant one would make Discord drop every delivery but the first.
    assert set(await nonces("")) == {None}


async def test_unknown_kind_or_disabled_delivery_gives_none(manager: PluginManager) -> None:
    item = an_item()
    item.line.delivery_kind = "nft"
    assert (
        await manager.for_instance("shop-1").deliver(ctx(), item, {"chat": RecordingChat()}) is None
    )
    manager.set_global("delivery", False, "admin:ops")
    assert (
        await manager.for_instance("shop-1").deliver(ctx(), an_item(), {"chat": RecordingChat()})
        is None
    )


async def test_sync_and_async_delivery_plugins(data_dir: Path, clock: FrozenClock) -> None:
    manager = PluginManager(JsonStore(data_dir), clock, load_entry_points=False)

    class SyncNft:
        NAME = "sync_nft"

        @hookimpl
        def astra_deliver_line(self, item: DeliveryItem) -> DeliveryOutcome | None:
            return (
                DeliveryOutcome(ok=True, channel="chain")
                if item.line.delivery_kind == "nft"
                else None
            )

    class AsyncBroken:
        NAME = "async_broken"

        @hookimpl
        async def astra_deliver_line(self) -> DeliveryOutcome:
            raise RuntimeError("async boom")

    manager.register(SyncNft())
    manager.register(AsyncBroken())
    item = an_item()
    item.line.delivery_kind = "nft"
    assert await manager.for_instance("shop-1").deliver(ctx(), item, {}) == DeliveryOutcome(
        ok=True, channel="chain"
    )
    assert {p["name"]: p["errors"] for p in manager.plugins()}["async_broken"] == 1
