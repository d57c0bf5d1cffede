"""Plugin discovery, toggles and isolated hook calls: the domain's `HooksProvider` over pluggy.

Plugins come from the `astra.plugins` entry point group (the default set registers there like any
third-party plugin). Whether a plugin runs for an instance is decided on every `for_instance()`
call from the store: the instance's override, else the global toggle, else the plugin's
`DEFAULT_ENABLED`. Reading on every call (no cache) is what lets a toggle changed by another
process (the CLI, the admin panel) take effect at once, without a restart.

Hook implementations are called here one by one instead of through `pm.hook.<name>(...)`, so a
plugin that raises is logged under its own name, counted, and skipped, and only enabled plugins
run. Call order follows pluggy's (tryfirst first, then the last registered first); hook wrappers
are not run.
"""

from __future__ import annotations

import copy
import importlib.metadata
import inspect
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pluggy
from pluggy import HookImpl

from astra.domain.cart import Cart
from astra.domain.catalog import Product, Variant
from astra.domain.coupon import Coupon
from astra.domain.errors import NotFoundError
from astra.domain.events import DomainEvent
from astra.domain.hooks import (
    CouponOutcome,
    DeliveryItem,
    DeliveryOutcome,
    SaleContext,
    Veto,
)
from astra.domain.ids import new_id
from astra.domain.pricing import Adjustment, Quote
from astra.domain.timestamps import iso
from astra.logs import get_logger
from astra.plugins import PROJECT, hookspecs
from astra.ports.clock import Clock
from astra.ports.store import Doc, LockOrderError, Repository, Store, StoreError

ENTRY_POINT_GROUP = "astra.plugins"

# Domain events that also have a dedicated after-event hook.
ORDER_EVENT_HOOKS = {
    "order.created": "astra_order_created",
    "order.paid": "astra_order_paid",
    "order.delivered": "astra_order_delivered",
    "order.cancelled": "astra_order_cancelled",
    "order.refunded": "astra_order_refunded",
}
SUBSCRIPTION_EVENT_HOOKS = {
    "subscription.started": "astra_subscription_started",
    "subscription.renewed": "astra_subscription_renewed",
    "subscription.ended": "astra_subscription_ended",
}

# How long a process keeps the global plugin toggles before reading them again (global_toggles).
GLOBAL_TOGGLES_TTL_SECONDS = 2.0


class UnknownPlugin(NotFoundError, KeyError):
    """A toggle named a plugin that is not installed."""

    def __init__(self, name: str) -> None:
        super().__init__(f"Plugin {name!r}", name)
        self.name = name

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return self.message("en")


@dataclass
class _Health:
    errors: int = 0
    last_error: str | None = None


def _log() -> Any:
    # Fetched per use: a module-level proxy would be cached by structlog on first use and escape
    # a later reconfiguration (and tests' capture_logs).
    return get_logger(__name__)


