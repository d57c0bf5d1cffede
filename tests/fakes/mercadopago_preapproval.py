"""Mercado Pago's subscriptions without a plan (`/preapproval`) and their recurring charges
(`/authorized_payments`), for the fake in `tests/fakes/mercadopago.py`.

Written from the public API reference: `POST /preapproval` with `reason`, `external_reference`,
`payer_email`, `back_url`, `auto_recurring {frequency, frequency_type: days|months,
transaction_amount, currency_id, start_date?, end_date?}` and `status: "pending"` answers 201 with
the resource (`id`, `status`, `init_point`, `next_payment_date`, ...); `GET|PUT /preapproval/{id}`
(`PUT {"status": "cancelled"|"paused"|"authorized"}`); `GET /authorized_payments/{id}` (one
recurring charge: `preapproval_id`, `transaction_amount`, `status`, `payment {id, status}`).
Webhooks: `type=subscription_preapproval` (data.id = the preapproval) when its status changes, and
`type=subscription_authorized_payment` (data.id = the authorized payment) for each charge,
signed like payment webhooks.

Test controls: `authorize_preapproval(id)` (the buyer entered a card at `init_point`),
`charge_preapproval(id, approved=True)` (a billing date came), `refund_authorized_payment(id)`.
"""

from __future__ import annotations

import copy
import itertools
import random
import secrets
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from aiohttp import web

PREAPPROVAL_STATUSES = ("pending", "authorized", "paused", "cancelled", "finished")


