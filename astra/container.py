"""The one place that names concrete adapters: Settings -> adapters -> services -> entrypoints.

Tests build a container with `build_container(settings)` and override providers (a different
clock, say) instead of patching modules.
"""

from __future__ import annotations

from dependency_injector import containers, providers

from astra.adapters.clock import SystemClock
from astra.adapters.secrets import AesGcmCipher, HmacHasher
from astra.adapters.store.json import JsonStore
from astra.settings import Settings, load_settings


class Container(containers.DeclarativeContainer):
    settings = providers.Singleton(load_settings)

    clock = providers.Singleton(SystemClock)
    store = providers.Singleton(JsonStore, data_dir=settings.provided.data_dir)
    cipher = providers.Singleton(AesGcmCipher, master_key=settings.provided.master_key)
    hasher = providers.Singleton(HmacHasher, master_key=settings.provided.master_key)


def build_container(settings: Settings | None = None) -> Container:
    """A container on `settings` (default: the environment and `.env`)."""
    container = Container()
    if settings is not None:
        container.settings.override(providers.Object(settings))
    return container
