"""The buyer's whole journey through the real interactions.py client, the fake Discord, the
fake Mercado Pago (real SDK) and the portal's real webhook endpoint."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from astra.adapters.instance_api.http import HttpInstanceAPI
from astra.domain.errors import NotFoundError
from tests.e2e.bot_world import INSTANCE, OWNER, Shop, running_shop, text_of
from tests.fakes.discord.state import message_text

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]


async def _setup_catalog(shop: Shop, keys: list[str]) -> tuple[str, str]:
    bind = await shop.command("loja vincular", {"chave": shop.instance_key})
    assert "vinculado" in text_of(bind)
    config = await shop.command(
        "loja config",
        {"canal_vendas": shop.sales_channel.id, "cargo_comprador": shop.buyer_role.id},
    )
    assert "salvas" in text_of(config), text_of(config)
    created = await shop.command(
        "loja produto criar",
        {
            "nome": "Steam Key",
            "variantes": "Mensal=19,90:5;Anual=99,90",
            "descricao": "Chave original",
            "mensagem": "Pedido {pedido}: {chaves}",
        },
    )
    assert "Steam Key" in text_of(created)
    product = (await asyncio.to_thread(shop.catalog.list_products, INSTANCE))[0]
    mensal = next(v for v in product.variants if v.name == "Mensal")
    added = await shop.command(
        "loja estoque adicionar",
        {
            "produto": "Steam Key",
            "variante": "Mensal",
            "arquivo": ("keys.txt", ("\n".join([*keys, keys[0], ""])).encode()),
        },
    )
    report = text_of(added)
    assert f"{len(keys)} chave(s) adicionada(s)" in report and "repetidas no arquivo: 1" in report
    posted = await shop.command(
        "loja postar", {"produto": "Steam Key", "canal": shop.post_channel.id}
    )
    assert "publicado" in text_of(posted)
    await shop.command("loja cupom criar", {"codigo": "PROMO10", "tipo": "percent", "valor": "10"})
    return product.id, mensal.id


async def _open_cart(shop: Shop, buyer, product_id: str, variant_id: str) -> dict:
    chosen = await shop.discord.select(
        shop.post_channel.id, buyer.id, f"astra:variant:{product_id}", [variant_id]
    )
    await chosen.wait_message()
    assert "carrinho" in text_of(chosen).lower() or "cart" in text_of(chosen).lower()
    cart = await shop.eventually(
        lambda: shop.sales.get_cart(INSTANCE, str(buyer.id)), what="a cart"
    )
    assert cart.cart.channel_id
    return {"channel": cart.cart.channel_id, "cart": cart}


async def _paid_and_delivered(shop: Shop, buyer, opened: dict) -> tuple:
    """The buyer presses Pagar in their cart, the PIX is approved at the gateway: (the order,
    the DM its keys arrived in)."""
    pay = await shop.discord.click(opened["channel"], buyer.id, "astra:cart:pay")
    await pay.wait_message()
    order = (await asyncio.to_thread(shop.sales.list_orders, INSTANCE))[0]
    await asyncio.to_thread(shop.mp.approve, order.charge_id)
    dm = await shop.discord.wait_for_message(dm_user=buyer.id, timeout=15)
    return order, dm


async def test_whole_purchase_from_slash_commands_to_keys_in_dm(data_dir: Path) -> None:
    async with running_shop(data_dir) as shop:
        keys = ["KEY-AAAA-0001", "KEY-BBBB-0002", "KEY-CCCC-0003"]
        product_id, variant_id = await _setup_catalog(shop, keys)
        buyer = shop.buyer("comprador")
        opened = await _open_cart(shop, buyer, product_id, variant_id)
        channel = opened["channel"]
        assert shop.discord.can_view(channel, buyer.id)

        quantity = await shop.discord.click(channel, buyer.id, "astra:cart:quantity")
        await quantity.response()
        submitted = await shop.discord.submit_modal(
            buyer.id, "astra:modal:quantity", {variant_id: "2"}
        )
        await submitted.wait_message()
        coupon = await shop.discord.click(channel, buyer.id, "astra:cart:coupon")
        await coupon.response()
        applied = await shop.discord.submit_modal(
            buyer.id, "astra:modal:coupon", {"code": "promo10"}
        )
        await applied.wait_message()
        assert "PROMO10" in text_of(applied)
        view = await asyncio.to_thread(shop.sales.get_cart, INSTANCE, str(buyer.id))
        assert view.quote.total_cents == 3582  # 2 x 19,90 - 10%

        pay = await shop.discord.click(channel, buyer.id, "astra:cart:pay")
        await pay.wait_message()
        pix = await shop.discord.wait_for_message(
            channel, check=lambda m: any("PIX" in (e.get("title") or "") for e in m["embeds"])
        )
        assert pix["attachments"] and pix["attachments"][0]["filename"] == "pix.png"
        order = (await asyncio.to_thread(shop.sales.list_orders, INSTANCE))[0]
        assert order.charge["qr_code"] in pix["embeds"][0]["description"]
        copy = await shop.discord.click(pix["id"], buyer.id, f"astra:order:copy:{order.id}")
        copied = await copy.wait_message()
        assert copied["content"] == order.charge["qr_code"]

        # Mercado Pago approves; its signed webhook reaches the portal; the bot delivers.
        await asyncio.to_thread(shop.mp.approve, order.charge_id)
        dm = await shop.discord.wait_for_message(dm_user=buyer.id, timeout=15)
        delivered = await shop.eventually(
            lambda: shop.sales.get_order(INSTANCE, order.id).status.value == "delivered",
            what="delivery",
        )
        assert delivered
        sold_keys = [k for k in keys if k in message_text(dm)]
        assert len(sold_keys) == 2 and order.id in message_text(dm)
        announcement = await shop.discord.wait_for_message(shop.sales_channel.id)
        assert f"<@{buyer.id}>" in announcement["content"]
        await shop.eventually(
            lambda: str(shop.buyer_role.id) in shop.discord.roles_of(shop.guild.id, buyer.id),
            what="role",
        )
        # stock, order, wallet and audit agree
        counts = await asyncio.to_thread(shop.catalog.stock_counts, INSTANCE)
        assert counts[variant_id] == {"available": 1, "reserved": 0, "sold": 2}
        assert await asyncio.to_thread(shop.wallet.balance, OWNER) == 3582 - 215
        with shop.store.instance(INSTANCE, write=False) as uow:
            actions = [a["action"] for a in uow.audit.all()]
        for action in (
            "order.created",
            "order.paid",
            "delivery.delivered",
            "stock.imported",
            "coupon.created",
            "product.created",
        ):
            assert action in actions
        # the paid cart's channel closes
        await shop.eventually(
            lambda: (
                not shop.discord.channels_of(shop.guild.id)
                or all(
                    str(c["id"]) != str(channel) for c in shop.discord.channels_of(shop.guild.id)
                )
            ),
            what="cart channel closed",
        )


async def test_dms_closed_delivers_in_the_cart_channel(data_dir: Path) -> None:
    async with running_shop(data_dir) as shop:
        product_id, variant_id = await _setup_catalog(shop, ["ONLY-KEY-1", "ONLY-KEY-2"])
        buyer = shop.buyer("fechado", dms_closed=True)
        opened = await _open_cart(shop, buyer, product_id, variant_id)
        pay = await shop.discord.click(opened["channel"], buyer.id, "astra:cart:pay")
        await pay.wait_message()
        order = (await asyncio.to_thread(shop.sales.list_orders, INSTANCE))[0]
        await asyncio.to_thread(shop.mp.approve, order.charge_id)
        message = await shop.discord.wait_for_message(
            opened["channel"], check=lambda m: "ONLY-KEY-1" in message_text(m), timeout=15
        )
        assert f"<@{buyer.id}>" in message["content"]
        assert shop.discord.dm_messages(buyer.id) == []
        channel = opened["channel"]
        kept = await shop.discord.wait_for_message(
            channel, check=lambda m: "Recebi" in str(m.get("components")), timeout=10
        )
        assert "7 dias" in kept["content"] and "/minhas-compras" in kept["content"]

        def channel_open() -> bool:
            return any(str(c["id"]) == str(channel)
                       for c in shop.discord.channels_of(shop.guild.id))

        # The janitor runs every 0.1 s and closes paid carts at once here: not this one.
        await asyncio.sleep(1.5)
        assert channel_open()

        # The keys again, any time, for their buyer only.
        mine = await shop.command("minhas-compras", user=buyer)
        assert mine.ephemeral and "ONLY-KEY-1" in text_of(mine), text_of(mine)
        stranger = shop.buyer("curioso")
        theirs = await shop.command("minhas-compras", user=stranger)
        assert "ONLY-KEY" not in text_of(theirs) and "ainda não tem compras" in text_of(theirs)
        # Nobody else's "Recebi" counts.
        with pytest.raises(NotFoundError):
            await asyncio.to_thread(shop.delivery.acknowledge, INSTANCE, order.id,
                                    str(stranger.id))
        assert channel_open()

        got_it = await shop.discord.click(kept, buyer.id, f"astra:order:received:{order.id}")
        assert (await got_it.response())["data"]["flags"] & 64  # answered, to the buyer only
        # Recorded, and the channel closes (taking the thank-you note with it).
        await shop.eventually(lambda: not channel_open(), what="the channel closed")
        with shop.store.instance(INSTANCE, write=False) as uow:
            assert uow.carts.require(order.cart_id)["received_at"]


async def test_last_key_race_and_seller_commands_refused_to_buyers(data_dir: Path) -> None:
    async with running_shop(data_dir) as shop:
        product_id, variant_id = await _setup_catalog(shop, ["LAST-KEY"])
        first, second = shop.buyer("primeiro"), shop.buyer("segundo")
        picks = await asyncio.gather(
            *(
                shop.discord.select(
                    shop.post_channel.id, b.id, f"astra:variant:{product_id}", [variant_id]
                )
                for b in (first, second)
            )
        )
        for pick in picks:
            await pick.wait_message()
        texts = [text_of(pick) for pick in picks]
        assert sum("Sem estoque" in t for t in texts) == 1
        assert sum("Continue em" in t for t in texts) == 1
        # Discord does not even offer a seller command to a buyer (Manage Server)...
        with pytest.raises(ValueError, match="lacks the permissions"):
            await shop.discord.slash(shop.guild.id, first.id, "loja vendas", {})
        # ...and the bot itself refuses a server admin of another guild.
        stranger = shop.discord.add_user("outro-dono")
        other = shop.discord.add_guild("Outro Servidor", owner=stranger.id)
        shop.discord.add_member(other.id, stranger.id, admin=True)
        refused = await shop.discord.slash(other.id, stranger.id, "loja vendas", {})
        await refused.wait_message()
        assert "outro servidor" in text_of(refused)


async def test_rate_limits_and_gateway_drop_lose_nothing(data_dir: Path) -> None:
    async with running_shop(data_dir) as shop:
        product_id, variant_id = await _setup_catalog(shop, ["R-1", "R-2", "R-3"])
        buyer = shop.buyer("paciente")
        shop.discord.rate_limit_next(1, retry_after=0.2, path_contains="/guilds/")
        opened = await _open_cart(shop, buyer, product_id, variant_id)
        assert shop.discord.rate_limited
        await shop.discord.drop_gateway()
        await shop.eventually(lambda: shop.discord.resume_count >= 1, what="resume")
        quantity = await shop.discord.click(opened["channel"], buyer.id, "astra:cart:quantity")
        await quantity.response()
        done = await shop.discord.submit_modal(buyer.id, "astra:modal:quantity", {variant_id: "3"})
        await done.wait_message()
        view = await asyncio.to_thread(shop.sales.get_cart, INSTANCE, str(buyer.id))
        assert view.cart.lines[0].quantity == 3


async def test_purchase_through_a_tenant_runtime(data_dir: Path) -> None:
    """The bot holds its bot token and runtime credential, nothing else: every cart step and
    the charge go through the platform's internal API, and the keys reach the buyer from the
    platform's courier."""
    async with running_shop(data_dir, tenant=True) as shop:
        assert isinstance(shop.bot.ctx.api, HttpInstanceAPI)
        product_id, variant_id = await _setup_catalog(shop, ["T-KEY-1", "T-KEY-2"])
        buyer = shop.buyer("remoto")
        opened = await _open_cart(shop, buyer, product_id, variant_id)
        pay = await shop.discord.click(opened["channel"], buyer.id, "astra:cart:pay")
        await pay.wait_message()
        order = (await asyncio.to_thread(shop.sales.list_orders, INSTANCE))[0]
        assert (
            order.charge_id
            and shop.mp.payment(order.charge_id)["metadata"]["instance_id"] == INSTANCE
        )
        await asyncio.to_thread(shop.mp.approve, order.charge_id)
        dm = await shop.discord.wait_for_message(dm_user=buyer.id, timeout=15)
        assert "T-KEY-1" in message_text(dm)
        await shop.eventually(lambda: shop.wallet.balance(OWNER) == 1871, what="credit")

        # The seller asks to see the available keys: the platform shows them in follow-ups of
        # the seller's own interaction, ephemeral, and the bot never receives them.
        seen = await shop.command(
            "loja estoque ver", {"produto": "Steam Key", "mostrar_chaves": True}
        )
        # one follow-up per variant, after the counts
        await shop.discord.wait_for(lambda: len(seen.followup_messages) >= 2, 10, "the keys")
        assert "T-KEY-2" in text_of(seen) and "T-KEY-1" not in text_of(seen)  # sold: not shown
        assert all(m["flags"] & 64 for m in seen.followup_messages)
        with shop.store.instance(INSTANCE, write=False) as uow:
            assert [a for a in uow.audit.all() if a["action"] == "stock.revealed"]


