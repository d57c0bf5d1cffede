"""The whole stack under fire: 200 buyers buy through the fake Discord and the fake Mercado Pago
while `astra serve` (process runtime, real bot subprocess) is SIGKILLed and restarted, and
Mercado Pago's webhooks are dropped, duplicated and reordered.

Nothing here is told the faults are coming. Buyers behave as people do: a click that gets no
answer is clicked again, a paid order whose keys do not arrive gets "Já paguei". Afterwards the
books must balance exactly: one delivered order per approved payment, no key twice, every key in
one state, the seller's ledger equal to the orders.

Bounded: 200 buyers, a fixed number of kills, a deadline; loopback only. The figures are printed
(`-s`) and written to test-artifacts/torture-<runtime>.json (process, docker, and
process-postgresql for the run on the PostgreSQL store).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import secrets
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from astra.container import build_container
from astra.domain.services.diagnostics import Diagnostics
from astra.domain.timestamps import iso
from astra.settings import Settings, ensure_dev_secrets
from tests.e2e.bot_world import BOT_TOKEN, free_port, free_ports, text_of
from tests.fakes.discord import FakeDiscord
from tests.fakes.mercadopago import FakeMercadoPagoThread
from tests.integration.test_docker_runtime import (  # noqa: F401 - fixtures
    docker_client,
    runtime_gateway,
    runtime_image,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(900),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

ROOT = Path(__file__).resolve().parents[2]
INSTANCE = "loja-tortura"
OWNER = "usr_torture"
WEBHOOK_SECRET = "whsec-torture"
BUYERS = 200
CONCURRENCY = 25
KILLS = 6
STOCK = 230
PRICE_CENTS = 1990
RUN_DEADLINE = 240.0  # seconds for every buyer to hold their key
KEY_RE = re.compile(r"TORT-\d{4}-[0-9a-f]{8}")


# -- the platform as an operator runs it ---------------------------------------------------------


@dataclass
class Platform:
    """`astra serve` as a subprocess that can be killed -9 and started again."""

    env: dict[str, str]
    cwd: Path
    portal_port: int
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    kills: int = 0
    logs: list[Path] = field(default_factory=list)

    async def start(self) -> None:
        self.starts += 1
        log = self.cwd / f"serve-{self.starts}.log"
        self.logs.append(log)
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "astra.entrypoints.cli", "serve"],
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                # Its own session: a kill -9 of the platform leaves the bot it started running,
                # as it would in production, and the next platform must deal with it.
                start_new_session=True,
            )
        await self.wait_healthy()

    async def wait_healthy(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        url = f"http://127.0.0.1:{self.portal_port}/health"
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                assert self.proc is not None and self.proc.poll() is None, self.tail()
                with contextlib.suppress(aiohttp.ClientError, OSError):
                    async with http.get(url, timeout=aiohttp.ClientTimeout(total=2)) as resp:
                        if resp.status == 200:
                            return
                await asyncio.sleep(0.1)
        raise AssertionError(f"astra serve never became healthy:\n{self.tail()}")

    def kill(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self.kills += 1

    def stop(self) -> None:
        """SIGTERM, as an operator stops it: it stops the bot it runs, then itself."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def tail(self, lines: int = 40) -> str:
        if not self.logs:
            return ""
        return "\n".join(self.logs[-1].read_text(errors="replace").splitlines()[-lines:])


# -- the people ----------------------------------------------------------------------------------


@dataclass
class Tally:
    approvals: Counter[str] = field(default_factory=Counter)
    retries: Counter[str] = field(default_factory=Counter)
    checks: int = 0
    kills_in_flight: list[int] = field(default_factory=list)
    done: int = 0
    in_flight: int = 0


