"""Checkout Pro for the fake Mercado Pago: `POST /checkout/preferences`, `GET
/checkout/preferences/{id}`, and a way for tests to pay one.

Written from Mercado Pago's public reference for preferences: the create body takes `items`
(title, quantity, unit_price, currency_id, id), `payer`, `back_urls` (success/pending/failure),
`auto_return` (`approved` | `all`, which needs `back_urls.success`), `external_reference`,
`metadata`, `notification_url`, `expires` + `expiration_date_from/to`; the answer is the
preference with `id` (`<collector id>-<uuid>`), `init_point` and `sandbox_init_point`, 201.
A payment made on the checkout is an ordinary `/v1/payments` resource (a card here), carrying the
preference's `external_reference` and `metadata`, and is notified like any payment: a signed
`payment.created` webhook to the preference's `notification_url` (or the account's URL).
"""

from __future__ import annotations

import copy
import random
import uuid
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

PREFERENCE_FIELDS = frozenset({
    "additional_info", "auto_return", "back_urls", "binary_mode", "date_of_expiration",
    "differential_pricing", "expiration_date_from", "expiration_date_to", "expires",
    "external_reference", "items", "marketplace", "marketplace_fee", "metadata",
    "notification_url", "operation_type", "payer", "payment_methods", "processing_modes",
    "purpose", "shipments", "statement_descriptor", "tracks",
})
CARD_STATUS_DETAIL = {"approved": "accredited", "rejected": "cc_rejected_other_reason",
                      "in_process": "pending_contingency"}


