"""Automatic renewal of a subscription by card: a Mercado Pago preapproval for the variant's
price and period, where the seller enables it (`subscription_card_renewal`).

The buyer authorises the card at the gateway's page; from then on each recurring charge the
gateway makes adds one period. What a webhook says is never taken as it is: the preapproval or
the charge is read again with the platform's own credentials, and matched to the subscription by
the id the platform stored (the external reference only says where to look). A charge adds its
period once (keyed by the payment id); a refunded or charged-back charge takes its days back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from astra.domain.charges import Outcome
from astra.domain.errors import InvalidInput, InvalidTransition, NotFoundError
from astra.domain.services.instances import SETTINGS_ID, settings_of
from astra.domain.timestamps import iso
from astra.ports.clock import Clock
from astra.ports.payments import RECURRING_CHARGE_TOPIC, RECURRING_TOPIC, GatewayError
from astra.ports.store import INSTANCE_ID_PATTERN, InvalidDomain, Store


@dataclass(frozen=True)
class CardRenewalConfig:
    payer_email_domain: str = "astra-buyers.com.br"
    back_url: str = ""  # where the gateway sends the buyer after authorising


class CardRenewalService:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        gateway: Any,
        subscriptions: Any,
        config: CardRenewalConfig,
    ) -> None:
        self.store = store
        self.clock = clock
        self.gateway = gateway
        self.subscriptions = subscriptions
        self.config = config

    def available(self) -> bool:
        return hasattr(self.gateway, "create_recurring") and not getattr(
            self.gateway, "simulated", False
        )

    def start(self, instance_id: str, buyer_id: str, sub_id: str) -> dict[str, Any]:
        """The buyer asks for automatic renewal: a preapproval starting at the current end.
        Returns {"url"} where the buyer authorises the card (the same one while pending)."""
        from astra.ports.payments import RecurringRequest

        with self.store.instance(instance_id, write=False) as uow:
            settings = settings_of(uow.settings.get(SETTINGS_ID))
        if not settings.get("subscription_card_renewal") or not self.available():
            raise InvalidInput("card_renewal_unavailable")
        sub = self.subscriptions.get(instance_id, sub_id, buyer_id=buyer_id)
        now = self.clock.now()
        if not sub.live(now):
            raise InvalidTransition("invalid_transition", what="a assinatura",
                                    state=sub.status.value)
        if sub.card and sub.card.get("status") == "pending" and sub.card.get("init_point"):
            return {"url": sub.card["init_point"]}
        if sub.card and sub.card.get("status") == "authorized":
            raise InvalidTransition("invalid_transition", what="a renovação automática",
                                    state="authorized")
        attempt = len([p for p in sub.periods if p["kind"] == "card"]) + len(
            (sub.card or {}).get("history") or [])
        request = RecurringRequest(
            reason=f"{settings.get('name') or instance_id} - {sub.product_name} "
                   f"({sub.variant_name})",
            payer_email=f"discord-{buyer_id}@{self.config.payer_email_domain}",
            amount_cents=sub.price_cents,
            frequency_days=sub.period_days,
            start_at=sub.end(),
            external_reference=f"sub:{instance_id}:{sub.id}",
            back_url=self.config.back_url or "https://www.mercadopago.com.br",
            idempotency_key=f"preapproval-{instance_id}-{sub.id}-{attempt}"[:64],
        )
        try:
            recurring = self.gateway.create_recurring(request)
        except GatewayError:
            from astra.domain.errors import PaymentUnavailable

            raise PaymentUnavailable() from None
        history = list((sub.card or {}).get("history") or [])
        if sub.card and sub.card.get("preapproval_id"):
            history.append(sub.card["preapproval_id"])
        self.subscriptions.set_card(instance_id, sub.id, {
            "preapproval_id": recurring.id,
            "status": recurring.status or "pending",
            "init_point": recurring.init_point,
            "created_at": iso(now),
            "history": history[-10:],
        }, actor=f"buyer:{buyer_id}")
        return {"url": recurring.init_point}

    def cancel(self, instance_id: str, sub_id: str, *, buyer_id: str | None = None,
               actor: str) -> bool:
        """Stop the automatic renewal (the buyer's command, or the seller's portal). The paid
        period stays."""
        sub = self.subscriptions.get(instance_id, sub_id, buyer_id=buyer_id)
        card = dict(sub.card or {})
        if not card.get("preapproval_id") or card.get("status") == "cancelled":
            raise NotFoundError("renovação automática", sub_id)
        try:
            self.gateway.cancel_recurring(card["preapproval_id"])
        except GatewayError:
            from astra.domain.errors import PaymentUnavailable

            raise PaymentUnavailable() from None
        card["status"] = "cancelled"
        self.subscriptions.set_card(instance_id, sub_id, card, actor=actor)
        return True

    # -- the gateway's news --------------------------------------------------------------------

    def _locate(self, external_reference: str, recurring_id: str) -> tuple[str, Any] | None:
        kind, _, rest = external_reference.partition(":")
        instance_id, _, sub_id = rest.partition(":")
        if kind != "sub" or not INSTANCE_ID_PATTERN.fullmatch(instance_id) or not sub_id:
            return None
        try:
            sub = self.subscriptions.get(instance_id, sub_id)
        except (NotFoundError, InvalidDomain):
            return None
        # The reference only says where to look; the ids the platform stored decide: the
        # current preapproval or one it replaced (a buyer who cancelled and authorised again
        # still owes what the old one's charges bought, and a chargeback of one takes it back).
        card = sub.card or {}
        if recurring_id != card.get("preapproval_id") and recurring_id not in (
                card.get("history") or []):
            return None
        return instance_id, sub

    def handle_notification(self, topic: str, resource_id: str) -> Outcome:
        if not hasattr(self.gateway, "get_recurring"):
            return Outcome("subscription", "ignored", resource_id)
        if topic == RECURRING_TOPIC:
            recurring = self.gateway.get_recurring(resource_id)
            if recurring is None:
                return Outcome("subscription", "unknown_charge", resource_id)
            found = self._locate(recurring.external_reference, recurring.id)
            if found is None:
                return Outcome("subscription", "unknown_order", resource_id)
            instance_id, sub = found
            card = dict(sub.card or {})
            if card.get("preapproval_id") != recurring.id:
                # A replaced preapproval's news says nothing about the current one.
                return Outcome("subscription", "noted", sub.id)
            if card.get("status") != recurring.status:
                card["status"] = recurring.status
                self.subscriptions.set_card(instance_id, sub.id, card, actor="gateway")
            return Outcome("subscription", f"card_{recurring.status}", sub.id)
        if topic == RECURRING_CHARGE_TOPIC:
            charge = self.gateway.get_recurring_charge(resource_id)
            if charge is None:
                return Outcome("subscription", "unknown_charge", resource_id)
            recurring = self.gateway.get_recurring(charge.recurring_id)
            if recurring is None:
                return Outcome("subscription", "unknown_charge", resource_id)
            found = self._locate(recurring.external_reference, recurring.id)
            if found is None:
                return Outcome("subscription", "unknown_order", resource_id)
            instance_id, sub = found
            if charge.payment_status == "approved" and charge.payment_id:
                self.subscriptions.card_payment(instance_id, sub.id, charge.payment_id,
                                                charge.amount_cents)
                return Outcome("subscription", "renewed", sub.id)
            if charge.payment_status in ("refunded", "charged_back") and charge.payment_id:
                self.subscriptions.take_back_period(
                    instance_id, sub.id, f"card:{charge.payment_id}",
                    "chargeback" if charge.payment_status == "charged_back" else "refund")
                return Outcome("subscription", "refunded", sub.id)
            return Outcome("subscription", "noted", sub.id)
        return Outcome("unknown", "ignored", resource_id)
