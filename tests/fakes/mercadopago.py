"""A local stand-in for Mercado Pago's Payments API (PIX) and its signed webhooks.

Written from Mercado Pago's public API reference so that the official `mercadopago` SDK, pointed
at `base_url` instead of https://api.mercadopago.com, works against it unchanged: the routes are
Mercado Pago's own paths (`/v1/payments`, `/v1/payments/search`, `/v1/payments/{id}`,
`/v1/payments/{id}/refunds`), errors come in Mercado Pago's shape
(`{"message", "error", "status", "cause": [{"code", "description", "data"}]}`), and webhooks are
POSTed as `<url>?data.id=<id>&type=payment` with `x-signature: ts=...,v1=...` and `x-request-id`.

Tests drive the money side (a buyer paying, a bank refusing, a chargeback, the clock running
out) with Python methods or, from another process, with the `/_fake/...` control routes.
The fake serves one seller: one access token, one webhook secret, one user id.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import hashlib
import hmac
import itertools
import json
import random
import re
import struct
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Coroutine
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from aiohttp import ClientSession, ClientTimeout, web

from tests.fakes.mercadopago_preferences import CheckoutPreferences

__all__ = [
    "STATUSES",
    "FakeMercadoPago",
    "FakeMercadoPagoThread",
    "RecordedRequest",
    "WebhookDelivery",
    "WebhookMode",
    "build_br_code",
    "crc16_ccitt",
    "parse_br_code",
    "sign",
]

STATUSES = (
    "pending",
    "approved",
    "authorized",
    "in_process",
    "in_mediation",
    "rejected",
    "cancelled",
    "refunded",
    "charged_back",
)
# status_detail a status gets when a test sets it without naming one.
DEFAULT_STATUS_DETAIL = {
    "pending": "pending_waiting_transfer",
    "approved": "accredited",
    "authorized": "pending_capture",
    "in_process": "pending_review_manual",
    "in_mediation": "in_process",
    "rejected": "rejected_by_bank",
    "cancelled": "by_collector",
    "refunded": "refunded",
    "charged_back": "settled",
}
# Mercado Pago answers with the API's local time (Argentina, -04:00 in its examples).
MP_TZ = timezone(timedelta(hours=-4))
from tests.fakes.mercadopago_preapproval import PreapprovalMixin  # noqa: E402

API_PREFIX = "/v1/"
MIN_EXPIRATION = timedelta(minutes=30)
MAX_EXPIRATION = timedelta(days=30)
DEFAULT_EXPIRATION = timedelta(hours=24)
# Top-level fields /v1/payments accepts; anything else is refused like Mercado Pago does
# ("The name of the following parameters is wrong", cause code 8).
CREATE_FIELDS = frozenset(
    {
        "additional_info",
        "application_fee",
        "binary_mode",
        "callback_url",
        "campaign_id",
        "capture",
        "counter_currency",
        "coupon_amount",
        "coupon_code",
        "date_of_expiration",
        "description",
        "differential_pricing_id",
        "external_reference",
        "forward_data",
        "installments",
        "issuer_id",
        "merchant_account_id",
        "metadata",
        "net_amount",
        "notification_url",
        "payer",
        "payment_method",
        "payment_method_id",
        "point_of_interaction",
        "processing_mode",
        "sponsor_id",
        "statement_descriptor",
        "taxes",
        "three_d_secure_mode",
        "token",
        "transaction_amount",
        "transaction_details",
    }
)
SORT_FIELDS = frozenset(
    {"date_created", "date_approved", "date_last_updated", "money_release_date", "id"}
)
# The search's `range` (which date begin_date/end_date apply to; date_created by default).
RANGE_FIELDS = frozenset(
    {"date_created", "date_last_updated", "date_approved", "money_release_date"}
)
# begin_date / end_date: "NOW", "NOW-30DAYS", "NOW-1MONTH"... or an ISO 8601 date or datetime.
_RELATIVE_DATE = re.compile(r"^NOW(?:-(\d+)(MINUTES?|HOURS?|DAYS?|MONTHS?))?$")
_RELATIVE_UNITS = {"MINUTE": 60, "HOUR": 3600, "DAY": 86400, "MONTH": 30 * 86400}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_CENT = Decimal("0.01")


def _now_utc() -> datetime:
    return datetime.now(UTC)


def _iso(when: datetime | None) -> str | None:
    if when is None:
        return None
    return when.astimezone(MP_TZ).isoformat(timespec="milliseconds")


def _money(value: Decimal) -> float:
    return float(value.quantize(_CENT, rounding=ROUND_HALF_UP))


def _cause(code: int | str, description: str) -> dict[str, Any]:
    # Mercado Pago fills `data` with "<timestamp>;<request id>"; clients must not rely on it.
    stamp = _now_utc().strftime("%d-%m-%YT%H:%M:%SUTC")
    return {"code": code, "description": description, "data": f"{stamp};{uuid.uuid4()}"}


def error_body(
    status: int, error: str, message: str, causes: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {"message": message, "error": error, "status": status, "cause": causes or []}


class ApiError(Exception):
    """Raised inside a handler (or a control method) to answer in Mercado Pago's error shape."""

    def __init__(
        self, status: int, error: str, message: str, causes: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = error_body(status, error, message, causes)


def _bad_request(*causes: tuple[int | str, str]) -> ApiError:
    listed = [_cause(code, description) for code, description in causes]
    return ApiError(400, "bad_request", listed[0]["description"], listed)


def _not_found() -> ApiError:
    return ApiError(404, "not_found", "Payment not found", [_cause(2000, "Payment not found")])


# --- BR Code (PIX "copia e cola") -----------------------------------------------------------


def crc16_ccitt(payload: str) -> str:
    """CRC16-CCITT (poly 0x1021, init 0xFFFF) as the BR Code's field 63 wants it: 4 hex digits."""
    crc = 0xFFFF
    for byte in payload.encode("utf-8"):
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return f"{crc:04X}"


def _emv(tag: str, value: str) -> str:
    return f"{tag}{len(value):02d}{value}"


def build_br_code(*, key: str, amount: Decimal, merchant: str, city: str, txid: str) -> str:
    account = _emv("00", "br.gov.bcb.pix") + _emv("01", key)
    payload = (
        _emv("00", "01")
        + _emv("26", account)
        + _emv("52", "0000")
        + _emv("53", "986")
        + _emv("54", f"{amount.quantize(_CENT)}")
        + _emv("58", "BR")
        + _emv("59", merchant[:25])
        + _emv("60", city[:15])
        + _emv("62", _emv("05", txid[:25]))
        + "6304"
    )
    return payload + crc16_ccitt(payload)


def parse_br_code(code: str) -> dict[str, Any]:
    """Split a BR Code into its top-level EMV fields (26 and 62 split one level further);
    raises ValueError when the layout or the CRC is wrong."""
    fields: dict[str, Any] = {}
    pos = 0
    while pos < len(code):
        tag, length = code[pos : pos + 2], int(code[pos + 2 : pos + 4])
        value = code[pos + 4 : pos + 4 + length]
        if len(value) != length:
            raise ValueError(f"field {tag} is truncated")
        fields[tag] = value
        pos += 4 + length
    if "63" not in fields or crc16_ccitt(code[:-4]) != fields["63"]:
        raise ValueError("bad CRC")
    for tag in ("26", "62"):
        if tag in fields:
            fields[tag] = parse_br_code_template(fields[tag])
    return fields


def parse_br_code_template(value: str) -> dict[str, str]:
    out, pos = {}, 0
    while pos < len(value):
        tag, length = value[pos : pos + 2], int(value[pos + 2 : pos + 4])
        out[tag] = value[pos + 4 : pos + 4 + length]
        pos += 4 + length
    return out


# --- QR image -------------------------------------------------------------------------------


def _qr_matrix(data: str) -> list[list[bool]]:
    try:
        import qrcode  # the project's own dependency when installed

        # A fixed mask: choosing the "best" of eight costs the fake ~12 ms a charge, which capped
        # a whole benchmark at ~30 charges a second; any mask gives a valid, scannable code.
        qr = qrcode.QRCode(border=0, error_correction=qrcode.constants.ERROR_CORRECT_M,
                           mask_pattern=0)
        qr.add_data(data)
        qr.make(fit=True)
        return [list(row) for row in qr.get_matrix()]
    except ImportError:
        pass
    # Without `qrcode`: a deterministic module pattern carrying the payload's bits between three
    # finder squares. A valid PNG that looks like a QR code; not scannable.
    bits = [
        b
        for byte in hashlib.sha256(data.encode()).digest() * 8 + data.encode()
        for b in ((byte >> i) & 1 for i in range(8))
    ]
    size = max(29, int(len(bits) ** 0.5) + 1)
    grid = [[bool(bits[(r * size + c) % len(bits)]) for c in range(size)] for r in range(size)]
    for top, left in ((0, 0), (0, size - 7), (size - 7, 0)):
        for r in range(7):
            for c in range(7):
                ring = max(abs(r - 3), abs(c - 3))
                grid[top + r][left + c] = ring != 2
    return grid


def qr_png(data: str, *, scale: int = 4, border: int = 4) -> bytes:
    """A grayscale PNG (zlib + struct only) of `data`'s QR code."""
    matrix = _qr_matrix(data)
    n = len(matrix) + 2 * border
    dark, light = b"\x00" * scale, b"\xff" * scale
    margin = light * border
    blank = b"\x00" + light * n
    rows = [blank] * (border * scale)
    for cells in matrix:
        line = b"\x00" + margin + b"".join(dark if cell else light for cell in cells) + margin
        rows.extend([line] * scale)
    rows.extend([blank] * (border * scale))
    width = n * scale

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, width, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"".join(rows), 6))
        + chunk(b"IEND", b"")
    )


