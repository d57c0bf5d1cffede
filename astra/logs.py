"""Structured logging for every Astra process, with secrets redacted before anything is written.

structlog and the standard library (aiohttp, interactions.py, docker) share one handler whose
formatter runs the redactor, so a bot token leaked by a third-party library is caught too.
"""

from __future__ import annotations

import functools
import logging
import re
import sys
import threading
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from pathlib import PurePath
from typing import Any, TextIO
from uuid import UUID

import orjson
import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from astra.ports.store import INSTANCE_ID_PATTERN
from astra.settings import LogFormat, Settings

REDACTED = "[REDACTED]"

_SENSITIVE_KEY = re.compile(
    r"token|password|passwd|secret|authorization|api_?key|access_?key|cookie|(?:^|_)key$",
    re.IGNORECASE,
)

# The token patterns start only where a run of token characters starts (the lookbehind), so a long
# base64 blob costs one scan instead of a backtracking attempt at every offset. Each pattern has a
# cheap test in front (a substring or a literal-led regex) because most log strings hold no secret.

# Discord: base64(user id) . base64(timestamp) . HMAC — lengths kept loose on purpose, as Discord
# has lengthened the parts before.
_DISCORD = re.compile(
    r"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{18,}\.[A-Za-z0-9_-]{6,7}\.[A-Za-z0-9_-]{27,}"
)
_DISCORD_HINT = re.compile(r"\.[A-Za-z0-9_-]{6,7}\.")
# JSON Web Tokens (OAuth id tokens, session cookies of other services).
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*")
# Mercado Pago access tokens and public keys: APP_USR-… in production, TEST-… in sandbox.
_MERCADOPAGO = re.compile(r"(?<![A-Za-z0-9_-])(?:APP_USR|TEST)-[A-Fa-f0-9-]{16,}")
# Astra instance keys (InstanceService.rotate_instance_key): astra_<instance id>_<random>. The
# seller types one into `/loja vincular`, and interactions.py logs a command's options at info.
_INSTANCE_KEY = re.compile(
    r"(?<![A-Za-z0-9_-])astra_" + INSTANCE_ID_PATTERN.pattern.strip("^$") + r"_[A-Za-z0-9_-]{32,}"
)
# Whatever follows "Bearer " in a header dump; the scheme word is kept for readability.
_BEARER = re.compile(r"(?<=[Bb]earer )[^\s\"',;]+")
# Credentials in URL query strings, as access logs print them (the OAuth callback's `code`).
_QUERY_SECRET = re.compile(
    r"([?&][\w.-]*?(?:token|secret|passw(?:or)?d|api_?key|code|signature)=)[^&\s#\"']+",
    re.IGNORECASE,
)

# Shorter registered values would turn ordinary words in messages into [REDACTED].
MIN_SECRET_LENGTH = 6
# No pattern above matches fewer characters than this, so shorter strings skip them.
_MIN_PATTERN_LENGTH = 8

_PASSTHROUGH = (int, float, bool, type(None), datetime, date, time, timedelta, Decimal, UUID)
_SCALARS = frozenset({int, float, bool, type(None)})