class World:
    def __init__(self, discord: FakeDiscord, mp: FakeMercadoPagoThread, guild: Any,
                 post_channel: Any, product_id: str, variant_id: str, seed: int) -> None:
        self.discord = discord
        self.mp = mp
        self.guild = guild
        self.post_channel = post_channel
        self.product_id = product_id
        self.variant_id = variant_id
        self.rng = random.Random(seed)
        self.tally = Tally()
        self.approve_lock = asyncio.Lock()

    # what a buyer can see

    def keys_in_dm(self, buyer: Any) -> list[str]:
        return [k for text in self.discord.dm_texts(buyer.id) for k in KEY_RE.findall(text)]

    def cart_channel(self, buyer: Any) -> str | None:
        """The private channel the bot opened for this buyer (they are named in its
        permission overwrites)."""
        mine = [str(c["id"]) for c in self.discord.channels_of(self.guild.id)
                if any(str(o.get("id")) == str(buyer.id)
                       for o in c.get("permission_overwrites") or [])]
        # Where the cart's buttons are, as a person would look (an empty one is not it).
        return next((c for c in mine if self.buttons(c)), mine[0] if mine else None)

    def buttons(self, channel: str) -> list[str]:
        return [c.get("custom_id") or ""
                for m in self.discord.messages(channel)
                for row in m.get("components") or []
                for c in row.get("components") or []]

    def codes_shown(self, channel: str) -> set[str]:
        return {e.get("description") or "" for m in self.discord.messages(channel)
                for e in m.get("embeds") or []}

    @staticmethod
    def qr_code(payment: dict[str, Any]) -> str:
        return ((payment.get("point_of_interaction") or {}).get("transaction_data") or {}) \
            .get("qr_code") or "?"

    def payments_of(self, buyer: Any) -> list[dict[str, Any]]:
        email = f"discord-{buyer.id}@"
        with self.mp.fake._lock:
            found = [dict(p) for p in self.mp.payments.values()
                     if str((p.get("payer") or {}).get("email", "")).startswith(email)]
        return sorted(found, key=lambda p: p["id"])

    # what Mercado Pago does when a buyer pays: its news may be lost, doubled or late

    async def approve(self, payment_id: int) -> None:
        async with self.approve_lock:
            mode = self.mp.webhook_mode
            fate = self.rng.choices(("normal", "drop", "duplicate", "reorder"),
                                    weights=(3, 3, 2, 2))[0]
            if fate == "drop":
                mode.drop = 1
            elif fate == "duplicate":
                mode.duplicate = 3
            elif fate == "reorder":
                mode.reorder = True
            try:
                await asyncio.to_thread(self.mp.approve, payment_id)
            finally:
                mode.drop, mode.duplicate, mode.reorder = 0, 1, False
            self.tally.approvals[fate] += 1

    async def buy(self, buyer: Any, deadline: float) -> None:
        """One buyer, from the product post to the key in their DM, retrying what fails."""
        approved: set[int] = set()
        waited_since: float | None = None
        while time.monotonic() < deadline:
            if self.keys_in_dm(buyer):
                return
            try:
                payments = self.payments_of(buyer)
                paid = [p for p in payments if p["status"] == "approved"]
                pending = [p for p in payments if p["status"] == "pending"]
                if paid:
                    # Paid; the keys should come. If they are slow, press "Já paguei".
                    waited_since = waited_since or time.monotonic()
                    if time.monotonic() - waited_since > 6:
                        waited_since = time.monotonic()
                        channel = self.cart_channel(buyer)
                        order = paid[-1]["external_reference"]
                        if channel and f"astra:order:check:{order}" in self.buttons(channel):
                            self.tally.checks += 1
                            check = await self.discord.click(
                                channel, buyer.id, f"astra:order:check:{order}")
                            await check.wait_message(timeout=8)
                    await asyncio.sleep(0.3)
                    continue
                channel = self.cart_channel(buyer)
                # A person pays the PIX code they were shown, nothing else.
                shown = self.codes_shown(channel) if channel else set()
                payable = [p for p in pending if p["id"] not in approved
                           and any(self.qr_code(p) in text for text in shown)]
                if payable:
                    await self.approve(payable[-1]["id"])
                    approved.add(payable[-1]["id"])
                    continue
                if channel and "astra:cart:pay" in self.buttons(channel):
                    pay = await self.discord.click(channel, buyer.id, "astra:cart:pay")
                    await pay.wait_message(timeout=8)
                    if not self.payments_of(buyer):
                        self.tally.retries["pay"] += 1
                        await asyncio.sleep(self.rng.uniform(0.3, 1.0))
                    continue
                pick = await self.discord.select(
                    self.post_channel.id, buyer.id, f"astra:variant:{self.product_id}",
                    [self.variant_id])
                await pick.wait_message(timeout=8)
                if "Sem estoque" in text_of(pick):
                    raise AssertionError(f"stock ran out for {buyer.id}: {text_of(pick)}")
                await asyncio.sleep(0.2)
            except (TimeoutError, ValueError) as exc:
                # No answer (the bot is restarting) or the message is gone: try again.
                self.tally.retries[type(exc).__name__] += 1
                await asyncio.sleep(self.rng.uniform(0.3, 1.0))
        raise AssertionError(f"buyer {buyer.id} got no key in time: {self.describe(buyer)}")

    def describe(self, buyer: Any) -> str:
        """What this buyer would see, for the failure message."""
        channel = self.cart_channel(buyer)
        seen = self.discord.messages(channel) if channel else []
        return str({
            "payments": [(p["id"], p["status"], p["external_reference"])
                         for p in self.payments_of(buyer)],
            "cart_channel": channel,
            "buttons": self.buttons(channel) if channel else [],
            "channel_messages": [(m.get("content") or "")[:120] for m in seen[-4:]],
            "dms": [text[:120] for text in self.discord.dm_texts(buyer.id)],
        })