# --- webhooks -------------------------------------------------------------------------------


def sign(secret: str, data_id: str | int | None, request_id: str | None, ts: int | str) -> str:
    """The `x-signature` header value Mercado Pago sends: `ts=<ts>,v1=<hex HMAC-SHA256>` of
    the manifest `id:<data.id>;request-id:<x-request-id>;ts:<ts>;` (absent parts left out,
    an alphanumeric id lower-cased)."""
    manifest = ""
    if data_id not in (None, ""):
        text = str(data_id)
        manifest += f"id:{text.lower() if text.isalnum() else text};"
    if request_id:
        manifest += f"request-id:{request_id};"
    manifest += f"ts:{ts};"
    digest = hmac.new(secret.encode(), manifest.encode(), hashlib.sha256).hexdigest()
    return f"ts={ts},v1={digest}"


def _with_query(url: str, params: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    query.extend(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


@dataclass
class WebhookMode:
    """How the next notifications are delivered. Read when a notification is emitted."""

    drop: int = 0  # drop this many upcoming notifications (never sent)
    duplicate: int = 1  # send each notification this many times
    delay: float = 0.0  # seconds to wait before sending each one
    reorder: bool = False  # hold notifications; flush() sends them newest first


@dataclass
class WebhookDelivery:
    url: str
    status: int | None  # the receiver's HTTP status, None when it could not be reached
    error: str | None
    payment_id: int
    action: str
    event_id: int
    request_id: str
    headers: dict[str, str]
    body: dict[str, Any]
    sent_at: float


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    idempotency_key: str | None
    body: Any  # parsed JSON, the raw text when not JSON, None when empty
    status: int = 0  # what the fake answered


@dataclass
class _Notification:
    payment_id: int
    action: str
    url: str
    event_id: int
    created: datetime
    copies: int = 1
    delay: float = 0.0
    # Subscriptions (mercadopago_preapproval.py): another topic, and its resource id.
    topic: str = "payment"
    data_id: str | None = None


@dataclass
class _Idempotent:
    body: Any
    result_id: int
    extra: dict[str, Any] = field(default_factory=dict)


class FakeMercadoPago(PreapprovalMixin, CheckoutPreferences):
    """Mercado Pago's Payments API, subscriptions (PreapprovalMixin) and Checkout Pro's
    preferences (CheckoutPreferences) for one seller, on 127.0.0.1."""

    def __init__(
        self,
        access_token: str = "TEST-1234567890123456-010100-"
        "0123456789abcdef0123456789abcdef-123456789",
        webhook_secret: str = "fake-webhook-secret",
        webhook_url: str | None = None,
        *,
        user_id: int | None = None,
        fee_rate: str = "0.0099",
        expiry_interval: float = 0.2,
        webhook_timeout: float = 5.0,
    ) -> None:
        self.access_token = access_token
        self.webhook_secret = webhook_secret
        self.webhook_url = webhook_url
        tail = access_token.rsplit("-", 1)[-1]
        self.user_id = (
            user_id if user_id is not None else (int(tail) if tail.isdigit() else 123456789)
        )
        self.fee_rate = Decimal(fee_rate)
        self.expiry_interval = expiry_interval
        self.webhook_timeout = webhook_timeout
        self.webhook_mode = WebhookMode()
        self.idempotent_replay_status = 200
        self.payments: dict[int, dict[str, Any]] = {}
        # Payments the search does not return yet (Mercado Pago's search index lags behind
        # its payments): what a client's per-payment read must still catch.
        self.unindexed: set[int] = set()
        self.requests: list[RecordedRequest] = []
        self.sent_webhooks: list[WebhookDelivery] = []
        self.dropped_webhooks: list[dict[str, Any]] = []
        self.held_webhooks: list[dict[str, Any]] = []
        self.base_url = ""
        self._lock = threading.RLock()
        self._ids = itertools.count(random.randint(1_300_000_000, 1_900_000_000))
        self._refund_ids = itertools.count(random.randint(1_400_000_000, 1_900_000_000))
        self._event_ids = itertools.count(random.randint(110_000_000_000, 119_000_000_000))
        self._payment_keys: dict[str, _Idempotent] = {}
        self._refund_keys: dict[tuple[int, str], _Idempotent] = {}
        self._fail: list[tuple[int, bool]] = []
        self._garbage: list[tuple[int, bytes, str]] = []
        self._clock_offset = 0.0
        self._held: list[_Notification] = []
        self._unsent: list[_Notification] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[_Notification] | None = None
        self._runner: web.AppRunner | None = None
        self._session: ClientSession | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._init_preferences()

    # --- life cycle --------------------------------------------------------------------------

    async def start(self, port: int = 0, host: str = "127.0.0.1") -> str:
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        self._session = ClientSession(timeout=ClientTimeout(total=self.webhook_timeout))
        app = web.Application(middlewares=[self._api_middleware], client_max_size=1024**2)
        self._routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        sockets = site._server.sockets  # type: ignore[union-attr]
        self.base_url = f"http://{host}:{sockets[0].getsockname()[1]}"
        self._tasks = [
            asyncio.create_task(self._deliver_forever()),
            asyncio.create_task(self._expire_forever()),
        ]
        with self._lock:
            unsent, self._unsent = self._unsent, []
        for note in unsent:
            self._queue.put_nowait(note)
        return self.base_url

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self._loop = None
        self._queue = None

    async def __aenter__(self) -> FakeMercadoPago:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def run_in_thread(self, port: int = 0) -> FakeMercadoPagoThread:
        """Serve from a thread of its own (for sync tests and other processes); started."""
        runner = FakeMercadoPagoThread(fake=self)
        runner.start(port)
        return runner

    # --- clock -------------------------------------------------------------------------------

    def now(self) -> datetime:
        """The fake's clock: real time plus whatever advance() added."""
        return _now_utc() + timedelta(seconds=self._clock_offset)

    def advance(self, seconds: float) -> None:
        """Move the fake's clock forward (payments expire on it); webhook `ts` stays real."""
        with self._lock:
            self._clock_offset += seconds
        self.expire_due()

    # --- test controls -----------------------------------------------------------------------

    def fail_next(self, n: int = 1, status: int = 500, *, after_processing: bool = False) -> None:
        """The next `n` API calls (not control calls) answer `status` in Mercado Pago's shape.

        With `after_processing` each call is carried out first and only its answer is replaced:
        the charge exists but the client never heard of it (what idempotency keys are for).
        `fail_next(0)` cancels the failures still queued.
        """
        with self._lock:
            if n <= 0:
                self._fail.clear()
            self._fail.extend([(status, after_processing)] * n)

    def garble_next(self, *bodies: bytes, status: int = 200,
                    content_type: str = "application/json") -> None:
        """The next API calls (one per body) answer these raw bytes instead, the call not
        carried out: what a broken proxy, a CDN error page or a half-sent answer looks like."""
        with self._lock:
            self._garbage.extend((status, body, content_type) for body in bodies)

    def payment(self, payment_id: int | str) -> dict[str, Any]:
        """A copy of the payment as GET /v1/payments/{id} would return it."""
        with self._lock:
            return _public(self._get(payment_id))

    def approve(self, payment_id: int | str) -> dict[str, Any]:
        """The buyer paid the PIX."""
        with self._lock:
            payment = self._get(payment_id)
            if payment["status"] not in ("pending", "in_process", "authorized"):
                raise ApiError(
                    409, "conflict", f"cannot approve a payment in status {payment['status']}"
                )
            self._set_status(payment, "approved", "accredited")
            return _public(payment)

    def reject(
        self, payment_id: int | str, status_detail: str = "rejected_by_bank"
    ) -> dict[str, Any]:
        with self._lock:
            payment = self._get(payment_id)
            if payment["status"] not in ("pending", "in_process", "authorized"):
                raise ApiError(
                    409, "conflict", f"cannot reject a payment in status {payment['status']}"
                )
            self._set_status(payment, "rejected", status_detail)
            return _public(payment)

    def refund(
        self, payment_id: int | str, amount: float | str | Decimal | None = None
    ) -> dict[str, Any]:
        """A refund made outside the API (the seller's dashboard); returns the refund."""
        with self._lock:
            payment = self._get(payment_id)
            return self._refund(payment, None if amount is None else Decimal(str(amount)))

    def chargeback(self, payment_id: int | str) -> dict[str, Any]:
        with self._lock:
            payment = self._get(payment_id)
            if payment["status"] not in ("approved", "in_mediation"):
                raise ApiError(
                    409, "conflict", f"cannot charge back a payment in status {payment['status']}"
                )
            self._set_status(payment, "charged_back", "settled")
            return _public(payment)

    def expire(self, payment_id: int | str) -> dict[str, Any]:
        """The PIX's date_of_expiration passed without payment."""
        with self._lock:
            payment = self._get(payment_id)
            if payment["status"] != "pending":
                raise ApiError(
                    409, "conflict", f"cannot expire a payment in status {payment['status']}"
                )
            self._set_status(payment, "cancelled", "expired")
            return _public(payment)

    def set_status(
        self, payment_id: int | str, status: str, status_detail: str | None = None
    ) -> dict[str, Any]:
        """Any of the nine statuses, no questions asked."""
        if status not in STATUSES:
            raise ApiError(400, "bad_request", f"unknown status {status!r}")
        with self._lock:
            payment = self._get(payment_id)
            self._set_status(payment, status, status_detail or DEFAULT_STATUS_DETAIL[status])
            return _public(payment)

    def expire_due(self) -> list[int]:
        """Expire every pending payment whose date_of_expiration has passed."""
        now = self.now()
        expired = []
        with self._lock:
            for payment in self.payments.values():
                if payment["status"] == "pending" and payment["_expires"] <= now:
                    self._set_status(payment, "cancelled", "expired")
                    expired.append(payment["id"])
        return expired

    def flush(self) -> int:
        """Send the notifications held by `webhook_mode.reorder`, newest first."""
        with self._lock:
            held, self._held = self._held, []
            self.held_webhooks.clear()
        for note in reversed(held):
            self._enqueue(note)
        return len(held)

    async def drain(self, timeout: float = 5.0) -> None:
        """Wait until every queued notification has been sent (or has failed)."""
        if self._queue is not None:
            await asyncio.wait_for(self._queue.join(), timeout)

    async def wait_for_webhooks(self, count: int, timeout: float = 5.0) -> list[WebhookDelivery]:
        """Wait until `sent_webhooks` holds at least `count` deliveries."""
        deadline = time.monotonic() + timeout
        while len(self.sent_webhooks) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self.sent_webhooks)} of {count} webhooks sent")
            await asyncio.sleep(0.01)
        return list(self.sent_webhooks)

    def sign(
        self, data_id: str | int | None, request_id: str | None, ts: int | str | None = None
    ) -> str:
        """`x-signature` value for these parts, with this fake's webhook secret."""
        return sign(
            self.webhook_secret, data_id, request_id, int(time.time()) if ts is None else ts
        )

    def build_webhook(
        self,
        payment_id: int | str,
        *,
        action: str = "payment.updated",
        url: str | None = None,
        secret: str | None = None,
        request_id: str | None = None,
        ts: int | str | None = None,
        event_id: int | None = None,
        data_id: str | None = None,
    ) -> tuple[str, dict[str, str], bytes]:
        """(url, headers, body) of a notification as the fake would send it; every part can be
        overridden to forge one (wrong secret, stale ts, another data.id...)."""
        pid = int(payment_id)
        with self._lock:
            target = (
                url or (self.payments.get(pid) or {}).get("notification_url") or self.webhook_url
            )
        if not target:
            raise ValueError("no URL: pass url= or set webhook_url")
        note = _Notification(
            pid,
            action,
            target,
            event_id if event_id is not None else next(self._event_ids),
            self.now(),
        )
        return self._render(note, secret=secret, request_id=request_id, ts=ts, data_id=data_id)

    # --- state changes (callers hold the lock) -----------------------------------------------

    def _get(self, payment_id: int | str) -> dict[str, Any]:
        try:
            payment = self.payments[int(payment_id)]
        except (KeyError, ValueError, TypeError):
            raise _not_found() from None
        if payment["status"] == "pending" and payment["_expires"] <= self.now():
            self._set_status(payment, "cancelled", "expired")
        return payment

    def _set_status(self, payment: dict[str, Any], status: str, detail: str) -> None:
        now = self.now()
        payment["status"], payment["status_detail"] = status, detail
        payment["date_last_updated"] = _iso(now)
        if status == "approved" and payment["date_approved"] is None:
            amount = Decimal(str(payment["transaction_amount"]))
            fee = (amount * self.fee_rate).quantize(_CENT, rounding=ROUND_HALF_UP)
            payment["date_approved"] = _iso(now)
            payment["money_release_date"] = _iso(now)
            payment["money_release_status"] = "released"
            payment["fee_details"] = [
                {"type": "mercadopago_fee", "amount": _money(fee), "fee_payer": "collector"}
            ]
            payment["transaction_details"].update(
                total_paid_amount=_money(amount),
                net_received_amount=_money(amount - fee),
                bank_transfer_id=random.randint(10**9, 10**10),
                transaction_id=f"PIXE{uuid.uuid4().hex[:28].upper()}",
            )
            payment["point_of_interaction"]["transaction_data"]["e2e_id"] = (
                f"E{random.randint(10**7, 10**8 - 1)}{now:%Y%m%d%H%M}{uuid.uuid4().hex[:11]}"
            )
        self._emit(payment, "payment.updated")

    def _refund(
        self, payment: dict[str, Any], amount: Decimal | None, source_type: str = "collector"
    ) -> dict[str, Any]:
        if payment["status"] != "approved":
            raise _bad_request(
                (
                    2063,
                    "The action requested is not valid for the current "
                    f"payment state: {payment['status']}",
                )
            )
        total = Decimal(str(payment["transaction_amount"]))
        refunded = Decimal(str(payment["transaction_amount_refunded"]))
        remaining = total - refunded
        if amount is None:
            amount = remaining
        if amount <= 0 or amount.as_tuple().exponent < -2:  # type: ignore[operator]
            raise _bad_request(
                (4040, "amount attribute must be positive with up to 2 decimal places")
            )
        if amount > remaining:
            raise _bad_request(
                (4045, f"Invalid refund amount: {amount} is more than the refundable {remaining}")
            )
        refund = {
            "id": next(self._refund_ids),
            "payment_id": payment["id"],
            "amount": _money(amount),
            "metadata": {},
            "source": {"id": str(self.user_id), "name": "Fake Seller", "type": source_type},
            "date_created": _iso(self.now()),
            "unique_sequence_number": None,
            "refund_mode": "standard",
            "adjustment_amount": 0,
            "status": "approved",
            "reason": None,
            "labels": [],
            "amount_refunded_to_payer": _money(amount),
            "partition_details": [],
        }
        payment["refunds"].append(refund)
        refunded += amount
        payment["transaction_amount_refunded"] = _money(refunded)
        if refunded >= total:
            self._set_status(payment, "refunded", "refunded")
        else:
            self._set_status(payment, "approved", "partially_refunded")
        return copy.deepcopy(refund)

    def _emit(self, payment: dict[str, Any], action: str) -> None:
        url = payment.get("notification_url") or self.webhook_url
        if not url:
            return
        mode = self.webhook_mode
        note = _Notification(
            payment["id"],
            action,
            url,
            next(self._event_ids),
            self.now(),
            copies=max(1, int(mode.duplicate)),
            delay=float(mode.delay),
        )
        summary = {
            "payment_id": note.payment_id,
            "action": action,
            "url": url,
            "event_id": note.event_id,
            "status": payment["status"],
        }
        if mode.drop > 0:
            mode.drop -= 1
            self.dropped_webhooks.append(summary)
            return
        if mode.reorder:
            self._held.append(note)
            self.held_webhooks.append(summary)
            return
        self._enqueue(note)

    def _enqueue(self, note: _Notification) -> None:
        loop, queue = self._loop, self._queue
        if loop is None or queue is None:
            with self._lock:
                self._unsent.append(note)
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            queue.put_nowait(note)
        else:
            loop.call_soon_threadsafe(queue.put_nowait, note)

    # --- webhook delivery --------------------------------------------------------------------

    def _render(
        self,
        note: _Notification,
        *,
        secret: str | None = None,
        request_id: str | None = None,
        ts: int | str | None = None,
        data_id: str | None = None,
    ) -> tuple[str, dict[str, str], bytes]:
        if data_id is None:
            data_id = note.data_id if note.data_id is not None else str(note.payment_id)
        request_id = request_id or str(uuid.uuid4())
        ts = int(time.time()) if ts is None else ts
        url = _with_query(note.url, {"data.id": data_id, "type": note.topic})
        headers = {
            "Content-Type": "application/json",
            "x-signature": sign(
                self.webhook_secret if secret is None else secret, data_id, request_id, ts
            ),
            "x-request-id": request_id,
            "User-Agent": f"MercadoPago WebHook v1.0 {note.topic}",
        }
        body = {
            "id": note.event_id,
            "live_mode": False,
            "type": note.topic,
            "date_created": _iso(note.created),
            "user_id": self.user_id,
            "api_version": "v1",
            "action": note.action,
            "data": {"id": data_id},
        }
        return url, headers, json.dumps(body).encode()

    async def _deliver_forever(self) -> None:
        assert self._queue is not None
        while True:
            note = await self._queue.get()
            try:
                if note.delay:
                    await asyncio.sleep(note.delay)
                for _ in range(note.copies):
                    await self._send(note)
            except asyncio.CancelledError:
                raise
            except Exception:  # a broken delivery must not stop the ones after it
                pass
            finally:
                self._queue.task_done()

    async def _send(self, note: _Notification) -> None:
        assert self._session is not None
        url, headers, body = self._render(note)
        status: int | None = None
        error: str | None = None
        try:
            async with self._session.post(url, data=body, headers=headers) as response:
                status = response.status
                await response.read()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
        self.sent_webhooks.append(
            WebhookDelivery(
                url=url,
                status=status,
                error=error,
                payment_id=note.payment_id,
                action=note.action,
                event_id=note.event_id,
                request_id=headers["x-request-id"],
                headers=headers,
                body=json.loads(body),
                sent_at=time.time(),
            )
        )

    async def _expire_forever(self) -> None:
        while True:
            await asyncio.sleep(self.expiry_interval)
            self.expire_due()

    # --- HTTP --------------------------------------------------------------------------------

    def _routes(self, app: web.Application) -> None:
        r = app.router
        r.add_post("/v1/payments", self._h_create)
        r.add_get("/v1/payments/search", self._h_search)
        r.add_get("/v1/payments/{payment_id}", self._h_get)
        r.add_put("/v1/payments/{payment_id}", self._h_update)
        r.add_post("/v1/payments/{payment_id}/refunds", self._h_refund)
        r.add_get("/v1/payments/{payment_id}/refunds", self._h_refunds)
        r.add_get("/v1/payments/{payment_id}/refunds/{refund_id}", self._h_refund_get)
        r.add_get("/payments/{payment_id}/ticket", self._h_ticket)
        self._preapproval_routes(r)
        r.add_get("/_fake/health", self._c_health)
        r.add_get("/_fake/payments", self._c_payments)
        r.add_get("/_fake/payments/{payment_id}", self._c_payment)
        r.add_post("/_fake/payments/{payment_id}/{action}", self._c_action)
        r.add_post("/_fake/fail_next", self._c_fail_next)
        r.add_post("/_fake/webhook_mode", self._c_webhook_mode)
        r.add_post("/_fake/webhook_url", self._c_webhook_url)
        r.add_post("/_fake/flush", self._c_flush)
        r.add_post("/_fake/advance", self._c_advance)
        r.add_get("/_fake/requests", self._c_requests)
        r.add_get("/_fake/webhooks", self._c_webhooks)
        self._preference_routes(app)

    @web.middleware
    async def _api_middleware(
        self, request: web.Request, handler: Callable[[web.Request], Coroutine[Any, Any, Any]]
    ) -> web.StreamResponse:
        if not request.path.startswith(
            (API_PREFIX, "/preapproval", "/authorized_payments", "/checkout/")
        ):
            try:
                return await handler(request)
            except ApiError as exc:
                return _json(exc.body, exc.status)
        raw = await request.read()
        text = raw.decode("utf-8", "replace")
        try:
            body: Any = json.loads(text) if text.strip() else None
        except ValueError:
            body = text
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers=dict(request.headers),
            idempotency_key=request.headers.get("X-Idempotency-Key"),
            body=body,
        )
        with self._lock:
            self.requests.append(record)
            garbage = self._garbage.pop(0) if self._garbage else None
            forced = self._fail.pop(0) if self._fail and garbage is None else None
        if garbage is not None:
            status, raw_body, content_type = garbage
            response = web.Response(status=status, body=raw_body,
                                    headers={"Content-Type": content_type})
        elif forced is not None and not forced[1]:
            response = _failure(forced[0])
        elif not self._authorized(request):
            if request.headers.get("Authorization"):
                causes = [_cause(2, "invalid access token")]
                response = _json(
                    error_body(401, "unauthorized", "invalid access token", causes), 401
                )
            else:
                causes = [_cause(5, "Must provide your access_token to proceed")]
                response = _json(
                    error_body(
                        401, "unauthorized", "Must provide your access_token to proceed", causes
                    ),
                    401,
                )
        else:
            try:
                response = await handler(request)
            except ApiError as exc:
                response = _json(exc.body, exc.status)
            except web.HTTPException as exc:
                response = _json(
                    error_body(
                        exc.status, _reason(exc.status), f"Resource {request.path} not found"
                    ),
                    exc.status,
                )
            if forced is not None:
                response = _failure(forced[0])
        record.status = response.status
        response.headers["x-request-id"] = str(uuid.uuid4())
        return response

    def _authorized(self, request: web.Request) -> bool:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(token.strip(), self.access_token)

    async def _json_body(self, request: web.Request, *, allow_empty: bool = False) -> Any:
        raw = await request.read()
        if not raw.strip():
            if allow_empty:
                return {}
            raise _bad_request((4001, "body is required"))
        try:
            return json.loads(raw)
        except ValueError:
            raise ApiError(
                400,
                "bad_request",
                "JSON parse error",
                [_cause("json_syntax_error", "invalid JSON body")],
            ) from None

    async def _control_body(self, request: web.Request) -> dict[str, Any]:
        body = await self._json_body(request, allow_empty=True)
        if not isinstance(body, dict):
            raise ApiError(400, "bad_request", "control body must be a JSON object")
        return body

    async def _h_create(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        key = request.headers.get("X-Idempotency-Key")
        with self._lock:
            if key:
                seen = self._payment_keys.get(key)
                if seen is not None:
                    if seen.body != body:
                        raise ApiError(
                            409,
                            "conflict",
                            "idempotency key already used with another request",
                            [
                                _cause(
                                    "idempotency_key_already_used",
                                    "the X-Idempotency-Key was used with a different request body",
                                )
                            ],
                        )
                    payment = self._get(seen.result_id)
                    return _json(_public(payment), self.idempotent_replay_status)
            payment = self._create(body)
            if key:
                self._payment_keys[key] = _Idempotent(copy.deepcopy(body), payment["id"])
            return _json(_public(payment), 201)

    def _create(self, body: Any) -> dict[str, Any]:
        amount, expires, notification_url = self._validate_create(body)
        now = self.now()
        pid = next(self._ids)
        payer = dict(body["payer"])
        payer.setdefault("identification", {"type": None, "number": None})
        payer = {
            "id": str(random.randint(10**9, 10**10)),
            "type": None,
            "entity_type": None,
            "first_name": None,
            "last_name": None,
            "phone": {"area_code": None, "number": None, "extension": None},
            **payer,
        }
        txid = f"MP{pid}"
        qr_code = build_br_code(
            key=str(uuid.UUID(int=self.user_id)),
            amount=amount,
            merchant="FAKE SELLER",
            city="SAO PAULO",
            txid=txid,
        )
        payment: dict[str, Any] = {
            "id": pid,
            "date_created": _iso(now),
            "date_approved": None,
            "date_last_updated": _iso(now),
            "date_of_expiration": _iso(expires),
            "money_release_date": None,
            "money_release_status": "pending",
            "operation_type": "regular_payment",
            "issuer_id": "12501",
            "payment_method_id": "pix",
            "payment_type_id": "bank_transfer",
            "payment_method": {"id": "pix", "type": "bank_transfer", "issuer_id": "12501"},
            "status": "pending",
            "status_detail": "pending_waiting_transfer",
            "currency_id": "BRL",
            "description": body.get("description"),
            "live_mode": False,
            "sponsor_id": None,
            "authorization_code": None,
            "collector_id": self.user_id,
            "payer": payer,
            "metadata": copy.deepcopy(body.get("metadata") or {}),
            "additional_info": copy.deepcopy(body.get("additional_info") or {}),
            "order": {},
            "external_reference": body.get("external_reference"),
            "transaction_amount": _money(amount),
            "transaction_amount_refunded": 0,
            "coupon_amount": 0,
            "installments": 1,
            "transaction_details": {
                "payment_method_reference_id": None,
                "acquirer_reference": None,
                "net_received_amount": 0,
                "total_paid_amount": _money(amount),
                "overpaid_amount": 0,
                "external_resource_url": None,
                "installment_amount": 0,
                "financial_institution": None,
                "payable_deferral_period": None,
                "bank_transfer_id": None,
                "transaction_id": None,
            },
            "fee_details": [],
            "charges_details": [],
            "captured": True,
            "binary_mode": bool(body.get("binary_mode", False)),
            "statement_descriptor": body.get("statement_descriptor"),
            "notification_url": notification_url,
            "refunds": [],
            "processing_mode": "aggregator",
            "point_of_interaction": {
                "type": "PIX",
                "sub_type": None,
                "application_data": {"name": None, "version": None},
                "transaction_data": {
                    "qr_code": qr_code,
                    "qr_code_base64": base64.b64encode(qr_png(qr_code)).decode("ascii"),
                    "ticket_url": f"{self.base_url}/payments/{pid}/ticket",
                    "transaction_id": None,
                    "bank_transfer_id": None,
                    "financial_institution": None,
                    "bank_info": {
                        "payer": {"id": None, "account_id": None, "long_name": None},
                        "collector": {
                            "account_holder_name": "Fake Seller",
                            "long_name": "MERCADO PAGO",
                        },
                        "is_same_bank_account_owner": None,
                    },
                    "e2e_id": None,
                },
            },
            "_expires": expires,
        }
        self.payments[pid] = payment
        self._emit(payment, "payment.created")
        return payment

    def _validate_create(self, body: Any) -> tuple[Decimal, datetime, str | None]:
        if not isinstance(body, dict):
            raise _bad_request((4001, "body must be a JSON object"))
        unknown = sorted(set(body) - CREATE_FIELDS)
        if unknown:
            raise _bad_request(
                (8, f"The name of the following parameters is wrong : [{', '.join(unknown)}]")
            )
        causes: list[tuple[int | str, str]] = []
        amount = Decimal(0)
        raw_amount = body.get("transaction_amount")
        if raw_amount is None:
            causes.append((4019, "transaction_amount attribute can't be null"))
        elif isinstance(raw_amount, bool) or not isinstance(raw_amount, int | float):
            causes.append((4037, "Invalid transaction_amount: must be a number"))
        else:
            try:
                amount = Decimal(str(raw_amount))
            except InvalidOperation:
                amount = Decimal(0)
            if not amount.is_finite() or amount <= 0:
                causes.append((4037, "Invalid transaction_amount: must be positive"))
            elif amount.as_tuple().exponent < -2:  # type: ignore[operator]
                causes.append((4037, "Invalid transaction_amount: at most 2 decimal places"))
        method = body.get("payment_method_id")
        if method is None:
            causes.append((4033, "payment_method_id attribute can't be null"))
        elif method != "pix":
            causes.append(
                (4033, f"Invalid payment_method_id: this fake only knows pix, not {method!r}")
            )
        payer = body.get("payer")
        email = payer.get("email") if isinstance(payer, dict) else None
        if not isinstance(payer, dict):
            causes.append((4011, "payer attribute can't be null"))
        elif email is None:
            causes.append((4050, "payer.email attribute can't be null"))
        elif not isinstance(email, str) or not _EMAIL.fullmatch(email):
            causes.append((4050, "payer.email must be a valid email"))
        for name, limit in (
            ("description", 600),
            ("external_reference", 256),
            ("statement_descriptor", 22),
        ):
            value = body.get(name)
            if value is not None and (not isinstance(value, str) or len(value) > limit):
                causes.append((4022, f"{name} must be a string of at most {limit} characters"))
        if (
            "metadata" in body
            and body["metadata"] is not None
            and not isinstance(body["metadata"], dict)
        ):
            causes.append((4022, "metadata must be a JSON object"))
        notification_url = body.get("notification_url")
        if notification_url is not None:
            parts = urlsplit(notification_url) if isinstance(notification_url, str) else None
            if (
                parts is None
                or parts.scheme not in ("http", "https")
                or not parts.hostname
                or len(notification_url) > 500
            ):
                causes.append((4020, "notification_url attribute must be url valid"))
        now = self.now()
        expires = now + DEFAULT_EXPIRATION
        raw_exp = body.get("date_of_expiration")
        if raw_exp is not None:
            parsed = None
            if isinstance(raw_exp, str):
                with contextlib.suppress(ValueError):
                    parsed = datetime.fromisoformat(raw_exp)
            if parsed is None or parsed.tzinfo is None:
                causes.append(
                    (
                        4292,
                        "The following parameters must be valid date and format "
                        "(yyyy-MM-dd'T'HH:mm:ssz) date_of_expiration",
                    )
                )
            elif not (
                now + MIN_EXPIRATION - timedelta(seconds=5) <= parsed <= now + MAX_EXPIRATION
            ):
                causes.append(
                    (4293, "date_of_expiration must be between 30 minutes and 30 days from now")
                )
            else:
                expires = parsed
        if causes:
            raise _bad_request(*causes)
        return amount, expires, notification_url

    async def _h_get(self, request: web.Request) -> web.Response:
        with self._lock:
            return _json(_public(self._get(_path_id(request))), 200)

    async def _h_update(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        with self._lock:
            payment = self._get(_path_id(request))
            if not isinstance(body, dict) or body.get("status") is None:
                raise _bad_request((4017, "Status attribute can't be null"))
            if body["status"] != "cancelled":
                raise _bad_request((2016, "Invalid status for update: only cancelled is accepted"))
            if payment["status"] not in ("pending", "in_process", "authorized"):
                raise _bad_request(
                    (
                        2018,
                        "The action requested is not valid for the current "
                        f"payment state: {payment['status']}",
                    )
                )
            self._set_status(payment, "cancelled", "by_collector")
            return _json(_public(payment), 200)

    async def _h_refund(self, request: web.Request) -> web.Response:
        body = await self._json_body(request, allow_empty=True)
        key = request.headers.get("X-Idempotency-Key")
        with self._lock:
            payment = self._get(_path_id(request))
            if key:
                seen = self._refund_keys.get((payment["id"], key))
                if seen is not None:
                    if seen.body != body:
                        raise ApiError(
                            409, "conflict", "idempotency key already used with another request"
                        )
                    refund = next(r for r in payment["refunds"] if r["id"] == seen.result_id)
                    return _json(copy.deepcopy(refund), self.idempotent_replay_status)
            if not isinstance(body, dict) or set(body) - {"amount", "metadata", "reason"}:
                raise _bad_request((8, "The name of the following parameters is wrong"))
            raw = body.get("amount")
            amount = None
            if raw is not None:
                if isinstance(raw, bool) or not isinstance(raw, int | float):
                    raise _bad_request((4040, "amount attribute must be numeric"))
                amount = Decimal(str(raw))
            refund = self._refund(payment, amount)
            if key:
                self._refund_keys[(payment["id"], key)] = _Idempotent(
                    copy.deepcopy(body), refund["id"]
                )
            return _json(refund, 201)

    async def _h_refunds(self, request: web.Request) -> web.Response:
        with self._lock:
            return _json(copy.deepcopy(self._get(_path_id(request))["refunds"]), 200)

    async def _h_refund_get(self, request: web.Request) -> web.Response:
        with self._lock:
            payment = self._get(_path_id(request))
            for refund in payment["refunds"]:
                if str(refund["id"]) == request.match_info["refund_id"]:
                    return _json(copy.deepcopy(refund), 200)
        raise ApiError(404, "not_found", "Refund not found", [_cause(2000, "Refund not found")])

    def _search_date(self, raw: str) -> datetime:
        """A begin_date/end_date as Mercado Pago reads it: relative to now, or absolute."""
        relative = _RELATIVE_DATE.fullmatch(raw)
        if relative:
            amount, unit = relative.groups()
            seconds = int(amount) * _RELATIVE_UNITS[unit.rstrip("S")] if amount else 0
            return self.now() - timedelta(seconds=seconds)
        try:
            parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            raise _bad_request((1001, "Date format must be yyyy-MM-dd'T'HH:mm:ss.SSSZ.")) from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=MP_TZ)

    async def _h_search(self, request: web.Request) -> web.Response:
        query = request.query
        try:
            limit = int(query.get("limit", 30))
            offset = int(query.get("offset", 0))
        except ValueError:
            raise _bad_request((1, "Params Error.")) from None
        if limit < 0 or offset < 0:
            raise _bad_request((1, "Params Error."))
        if limit > 1000:
            raise _bad_request((1000, "Number of rows exceeded the limits."))
        sort = query.get("sort", "date_created")
        criteria = query.get("criteria", "desc")
        if sort not in SORT_FIELDS:
            raise _bad_request((1003, "Invalid sort value."))
        if criteria not in ("asc", "desc"):
            raise _bad_request((1004, "Invalid criteria value."))
        date_range = query.get("range", "date_created")
        if date_range not in RANGE_FIELDS:
            raise _bad_request((1, "Params Error."))
        begin = self._search_date(query.get("begin_date", "NOW-3MONTHS"))
        end = self._search_date(query.get("end_date", "NOW"))
        filters = {
            k: v
            for k, v in query.items()
            if k
            in (
                "external_reference",
                "status",
                "id",
                "payment_method_id",
                "payment_type_id",
                "status_detail",
            )
        }
        with self._lock:
            for pid in list(self.payments):
                self._get(pid)  # lazy expiry
            found = [
                p
                for p in self.payments.values()
                if all(str(p.get(k)) == v for k, v in filters.items())
                and p["id"] not in self.unindexed
                and p.get(date_range) is not None
                and begin <= datetime.fromisoformat(p[date_range]) <= end
            ]

            def order_key(p: dict[str, Any]) -> tuple[Any, ...]:
                value = p.get(sort)
                if sort != "id" and value is not None:
                    value = datetime.fromisoformat(value)
                return (value is None, value or 0, p["id"])

            found.sort(key=order_key, reverse=criteria == "desc")
            page = [_public(p) for p in found[offset : offset + limit]]
        return _json(
            {"paging": {"total": len(found), "limit": limit, "offset": offset}, "results": page},
            200,
        )

    async def _h_ticket(self, request: web.Request) -> web.Response:
        with self._lock:
            payment = self._get(_path_id(request))
            data = payment["point_of_interaction"]["transaction_data"]
            html = (
                f"<!doctype html><title>PIX {payment['id']}</title>"
                f"<h1>R$ {payment['transaction_amount']:.2f}</h1>"
                f"<p>status: {payment['status']}</p>"
                f"<img alt='QR' src='data:image/png;base64,{data['qr_code_base64']}'>"
                f"<pre>{data['qr_code']}</pre>"
            )
        return web.Response(text=html, content_type="text/html")

    # --- control routes (no auth, not logged, never failed) -----------------------------------

    async def _c_health(self, request: web.Request) -> web.Response:
        return _json({"ok": True, "base_url": self.base_url}, 200)

    async def _c_payments(self, request: web.Request) -> web.Response:
        with self._lock:
            return _json([_public(p) for p in self.payments.values()], 200)

    async def _c_payment(self, request: web.Request) -> web.Response:
        return _json(self.payment(_path_id(request)), 200)

    async def _c_action(self, request: web.Request) -> web.Response:
        pid = _path_id(request)
        action = request.match_info["action"]
        body = await self._control_body(request)
        if action == "approve":
            return _json(self.approve(pid), 200)
        if action == "reject":
            return _json(self.reject(pid, body.get("status_detail") or "rejected_by_bank"), 200)
        if action == "refund":
            return _json(self.refund(pid, body.get("amount")), 201)
        if action == "chargeback":
            return _json(self.chargeback(pid), 200)
        if action == "expire":
            return _json(self.expire(pid), 200)
        if action == "status":
            return _json(
                self.set_status(pid, body.get("status", ""), body.get("status_detail")), 200
            )
        raise ApiError(404, "not_found", f"unknown control action {action!r}")

    async def _c_fail_next(self, request: web.Request) -> web.Response:
        body = await self._control_body(request)
        self.fail_next(
            int(body.get("n", 1)),
            int(body.get("status", 500)),
            after_processing=bool(body.get("after_processing", False)),
        )
        return _json({"ok": True}, 200)

    async def _c_webhook_mode(self, request: web.Request) -> web.Response:
        body = await self._control_body(request)
        with self._lock:
            for name in ("drop", "duplicate", "delay", "reorder"):
                if name in body:
                    kind = type(getattr(self.webhook_mode, name))
                    setattr(self.webhook_mode, name, kind(body[name]))
            return _json(asdict(self.webhook_mode), 200)

    async def _c_webhook_url(self, request: web.Request) -> web.Response:
        body = await self._control_body(request)
        self.webhook_url = body.get("url")
        return _json({"webhook_url": self.webhook_url}, 200)

    async def _c_flush(self, request: web.Request) -> web.Response:
        return _json({"flushed": self.flush()}, 200)

    async def _c_advance(self, request: web.Request) -> web.Response:
        body = await self._control_body(request)
        self.advance(float(body.get("seconds", 0)))
        return _json({"now": _iso(self.now())}, 200)

    async def _c_requests(self, request: web.Request) -> web.Response:
        with self._lock:
            return _json([asdict(r) for r in self.requests], 200)

    async def _c_webhooks(self, request: web.Request) -> web.Response:
        return _json(
            {
                "sent": [asdict(d) for d in self.sent_webhooks],
                "dropped": list(self.dropped_webhooks),
                "held": list(self.held_webhooks),
            },
            200,
        )


def _public(payment: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy({k: v for k, v in payment.items() if not k.startswith("_")})


def _path_id(request: web.Request) -> int:
    raw = request.match_info["payment_id"]
    if not raw.isdigit():
        raise _not_found()
    return int(raw)


def _json(body: Any, status: int) -> web.Response:
    return web.Response(text=json.dumps(body), status=status, content_type="application/json")


def _failure(status: int) -> web.Response:
    return _json(
        error_body(status, _reason(status), _reason(status), [_cause(status, "fake failure")]),
        status,
    )


def _reason(status: int) -> str:
    return {
        400: "bad_request",
        401: "unauthorized",
        403: "forbidden",
        404: "not_found",
        405: "method_not_allowed",
        409: "conflict",
        429: "too_many_requests",
        500: "internal_error",
        502: "bad_gateway",
        503: "service_unavailable",
        504: "gateway_timeout",
    }.get(status, "error")


class FakeMercadoPagoThread:
    """Runs a FakeMercadoPago in its own event loop thread, for sync code and other processes.

    Attribute reads and writes fall through to the fake (`runner.approve(id)`,
    `runner.payments`, `runner.webhook_url = ...`).
    """

    def __init__(self, fake: FakeMercadoPago | None = None, **kwargs: Any) -> None:
        self.fake = fake if fake is not None else FakeMercadoPago(**kwargs)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    _OWN = frozenset({"fake", "_loop", "_thread"})

    def __getattr__(self, name: str) -> Any:
        if name in FakeMercadoPagoThread._OWN:  # not set yet: no recursion through self.fake
            raise AttributeError(name)
        return getattr(self.fake, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in FakeMercadoPagoThread._OWN:
            object.__setattr__(self, name, value)
        else:  # `runner.webhook_url = ...` must reach the fake, not the wrapper
            setattr(self.fake, name, value)

    def start(self, port: int = 0) -> str:
        ready = threading.Event()
        loop = asyncio.new_event_loop()
        self._loop = loop

        def serve() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=serve, name="fake-mercadopago", daemon=True)
        self._thread.start()
        ready.wait()
        return self.call(self.fake.start(port))

    def call(self, coro: Coroutine[Any, Any, Any], timeout: float = 30.0) -> Any:
        """Run a coroutine on the fake's loop and wait for its result."""
        assert self._loop is not None, "not started"
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def drain(self, timeout: float = 5.0) -> None:
        self.call(self.fake.drain(timeout), timeout + 1)

    def wait_for_webhooks(self, count: int, timeout: float = 5.0) -> list[WebhookDelivery]:
        return self.call(self.fake.wait_for_webhooks(count, timeout), timeout + 1)

    def stop(self) -> None:
        if self._loop is None:
            return
        self.call(self.fake.stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        assert self._thread is not None
        self._thread.join(10)
        self._loop = None
        self._thread = None

    def __enter__(self) -> FakeMercadoPagoThread:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
