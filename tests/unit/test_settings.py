from __future__ import annotations

import json
import multiprocessing
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from astra.settings import Settings, SettingsError, ensure_dev_secrets, load_settings

PROD_SECRETS = {
    "ASTRA_MODE": "production",
    "PORTAL_SESSION_SECRET": "session-secret-value-0123456789",
    "ADMIN_PANEL_TOKEN": "admin-token-value-0123456789",
    "ASTRA_MASTER_KEY": "master-key-value-0123456789",
    "ADMIN_PANEL_PASSWORD": "admin-password-value-0123",
}


def test_defaults_without_any_variable() -> None:
    s = Settings.from_env({}, env_file=None)

    assert s.mode == "development"
    assert s.data_dir == Path("data")
    assert (s.host, s.portal_port, s.admin_port) == ("127.0.0.1", 3100, 3000)
    assert s.platform_fee_bps == 600
    assert s.min_withdrawal_cents == 1000
    assert s.cart_ttl_seconds == 900
    assert s.mercadopago_api_base == "https://api.mercadopago.com"
    assert s.discord_api_base == "https://discord.com/api/v10"
    assert s.discord_oauth_base == "https://discord.com"
    assert (s.runtime, s.log_level, s.log_format) == ("auto", "info", "auto")
    assert s.session_secret == s.admin_token == s.master_key == ""
    assert s.admin_user == "admin"
    assert s.payments_sandbox is True
    assert s.allow_unsigned_webhooks is False
    assert (s.pool_grouping, s.process_isolation) == ("environment", "bwrap")
    assert s.secret_values() == ()


def test_reads_every_variable(tmp_path: Path) -> None:
    env = {
        "ASTRA_MODE": "Production",
        "ASTRA_DATA_DIR": str(tmp_path / "d"),
        "ASTRA_HOST": "0.0.0.0",
        "ASTRA_PORTAL_PORT": "8100",
        "ASTRA_ADMIN_PORT": " 8000 ",
        "ASTRA_PUBLIC_URL": "https://shop.example.com/",
        "PORTAL_SESSION_SECRET": "s" * 32,
        "ADMIN_PANEL_TOKEN": "t" * 32,
        "ADMIN_PANEL_USER": "root",
        "ADMIN_PANEL_PASSWORD": "p" * 12,
        "ASTRA_MASTER_KEY": "m" * 32,
        "MERCADOPAGO_ACCESS_TOKEN": "APP_USR-123",
        "MERCADOPAGO_WEBHOOK_SECRET": "w" * 32,
        "MERCADOPAGO_API_BASE": "http://127.0.0.1:9001",
        "DISCORD_API_BASE": "http://127.0.0.1:9002/api/v10/",
        "DISCORD_OAUTH_BASE": "http://127.0.0.1:9003",
        "DISCORD_CLIENT_ID": "1234",
        "DISCORD_CLIENT_SECRET": "c" * 32,
        "ASTRA_PLATFORM_FEE_BPS": "250",
        "ASTRA_MIN_WITHDRAWAL_CENTS": "0",
        "ASTRA_CART_TTL_SECONDS": "60",
        "ASTRA_RUNTIME": "process",
        "ASTRA_LOG_LEVEL": "DEBUG",
        "ASTRA_LOG_FORMAT": "json",
        "ASTRA_ALLOW_UNSIGNED_WEBHOOKS": "yes",
        "ASTRA_POOL_GROUPING": "Owner",
        "ASTRA_PROCESS_ISOLATION": "off",
    }
    s = Settings.from_env(env, env_file=None)

    assert s.mode == "production" and s.is_production
    assert s.data_dir == tmp_path / "d"
    assert (s.host, s.portal_port, s.admin_port) == ("0.0.0.0", 8100, 8000)
    assert s.public_url == "https://shop.example.com"
    assert s.discord_api_base == "http://127.0.0.1:9002/api/v10"
    assert s.mercadopago_api_base == "http://127.0.0.1:9001"
    assert s.admin_user == "root"
    assert s.discord_client_id == "1234"
    assert (s.platform_fee_bps, s.min_withdrawal_cents, s.cart_ttl_seconds) == (250, 0, 60)
    assert (s.runtime, s.log_level, s.log_format) == ("process", "debug", "json")
    assert s.allow_unsigned_webhooks is True
    assert (s.pool_grouping, s.process_isolation) == ("owner", "off")
    assert s.payments_sandbox is False
    assert set(s.secret_values()) == {
        "s" * 32,
        "t" * 32,
        "p" * 12,
        "m" * 32,
        "APP_USR-123",
        "w" * 32,
        "c" * 32,
    }
    s.require_production_secrets()


