"""The one place that names concrete adapters: Settings -> adapters -> services -> entrypoints.

Tests build a container with `build_container(settings)` and override providers (a different
clock, say) instead of patching modules.
"""

from __future__ import annotations

from dependency_injector import containers, providers

from astra.adapters.clock import SystemClock
from astra.adapters.payments.mercadopago import MercadoPagoGateway
from astra.adapters.payments.sandbox import SandboxGateway
from astra.adapters.secrets import AesGcmCipher, HmacHasher
from astra.adapters.store.json import JsonStore
from astra.domain.services.catalog import CatalogService
from astra.domain.services.coupons import CouponService
from astra.domain.services.delivery import DeliveryService
from astra.domain.services.instances import InstanceService
from astra.domain.services.payments import PaymentConfig, PaymentService
from astra.domain.services.plans import PlanConfig, PlanService
from astra.domain.services.publishing import EventPublisher
from astra.domain.services.sales import SalesService
from astra.domain.services.settlement import SettlementConfig, SettlementService
from astra.domain.services.wallet import WalletConfig, WalletService
from astra.plugins.manager import PluginManager
from astra.settings import Settings, load_settings


def _vaults(cipher: AesGcmCipher):
    # Stock keys are sealed with the instance's own key: what its runtime can hold.
    return cipher.for_instance


def _gateway(settings: Settings, store: JsonStore, clock: SystemClock):
    """Mercado Pago when an access token is set; otherwise the sandbox (simulated payments)."""
    if settings.mercadopago_access_token:
        notification_url = (
            f"{settings.public_url}/api/webhooks/mercadopago" if settings.public_url else None
        )
        return MercadoPagoGateway(
            settings.mercadopago_access_token,
            api_base=settings.mercadopago_api_base,
            webhook_secret=settings.mercadopago_webhook_secret,
            notification_url=notification_url,
        )
    return SandboxGateway(store, clock, webhook_secret=settings.mercadopago_webhook_secret)


class Container(containers.DeclarativeContainer):
    settings = providers.Singleton(load_settings)

    clock = providers.Singleton(SystemClock)
    store = providers.Singleton(JsonStore, data_dir=settings.provided.data_dir)
    cipher = providers.Singleton(AesGcmCipher, master_key=settings.provided.master_key)
    hasher = providers.Singleton(HmacHasher, master_key=settings.provided.master_key)
    vaults = providers.Singleton(_vaults, cipher)

    plugins = providers.Singleton(PluginManager, store=store, clock=clock)
    publisher = providers.Singleton(EventPublisher, hooks=plugins, clock=clock)

    wallet = providers.Singleton(
        WalletService,
        store=store,
        clock=clock,
        config=providers.Factory(
            WalletConfig, min_withdrawal_cents=settings.provided.min_withdrawal_cents
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
        InstanceService, store=store, clock=clock, cipher=cipher, hasher=hasher
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

    gateway = providers.Singleton(_gateway, settings, store, clock)
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
    return container
