"""The one place that names concrete adapters: Settings -> adapters -> services -> entrypoints.

Tests build a container with `build_container(settings)` and override providers (a different
clock, say) instead of patching modules.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from dependency_injector import containers, providers

from astra.adapters.chat.discord.actors import InteractionActors
from astra.adapters.clock import SystemClock
from astra.adapters.instance_api.inprocess import HeartbeatBoard
from astra.adapters.secrets import AesGcmCipher, HmacHasher
from astra.adapters.store.json import JsonStore
from astra.domain.services.accounts import AccountService
from astra.domain.services.api_tokens import ApiTokenService
from astra.domain.services.card_renewals import CardRenewalConfig, CardRenewalService
from astra.domain.services.catalog import CatalogService
from astra.domain.services.coupons import CouponService
from astra.domain.services.delivery import DeliveryService
from astra.domain.services.instances import InstanceService
from astra.domain.services.manual_confirmation import ManualConfirmation
from astra.domain.services.outgoing_webhooks import OutgoingWebhookService, WebhookPolicy
from astra.domain.services.payments import PaymentConfig, PaymentService
from astra.domain.services.plans import PlanConfig, PlanService
from astra.domain.services.publishing import EventPublisher
from astra.domain.services.runtime_monitor import RuntimeMonitor
from astra.domain.services.sales import SalesService
from astra.domain.services.settlement import SettlementConfig, SettlementService
from astra.domain.services.staff_notifications import StaffNotices
from astra.domain.services.subscriptions import SubscriptionService
from astra.domain.services.wallet import WalletConfig, WalletService
from astra.entrypoints.portal.webhook_stats import WebhookStats
from astra.plugins.manager import PluginManager
from astra.ports.store import Store
from astra.settings import Settings, SettingsError, load_settings

log = logging.getLogger("astra.runtime")


def _vaults(cipher: AesGcmCipher):
    # Stock keys are sealed with a key derived per instance: one instance's keys never open
    # another's. Only the platform holds them (deliveries are the platform's, see courier.py).
    return cipher.for_instance


def _store(settings: Settings) -> Store:
    """PostgreSQL when ASTRA_DATABASE_URL is set (imported only then); otherwise the JSON store
    in the data directory."""
    if settings.database_url:
        from astra.adapters.store.postgresql import PostgresStore

        return PostgresStore(settings.database_url)
    return JsonStore(settings.data_dir)


def _gateway(settings: Settings, store: Store, clock: SystemClock):
    """Mercado Pago, or the sandbox (simulated payments) as `settings.payments_sandbox` says.
    Each is imported only when chosen (the SDK and `requests` are not light)."""
    if settings.is_production and settings.payments_sandbox and settings.payments != "sandbox":
        # Whatever built these settings skipped the start-up check: never fall back to
        # simulated payments in production on a missing token.
        raise SettingsError([
            "MERCADOPAGO_ACCESS_TOKEN is required in production mode (or set "
            "ASTRA_PAYMENTS=sandbox to run on simulated payments)"
        ])
    if not settings.payments_sandbox:
        from astra.adapters.payments.mercadopago import MercadoPagoGateway

        notification_url = (
            f"{settings.public_url}/api/webhooks/mercadopago" if settings.public_url else None
        )
        return MercadoPagoGateway(
            settings.mercadopago_access_token,
            api_base=settings.mercadopago_api_base,
            webhook_secret=settings.mercadopago_webhook_secret,
            notification_url=notification_url,
        )
    from astra.adapters.payments.sandbox import SandboxGateway

    return SandboxGateway(store, clock, webhook_secret=settings.mercadopago_webhook_secret)


def _coordination(settings: Settings):
    """What replicas share: through the database when there is one (ASTRA_DATABASE_URL),
    otherwise in this process's memory."""
    if settings.database_url:
        from astra.adapters.coordination.postgresql import PostgresCoordination

        return PostgresCoordination(settings.database_url)
    from astra.adapters.coordination.local import local_coordination

    return local_coordination()


def _runtime(settings: Settings):
    """Instances placed in pools or alone (ASTRA_RUNTIME_MODE, and each instance's own
    setting), on the unit runtime below."""
    from astra.adapters.runtime.pooled import PooledRuntime

    return PooledRuntime(
        _unit_runtime(settings),
        pool_size=settings.pool_size,
        mode=settings.runtime_mode,
        grouping=settings.pool_grouping,
    )


