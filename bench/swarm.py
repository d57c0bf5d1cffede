"""Swarm runtime benchmark: a new instance to `online` through a Swarm service, beside the same
through a Docker container in the same run (needs a Docker engine, as root; the engine is made
a one-node swarm for the run when it is not one, and leaves it after).

    python bench/swarm.py [--rounds 3]

The platform (store, internal API, runtime monitor) runs in this process with the fake Discord;
both listen on the host addresses the bots' networks route to (the Swarm node's
docker_gwbridge gateway, the runtime bridge's gateway). Each round creates a fresh instance and
runs the monitor's passes (as `astra serve` does, every 0.25 s here) until the instance is
`online` (its bot READY and its heartbeat received). Prints, as its last lines:
    RESULT swarm_service_to_online_s <x>        median over the rounds
    RESULT docker_container_to_online_s <x>     the same through a container (baseline)
    RESULT swarm_vs_docker_ratio <x>
and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import structlog
from dependency_injector import providers

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TOKEN = "MTEyMjMzNDQ1NTY2Nzc4ODk5MA.GaBcDe.abcdefghijklmnopqrstuvwxyzABCDEFGHIJKL"
SCOPE = "astra-bench-swarm"


def _gateway_of(client, name: str) -> str:
    for config in (client.networks.get(name).attrs.get("IPAM") or {}).get("Config") or []:
        if config.get("Gateway") and ":" not in config["Gateway"]:
            return str(config["Gateway"]).split("/")[0]
    raise RuntimeError(f"{name} has no IPv4 gateway")


async def _to_online(container, monitor, instance_id: str, timeout: float = 180.0) -> float:
    instances = container.instances()
    instances.create(instance_id, owner_id="usr_bench", name=instance_id, actor="bench")
    instances.rotate_instance_key(instance_id, actor="bench")
    with container.store().portal() as uow:  # one fake bot: its token for every instance
        doc = uow.instances.require(instance_id)
        doc["token_encrypted"] = container.cipher().encrypt(
            TOKEN, context=f"bot-token:{instance_id}")
        uow.instances.put(doc)
        uow.commit()
    started = time.monotonic()
    while True:
        statuses = await asyncio.to_thread(monitor.reconcile_once)
        if statuses[instance_id].status == "online":
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"{instance_id} not online after {timeout}s: "
                               f"{statuses[instance_id]}")
        await asyncio.sleep(0.25)


async def _phase(kind: str, runtime, rounds: int, tmp: Path, discord, hosts: dict[str, str],
                 port: int) -> list[float]:
    from aiohttp import web

    from astra.container import build_container
    from astra.domain.timestamps import iso
    from astra.entrypoints.internal.app import create_internal_app
    from astra.settings import Settings, ensure_dev_secrets

    host = hosts[kind]
    discord.gateway.url = f"ws://{host}:{discord.port}/gw"
    api_base = f"http://{host}:{discord.port}/api/v10"
    container = build_container(ensure_dev_secrets(Settings(
        data_dir=tmp / kind, discord_api_base=api_base, platform_url=f"http://{host}:{port}")))
    container.runtime.override(providers.Object(runtime))
    runner = web.AppRunner(create_internal_app(container))
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    with container.store().portal() as uow:
        uow.users.put({"id": "usr_bench",
                       "plan": {"kind": "paid", "until": iso(datetime.now(UTC)
                                                             + timedelta(days=30))}})
        uow.commit()
    monitor = container.monitor()
    times = []
    try:
        for n in range(rounds):
            instance_id = f"bench-{kind}-{n}"
            times.append(await _to_online(container, monitor, instance_id))
            await asyncio.to_thread(runtime.remove, instance_id)
    finally:
        await runner.cleanup()
        container.store().close()
    return times


async def main_async(args: argparse.Namespace) -> None:
    import warnings

    warnings.simplefilter("ignore", DeprecationWarning)
    import docker

    from astra.adapters.runtime.docker import DockerRuntime
    from astra.adapters.runtime.pooled import PooledRuntime
    from astra.adapters.runtime.swarm import SwarmRuntime
    from tests.fakes.discord import FakeDiscord
    from tests.ports import free_port
    from tests.runtime_image import TEST_IMAGE, build_test_image

    client = docker.from_env()
    build_test_image(client=client)
    made_swarm = (client.info().get("Swarm") or {}).get("LocalNodeState") != "active"
    if made_swarm:
        client.swarm.init(advertise_addr="127.0.0.1")
    swarm = SwarmRuntime(TEST_IMAGE, network="astra-bench-swarm", scope=SCOPE,
                         stop_grace_period=3)
    alone = DockerRuntime(TEST_IMAGE, network="astra-bench-runtimes", scope=SCOPE, stop_timeout=3)
    tmp = Path(tempfile.mkdtemp(prefix="astra-swarm-bench-"))
    discord = FakeDiscord(bot_token=TOKEN)
    try:
        swarm._prepare_network(client)
        hosts = {"swarm": _gateway_of(client, "docker_gwbridge"),
                 "docker": alone.network_gateway()}
        await discord.start(host=hosts["swarm"])
        discord.port = int(discord.base_url.rsplit(":", 1)[1])
        from aiohttp import web

        await web.TCPSite(discord._runner, hosts["docker"], discord.port).start()
        owner = discord.add_user("dono")
        discord.add_guild("Bench", owner=owner.id)
        port = free_port()
        swarm_times = await _phase("swarm", PooledRuntime(swarm, mode="isolated"), args.rounds,
                                   tmp, discord, hosts, port)
        docker_times = await _phase("docker", PooledRuntime(alone, mode="isolated"),
                                    args.rounds, tmp, discord, hosts, port)
        s, d = statistics.median(swarm_times), statistics.median(docker_times)
        print(f"to online: swarm service {[round(t, 1) for t in swarm_times]} s, "
              f"docker container {[round(t, 1) for t in docker_times]} s")
        print(f"RESULT swarm_service_to_online_s {s:.2f}")
        print(f"RESULT docker_container_to_online_s {d:.2f}")
        print(f"RESULT swarm_vs_docker_ratio {s / d:.2f}")
    finally:
        await discord.stop()
        for service in client.services.list(filters={"label": f"astra.scope={SCOPE}"}):
            service.remove()
        for c in client.containers.list(all=True, filters={"label": f"astra.scope={SCOPE}"}):
            c.remove(force=True)
        if made_swarm:
            client.swarm.leave(force=True)
            try:
                client.networks.get("docker_gwbridge").remove()
            except docker.errors.APIError:
                pass
        else:
            for name in ("astra-bench-swarm",):
                try:
                    client.networks.get(name).remove()
                except docker.errors.APIError:
                    pass
        try:
            client.networks.get("astra-bench-runtimes").remove()
        except docker.errors.APIError:
            pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
