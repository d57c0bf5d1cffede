"""Big stock imports through the portal (real server, real JSON store, the real importer loop):
a file of more than one chunk answers 202 with a job at once, the job's status route follows it
to its report, and another seller sees nothing of it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from astra.entrypoints.stock_importer import StockImporter
from tests.integration.test_portal_api import TWO_VARIANTS, Portal, running_portal, shop

pytestmark = pytest.mark.filterwarnings("ignore:'audioop' is deprecated:DeprecationWarning")

BASE = "/api/instances/loja-ana"


@pytest.fixture
async def portal(tmp_path: Path) -> AsyncIterator[Portal]:
    async with running_portal(tmp_path) as world:
        stop = asyncio.Event()
        loop = asyncio.ensure_future(
            StockImporter(world.container.catalog().imports, scan_seconds=0.5).run(stop)
        )
        try:
            yield world
        finally:
            stop.set()
            await loop


async def test_a_big_import_runs_as_a_job_the_seller_can_watch(portal: Portal) -> None:
    seller = await portal.seller("ana@example.com")
    await shop(seller, "loja-ana")
    status, product = await seller.post(f"{BASE}/products", json=TWO_VARIANTS)
    assert status == 201
    pid, vid = product["id"], product["variants"][0]["id"]
    keys = [f"JOB-{i:05d}-ABCD" for i in range(6000)]

    # Small: done at once, the report in the answer.
    status, report = await seller.post(f"{BASE}/stock/{pid}",
                                       json={"variant_id": vid, "keys": keys[:5]})
    assert status == 200 and report["added"] == 5

    # Big (and as a file upload, as the stock form sends it): 202 and the job.
    from aiohttp import FormData

    form = FormData()
    form.add_field("variant_id", vid)
    form.add_field("file", "\n".join(keys).encode(), filename="keys.txt",
                   content_type="text/plain")
    status, job = await seller.post(f"{BASE}/stock/{pid}", data=form)
    assert status == 202, job
    assert job["state"] == "running" and job["total"] == 6000 and job["processed"] == 0
    assert job["report"]["duplicate_in_file"] == 0
    status, listing = await seller.get(f"{BASE}/stock-jobs")
    assert status == 200 and [j["id"] for j in listing["jobs"]] in ([job["id"]], [])

    seen = set()
    for _ in range(200):
        status, view = await seller.get(f"{BASE}/stock-jobs/{job['id']}")
        assert status == 200
        seen.add(view["percent"])
        if view["state"] != "running":
            break
        await asyncio.sleep(0.02)
    assert view["state"] == "done", view
    assert view["percent"] == 100 and view["processed"] == 6000
    assert view["report"]["added"] == 5995 and view["report"]["already_in_stock"] == 5
    raw = b"".join(seller.bodies)
    assert not any(k.encode() in raw for k in keys[:50])  # no key in any answer

    status, counts = await seller.get(f"{BASE}/stock/{pid}")
    assert counts["variants"][0]["available"] == 6000
    status, listing = await seller.get(f"{BASE}/stock-jobs")
    assert listing["jobs"] == []  # none still going

    # Another seller, an unknown job, a bad id: 404 / 404 / 422, never a 500.
    other = await portal.seller("bea@example.com")
    status, _ = await other.get(f"{BASE}/stock-jobs/{job['id']}")
    assert status == 404
    status, _ = await seller.get(f"{BASE}/stock-jobs/sjob_nope")
    assert status == 404
    status, _ = await seller.get(f"{BASE}/stock-jobs/{'x' * 80}")
    assert status == 422
