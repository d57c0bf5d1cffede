"""Portal accounts through a real aiohttp server, a real JSON store and the fake Discord OAuth2:
sign-up, login, lockout and throttling, sessions and CSRF, password change, Discord login/link."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from dependency_injector import providers

from astra.adapters.clock import FrozenClock
from astra.container import Container, build_container
from astra.domain.errors import InvalidInput
from astra.domain.services.accounts import AccountLocked, InvalidCredentials, TooManyAttempts
from astra.entrypoints.portal.app import create_portal_app
from astra.entrypoints.portal.sessions import COOKIE
from astra.settings import Settings, ensure_dev_secrets
from tests.fakes.discord_oauth import FakeDiscordOAuth

PASSWORD = "correct horse battery"
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@dataclass
class Portal:
    container: Container
    clock: FrozenClock
    server: TestServer
    discord: FakeDiscordOAuth
    clients: list[TestClient]

    async def client(self) -> TestClient:
        client = TestClient(self.server)
        await client.start_server()
        self.clients.append(client)
        return client

    def user(self, email: str) -> dict[str, Any] | None:
        with self.container.store().portal(write=False) as uow:
            return uow.users.first(email=email)

    def audit_actions(self) -> list[str]:
        with self.container.store().portal(write=False) as uow:
            return [e["action"] for e in uow.repo("audit").all()]


def _settings(data_dir: Path, discord: FakeDiscordOAuth, **extra: Any) -> Settings:
    return ensure_dev_secrets(
        Settings(
            data_dir=data_dir,
            discord_oauth_base=discord.oauth_base,
            discord_api_base=discord.api_base,
            discord_client_id=discord.client_id,
            discord_client_secret=discord.client_secret,
            **extra,
        )
    )


def _container(settings: Settings, clock: FrozenClock) -> Container:
    container = build_container(settings)
    container.clock.override(providers.Object(clock))
    return container


@pytest.fixture
async def portal(data_dir: Path) -> AsyncIterator[Portal]:
    discord = FakeDiscordOAuth()
    await discord.start()
    clock = FrozenClock(NOW)
    container = _container(_settings(data_dir, discord), clock)
    server = TestServer(create_portal_app(container))
    world = Portal(container, clock, server, discord, [])
    try:
        yield world
    finally:
        for client in world.clients:
            await client.close()
        await server.close()
        await discord.stop()


async def _register(client: TestClient, email: str, name: str = "Ana") -> dict[str, Any]:
    resp = await client.post(
        "/auth/local/register", json={"email": email, "password": PASSWORD, "name": name}
    )
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def _login(client: TestClient, email: str, password: str = PASSWORD) -> ClientResponse:
    return await client.post("/auth/local/login", json={"email": email, "password": password})


async def _me(client: TestClient) -> ClientResponse:
    return await client.get("/api/me")


# -- sign-up ------------------------------------------------------------------------------------


async def test_register_with_json_starts_a_session(portal: Portal) -> None:
    client = await portal.client()
    body = await _register(client, "  Ana@Example.COM ", name="Ana Lima")
    assert body["user"]["email"] == "ana@example.com"
    assert body["user"]["name"] == "Ana Lima"
    assert body["user"]["role"] == "customer"
    assert body["user"]["id"].startswith("usr_")
    assert body["csrf_token"]
    assert "password_hash" not in body["user"]
    resp = await _me(client)
    assert resp.status == 200
    me = await resp.json()
    assert me["user"]["id"] == body["user"]["id"]
    assert me["csrf_token"] == body["csrf_token"]
    assert me["plan"] == {
        "kind": "none",
        "active": False,
        "until": None,
        "days_left": 0,
        "trial_used": False,
    }
    stored = portal.user("ana@example.com")
    assert stored is not None
    assert stored["password_hash"].startswith("$argon2id$")
    assert stored["session_version"] == 0 and stored["discord_id"] is None
    assert stored["plan"] is None and stored["trial_used_at"] is None
    assert stored["blocked"] is False
    assert "account.registered" in portal.audit_actions()


async def test_register_with_a_form_redirects_to_the_dashboard(portal: Portal) -> None:
    client = await portal.client()
    resp = await client.post(
        "/auth/local/register",
        data={"email": "form@example.com", "password": PASSWORD, "name": "Formulário"},
        allow_redirects=False,
    )
    assert resp.status == 303
    assert resp.headers["Location"] == "/dashboard"
    cookie = resp.cookies[COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    assert (await _me(client)).status == 200
    # A form login may name where to land, but only on this site.
    other = await portal.client()
    resp = await other.post(
        "/auth/local/login",
        data={"email": "form@example.com", "password": PASSWORD, "next": "//evil.example/x"},
        allow_redirects=False,
    )
    assert resp.status == 303 and resp.headers["Location"] == "/dashboard"
    resp = await other.post(
        "/auth/local/login",
        data={"email": "form@example.com", "password": PASSWORD, "next": "/loja"},
        allow_redirects=False,
    )
    assert resp.headers["Location"] == "/loja"
    # A form posted from another site is refused (it would log the visitor in as someone else).
    stranger = await portal.client()
    resp = await stranger.post(
        "/auth/local/login",
        data={"email": "form@example.com", "password": PASSWORD},
        headers={"Origin": "https://evil.example"},
        allow_redirects=False,
    )
    assert resp.status == 403 and (await resp.json())["error"] == "cross_site_form"
    assert (await _me(stranger)).status == 401
    resp = await stranger.post(
        "/auth/local/login",
        data={"email": "form@example.com", "password": PASSWORD},
        headers={"Origin": str(stranger.make_url("")).rstrip("/")},
        allow_redirects=False,
    )
    assert resp.status == 303


async def test_register_refuses_bad_input_with_clear_4xx(portal: Portal) -> None:
    client = await portal.client()
    await _register(client, "dup@example.com")
    cases = [
        ({"email": "DUP@example.com", "password": PASSWORD, "name": "X"}, 422, "email_taken"),
        ({"email": "x@example.com", "password": "short", "name": "X"}, 422, "password_length"),
        ({"email": "x@example.com", "password": "a" * 129, "name": "X"}, 422, "password_length"),
        (
            {"email": "x@example.com", "password": "aaaaaaaaaa", "name": "X"},
            422,
            "password_too_simple",
        ),
        ({"email": "not-an-email", "password": PASSWORD, "name": "X"}, 422, "invalid_email"),
        ({"email": "x@example.com", "password": PASSWORD, "name": ""}, 422, "invalid_name"),
        ({"email": "x@example.com", "password": PASSWORD, "name": "n" * 81}, 422, "invalid_name"),
        ({"email": 5, "password": None, "name": []}, 422, "invalid_email"),
    ]
    fresh = await portal.client()
    for body, status, code in cases:
        resp = await fresh.post("/auth/local/register", json=body)
        assert resp.status == status, (body, await resp.text())
        error = await resp.json()
        assert error["error"] == code
        assert error["message"] and error["message"] != code  # a sentence, in pt-BR
    resp = await fresh.post(
        "/auth/local/register", data=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert resp.status == 400 and (await resp.json())["error"] == "malformed_json"
    resp = await fresh.post("/auth/local/register", json=["a", "b"])
    assert resp.status == 400
    resp = await fresh.post(
        "/auth/local/register", data=b"hello", headers={"Content-Type": "text/plain"}
    )
    assert resp.status == 415 and (await resp.json())["error"] == "unsupported_body"
    assert (await _me(fresh)).status == 401
    with portal.container.store().portal(write=False) as uow:
        assert uow.users.count() == 1
    # English on request.
    fresh.session.cookie_jar.update_cookies({"lang": "en"})
    resp = await fresh.post("/auth/local/register", json=cases[0][0])
    assert (await resp.json())["message"].startswith("An account with this e-mail")


# -- login, lockout, throttling ----------------------------------------------------------------


async def test_login_ok_and_bad(portal: Portal) -> None:
    await _register(await portal.client(), "bia@example.com")
    client = await portal.client()
    resp = await _login(client, "bia@example.com", "wrong password")
    assert resp.status == 401
    wrong = await resp.json()
    assert wrong["error"] == "invalid_credentials"
    assert (await _me(client)).status == 401
    # An unknown e-mail gets exactly the same answer.
    resp = await _login(client, "nobody@example.com", "wrong password")
    assert resp.status == 401 and await resp.json() == wrong
    resp = await _login(client, " BIA@example.com ")
    assert resp.status == 200
    body = await resp.json()
    assert body["user"]["email"] == "bia@example.com" and body["csrf_token"]
    assert (await _me(client)).status == 200
    actions = portal.audit_actions()
    assert actions.count("account.login_failed") == 2 and "account.login" in actions


async def test_lockout_after_five_failures_then_unlock_after_fifteen_minutes(
    portal: Portal, data_dir: Path
) -> None:
    await _register(await portal.client(), "cai@example.com")
    client = await portal.client()
    for _ in range(4):
        assert (await _login(client, "cai@example.com", "bad password")).status == 401
    resp = await _login(client, "cai@example.com", "bad password")
    assert resp.status == 423
    assert (await resp.json())["error"] == "account_locked"
    assert int(resp.headers["Retry-After"]) == 15 * 60
    # The right password is refused too while the lock holds.
    resp = await _login(client, "cai@example.com")
    assert resp.status == 423 and int(resp.headers["Retry-After"]) > 0
    assert (await _me(client)).status == 401
    # The lock is in the user's document, for this source: another process sees it.
    stored = portal.user("cai@example.com")
    assert stored is not None and stored["login_guards"]["127.0.0.1"]["locked_until"]
    other_process = _container(portal.container.settings(), portal.clock)
    with pytest.raises(AccountLocked):
        other_process.accounts().authenticate("cai@example.com", PASSWORD, client="127.0.0.1")
    assert "account.locked" in portal.audit_actions()

    portal.clock.advance(timedelta(minutes=14))
    assert (await _login(client, "cai@example.com")).status == 423
    portal.clock.advance(timedelta(minutes=1, seconds=1))
    resp = await _login(client, "cai@example.com")
    assert resp.status == 200
    assert "127.0.0.1" not in portal.user("cai@example.com")["login_guards"]  # type: ignore[index]


async def test_unknown_emails_lock_exactly_like_known_ones(portal: Portal) -> None:
    client = await portal.client()
    statuses = [
        (await _login(client, "ghost@example.com", "bad password")).status for _ in range(6)
    ]
    assert statuses == [401, 401, 401, 401, 423, 423]


async def test_failures_spread_over_time_do_not_lock(portal: Portal) -> None:
    await _register(await portal.client(), "dan@example.com")
    client = await portal.client()
    for _ in range(8):
        assert (await _login(client, "dan@example.com", "bad password")).status == 401
        portal.clock.advance(timedelta(minutes=3))
    assert (await _login(client, "dan@example.com")).status == 200


async def test_per_client_limit(portal: Portal) -> None:
    client = await portal.client()
    await _register(client, "eva@example.com")
    # 20 failures from one address, spread over e-mails so that none locks.
    for i in range(20):
        resp = await _login(client, f"target{i % 5}@example.com", "bad password")
        assert resp.status == 401
    resp = await _login(client, "eva@example.com")
    assert resp.status == 429
    assert (await resp.json())["error"] == "too_many_attempts"
    assert 0 < int(resp.headers["Retry-After"]) <= 600
    # The e-mail itself is not locked: from another address it works.
    accounts = portal.container.accounts()
    assert accounts.authenticate("eva@example.com", PASSWORD, client="10.1.1.1")["email"] == (
        "eva@example.com"
    )
    portal.clock.advance(timedelta(minutes=10, seconds=1))
    assert (await _login(client, "eva@example.com")).status == 200


async def test_sign_ups_per_client_are_limited(portal: Portal) -> None:
    accounts = portal.container.accounts()
    for i in range(20):
        with pytest.raises(InvalidInput):
            accounts.register(f"x{i}@example.com", "short", "X", client="10.2.2.2")
    with pytest.raises(TooManyAttempts):
        accounts.register("late@example.com", PASSWORD, "Late", client="10.2.2.2")
    assert accounts.register("late@example.com", PASSWORD, "Late", client="10.3.3.3")


# -- sessions, CSRF, logout, password change -----------------------------------------------------


async def test_me_requires_a_session_and_never_shows_secrets(portal: Portal) -> None:
    client = await portal.client()
    resp = await _me(client)
    assert resp.status == 401 and (await resp.json())["error"] == "unauthenticated"
    await _register(client, "fabi@example.com")
    resp = await _me(client)
    text = await resp.text()
    assert resp.status == 200
    for secret in ("password_hash", "$argon2", "session_version", "login_guard"):
        assert secret not in text
    assert resp.headers["Cache-Control"] == "no-store"


async def test_tampered_cookie_is_ignored(portal: Portal) -> None:
    client = await portal.client()
    await _register(client, "gil@example.com")
    cookie = next(c for c in client.session.cookie_jar if c.key == COOKIE)
    body, mac = cookie.value.split(".", 1)
    for forged in (f"{body}x.{mac}", f"{body}.{mac[:-2]}AA", "garbage", ""):
        client.session.cookie_jar.clear()
        client.session.cookie_jar.update_cookies({COOKIE: forged}, client.make_url("/"))
        assert (await _me(client)).status == 401
    client.session.cookie_jar.clear()
    client.session.cookie_jar.update_cookies({COOKIE: cookie.value}, client.make_url("/"))
    assert (await _me(client)).status == 200  # the untouched one still works


async def test_logout_ends_the_session_and_needs_the_csrf_token(portal: Portal) -> None:
    client = await portal.client()
    token = (await _register(client, "hugo@example.com"))["csrf_token"]
    resp = await client.post("/auth/logout")
    assert resp.status == 403 and (await resp.json())["error"] == "csrf_failed"
    assert (await _me(client)).status == 200  # still logged in
    resp = await client.post("/auth/logout", headers={"X-CSRF-Token": token})
    assert resp.status == 200
    assert (await _me(client)).status == 401


async def test_csrf_is_required_for_password_change(portal: Portal) -> None:
    client = await portal.client()
    token = (await _register(client, "ines@example.com"))["csrf_token"]
    before = portal.user("ines@example.com")
    body = {"current_password": PASSWORD, "new_password": "a brand new secret"}
    resp = await client.post("/auth/local/change-password", json=body)
    assert resp.status == 403
    resp = await client.post(
        "/auth/local/change-password", json=body, headers={"X-CSRF-Token": "not-the-token"}
    )
    assert resp.status == 403
    assert portal.user("ines@example.com") == before  # nothing changed
    assert (await _me(client)).status == 200
    assert token


async def test_change_password_ends_other_sessions(portal: Portal) -> None:
    here = await portal.client()
    token = (await _register(here, "joao@example.com"))["csrf_token"]
    elsewhere = await portal.client()
    assert (await _login(elsewhere, "joao@example.com")).status == 200
    resp = await here.post(
        "/auth/local/change-password",
        json={"current_password": "not it", "new_password": "a brand new secret"},
        headers={"X-CSRF-Token": token},
    )
    assert resp.status == 422 and (await resp.json())["error"] == "wrong_current_password"
    resp = await here.post(
        "/auth/local/change-password",
        json={"current_password": PASSWORD, "new_password": "short"},
        headers={"X-CSRF-Token": token},
    )
    assert resp.status == 422 and (await resp.json())["error"] == "password_length"
    resp = await here.post(
        "/auth/local/change-password",
        json={"current_password": PASSWORD, "new_password": "a brand new secret"},
        headers={"X-CSRF-Token": token},
    )
    assert resp.status == 200, await resp.text()
    new_token = (await resp.json())["csrf_token"]
    assert new_token and new_token != token
    assert (await _me(here)).status == 200  # this client got a new cookie
    assert (await _me(elsewhere)).status == 401  # the other session is over
    assert portal.user("joao@example.com")["session_version"] == 1  # type: ignore[index]
    assert (await _login(elsewhere, "joao@example.com")).status == 401
    assert (await _login(elsewhere, "joao@example.com", "a brand new secret")).status == 200
    assert "account.password_changed" in portal.audit_actions()
    # Not logged in: 401.
    anonymous = await portal.client()
    resp = await anonymous.post(
        "/auth/local/change-password",
        json={"current_password": PASSWORD, "new_password": "whatever it is"},
    )
    assert resp.status == 401


# -- Discord OAuth2 -----------------------------------------------------------------------------


async def _discord_flow(
    portal: Portal, client: TestClient, *, headers: dict[str, str] | None = None
) -> ClientResponse:
    """Start at /auth/discord, let the fake approve, and return the callback's answer."""
    resp = await client.get("/auth/discord", allow_redirects=False)
    assert resp.status == 303, await resp.text()
    authorize = resp.headers["Location"]
    assert authorize.startswith(f"{portal.discord.oauth_base}/oauth2/authorize?")
    assert "scope=identify%20email" in authorize
    query = parse_qs(urlsplit(authorize).query)
    assert query["client_id"] == [portal.discord.client_id]
    assert query["response_type"] == ["code"]
    assert query["redirect_uri"][0].endswith("/auth/discord/callback")
    state_cookie = resp.cookies["astra_oauth_state"]
    assert state_cookie["httponly"] and state_cookie["path"] == "/auth/discord"
    assert int(state_cookie["max-age"]) <= 600
    resp = await client.session.get(authorize, allow_redirects=False)
    assert resp.status == 302
    callback = resp.headers["Location"]
    return await client.session.get(callback, allow_redirects=False, headers=headers)