class _Redactor:
    """Holds the registered secrets and applies them and the token patterns to log values."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Longest first, so a secret that contains another is replaced whole.
        self._secrets: tuple[str, ...] = ()
        self._min_length = _MIN_PATTERN_LENGTH

    def add(self, value: str) -> None:
        if not isinstance(value, str) or len(value) < MIN_SECRET_LENGTH:
            return
        with self._lock:
            if value not in self._secrets:
                self._secrets = tuple(sorted({*self._secrets, value}, key=len, reverse=True))
                self._min_length = min(self._min_length, len(value))

    def reset(self) -> None:
        with self._lock:
            self._secrets = ()
            self._min_length = _MIN_PATTERN_LENGTH

    def text(self, value: str) -> str:
        if len(value) < self._min_length:
            return value
        for secret in self._secrets:
            if secret in value:
                value = value.replace(secret, REDACTED)
        if len(value) < _MIN_PATTERN_LENGTH:
            return value
        if "." in value:
            if _DISCORD_HINT.search(value):
                value = _DISCORD.sub(REDACTED, value)
            if "eyJ" in value:
                value = _JWT.sub(REDACTED, value)
        if "APP_USR-" in value or "TEST-" in value:
            value = _MERCADOPAGO.sub(REDACTED, value)
        if "astra_" in value:
            value = _INSTANCE_KEY.sub(REDACTED, value)
        if "earer " in value:
            value = _BEARER.sub(REDACTED, value)
        if "=" in value and ("?" in value or "&" in value):
            value = _QUERY_SECRET.sub(rf"\1{REDACTED}", value)
        return value

    def value(self, value: Any) -> Any:
        # Exact-type checks first: almost every value is a plain str or number.
        kind = type(value)
        if kind is str:
            return self.text(value)
        if kind in _SCALARS:
            return value
        if kind is dict:
            return self.mapping(value)
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, _PASSTHROUGH):
            return value
        if isinstance(value, Mapping):
            return self.mapping(value)
        if isinstance(value, list | tuple | set | frozenset):
            return [self.value(v) for v in value]
        if isinstance(value, Enum):
            return value.value if isinstance(value.value, str | int) else str(value)
        if isinstance(value, PurePath):
            return self.text(str(value))
        if isinstance(value, bytes | bytearray):
            return self.text(bytes(value).decode("utf-8", "replace"))
        if isinstance(value, BaseException):
            return self.text(f"{type(value).__name__}: {value}")
        # Arbitrary objects are rendered by their text, which is where a token in a URL or a
        # header dump would hide; render it here so the redactor sees it.
        return self.text(str(value))

    def mapping(self, data: Mapping[Any, Any]) -> dict[Any, Any]:
        return {
            key: REDACTED
            if value is not None
            and value is not True
            and value is not False
            and is_sensitive_key(key)
            else self.value(value)
            for key, value in data.items()
        }


_redactor = _Redactor()


def is_sensitive_key(key: object) -> bool:
    return _is_sensitive_name(key if isinstance(key, str) else str(key))


# The same few dozen keys recur on every line, so the answer is remembered.
@functools.lru_cache(maxsize=4096)
def _is_sensitive_name(name: str) -> bool:
    return _SENSITIVE_KEY.search(name.replace("-", "_")) is not None


def add_secret(value: str) -> None:
    """Redact this exact value from every later log line (values under 6 characters are ignored)."""
    _redactor.add(value)


def redact_text(text: str) -> str:
    return _redactor.text(text)


def redact_secrets(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """structlog processor: hide values under sensitive keys and secret-shaped substrings."""
    return _redactor.mapping(event_dict)


def _reset_secrets() -> None:
    # Tests register throwaway secrets; this keeps them from leaking into one another.
    _redactor.reset()


def _dumps(obj: Any, **kwargs: Any) -> str:
    return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS, **kwargs).decode()


_HANDLER_MARK = "_astra_handler"

_COMMON_CHAIN: list[Processor] = [
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]
# For records from stdlib loggers; `extra={...}` fields are kept (and redacted like the rest).
_FOREIGN_CHAIN: list[Processor] = [*_COMMON_CHAIN, structlog.stdlib.ExtraAdder()]


# -- HTTP errors a caller expects ------------------------------------------------------------

# interactions.py logs every Discord error answer at error level before raising it, including the
# ones our adapter handles as normal operation (a buyer with closed DMs: 403, code 50007, and the
# delivery falls back to the cart channel). A caller that expects such an answer says so for the
# length of its call; this filter then lowers the library's line to info (the caller logs the
# outcome), while any other error of the same request stays an error.
_EXPECTED_HTTP_STATUS: ContextVar[frozenset[int]] = ContextVar(
    "astra_expected_http_status", default=frozenset()
)
_HTTP_ERROR_LINE = re.compile(r"^[A-Z]+::\S+: (?P<status>\d{3})$")
LIBRARY_HTTP_LOGGERS = ("interactions",)


@contextmanager
def expecting_http_status(*statuses: int) -> Iterator[None]:
    token = _EXPECTED_HTTP_STATUS.set(_EXPECTED_HTTP_STATUS.get() | frozenset(statuses))
    try:
        yield
    finally:
        _EXPECTED_HTTP_STATUS.reset(token)


class ExpectedHttpErrorFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        expected = _EXPECTED_HTTP_STATUS.get()
        if not expected or record.levelno < logging.ERROR:
            return True
        match = _HTTP_ERROR_LINE.match(record.getMessage())
        if match is None or int(match["status"]) not in expected:
            return True
        if not logging.getLogger().isEnabledFor(logging.INFO):
            return False
        record.levelno, record.levelname = logging.INFO, "INFO"
        record.msg, record.args = f"{record.getMessage()} (expected; handled by the caller)", ()
        return True


def _install_expected_http_filter() -> None:
    for name in LIBRARY_HTTP_LOGGERS:
        library = logging.getLogger(name)
        if not any(isinstance(f, ExpectedHttpErrorFilter) for f in library.filters):
            library.addFilter(ExpectedHttpErrorFilter())


# -- the platform's recent lines, for the admin panel ------------------------------------------

RECENT_LINES = 2000
_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}


class RecentLines(logging.Handler):
    """The last RECENT_LINES log records of this process, kept in memory as the JSON lines the
    log writes (through the same redacting formatter: what is kept is what the log shows)."""

    def __init__(self, capacity: int = RECENT_LINES) -> None:
        super().__init__()
        self._lines: deque[dict[str, Any]] = deque(maxlen=capacity)
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            rendered = self.format(record)
            line = orjson.loads(rendered)
            if not isinstance(line, dict):
                line = {"event": str(line)}
        except Exception:  # a line that cannot be rendered is dropped here, not raised
            return
        with self._guard:
            self._lines.append(line)

    def lines(
        self, *, level: str | None = None, text: str | None = None, limit: int = 200
    ) -> list[dict[str, Any]]:
        """Newest first: at `level` or above, containing `text` (case-insensitive)."""
        floor = _LEVELS.get((level or "").lower(), 0)
        needle = (text or "").lower()
        with self._guard:
            snapshot = list(self._lines)
        out = []
        for line in reversed(snapshot):
            if _LEVELS.get(str(line.get("level", "")).lower(), 0) < floor:
                continue
            if needle and needle not in orjson.dumps(line).decode().lower():
                continue
            out.append(line)
            if len(out) >= limit:
                break
        return out


_recent = RecentLines()


def recent_lines(
    *, level: str | None = None, text: str | None = None, limit: int = 200
) -> list[dict[str, Any]]:
    """This process's latest log lines, secrets redacted (empty until configure_logging)."""
    return _recent.lines(level=level, text=text, limit=limit)


