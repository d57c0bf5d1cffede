"""The embedded payment gateway: PIX charges that a person approves by hand.

The default when no MERCADOPAGO_ACCESS_TOKEN is set, so `astra serve` sells end to end on any
machine. Charges live in the store (portal domain), carry a real BR Code and QR image, expire
like Mercado Pago's, and are settled with `astra payments approve|reject|refund|chargeback` or the
sandbox buttons of the panels. Nothing here moves money.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from astra.adapters.payments.brcode import build_brcode, qr_png_base64
from astra.adapters.payments.mercadopago import parse_notification
from astra.ports.clock import Clock
from astra.ports.payments import (
    Charge,
    ChargeChanges,
    ChargeRequest,
    ChargeStatus,
    CheckoutLink,
    CheckoutRequest,
    GatewayError,
    Notification,
)
from astra.ports.store import Store

SANDBOX_PIX_KEY = "sandbox@astra.invalid"
MIN_LIFETIME = timedelta(minutes=31)


class SandboxGateway:
    name = "sandbox"
    simulated = True

    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        webhook_secret: str = "",
        merchant: str = "Astra Sandbox",
    ) -> None:
        self.store = store
        self.clock = clock
        self.webhook_secret = webhook_secret
        self.merchant = merchant

    def _charge(self, doc: dict[str, Any]) -> Charge:
        return Charge(
            id=doc["id"],
            status=ChargeStatus(doc["status"]),
            amount_cents=doc["amount_cents"],
            external_reference=doc["external_reference"],
            metadata=dict(doc["metadata"]),
            qr_code=doc["qr_code"],
            qr_code_png_base64=doc["qr_png"],
            ticket_url="",
            expires_at=doc["expires_at"],
            approved_at=doc.get("approved_at"),
            refunded_cents=doc.get("refunded_cents", 0),
            provider=self.name,
            raw_status_detail=doc.get("status_detail", ""),
        )

    def _expire_if_due(self, doc: dict[str, Any]) -> bool:
        expires = datetime.fromisoformat(doc["expires_at"])
        now = self.clock.now()
        if doc["status"] == ChargeStatus.PENDING.value and now >= expires:
            doc.update(
                status=ChargeStatus.CANCELLED.value, status_detail="expired",
                updated_at=now.isoformat(),
            )
            return True
        return False

    def create_charge(self, request: ChargeRequest) -> Charge:
        with self.store.portal() as uow:
            existing = uow.sandbox_charges.first(idempotency_key=request.idempotency_key)
            if existing is not None:
                return self._charge(existing)
            charge_id = str(10**11 + secrets.randbelow(9 * 10**11))
            code = build_brcode(
                pix_key=SANDBOX_PIX_KEY,
                amount_cents=request.amount_cents,
                merchant=self.merchant,
                city="Sao Paulo",
                txid=charge_id,
            )
            expires = max(request.expires_at, request.created_at + MIN_LIFETIME)
            doc = {
                "id": charge_id,
                "idempotency_key": request.idempotency_key,
                "status": ChargeStatus.PENDING.value,
                "status_detail": "pending_waiting_transfer",
                "amount_cents": request.amount_cents,
                "description": request.description,
                "external_reference": request.external_reference,
                "metadata": dict(request.metadata),
                "payer_email": request.payer_email,
                "qr_code": code,
                "qr_png": qr_png_base64(code),
                "created_at": self.clock.now().isoformat(),
                "updated_at": self.clock.now().isoformat(),
                "expires_at": expires.astimezone(UTC).isoformat(),
                "approved_at": None,
                "refunded_cents": 0,
            }
            uow.sandbox_charges.add(doc)
            uow.commit()
        return self._charge(doc)

    def get_charge(self, charge_id: str) -> Charge | None:
        with self.store.portal() as uow:
            doc = uow.sandbox_charges.get(charge_id)
            if doc is None:
                return None
            if self._expire_if_due(doc):
                uow.sandbox_charges.put(doc)
                uow.commit()
        return self._charge(doc)

    def _transition(
        self,
        charge_id: str,
        allowed: tuple[ChargeStatus, ...],
        target: ChargeStatus,
        **changes: Any,
    ) -> Charge:
        with self.store.portal() as uow:
            doc = uow.sandbox_charges.get(charge_id)
            if doc is None:
                raise GatewayError(f"sandbox charge {charge_id} does not exist")
            self._expire_if_due(doc)
            current = ChargeStatus(doc["status"])
            if current is target and current not in allowed:
                return self._charge(doc)  # asked twice: already done
            if current not in allowed:
                raise GatewayError(f"sandbox charge {charge_id} is {doc['status']}")
            doc.update(status=target.value, updated_at=self.clock.now().isoformat(), **changes)
            uow.sandbox_charges.put(doc)
            uow.commit()
        return self._charge(doc)

    def cancel_charge(self, charge_id: str) -> Charge | None:
        current = self.get_charge(charge_id)
        if current is None or current.status is not ChargeStatus.PENDING:
            return current
        return self._transition(
            charge_id, (ChargeStatus.PENDING,), ChargeStatus.CANCELLED, status_detail="by_collector"
        )

    def refund_charge(self, charge_id: str, amount_cents: int | None = None) -> Charge:
        current = self.get_charge(charge_id)
        if current is None:
            raise GatewayError(f"sandbox charge {charge_id} does not exist")
        amount = current.amount_cents if amount_cents is None else amount_cents
        refunded = current.refunded_cents + amount
        if amount <= 0 or refunded > current.amount_cents:
            raise GatewayError("refund amount exceeds what was paid")
        if refunded < current.amount_cents:
            return self._transition(
                charge_id,
                (ChargeStatus.APPROVED,),
                ChargeStatus.APPROVED,
                refunded_cents=refunded,
                status_detail="partially_refunded",
            )
        return self._transition(
            charge_id,
            (ChargeStatus.APPROVED,),
            ChargeStatus.REFUNDED,
            refunded_cents=refunded,
            status_detail="refunded",
        )

    def changed_charges(self, since: datetime, *, max_calls: int = 10) -> ChargeChanges:
        """Like Mercado Pago's search ranged by date_last_updated: one read of the sandbox's
        charges, whatever their number (charges written before `updated_at` existed count as
        changed when created or approved)."""
        with self.store.portal(write=False) as uow:
            docs = uow.sandbox_charges.all()
        due = [doc["id"] for doc in docs if self._expire_if_due(dict(doc))]
        if due:  # expire them for real, as a read would
            with self.store.portal() as uow:
                for charge_id in due:
                    doc = uow.sandbox_charges.require(charge_id)
                    if self._expire_if_due(doc):
                        uow.sandbox_charges.put(doc)
                docs = uow.sandbox_charges.all()
                uow.commit()
        found: list[tuple[datetime, dict[str, Any]]] = []
        for doc in docs:
            stamp = doc.get("updated_at") or doc.get("approved_at") or doc["created_at"]
            updated = datetime.fromisoformat(stamp)
            if updated >= since:
                found.append((updated, doc))
        found.sort(key=lambda item: (item[0], item[1]["id"]))
        return ChargeChanges(
            charges=[self._charge(doc) for _, doc in found],
            newest=found[-1][0] if found else None,
            calls=1,
        )

    # -- hosted card checkout (Checkout Pro's stand-in) ----------------------------------------

    def create_checkout(self, request: CheckoutRequest) -> CheckoutLink:
        """A sandbox "preference": the portal's /sandbox/checkout/<id> page plays Mercado
        Pago's checkout, where a person presses pay (a simulated card, approved at once)."""
        with self.store.portal() as uow:
            existing = uow.sandbox_preferences.first(idempotency_key=request.idempotency_key)
            if existing is None:
                existing = {
                    "id": f"sbx-pref-{secrets.token_hex(8)}",
                    "idempotency_key": request.idempotency_key,
                    "amount_cents": request.amount_cents,
                    "title": request.title,
                    "payer_email": request.payer_email,
                    "external_reference": request.external_reference,
                    "metadata": dict(request.metadata),
                    "return_url": request.return_url,
                    "created_at": self.clock.now().isoformat(),
                    "expires_at": request.expires_at.astimezone(UTC).isoformat(),
                    "payment_id": None,
                }
                uow.sandbox_preferences.add(existing)
                uow.commit()
        url = f"/sandbox/checkout/{existing['id']}"
        return CheckoutLink(existing["id"], url, url)

    def preference(self, preference_id: str) -> dict[str, Any] | None:
        with self.store.portal(write=False) as uow:
            return uow.sandbox_preferences.get(preference_id)

    def pay_preference(self, preference_id: str) -> Charge:
        """The payer paid on the checkout page: an approved card payment with the preference's
        reference and metadata (one per preference; paying again returns the same one)."""
        now = self.clock.now()
        with self.store.portal() as uow:
            pref = uow.sandbox_preferences.get(preference_id)
            if pref is None:
                raise GatewayError(f"sandbox preference {preference_id} does not exist")
            if pref.get("payment_id"):
                doc = uow.sandbox_charges.require(pref["payment_id"])
                return self._charge(doc)
            if now >= datetime.fromisoformat(pref["expires_at"]):
                raise GatewayError(f"sandbox preference {preference_id} expired")
            charge_id = str(10**11 + secrets.randbelow(9 * 10**11))
            doc = {
                "id": charge_id,
                "idempotency_key": f"pref:{preference_id}",
                "status": ChargeStatus.APPROVED.value,
                "status_detail": "accredited",
                "payment_method_id": "master",
                "amount_cents": pref["amount_cents"],
                "description": pref["title"],
                "external_reference": pref["external_reference"],
                "metadata": dict(pref["metadata"]),
                "payer_email": pref["payer_email"],
                "qr_code": "",
                "qr_png": "",
                "created_at": now.isoformat(),
                "updated_at": now.isoformat(),
                "expires_at": pref["expires_at"],
                "approved_at": now.isoformat(),
                "refunded_cents": 0,
            }
            uow.sandbox_charges.add(doc)
            pref["payment_id"] = charge_id
            uow.sandbox_preferences.put(pref)
            uow.commit()
        return self._charge(doc)

    # -- what a person does in the sandbox ---------------------------------------------------

    def approve(self, charge_id: str) -> Charge:
        return self._transition(
            charge_id,
            (ChargeStatus.PENDING,),
            ChargeStatus.APPROVED,
            status_detail="accredited",
            approved_at=self.clock.now().isoformat(),
        )

    def reject(self, charge_id: str) -> Charge:
        return self._transition(
            charge_id,
            (ChargeStatus.PENDING,),
            ChargeStatus.REJECTED,
            status_detail="cc_rejected_other_reason",
        )

    def chargeback(self, charge_id: str) -> Charge:
        return self._transition(
            charge_id, (ChargeStatus.APPROVED,), ChargeStatus.CHARGED_BACK, status_detail="settled"
        )

    def parse_webhook(
        self, *, query: Mapping[str, str], headers: Mapping[str, str], body: bytes
    ) -> Notification | None:
        return parse_notification(
            query=query, headers=headers, body=body, secret=self.webhook_secret
        )