async def test_discord_login_creates_then_finds_the_user(portal: Portal) -> None:
    portal.discord.set_user(
        id="111122223333444455", username="zeca", global_name="Zeca", email="Zeca@Example.com"
    )
    client = await portal.client()
    resp = await _discord_flow(portal, client)
    assert resp.status == 303 and resp.headers["Location"] == "/dashboard"
    me = await (await _me(client)).json()
    assert me["user"]["discord_id"] == "111122223333444455"
    assert me["user"]["email"] == "zeca@example.com"
    assert me["user"]["name"] == "Zeca" and me["user"]["has_password"] is False
    # The code is spent, and the state cookie too.
    assert ("POST", "/api/oauth2/token") in portal.discord.requests
    again = await portal.client()
    resp = await _discord_flow(portal, again)
    assert resp.status == 303
    assert (await (await _me(again)).json())["user"]["id"] == me["user"]["id"]
    with portal.container.store().portal(write=False) as uow:
        assert uow.users.count() == 1


async def test_discord_login_links_the_account_with_its_verified_email(portal: Portal) -> None:
    registered = await _register(await portal.client(), "lia@example.com")
    portal.discord.set_user(id="222233334444555566", email="lia@example.com", verified=True)
    client = await portal.client()
    assert (await _discord_flow(portal, client)).status == 303
    me = await (await _me(client)).json()
    assert me["user"]["id"] == registered["user"]["id"]
    assert me["user"]["discord_id"] == "222233334444555566"


