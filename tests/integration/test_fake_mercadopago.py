"""The official `mercadopago` SDK against tests/fakes/mercadopago.py, and the fake's webhooks
checked by a real aiohttp receiver with an independent signature check."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import mercadopago
import pytest
from aiohttp import web
from mercadopago.config import RequestOptions
from mercadopago.webhook.validator import WebhookSignatureValidator

from tests.fakes.mercadopago import (
    STATUSES,
    FakeMercadoPago,
    FakeMercadoPagoThread,
    crc16_ccitt,
    parse_br_code,
)

TOKEN = "TEST-1111222233334444-010100-abcdefabcdefabcdefabcdefabcdef12-987654321"
SECRET = "whsec-fake-0123456789"
MP_BASE = "https://api.mercadopago.com"

pytestmark = pytest.mark.filterwarnings("ignore:notification_url is deprecated")


class LocalHttpClient(mercadopago.http.HttpClient):
    """The SDK's client aimed at the fake (its retries are mounted for https only)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def request(self, method, url, maxretries=None, retry_on=None, backoff_factor=None, **kwargs):
        return super().request(
            method,
            url.replace(MP_BASE, self.base_url, 1),
            maxretries,
            retry_on,
            backoff_factor,
            **kwargs,
        )


class Receiver:
    """A webhook endpoint that records what arrives and answers 200."""

    def __init__(self) -> None:
        self.hits: list[dict[str, Any]] = []
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/hook"
        return self.url

    async def handle(self, request: web.Request) -> web.Response:
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.hits.append(
            {
                "query": dict(request.query),
                "headers": headers,
                "body": await request.json(),
                "url": str(request.url),
            }
        )
        return web.Response(text="ok")

    async def wait(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        async with asyncio.timeout(timeout):
            while len(self.hits) < count:
                await asyncio.sleep(0.01)
        return self.hits

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


def verify(secret: str, hit: dict[str, Any]) -> bool:
    """Independent check of Mercado Pago's documented signature scheme."""
    parts = dict(p.strip().split("=", 1) for p in hit["headers"]["x-signature"].split(","))
    data_id = hit["query"]["data.id"]
    if data_id.isalnum():
        data_id = data_id.lower()
    manifest = f"id:{data_id};request-id:{hit['headers']['x-request-id']};ts:{parts['ts']};"
    expected = hmac.new(secret.encode(), manifest.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts["v1"])


def pix_body(ref: str = "order-1", amount: float = 25.9, **extra: Any) -> dict[str, Any]:
    body = {
        "transaction_amount": amount,
        "description": "Chave Steam",
        "payment_method_id": "pix",
        "payer": {"email": "buyer@example.com"},
        "external_reference": ref,
        "metadata": {"order_id": ref, "instance": "inst-1"},
    }
    body.update(extra)
    return body


def key(value: str) -> RequestOptions:
    return RequestOptions(custom_headers={"x-idempotency-key": value})


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    await r.start()
    yield r
    await r.stop()


@pytest.fixture
async def fake(receiver: Receiver) -> AsyncIterator[FakeMercadoPago]:
    f = FakeMercadoPago(access_token=TOKEN, webhook_secret=SECRET, webhook_url=receiver.url)
    await f.start()
    yield f
    await f.stop()


@pytest.fixture
def sdk(fake: FakeMercadoPago) -> mercadopago.SDK:
    return mercadopago.SDK(TOKEN, http_client=LocalHttpClient(fake.base_url))


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url) as response:
        return response.read()


async def call(fn, *args: Any) -> Any:
    """The SDK is synchronous: keep the loop (and so the fake) running while it waits."""
    return await asyncio.to_thread(fn, *args)