class PluginManager:
    """Discovers plugins, persists their toggles, and hands out per-instance `SalesHooks`."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        entry_point_group: str = ENTRY_POINT_GROUP,
        load_entry_points: bool = True,
    ) -> None:
        self.store = store
        self.clock = clock
        self.entry_point_group = entry_point_group
        self.pm = pluggy.PluginManager(PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self._health: dict[str, _Health] = {}
        self._load_errors: dict[str, str] = {}
        self._lock = threading.Lock()
        self._portal_unreadable = False
        # (monotonic time read, toggles) of the global toggles; see global_toggles. A change
        # made here bumps the generation, so a read that began before it is not kept.
        self._globals: tuple[float, dict[str, bool]] | None = None
        self._generation = 0
        self.monotonic = time.monotonic  # tests move it instead of sleeping
        if load_entry_points:
            self.load_entry_points()

    # -- discovery -------------------------------------------------------------------------------

    def load_entry_points(self) -> int:
        """Load every plugin of the entry point group not loaded yet; returns how many.

        One entry point at a time, so a broken third-party plugin (import error, bad hook
        signature) is logged and left out instead of stopping the platform's start-up."""
        names = sorted(
            {ep.name for ep in importlib.metadata.entry_points(group=self.entry_point_group)}
        )
        loaded = 0
        for name in names:
            try:
                loaded += self.pm.load_setuptools_entrypoints(self.entry_point_group, name=name)
            except Exception as exc:
                self._load_errors[name] = repr(exc)
                _log().error("plugin.load_failed", plugin=name, error=repr(exc))
            else:
                self._load_errors.pop(name, None)
        return loaded

    def register(self, plugin: object, name: str | None = None) -> str:
        """Register a plugin module or object by hand (tests, embedding); returns its name.

        The name defaults to the plugin's `NAME`."""
        name = name or getattr(plugin, "NAME", None)
        if not isinstance(name, str) or not name:
            raise ValueError("a plugin needs a name: pass name= or declare NAME")
        registered = self.pm.register(plugin, name=name)
        if registered is None:
            raise ValueError(f"plugin {name!r} is already registered or blocked")
        return registered

    def names(self) -> list[str]:
        """Registered plugin names, in registration order."""
        return [name for name, plugin in self.pm.list_name_plugin() if plugin is not None]

    def _plugin(self, name: str) -> object:
        plugin = self.pm.get_plugin(name)
        if plugin is None:
            raise UnknownPlugin(name)
        return plugin

    def default_enabled(self, name: str) -> bool:
        # A plugin that does not say is on: installing it is the operator's choice to use it.
        return bool(getattr(self._plugin(name), "DEFAULT_ENABLED", True))

    def plugins(self) -> list[dict[str, Any]]:
        """What is installed: name, description, default state, hooks, and failures so far."""
        out: list[dict[str, Any]] = []
        for name in self.names():
            plugin = self._plugin(name)
            description = getattr(plugin, "DESCRIPTION", None)
            if not isinstance(description, str):
                doc = inspect.getdoc(plugin) or ""
                description = doc.splitlines()[0] if doc else ""
            callers = self.pm.get_hookcallers(plugin) or []
            health = self._health.get(name, _Health())
            out.append(
                {
                    "name": name,
                    "description": description,
                    "default_enabled": self.default_enabled(name),
                    "hooks": sorted(caller.name for caller in callers),
                    "errors": health.errors,
                    "last_error": health.last_error,
                    "loaded": True,
                }
            )
        for name, error in sorted(self._load_errors.items()):
            out.append(
                {
                    "name": name,
                    "description": "",
                    "default_enabled": False,
                    "hooks": [],
                    "errors": 1,
                    "last_error": f"load failed: {error}",
                    "loaded": False,
                }
            )
        return out

    def record_failure(self, plugin: str, hook: str, error: BaseException) -> None:
        with self._lock:
            health = self._health.setdefault(plugin, _Health())
            health.errors += 1
            health.last_error = f"{hook}: {error!r}"
        _log().error("plugin.failed", plugin=plugin, hook=hook, error=repr(error))

    # -- toggles ---------------------------------------------------------------------------------

    def set_global(self, name: str, enabled: bool, actor: str) -> Doc:
        """Turn a plugin on or off for every instance without an override; returns the toggle."""
        enabled = self._check_toggle(name, enabled)
        with self.store.portal() as uow:
            doc = self._write_toggle(uow.plugin_toggles, uow.audit, name, enabled, actor, None)
            uow.commit()
        with self._lock:  # this process sees its own change at once
            self._generation += 1
            self._globals = None
        assert doc is not None  # only clearing an override returns no toggle
        return doc

    def set_instance(
        self, instance_id: str, name: str, enabled: bool | None, actor: str
    ) -> Doc | None:
        """Override a plugin for one instance; `enabled=None` removes the override (the global
        toggle applies again). Returns the toggle, or None when cleared."""
        if enabled is not None:
            enabled = self._check_toggle(name, enabled)
        else:
            self._plugin(name)
        with self.store.instance(instance_id) as uow:
            doc = self._write_toggle(
                uow.plugin_toggles, uow.audit, name, enabled, actor, instance_id
            )
            uow.commit()
        return doc

    def _check_toggle(self, name: str, enabled: object) -> bool:
        self._plugin(name)
        if not isinstance(enabled, bool):
            raise TypeError("enabled must be a bool")
        return enabled

    def _write_toggle(
        self,
        toggles: Repository,
        audit: Repository,
        name: str,
        enabled: bool | None,
        actor: str,
        instance_id: str | None,
    ) -> Doc | None:
        now = iso(self.clock.now())
        previous = toggles.get(name)
        doc: Doc | None = None
        if enabled is None:
            toggles.delete(name)
            action = "plugin.override_cleared"
        else:
            doc = {"id": name, "enabled": enabled, "updated_at": now, "updated_by": actor}
            toggles.put(doc)
            action = "plugin.enabled" if enabled else "plugin.disabled"
        audit.add(
            {
                "id": new_id("audit"),
                "at": now,
                "actor": actor,
                "action": action,
                "target": f"plugin:{name}",
                "details": {
                    "plugin": name,
                    "scope": "instance" if instance_id else "global",
                    "instance_id": instance_id,
                    "enabled": enabled,
                    "previous": None if previous is None else previous.get("enabled"),
                },
            }
        )
        return doc

    def global_toggles(self) -> dict[str, bool]:
        """Stored global toggles ({} when this process cannot read the portal domain).

        Every sale, cart view and event asks for them, and they live in the portal domain that
        all instances share: read on each call, they made every bot's click wait on that one
        domain (a quarter of the platform's time with 50 busy bots). They are kept for
        GLOBAL_TOGGLES_TTL_SECONDS, so a toggle made elsewhere (another replica, the CLI)
        takes effect within that; one made through this manager, at once."""
        cached = self._globals
        if cached is not None and self.monotonic() - cached[0] < GLOBAL_TOGGLES_TTL_SECONDS:
            return dict(cached[1])
        read_at, generation = self.monotonic(), self._generation
        try:
            with self.store.portal(write=False) as uow:
                docs = uow.plugin_toggles.all()
        except LockOrderError:
            raise  # a caller's bug (portal unit of work open in this thread), not an outage
        except (OSError, StoreError) as exc:
            # A damaged portal domain must not stop sales: defaults it is, and the operator is
            # told once.
            if not self._portal_unreadable:
                self._portal_unreadable = True
                _log().warning("plugin.global_toggles_unreadable", error=repr(exc))
            return {}
        self._portal_unreadable = False
        toggles = _enabled_map(docs)
        with self._lock:
            if generation == self._generation:
                self._globals = (read_at, toggles)
        return dict(toggles)

    def instance_toggles(self, instance_id: str, *, uow: Any = None) -> dict[str, bool]:
        """Stored overrides of one instance. Pass the caller's open unit of work on that instance
        to read through it (opening a second one in the same thread is refused by the store)."""
        if uow is not None:
            return _enabled_map(uow.plugin_toggles.all())
        with self.store.instance(instance_id, write=False) as own:
            return _enabled_map(own.plugin_toggles.all())

    def effective(self, instance_id: str | None = None, *, uow: Any = None) -> dict[str, bool]:
        """name -> enabled for an instance (or globally, with None): the instance's overrides
        read now, the global toggles as `global_toggles` keeps them."""
        overrides = self.instance_toggles(instance_id, uow=uow) if instance_id else {}
        # The portal is read after the instance: the store's lock order allows only that way.
        globals_ = self.global_toggles()
        result = {}
        for name in self.names():
            if name in overrides:
                result[name] = overrides[name]
            elif name in globals_:
                result[name] = globals_[name]
            else:
                result[name] = self.default_enabled(name)
        return result

    def for_instance(self, instance_id: str, *, uow: Any = None) -> PluginHooks:
        """The hooks of the plugins enabled for this instance now."""
        enabled = frozenset(n for n, on in self.effective(instance_id, uow=uow).items() if on)
        return PluginHooks(self, enabled)


