"""Pooled runtime benchmark (DESIGN.md "Performance" 4), against a fleet of fake Discord bots.

    python bench/pool.py [--instances 50] [--rounds 4]

Runs `astra runtime pool` as its own process, as a tenant runtime (no store: the platform's
internal API, one instance and one fake bot per member), first with one member, then with
`--instances`, and one isolated `astra instance run` for comparison. The internal API is served
from this process, which also plays Discord for every bot; `--api-process` serves it from a
process of its own (bench/internal_api_process.py), as the platform does. On a two-CPU machine
that third busy process costs more than it frees: the default is the faster of the two there.
Prints, as its last lines:
    RESULT pool_rss_mb_per_instance <x> target<=6     (RSS with N bots - RSS with 1) / (N - 1),
                                                       every bot READY
    RESULT pool_all_online_s <x>                       spawn of the N-bot pool -> all READY
    RESULT click_to_answer_p99_ms <x> target<100       a buyer's click on "Quantidade" -> its
                                                       answer (one API hop), all N bots
                                                       clicked at once, `--rounds` times
    RESULT actor_check_p99_ms <x>                      what asking Discord who made an
                                                       interaction costs an operation done for
                                                       a person (a pick's add to cart: the
                                                       original response, read from the fake;
                                                       only with the internal API here)
    RESULT pick_to_defer_p99_ms <x>                    a product pick -> the bot's deferral, all
                                                       N at once (each then opens a channel)
    RESULT isolated_bot_rss_mb <x> target<=60          one bot alone in its process (baseline)
    RESULT pool_vs_isolated_memory_ratio <x>           per added pooled bot / isolated bot
and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import structlog

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SETTLE_S = 2.0


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentile(values: list[float], pct: int) -> float:
    return statistics.quantiles(values, n=100)[pct - 1] if len(values) > 1 else values[0]


class Platform:
    """Where the bots' internal API answers, and their heartbeats as it received them."""

    def __init__(self, world, proc: subprocess.Popen | None = None, url: str = "") -> None:
        self.world = world
        self.proc = proc
        self.url = url or world.internal_url
        self._http = None

    @classmethod
    async def start(cls, world, data_dir: Path, here: bool) -> Platform:
        if here:
            return cls(world)
        from tests.ports import free_port

        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "internal_api_process.py"), str(data_dir),
             world.fleet.api_url, str(port)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        line = await asyncio.to_thread(proc.stdout.readline)
        if line.strip() != b"ready":
            raise RuntimeError("the internal API process did not start")
        return cls(world, proc, f"http://127.0.0.1:{port}")

    async def beats(self, ids: list[str]) -> dict[str, dict]:
        if self.proc is None:
            return {i: self.world.beat(i) for i in ids}
        import aiohttp

        if self._http is None:
            self._http = aiohttp.ClientSession()
        async with self._http.get(f"{self.url}/_bench/beats", params={"ids": ",".join(ids)}) as r:
            return await r.json()

    async def stop(self) -> None:
        if self._http is not None:
            await self._http.close()
        if self.proc is not None:
            await _stop(self.proc)


def _base_env(world, platform: Platform) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ASTRA_", "DISCORD_"))}
    env.update({"ASTRA_TENANT": "1", "ASTRA_PLATFORM_URL": platform.url,
                "DISCORD_API_BASE": world.fleet.api_url, "ASTRA_LOG_LEVEL": "warning"})
    return env


def _spawn(args: list[str], env: dict[str, str], cwd: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "astra.entrypoints.cli", *args], cwd=cwd,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def _stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    for _ in range(400):
        if proc.poll() is not None:
            return
        await asyncio.sleep(0.05)
    proc.kill()


async def _ready_since(platform: Platform, ids: list[str], spawned: float, proc) -> float:
    while not all((beat.get("ready_at") or 0) >= spawned
                  for beat in (await platform.beats(ids)).values()):
        if proc.poll() is not None:
            raise RuntimeError("the runtime exited before every bot was ready")
        if time.time() - spawned > 180:
            raise RuntimeError("not every bot became ready within 180 s")
        await asyncio.sleep(0.05)
    return time.time() - spawned


async def _pool(world, platform: Platform, members: list[dict[str, str]], cwd: str):
    env = _base_env(world, platform)
    env["ASTRA_POOL_MEMBERS"] = json.dumps(members)
    spawned = time.time()
    proc = _spawn(["runtime", "pool", "--pool", "bench"], env, cwd)
    online = await _ready_since(platform, [m["id"] for m in members], spawned, proc)
    await asyncio.sleep(SETTLE_S)  # commands synced, first passes of the workers done
    return proc, online, rss_mb(proc.pid)


def _time_actor_checks(actors) -> list[float]:
    """Times each question to Discord about who made an interaction (cache misses only: the
    calls of one click after its first cost a dictionary look-up)."""
    timings: list[float] = []
    ask = actors.user_of

    async def timed(application_id, token, ref):
        started = time.perf_counter()
        key = actors._key(application_id, ref)
        known = key in actors._users
        try:
            return await ask(application_id, token, ref)
        finally:
            if not known:
                timings.append((time.perf_counter() - started) * 1000)

    actors.user_of = timed
    return timings