async def test_create_pix_has_the_full_payment_shape(
    fake: FakeMercadoPago, sdk: mercadopago.SDK
) -> None:
    result = await call(sdk.payment().create, pix_body(amount=25.9), key("order-1-v1"))
    assert result["status"] == 201
    p = result["response"]
    assert isinstance(p["id"], int)
    assert p["status"] == "pending" and p["status_detail"] == "pending_waiting_transfer"
    assert (p["currency_id"], p["payment_method_id"], p["payment_type_id"]) == (
        "BRL",
        "pix",
        "bank_transfer",
    )
    assert p["transaction_amount"] == 25.9 and p["external_reference"] == "order-1"
    assert p["metadata"] == {"order_id": "order-1", "instance": "inst-1"}
    assert p["payer"]["email"] == "buyer@example.com"
    assert p["date_approved"] is None and p["live_mode"] is False and p["refunds"] == []
    created = datetime.fromisoformat(p["date_created"])
    expires = datetime.fromisoformat(p["date_of_expiration"])
    assert timedelta(hours=23, minutes=59) < expires - created <= timedelta(hours=24)
    data = p["point_of_interaction"]["transaction_data"]
    assert p["point_of_interaction"]["type"] == "PIX"
    fields = parse_br_code(data["qr_code"])
    assert fields["26"]["00"] == "br.gov.bcb.pix"
    assert (fields["53"], fields["54"], fields["58"]) == ("986", "25.90", "BR")
    assert fields["62"]["05"] and fields["63"] == crc16_ccitt(data["qr_code"][:-4])
    png = base64.b64decode(data["qr_code_base64"])
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and b"IDAT" in png
    assert data["ticket_url"].startswith(fake.base_url)
    assert b"25.90" in await call(fetch, data["ticket_url"])
    assert p["transaction_details"]["total_paid_amount"] == 25.9


async def test_idempotency_key_replays_and_conflicts(
    fake: FakeMercadoPago, sdk: mercadopago.SDK
) -> None:
    first = await call(sdk.payment().create, pix_body(), key("order-1-v1"))
    again = await call(sdk.payment().create, pix_body(), key("order-1-v1"))
    assert first["status"] == 201 and again["status"] == 200
    assert again["response"]["id"] == first["response"]["id"]
    changed = await call(sdk.payment().create, pix_body(amount=30.0), key("order-1-v1"))
    assert changed["status"] == 409
    assert changed["response"]["error"] == "conflict" and changed["response"]["cause"]
    other = await call(sdk.payment().create, pix_body(), key("order-1-v2"))
    assert other["status"] == 201 and other["response"]["id"] != first["response"]["id"]
    assert len(fake.payments) == 2
    keys = [r.idempotency_key for r in fake.requests if r.path == "/v1/payments"]
    assert keys == ["order-1-v1", "order-1-v1", "order-1-v1", "order-1-v2"]
    assert fake.requests[0].body == pix_body()


async def test_lost_answer_then_retry_makes_one_charge(
    fake: FakeMercadoPago, sdk: mercadopago.SDK
) -> None:
    fake.fail_next(1, 500, after_processing=True)
    lost = await call(sdk.payment().create, pix_body(), key("k-lost"))
    assert lost["status"] == 500 and lost["response"]["status"] == 500
    retried = await call(sdk.payment().create, pix_body(), key("k-lost"))
    assert retried["status"] == 200 and len(fake.payments) == 1


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"transaction_amount": 0}, 4037),
        ({"transaction_amount": 10.123}, 4037),
        ({"transaction_amount": "10.00"}, 4037),
        ({"payer": {"email": "not-an-email"}}, 4050),
        ({"payer": {}}, 4050),
        ({"payment_method_id": "visa"}, 4033),
        ({"notification_url": "ftp://example.com/x"}, 4020),
        ({"date_of_expiration": "2020-01-01T00:00:00.000-03:00"}, 4293),
        ({"date_of_expiration": "tomorrow"}, 4292),
        ({"metadata": ["not", "an", "object"]}, 4022),
        ({"paymentMethodId": "pix"}, 8),
    ],
)
async def test_bad_input_is_400_with_causes(
    sdk: mercadopago.SDK, change: dict[str, Any], code: int
) -> None:
    result = await call(sdk.payment().create, pix_body(**change), key("bad"))
    assert result["status"] == 400
    body = result["response"]
    assert body["error"] == "bad_request" and body["status"] == 400
    assert code in [c["code"] for c in body["cause"]]
    assert all({"code", "description", "data"} <= set(c) for c in body["cause"])