async def test_discord_unverified_email_is_not_trusted(portal: Portal) -> None:
    await _register(await portal.client(), "mia@example.com")
    portal.discord.set_user(id="333344445555666677", email="mia@example.com", verified=False)
    client = await portal.client()
    resp = await _discord_flow(portal, client)
    assert resp.status == 403 and (await resp.json())["error"] == "discord_email_unverified"
    assert (await _me(client)).status == 401
    assert portal.user("mia@example.com")["discord_id"] is None  # type: ignore[index]


async def test_discord_link_when_logged_in(portal: Portal) -> None:
    client = await portal.client()
    registered = await _register(client, "nina@example.com")
    portal.discord.set_user(id="444455556666777788", email="other-address@example.com")
    resp = await _discord_flow(portal, client)
    assert resp.status == 303
    me = await (await _me(client)).json()
    assert me["user"]["id"] == registered["user"]["id"]
    assert me["user"]["discord_id"] == "444455556666777788"
    assert me["user"]["email"] == "nina@example.com"
    assert "account.discord_linked" in portal.audit_actions()


async def test_discord_account_linked_to_another_user_is_refused(portal: Portal) -> None:
    portal.discord.set_user(id="555566667777888899", email="owner@example.com")
    owner = await portal.client()
    assert (await _discord_flow(portal, owner)).status == 303
    other = await portal.client()
    await _register(other, "olga@example.com")
    resp = await _discord_flow(portal, other)
    assert resp.status == 409
    assert (await resp.json())["error"] == "discord_linked_elsewhere"
    assert portal.user("olga@example.com")["discord_id"] is None  # type: ignore[index]
    assert portal.user("owner@example.com")["discord_id"] == "555566667777888899"  # type: ignore[index]