def _unit_runtime(settings: Settings):
    """Swarm when asked for; Docker when an engine answers (or when asked for); otherwise
    supervised processes."""
    from astra.adapters.runtime.process import ProcessRuntime

    if settings.runtime == "swarm":
        from astra.adapters.runtime.swarm import SwarmRuntime

        return SwarmRuntime(
            settings.runtime_image,
            network=settings.swarm_network,
            restart_limit=settings.runtime_restart_limit,
            constraints=[c.strip() for c in settings.swarm_constraints.split(",") if c.strip()],
            scope=_runtime_scope(settings),
        )
    if settings.runtime in ("auto", "docker"):
        try:
            from astra.adapters.runtime.docker import DockerRuntime  # imports the docker SDK
        except ImportError:
            DockerRuntime = None
        if DockerRuntime is not None:
            docker_runtime = DockerRuntime(
                settings.runtime_image,
                network=settings.docker_network,
                restart_limit=settings.runtime_restart_limit,
                # Containers are labelled with the data directory they belong to, so two
                # platforms on one engine never touch each other's runtimes.
                scope=_runtime_scope(settings),
            )
            if settings.runtime == "docker" or docker_runtime.available():
                return docker_runtime
    return ProcessRuntime(
        settings.data_dir,
        restart_limit=settings.runtime_restart_limit,
        sandbox=_process_sandbox(settings),
    )


def _process_sandbox(settings: Settings):
    """The process runtime's walls. Production does not run tenants' bots on the platform's
    filesystem unless the operator said so (ASTRA_PROCESS_ISOLATION=off); development runs
    them, loudly."""
    from astra.adapters.runtime.sandbox import Sandbox, SandboxUnavailable

    if settings.process_isolation == "off":
        log.warning("runtime.unsandboxed reason=ASTRA_PROCESS_ISOLATION=off: bots run as the "
                    "platform's user and can read and write its data directory")
        return None
    try:
        return Sandbox.create(settings.data_dir)
    except SandboxUnavailable as exc:
        if settings.is_production:
            raise SettingsError([
                f"the process runtime cannot isolate bots: {exc}. Install bubblewrap, use "
                "Docker (ASTRA_RUNTIME=docker), or set ASTRA_PROCESS_ISOLATION=off to run "
                "bots unisolated"
            ]) from None
        log.warning("runtime.unsandboxed reason=%s: bots run as the platform's user and can "
                    "read and write its data directory (development only; production refuses)",
                    exc)
        return None


def _runtime_scope(settings: Settings) -> str:
    return hashlib.sha256(str(settings.data_dir.resolve()).encode()).hexdigest()[:16]


@dataclass
class InternalEndpoint:
    """Where runtimes reach the internal API: set by `astra serve` once its listener is bound
    (on the runtime network's gateway for Docker, loopback for processes)."""

    url: str = ""


@dataclass
class RuntimeEnvironment:
    """What every instance runtime may know: the platform's internal API, public endpoints and
    how to log. Read for each spec: the internal API's address is known only once bound."""

    settings: Settings
    endpoint: InternalEndpoint

    def __call__(self) -> dict[str, str]:
        s = self.settings
        platform = (
            s.platform_url
            or self.endpoint.url
            or f"http://{s.internal_host or '127.0.0.1'}:{s.internal_port}"
        )
        return {
            "DISCORD_API_BASE": s.discord_api_base,
            "ASTRA_PLATFORM_URL": platform,
            "ASTRA_LOG_LEVEL": s.log_level,
            "ASTRA_LOG_FORMAT": "json",
        }