async def test_a_cart_whose_channel_never_opened_is_reached_by_picking_again(
    data_dir: Path,
) -> None:
    """The bot stopped after reserving the key and before opening the channel: picking the
    product again must lead the buyer to that cart, even when the pick itself is refused."""
    async with running_shop(data_dir) as shop:
        product_id, variant_id = await _setup_catalog(shop, ["C-1", "C-2", "C-3", "C-4", "C-5"])
        buyer = shop.buyer("interrompido")
        await asyncio.to_thread(
            shop.sales.add_item, INSTANCE, str(buyer.id), product_id, variant_id, 5
        )
        assert (await asyncio.to_thread(shop.sales.get_cart, INSTANCE, str(buyer.id))).cart \
            .channel_id is None
        pick = await shop.discord.select(
            shop.post_channel.id, buyer.id, f"astra:variant:{product_id}", [variant_id]
        )
        await pick.wait_message()
        assert "no máximo 5" in text_of(pick) and "Seu carrinho está em" in text_of(pick)
        view = await asyncio.to_thread(shop.sales.get_cart, INSTANCE, str(buyer.id))
        assert view.cart.channel_id and shop.discord.can_view(view.cart.channel_id, buyer.id)
        assert view.cart.lines[0].quantity == 5  # nothing changed but the channel


