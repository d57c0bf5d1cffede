"""What applying a payment signal did to an order or a plan."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Outcome:
    """For logs, metrics and the webhook's answer."""

    kind: str  # order | plan | unknown
    action: str  # paid | refunded | partially_refunded | noted | ignored | unknown_charge ...
    ref: str = ""