async def test_expiration_window_is_30_minutes_to_30_days(sdk: mercadopago.SDK) -> None:
    now = datetime.now(UTC)
    for delta, status in (
        (timedelta(minutes=20), 400),
        (timedelta(minutes=31), 201),
        (timedelta(days=29), 201),
        (timedelta(days=31), 400),
    ):
        when = (now + delta).isoformat(timespec="milliseconds")
        result = await call(
            sdk.payment().create, pix_body(date_of_expiration=when), key(f"exp-{delta}")
        )
        assert result["status"] == status, (delta, result["response"])


async def test_get_and_unknown_id(sdk: mercadopago.SDK) -> None:
    created = (await call(sdk.payment().create, pix_body(), key("g")))["response"]
    got = await call(sdk.payment().get, created["id"])
    assert got["status"] == 200 and got["response"]["id"] == created["id"]
    missing = await call(sdk.payment().get, 12345)
    assert missing["status"] == 404
    assert missing["response"]["error"] == "not_found"
    assert missing["response"]["cause"][0]["code"] == 2000


async def test_cancel_pending_only(fake: FakeMercadoPago, sdk: mercadopago.SDK) -> None:
    pid = (await call(sdk.payment().create, pix_body(), key("c")))["response"]["id"]
    cancelled = await call(sdk.payment().update, pid, {"status": "cancelled"})
    assert cancelled["status"] == 200
    assert cancelled["response"]["status"] == "cancelled"
    again = await call(sdk.payment().update, pid, {"status": "cancelled"})
    assert again["status"] == 400 and again["response"]["cause"][0]["code"] == 2018
    pid2 = (await call(sdk.payment().create, pix_body(), key("c2")))["response"]["id"]
    fake.approve(pid2)
    refused = await call(sdk.payment().update, pid2, {"status": "cancelled"})
    assert refused["status"] == 400
    assert (await call(sdk.payment().update, pid2, {"status": "approved"}))["status"] == 400


async def test_approve_sends_signed_webhooks(
    fake: FakeMercadoPago, sdk: mercadopago.SDK, receiver: Receiver
) -> None:
    notification_url = receiver.url + "?source_news=webhooks"
    pid = (await call(sdk.payment().create, pix_body(notification_url=notification_url), key("w")))[
        "response"
    ]["id"]
    approved = fake.approve(pid)
    assert approved["status"] == "approved" and approved["status_detail"] == "accredited"
    assert approved["date_approved"] is not None
    hits = await receiver.wait(2)
    created, updated = hits
    for hit, action in ((created, "payment.created"), (updated, "payment.updated")):
        assert hit["query"] == {"source_news": "webhooks", "data.id": str(pid), "type": "payment"}
        body = hit["body"]
        assert body["action"] == action and body["type"] == "payment"
        assert body["data"] == {"id": str(pid)} and body["live_mode"] is False
        assert body["api_version"] == "v1" and body["user_id"] == 987654321
        assert isinstance(body["id"], int)
        datetime.fromisoformat(body["date_created"])
        assert verify(SECRET, hit)
        assert not verify("another-secret", hit)
        WebhookSignatureValidator.validate(
            hit["headers"]["x-signature"],
            hit["headers"]["x-request-id"],
            hit["query"]["data.id"],
            SECRET,
            tolerance_seconds=60,
        )
    assert created["headers"]["x-request-id"] != updated["headers"]["x-request-id"]
    current = await call(sdk.payment().get, pid)
    assert current["response"]["status"] == "approved"
    assert current["response"]["transaction_details"]["net_received_amount"] < 25.9
    assert [d.status for d in fake.sent_webhooks] == [200, 200]