async def test_discord_state_mismatch_is_refused(portal: Portal) -> None:
    client = await portal.client()
    resp = await client.get("/auth/discord", allow_redirects=False)
    resp = await client.session.get(resp.headers["Location"], allow_redirects=False)
    callback = resp.headers["Location"]
    forged = callback.replace("state=", "state=x")
    resp = await client.session.get(forged, allow_redirects=False)
    assert resp.status == 400
    body = await resp.json()
    assert body["error"] == "oauth_state_mismatch" and "Discord" in body["message"]
    # Another browser (no state cookie) arriving with a valid callback: refused too.
    stranger = await portal.client()
    resp = await stranger.session.get(callback, allow_redirects=False)
    assert resp.status == 400
    # A browser gets a page, not JSON.
    resp = await stranger.session.get(
        callback, allow_redirects=False, headers={"Accept": "text/html"}
    )
    assert resp.status == 400 and resp.content_type == "text/html"
    assert "Entrar com Discord" in await resp.text()
    with portal.container.store().portal(write=False) as uow:
        assert uow.users.count() == 0


async def test_discord_token_endpoint_failing_is_a_clear_502(portal: Portal) -> None:
    portal.discord.fail_token(500)
    client = await portal.client()
    resp = await _discord_flow(portal, client)
    assert resp.status == 502
    body = await resp.json()
    assert body["error"] == "discord_unavailable" and "Discord" in body["message"]
    portal.discord.fail_token(None)
    resp = await _discord_flow(portal, client, headers={"Accept": "text/html"})
    assert resp.status == 303