class PreapprovalMixin:
    """Mixed into FakeMercadoPago (which provides _lock, now(), payments, _json_body, ...)."""

    def _pre_state(self) -> tuple[dict[str, dict[str, Any]], dict[int, dict[str, Any]]]:
        if not hasattr(self, "preapprovals"):
            self.preapprovals: dict[str, dict[str, Any]] = {}
            self.authorized_payments: dict[int, dict[str, Any]] = {}
            self._ap_ids = itertools.count(random.randint(6_000_000_000, 6_900_000_000))
            self._pre_keys: dict[str, tuple[Any, str]] = {}
        return self.preapprovals, self.authorized_payments

    def _preapproval_routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/preapproval", self._h_pre_create)
        router.add_get("/preapproval/{preapproval_id}", self._h_pre_get)
        router.add_put("/preapproval/{preapproval_id}", self._h_pre_update)
        router.add_get("/authorized_payments/{ap_id}", self._h_ap_get)

    # -- API ---------------------------------------------------------------------------------

    async def _h_pre_create(self, request: web.Request) -> web.Response:
        from tests.fakes.mercadopago import _bad_request, _iso, _json

        body = await self._json_body(request)  # type: ignore[attr-defined]
        key = request.headers.get("X-Idempotency-Key")
        with self._lock:  # type: ignore[attr-defined]
            pres, _ = self._pre_state()
            if key and key in self._pre_keys:
                seen_body, seen_id = self._pre_keys[key]
                if seen_body == body:
                    return _json(copy.deepcopy(pres[seen_id]), 200)
            if not isinstance(body, dict):
                raise _bad_request((4001, "body must be an object"))
            email = body.get("payer_email")
            if not isinstance(email, str) or "@" not in email:
                raise _bad_request((400, "payer_email is required"))
            if not isinstance(body.get("back_url"), str) or not body["back_url"].startswith(
                ("http://", "https://")
            ):
                raise _bad_request((400, "back_url is required"))
            if body.get("status", "pending") != "pending":
                raise _bad_request((400, "status must be pending without a card_token_id"))
            recurring = body.get("auto_recurring")
            if not isinstance(recurring, dict):
                raise _bad_request((400, "auto_recurring is required"))
            frequency = recurring.get("frequency")
            if isinstance(frequency, bool) or not isinstance(frequency, int) or frequency < 1:
                raise _bad_request((400, "auto_recurring.frequency must be a positive integer"))
            if recurring.get("frequency_type") not in ("days", "months"):
                raise _bad_request((400, "auto_recurring.frequency_type must be days or months"))
            if recurring.get("currency_id") != "BRL":
                raise _bad_request((400, "auto_recurring.currency_id must be BRL"))
            try:
                amount = Decimal(str(recurring.get("transaction_amount")))
            except InvalidOperation:
                raise _bad_request((400, "transaction_amount must be a number")) from None
            if not amount > 0 or amount.as_tuple().exponent < -2:  # type: ignore[operator]
                raise _bad_request((400, "transaction_amount must be positive, 2 decimals"))
            now = self.now()  # type: ignore[attr-defined]
            start = _parse(recurring.get("start_date")) or now
            pid = secrets.token_hex(16)
            resource = {
                "id": pid,
                "payer_id": random.randint(100_000_000, 999_999_999),
                "payer_email": email,
                "back_url": body["back_url"],
                "collector_id": self.user_id,  # type: ignore[attr-defined]
                "application_id": 1234567890,
                "status": "pending",
                "reason": str(body.get("reason") or ""),
                "external_reference": str(body.get("external_reference") or ""),
                "date_created": _iso(now),
                "last_modified": _iso(now),
                "init_point": f"{self.base_url}/subscriptions/checkout?preapproval_id={pid}",  # type: ignore[attr-defined]
                "auto_recurring": {
                    "frequency": frequency,
                    "frequency_type": recurring["frequency_type"],
                    "transaction_amount": float(amount),
                    "currency_id": "BRL",
                    "start_date": _iso(start),
                    "end_date": recurring.get("end_date"),
                },
                "next_payment_date": _iso(start),
                "notification_url": body.get("notification_url"),
            }
            pres[pid] = resource
            if key:
                self._pre_keys[key] = (copy.deepcopy(body), pid)
            return _json(copy.deepcopy(resource), 201)

    def _pre(self, request: web.Request) -> dict[str, Any]:
        from tests.fakes.mercadopago import _not_found

        pres, _ = self._pre_state()
        resource = pres.get(request.match_info["preapproval_id"])
        if resource is None:
            raise _not_found()
        return resource

    async def _h_pre_get(self, request: web.Request) -> web.Response:
        from tests.fakes.mercadopago import _json

        with self._lock:  # type: ignore[attr-defined]
            return _json(copy.deepcopy(self._pre(request)), 200)

    async def _h_pre_update(self, request: web.Request) -> web.Response:
        from tests.fakes.mercadopago import _bad_request, _json

        body = await self._json_body(request)  # type: ignore[attr-defined]
        with self._lock:  # type: ignore[attr-defined]
            resource = self._pre(request)
            status = body.get("status") if isinstance(body, dict) else None
            if status not in ("cancelled", "paused", "authorized"):
                raise _bad_request((400, "status must be cancelled, paused or authorized"))
            if resource["status"] == "cancelled" and status != "cancelled":
                raise _bad_request((400, "a cancelled subscription cannot change"))
            if resource["status"] != status:
                self._pre_status(resource, status)
            return _json(copy.deepcopy(resource), 200)

    async def _h_ap_get(self, request: web.Request) -> web.Response:
        from tests.fakes.mercadopago import _json, _not_found

        with self._lock:  # type: ignore[attr-defined]
            _, aps = self._pre_state()
            raw = request.match_info["ap_id"]
            ap = aps.get(int(raw)) if raw.isdigit() else None
            if ap is None:
                raise _not_found()
            return _json(copy.deepcopy(ap), 200)

    # -- changes and their webhooks ----------------------------------------------------------

    def _pre_status(self, resource: dict[str, Any], status: str) -> None:
        from tests.fakes.mercadopago import _iso

        resource["status"] = status
        resource["last_modified"] = _iso(self.now())  # type: ignore[attr-defined]
        self._emit_topic("subscription_preapproval", resource["id"], "updated",
                         resource.get("notification_url"))

    def _emit_topic(self, topic: str, data_id: str | int, action: str, url: str | None) -> None:
        from tests.fakes.mercadopago import _Notification

        url = url or self.webhook_url  # type: ignore[attr-defined]
        if not url:
            return
        note = _Notification(0, action, url, next(self._event_ids),  # type: ignore[attr-defined]
                             self.now(), topic=topic, data_id=str(data_id))  # type: ignore[attr-defined]
        self._enqueue(note)  # type: ignore[attr-defined]

    def authorize_preapproval(self, preapproval_id: str) -> dict[str, Any]:
        """The buyer authorised the card at `init_point`."""
        with self._lock:  # type: ignore[attr-defined]
            resource = self._pre_state()[0][preapproval_id]
            self._pre_status(resource, "authorized")
            return copy.deepcopy(resource)

    def charge_preapproval(self, preapproval_id: str, *, approved: bool = True) -> dict[str, Any]:
        """A billing date: one recurring charge of the subscription's amount."""
        from tests.fakes.mercadopago import _iso

        with self._lock:  # type: ignore[attr-defined]
            pres, aps = self._pre_state()
            resource = pres[preapproval_id]
            if resource["status"] != "authorized":
                raise ValueError(f"preapproval is {resource['status']}, not authorized")
            now = self.now()  # type: ignore[attr-defined]
            payment_id = next(self._ids)  # type: ignore[attr-defined]
            ap_id = next(self._ap_ids)
            status = "approved" if approved else "rejected"
            amount = resource["auto_recurring"]["transaction_amount"]
            ap = {
                "id": ap_id,
                "type": "scheduled",
                "date_created": _iso(now),
                "last_modified": _iso(now),
                "preapproval_id": preapproval_id,
                "reason": resource["reason"],
                "external_reference": resource["external_reference"],
                "currency_id": "BRL",
                "transaction_amount": amount,
                "debit_date": _iso(now),
                "retry_attempt": 0,
                "status": "processed" if approved else "recycling",
                "payment": {
                    "id": payment_id,
                    "status": status,
                    "status_detail": "accredited" if approved else "cc_rejected_other_reason",
                },
            }
            aps[ap_id] = ap
            recurring = resource["auto_recurring"]
            step = timedelta(days=recurring["frequency"]) if recurring["frequency_type"] == "days" \
                else timedelta(days=30 * recurring["frequency"])
            resource["next_payment_date"] = _iso(now + step)
            self._emit_topic("subscription_authorized_payment", ap_id, "created",
                             resource.get("notification_url"))
            return copy.deepcopy(ap)

    def refund_authorized_payment(self, ap_id: int, *, chargeback: bool = False) -> dict[str, Any]:
        from tests.fakes.mercadopago import _iso

        with self._lock:  # type: ignore[attr-defined]
            _, aps = self._pre_state()
            ap = aps[int(ap_id)]
            ap["payment"]["status"] = "charged_back" if chargeback else "refunded"
            ap["last_modified"] = _iso(self.now())  # type: ignore[attr-defined]
            pre = self._pre_state()[0].get(ap["preapproval_id"]) or {}
            self._emit_topic("subscription_authorized_payment", ap["id"], "updated",
                             pre.get("notification_url"))
            return copy.deepcopy(ap)


def _parse(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