# -- the run ---------------------------------------------------------------------------------------


def _prepare(data_dir: Path, discord: FakeDiscord, database_url: str) -> str:
    """The seller's account and instance, as the portal would leave them; returns the instance
    key the seller pastes into `/loja vincular`."""
    settings = ensure_dev_secrets(Settings(data_dir=data_dir, database_url=database_url))
    container = build_container(settings)
    with container.store().portal() as uow:
        uow.users.put({
            "id": OWNER,
            "email": "tortura@example.com",
            "plan": {"kind": "paid", "until": iso(datetime.now(UTC) + timedelta(days=30))},
        })
        uow.commit()
    instances = container.instances()
    instances.create(INSTANCE, owner_id=OWNER, name="Loja Tortura", actor="test")
    profile = {"id": str(discord.bot.id), "username": discord.bot.username,
               "application_id": str(discord.application_id)}
    instances.set_bot_token(INSTANCE, BOT_TOKEN, profile, actor="test")
    key = instances.rotate_instance_key(INSTANCE, actor="test")
    container.store().close()
    return key


async def _command(discord: FakeDiscord, guild: Any, seller: Any, channel: Any, name: str,
                   options: dict[str, Any]) -> str:
    handle = await discord.slash(guild.id, seller.id, name, options, channel=channel.id)
    await handle.wait_message(timeout=15)
    return text_of(handle)


async def _setup_shop(discord: FakeDiscord, guild: Any, seller: Any, sales: Any, post: Any,
                      role: Any, instance_key: str, keys: list[str]) -> None:
    async def command(name: str, options: dict[str, Any]) -> str:
        return await _command(discord, guild, seller, post, name, options)

    assert "vinculado" in await command("loja vincular", {"chave": instance_key})
    assert "salvas" in await command(
        "loja config", {"canal_vendas": sales.id, "cargo_comprador": role.id})
    assert "Licença" in await command(
        "loja produto criar", {"nome": "Licença", "variantes": "Anual=19,90:1",
                               "mensagem": "Pedido {pedido}: {chaves}"})
    added = await command("loja estoque adicionar", {
        "produto": "Licença", "variante": "Anual",
        "arquivo": ("keys.txt", ("\n".join(keys) + "\n").encode())})
    assert f"{len(keys)} chave(s) adicionada(s)" in added, added
    assert "publicado" in await command("loja postar", {"produto": "Licença", "canal": post.id})


def _post_ids(discord: FakeDiscord, post: Any) -> tuple[str, str]:
    for message in discord.messages(post.id):
        for row in message.get("components") or []:
            for component in row.get("components") or []:
                custom = component.get("custom_id") or ""
                if custom.startswith("astra:variant:"):
                    return custom.removeprefix("astra:variant:"), component["options"][0]["value"]
    raise AssertionError("the product post has no variant select")