async def test_refund_partial_then_full(fake: FakeMercadoPago, sdk: mercadopago.SDK) -> None:
    pid = (await call(sdk.payment().create, pix_body(amount=100.0), key("r")))["response"]["id"]
    early = await call(sdk.refund().create, pid, None, key("r-early"))
    assert early["status"] == 400  # not approved yet
    fake.approve(pid)
    partial = await call(sdk.refund().create, pid, {"amount": 30.0}, key("r-30"))
    assert partial["status"] == 201
    refund = partial["response"]
    assert refund["amount"] == 30.0 and refund["payment_id"] == pid
    assert refund["status"] == "approved" and refund["source"]["type"]
    replay = await call(sdk.refund().create, pid, {"amount": 30.0}, key("r-30"))
    assert replay["response"]["id"] == refund["id"]
    p = (await call(sdk.payment().get, pid))["response"]
    assert (p["status"], p["status_detail"]) == ("approved", "partially_refunded")
    assert p["transaction_amount_refunded"] == 30.0 and len(p["refunds"]) == 1
    over = await call(sdk.refund().create, pid, {"amount": 70.01}, key("r-over"))
    assert over["status"] == 400 and over["response"]["cause"]
    full = await call(sdk.refund().create, pid, None, key("r-rest"))
    assert full["status"] == 201 and full["response"]["amount"] == 70.0
    p = (await call(sdk.payment().get, pid))["response"]
    assert (p["status"], p["status_detail"]) == ("refunded", "refunded")
    listed = await call(sdk.refund().list_all, pid)
    assert [r["amount"] for r in listed["response"]] == [30.0, 70.0]
    one = await call(sdk.refund().get, pid, refund["id"])
    assert one["response"]["amount"] == 30.0
    assert (await call(sdk.refund().create, pid, None, key("r-more")))["status"] == 400


async def test_search_by_external_reference(fake: FakeMercadoPago, sdk: mercadopago.SDK) -> None:
    ids = []
    for i in range(3):
        created = await call(sdk.payment().create, pix_body("order-7"), key(f"s{i}"))
        ids.append(created["response"]["id"])
    await call(sdk.payment().create, pix_body("order-8"), key("s-other"))
    found = await call(
        sdk.payment().search,
        {"external_reference": "order-7", "sort": "date_created", "criteria": "asc"},
    )
    assert found["status"] == 200
    assert found["response"]["paging"] == {"total": 3, "limit": 30, "offset": 0}
    assert [p["id"] for p in found["response"]["results"]] == ids
    page = await call(
        sdk.payment().search,
        {"external_reference": "order-7", "limit": 1, "offset": 1, "criteria": "desc"},
    )
    assert [p["id"] for p in page["response"]["results"]] == [ids[1]]
    every = list(
        await call(
            lambda: list(
                sdk.payment().search_auto_paging_iter({"external_reference": "order-7"}, limit=2)
            )
        )
    )
    assert sorted(p["id"] for p in every) == sorted(ids)
    none = await call(sdk.payment().search, {"external_reference": "nope"})
    assert none["response"] == {"paging": {"total": 0, "limit": 30, "offset": 0}, "results": []}


async def test_search_ranged_and_sorted_by_date_last_updated(
    fake: FakeMercadoPago, sdk: mercadopago.SDK
) -> None:
    ids = []
    for i in range(3):
        created = await call(sdk.payment().create, pix_body(f"order-r{i}"), key(f"r{i}"))
        ids.append(created["response"]["id"])
    fake.advance(60)
    since = fake.now()
    fake.advance(1)
    fake.approve(ids[2])
    fake.advance(1)
    fake.approve(ids[0])

    def search(**params: Any) -> Any:
        return call(sdk.payment().search, params)

    changed = await search(sort="date_last_updated", criteria="asc", range="date_last_updated",
                           begin_date=since.isoformat(), end_date="NOW")
    assert changed["status"] == 200
    assert [p["id"] for p in changed["response"]["results"]] == [ids[2], ids[0]]
    assert changed["response"]["paging"]["total"] == 2
    # created before `since`: the default range (date_created) finds none of them
    created = await search(begin_date=since.isoformat(), end_date="NOW")
    assert created["response"]["results"] == []
    # relative dates, as Mercado Pago documents them
    recent = await search(range="date_last_updated", begin_date="NOW-1DAYS", limit=2, offset=2)
    assert [p["id"] for p in recent["response"]["results"]] == [ids[0]]  # newest first
    utc_z = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    assert len((await search(range="date_last_updated", begin_date=utc_z))[
        "response"]["results"]) == 2
    for params, code in (({"begin_date": "yesterday"}, 1001), ({"sort": "price"}, 1003),
                         ({"criteria": "up"}, 1004), ({"limit": 5000}, 1000)):
        refused = await search(**params)
        assert refused["status"] == 400, params
        assert refused["response"]["cause"][0]["code"] == code