async def test_discord_unreachable_is_a_502_page(portal: Portal) -> None:
    client = await portal.client()
    resp = await client.get("/auth/discord", allow_redirects=False)
    resp = await client.session.get(resp.headers["Location"], allow_redirects=False)
    callback = resp.headers["Location"]
    await portal.discord.stop()
    resp = await client.session.get(
        callback, allow_redirects=False, headers={"Accept": "text/html,*/*"}
    )
    assert resp.status == 502 and resp.content_type == "text/html"
    assert "Traceback" not in await resp.text()


async def test_discord_denied_and_replayed_code(portal: Portal) -> None:
    client = await portal.client()
    portal.discord.deny_next()
    resp = await _discord_flow(portal, client)
    assert resp.status == 400 and (await resp.json())["error"] == "oauth_denied"
    # A code used once cannot log in again, even with a fresh state.
    resp = await client.get("/auth/discord", allow_redirects=False)
    resp = await client.session.get(resp.headers["Location"], allow_redirects=False)
    callback = resp.headers["Location"]
    assert (await client.session.get(callback, allow_redirects=False)).status == 303
    await client.post(
        "/auth/logout", headers={"X-CSRF-Token": (await (await _me(client)).json())["csrf_token"]}
    )
    resp = await client.get("/auth/discord", allow_redirects=False)
    state = parse_qs(urlsplit(resp.headers["Location"]).query)["state"][0]
    code = parse_qs(urlsplit(callback).query)["code"][0]
    resp = await client.get(
        f"/auth/discord/callback?code={code}&state={state}", allow_redirects=False
    )
    assert resp.status == 400 and (await resp.json())["error"] == "oauth_code_invalid"