def _valid_url(value: object) -> bool:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _shown(preference: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy({k: v for k, v in preference.items() if not k.startswith("_")})


class CheckoutPreferences:
    """Mixed into FakeMercadoPago (uses its lock, ids, clock, payments and webhooks)."""

    preferences: dict[str, dict[str, Any]]

    def _init_preferences(self) -> None:
        self.preferences = {}
        self._preference_keys: dict[str, tuple[Any, str]] = {}

    def _preference_routes(self, app: web.Application) -> None:
        r = app.router
        r.add_post("/checkout/preferences", self._h_create_preference)
        r.add_get("/checkout/preferences/{preference_id}", self._h_get_preference)
        r.add_post("/_fake/preferences/{preference_id}/pay", self._c_pay_preference)

    # -- API -----------------------------------------------------------------------------------

    async def _h_create_preference(self, request: web.Request) -> web.Response:
        from tests.fakes.mercadopago import _json

        body = await self._json_body(request)  # type: ignore[attr-defined]
        key = request.headers.get("X-Idempotency-Key")
        with self._lock:  # type: ignore[attr-defined]
            if key and key in self._preference_keys:
                seen_body, pref_id = self._preference_keys[key]
                if seen_body == body:
                    return _json(_shown(self.preferences[pref_id]), 201)
            preference = self._create_preference(body)
            if key:
                self._preference_keys[key] = (copy.deepcopy(body), preference["id"])
        return _json(preference, 201)

    async def _h_get_preference(self, request: web.Request) -> web.Response:
        from tests.fakes.mercadopago import _json, _not_found

        pref = self.preferences.get(request.match_info["preference_id"])
        if pref is None:
            raise _not_found()
        return _json(_shown(pref), 200)

    def _create_preference(self, body: Any) -> dict[str, Any]:
        from tests.fakes.mercadopago import _bad_request, _iso, _money

        if not isinstance(body, dict):
            raise _bad_request((4001, "body must be a JSON object"))
        unknown = sorted(set(body) - PREFERENCE_FIELDS)
        if unknown:
            raise _bad_request((8, f"The name of the following parameters is wrong : {unknown}"))
        items = body.get("items")
        if not isinstance(items, list) or not items:
            raise _bad_request(("invalid_items", "items needed"))
        clean_items = []
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("title"), str) \
                    or not item["title"]:
                raise _bad_request(("invalid_items", "item.title needed"))
            quantity = item.get("quantity")
            if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
                raise _bad_request(("invalid_items", "item.quantity must be a positive number"))
            try:
                price = Decimal(str(item.get("unit_price")))
            except InvalidOperation:
                raise _bad_request(("invalid_items", "unit_price must be a number")) from None
            if not price.is_finite() or price <= 0:
                raise _bad_request(("invalid_items", "unit_price invalid"))
            currency = item.get("currency_id", "BRL")
            if currency != "BRL":
                raise _bad_request(("invalid_items", "currency_id invalid"))
            clean_items.append({
                "id": str(item.get("id") or ""), "title": item["title"],
                "description": item.get("description") or "",
                "category_id": item.get("category_id") or "",
                "picture_url": item.get("picture_url") or "",
                "currency_id": currency, "quantity": quantity, "unit_price": float(price),
            })
        back_urls = body.get("back_urls") or {}
        if not isinstance(back_urls, dict) or any(
            not _valid_url(v) for v in back_urls.values() if v
        ):
            raise _bad_request(("invalid_back_urls", "back_urls invalid"))
        auto_return = body.get("auto_return", "")
        if auto_return:
            if auto_return not in ("approved", "all"):
                raise _bad_request(("invalid_auto_return", "auto_return invalid"))
            if not back_urls.get("success"):
                raise _bad_request(
                    ("invalid_auto_return", "auto_return invalid. back_url.success must be "
                     "defined"))
        notification_url = body.get("notification_url")
        if notification_url is not None and not _valid_url(notification_url):
            raise _bad_request((4020, "notification_url attribute must be url valid"))
        metadata = body.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise _bad_request(("invalid_metadata", "metadata must be an object"))
        pref_id = f"{self.user_id}-{uuid.uuid4()}"  # type: ignore[attr-defined]
        preference = {
            "id": pref_id,
            "client_id": str(random.randint(10**15, 10**16)),
            "collector_id": self.user_id,  # type: ignore[attr-defined]
            "date_created": _iso(self.now()),  # type: ignore[attr-defined]
            "operation_type": body.get("operation_type") or "regular_payment",
            "items": clean_items,
            "payer": copy.deepcopy(body.get("payer") or {}),
            "back_urls": {k: back_urls.get(k, "") for k in ("success", "pending", "failure")},
            "auto_return": auto_return,
            "external_reference": body.get("external_reference") or "",
            "metadata": copy.deepcopy(metadata),
            "notification_url": notification_url,
            "expires": bool(body.get("expires", False)),
            "expiration_date_from": body.get("expiration_date_from"),
            "expiration_date_to": body.get("expiration_date_to"),
            "marketplace": "NONE",
            "init_point": f"https://www.mercadopago.com.br/checkout/v1/redirect?pref_id={pref_id}",
            "sandbox_init_point": "https://sandbox.mercadopago.com.br/checkout/v1/redirect"
            f"?pref_id={pref_id}",
            "_total": _money(sum(Decimal(str(i["unit_price"])) * i["quantity"]
                                 for i in clean_items)),
        }
        self.preferences[pref_id] = preference
        return _shown(preference)

    # -- what a payer does on the checkout -------------------------------------------------------

    def pay_preference(
        self, preference_id: str, *, status: str = "approved", payment_method_id: str = "master"
    ) -> dict[str, Any]:
        """The payer paid the preference by card: a /v1/payments payment with its reference and
        metadata, notified (signed) like any other. Returns the payment."""
        from tests.fakes.mercadopago import ApiError, _iso, _public

        with self._lock:  # type: ignore[attr-defined]
            pref = self.preferences.get(preference_id)
            if pref is None:
                raise ApiError(404, "not_found", "preference not found")
            if pref.get("expires") and pref.get("expiration_date_to"):
                ends = datetime.fromisoformat(str(pref["expiration_date_to"]).replace("Z",
                                                                                  "+00:00"))
                if self.now() > ends:  # type: ignore[attr-defined]
                    raise ApiError(409, "conflict", "preference expired")
            now = self.now()  # type: ignore[attr-defined]
            pid = next(self._ids)  # type: ignore[attr-defined]
            amount = Decimal(str(pref["_total"]))
            fee = (amount * self.fee_rate).quantize(  # type: ignore[attr-defined]
                Decimal("0.01"), rounding=ROUND_HALF_UP)
            approved = status == "approved"
            payment: dict[str, Any] = {
                "id": pid,
                "date_created": _iso(now),
                "date_approved": _iso(now) if approved else None,
                "date_last_updated": _iso(now),
                "date_of_expiration": None,
                "money_release_date": _iso(now) if approved else None,
                "money_release_status": "released" if approved else "pending",
                "operation_type": "regular_payment",
                "issuer_id": "24",
                "payment_method_id": payment_method_id,
                "payment_type_id": "credit_card",
                "payment_method": {"id": payment_method_id, "type": "credit_card",
                                   "issuer_id": "24"},
                "status": status,
                "status_detail": CARD_STATUS_DETAIL.get(status, status),
                "currency_id": "BRL",
                "description": pref["items"][0]["title"],
                "live_mode": False,
                "collector_id": self.user_id,  # type: ignore[attr-defined]
                "payer": {"id": str(random.randint(10**9, 10**10)), "type": None,
                          "email": (pref.get("payer") or {}).get("email")},
                "metadata": copy.deepcopy(pref["metadata"]),
                "additional_info": {"items": copy.deepcopy(pref["items"])},
                "order": {"type": "mercadopago", "id": str(random.randint(10**10, 10**11))},
                "external_reference": pref["external_reference"] or None,
                "transaction_amount": float(amount),
                "transaction_amount_refunded": 0,
                "coupon_amount": 0,
                "installments": 1,
                "transaction_details": {
                    "net_received_amount": float(amount - fee) if approved else 0,
                    "total_paid_amount": float(amount), "overpaid_amount": 0,
                    "installment_amount": float(amount),
                },
                "fee_details": [{"type": "mercadopago_fee", "amount": float(fee),
                                 "fee_payer": "collector"}] if approved else [],
                "charges_details": [],
                "captured": True,
                "binary_mode": False,
                "card": {"first_six_digits": "503143", "last_four_digits": "6351"},
                "notification_url": pref.get("notification_url"),
                "refunds": [],
                "processing_mode": "aggregator",
                "point_of_interaction": {"type": "CHECKOUT", "transaction_data": {}},
                "_expires": now,
                "_preference_id": preference_id,
            }
            self.payments[pid] = payment  # type: ignore[attr-defined]
            self._emit(payment, "payment.created")  # type: ignore[attr-defined]
            return _public(payment)

    async def _c_pay_preference(self, request: web.Request) -> web.Response:
        from tests.fakes.mercadopago import _json

        body = await self._control_body(request)  # type: ignore[attr-defined]
        payment = self.pay_preference(
            request.match_info["preference_id"], status=body.get("status") or "approved",
            payment_method_id=body.get("payment_method_id") or "master",
        )
        return _json(payment, 201)
