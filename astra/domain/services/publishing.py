"""Handing domain events to the plugins once the change that produced them is committed."""

from __future__ import annotations

from astra.domain.events import DomainEvent
from astra.domain.hooks import HooksProvider, SaleContext
from astra.ports.clock import Clock


class EventPublisher:
    def __init__(self, hooks: HooksProvider, clock: Clock) -> None:
        self.hooks = hooks
        self.clock = clock

    def publish(self, instance_id: str, events: list[DomainEvent]) -> None:
        if not events:
            return
        hooks = self.hooks.for_instance(instance_id)
        for event in events:
            ctx = SaleContext(
                instance_id=instance_id, buyer_id=event.data.get("buyer_id"), now=self.clock.now()
            )
            hooks.notify(ctx, event)