async def test_discord_disabled_without_a_client_id(data_dir: Path) -> None:
    settings = ensure_dev_secrets(Settings(data_dir=data_dir))
    container = _container(settings, FrozenClock(NOW))
    async with TestClient(TestServer(create_portal_app(container))) as client:
        for path in ("/auth/discord", "/auth/discord/callback?code=x&state=y"):
            resp = await client.get(path, allow_redirects=False)
            assert resp.status == 404
            assert (await resp.json())["error"] == "discord_oauth_disabled"


async def test_discord_only_account_sets_its_first_password(portal: Portal) -> None:
    portal.discord.set_user(id="666677778888999900", email="pia@example.com")
    client = await portal.client()
    assert (await _discord_flow(portal, client)).status == 303
    token = (await (await _me(client)).json())["csrf_token"]
    assert (await _login(await portal.client(), "pia@example.com", "")).status == 401
    resp = await client.post(
        "/auth/local/change-password",
        json={"current_password": "", "new_password": "my first password"},
        headers={"X-CSRF-Token": token},
    )
    assert resp.status == 200
    assert (await resp.json())["user"]["has_password"] is True
    resp = await _login(await portal.client(), "pia@example.com", "my first password")
    assert resp.status == 200


async def test_blocked_user_is_refused_only_after_the_right_password(portal: Portal) -> None:
    client = await portal.client()
    await _register(client, "rui@example.com")
    with portal.container.store().portal() as uow:
        user = uow.users.first(email="rui@example.com")
        assert user is not None
        user["blocked"] = True
        uow.users.put(user)
        uow.commit()
    assert (await _me(client)).status == 401  # the session ends with the block
    other = await portal.client()
    assert (await _login(other, "rui@example.com", "wrong password")).status == 401
    resp = await _login(other, "rui@example.com")
    assert resp.status == 403 and (await resp.json())["error"] == "account_blocked"