async def test_an_unrecorded_cart_channel_is_reused_and_orphans_are_closed(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A channel opened for a cart by an attempt that stopped before recording it is found by
    its topic and reused; one no cart points at any more is closed by the janitor."""
    from astra.adapters.chat.discord import ui, worker

    async with running_shop(data_dir) as shop:
        product_id, variant_id = await _setup_catalog(shop, ["U-1", "U-2"])
        buyer = shop.buyer("retomado")
        view = await asyncio.to_thread(
            shop.sales.add_item, INSTANCE, str(buyer.id), product_id, variant_id, 1
        )
        unrecorded = shop.discord.add_channel(
            shop.guild.id, "carrinho-retomado", topic=ui.cart_topic(view.cart.id)
        )
        pick = await shop.discord.select(
            shop.post_channel.id, buyer.id, f"astra:variant:{product_id}", [variant_id]
        )
        await pick.wait_message()
        cart = (await asyncio.to_thread(shop.sales.get_cart, INSTANCE, str(buyer.id))).cart
        assert cart.channel_id == str(unrecorded.id)
        assert str(unrecorded.id) in text_of(pick)

        # a stale duplicate for the same cart, and one for a cart that does not exist here
        stale = shop.discord.add_channel(
            shop.guild.id, "carrinho-velho", topic=ui.cart_topic(view.cart.id)
        )
        foreign = shop.discord.add_channel(
            shop.guild.id, "outra-loja", topic=ui.cart_topic("cart_of_another_shop")
        )
        monkeypatch.setattr(worker, "ORPHAN_MIN_AGE", 0.0)
        await shop.bot.worker.close_orphan_channels()
        left = {str(c["id"]) for c in shop.discord.channels_of(shop.guild.id)}
        assert str(stale.id) not in left
        assert {str(unrecorded.id), str(foreign.id)} <= left
