"""An instance id that names no instance never creates anything on disk: every portal, admin and
internal route that takes an instance id, and every CLI command, tried with unknown (well-formed)
ids, as an attacker probing ids would; afterwards nothing new is under data/instances/."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from astra.entrypoints.admin.app import create_admin_app
from astra.entrypoints.cli import main as cli_main
from astra.entrypoints.internal.app import create_internal_app
from astra.entrypoints.portal.app import create_portal_app
from tests.integration.sales_world import INSTANCE, OWNER, make_shop

TOKEN = "admin-token-for-tests-0123456789"
UNKNOWN = ("loja-fantasma", "abc", "zzz-999")
_PARAM = re.compile(r"\{([^}]+)\}")


def _instances(data_dir: Path) -> list[str]:
    root = data_dir / "instances"
    return sorted(p.name for p in root.iterdir()) if root.is_dir() else []


def _paths(app: web.Application, instance_id: str) -> list[tuple[str, str]]:
    """Every route of `app` that names an instance in its path, filled with `instance_id`."""
    out = []
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        formatter = info.get("formatter")
        if not formatter or route.method == "HEAD":
            continue
        names = _PARAM.findall(formatter)
        if not names:
            continue
        values = {n: instance_id for n in names}
        out.append((route.method, formatter.format(**values)))
    return out


BODIES = ({}, {"instance": "loja-fantasma", "enabled": False, "blocked": True, "reason": "x",
               "name": "x", "token": "x" * 60, "days": 1, "settings": {"language": "en"}})


async def test_unknown_instance_ids_create_no_directory(data_dir: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    shop = make_shop(data_dir, keys=1, admin_token=TOKEN, runtime="process")
    container = shop.container
    before = _instances(data_dir)
    assert before == [INSTANCE]
    seller = container.accounts().register("dono@example.com", "correct horse battery", "Dono")
    container.plans().start_trial(seller["id"])

    portal = TestServer(create_portal_app(container))
    admin = TestServer(create_admin_app(container))
    internal = TestServer(create_internal_app(container))
    async with TestClient(portal) as p, TestClient(admin) as a, TestClient(internal) as i:
        resp = await p.post("/auth/local/login", json={"email": "dono@example.com",
                                                       "password": "correct horse battery"})
        csrf = (await resp.json())["csrf_token"]
        portal_headers = {"X-CSRF-Token": csrf}
        admin_headers = {"Authorization": f"Bearer {TOKEN}"}
        for instance_id in UNKNOWN:
            for client, app, headers in ((p, portal.app, portal_headers),
                                         (a, admin.app, admin_headers),
                                         (i, internal.app, {})):
                for method, path in _paths(app, instance_id):
                    for body in BODIES:
                        resp = await client.request(method, path, json=body, headers=headers)
                        assert resp.status < 500, (method, path, resp.status)
                        assert _instances(data_dir) == before, (method, path)
                for query in ("instance", "logs"):
                    for path in ("/api/orders", "/api/plugins", "/api/logs/recent",
                                 "/admin/runtime", "/admin/plugins", "/admin/operacao/pedidos",
                                 "/api/orders/retry-waiting-stock", "/api/posts",
                                 "/admin/suporte", "/admin/auditoria/publicacoes"):
                        method = "POST" if "retry" in path else "GET"
                        await client.request(method, f"{path}?{query}={instance_id}",
                                             headers=headers)
                        assert _instances(data_dir) == before, path
            # Ids in bodies of the admin API.
            for path, body in ((f"/api/customers/{'1' * 18}/block", {"instance": instance_id}),
                               ("/api/plugins/coupons", {"instance": instance_id,
                                                         "enabled": False})):
                resp = await a.post(path, json=body, headers=admin_headers)
                assert resp.status == 404, (path, resp.status)
                assert _instances(data_dir) == before, path
        # The seller's own routes with another seller's instance: 404, nothing written.
        for method, path in _paths(portal.app, INSTANCE):
            if path.startswith("/api/instances/"):
                resp = await p.request(method, path, json={}, headers=portal_headers)
                # 403: a money or credential route asks for the password before anything.
                assert resp.status in (403, 404, 405, 422), (method, path, resp.status)

    # The CLI, on every command that takes an instance.
    monkeypatch.setattr("sys.stdin", io.StringIO("x" * 60 + "\n"))
    monkeypatch.setenv("ASTRA_ADMIN_PANEL_TOKEN_UNUSED", "1")
    for instance_id in UNKNOWN:
        for args in (
            ["instance", "set-token", instance_id], ["instance", "rotate-key", instance_id],
            ["instance", "start", instance_id], ["instance", "stop", instance_id],
            ["instance", "restart", instance_id],
            ["product", "create", instance_id, "--name", "X", "--variant", "M=1,00"],
            ["product", "list", instance_id],
            ["stock", "import", instance_id, "prd_x", "var_x", "-"],
            ["coupon", "create", instance_id, "OFF", "--percent", "10"],
            ["coupon", "list", instance_id], ["coupon", "disable", instance_id, "OFF"],
            ["coupon", "enable", instance_id, "OFF"],
            ["orders", "list", instance_id], ["orders", "redeliver", instance_id, "ord_x"],
            ["plugins", "list", "--instance", instance_id],
            ["plugins", "disable", "coupons", "--instance", instance_id],
            ["plugins", "enable", "coupons", "--instance", instance_id],
            ["plugins", "reset", "coupons", "--instance", instance_id],
        ):
            code = cli_main(["--data-dir", str(data_dir), *args])
            assert code != 0, args
            assert _instances(data_dir) == before, args
    assert OWNER  # the shop's owner is untouched by all of it