def test_empty_variable_falls_back_to_default() -> None:
    s = Settings.from_env({"ASTRA_PORTAL_PORT": "", "ASTRA_HOST": "  "}, env_file=None)
    assert (s.portal_port, s.host) == (3100, "127.0.0.1")


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("ASTRA_MODE", "staging", "must be one of development, production"),
        ("ASTRA_PORTAL_PORT", "http", "must be an integer"),
        ("ASTRA_ADMIN_PORT", "70000", "between 0 and 65535"),
        ("ASTRA_PLATFORM_FEE_BPS", "10001", "between 0 and 10000"),
        ("ASTRA_PLATFORM_FEE_BPS", "6.5", "must be an integer"),
        ("ASTRA_MIN_WITHDRAWAL_CENTS", "-1", ">= 0"),
        ("ASTRA_CART_TTL_SECONDS", "0", ">= 1"),
        ("ASTRA_RUNTIME", "kubernetes", "auto, docker, process"),
        ("ASTRA_LOG_FORMAT", "xml", "auto, json, console"),
        ("ASTRA_LOG_LEVEL", "verbose", "debug, info, warning, error, critical"),
        ("ASTRA_ALLOW_UNSIGNED_WEBHOOKS", "maybe", "must be 1/0"),
        ("MERCADOPAGO_API_BASE", "api.mercadopago.com", "http:// or https://"),
        ("ASTRA_PUBLIC_URL", "ftp://x", "http:// or https://"),
        ("ASTRA_POOL_GROUPING", "seller", "environment, owner"),
        ("ASTRA_PROCESS_ISOLATION", "docker", "bwrap, off"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str, fragment: str) -> None:
    with pytest.raises(SettingsError) as err:
        Settings.from_env({name: value}, env_file=None)
    assert len(err.value.problems) == 1
    assert err.value.problems[0].startswith(name)
    assert fragment in str(err.value)


def test_every_bad_value_is_reported_at_once() -> None:
    with pytest.raises(SettingsError) as err:
        Settings.from_env(
            {"ASTRA_MODE": "x", "ASTRA_PORTAL_PORT": "x", "ASTRA_RUNTIME": "x"}, env_file=None
        )
    assert [p.split()[0] for p in err.value.problems] == [
        "ASTRA_MODE",
        "ASTRA_PORTAL_PORT",
        "ASTRA_RUNTIME",
    ]


def test_same_port_twice_is_rejected_but_zero_is_allowed() -> None:
    with pytest.raises(SettingsError, match="must differ"):
        Settings.from_env({"ASTRA_PORTAL_PORT": "3000"}, env_file=None)
    s = Settings.from_env({"ASTRA_PORTAL_PORT": "0", "ASTRA_ADMIN_PORT": "0"}, env_file=None)
    assert (s.portal_port, s.admin_port) == (0, 0)


def test_repr_hides_secrets() -> None:
    s = Settings.from_env(
        {
            "PORTAL_SESSION_SECRET": "very-secret-session",
            "MERCADOPAGO_ACCESS_TOKEN": "APP_USR-999",
            "DISCORD_CLIENT_ID": "4242",
        },
        env_file=None,
    )
    text = repr(s)
    assert "very-secret-session" not in text and "APP_USR-999" not in text
    assert "session_secret='***'" in text
    assert "mercadopago_access_token='***'" in text
    assert "admin_token=''" in text
    assert "discord_client_id='4242'" in text
    assert str(s) == text
    assert "very-secret-session" not in f"{s}"