class Container(containers.DeclarativeContainer):
    settings = providers.Singleton(load_settings)

    clock = providers.Singleton(SystemClock)
    store = providers.Singleton(_store, settings)
    cipher = providers.Singleton(AesGcmCipher, master_key=settings.provided.master_key)
    hasher = providers.Singleton(HmacHasher, master_key=settings.provided.master_key)
    vaults = providers.Singleton(_vaults, cipher)
    heartbeats = providers.Singleton(HeartbeatBoard)
    actors = providers.Singleton(InteractionActors, api_base=settings.provided.discord_api_base)

    coordination = providers.Singleton(_coordination, settings)
    accounts = providers.Singleton(
        AccountService, store=store, clock=clock, hasher=hasher,
        throttles=coordination.provided.throttles,
    )
    api_tokens = providers.Singleton(ApiTokenService, store=store, clock=clock, hasher=hasher)
    outgoing_webhooks = providers.Singleton(
        OutgoingWebhookService,
        store=store,
        clock=clock,
        vaults=vaults,
        policy=providers.Factory(
            WebhookPolicy,
            allow_private=providers.Callable(lambda s: not s.is_production, settings),
            max_attempts=settings.provided.webhook_max_attempts,
            retry_base_seconds=settings.provided.webhook_retry_base_seconds,
        ),
    )

    plugins = providers.Singleton(PluginManager, store=store, clock=clock)
    publisher = providers.Singleton(EventPublisher, hooks=plugins, clock=clock)

    wallet = providers.Singleton(
        WalletService,
        store=store,
        clock=clock,
        config=providers.Factory(
            WalletConfig,
            min_withdrawal_cents=settings.provided.min_withdrawal_cents,
            plan_bonus_cents_per_day=settings.provided.plan_bonus_cents_per_day,
        ),
    )
    settlement = providers.Singleton(
        SettlementService,
        store=store,
        clock=clock,
        publisher=publisher,
        config=providers.Factory(
            SettlementConfig, platform_fee_bps=settings.provided.platform_fee_bps
        ),
        wallet=wallet,
    )
    instances = providers.Singleton(
        InstanceService,
        store=store,
        clock=clock,
        cipher=cipher,
        hasher=hasher,
    )
    catalog = providers.Singleton(
        CatalogService, store=store, clock=clock, vaults=vaults, publisher=publisher
    )
    coupons = providers.Singleton(CouponService, store=store, clock=clock)
    sales = providers.Singleton(
        SalesService,
        store=store,
        clock=clock,
        hooks=plugins,
        publisher=publisher,
        settlement=settlement,
    )
    delivery = providers.Singleton(
        DeliveryService, store=store, clock=clock, hooks=plugins, publisher=publisher, vaults=vaults
    )
    staff_notices = providers.Singleton(StaffNotices, store=store, clock=clock)
    manual_confirmation = providers.Singleton(
        ManualConfirmation, store=store, clock=clock, settlement=settlement
    )

    gateway = providers.Singleton(_gateway, settings, store, clock)
    webhook_stats = providers.Singleton(WebhookStats)
    # The loops this replica leads (entrypoints/leadership.py); `astra serve` sets it.
    leadership = providers.Object(None)
    runtime = providers.Singleton(_runtime, settings)
    internal_endpoint = providers.Singleton(InternalEndpoint)
    monitor = providers.Singleton(
        RuntimeMonitor,
        store=store,
        clock=clock,
        runtime=runtime,
        instances=instances,
        heartbeats=heartbeats,
        environment=providers.Factory(RuntimeEnvironment, settings, internal_endpoint),
    )
    plans = providers.Singleton(
        PlanService,
        store=store,
        clock=clock,
        gateway=gateway,
        config=providers.Factory(
            PlanConfig,
            price_cents=settings.provided.plan_price_cents,
            days=settings.provided.plan_days,
            trial_days=settings.provided.trial_days,
            max_instances=settings.provided.max_instances_per_seller,
            trial_max_instances=settings.provided.trial_max_instances,
            public_url=settings.provided.public_url,
            payer_email_domain=settings.provided.payer_email_domain,
        ),
    )
    payments = providers.Singleton(
        PaymentService,
        store=store,
        clock=clock,
        gateway=gateway,
        sales=sales,
        settlement=settlement,
        plans=plans,
        config=providers.Factory(
            PaymentConfig, payer_email_domain=settings.provided.payer_email_domain
        ),
    )

    # -- subscriptions (issue 18) ------------------------------------------------------------
    subscriptions = providers.Singleton(
        SubscriptionService,
        store=store,
        clock=clock,
        publisher=publisher,
        sales=sales,
        payments=payments,
    )
    card_renewals = providers.Singleton(
        CardRenewalService,
        store=store,
        clock=clock,
        gateway=gateway,
        subscriptions=subscriptions,
        config=providers.Factory(
            CardRenewalConfig,
            payer_email_domain=settings.provided.payer_email_domain,
            back_url=settings.provided.public_url,
        ),
    )


def build_container(settings: Settings | None = None) -> Container:
    """A container on `settings` (default: the environment and `.env`)."""
    container = Container()
    if settings is not None:
        container.settings.override(providers.Object(settings))
    # Cancelled or expired orders get their PIX cancelled; resolved on first event, so a
    # process that never sells never builds a gateway.
    container.publisher().subscribe(
        lambda instance_id, event: container.payments().on_event(instance_id, event)
    )
    # Card renewals' webhooks travel the payments' queue (the services need each other).
    # Resolved when a subscription webhook arrives, like the gateway itself.
    container.payments.add_attributes(
        card_renewals_of=providers.Object(lambda: container.card_renewals())
    )
    # A refunded subscription order takes its days back at once.
    container.publisher().subscribe(
        lambda instance_id, event: container.subscriptions().on_event(instance_id, event)
    )
    # Sellers' outgoing webhooks: paid, delivered, refunded, stock low (into the outbox).
    container.publisher().subscribe(
        lambda instance_id, event: container.outgoing_webhooks().on_event(instance_id, event)
    )
    # Staff notices, written in every process that commits their events (the notifier, on
    # one replica, sends them).
    container.publisher().subscribe(
        lambda instance_id, event: container.staff_notices().on_event(instance_id, event)
    )
    return container
