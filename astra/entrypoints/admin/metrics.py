"""`GET /metrics`: Prometheus text exposition (behind the admin token like the rest)."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from astra.domain.services.reporting import Reporting

CONTAINER_KEY = web.AppKey("metrics_container", object)


def _label(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")


def collect(container: Any) -> str:
    store = container.store()
    overview = Reporting(store, container.clock()).overview()
    lines = [
        "# HELP astra_orders Orders by status, all instances.",
        "# TYPE astra_orders gauge",
    ]
    for status, count in sorted(overview["orders_by_status"].items()):
        lines.append(f'astra_orders{{status="{_label(status)}"}} {count}')
    lines += ["# HELP astra_gmv_cents Paid order totals.", "# TYPE astra_gmv_cents gauge",
              f"astra_gmv_cents {overview['gmv_cents']}",
              "# HELP astra_platform_fees_cents Platform fees earned.",
              "# TYPE astra_platform_fees_cents gauge",
              f"astra_platform_fees_cents {overview['platform_fees_cents']}"]
    pending = attempts = failed = 0
    for instance_id in store.instance_ids():
        with store.instance(instance_id, write=False) as uow:
            for d in uow.deliveries.all():
                attempts += len(d.get("attempts") or [])
                pending += d["status"] == "pending"
                failed += d["status"] == "failed"
    lines += ["# HELP astra_delivery_queue_depth Deliveries waiting to be sent.",
              "# TYPE astra_delivery_queue_depth gauge", f"astra_delivery_queue_depth {pending}",
              "# HELP astra_delivery_failed Deliveries that ran out of retries.",
              "# TYPE astra_delivery_failed gauge", f"astra_delivery_failed {failed}",
              "# HELP astra_delivery_attempts_total Delivery attempts made.",
              "# TYPE astra_delivery_attempts_total counter",
              f"astra_delivery_attempts_total {attempts}",
              "# HELP astra_instances Instances by runtime status.",
              "# TYPE astra_instances gauge"]
    for status, count in sorted(overview["instances"].items()):
        lines.append(f'astra_instances{{status="{_label(status)}"}} {count}')
    lines += ["# HELP astra_plugin_errors_total Plugin failures isolated in this process.",
              "# TYPE astra_plugin_errors_total counter"]
    for plugin in container.plugins().plugins():
        lines.append(f'astra_plugin_errors_total{{plugin="{_label(plugin["name"])}"}} '
                     f'{plugin.get("errors", 0)}')
    stats = container.webhook_stats()
    lines += ["# HELP astra_webhooks_total Mercado Pago notifications by outcome.",
              "# TYPE astra_webhooks_total counter"]
    for outcome in ("accepted", "rejected", "ignored", "processed", "failed"):
        lines.append(f'astra_webhooks_total{{outcome="{outcome}"}} {getattr(stats, outcome)}')
    latencies = sorted(stats.latencies)
    lines += ["# HELP astra_webhook_latency_seconds From acceptance to settled order.",
              "# TYPE astra_webhook_latency_seconds summary"]
    for q in (0.5, 0.9, 0.99):
        value = latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else 0
        lines.append(f'astra_webhook_latency_seconds{{quantile="{q}"}} {value:.4f}')
    lines.append(f"astra_webhook_latency_seconds_count {len(latencies)}")
    return "\n".join(lines) + "\n"


async def metrics(request: web.Request) -> web.Response:
    text = await asyncio.to_thread(collect, request.app[CONTAINER_KEY])
    return web.Response(text=text, content_type="text/plain", charset="utf-8",
                        headers={"X-Content-Type-Options": "nosniff"})