def test_env_file_is_read_and_real_environment_wins(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "# comment\n"
        "ASTRA_HOST=10.0.0.1\n"
        "ASTRA_PORTAL_PORT=4100\n"
        "PORTAL_SESSION_SECRET='from file'\n"
        "EMPTY_KEY\n"
    )
    s = Settings.from_env({"ASTRA_PORTAL_PORT": "5100"}, env_file=env_file)
    assert s.host == "10.0.0.1"
    assert s.portal_port == 5100
    assert s.session_secret == "from file"


def test_missing_env_file_is_fine(tmp_path: Path) -> None:
    s = Settings.from_env({"ASTRA_HOST": "::1"}, env_file=tmp_path / "absent.env")
    assert s.host == "::1"


def test_os_environ_is_the_default_source(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASTRA_CART_TTL_SECONDS", "123")
    assert Settings.from_env(env_file=None).cart_ttl_seconds == 123


def test_secret_errors_never_echo_a_secret_value() -> None:
    env = {**PROD_SECRETS, "MERCADOPAGO_ACCESS_TOKEN": "APP_USR-secret-token"}
    with pytest.raises(SettingsError) as err:
        Settings.from_env(env, env_file=None).require_production_secrets()
    message = str(err.value)
    assert "MERCADOPAGO_WEBHOOK_SECRET" in message
    for name, value in env.items():
        if name != "ASTRA_MODE":
            assert value not in message


def test_production_lists_every_missing_secret() -> None:
    s = Settings.from_env({"ASTRA_MODE": "production"}, env_file=None)
    with pytest.raises(SettingsError) as err:
        ensure_dev_secrets(s)
    message = str(err.value)
    for name in ("PORTAL_SESSION_SECRET", "ADMIN_PANEL_TOKEN", "ASTRA_MASTER_KEY",
                 "ADMIN_PANEL_PASSWORD", "MERCADOPAGO_ACCESS_TOKEN"):
        assert name in message
    assert len(err.value.problems) == 5
    assert "MERCADOPAGO_WEBHOOK_SECRET" not in message


def test_production_names_only_what_is_missing() -> None:
    env = {k: v for k, v in PROD_SECRETS.items() if k != "ADMIN_PANEL_TOKEN"}
    env["ASTRA_PAYMENTS"] = "sandbox"
    with pytest.raises(SettingsError) as err:
        load_settings(env, env_file=None)
    assert err.value.problems == ("ADMIN_PANEL_TOKEN is required in production mode",)


def test_production_with_all_secrets_is_untouched(tmp_path: Path) -> None:
    s = Settings.from_env({**PROD_SECRETS, "ASTRA_DATA_DIR": str(tmp_path),
                           "ASTRA_PAYMENTS": "sandbox"}, env_file=None)
    assert ensure_dev_secrets(s) is s
    assert not (tmp_path / ".secrets.json").exists()


def test_production_access_token_needs_webhook_secret() -> None:
    env = {**PROD_SECRETS, "MERCADOPAGO_ACCESS_TOKEN": "APP_USR-1"}
    with pytest.raises(SettingsError) as err:
        load_settings(env, env_file=None)
    assert len(err.value.problems) == 1
    assert "MERCADOPAGO_WEBHOOK_SECRET" in err.value.problems[0]
    assert "ASTRA_ALLOW_UNSIGNED_WEBHOOKS=1" in err.value.problems[0]

    assert load_settings({**env, "ASTRA_ALLOW_UNSIGNED_WEBHOOKS": "1"}, env_file=None)
    assert load_settings({**env, "MERCADOPAGO_WEBHOOK_SECRET": "w" * 20}, env_file=None)


def test_production_webhook_secret_listed_with_the_others() -> None:
    env = {"ASTRA_MODE": "production", "MERCADOPAGO_ACCESS_TOKEN": "APP_USR-1"}
    with pytest.raises(SettingsError) as err:
        Settings.from_env(env, env_file=None).require_production_secrets()
    assert [p.split()[0] for p in err.value.problems] == [
        "PORTAL_SESSION_SECRET",
        "ADMIN_PANEL_TOKEN",
        "ASTRA_MASTER_KEY",
        "ADMIN_PANEL_PASSWORD",
        "MERCADOPAGO_WEBHOOK_SECRET",
    ]


def test_dev_secrets_are_generated_persisted_and_reused(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = {"ASTRA_DATA_DIR": str(data_dir)}

    first = load_settings(env, env_file=None)
    path = data_dir / ".secrets.json"
    assert path.is_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first.session_secret) >= 32
    assert len({first.session_secret, first.admin_token, first.master_key}) == 3

    second = Settings.from_env(env, env_file=None).with_dev_secrets()
    assert (second.session_secret, second.admin_token, second.master_key) == (
        first.session_secret,
        first.admin_token,
        first.master_key,
    )
    stored = json.loads(path.read_text())
    # named as the README's variables: an operator can move them into .env as they are
    assert stored == {
        "PORTAL_SESSION_SECRET": first.session_secret,
        "ADMIN_PANEL_TOKEN": first.admin_token,
        "ASTRA_MASTER_KEY": first.master_key,
        "ADMIN_PANEL_PASSWORD": first.admin_password,
    }
    assert len(first.admin_password) >= 20 and first.generated_secrets
    assert second.admin_password == first.admin_password and second.generated_secrets == ()
    assert [p.name for p in data_dir.iterdir()] == [".secrets.json"]


def test_an_older_secrets_file_keeps_its_values_and_gains_an_admin_password(
        tmp_path: Path) -> None:
    path = tmp_path / ".secrets.json"
    old = {"session_secret": "s" * 43, "admin_token": "t" * 43, "master_key": "m" * 43}
    path.write_text(json.dumps(old))
    path.chmod(0o600)
    s = load_settings({"ASTRA_DATA_DIR": str(tmp_path)}, env_file=None)
    assert (s.session_secret, s.admin_token, s.master_key) == ("s" * 43, "t" * 43, "m" * 43)
    assert s.admin_password and s.generated_secrets == ("admin_password",)
    assert json.loads(path.read_text()) == {
        "PORTAL_SESSION_SECRET": "s" * 43, "ADMIN_PANEL_TOKEN": "t" * 43,
        "ASTRA_MASTER_KEY": "m" * 43, "ADMIN_PANEL_PASSWORD": s.admin_password}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = load_settings({"ASTRA_DATA_DIR": str(tmp_path)}, env_file=None)
    assert again.admin_password == s.admin_password and again.generated_secrets == ()
    assert [p.name for p in tmp_path.iterdir()] == [".secrets.json"]


def test_an_admin_password_from_the_environment_is_not_generated(tmp_path: Path) -> None:
    s = load_settings({"ASTRA_DATA_DIR": str(tmp_path), "ADMIN_PANEL_PASSWORD": "mine-1234"},
                      env_file=None)
    assert s.admin_password == "mine-1234" and "admin_password" not in s.dev_secrets


def test_dev_secrets_from_environment_win_over_the_file(tmp_path: Path) -> None:
    env = {"ASTRA_DATA_DIR": str(tmp_path)}
    generated = load_settings(env, env_file=None)
    s = load_settings({**env, "ADMIN_PANEL_TOKEN": "explicit-admin-token"}, env_file=None)
    assert s.admin_token == "explicit-admin-token"
    assert s.master_key == generated.master_key


def test_dev_secrets_file_not_needed_when_all_set(tmp_path: Path) -> None:
    env = {k: v for k, v in PROD_SECRETS.items() if k != "ASTRA_MODE"}
    s = Settings.from_env({**env, "ASTRA_DATA_DIR": str(tmp_path)}, env_file=None)
    assert ensure_dev_secrets(s) is s
    assert list(tmp_path.iterdir()) == []


def test_corrupt_dev_secrets_file_is_an_error_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / ".secrets.json"
    path.write_text("{not json")
    with pytest.raises(SettingsError, match=r"\.secrets\.json"):
        load_settings({"ASTRA_DATA_DIR": str(tmp_path)}, env_file=None)
    assert path.read_text() == "{not json"

    path.write_text(json.dumps({"session_secret": "x"}))
    with pytest.raises(SettingsError, match="ASTRA_MASTER_KEY"):
        load_settings({"ASTRA_DATA_DIR": str(tmp_path)}, env_file=None)


def _load_master_key(data_dir: str, barrier: Any, out: Any) -> None:
    barrier.wait()
    out.put(load_settings({"ASTRA_DATA_DIR": data_dir}, env_file=None).master_key)


def test_processes_starting_together_agree_on_one_set(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork" if hasattr(os, "fork") else "spawn")
    n = 6
    barrier = ctx.Barrier(n)
    out = ctx.Queue()
    procs = [
        ctx.Process(target=_load_master_key, args=(str(tmp_path), barrier, out)) for _ in range(n)
    ]
    for p in procs:
        p.start()
    keys = [out.get(timeout=30) for _ in range(n)]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    assert len(set(keys)) == 1
    assert json.loads((tmp_path / ".secrets.json").read_text())["ASTRA_MASTER_KEY"] == keys[0]
    assert [p.name for p in tmp_path.iterdir()] == [".secrets.json"]


def _load_admin_password(data_dir: str, barrier: Any, out: Any) -> None:
    barrier.wait()
    out.put(load_settings({"ASTRA_DATA_DIR": data_dir}, env_file=None).admin_password)


def test_processes_upgrading_an_older_file_together_agree_on_one_password(
        tmp_path: Path) -> None:
    path = tmp_path / ".secrets.json"
    path.write_text(json.dumps({"session_secret": "s" * 43, "admin_token": "t" * 43,
                                "master_key": "m" * 43}))
    ctx = multiprocessing.get_context("fork" if hasattr(os, "fork") else "spawn")
    n = 6
    barrier = ctx.Barrier(n)
    out = ctx.Queue()
    procs = [ctx.Process(target=_load_admin_password, args=(str(tmp_path), barrier, out))
             for _ in range(n)]
    for p in procs:
        p.start()
    passwords = [out.get(timeout=30) for _ in range(n)]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    assert len(set(passwords)) == 1
    stored = json.loads(path.read_text())
    assert stored["ADMIN_PANEL_PASSWORD"] == passwords[0] and stored["ASTRA_MASTER_KEY"] == "m" * 43
    assert [p.name for p in tmp_path.iterdir()] == [".secrets.json"]


def test_trusted_proxies_and_the_instance_cap_are_read_and_checked() -> None:
    s = Settings.from_env({"ASTRA_TRUSTED_PROXIES": "10.0.0.1, 172.16.0.0/12,::1",
                           "ASTRA_PLAN_MAX_INSTANCES": "5"}, env_file=None)
    assert s.trusted_proxies == ("10.0.0.1/32", "172.16.0.0/12", "::1/128")
    assert s.max_instances_per_seller == 5
    defaults = Settings.from_env({}, env_file=None)
    assert defaults.trusted_proxies == () and defaults.max_instances_per_seller == 3
    with pytest.raises(SettingsError) as err:
        Settings.from_env({"ASTRA_TRUSTED_PROXIES": "10.0.0.1,proxy.local",
                           "ASTRA_PLAN_MAX_INSTANCES": "0"}, env_file=None)
    text = " ".join(err.value.problems)
    assert "ASTRA_TRUSTED_PROXIES" in text and "'proxy.local'" in text
    assert "ASTRA_PLAN_MAX_INSTANCES" in text


@pytest.mark.parametrize("network", ["host", "none", "bridge", "container:platform"])
def test_runtime_network_is_never_host_or_shared(network: str) -> None:
    with pytest.raises(SettingsError, match="ASTRA_DOCKER_NETWORK"):
        Settings.from_env({"ASTRA_DOCKER_NETWORK": network}, env_file=None)


def test_internal_api_has_its_own_port() -> None:
    s = Settings.from_env({}, env_file=None)
    assert (s.internal_host, s.internal_port, s.docker_network) == ("", 3200, "astra-runtimes")
    with pytest.raises(SettingsError, match="ASTRA_ADMIN_PORT and ASTRA_INTERNAL_PORT"):
        Settings.from_env({"ASTRA_ADMIN_PORT": "3200"}, env_file=None)


def test_production_never_falls_back_to_simulated_payments() -> None:
    """No access token in production is a start-up error naming ASTRA_PAYMENTS, unless
    ASTRA_PAYMENTS=sandbox says simulated payments are meant."""
    with pytest.raises(SettingsError) as err:
        load_settings(PROD_SECRETS, env_file=None)
    assert err.value.problems == (
        "MERCADOPAGO_ACCESS_TOKEN is required in production mode (or set ASTRA_PAYMENTS=sandbox"
        " to run on simulated payments, where no money moves)",
    )
    chosen = load_settings({**PROD_SECRETS, "ASTRA_PAYMENTS": "sandbox"}, env_file=None)
    assert chosen.payments == "sandbox" and chosen.payments_sandbox
    # A token with ASTRA_PAYMENTS=sandbox: the explicit choice wins, and no webhook secret is
    # asked for (the sandbox sends no webhooks from Mercado Pago).
    both = load_settings({**PROD_SECRETS, "ASTRA_PAYMENTS": "SANDBOX",
                          "MERCADOPAGO_ACCESS_TOKEN": "APP_USR-1"}, env_file=None)
    assert both.payments_sandbox
    real = load_settings({**PROD_SECRETS, "MERCADOPAGO_ACCESS_TOKEN": "APP_USR-1",
                          "MERCADOPAGO_WEBHOOK_SECRET": "w" * 20}, env_file=None)
    assert real.payments == "auto" and not real.payments_sandbox


def test_development_defaults_to_the_sandbox_and_asks_for_a_token_when_told_otherwise() -> None:
    assert Settings.from_env({}, env_file=None).payments_sandbox
    assert not Settings.from_env({"MERCADOPAGO_ACCESS_TOKEN": "TEST-1"},
                                 env_file=None).payments_sandbox
    for value, fragment in (("mercadopago", "needs MERCADOPAGO_ACCESS_TOKEN"),
                            ("paypal", "must be mercadopago or sandbox")):
        with pytest.raises(SettingsError) as err:
            Settings.from_env({"ASTRA_PAYMENTS": value}, env_file=None)
        assert err.value.problems[0].startswith("ASTRA_PAYMENTS ")
        assert fragment in err.value.problems[0]
    assert not Settings.from_env({"ASTRA_PAYMENTS": "mercadopago",
                                  "MERCADOPAGO_ACCESS_TOKEN": "TEST-1"},
                                 env_file=None).payments_sandbox


def test_a_production_container_never_builds_the_sandbox_by_omission(tmp_path: Path) -> None:
    """Settings made without the start-up check (a script, a test) still get no sandbox."""
    from astra.container import build_container

    env = {**PROD_SECRETS, "ASTRA_DATA_DIR": str(tmp_path)}
    container = build_container(Settings.from_env(env, env_file=None))
    with pytest.raises(SettingsError) as err:
        container.gateway()
    assert "ASTRA_PAYMENTS=sandbox" in str(err.value)
    chosen = build_container(Settings.from_env({**env, "ASTRA_PAYMENTS": "sandbox"},
                                               env_file=None))
    assert chosen.gateway().simulated
