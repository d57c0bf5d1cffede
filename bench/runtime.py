"""Runtime benchmark: 20 instances on the process runtime against the local fake Discord.

    python bench/runtime.py [--instances 20]

The runtime monitor starts every instance's `astra instance run` process (as `astra serve`
does) and watches their heartbeats. Prints, as its last lines:
    RESULT instances_rss_mb_each <x>        mean resident memory of one instance process
    RESULT instances_all_online_s <x>       from the first reconcile to all `online`
and exits 0.
"""

from __future__ import annotations

import argparse
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


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=20)
    args = parser.parse_args()
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))

    import warnings

    warnings.simplefilter("ignore", DeprecationWarning)
    from astra.adapters.runtime.process import ProcessRuntime
    from astra.container import build_container
    from astra.domain.timestamps import iso
    from astra.settings import Settings, ensure_dev_secrets
    from tests.fakes.discord import FakeDiscordThread

    # Each instance has its own process and gateway session against the fake.
    discord = FakeDiscordThread(bot_token=TOKEN)
    discord.start()
    tmp = tempfile.TemporaryDirectory(prefix="astra-runtime-bench-")
    data = Path(tmp.name) / "data"
    container = build_container(ensure_dev_secrets(Settings(
        data_dir=data, discord_api_base=discord.api_url, runtime="process")))
    runtime = ProcessRuntime(data, restart_limit=1)
    container.runtime.override(providers.Object(runtime))
    try:
        with container.store().portal() as uow:
            until = iso(datetime.now(UTC) + timedelta(days=30))
            uow.users.put({"id": "usr_bench", "plan": {"kind": "paid", "until": until}})
            uow.commit()
        instances = container.instances()
        ids = [f"bench-{n:02d}" for n in range(args.instances)]
        for instance_id in ids:
            instances.create(instance_id, owner_id="usr_bench", name=instance_id, actor="bench")
            instances.rotate_instance_key(instance_id, actor="bench")
            # The platform refuses one bot token for two instances, and the fake knows a single
            # bot: the token is stored directly, bypassing that check, for the benchmark only.
            with container.store().portal() as uow:
                doc = uow.instances.require(instance_id)
                doc["token_encrypted"] = container.cipher().encrypt(
                    TOKEN, context=f"bot-token:{instance_id}")
                uow.instances.put(doc)
                uow.commit()
        monitor = container.monitor()
        started = time.monotonic()
        statuses = monitor.reconcile_once()
        while time.monotonic() - started < 120:
            if all(s.status == "online" for s in statuses.values()):
                break
            time.sleep(0.25)
            statuses = monitor.reconcile_once()
        online_s = time.monotonic() - started
        online = sum(1 for s in statuses.values() if s.status == "online")
        time.sleep(1.0)
        rss = [rss_mb(runtime._runtimes[i].proc.pid) for i in ids]
        print(f"{online}/{len(ids)} instances online in {online_s:.1f}s; resident memory "
              f"{statistics.mean(rss):.1f} MB each (min {min(rss):.1f}, max {max(rss):.1f})")
        print(f"RESULT instances_rss_mb_each {statistics.mean(rss):.1f}")
        print(f"RESULT instances_all_online_s {online_s:.1f}")
    finally:
        runtime.shutdown()
        discord.stop()
        container.store().close()
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
