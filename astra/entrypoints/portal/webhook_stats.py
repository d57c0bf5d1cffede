"""Counters of the Mercado Pago webhook queue, shared by the portal (which fills them) and the
admin panel's /metrics (which reads them), through the container."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class WebhookStats:
    accepted: int = 0
    rejected: int = 0
    ignored: int = 0
    processed: int = 0
    failed: int = 0
    # seconds from acceptance to the settled order, last 1000
    latencies: list[float] = field(default_factory=list)