async def test_bad_token_is_401(fake: FakeMercadoPago) -> None:
    wrong = mercadopago.SDK("TEST-wrong", http_client=LocalHttpClient(fake.base_url))
    result = await call(wrong.payment().create, pix_body(), key("t"))
    assert result["status"] == 401
    body = result["response"]
    assert body["error"] == "unauthorized" and body["status"] == 401
    assert isinstance(body["cause"], list) and body["message"]
    assert fake.payments == {}
    with pytest.raises(urllib.error.HTTPError) as err:
        await call(fetch, f"{fake.base_url}/v1/payments/1")
    assert err.value.code == 401


async def test_fail_next_then_success(fake: FakeMercadoPago, sdk: mercadopago.SDK) -> None:
    fake.fail_next(2, status=503)
    first = await call(sdk.payment().create, pix_body(), key("f"))
    assert first["status"] == 503 and first["response"]["status"] == 503
    assert first["response"]["cause"]
    assert (await call(sdk.payment().search, {}))["status"] == 503
    ok = await call(sdk.payment().create, pix_body(), key("f"))
    assert ok["status"] == 201 and len(fake.payments) == 1
    fake.fail_next(5)
    fake.fail_next(0)  # cancels the queued failures
    assert (await call(sdk.payment().search, {}))["status"] == 200


async def test_expiry_lazy_and_background(
    fake: FakeMercadoPago, sdk: mercadopago.SDK, receiver: Receiver
) -> None:
    soon = (datetime.now(UTC) + timedelta(minutes=31)).isoformat()
    pid = (await call(sdk.payment().create, pix_body(date_of_expiration=soon), key("e")))[
        "response"
    ]["id"]
    later = (await call(sdk.payment().create, pix_body(), key("e2")))["response"]["id"]
    fake.advance(32 * 60)
    p = (await call(sdk.payment().get, pid))["response"]
    assert (p["status"], p["status_detail"]) == ("cancelled", "expired")
    assert (await call(sdk.payment().get, later))["response"]["status"] == "pending"
    hits = await receiver.wait(3)
    assert hits[-1]["body"]["action"] == "payment.updated"
    assert hits[-1]["query"]["data.id"] == str(pid)
    # Nobody reads it: the background task still expires it and notifies.
    with fake._lock:
        fake.payments[later]["_expires"] = fake.now()
    await receiver.wait(4)
    assert fake.payment(later)["status_detail"] == "expired"
    approved_too_late = (await call(sdk.refund().create, pid, None, key("e-r")))["status"]
    assert approved_too_late == 400


async def test_controls_for_every_status(fake: FakeMercadoPago, sdk: mercadopago.SDK) -> None:
    pid = (await call(sdk.payment().create, pix_body(), key("st")))["response"]["id"]
    for status in STATUSES:
        fake.set_status(pid, status)
        assert (await call(sdk.payment().get, pid))["response"]["status"] == status
    other = (await call(sdk.payment().create, pix_body(), key("rj")))["response"]["id"]
    assert fake.reject(other)["status"] == "rejected"
    third = (await call(sdk.payment().create, pix_body(), key("cb")))["response"]["id"]
    fake.approve(third)
    assert fake.chargeback(third)["status"] == "charged_back"
    fourth = await call(sdk.payment().create, pix_body(amount=10.0), key("rf"))
    fake.approve(fourth["response"]["id"])
    assert fake.refund(fourth["response"]["id"], 4)["amount"] == 4.0
    assert fake.payment(fourth["response"]["id"])["status_detail"] == "partially_refunded"
    fifth = (await call(sdk.payment().create, pix_body(), key("ex")))["response"]["id"]
    assert fake.expire(fifth)["status_detail"] == "expired"


