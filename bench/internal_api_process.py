"""The platform's internal API alone, in a process of its own, for benchmarks that must not
measure the platform and the fakes on one interpreter (bench/pool.py).

    python bench/internal_api_process.py DATA_DIR DISCORD_API_BASE PORT

Serves what `astra serve` serves to bot runtimes, on the data directory's store and secrets, plus
GET /_bench/beats: every instance's heartbeat as this process's board holds it (the board lives
in the process that serves the API, so the benchmark asks it here). Runs until SIGTERM.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


async def main(data_dir: Path, discord_api_base: str, port: int) -> None:
    from astra.container import build_container
    from astra.entrypoints.internal.app import create_internal_app
    from astra.settings import Settings, ensure_dev_secrets

    container = build_container(ensure_dev_secrets(Settings(
        data_dir=data_dir, discord_api_base=discord_api_base)))
    board = container.heartbeats()

    async def beats(request: web.Request) -> web.Response:
        ids = request.query.get("ids", "").split(",")
        return web.json_response({i: board(i) or {} for i in ids})

    app = create_internal_app(container)
    app.router.add_get("/_bench/beats", beats)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print("ready", flush=True)
    await stop.wait()
    await runner.cleanup()
    container.store().close()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])))
