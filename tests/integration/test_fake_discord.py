"""The real interactions.py client against tests/fakes/discord: start-up (login, gateway, command
sync), slash commands with subcommands/options/attachments, buttons, selects, modals, deferred
responses and followups, 429 retries, a dropped gateway resumed, DMs refused with 50007, private
channels and roles through client.http, and a bad token."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest

from tests.fakes.discord import (
    EPHEMERAL,
    FakeDiscord,
    FakeDiscordThread,
    Guild,
    User,
    permissions,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # interactions imports audioop
    import interactions
    from interactions import (
        Attachment,
        Button,
        ButtonStyle,
        ComponentContext,
        Extension,
        Modal,
        ModalContext,
        OptionType,
        Permissions,
        ShortText,
        SlashContext,
        StringSelectMenu,
        component_callback,
        listen,
        modal_callback,
        slash_command,
        slash_option,
    )
    from interactions.api.events import CommandError, ComponentError, Error, ModalError
    from interactions.client.errors import Forbidden, HTTPException, LoginError, NotFound

pytestmark = [
    pytest.mark.filterwarnings("ignore:'audioop' is deprecated:DeprecationWarning"),
    # interactions.py 5.16 passes ws_connect(timeout=float), which aiohttp 3.14 deprecates.
    pytest.mark.filterwarnings("ignore:parameter 'timeout' of type 'float':DeprecationWarning"),
]

TOKEN = "MTEwMDAwMDAwMDAwMDAwMDAwMQ.fake.bot-token-for-tests"
APP_ID = "1100000000000000001"


class Shop(Extension):
    """A tiny bot: every callback the self-test drives."""

    def __init__(self, bot: interactions.Client) -> None:
        self.errors: list[BaseException] = []

    @slash_command(name="ping", description="Replies pong with a Buy button")
    async def ping(self, ctx: SlashContext) -> None:
        await ctx.send("pong", components=[
            Button(style=ButtonStyle.PRIMARY, label="Comprar", custom_id="buy")])

    @slash_command(name="shop", description="Shop", sub_cmd_name="buy",
                   sub_cmd_description="Buy something")
    @slash_option(name="qty", description="How many", opt_type=OptionType.INTEGER,
                  required=True)
    @slash_option(name="gift_to", description="A friend", opt_type=OptionType.USER)
    async def shop_buy(self, ctx: SlashContext, qty: int,
                       gift_to: interactions.User | None = None) -> None:
        target = f" for {gift_to.username}" if gift_to else ""
        await ctx.send(f"bought {qty}{target}", ephemeral=True)

    @slash_command(name="admin", description="Staff only",
                   default_member_permissions=Permissions.MANAGE_GUILD)
    async def admin(self, ctx: SlashContext) -> None:
        await ctx.send("panel", ephemeral=True)

    @slash_command(name="variant", description="Pick a variant")
    async def variant(self, ctx: SlashContext) -> None:
        await ctx.send("choose", components=[StringSelectMenu(
            "30 dias", "90 dias", custom_id="variant_pick", placeholder="Plano")])

    @slash_command(name="stock", description="Load keys from a .txt")
    @slash_option(name="file", description="keys, one a line", opt_type=OptionType.ATTACHMENT,
                  required=True)
    async def stock(self, ctx: SlashContext, file: Attachment) -> None:
        await ctx.defer(ephemeral=True)
        async with aiohttp.ClientSession() as session, session.get(file.url) as response:
            keys = [line for line in (await response.text()).splitlines() if line.strip()]
        await ctx.send(f"{len(keys)} keys loaded from {file.filename}")
        await ctx.send("remember to publish", ephemeral=True)

    @slash_command(name="receipt", description="Replies with a file")
    async def receipt(self, ctx: SlashContext) -> None:
        await ctx.send("your receipt", file=interactions.File(io.BytesIO(b"order 1: paid\n"),
                                                              file_name="receipt.txt"))

    @component_callback("buy")
    async def buy(self, ctx: ComponentContext) -> None:
        await ctx.send_modal(Modal(ShortText(label="Cupom", custom_id="coupon", required=False),
                                   title="Checkout", custom_id="checkout"))

    @component_callback("variant_pick")
    async def variant_pick(self, ctx: ComponentContext) -> None:
        await ctx.edit_origin(content=f"picked {ctx.values[0]}", components=[])

    @modal_callback("checkout")
    async def checkout(self, ctx: ModalContext, coupon: str) -> None:
        await ctx.send(f"coupon {coupon or '-'}")

    @listen(CommandError, disable_default_listeners=True)
    async def on_command_error(self, event: CommandError) -> None:
        self.errors.append(event.error)

    @listen(ComponentError, disable_default_listeners=True)
    async def on_component_error(self, event: ComponentError) -> None:
        self.errors.append(event.error)

    @listen(ModalError, disable_default_listeners=True)
    async def on_modal_error(self, event: ModalError) -> None:
        self.errors.append(event.error)

    @listen(Error, disable_default_listeners=True)
    async def on_error(self, event: Error) -> None:
        self.errors.append(event.error)


@dataclass
class World:
    fake: FakeDiscord
    client: interactions.Client
    shop: Shop
    guild: Guild
    buyer: User
    admin: User
    general: str
    task: asyncio.Task[None] = field(repr=False)


async def start_client(fake: FakeDiscord) -> tuple[interactions.Client, Shop, asyncio.Task[None]]:
    client = interactions.Client(token=TOKEN)
    shop = Shop(client)
    task = asyncio.create_task(client.astart())
    ready = asyncio.create_task(client.wait_until_ready())
    await asyncio.wait({task, ready}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
    if not ready.done():
        ready.cancel()
        if task.done():
            task.result()  # raise what stopped the client
        raise TimeoutError("client never got ready")
    return client, shop, task


async def stop_client(client: interactions.Client, task: asyncio.Task[None]) -> None:
    # Stopping the gateway first lets astart() return and close the HTTP session itself;
    # Client.stop() with the gateway still running spins at 100% CPU.
    await asyncio.wait_for(client._connection_state.stop(), 10)
    await asyncio.wait_for(task, 10)


@pytest.fixture
async def world() -> AsyncIterator[World]:
    fake = FakeDiscord(bot_token=TOKEN, application_id=APP_ID)
    await fake.start()
    guild = fake.add_guild("Loja Teste")
    buyer = fake.add_user("buyer", global_name="Comprador")
    admin = fake.add_user("admin")
    fake.add_member(guild, buyer)
    fake.add_member(guild, admin, admin=True)
    general = fake.channel_by_name(guild, "general")["id"]
    try:
        with fake.routed():
            client, shop, task = await start_client(fake)
            try:
                yield World(fake, client, shop, guild, buyer, admin, general, task)
            finally:
                await stop_client(client, task)
        assert shop.errors == [], shop.errors
    finally:
        await fake.stop()


async def test_start_up_registers_commands_and_a_slash_command_is_answered(world: World) -> None:
    fake = world.fake
    paths = [c.path for c in fake.calls]
    assert paths[:3] == ["/users/@me", "/oauth2/applications/@me", "/gateway"]
    assert all(c.headers["Authorization"] == "Bot ***" for c in fake.calls)
    names = {c["name"]: c for c in fake.registered_commands()}
    assert set(names) == {"admin", "ping", "receipt", "shop", "stock", "variant"}
    assert all(c["id"].isdigit() and c["application_id"] == APP_ID for c in names.values())
    assert fake.ready_count == 1 and fake.connected

    handle = await fake.slash(world.guild, world.buyer, "ping")
    reply = await handle.response()
    assert reply["type"] == 4 and reply["data"]["content"] == "pong"
    message = await fake.wait_for_message(world.general, check=lambda m: m["content"] == "pong")
    assert message["author"]["id"] == fake.bot.id
    assert message["interaction_metadata"]["user"]["id"] == world.buyer.id
    assert message["components"][0]["components"][0]["custom_id"] == "buy"
    assert handle.message == message
    sent = handle.payload  # what the bot received
    assert sent["data"]["id"] == names["ping"]["id"] and sent["locale"] == "pt-BR"
    assert sent["member"]["user"]["id"] == world.buyer.id
    assert not int(sent["member"]["permissions"]) & permissions.MANAGE_GUILD


async def test_subcommand_options_and_ephemeral_reply(world: World) -> None:
    fake = world.fake
    handle = await fake.slash(world.guild, world.admin, "shop buy",
                              {"qty": 3, "gift_to": world.buyer.id})
    reply = await handle.response()
    assert reply["data"]["content"] == "bought 3 for buyer"
    assert reply["data"]["flags"] & EPHEMERAL and handle.ephemeral
    option = handle.payload["data"]["options"][0]
    assert option["name"] == "buy" and option["type"] == 1
    assert option["options"] == [{"name": "qty", "type": 4, "value": 3},
                                 {"name": "gift_to", "type": 6, "value": world.buyer.id}]
    assert world.buyer.id in handle.payload["data"]["resolved"]["users"]
    assert int(handle.payload["member"]["permissions"]) & permissions.MANAGE_GUILD
    # Ephemeral messages are not in the channel history the API returns.
    history = await world.client.http.get_channel_messages(world.general)
    assert all(m["id"] != handle.message["id"] for m in history)
    with pytest.raises(ValueError, match="required option"):
        await fake.slash(world.guild, world.admin, "shop buy", {})
    # default_member_permissions hides /admin from members without MANAGE_GUILD.
    with pytest.raises(ValueError, match="lacks the permissions"):
        await fake.slash(world.guild, world.buyer, "admin")
    panel = await fake.slash(world.guild, world.admin, "admin")
    assert (await panel.response())["data"]["content"] == "panel"


async def test_button_opens_a_modal_and_the_submit_is_answered(world: World) -> None:
    fake = world.fake
    ping = await fake.slash(world.guild, world.buyer, "ping")
    await ping.wait_message()
    click = await fake.click(world.general, world.buyer, "buy")
    opened = await click.response()
    assert opened["type"] == 9 and click.modal["custom_id"] == "checkout"
    assert click.payload["message"]["id"] == ping.message["id"]
    submit = await fake.submit_modal(world.buyer, "checkout", {"coupon": "OFF10"})
    answer = await submit.response()
    assert answer["data"]["content"] == "coupon OFF10"
    assert fake.last_message(world.general)["content"] == "coupon OFF10"


async def test_select_updates_the_original_message(world: World) -> None:
    fake = world.fake
    menu = await fake.slash(world.guild, world.buyer, "variant")
    await menu.wait_message()
    with pytest.raises(ValueError, match="no option"):
        await fake.select(world.general, world.buyer, "variant_pick", ["365 dias"])
    pick = await fake.select(world.general, world.buyer, "variant_pick", ["90 dias"])
    assert (await pick.response())["type"] == 7
    edited = fake.message(menu.message["id"])
    assert edited["content"] == "picked 90 dias" and edited["components"] == []


async def test_attachment_option_deferred_reply_and_ephemeral_followup(world: World) -> None:
    fake = world.fake
    handle = await fake.slash(world.guild, world.admin, "stock",
                              {"file": ("keys.txt", b"AAA-111\nBBB-222\n\nCCC-333\n")})
    assert (await handle.response())["type"] == 5
    final = await handle.wait_message(lambda m: "keys loaded" in m["content"])
    assert final["content"] == "3 keys loaded from keys.txt" and final["flags"] & EPHEMERAL
    followups = await handle.wait_followups(1)
    assert followups[0]["flags"] & EPHEMERAL
    assert handle.followup_messages[0]["content"] == "remember to publish"
    receipt = await fake.slash(world.guild, world.buyer, "receipt")  # a file in the response
    await receipt.response()
    attachment = receipt.message["attachments"][0]
    assert attachment["filename"] == "receipt.txt"
    assert receipt.callback_files[0].data == b"order 1: paid\n"
    async with aiohttp.ClientSession() as session, session.get(attachment["url"]) as response:
        assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert await response.read() == b"order 1: paid\n"


async def test_429_is_retried_after_retry_after(world: World) -> None:
    fake, http = world.fake, world.client.http
    fake.rate_limit_next(1, retry_after=0.3, path_contains=f"/channels/{world.general}/messages")
    started = time.monotonic()
    sent = await http.create_message({"content": "hello"}, world.general)
    assert sent["content"] == "hello" and time.monotonic() - started >= 0.29
    posts = fake.calls_to("POST", f"/channels/{world.general}/messages")
    assert [c.status for c in posts] == [429, 200]
    fake.rate_limit_next(1, retry_after=0.2, global_=True)
    assert (await http.get_channel(world.general))["id"] == world.general
    assert [h.global_ for h in fake.rate_limited] == [False, True]
    assert all(h.injected for h in fake.rate_limited)  # never retried too early
    # interactions.py gives up after 3 attempts and returns None instead of raising.
    fake.rate_limit_next(3, retry_after=0.05, path_contains="/messages")
    assert await http.create_message({"content": "lost"}, world.general) is None
    assert fake.last_message(world.general)["content"] == "hello"


async def test_dropped_gateway_is_resumed_and_interactions_still_work(world: World) -> None:
    fake = world.fake
    await fake.drop_gateway(4000)
    await fake.wait_for(lambda: fake.resume_count == 1 and fake.connected, 5, "resume")
    handle = await fake.slash(world.guild, world.buyer, "ping")
    assert (await handle.response())["data"]["content"] == "pong"
    fake.request_reconnect()
    await fake.wait_for(lambda: fake.resume_count == 2 and fake.connected, 5, "resume")
    assert fake.ready_count == 1
    handle = await fake.slash(world.guild, world.buyer, "ping")
    assert (await handle.response())["data"]["content"] == "pong"
    fake.invalidate_session(resumable=False)  # the client must identify again
    await fake.wait_for(lambda: fake.ready_count == 2 and fake.connected, 5, "a new READY")
    await world.client.wait_until_ready()
    handle = await fake.slash(world.guild, world.buyer, "ping")
    assert (await handle.response())["data"]["content"] == "pong"


async def test_direct_messages_and_closed_dms(world: World) -> None:
    fake, http = world.fake, world.client.http
    dm = await http.create_dm(world.buyer.id)
    assert dm["type"] == 1 and dm["recipients"][0]["id"] == world.buyer.id
    await http.create_message({"content": "sua chave: AAA-111"}, dm["id"])
    assert fake.dm_messages(world.buyer)[-1]["content"] == "sua chave: AAA-111"
    in_dm = await fake.slash(None, world.buyer, "ping")  # a command used in the bot's DM
    assert (await in_dm.response())["data"]["content"] == "pong"
    assert "user" in in_dm.payload and in_dm.payload["context"] == 1
    assert in_dm.message["channel_id"] == dm["id"] == fake.dm_channel_id(world.buyer)
    fake.set_dms_closed(world.buyer, True)
    with pytest.raises(Forbidden) as refused:
        await http.create_message({"content": "again"}, dm["id"])
    assert refused.value.code == 50007
    assert refused.value.text == "Cannot send messages to this user"
    with pytest.raises(NotFound) as missing:
        await http.get_channel("1")
    assert missing.value.code == 10003


async def test_enforce_nonce_returns_the_earlier_message_instead_of_a_new_one(
    world: World,
) -> None:
    fake, http, general = world.fake, world.client.http, world.general
    payload = {"content": "sua chave: AAA-111", "nonce": "order-1-line-0", "enforce_nonce": True}
    first = await http.create_message(payload, general)
    again = await http.create_message({**payload, "content": "resent"}, general)
    assert again["id"] == first["id"] and again["content"] == "sua chave: AAA-111"
    assert again["nonce"] == "order-1-line-0"
    assert [m["content"] for m in fake.messages(general)] == ["sua chave: AAA-111"]
    assert [c.status for c in fake.calls_to("POST", f"/channels/{general}/messages")] == [200, 200]

    # Without enforce_nonce the nonce is only echoed back; and the check is per channel here.
    echoed = await http.create_message({"content": "echo", "nonce": "order-1-line-0"}, general)
    assert echoed["id"] != first["id"] and echoed["nonce"] == "order-1-line-0"
    dm = await http.create_dm(world.buyer.id)
    in_dm = await http.create_message(payload, dm["id"])
    assert in_dm["id"] != first["id"] and fake.dm_messages(world.buyer)[-1]["id"] == in_dm["id"]

    # Only "the past few minutes" count, and a deleted message is not returned.
    fake.nonce_window = 0.05
    await asyncio.sleep(0.1)
    later = await http.create_message(payload, general)
    assert later["id"] not in (first["id"], echoed["id"])
    fake.nonce_window = 300
    await http.delete_message(general, later["id"])
    after_delete = await http.create_message(payload, general)
    assert after_delete["id"] != later["id"]

    with pytest.raises(HTTPException) as too_long:
        await http.create_message({**payload, "nonce": "x" * 26}, general)
    assert too_long.value.status == 400 and too_long.value.code == 50035
    assert too_long.value.errors == {
        "nonce": {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH",
                               "message": "Must be 25 or fewer in length."}]}
    }
    assert (await http.create_message({**payload, "nonce": "y" * 25}, general))["nonce"] == "y" * 25


async def test_private_channels_and_roles_through_http(world: World) -> None:
    fake, http, guild = world.fake, world.client.http, world.guild
    category = await http.create_guild_channel(guild.id, "Carrinhos", 4)
    seen = permissions.VIEW_CHANNEL | permissions.SEND_MESSAGES
    overwrites = [
        {"id": guild.id, "type": 0, "allow": "0", "deny": str(permissions.VIEW_CHANNEL)},
        {"id": world.buyer.id, "type": 1, "allow": str(seen), "deny": "0"},
        {"id": fake.bot.id, "type": 1, "allow": str(seen), "deny": "0"},
    ]
    cart = await http.create_guild_channel(guild.id, "Cart Buyer", 0, topic="cart",
                                           parent_id=category["id"],
                                           permission_overwrites=overwrites)
    assert cart["name"] == "cart-buyer" and cart["parent_id"] == category["id"]
    assert fake.can_view(cart["id"], world.buyer) and fake.can_view(cart["id"], world.admin)
    outsider = fake.add_user("outsider")
    fake.add_member(guild, outsider)
    assert not fake.can_view(cart["id"], outsider)
    files = [interactions.File(io.BytesIO(b"KEY-1\n"), file_name="key.txt")]
    sent = await http.create_message({"content": "files", "embeds": [{"title": "Pedido"}]},
                                     cart["id"], files=files)
    assert sent["attachments"][0]["filename"] == "key.txt"
    assert fake.attachment_bytes(sent["attachments"][0]["id"]) == b"KEY-1\n"
    # Without an overwrite for itself the bot cannot use a channel it hid from @everyone.
    hidden = await http.create_guild_channel(guild.id, "hidden", 0,
                                             permission_overwrites=overwrites[:2])
    with pytest.raises(Forbidden) as no_access:
        await http.create_message({"content": "x"}, hidden["id"])
    assert no_access.value.code == 50001
    await http.delete_channel(cart["id"], reason="sale over")
    assert fake.channel_by_name(guild, "cart-buyer") is None
    assert fake.calls_to("DELETE", cart["id"])[0].headers["X-Audit-Log-Reason"] == "sale over"

    vip = fake.add_role(guild, "VIP")
    roles = {r["name"]: r for r in await http.get_roles(guild.id)}
    assert {"@everyone", "VIP", "Admin", fake.bot.username} <= set(roles)
    await http.add_guild_member_role(guild.id, world.buyer.id, vip.id)
    assert fake.roles_of(guild, world.buyer) == [vip.id]
    member = await http.get_member(guild.id, world.buyer.id)
    assert member["roles"] == [vip.id]
    await http.remove_guild_member_role(guild.id, world.buyer.id, vip.id)
    assert fake.roles_of(guild, world.buyer) == []
    above_bot = fake.add_role(guild, "Dono", position=10)
    with pytest.raises(Forbidden) as hierarchy:
        await http.add_guild_member_role(guild.id, world.buyer.id, above_bot.id)
    assert hierarchy.value.code == 50013
    channels = await http.get_channels(guild.id)
    assert {c["name"] for c in channels} >= {"general", "Carrinhos", "hidden"}


async def test_bad_token_is_refused_on_rest_and_gateway() -> None:
    fake = FakeDiscord(bot_token=TOKEN, application_id=APP_ID)
    await fake.start()
    try:
        with fake.routed():
            client = interactions.Client(token="not-the-token")
            with pytest.raises(LoginError):
                await asyncio.wait_for(client.astart(), 10)
            with contextlib.suppress(Exception):
                await client.http.close()
        assert [(c.path, c.status) for c in fake.calls] == [("/users/@me", 401)]
        async with aiohttp.ClientSession() as session:
            async with session.get(fake.api_url + "/users/@me") as response:
                assert response.status == 401
                assert response.headers["Content-Type"] == "application/json"
                assert await response.json() == {"message": "401: Unauthorized", "code": 0}
            async with session.ws_connect(fake.gateway_url + "?v=10&encoding=json") as ws:
                hello = await ws.receive_json()
                assert hello["op"] == 10 and hello["d"]["heartbeat_interval"] > 0
                await ws.send_json({"op": 1, "d": None})
                assert (await ws.receive_json())["op"] == 11
                await ws.send_json({"op": 2, "d": {"token": "wrong", "intents": 0}})
                closing = await ws.receive()
                assert closing.type == aiohttp.WSMsgType.CLOSE and closing.data == 4004
    finally:
        await fake.stop()


async def test_gateway_ready_guild_create_and_resume_by_hand() -> None:
    fake = FakeDiscord(bot_token=TOKEN, application_id=APP_ID)
    await fake.start()
    guild = fake.add_guild("Loja")
    fake.add_member(guild, fake.add_user("someone"))
    try:
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(fake.gateway_url) as ws:
                await ws.receive_json()
                await ws.send_json({"op": 2, "d": {"token": TOKEN, "intents": 1 | 512,
                                                   "properties": {}}})
                ready = await ws.receive_json()
                assert (ready["t"], ready["s"]) == ("READY", 1)
                assert ready["d"]["guilds"] == [{"id": guild.id, "unavailable": True}]
                assert ready["d"]["application"]["id"] == APP_ID
                created = await ws.receive_json()
                assert created["t"] == "GUILD_CREATE" and created["s"] == 2
                # No GUILD_MEMBERS intent: only the bot's own member is listed.
                assert [m["user"]["id"] for m in created["d"]["members"]] == [fake.bot.id]
                assert created["d"]["member_count"] == 3
                session_id = ready["d"]["session_id"]
                await ws.close(code=4000)  # a client closing with 1000/1001 ends its session
            fake.add_channel(guild, "news")  # CHANNEL_CREATE while disconnected
            async with session.ws_connect(fake.gateway_url) as ws:
                await ws.receive_json()
                await ws.send_json({"op": 6, "d": {"token": TOKEN, "session_id": session_id,
                                                   "seq": 2}})
                missed = await ws.receive_json()
                assert (missed["t"], missed["s"], missed["d"]["name"]) == \
                    ("CHANNEL_CREATE", 3, "news")
                assert (await ws.receive_json())["t"] == "RESUMED"
            async with session.ws_connect(fake.gateway_url) as ws:
                await ws.receive_json()
                await ws.send_json({"op": 6, "d": {"token": TOKEN, "session_id": "nope",
                                                   "seq": 1}})
                assert await ws.receive_json() == {"op": 9, "d": False, "s": None, "t": None}
    finally:
        await fake.stop()


def test_thread_runner_serves_sync_code() -> None:
    runner = FakeDiscordThread(bot_token=TOKEN, application_id=APP_ID)
    base = runner.start()
    try:
        guild = runner.add_guild("Loja")
        assert runner.channel_by_name(guild, "general")["type"] == 0
        request = urllib.request.Request(base + f"/api/v10/guilds/{guild.id}/roles",
                                         headers={"Authorization": f"Bot {TOKEN}"})
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.headers["Content-Type"] == "application/json"
            roles = json.loads(response.read())
        assert [r["name"] for r in roles] == ["@everyone", "Astra"]
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(urllib.request.Request(
                base + "/api/v10/channels/42", headers={"Authorization": f"Bot {TOKEN}"}),
                timeout=5)
        assert json.loads(missing.value.read()) == {"message": "Unknown Channel", "code": 10003}
    finally:
        runner.stop()