async def _cart_channel(world, shop, round_: int) -> str:
    buyer = shop.buyers[round_]
    for _ in range(600):
        view = await asyncio.to_thread(world.container.sales().get_cart, shop.instance_id, buyer)
        if view is not None and view.cart.channel_id and view.cart.message_id:
            return view.cart.channel_id
        await asyncio.sleep(0.05)
    raise RuntimeError(f"{shop.instance_id}: no cart channel for {buyer}")


async def _quantity(shop, channel_id: str, buyer: str) -> float:
    pressed = time.perf_counter()
    handle = await shop.discord.click(channel_id, buyer, "astra:cart:quantity")
    await handle.response(timeout=30)
    return (time.perf_counter() - pressed) * 1000


async def main_async(args: argparse.Namespace) -> None:
    import warnings

    warnings.simplefilter("ignore", DeprecationWarning)
    from tests.pool_world import pool_world

    tmp = tempfile.TemporaryDirectory(prefix="astra-pool-bench-")
    data_dir = Path(tmp.name) / "data"
    world = await pool_world(data_dir, instances=args.instances, buyers=args.rounds,
                             prefix="bench")
    members = world.members()
    platform = await Platform.start(world, data_dir, here=not args.api_process)
    checks = [] if args.api_process else _time_actor_checks(world.container.actors())
    try:
        proc, _, rss_one = await _pool(world, platform, members[:1], tmp.name)
        await _stop(proc)

        proc, online_s, rss_all = await _pool(world, platform, members, tmp.name)
        picks: list[float] = []
        clicks: list[float] = []
        try:
            for round_ in range(args.rounds):
                # Every shop's buyer picks the product at once (the bot defers, then reserves,
                # opens the cart channel...), and once every cart is open, every buyer presses
                # "Quantidade" at once: its answer (a modal) needs the cart from the platform,
                # one API hop, as in bench/bot.py.
                picks += await asyncio.gather(*(shop.pick(shop.buyers[round_])
                                                for shop in world.shops))
                channels = await asyncio.gather(*(_cart_channel(world, shop, round_)
                                                  for shop in world.shops))
                clicks += await asyncio.gather(*(
                    _quantity(shop, channel, shop.buyers[round_])
                    for shop, channel in zip(world.shops, channels, strict=True)))
        finally:
            await _stop(proc)

        # The baseline: the first shop's bot alone, as an isolated runtime runs it.
        first = members[0]
        env = _base_env(world, platform)
        env.update({"ASTRA_INSTANCE_ID": first["id"], "ASTRA_BOT_TOKEN": first["token"],
                    "ASTRA_INSTANCE_KEY": first["key"]})
        spawned = time.time()
        alone = _spawn(["instance", "run", first["id"]], env, tmp.name)
        try:
            await _ready_since(platform, [first["id"]], spawned, alone)
            await asyncio.sleep(SETTLE_S)
            rss_alone = rss_mb(alone.pid)
        finally:
            await _stop(alone)

        n = len(members)
        per_bot = (rss_all - rss_one) / (n - 1)
        p99 = percentile(clicks, 99)
        where = "its own process" if args.api_process else "this process"
        print(f"internal API in {where}; pool of 1: {rss_one:.1f} MB; pool of {n}: "
              f"{rss_all:.1f} MB, all READY in "
              f"{online_s:.1f} s; {len(clicks)} quantity clicks ({n} at once): median "
              f"{statistics.median(clicks):.0f} ms, p99 {p99:.0f} ms; {len(picks)} picks "
              f"({n} at once) deferred: median {statistics.median(picks):.0f} ms, p99 "
              f"{percentile(picks, 99):.0f} ms; one bot alone {rss_alone:.1f} MB")
        print(f"RESULT pool_rss_mb_per_instance {per_bot:.2f} target<=6")
        print(f"RESULT pool_all_online_s {online_s:.2f}")
        print(f"RESULT click_to_answer_p99_ms {p99:.0f} target<100")
        print(f"RESULT pick_to_defer_p99_ms {percentile(picks, 99):.0f}")
        if checks:
            print(f"{len(checks)} actor checks (Discord asked): median "
                  f"{statistics.median(checks):.1f} ms")
            print(f"RESULT actor_check_p99_ms {percentile(checks, 99):.1f}")
        print(f"RESULT isolated_bot_rss_mb {rss_alone:.1f} target<=60")
        print(f"RESULT pool_vs_isolated_memory_ratio {per_bot / rss_alone:.3f}")
    finally:
        await platform.stop()
        await world.close()
        tmp.cleanup()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--api-process", action="store_true",
                        help="serve the internal API from a process of its own")
    args = parser.parse_args()
    if args.instances < 2:
        parser.error("--instances must be at least 2")
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