def _install_recent_lines(root: logging.Logger) -> None:
    _recent.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=_FOREIGN_CHAIN,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                redact_secrets,
                structlog.processors.JSONRenderer(serializer=_dumps),
            ],
        )
    )
    if _recent not in root.handlers:
        root.addHandler(_recent)


def configure_logging(
    settings_or_level: Settings | str | int = "info",
    *,
    fmt: LogFormat = "auto",
    stream: TextIO | None = None,
    secrets: Iterable[str] = (),
) -> None:
    """Install one root handler for structlog and stdlib logging, replacing a previous one.

    With a Settings, its log level and format are used (an explicit `fmt` other than "auto" wins)
    and its secrets are registered for redaction. "auto" means JSON lines unless `stream` (default
    stderr) is a terminal.
    """
    if isinstance(settings_or_level, Settings):
        level: str | int = settings_or_level.log_level
        if fmt == "auto":
            fmt = settings_or_level.log_format
        secrets = [*secrets, *settings_or_level.secret_values()]
    else:
        level = settings_or_level
    for value in secrets:
        add_secret(value)

    stream = sys.stderr if stream is None else stream
    if fmt == "auto":
        fmt = "console" if _isatty(stream) else "json"
    renderer: Processor
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer(serializer=_dumps)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=_isatty(stream))

    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_FOREIGN_CHAIN,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            # Tracebacks become text before redaction, even for the console renderer, which would
            # otherwise print them itself from exc_info, past the redactor.
            structlog.processors.format_exc_info,
            redact_secrets,
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    setattr(handler, _HANDLER_MARK, True)

    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    _install_recent_lines(root)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    _install_expected_http_filter()

    # The chain does not depend on the arguments (the renderer lives in the handler), so loggers
    # cached before a reconfiguration stay correct.
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            structlog.contextvars.merge_contextvars,
            *_COMMON_CHAIN,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.stdlib.get_logger(name)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
