"""A real container, made by the runtime monitor, running `astra instance run` against the fake
Discord on the host: online, restart, suspension on plan expiry and back, and the engine
stopped (clear status, the platform keeps serving).

The container sits on the runtime bridge, where the host's loopback does not exist: the fake
Discord (standing in for the internet) and the internal API both bind the bridge's gateway,
which is a host address. Only this test's fake Discord does so; the platform binds nothing but
its internal API there."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import docker
import pytest
from dependency_injector import providers

from astra.adapters.runtime.docker import DockerRuntime
from astra.container import build_container
from astra.domain.timestamps import iso
from astra.settings import Settings, ensure_dev_secrets
from tests.fakes.discord import FakeDiscordThread
from tests.integration.test_docker_runtime import (  # noqa: F401
    TEST_NETWORK,
    docker_client,
    runtime_gateway,
    runtime_image,
)
from tests.integration.test_runtime_monitor import _until
from tests.platform_thread import InternalAPIThread, free_port

pytestmark = [pytest.mark.docker, pytest.mark.slow]
TOKEN = "MTEyMjMzNDQ1NTY2Nzc4ODk5MA.GaBcDe.abcdefghijklmnopqrstuvwxyzABCDEFGHIJKL"
SCOPE = "astra-tests-monitor"


def test_monitor_runs_a_real_container_online_and_suspends_it(
        data_dir: Path, docker_client: docker.DockerClient, runtime_image: str,  # noqa: F811
        runtime_gateway: str,  # noqa: F811
) -> None:
    discord = FakeDiscordThread(bot_token=TOKEN)
    discord.start(host=runtime_gateway)
    runtime = DockerRuntime(runtime_image, network=TEST_NETWORK, restart_limit=2, scope=SCOPE)
    port = free_port(runtime_gateway)
    container = build_container(ensure_dev_secrets(Settings(
        data_dir=data_dir, discord_api_base=discord.api_url, runtime="docker",
        platform_url=f"http://{runtime_gateway}:{port}",
        mercadopago_access_token="APP_USR-9999999999999999-010101-abcdefabcdef-1")))
    container.runtime.override(providers.Object(runtime))
    portal = InternalAPIThread(container, port, host=runtime_gateway).__enter__()
    try:
        with container.store().portal() as uow:
            until = iso(datetime.now(UTC) + timedelta(days=3))
            uow.users.put({"id": "usr_d", "plan": {"kind": "paid", "until": until}})
            uow.commit()
        instances = container.instances()
        instances.create("loja-docker", owner_id="usr_d", name="Docker", actor="test")
        instances.rotate_instance_key("loja-docker", actor="test")
        instances.set_bot_token("loja-docker", TOKEN, {"id": "1"}, actor="test")
        monitor = container.monitor()
        _until(monitor, "loja-docker", "online")
        box = docker_client.containers.get("astra-instance-loja-docker")
        env = "\n".join(box.attrs["Config"]["Env"])
        assert "APP_USR-" not in env and "ASTRA_MASTER_KEY" not in env
        assert box.attrs["Mounts"] == []  # its data comes through the internal API
        assert box.attrs["HostConfig"]["NetworkMode"] == TEST_NETWORK
        logs = runtime.logs("loja-docker", 200)
        assert any("bot.ready" in line for line in logs), logs

        instances.set_desired_state("loja-docker", "restart", actor="seller:1")
        monitor.reconcile_once()
        _until(monitor, "loja-docker", "online")

        with container.store().portal() as uow:
            user = uow.users.require("usr_d")
            user["plan"]["until"] = iso(datetime.now(UTC) - timedelta(minutes=1))
            uow.users.put(user)
            uow.commit()
        assert monitor.reconcile_once()["loja-docker"].status == "suspended"
        with pytest.raises(docker.errors.NotFound):
            docker_client.containers.get("astra-instance-loja-docker")
        with container.store().portal() as uow:
            user = uow.users.require("usr_d")
            user["plan"]["until"] = iso(datetime.now(UTC) + timedelta(days=30))
            uow.users.put(user)
            uow.commit()
        _until(monitor, "loja-docker", "online")

        # The engine goes away: a clear status, and the monitor keeps going.
        gone = DockerRuntime(
            runtime_image, network=TEST_NETWORK, scope=SCOPE,
            client_factory=lambda: docker.DockerClient(
                base_url="unix:///tmp/astra-no-docker.sock", version="1.41"))
        container.runtime.override(providers.Object(gone))
        container.monitor.reset()
        status = container.monitor().reconcile_once()["loja-docker"]
        assert (status.status, status.reason) == ("error", "docker_unavailable")
        with container.store().portal(write=False) as uow:
            assert uow.instances.require("loja-docker")["status_reason"] == "docker_unavailable"
    finally:
        runtime.remove("loja-docker")
        portal.__exit__(None, None, None)
        discord.stop()