async def test_webhook_delivery_modes(
    fake: FakeMercadoPago, sdk: mercadopago.SDK, receiver: Receiver
) -> None:
    fake.webhook_mode.drop = 1
    pid = (await call(sdk.payment().create, pix_body(), key("m")))["response"]["id"]
    assert len(fake.dropped_webhooks) == 1  # payment.created never sent
    fake.webhook_mode.duplicate = 2
    fake.approve(pid)
    hits = await receiver.wait(2)
    assert [h["body"]["id"] for h in hits] == [hits[0]["body"]["id"]] * 2
    fake.webhook_mode.duplicate = 1
    fake.webhook_mode.reorder = True
    fake.refund(pid, 1)
    fake.refund(pid)
    await asyncio.sleep(0.1)
    assert len(receiver.hits) == 2 and len(fake.held_webhooks) == 2
    fake.webhook_mode.reorder = False
    assert fake.flush() == 2
    hits = await receiver.wait(4)
    assert hits[2]["body"]["id"] > hits[3]["body"]["id"]  # newest first
    fake.webhook_mode.delay = 0.3
    fake.set_status(pid, "charged_back")
    await asyncio.sleep(0.1)
    assert len(receiver.hits) == 4
    await receiver.wait(5)
    await fake.drain()
    assert all(d.status == 200 for d in fake.sent_webhooks)


async def test_unreachable_receiver_is_logged(sdk: mercadopago.SDK, fake: FakeMercadoPago) -> None:
    fake.webhook_url = "http://127.0.0.1:9/nowhere"
    await call(sdk.payment().create, pix_body(), key("u"))
    await fake.wait_for_webhooks(1)
    delivery = fake.sent_webhooks[0]
    assert delivery.status is None and delivery.error


async def test_forged_webhooks_helpers(
    fake: FakeMercadoPago, sdk: mercadopago.SDK, receiver: Receiver
) -> None:
    pid = (await call(sdk.payment().create, pix_body(), key("b")))["response"]["id"]
    url, headers, body = fake.build_webhook(pid)
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert query == {"data.id": str(pid), "type": "payment"}
    hit = {"query": query, "headers": headers, "body": json.loads(body)}
    assert verify(SECRET, hit)
    _, forged, _ = fake.build_webhook(pid, secret="guess")
    assert not verify(SECRET, {**hit, "headers": forged})
    _, stale, _ = fake.build_webhook(pid, ts=1_600_000_000)
    assert verify(SECRET, {**hit, "headers": stale})
    assert stale["x-signature"].startswith("ts=1600000000,")
    assert (
        fake.sign(pid, "req-1", 1700000000)
        == fake.build_webhook(pid, request_id="req-1", ts=1700000000)[1]["x-signature"]
    )


def test_thread_mode_with_http_controls() -> None:
    """Sync code (or another process) drives the fake through /_fake/ routes."""
    with FakeMercadoPagoThread(access_token=TOKEN, webhook_secret=SECRET) as runner:
        sdk = mercadopago.SDK(TOKEN, http_client=LocalHttpClient(runner.base_url))
        pid = sdk.payment().create(pix_body(), key("th"))["response"]["id"]

        def control(path: str, body: dict[str, Any] | None = None) -> Any:
            request = urllib.request.Request(
                f"{runner.base_url}/_fake/{path}",
                data=json.dumps(body or {}).encode(),
                headers={"Content-Type": "application/json"},
                method="POST",
            )
            with urllib.request.urlopen(request) as response:
                return json.loads(response.read())

        assert control(f"payments/{pid}/approve")["status"] == "approved"
        assert sdk.payment().get(pid)["response"]["status"] == "approved"
        assert control(f"payments/{pid}/refund", {"amount": 5})["amount"] == 5.0
        control("fail_next", {"n": 1, "status": 500})
        assert sdk.payment().get(pid)["status"] == 500
        assert sdk.payment().get(pid)["status"] == 200
        control(f"payments/{pid}/status", {"status": "in_mediation"})
        assert runner.payment(pid)["status"] == "in_mediation"
        with urllib.request.urlopen(f"{runner.base_url}/_fake/requests") as response:
            logged = json.loads(response.read())
        assert logged[0]["idempotency_key"] == "th" and logged[0]["method"] == "POST"
        runner.webhook_url = "http://127.0.0.1:9/x"
        assert runner.fake.webhook_url == "http://127.0.0.1:9/x"
        with pytest.raises(urllib.error.HTTPError) as err:
            control(f"payments/{pid}/expire")
        assert err.value.code == 409
