"""Subscription expiry (issue 18): from a subscription's end to its role removed, with 1,000
subscriptions of one instance ending in the same hour, against the fake Discord keeping
Discord's rate limits (50 requests/s for the bot; member-role changes 10 per 10 s per guild).

    python bench/subscriptions.py [--subs 1000] [--hour 3600] [--speedup 30]

The platform's SubscriptionKeeper runs as `astra serve` runs it (real JSON store, the real
Discord REST client on the instance's token, the fake Discord in a thread of its own). Every
member holds the role; each subscription ends at a random moment of the hour. An hour is long,
so the whole scene runs `--speedup` times faster: the ends are spread over hour/speedup seconds
and every rate limit window is speedup times shorter, which scales Discord's queueing exactly;
lags are multiplied back by speedup (our own processing time is multiplied too, so the figure
errs on the slow side). A removal's time is when the fake Discord received the DELETE.

Baseline, measured in the same run on a fresh fake with the same limits: an ideal remover that
knows every end in advance and sends the DELETE at the very moment (a bare aiohttp client that
waits each 429's retry_after). Prints, as its last lines:
    RESULT expiry_lag_p99_s=<x> target<60
    RESULT expiry_lag_p50_s=<x>
    RESULT expiry_lag_vs_ideal ratio=<ours p99 / ideal p99> ideal_p99_s=<x>
    RESULT rate_limit_early_retries=<n> (requests sent before Discord's retry_after: 0)
and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import structlog

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from astra.container import build_container  # noqa: E402
from astra.domain.subscription import Subscription, SubscriptionStatus  # noqa: E402
from astra.entrypoints.subscription_keeper import SubscriptionKeeper  # noqa: E402
from astra.settings import Settings, ensure_dev_secrets  # noqa: E402
from tests.fakes.discord import FakeDiscord  # noqa: E402

INSTANCE = "bench-subs"
TOKEN = "MTEyMjMzNDQ1NTY2Nzc4ODk5MA.GaBcDe.abcdefghijklmnopqrstuvwxyzABCDEFGHIJKL"


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _discord(speedup: float) -> tuple[object, str]:
    fake = FakeDiscord(bot_token=TOKEN)
    fake.limit_rate(50, 1.0 / speedup, global_=True)
    fake.limit_rate(10, 10.0 / speedup, path_contains="/roles/")
    runner = fake.run_in_thread()
    return runner, runner.api_url


def _world(runner: object, n: int) -> tuple[str, str, list[str]]:
    owner = runner.add_user("dono")
    guild = runner.add_guild("Clube", owner=owner.id)
    role = runner.add_role(guild.id, "VIP")
    users = []
    for i in range(n):
        user = runner.add_user(f"membro{i}")
        runner.add_member(guild.id, user.id, [role.id])
        users.append(str(user.id))
    return str(guild.id), str(role.id), users


async def ideal(n: int, hour: float, speedup: float, seed: int) -> list[float]:
    """Each DELETE sent exactly at its end, through the same limits."""
    runner, api = _discord(speedup)
    try:
        guild, role, users = _world(runner, n)
        rng = random.Random(seed)
        start = time.time() + 2.0
        ends = sorted((start + rng.uniform(0, hour / speedup), u) for u in users)
        lags: list[float] = []
        headers = {"Authorization": f"Bot {TOKEN}"}
        async with aiohttp.ClientSession(headers=headers) as http:
            async def remove(at: float, user: str) -> None:
                await asyncio.sleep(max(0.0, at - time.time()))
                while True:
                    async with http.delete(f"{api}/guilds/{guild}/members/{user}/roles/{role}") \
                            as resp:
                        body = await resp.json(content_type=None) if resp.status == 429 else {}
                        if resp.status != 429:
                            lags.append((time.time() - at) * speedup)
                            return
                    await asyncio.sleep(float(body.get("retry_after") or 1.0))

            await asyncio.gather(*(remove(at, u) for at, u in ends))
        return lags
    finally:
        runner.stop()


async def ours(n: int, hour: float, speedup: float, seed: int, data: Path) -> tuple[
        list[float], int]:
    runner, api = _discord(speedup)
    container = build_container(ensure_dev_secrets(Settings(data_dir=data,
                                                            discord_api_base=api)))
    try:
        guild, role, users = _world(runner, n)
        instances = container.instances()
        instances.create(INSTANCE, owner_id="usr_bench", name="Clube", actor="bench")
        instances.set_bot_token(INSTANCE, TOKEN, {"id": "1", "username": "bot",
                                                  "application_id": "1"}, actor="bench")
        instances.update_settings(INSTANCE, {"guild_id": guild}, actor="bench")
        rng = random.Random(seed)
        start = datetime.now(UTC) + timedelta(seconds=3)
        ends: dict[str, datetime] = {}
        with container.store().instance(INSTANCE) as uow:
            for user in users:
                end = start + timedelta(seconds=rng.uniform(0, hour / speedup))
                sub = Subscription(
                    id=f"sub_prod_bench_{user}", buyer_id=user, product_id="prod_bench",
                    variant_id="var_bench", product_name="Clube", variant_name="Mensal",
                    role_ids=[role], period_days=30, price_cents=2990,
                    status=SubscriptionStatus.ACTIVE, started_at=(end - timedelta(days=30))
                    .isoformat(), ends_at=end.isoformat(), created_at=start.isoformat(),
                    periods=[], roles_granted=True,
                )
                uow.subscriptions.add(sub.to_doc())
                ends[user] = end
            uow.commit()
        keeper = SubscriptionKeeper(container, interval=5.0)
        stop = asyncio.Event()
        task = asyncio.create_task(keeper.run(stop))
        deadline = time.time() + hour / speedup + 600
        while time.time() < deadline:
            await asyncio.sleep(0.5)
            if keeper.removed >= n:
                break
        stop.set()
        await asyncio.wait_for(task, 30)
        removed = {
            c.path.split("/members/")[1].split("/")[0]: c.at
            for c in runner.calls
            if c.method == "DELETE" and "/roles/" in c.path and c.status == 204
        }
        lags = [(removed[u] - ends[u].timestamp()) * speedup for u in users if u in removed]
        early = sum(1 for h in runner.rate_limited if not h.injected)
        return lags, early
    finally:
        container.store().close()
        runner.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subs", type=int, default=1000)
    parser.add_argument("--hour", type=float, default=3600.0)
    parser.add_argument("--speedup", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=18)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    with tempfile.TemporaryDirectory(prefix="astra-bench-subs-") as tmp:
        lags, early = asyncio.run(ours(args.subs, args.hour, args.speedup, args.seed,
                                       Path(tmp) / "data"))
    base = asyncio.run(ideal(args.subs, args.hour, args.speedup, args.seed))
    missing = args.subs - len(lags)
    print(f"subscriptions={args.subs} removed={len(lags)} missing={missing} "
          f"speedup={args.speedup:g} hour_s={args.hour:g}")
    p99, ideal_p99 = _p(lags, 0.99), _p(base, 0.99)
    print(f"RESULT expiry_lag_p99_s={p99:.1f} target<60")
    print(f"RESULT expiry_lag_p50_s={statistics.median(lags):.1f}")
    print(f"RESULT expiry_lag_vs_ideal ratio={p99 / max(ideal_p99, 0.001):.2f} "
          f"ideal_p99_s={ideal_p99:.1f}")
    print(f"RESULT rate_limit_early_retries={early}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