def _enabled_map(docs: list[Doc]) -> dict[str, bool]:
    return {d["id"]: d["enabled"] for d in docs if isinstance(d.get("enabled"), bool)}


class PluginHooks:
    """`SalesHooks` over the enabled plugins of one instance, each plugin isolated."""

    def __init__(self, manager: PluginManager, enabled: frozenset[str]) -> None:
        self.manager = manager
        self.enabled = enabled

    def _impls(self, hook: str) -> Iterator[HookImpl]:
        caller = getattr(self.manager.pm.hook, hook)
        # pluggy's own order: the list runs trylast .. tryfirst, and is called back to front.
        for impl in reversed(caller.get_hookimpls()):
            if impl.plugin_name in self.enabled and not (impl.hookwrapper or impl.wrapper):
                yield impl

    def _fail(self, impl: HookImpl, hook: str, error: BaseException) -> None:
        self.manager.record_failure(impl.plugin_name, hook, error)

    def _call(self, impl: HookImpl, hook: str, kwargs: dict[str, Any]) -> tuple[bool, Any]:
        """(ok, result) of one plain hook implementation."""
        try:
            result = impl.function(*[kwargs[arg] for arg in impl.argnames])
        except Exception as exc:
            self._fail(impl, hook, exc)
            return False, None
        if inspect.isawaitable(result):
            # An `async def` where the sale cannot wait: a plugin bug, not a silent no-op.
            if inspect.iscoroutine(result):
                result.close()
            self._fail(impl, hook, TypeError(f"{hook} must not be async"))
            return False, None
        return True, result

    def _first_veto(self, hook: str, kwargs: dict[str, Any]) -> Veto | None:
        for impl in self._impls(hook):
            ok, result = self._call(impl, hook, kwargs)
            if not ok or result is None:
                continue
            if isinstance(result, Veto):
                return result  # any veto refuses: the rest need not be asked
            self._fail(impl, hook, TypeError(f"returned {type(result).__name__}, not a Veto"))
        return None

    def check_cart_line(
        self, ctx: SaleContext, cart: Cart, product: Product, variant: Variant, quantity: int
    ) -> Veto | None:
        return self._first_veto(
            "astra_cart_line_check",
            {
                "ctx": ctx,
                "cart": cart,
                "product": product,
                "variant": variant,
                "quantity": quantity,
            },
        )

    def cart_adjustments(self, ctx: SaleContext, cart: Cart) -> list[Adjustment]:
        hook = "astra_cart_adjustments"
        out: list[Adjustment] = []
        for impl in self._impls(hook):
            ok, result = self._call(impl, hook, {"ctx": ctx, "cart": cart})
            if not ok or result is None:
                continue
            # All or nothing per plugin: half a plugin's adjustments would be a wrong price.
            if not isinstance(result, list | tuple) or not all(
                isinstance(a, Adjustment) and type(a.amount_cents) is int for a in result
            ):
                self._fail(impl, hook, TypeError("must return a list of Adjustment"))
                continue
            out.extend(result)
        return out

    def renewal_adjustments(
        self, ctx: SaleContext, cart: Cart, line: Any, subscription: dict[str, Any]
    ) -> list[Adjustment]:
        hook = "astra_subscription_renewal_adjustments"
        out: list[Adjustment] = []
        for impl in self._impls(hook):
            kwargs = {"ctx": ctx, "cart": cart, "line": line,
                      "subscription": copy.deepcopy(subscription)}
            ok, result = self._call(impl, hook, kwargs)
            if not ok or result is None:
                continue
            if not isinstance(result, list | tuple) or not all(
                isinstance(a, Adjustment) and type(a.amount_cents) is int for a in result
            ):
                self._fail(impl, hook, TypeError("must return a list of Adjustment"))
                continue
            out.extend(result)
        return out

    def check_checkout(self, ctx: SaleContext, cart: Cart, quote: Quote) -> Veto | None:
        return self._first_veto("astra_checkout_check", {"ctx": ctx, "cart": cart, "quote": quote})

    def coupon(self, ctx: SaleContext, cart: Cart, coupon: Coupon) -> CouponOutcome | None:
        hook = "astra_coupon_evaluate"
        for impl in self._impls(hook):
            ok, result = self._call(impl, hook, {"ctx": ctx, "cart": cart, "coupon": coupon})
            if not ok or result is None:
                continue
            if (
                isinstance(result, CouponOutcome)
                and type(result.discount_cents) is int
                and result.discount_cents >= 0
            ):
                return result  # firstresult
            self._fail(impl, hook, TypeError(f"returned {result!r}, not a CouponOutcome"))
        return None

    async def deliver(
        self, ctx: SaleContext, item: DeliveryItem, services: dict[str, Any]
    ) -> DeliveryOutcome | None:
        hook = "astra_deliver_line"
        kwargs = {"ctx": ctx, "item": item, "services": services}
        failed: list[str] = []
        for impl in self._impls(hook):
            try:
                result = impl.function(*[kwargs[arg] for arg in impl.argnames])
                if inspect.isawaitable(result):
                    result = await result
            except Exception as exc:
                self._fail(impl, hook, exc)
                failed.append(f"{impl.plugin_name}: {type(exc).__name__}")
                continue
            if result is None:
                continue
            if isinstance(result, DeliveryOutcome):
                return result  # firstresult
            self._fail(impl, hook, TypeError(f"returned {type(result).__name__}"))
        if failed:
            # Say which plugin broke, not "nobody delivers this": staff read it in Entregas.
            return DeliveryOutcome(
                ok=False, error="delivery plugin failed: " + "; ".join(failed), retryable=True
            )
        return None

    def notify(self, ctx: SaleContext, event: DomainEvent) -> None:
        for impl in self._impls("astra_event"):
            self._call(impl, "astra_event", {"ctx": ctx, "event": event})
        sub_hook = SUBSCRIPTION_EVENT_HOOKS.get(event.name)
        subscription = event.data.get("subscription")
        if sub_hook is not None and isinstance(subscription, dict):
            for impl in self._impls(sub_hook):
                self._call(impl, sub_hook,
                           {"ctx": ctx, "subscription": copy.deepcopy(subscription)})
        hook = ORDER_EVENT_HOOKS.get(event.name)
        order = event.data.get("order")
        if hook is None or not isinstance(order, dict):
            return
        for impl in self._impls(hook):
            # Each plugin gets its own copy: one plugin's edits must not reach the next.
            self._call(impl, hook, {"ctx": ctx, "order": copy.deepcopy(order)})
