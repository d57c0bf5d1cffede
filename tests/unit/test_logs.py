from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import structlog

from astra.logs import (
    REDACTED,
    _reset_secrets,
    add_secret,
    configure_logging,
    get_logger,
    redact_secrets,
    redact_text,
)
from astra.settings import Settings

# Shaped like real credentials, valid for nothing.
DISCORD_TOKEN = "MTA5ODc2NTQzMjEwOTg3NjU0Mw.GhIjKl.abcdefghijklmnopqrstuvwxyzABCDEFGHIJKL"
OLD_DISCORD_TOKEN = "NzkyNzE1NDU0MTk2MDg4ODQy.X-hvzA.Ovy4MCQywSkoMRRclStW4xAYK7I"
MP_TOKEN = "APP_USR-1234567890123456-112233-0123456789abcdef0123456789abcdef-123456789"
MP_TEST_TOKEN = "TEST-8765432109876543-010203-fedcba9876543210fedcba9876543210-987654321"


class TTYStream(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _clean_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    _reset_secrets()
    yield
    _reset_secrets()
    for h in root.handlers[:]:
        if h not in handlers:
            root.removeHandler(h)
    root.setLevel(level)
    structlog.reset_defaults()


def redact(**event: Any) -> dict[str, Any]:
    return redact_secrets(None, "info", event)


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


@pytest.mark.parametrize(
    "key",
    [
        "token",
        "bot_token",
        "BotToken",
        "password",
        "new_passwd",
        "client_secret",
        "Authorization",
        "api_key",
        "X-Api-Key",
        "apikey",
        "aws_access_key",
        "Set-Cookie",
        "key",
        "KEY",
        "instance_key",
        "idempotency-key",
    ],
)
def test_sensitive_keys_are_redacted(key: str) -> None:
    assert redact(**{key: "hunter2hunter2"})[key] == REDACTED


@pytest.mark.parametrize("key", ["keyboard", "monkey", "keys_sold", "event", "user", "amount"])
def test_ordinary_keys_are_kept(key: str) -> None:
    assert redact(**{key: "plain value"})[key] == "plain value"


def test_sensitive_key_redacts_any_value_type_but_keeps_none_and_flags() -> None:
    out = redact(password=123456, token=None, has_token=True, secret={"a": 1})
    assert out == {"password": REDACTED, "token": None, "has_token": True, "secret": REDACTED}


def test_nested_structures_are_redacted() -> None:
    out = redact(
        event="request",
        request={
            "headers": {"Authorization": "Bot abc", "Accept": "json"},
            "items": [{"key": "ABCD-EFGH-IJKL"}, {"name": "Game"}],
            "pairs": ("x", f"token {DISCORD_TOKEN}"),
        },
    )
    assert out["request"] == {
        "headers": {"Authorization": REDACTED, "Accept": "json"},
        "items": [{"key": REDACTED}, {"name": "Game"}],
        "pairs": ["x", f"token {REDACTED}"],
    }


def test_discord_token_inside_a_message() -> None:
    for token in (DISCORD_TOKEN, OLD_DISCORD_TOKEN):
        out = redact(event=f"login failed for Bot {token}, retrying")
        assert out["event"] == f"login failed for Bot {REDACTED}, retrying"


def test_mercadopago_tokens() -> None:
    out = redact(event=f"calling with {MP_TOKEN}", detail=f"sandbox={MP_TEST_TOKEN}")
    assert out == {"event": f"calling with {REDACTED}", "detail": f"sandbox={REDACTED}"}


def test_instance_keys_in_logged_command_options() -> None:
    # interactions.py logs `/loja vincular chave:<key>` at info level
    key = "astra_loja-bot_" + "x" * 32
    assert redact_text(f"kwargs = {{'chave': '{key}'}}") == f"kwargs = {{'chave': '{REDACTED}'}}"
    for name in ("astra_cart_adjustments", "astra_delivery_queue_depth", "astra_session"):
        assert redact_text(name) == name


def test_bearer_header() -> None:
    assert redact_text("Authorization: Bearer abc.def-ghi") == "Authorization: Bearer [REDACTED]"
    assert redact_text("bearer xyz123, next") == "bearer [REDACTED], next"


def test_credentials_in_query_strings() -> None:
    line = (
        'GET /auth/discord/callback?code=abc123XYZ&state=s1 "https://x.test/?access_token=t0k&a=1"'
    )
    assert redact_text(line) == (
        f"GET /auth/discord/callback?code={REDACTED}&state=s1 "
        f'"https://x.test/?access_token={REDACTED}&a=1"'
    )


def test_ordinary_text_is_untouched() -> None:
    text = "order 42 paid: 2x Key Pack (R$ 19.90), see https://example.com/a.b.c?page=2 TEST-run"
    assert redact_text(text) == text
    assert redact_text("v1.2.3 released") == "v1.2.3 released"


def test_registered_secret_is_redacted_everywhere() -> None:
    add_secret("s3cr3t-value")
    add_secret("tiny")  # too short to register: it would eat ordinary words
    out = redact(event="value is s3cr3t-value!", note=["prefix-s3cr3t-value"], word="tiny")
    assert out == {"event": f"value is {REDACTED}!", "note": [f"prefix-{REDACTED}"], "word": "tiny"}


def test_longer_secret_that_contains_a_shorter_one_is_redacted_whole() -> None:
    add_secret("abcdef")
    add_secret("abcdef-ghijkl")
    assert redact_text("x abcdef-ghijkl y abcdef") == f"x {REDACTED} y {REDACTED}"


def test_exceptions_and_objects_as_values_are_redacted() -> None:
    add_secret("object-secret")

    class Thing:
        def __str__(self) -> str:
            return "Thing(object-secret)"

    out = redact(error=RuntimeError(f"bad {MP_TOKEN}"), thing=Thing(), n=3, at=datetime(2025, 1, 1))
    assert out["error"] == f"RuntimeError: bad {REDACTED}"
    assert out["thing"] == f"Thing({REDACTED})"
    assert out["n"] == 3 and out["at"] == datetime(2025, 1, 1)


def test_json_lines_when_stream_is_not_a_tty() -> None:
    stream = io.StringIO()
    configure_logging("info", stream=stream, secrets=["registered-at-configure"])
    log = get_logger("astra.test")
    log.info("cart opened", cart_id="c1", bot_token=DISCORD_TOKEN, note="registered-at-configure")
    log.debug("filtered out")

    [line] = lines(stream)
    assert line["event"] == "cart opened"
    assert line["cart_id"] == "c1"
    assert line["bot_token"] == REDACTED
    assert line["note"] == REDACTED
    assert line["level"] == "info"
    assert line["logger"] == "astra.test"
    stamp = datetime.fromisoformat(line["timestamp"])
    assert stamp.utcoffset() is not None and stamp.utcoffset().total_seconds() == 0
    assert DISCORD_TOKEN not in stream.getvalue()


def test_secret_added_after_configure_is_redacted() -> None:
    stream = io.StringIO()
    configure_logging("info", stream=stream)
    log = get_logger("astra.test")
    log.info("before", value="late-secret-1")
    add_secret("late-secret-1")
    log.info("after", value="late-secret-1")
    assert [line["value"] for line in lines(stream)] == ["late-secret-1", REDACTED]


def test_exception_text_is_redacted() -> None:
    stream = io.StringIO()
    configure_logging("info", stream=stream, secrets=["exc-secret-99"])
    try:
        raise ValueError(f"rejected exc-secret-99 and {DISCORD_TOKEN}")
    except ValueError:
        get_logger("astra.test").exception("delivery failed", order_id="o1")

    [line] = lines(stream)
    assert line["level"] == "error"
    assert "Traceback" in line["exception"]
    assert f"ValueError: rejected {REDACTED} and {REDACTED}" in line["exception"]
    assert "exc-secret-99" not in stream.getvalue()
    assert DISCORD_TOKEN not in stream.getvalue()


def test_stdlib_logging_is_routed_through_redaction() -> None:
    stream = io.StringIO()
    configure_logging("debug", stream=stream, secrets=["lib-secret-77"])
    lib = logging.getLogger("aiohttp.client")
    lib.info("GET %s with Bearer %s", "https://discord.com/api/v10/users/@me", "lib-secret-77")
    lib.debug("headers", extra={"authorization": f"Bot {DISCORD_TOKEN}", "status": 200})
    try:
        raise ConnectionError(f"token {DISCORD_TOKEN} refused")
    except ConnectionError:
        logging.getLogger("interactions").exception("gateway closed")

    first, second, third = lines(stream)
    assert first["event"] == f"GET https://discord.com/api/v10/users/@me with Bearer {REDACTED}"
    assert first["logger"] == "aiohttp.client" and first["level"] == "info"
    assert "timestamp" in first
    assert second["authorization"] == REDACTED and second["status"] == 200
    assert third["logger"] == "interactions"
    assert f"ConnectionError: token {REDACTED} refused" in third["exception"]
    assert "lib-secret-77" not in stream.getvalue()
    assert DISCORD_TOKEN not in stream.getvalue()


def test_level_filters_structlog_and_stdlib() -> None:
    stream = io.StringIO()
    configure_logging("warning", stream=stream)
    get_logger("astra.a").info("hidden")
    logging.getLogger("docker").info("hidden too")
    get_logger("astra.a").warning("shown")
    assert [line["event"] for line in lines(stream)] == ["shown"]


def test_console_renderer_on_a_tty_and_still_redacted() -> None:
    stream = TTYStream()
    configure_logging("info", stream=stream, secrets=["console-secret"])
    get_logger("astra.test").info("hello console-secret", token="abc")
    out = stream.getvalue()
    assert "hello" in out and "console-secret" not in out and "abc" not in out
    assert REDACTED in out
    with pytest.raises(json.JSONDecodeError):
        json.loads(out)


def test_json_format_forced_on_a_tty() -> None:
    stream = TTYStream()
    configure_logging("info", fmt="json", stream=stream)
    get_logger("astra.test").info("hello")
    assert lines(stream)[0]["event"] == "hello"


def test_console_format_forced_without_tty() -> None:
    stream = io.StringIO()
    configure_logging("info", fmt="console", stream=stream)
    get_logger("astra.test").info("hello")
    assert "hello" in stream.getvalue()
    assert not stream.getvalue().lstrip().startswith("{")


def test_configure_from_settings_uses_level_format_and_secrets() -> None:
    settings = Settings.from_env(
        {
            "ASTRA_LOG_LEVEL": "error",
            "ASTRA_LOG_FORMAT": "json",
            "MERCADOPAGO_WEBHOOK_SECRET": "webhook-secret-x",
        },
        env_file=None,
    )
    stream = TTYStream()
    configure_logging(settings, stream=stream)
    log = get_logger("astra.test")
    log.warning("dropped")
    log.error("signature mismatch", expected="webhook-secret-x")
    [line] = lines(stream)
    assert line["expected"] == REDACTED


def test_reconfiguring_replaces_the_handler() -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging("info", stream=first)
    log = get_logger("astra.test")
    log.info("one")
    configure_logging("info", stream=second)
    log.info("two")
    assert [line["event"] for line in lines(first)] == ["one"]
    assert [line["event"] for line in lines(second)] == ["two"]


def test_redaction_is_fast_enough_for_every_line() -> None:
    add_secret("perf-secret-value")
    event = {
        "event": "order paid, delivering keys to buyer",
        "order_id": "ord_01HZX3K4",
        "instance": "loja-do-joao",
        "amount_cents": 4990,
        "buyer": {"id": "123456789012345678", "name": "joao"},
        "items": [{"sku": "vip-30d", "qty": 1}],
    }
    n = 5_000
    start = time.perf_counter()
    for _ in range(n):
        redact_secrets(None, "info", dict(event))
    per_call = (time.perf_counter() - start) / n
    # Generous bound (~50x the expected cost) so a slow CI box does not flake.
    assert per_call < 500e-6


def test_jwt_inside_text() -> None:
    jwt = (
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0"
        ".dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
    )
    assert redact_text(f"id_token={jwt} ok") == f"id_token={REDACTED} ok"
