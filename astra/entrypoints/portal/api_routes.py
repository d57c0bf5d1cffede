"""The seller's JSON API: its route table, under the route names of the original portal
(DESIGN.md, "Entrypoints"). Every route needs a logged-in seller; every route with an instance
in its path answers only that instance's owner. Described at /api/openapi.json.
"""

from __future__ import annotations

from aiohttp import web

from astra.container import Container
from astra.entrypoints.portal import (
    account_api,
    discord_api,
    instance_api,
    openapi,
    plan_checkout,
    plans_api,
    store_api,
    subscriptions_api,
    token_api,
    wallet_api,
    webhook_api,
)
from astra.entrypoints.portal.seller_api import CONTAINER_KEY

INSTANCE = "/api/instances/{id}"


def add_routes(app: web.Application, container: Container) -> None:
    app[CONTAINER_KEY] = container
    r = app.router

    r.add_get("/api/instances", instance_api.list_instances)
    r.add_post("/api/instances", instance_api.create_instance)
    r.add_get(INSTANCE, instance_api.get_instance)
    r.add_patch(INSTANCE, instance_api.update_instance)
    # The original portal's verbs (integrations that point at it): same handlers, same checks.
    r.add_put(INSTANCE, instance_api.update_instance)
    r.add_delete(INSTANCE, instance_api.delete_instance)
    r.add_put(f"{INSTANCE}/bot-token", instance_api.set_bot_token)
    r.add_delete(f"{INSTANCE}/bot-token", instance_api.clear_bot_token)
    r.add_post(f"{INSTANCE}/bot/start", instance_api.start_bot)
    r.add_post(f"{INSTANCE}/bot/stop", instance_api.stop_bot)
    r.add_post(f"{INSTANCE}/bot/restart", instance_api.restart_bot)
    r.add_post(f"{INSTANCE}/rotate-key", instance_api.rotate_key)
    r.add_get(f"{INSTANCE}/status", instance_api.instance_status)
    r.add_get(f"{INSTANCE}/invite", instance_api.invite)

    r.add_get(f"{INSTANCE}/products", store_api.list_products)
    r.add_post(f"{INSTANCE}/products", store_api.create_product)
    r.add_post(f"{INSTANCE}/products/preview", store_api.preview_product)
    r.add_get(f"{INSTANCE}/products/{{productId}}", store_api.get_product)
    r.add_patch(f"{INSTANCE}/products/{{productId}}", store_api.update_product)
    r.add_put(f"{INSTANCE}/products/{{productId}}", store_api.update_product)
    r.add_delete(f"{INSTANCE}/products/{{productId}}", store_api.delete_product)
    r.add_post(f"{INSTANCE}/stock/{{productId}}", store_api.import_stock)
    r.add_get(f"{INSTANCE}/stock/{{productId}}", store_api.stock_counts)
    r.add_get(f"{INSTANCE}/stock/{{productId}}/keys", store_api.list_stock_keys)
    r.add_post(f"{INSTANCE}/stock/{{productId}}/remove", store_api.remove_stock_keys)
    r.add_get(f"{INSTANCE}/stock-jobs", store_api.stock_jobs)
    r.add_get(f"{INSTANCE}/stock-jobs/{{jobId}}", store_api.stock_job)
    r.add_get(f"{INSTANCE}/coupons", store_api.list_coupons)
    r.add_post(f"{INSTANCE}/coupons", store_api.create_coupon)
    r.add_post(f"{INSTANCE}/coupons/{{code}}/disable", store_api.disable_coupon)
    r.add_post(f"{INSTANCE}/coupons/{{code}}/enable", store_api.enable_coupon)
    r.add_get(f"{INSTANCE}/orders", store_api.list_orders)
    r.add_get(f"{INSTANCE}/discord/channels", discord_api.list_channels)
    r.add_post(f"{INSTANCE}/discord/post-product", discord_api.post_product)
    subscriptions_api.add_routes(r, INSTANCE)
    r.add_get("/api/templates", store_api.template_help)

    r.add_patch("/api/me", account_api.update_profile)

    r.add_get("/api/plans/catalog", plans_api.plan_catalog)
    r.add_post("/api/plans/trial", plans_api.start_trial)
    r.add_post("/api/checkout/plan", plans_api.checkout_plan)
    plan_checkout.add_routes(app)
    token_api.add_routes(app)
    webhook_api.add_routes(app, INSTANCE)

    r.add_get("/api/wallet/transactions", wallet_api.transactions)
    r.add_get("/api/wallet/withdrawals", wallet_api.list_withdrawals)
    r.add_post("/api/wallet/withdrawals", wallet_api.request_withdrawal)
    r.add_post("/api/wallet/withdrawals/{withdrawal_id}/cancel", wallet_api.cancel_withdrawal)

    openapi.add_routes(app, title="Astra portal")
