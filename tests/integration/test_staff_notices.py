"""Staff notices wait in the instance's store until sent: a notifier that was not running (the
platform crashed, or another replica leads) sends them later, each once, in the order they were
written; a failing one is retried with backoff, holds the later ones back, and is given up in
the end. On both stores, through the fake Discord."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

from astra.container import build_container
from astra.domain.notifications import Notice
from astra.domain.services.staff_notifications import RETRY_DELAYS, notice_id
from astra.entrypoints.notifier import Notifier
from tests.e2e.bot_world import BOT_TOKEN
from tests.fakes.discord import FakeDiscord
from tests.integration.sales_world import INSTANCE, make_shop

BUYERS = ["111111111111111111", "222222222222222222", "333333333333333333"]


def _pending(container: Any) -> list[dict[str, Any]]:
    with container.store().instance(INSTANCE, write=False) as uow:
        return uow.staff_notices.find(status="pending")


async def test_notices_written_while_no_notifier_ran_are_sent_later_once_in_order(
    store_backend: Any, data_dir: Path
) -> None:
    discord = FakeDiscord(bot_token=BOT_TOKEN)
    await discord.start()
    try:
        shop = make_shop(data_dir, keys=5, discord_api_base=discord.api_url)
        guild = discord.add_guild("Loja")
        logs = discord.add_channel(guild.id, "logs")
        shop.instances.set_bot_token(INSTANCE, BOT_TOKEN, {
            "id": str(discord.bot.id), "application_id": str(discord.application_id)},
            actor="test")
        shop.instances.update_settings(INSTANCE, {"guild_id": str(guild.id),
                                                  "log_channel_id": str(logs.id)}, actor="test")
        # The platform commits three sales steps and dies before any notice is sent.
        for buyer in BUYERS:
            await asyncio.to_thread(shop.sales.add_item, INSTANCE, buyer, shop.product_id,
                                    shop.variant_id, 1)
        written = _pending(shop.container)
        assert [d["key"].split(":")[0] for d in written] == ["cart.opened"] * 3
        settings = shop.container.settings()
        shop.store.close()

        # The next platform (a restart, or the replica that leads now) sends them.
        for run in range(2):
            container = build_container(settings)
            container.clock.override(shop.container.clock)
            stop = asyncio.Event()
            notifier = Notifier(container, tick=0.05)
            task = asyncio.create_task(notifier.run(stop))
            try:
                if run == 0:
                    await discord.wait_for(lambda: len(discord.messages(logs.id)) == 3, 10,
                                           "three notices")
                else:
                    await asyncio.sleep(0.5)  # a second restart finds nothing left to send
            finally:
                stop.set()
                await asyncio.wait_for(task, 10)
            assert _pending(container) == []
            container.store().close()
        texts = [m["content"] for m in discord.messages(logs.id)]
        assert len(texts) == 3
        assert [next(b for b in BUYERS if b in t) for t in texts] == BUYERS  # in order
    finally:
        await discord.stop()


def test_a_failing_notice_is_retried_then_given_up_and_keeps_its_place(
    store_backend: Any, data_dir: Path
) -> None:
    shop = make_shop(data_dir, keys=0)
    notices = shop.container.staff_notices()
    first, second = Notice("cart.opened:c1", "um"), Notice("cart.opened:c2", "dois")
    assert notices.enqueue(INSTANCE, first) and notices.enqueue(INSTANCE, second)
    assert not notices.enqueue(INSTANCE, first)  # the same fact is written once
    assert notices.waiting() == [INSTANCE]
    assert [d["text"] for d in notices.due(INSTANCE)] == ["um", "dois"]
    for delay in RETRY_DELAYS:
        assert notices.failed(INSTANCE, notice_id(first.key), retryable=True)
        # Waiting out its backoff, it holds the later one back: the channel reads in order.
        assert notices.due(INSTANCE) == []
        shop.clock.advance(delay)
        assert [d["text"] for d in notices.due(INSTANCE)] == ["um", "dois"]
    assert not notices.failed(INSTANCE, notice_id(first.key), retryable=True)  # given up
    assert [d["text"] for d in notices.due(INSTANCE)] == ["dois"]
    notices.sent(INSTANCE, notice_id(second.key))
    assert notices.due(INSTANCE) == [] and notices.waiting() == []
    # Settled notices are kept a week, then deleted; a pending one never is.
    third = Notice("cart.opened:c3", "três")
    assert notices.enqueue(INSTANCE, third)
    shop.clock.advance(timedelta(days=8))
    assert notices.prune() == 2
    assert [d["text"] for d in notices.due(INSTANCE)] == ["três"]
    shop.store.close()
