"""The fakes the replica tests share, one of each per test module: a Mercado Pago (its base URL
on `fake.base`) and a Discord whose one bot every shop of the module uses in turn (each test has
a database of its own, so one token never serves two instances at once)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.discord.thread import FakeDiscordThread
from tests.fakes.mercadopago import FakeMercadoPagoThread

BOT_TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.replica.bot-token-for-the-replica-tests-0000"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeMercadoPagoThread]:
    from bench.pg_replicas import WEBHOOK_SECRET

    fake = FakeMercadoPagoThread(webhook_secret=WEBHOOK_SECRET)
    fake.base = fake.start()  # type: ignore[attr-defined]
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def discord() -> Iterator[FakeDiscordThread]:
    discord = FakeDiscordThread(bot_token=BOT_TOKEN)
    discord.start()
    yield discord
    discord.stop()
