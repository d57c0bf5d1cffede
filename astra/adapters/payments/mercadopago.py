"""Mercado Pago PIX through the official SDK (v1/payments), plus webhook verification.

The SDK's API base is a private constant, so `_RebasedHttpClient` rewrites the URL prefix: that
is how a staging or test endpoint (`MERCADOPAGO_API_BASE`) stands in for the real one.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import mercadopago
import orjson
import requests
from mercadopago.config import RequestOptions
from requests.adapters import HTTPAdapter
from urllib3.util import Retry

from astra.logs import get_logger
from astra.ports.payments import (
    RECURRING_CHARGE_TOPIC,
    RECURRING_TOPIC,
    Charge,
    ChargeChanges,
    ChargeRequest,
    ChargeStatus,
    CheckoutLink,
    CheckoutRequest,
    GatewayError,
    GatewayUnavailable,
    InvalidWebhook,
    Notification,
    Recurring,
    RecurringCharge,
    RecurringRequest,
)

log = get_logger("astra.payments.mercadopago")

DEFAULT_API_BASE = "https://api.mercadopago.com"
# Mercado Pago refuses a PIX expiring sooner than this; a shorter cart still cancels its charge.
MIN_PIX_LIFETIME = timedelta(minutes=31)
MAX_PIX_LIFETIME = timedelta(days=29)
# A signed webhook older (or newer) than this is refused: a captured one cannot be replayed later.
SIGNATURE_TOLERANCE_SECONDS = 300
TIMEOUT_SECONDS = 10.0
# Payments per search page: one request covers every change of a few seconds on a busy shop.
SEARCH_PAGE_SIZE = 100

_ALNUM = re.compile(r"^[A-Za-z0-9]+$")


class _RebasedHttpClient(mercadopago.http.HttpClient):
    """The SDK's HTTP client with another API base, retrying on both http and https, and one
    kept-alive session per thread (the SDK's default opens a new connection for every call)."""

    def __init__(self, api_base: str) -> None:
        self.api_base = api_base.rstrip("/")
        self._local = threading.local()

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            # Proxy settings from the environment, read once: requests would otherwise look
            # them up again on every call.
            session.trust_env = False
            session.proxies = requests.utils.get_environ_proxies(self.api_base)
            # Reads and cancels are safe to repeat; a create is retried by our caller with the
            # same idempotency key instead.
            retry = Retry(
                total=2,
                status_forcelist=(502, 503, 504),
                backoff_factor=0.2,
                allowed_methods=("GET", "PUT"),
            )
            adapter = HTTPAdapter(max_retries=retry)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
        return session

    def request(self, method, url, maxretries=None, retry_on=None, backoff_factor=None, **kwargs):
        if url.startswith(DEFAULT_API_BASE):
            url = self.api_base + url[len(DEFAULT_API_BASE) :]
        kwargs.setdefault("timeout", TIMEOUT_SECONDS)
        result = self._session().request(method, url, **kwargs)
        response: dict[str, Any] = {"status": result.status_code, "response": None}
        if result.status_code != 204 and result.content:
            try:
                response["response"] = result.json()
            except ValueError:
                response["response"] = {"message": "invalid JSON from the gateway"}
        return response


def _cents(amount: Any) -> int:
    return int((Decimal(str(amount)) * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _reais(cents: int) -> float:
    return float(Decimal(cents) / 100)


def _mp_datetime(when: datetime) -> str:
    # Mercado Pago wants milliseconds and an explicit offset: 2026-11-29T12:00:00.000-03:00
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+00:00")


def _search_datetime(when: datetime) -> str:
    # The search's documented date format, yyyy-MM-dd'T'HH:mm:ss.SSSZ, in UTC.
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{when.astimezone(UTC).microsecond // 1000:03d}Z"
    )


def _updated_at(payment: dict[str, Any]) -> datetime | None:
    raw = payment.get("date_last_updated")
    if not isinstance(raw, str):
        return None
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.update(params)
    return urlunsplit(parts._replace(query=urlencode(query)))


def charge_from_payment(
    payment: dict[str, Any], provider: str = "mercadopago", *, expected_id: str | None = None
) -> Charge:
    """A payment resource as a Charge. Anything that is not one (no id, an amount that is not
    a number, metadata that is not an object, the answer for another payment than the one
    asked for) is GatewayUnavailable: retried later, never taken for money received."""
    try:
        charge = _charge(payment, provider)
    except (KeyError, TypeError, ValueError, ArithmeticError, AttributeError):
        raise GatewayUnavailable("mercadopago: malformed payment in the answer") from None
    if expected_id is not None and charge.id != str(expected_id):
        raise GatewayUnavailable("mercadopago: the answer is for another payment")
    return charge


def _charge(payment: dict[str, Any], provider: str) -> Charge:
    if not isinstance(payment.get("id"), int | str) or not str(payment["id"]).isdigit():
        raise ValueError("payment id")
    metadata = payment.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise TypeError("metadata")
    poi = (payment.get("point_of_interaction") or {}).get("transaction_data") or {}
    refunded = sum(_cents(r.get("amount", 0)) for r in payment.get("refunds") or [])
    try:
        status = ChargeStatus(payment.get("status"))
    except ValueError:
        status = ChargeStatus.PENDING  # an unknown status is never taken for money received
    return Charge(
        id=str(payment["id"]),
        status=status,
        amount_cents=_cents(payment.get("transaction_amount", 0)),
        external_reference=str(payment.get("external_reference") or ""),
        metadata=dict(metadata),
        qr_code=poi.get("qr_code") or "",
        qr_code_png_base64=poi.get("qr_code_base64") or "",
        ticket_url=poi.get("ticket_url") or "",
        expires_at=payment.get("date_of_expiration"),
        approved_at=payment.get("date_approved"),
        refunded_cents=refunded,
        provider=provider,
        raw_status_detail=str(payment.get("status_detail") or ""),
    )


def verify_signature(
    *, secret: str, data_id: str, headers: Mapping[str, str], now: float | None = None
) -> None:
    """Check `x-signature` (ts + HMAC-SHA256 of the manifest) or raise InvalidWebhook(401)."""
    signature = headers.get("x-signature") or ""
    request_id = headers.get("x-request-id") or ""
    parts = {}
    for piece in signature.split(","):
        key, _, value = piece.strip().partition("=")
        parts[key.strip()] = value.strip()
    ts, v1 = parts.get("ts", ""), parts.get("v1", "")
    if not ts or not v1 or not ts.isdigit():
        raise InvalidWebhook("missing or malformed x-signature")
    if _ALNUM.fullmatch(data_id):
        data_id = data_id.lower()
    manifest = ""
    if data_id:
        manifest += f"id:{data_id};"
    if request_id:
        manifest += f"request-id:{request_id};"
    manifest += f"ts:{ts};"
    expected = hmac.new(secret.encode(), manifest.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, v1.lower()):
        raise InvalidWebhook("signature does not match")
    seconds = int(ts) / 1000 if len(ts) >= 13 else int(ts)  # current SDKs: s; older: ms
    now = time.time() if now is None else now
    if abs(now - seconds) > SIGNATURE_TOLERANCE_SECONDS:
        raise InvalidWebhook("stale signature timestamp")


def parse_notification(
    *, query: Mapping[str, str], headers: Mapping[str, str], body: bytes, secret: str
) -> Notification | None:
    """Read a webhook (or a legacy IPN) as Mercado Pago sends it. Shared with the sandbox."""
    if "topic" in query and "id" in query and "data.id" not in query:
        # Legacy IPN: unsigned by design. Without a webhook secret it is accepted, because
        # nothing is taken from it but an id whose payment is then fetched with our own
        # credentials. With one, every notification must be signed like a webhook: otherwise
        # this form would be a way around the signature (anyone could make the platform query
        # any payment id, as often as they like). Astra's own notification URLs carry
        # `source_news=webhooks`, so Mercado Pago sends no IPN for them.
        if query["topic"] not in ("payment",):
            return None  # acknowledged and ignored: it changes nothing, signed or not
        if secret:
            verify_signature(secret=secret, data_id=query["id"], headers=headers)
        charge_id = query["id"]
        if not charge_id.isdigit() and not _ALNUM.fullmatch(charge_id):
            raise InvalidWebhook("malformed payment id", status=400)
        return Notification(charge_id=charge_id, topic="payment", action="ipn")
    data_id = query.get("data.id", "")
    if secret:
        verify_signature(secret=secret, data_id=data_id, headers=headers)
    try:
        payload = orjson.loads(body) if body else {}
    except orjson.JSONDecodeError:
        raise InvalidWebhook("body is not JSON", status=400) from None
    if not isinstance(payload, dict):
        raise InvalidWebhook("body is not a JSON object", status=400)
    topic = query.get("type") or payload.get("type") or payload.get("topic") or ""
    if topic not in ("payment", RECURRING_TOPIC, RECURRING_CHARGE_TOPIC):
        return None
    data = payload.get("data") if isinstance(payload.get("data"), dict) else {}
    charge_id = data_id or str(data.get("id") or "")
    if not charge_id or not _ALNUM.fullmatch(charge_id) or len(charge_id) > 64:
        raise InvalidWebhook("missing or malformed data.id", status=400)
    if topic != "payment":
        # Subscriptions: "<topic>:<id>" travels the same queue and is read back with our own
        # credentials like a payment (PaymentService.handle_notification).
        charge_id = f"{topic}:{charge_id}"
    return Notification(
        charge_id=charge_id, topic=topic, action=str(payload.get("action") or "")
    )


class MercadoPagoGateway:
    name = "mercadopago"
    simulated = False

    def __init__(
        self,
        access_token: str,
        *,
        api_base: str = DEFAULT_API_BASE,
        webhook_secret: str = "",
        notification_url: str | None = None,
    ) -> None:
        options = RequestOptions(
            access_token=access_token, connection_timeout=TIMEOUT_SECONDS, max_retries=2
        )
        self._sdk = mercadopago.SDK(
            access_token, http_client=_RebasedHttpClient(api_base), request_options=options
        )
        self._access_token = access_token
        self.webhook_secret = webhook_secret
        # Per-payment URL when a public URL is configured; `source_news=webhooks` keeps Mercado
        # Pago from also sending the legacy IPN for the same change.
        self.notification_url = (
            with_query(notification_url, source_news="webhooks") if notification_url else None
        )

    def __repr__(self) -> str:
        return f"MercadoPagoGateway(<token>, notification_url={self.notification_url!r})"

    def _options(self, idempotency_key: str | None = None) -> RequestOptions:
        headers = {"x-idempotency-key": idempotency_key} if idempotency_key else None
        return RequestOptions(
            access_token=self._access_token,
            connection_timeout=TIMEOUT_SECONDS,
            custom_headers=headers,
            max_retries=2,
        )

    @staticmethod
    def _check(result: Any, action: str, *, missing_ok: bool = False) -> dict[str, Any] | None:
        if not isinstance(result, dict) or "status" not in result:
            raise GatewayUnavailable(f"mercadopago {action}: no answer")
        status, body = result["status"], result.get("response")
        if status == 404 and missing_ok:
            return None
        if status >= 500 or status == 429:
            raise GatewayUnavailable(f"mercadopago {action}: HTTP {status}")
        if status >= 400:
            message = body.get("message") if isinstance(body, dict) else ""
            raise GatewayError(f"mercadopago {action}: HTTP {status} {message}".strip())
        if not isinstance(body, dict):
            raise GatewayUnavailable(f"mercadopago {action}: unexpected body")
        return body

    def _call(self, action: str, fn, *args, missing_ok: bool = False, **kwargs):
        try:
            result = fn(*args, **kwargs)
        except (requests.RequestException, OSError) as exc:
            raise GatewayUnavailable(f"mercadopago {action}: {type(exc).__name__}") from None
        except mercadopago.errors.exceptions.MPServerError as exc:  # type: ignore[attr-defined]
            raise GatewayUnavailable(f"mercadopago {action}: {exc}") from None
        return self._check(result, action, missing_ok=missing_ok)

    def payment_body(self, request: ChargeRequest) -> dict[str, Any]:
        """The create body, a function of the request alone: a retry with the same idempotency
        key sends the same bytes."""
        start = request.created_at
        expires = min(max(request.expires_at, start + MIN_PIX_LIFETIME), start + MAX_PIX_LIFETIME)
        body: dict[str, Any] = {
            "transaction_amount": _reais(request.amount_cents),
            "description": request.description[:255],
            "payment_method_id": "pix",
            "payer": {"email": request.payer_email},
            "external_reference": request.external_reference,
            "metadata": dict(request.metadata),
            "date_of_expiration": _mp_datetime(expires),
        }
        if self.notification_url:
            body["notification_url"] = self.notification_url
        return body

    def create_charge(self, request: ChargeRequest) -> Charge:
        body = self.payment_body(request)
        payment = self._call(
            "create", self._sdk.payment().create, body, self._options(request.idempotency_key[:64])
        )
        assert payment is not None
        return charge_from_payment(payment)

    def preference_body(self, request: CheckoutRequest) -> dict[str, Any]:
        """A Checkout Pro preference (POST /checkout/preferences) for one item. The card
        payment it produces carries `external_reference` and `metadata`, so it settles like a
        PIX charge; `back_urls` bring the payer back to the portal."""
        back = {
            outcome: with_query(request.return_url, checkout=outcome)
            for outcome in ("success", "pending", "failure")
        }
        body: dict[str, Any] = {
            "items": [
                {
                    "id": request.item_id or request.external_reference,
                    "title": request.title[:250],
                    "quantity": 1,
                    "currency_id": "BRL",
                    "unit_price": _reais(request.amount_cents),
                }
            ],
            "payer": {"email": request.payer_email},
            "external_reference": request.external_reference,
            "metadata": dict(request.metadata),
            "back_urls": back,
            "expires": True,
            "expiration_date_from": _mp_datetime(request.created_at),
            "expiration_date_to": _mp_datetime(request.expires_at),
        }
        # Mercado Pago redirects on its own only to https back URLs.
        if request.return_url.startswith("https://"):
            body["auto_return"] = "approved"
        if self.notification_url:
            body["notification_url"] = self.notification_url
        return body

    def create_checkout(self, request: CheckoutRequest) -> CheckoutLink:
        preference = self._call(
            "preference",
            self._sdk.preference().create,
            self.preference_body(request),
            self._options(request.idempotency_key[:64]),
        )
        assert preference is not None
        pref_id, init_point = preference.get("id"), preference.get("init_point")
        if not isinstance(pref_id, str) or not isinstance(init_point, str) or not init_point:
            raise GatewayUnavailable("mercadopago preference: unexpected body")
        sandbox = preference.get("sandbox_init_point")
        return CheckoutLink(pref_id, init_point, sandbox if isinstance(sandbox, str) else "")

    def get_charge(self, charge_id: str) -> Charge | None:
        payment = self._call("get", self._sdk.payment().get, charge_id, missing_ok=True)
        return charge_from_payment(payment, expected_id=charge_id) if payment else None

    def cancel_charge(self, charge_id: str) -> Charge | None:
        current = self.get_charge(charge_id)
        if current is None or current.status is not ChargeStatus.PENDING:
            return current
        try:
            payment = self._call(
                "cancel", self._sdk.payment().update, charge_id, {"status": "cancelled"}
            )
        except GatewayError:
            # It may have expired or been paid between the read and the cancel: what it is
            # now is the answer.
            again = self.get_charge(charge_id)
            if again is not None and again.status is not ChargeStatus.PENDING:
                return again
            raise
        assert payment is not None
        return charge_from_payment(payment, expected_id=charge_id)

    def refund_charge(self, charge_id: str, amount_cents: int | None = None) -> Charge:
        body = None if amount_cents is None else {"amount": _reais(amount_cents)}
        self._call(
            "refund",
            self._sdk.refund().create,
            charge_id,
            body,
            self._options(f"refund-{charge_id}-{amount_cents or 'full'}"),
        )
        charge = self.get_charge(charge_id)
        if charge is None:
            raise GatewayError(f"mercadopago refund: payment {charge_id} vanished")
        return charge

    def changed_charges(self, since: datetime, *, max_calls: int = 10) -> ChargeChanges:
        charges: list[Charge] = []
        newest: datetime | None = None
        calls = offset = 0
        begin = _search_datetime(since)
        while calls < max_calls:
            filters = {
                "sort": "date_last_updated",
                "criteria": "asc",
                "range": "date_last_updated",
                "begin_date": begin,
                "end_date": "NOW",
                "offset": offset,
                "limit": SEARCH_PAGE_SIZE,
            }
            page = self._call("search", self._sdk.payment().search, filters)
            calls += 1
            assert page is not None
            results, paging = page.get("results"), page.get("paging")
            if not isinstance(results, list) or not isinstance(paging, dict):
                raise GatewayUnavailable("mercadopago search: unexpected body")
            for payment in results:
                if not isinstance(payment, dict):
                    continue
                try:
                    charge = charge_from_payment(payment)
                except GatewayUnavailable:
                    # Someone else's odd payment on the same account must not hide ours;
                    # if it is ours, the per-charge read finds it.
                    log.warning("mercadopago.search_skipped_payment", id=payment.get("id"))
                    continue
                charges.append(charge)
                updated = _updated_at(payment)
                if updated is not None and (newest is None or updated > newest):
                    newest = updated
            offset += len(results)
            total = paging.get("total")
            if not results or len(results) < SEARCH_PAGE_SIZE or (
                isinstance(total, int) and offset >= total
            ):
                break
        return ChargeChanges(charges=charges, newest=newest, calls=calls)

    def parse_webhook(
        self, *, query: Mapping[str, str], headers: Mapping[str, str], body: bytes
    ) -> Notification | None:
        return parse_notification(
            query=query, headers=headers, body=body, secret=self.webhook_secret
        )

    # -- recurring card charges (preapproval; subscriptions, issue 18) -----------------------

    def recurring_body(self, request: RecurringRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "reason": request.reason[:250],
            "external_reference": request.external_reference,
            "payer_email": request.payer_email,
            "back_url": request.back_url,
            "auto_recurring": {
                "frequency": request.frequency_days,
                "frequency_type": "days",
                "transaction_amount": _reais(request.amount_cents),
                "currency_id": "BRL",
                "start_date": _mp_datetime(request.start_at),
            },
            "status": "pending",
        }
        if self.notification_url:
            body["notification_url"] = self.notification_url
        return body

    def create_recurring(self, request: RecurringRequest) -> Recurring:
        body = self._call("preapproval create", self._sdk.preapproval().create,
                          self.recurring_body(request), self._options(request.idempotency_key))
        return _recurring(body)

    def get_recurring(self, recurring_id: str) -> Recurring | None:
        if not _ALNUM.fullmatch(recurring_id or ""):
            return None
        body = self._call("preapproval get", self._sdk.preapproval().get, recurring_id,
                          missing_ok=True)
        if body is None:
            return None
        recurring = _recurring(body)
        if recurring.id != recurring_id:
            raise GatewayUnavailable("mercadopago: the answer is for another preapproval")
        return recurring

    def cancel_recurring(self, recurring_id: str) -> Recurring:
        body = self._call("preapproval cancel", self._sdk.preapproval().update, recurring_id,
                          {"status": "cancelled"})
        return _recurring(body)

    def get_recurring_charge(self, charge_id: str) -> RecurringCharge | None:
        if not str(charge_id).isdigit():
            return None
        # The SDK has no resource for authorized payments: its base client does the call.
        resource = self._sdk.preapproval()
        body = self._call("authorized payment get", resource._get,
                          uri=f"/authorized_payments/{charge_id}", missing_ok=True)
        if body is None:
            return None
        try:
            payment = body.get("payment") or {}
            charge = RecurringCharge(
                id=str(body["id"]),
                recurring_id=str(body["preapproval_id"]),
                payment_id=str(payment.get("id") or ""),
                payment_status=str(payment.get("status") or body.get("status") or ""),
                amount_cents=_cents(body.get("transaction_amount", 0)),
            )
        except (KeyError, TypeError, ValueError, ArithmeticError, AttributeError):
            raise GatewayUnavailable("mercadopago: malformed authorized payment") from None
        if charge.id != str(charge_id):
            raise GatewayUnavailable("mercadopago: the answer is for another charge")
        return charge


def _recurring(body: dict[str, Any] | None) -> Recurring:
    try:
        assert body is not None
        auto = body.get("auto_recurring") or {}
        frequency = int(auto.get("frequency") or 0)
        days = frequency if auto.get("frequency_type") == "days" else frequency * 30
        return Recurring(
            id=str(body["id"]),
            status=str(body.get("status") or ""),
            external_reference=str(body.get("external_reference") or ""),
            amount_cents=_cents(auto.get("transaction_amount", 0)),
            frequency_days=days,
            init_point=str(body.get("init_point") or ""),
        )
    except (AssertionError, KeyError, TypeError, ValueError, ArithmeticError):
        raise GatewayUnavailable("mercadopago: malformed preapproval") from None