async def _torment(platform: Platform, world: World, buyers_left: asyncio.Event) -> None:
    """Kill -9 the platform at random moments while purchases are in flight, KILLS times."""
    rng = world.rng
    while platform.kills < KILLS and not buyers_left.is_set():
        await asyncio.sleep(rng.uniform(3.0, 7.0))
        world.tally.kills_in_flight.append(world.tally.in_flight)
        platform.kill()
        await asyncio.sleep(rng.uniform(0.2, 2.0))  # down for a moment: webhooks bounce
        await platform.start()


async def _flush_held(world: World, stop: asyncio.Event) -> None:
    """Notifications held back come out later, newest first."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), world.rng.uniform(1.0, 4.0))
        await asyncio.to_thread(world.mp.flush)


def _audit(data_dir: Path, mp: FakeMercadoPagoThread, keys: list[str],
           dms: dict[str, list[str]], database_url: str) -> dict[str, Any]:
    """Every invariant, on the data as the platform left it."""
    container = build_container(
        ensure_dev_secrets(Settings(data_dir=data_dir, database_url=database_url)))
    store = container.store()
    assert not [p for p in store.check() if p.severity == "error"], store.check()
    with store.instance(INSTANCE, write=False) as uow:
        orders = {o["id"]: o for o in uow.orders.all()}
        stock = uow.stock.all()
        deliveries = {d["id"]: d for d in uow.deliveries.all()}
    with store.portal(write=False) as uow:
        ledger = uow.ledger.find(user_id=OWNER)
    with mp.fake._lock:
        approved = [dict(p) for p in mp.payments.values() if p["status"] == "approved"]

    # every approved payment: exactly one order, delivered, for that amount
    by_charge = Counter(str(o.get("charge_id")) for o in orders.values() if o.get("charge_id"))
    for payment in approved:
        order = orders.get(payment["external_reference"])
        assert order is not None, f"approved payment {payment['id']} has no order"
        assert by_charge[str(payment["id"])] == 1
        assert str(order["charge_id"]) == str(payment["id"])
        assert order["status"] == "delivered", (order["id"], order["status"])
        assert deliveries[order["id"]]["status"] == "delivered"
        assert order["total_cents"] == round(payment["transaction_amount"] * 100)
    paid_orders = [o for o in orders.values()
                   if o["status"] in ("paid", "delivered", "waiting_stock")]
    assert len(paid_orders) == len(approved), "an order is paid without an approved payment"

    # keys: one state each; sold ones in exactly one delivered order and one buyer's DMs
    assert sorted(k["fingerprint"] for k in stock) == sorted(set(k["fingerprint"] for k in stock))
    assert len(stock) == len(keys)
    states = Counter(k["state"] for k in stock)
    assert set(states) <= {"available", "reserved", "sold"}
    owners: dict[str, list[str]] = {}
    for order in orders.values():
        for line in order["lines"]:
            for key_id in line.get("key_ids", []):
                owners.setdefault(key_id, []).append(order["id"])
    for key in stock:
        if key["state"] == "sold":
            assert owners.get(key["id"]) == [key["order_id"]], key["id"]
            assert orders[key["order_id"]]["status"] == "delivered"
        else:
            assert key["id"] not in owners or all(
                orders[o]["status"] not in ("paid", "delivered") for o in owners[key["id"]])
    assert states["sold"] == sum(len(ln["key_ids"]) for o in paid_orders for ln in o["lines"])
    delivered_to: dict[str, list[str]] = {}
    for buyer_id, found in dms.items():
        for key in found:
            delivered_to.setdefault(key, []).append(buyer_id)
    twice = {k: b for k, b in delivered_to.items() if len(b) > 1}
    assert not twice, f"keys delivered twice: {list(twice.items())[:5]}"
    assert len(delivered_to) == states["sold"]
    assert set(delivered_to) <= set(keys)

    # the seller's ledger: one credit per paid order, for its net, and nothing else
    credits = Counter(e["order_id"] for e in ledger if e["kind"] == "sale_credit")
    assert all(n == 1 for n in credits.values()), credits.most_common(3)
    assert set(credits) == {o["id"] for o in paid_orders}
    assert sum(e["amount_cents"] for e in ledger) == sum(o["net_cents"] for o in paid_orders)
    assert container.wallet().balance(OWNER) == sum(o["net_cents"] for o in paid_orders)
    problems = [f for f in Diagnostics(store, container.clock()).run() if f.severity == "error"]
    assert not problems, problems
    store.close()
    return {
        "approved_payments": len(approved),
        "delivered_orders": sum(o["status"] == "delivered" for o in orders.values()),
        "orders_total": len(orders),
        "keys": dict(states),
        "keys_delivered_twice": len(twice),
        "ledger_cents": sum(e["amount_cents"] for e in ledger),
    }


@pytest.mark.parametrize(
    ("runtime", "store"),
    [
        ("process", "json"),
        pytest.param("docker", "json", marks=pytest.mark.docker),
        ("process", "postgresql"),
    ],
)
async def test_two_hundred_buyers_while_the_platform_is_killed(
    tmp_path: Path, artifacts_dir: Path, runtime: str, store: str,
    request: pytest.FixtureRequest,
) -> None:
    """On the process runtime the bot is a subprocess the next platform must replace; on the
    Docker runtime it is a container on the bots' network that survives the platform's kills
    and keeps talking to the internal API through them. On PostgreSQL the kills land inside
    open transactions instead of journal appends."""
    database_url = request.getfixturevalue("pg_dsn") if store == "postgresql" else ""
    seed = int(os.environ.get("ASTRA_TORTURE_SEED") or secrets.randbits(32))
    print(f"torture seed {seed} (replay with ASTRA_TORTURE_SEED={seed})")
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    discord = FakeDiscord(bot_token=BOT_TOKEN)
    extra: dict[str, str] = {}
    if runtime == "docker":
        from tests.integration.test_docker_runtime import TEST_NETWORK

        image = request.getfixturevalue("runtime_image")
        # A container reaches the host only on its network's gateway: the fake Discord (the
        # internet, here) binds there, as does the platform's internal API. All else: loopback.
        gateway = request.getfixturevalue("runtime_gateway")
        await discord.start(host=gateway)
        extra = {"ASTRA_RUNTIME_IMAGE": image, "ASTRA_DOCKER_NETWORK": TEST_NETWORK,
                 "ASTRA_INTERNAL_HOST": gateway, "ASTRA_INTERNAL_PORT": str(free_port())}
    else:
        await discord.start()
    mp = FakeMercadoPagoThread(webhook_secret=WEBHOOK_SECRET)
    mp_base = await asyncio.to_thread(mp.start)
    portal_port, admin_port = free_ports(2)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ASTRA_", "DISCORD_", "MERCADOPAGO_", "ADMIN_", "PORTAL_"))}
    env.update({
        "ASTRA_DATA_DIR": str(data_dir),
        "ASTRA_HOST": "127.0.0.1",
        "ASTRA_PORTAL_PORT": str(portal_port),
        "ASTRA_ADMIN_PORT": str(admin_port),
        "ASTRA_PUBLIC_URL": f"http://127.0.0.1:{portal_port}",
        "ASTRA_RUNTIME": runtime,
        "ASTRA_RECONCILE_INTERVAL_SECONDS": "1",
        "ASTRA_LOG_FORMAT": "json",
        "DISCORD_API_BASE": discord.api_url,
        "MERCADOPAGO_ACCESS_TOKEN": mp.access_token,
        "MERCADOPAGO_API_BASE": mp_base,
        "MERCADOPAGO_WEBHOOK_SECRET": WEBHOOK_SECRET,
        **extra,
    })
    if database_url:
        env["ASTRA_DATABASE_URL"] = database_url
    platform = Platform(env=env, cwd=tmp_path, portal_port=portal_port)
    started = time.monotonic()
    try:
        seller = discord.add_user("vendedor")
        guild = discord.add_guild("Loja Tortura", owner=seller.id)
        discord.add_member(guild.id, seller.id, admin=True)
        sales = discord.add_channel(guild.id, "vendas")
        post = discord.add_channel(guild.id, "produtos")
        role = discord.add_role(guild.id, "Cliente")
        instance_key = await asyncio.to_thread(_prepare, data_dir, discord, database_url)
        keys = [f"TORT-{i:04d}-{secrets.token_hex(4)}" for i in range(STOCK)]

        await platform.start()
        await discord.wait_ready(timeout=30)
        await _setup_shop(discord, guild, seller, sales, post, role, instance_key, keys)
        product_id, variant_id = _post_ids(discord, post)
        world = World(discord, mp, guild, post, product_id, variant_id, seed)
        buyers = [discord.add_user(f"comprador{i:03d}") for i in range(BUYERS)]
        for buyer in buyers:
            discord.add_member(guild.id, buyer.id)

        gate = asyncio.Semaphore(CONCURRENCY)
        deadline = time.monotonic() + RUN_DEADLINE
        all_done, stop_flush = asyncio.Event(), asyncio.Event()

        async def one(buyer: Any) -> None:
            async with gate:
                world.tally.in_flight += 1
                try:
                    await world.buy(buyer, deadline)
                    world.tally.done += 1
                finally:
                    world.tally.in_flight -= 1

        flusher = asyncio.create_task(_flush_held(world, stop_flush))
        torment = asyncio.create_task(_torment(platform, world, all_done))
        purchase_started = time.monotonic()
        results = await asyncio.gather(*(one(b) for b in buyers), return_exceptions=True)
        purchase_seconds = time.monotonic() - purchase_started
        all_done.set()
        await torment
        stop_flush.set()
        await flusher
        failures = [r for r in results if isinstance(r, BaseException)]
        assert not failures, f"{len(failures)} buyers failed; first: {failures[0]!r}"
        assert platform.kills >= 5, "the platform was not killed often enough"
        assert sum(1 for n in world.tally.kills_in_flight if n > 0) >= 5

        # Recovery: postings reach the ledger on the next housekeeping pass.
        await asyncio.sleep(6)
        platform.stop()
        dms = {str(b.id): world.keys_in_dm(b) for b in buyers}
        figures = await asyncio.to_thread(_audit, data_dir, mp, keys, dms, database_url)

        sent = mp.sent_webhooks
        figures.update({
            "seed": seed,
            "buyers": BUYERS,
            "purchases_completed": world.tally.done,
            "platform_kills": platform.kills,
            "buyers_in_flight_at_kills": world.tally.kills_in_flight,
            "approvals_by_webhook_fate": dict(world.tally.approvals),
            "webhooks_dropped": len(mp.dropped_webhooks),
            "webhooks_sent": len(sent),
            "webhooks_unreachable": sum(1 for w in sent if w.status is None),
            "webhooks_duplicated_copies": sum(
                n - 1 for n in Counter(w.event_id for w in sent).values()),
            "already_paid_presses": world.tally.checks,
            "buyer_retries": dict(world.tally.retries),
            "purchase_seconds": round(purchase_seconds, 1),
            "total_seconds": round(time.monotonic() - started, 1),
        })
        figures["runtime"] = runtime
        figures["store"] = store
        name = runtime if store == "json" else f"{runtime}-{store}"
        (artifacts_dir / f"torture-{name}.json").write_bytes(
            orjson.dumps(figures, option=orjson.OPT_INDENT_2))
        print("RESULT torture", orjson.dumps(figures).decode())
        assert figures["delivered_orders"] == BUYERS == figures["approved_payments"]
        for log in platform.logs:
            text = log.read_text(errors="replace")
            assert "Traceback" not in text, f"{log.name}:\n{text[-3000:]}"
            assert BOT_TOKEN not in text
    finally:
        platform.stop()
        if runtime == "docker":
            with contextlib.suppress(Exception):
                client = request.getfixturevalue("docker_client")
                client.containers.get(f"astra-instance-{INSTANCE}").remove(force=True)
        await discord.stop()
        await asyncio.to_thread(mp.stop)
