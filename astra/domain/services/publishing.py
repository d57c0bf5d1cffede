"""Handing domain events to the plugins once the change that produced them is committed."""

from __future__ import annotations

import logging
from collections.abc import Callable

from astra.domain.events import DomainEvent
from astra.domain.hooks import HooksProvider, SaleContext
from astra.ports.clock import Clock

# stdlib logging (configured by the entrypoints), so the domain imports no logging library.
log = logging.getLogger("astra.events")


Subscriber = Callable[[str, DomainEvent], None]


class EventPublisher:
    def __init__(self, hooks: HooksProvider, clock: Clock) -> None:
        self.hooks = hooks
        self.clock = clock
        self._subscribers: list[Subscriber] = []

    def subscribe(self, subscriber: Subscriber) -> None:
        """Platform services that react to events (the payment layer cancels the charge of a
        cancelled order). Called before the plugins; a failure is logged and isolated."""
        self._subscribers.append(subscriber)

    def unsubscribe(self, subscriber: Subscriber) -> None:
        """Undo `subscribe` (a courier that stops leading stops listening)."""
        if subscriber in self._subscribers:
            self._subscribers.remove(subscriber)

    def publish(self, instance_id: str, events: list[DomainEvent]) -> None:
        if not events:
            return
        for event in events:
            for subscriber in self._subscribers:
                try:
                    subscriber(instance_id, event)
                except Exception:  # a subscriber's failure must not undo a committed sale
                    log.exception(
                        "events.subscriber_failed",
                        extra={"event": event.name, "instance": instance_id},
                    )
        hooks = self.hooks.for_instance(instance_id)
        for event in events:
            ctx = SaleContext(
                instance_id=instance_id, buyer_id=event.data.get("buyer_id"), now=self.clock.now()
            )
            hooks.notify(ctx, event)