# -- review findings (issue 13): sessions end on the server, lockouts that strangers cannot use
# against the owner, addresses from trusted proxies only, sign-up as an e-mail oracle ----------


@pytest.fixture
async def proxied(data_dir: Path) -> AsyncIterator[Portal]:
    """The portal behind a reverse proxy on 127.0.0.1 (ASTRA_TRUSTED_PROXIES): a request's
    X-Forwarded-For says which client it comes from."""
    discord = FakeDiscordOAuth()
    await discord.start()
    clock = FrozenClock(NOW)
    settings = _settings(data_dir, discord, trusted_proxies=("127.0.0.1/32",))
    container = _container(settings, clock)
    server = TestServer(create_portal_app(container))
    world = Portal(container, clock, server, discord, [])
    try:
        yield world
    finally:
        for client in world.clients:
            await client.close()
        await server.close()
        await discord.stop()


def _from(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


async def _login_from(client: TestClient, address: str, email: str,
                      password: str = PASSWORD) -> ClientResponse:
    return await client.post("/auth/local/login", json={"email": email, "password": password},
                             headers=_from(address))


async def test_logout_ends_the_session_on_the_server(portal: Portal) -> None:
    client = await portal.client()
    token = (await _register(client, "lou@example.com"))["csrf_token"]
    other_device = await portal.client()
    assert (await _login(other_device, "lou@example.com")).status == 200
    saved = next(c for c in client.session.cookie_jar if c.key == COOKIE).value
    resp = await client.post("/auth/logout", headers={"X-CSRF-Token": token})
    assert resp.status == 200
    # The attacker who copied the cookie before the logout replays it: refused.
    thief = await portal.client()
    thief.session.cookie_jar.update_cookies({COOKIE: saved}, thief.make_url("/"))
    assert (await _me(thief)).status == 401
    assert (await thief.get("/api/instances")).status == 401
    # Only that session ended: the other device is still logged in.
    assert (await _me(other_device)).status == 200
    assert "account.logout" in portal.audit_actions()


async def test_a_stranger_cannot_lock_the_owner_out(proxied: Portal) -> None:
    owner_at = "203.0.113.5"
    client = await proxied.client()
    await _register(client, "ola@example.com")
    assert (await _login_from(client, owner_at, "ola@example.com")).status == 200
    stranger = await proxied.client()
    statuses = [(await _login_from(stranger, "198.51.100.7", "ola@example.com", "guess!!!")).status
                for _ in range(8)]
    assert statuses == [401, 401, 401, 401, 423, 423, 423, 423]
    # The stranger locked only themselves: the owner logs in, from home or from a new place.
    assert (await _login_from(await proxied.client(), owner_at, "ola@example.com")).status == 200
    assert (await _login_from(await proxied.client(), "192.0.2.44",
                              "ola@example.com")).status == 200
    # ... and the stranger is still locked out, even with the right password.
    assert (await _login_from(stranger, "198.51.100.7", "ola@example.com")).status == 423


async def test_failures_from_the_owners_known_source_only_slow_it_down(proxied: Portal) -> None:
    office = "203.0.113.80"  # a NAT the owner shares with an attacker
    client = await proxied.client()
    await _register(client, "rosa@example.com")
    assert (await _login_from(client, office, "rosa@example.com")).status == 200
    attacker = await proxied.client()
    for _ in range(4):
        assert (await _login_from(attacker, office, "rosa@example.com", "guess!!!")).status == 401
    resp = await _login_from(attacker, office, "rosa@example.com", "guess!!!")
    assert resp.status == 423 and int(resp.headers["Retry-After"]) <= 30
    proxied.clock.advance(timedelta(seconds=31))
    assert (await _login_from(await proxied.client(), office, "rosa@example.com")).status == 200


async def test_guessing_spread_over_many_sources_still_locks_unknown_ones(
    proxied: Portal,
) -> None:
    client = await proxied.client()
    await _register(client, "tina@example.com")
    assert (await _login_from(client, "203.0.113.9", "tina@example.com")).status == 200
    accounts = proxied.container.accounts()
    for i in range(50):  # a botnet: one guess per address
        with pytest.raises((InvalidCredentials, AccountLocked)):
            accounts.authenticate("tina@example.com", "guess!!!", client=f"10.9.{i}.1")
    with pytest.raises(AccountLocked):
        accounts.authenticate("tina@example.com", PASSWORD, client="10.9.200.1")
    # The owner's own known source is not locked by it.
    assert (await _login_from(client, "203.0.113.9", "tina@example.com")).status == 200


async def test_limits_key_on_the_address_a_trusted_proxy_names(proxied: Portal) -> None:
    client = await proxied.client()
    await _register(client, "uma@example.com")
    for i in range(20):
        resp = await _login_from(client, "198.51.100.20", f"t{i % 5}@example.com", "guess!!!")
        assert resp.status == 401
    assert (await _login_from(client, "198.51.100.20", "uma@example.com")).status == 429
    # Another client behind the same proxy is not limited by the first one's failures.
    assert (await _login_from(client, "198.51.100.21", "uma@example.com")).status == 200
    # What a client writes itself on the left of the header is not believed: the address the
    # proxy appended (the right-most one it did not add itself) is what counts.
    resp = await _login_from(client, "192.0.2.99, 198.51.100.20", "uma@example.com")
    assert resp.status == 429


async def test_forwarded_for_from_an_untrusted_peer_is_ignored(portal: Portal) -> None:
    client = await portal.client()
    await _register(client, "vera@example.com")
    for i in range(20):  # a new made-up address each time: the peer address counts anyway
        resp = await client.post(
            "/auth/local/login", json={"email": f"t{i % 5}@example.com", "password": "guess!!!"},
            headers=_from(f"192.0.2.{i}"))
        assert resp.status == 401
    resp = await client.post("/auth/local/login",
                             json={"email": "vera@example.com", "password": PASSWORD},
                             headers=_from("192.0.2.250"))
    assert resp.status == 429


async def test_sign_up_cannot_test_emails_in_bulk(proxied: Portal) -> None:
    accounts = proxied.container.accounts()
    taken = [f"cliente{i}@example.com" for i in range(6)]
    for email in taken:
        accounts.register(email, PASSWORD, "Cliente", client="10.7.7.7")
    prober = await proxied.client()
    answers = []
    for email in taken:
        resp = await prober.post("/auth/local/register",
                                 json={"email": email, "password": PASSWORD, "name": "X"},
                                 headers=_from("198.51.100.66"))
        answers.append((resp.status, (await resp.json())["error"]))
    assert answers[:3] == [(422, "email_taken")] * 3
    assert answers[3:] == [(429, "too_many_attempts")] * 3
    # A person from another address still gets the helpful answer, and can sign up.
    resp = await prober.post("/auth/local/register",
                             json={"email": taken[0], "password": PASSWORD, "name": "X"},
                             headers=_from("198.51.100.67"))
    assert (await resp.json())["error"] == "email_taken"
    resp = await prober.post("/auth/local/register",
                             json={"email": "nova@example.com", "password": PASSWORD,
                                   "name": "Nova"}, headers=_from("198.51.100.68"))
    assert resp.status == 201


async def test_deeply_nested_json_is_a_400(portal: Portal) -> None:
    client = await portal.client()
    for depth in (100, 5_000, 200_000):
        nested = b"[" * depth + b"]" * depth
        for path in ("/auth/local/login", "/auth/local/register"):
            resp = await client.post(path, data=b'{"email": ' + nested + b"}",
                                     headers={"Content-Type": "application/json"})
            assert resp.status == 400, (path, depth, await resp.text())
