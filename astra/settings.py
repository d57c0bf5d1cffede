"""Process configuration: environment variables plus an optional `.env` file.

Variable names follow the Node.js system Astra re-creates (PORTAL_SESSION_SECRET, ADMIN_PANEL_TOKEN,
MERCADOPAGO_ACCESS_TOKEN, ...) so an operator can move an existing `.env` over unchanged.
"""

from __future__ import annotations

import dataclasses
import fcntl
import ipaddress
import json
import os
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeVar, get_args

from dotenv import dotenv_values

Mode = Literal["development", "production"]
RuntimeKind = Literal["auto", "docker", "process", "swarm"]
RuntimeMode = Literal["pooled", "isolated"]
PoolGrouping = Literal["environment", "owner"]
ProcessIsolation = Literal["bwrap", "off"]
LogFormat = Literal["auto", "json", "console"]
LogLevel = Literal["debug", "info", "warning", "error", "critical"]
# ASTRA_PAYMENTS; "auto" (unset): Mercado Pago when an access token is set, else the sandbox,
# which production takes only when told (`ASTRA_PAYMENTS=sandbox`).
Payments = Literal["auto", "mercadopago", "sandbox"]

DEV_SECRETS_FILE = ".secrets.json"

_T = TypeVar("_T")

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})

# Secrets that every process needs; in development they are generated once instead, and kept
# in <data>/.secrets.json under the names of the variables that would set them.
_PLATFORM_SECRETS: tuple[tuple[str, str], ...] = (
    ("session_secret", "PORTAL_SESSION_SECRET"),
    ("admin_token", "ADMIN_PANEL_TOKEN"),
    ("master_key", "ASTRA_MASTER_KEY"),
    ("admin_password", "ADMIN_PANEL_PASSWORD"),
)
# Secrets a .secrets.json written before a secret existed may lack: added to it on first use.
_ADDED_LATER = frozenset({"admin_password"})


class SettingsError(ValueError):
    """Configuration that the process cannot start with. `problems` has one line per variable."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems: tuple[str, ...] = tuple(problems)
        super().__init__("invalid configuration: " + "; ".join(self.problems))


def _secret(default: str = "") -> str:
    return field(default=default, metadata={"secret": True})


@dataclass(frozen=True, repr=False)
class Settings:
    mode: Mode = "development"
    data_dir: Path = Path("data")
    # Empty: the embedded JSON store in data_dir. A postgresql:// URL: the PostgreSQL store (its
    # password, if any, is a secret: never logged, shown as ***).
    database_url: str = _secret()
    host: str = "127.0.0.1"
    portal_port: int = 3100
    admin_port: int = 3000
    # The internal API (what instance runtimes call) listens on its own address. Empty: chosen
    # by the runtime, the Docker runtime network's gateway for Docker runtimes (the only host
    # address a bot container can route to), 127.0.0.1 for the process runtime.
    internal_host: str = ""
    internal_port: int = 3200
    # Requests per second (and burst) the internal API takes from one instance's runtime.
    internal_rate_per_second: int = 40
    internal_rate_burst: int = 120
    public_url: str = ""
    # Reverse proxies (addresses or CIDR networks) whose X-Forwarded-For names the client; from
    # anyone else the header is ignored, so a client cannot pick the address it is limited by.
    trusted_proxies: tuple[str, ...] = ()
    session_secret: str = _secret()
    admin_token: str = _secret()
    admin_user: str = "admin"
    admin_password: str = _secret()
    admin_monitor_token: str = _secret()  # read-only access to the admin panel
    master_key: str = _secret()
    payments: Payments = "auto"
    mercadopago_access_token: str = _secret()
    mercadopago_webhook_secret: str = _secret()
    mercadopago_api_base: str = "https://api.mercadopago.com"
    allow_unsigned_webhooks: bool = False
    discord_api_base: str = "https://discord.com/api/v10"
    discord_oauth_base: str = "https://discord.com"
    discord_client_id: str = ""
    discord_client_secret: str = _secret()
    platform_fee_bps: int = 600
    min_withdrawal_cents: int = 1000
    cart_ttl_seconds: int = 900
    plan_price_cents: int = 4990
    plan_days: int = 30
    trial_days: int = 7
    max_instances_per_seller: int = 3  # what a seller's plan allows (deleted ones not counted)
    trial_max_instances: int = 3  # what the free trial allows (the original: 1)
    # A bonus day of plan per this much sold (gross cents); 0 turns the bonus off.
    plan_bonus_cents_per_day: int = 2000
    # Sellers' outgoing webhooks: attempts per event, and the first retry's delay (doubling).
    webhook_max_attempts: int = 10
    webhook_retry_base_seconds: float = 10.0
    payer_email_domain: str = "astra-buyers.com.br"
    reconcile_interval_seconds: int = 10
    # While any PIX is open, reconcile this often: a lost webhook costs about this long.
    reconcile_open_interval_seconds: int = 3
    runtime: RuntimeKind = "auto"
    runtime_image: str = "astra:latest"  # the platform's image runs instances too
    # A user-defined bridge the Docker runtime creates (inter-container traffic off); never
    # "host", "none" or another container's namespace.
    docker_network: str = "astra-runtimes"
    runtime_restart_limit: int = 3
    # Bots in pools (one process for up to `pool_size` instances) or each alone; an instance's
    # own setting (`astra runtime mode ID ...`) wins.
    runtime_mode: RuntimeMode = "isolated"
    pool_size: int = 50
    # Which instances may share a pool: any with the same environment, or only one seller's
    # (`owner`: a compromised bot then holds no other seller's token).
    pool_grouping: PoolGrouping = "environment"
    # The process runtime's walls (bubblewrap). `off` runs bots as the platform's user on its
    # filesystem: production refuses to start the process runtime without walls unless told so.
    process_isolation: ProcessIsolation = "bwrap"
    # Swarm runtime: an overlay network of its own, and the service limits.
    swarm_network: str = "astra-runtimes-swarm"
    # Placement constraints of the bots' services, comma-separated (`node.labels.astra.bots==true`).
    swarm_constraints: str = ""
    # Where an instance runtime reaches the platform's internal API. Empty: the internal
    # listener's own address, as `astra serve` bound it.
    platform_url: str = ""
    # Set only inside an instance runtime: it is that instance and nothing more, and reaches
    # its data through the platform's internal API with this credential.
    tenant: bool = False
    instance_id: str = ""
    instance_key: str = _secret()  # the runtime's credential for the internal API
    log_level: LogLevel = "info"
    log_format: LogFormat = "auto"
    # Development: which platform secrets came from <data>/.secrets.json, and which of them this
    # process generated just now (`serve` shows a new admin password once, when it is created).
    dev_secrets: tuple[str, ...] = ()
    generated_secrets: tuple[str, ...] = ()

    def __repr__(self) -> str:
        # Settings end up in tracebacks, debuggers and log lines; a secret must not ride along.
        parts = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.metadata.get("secret") and value:
                parts.append(f"{f.name}='***'")
            else:
                parts.append(f"{f.name}={value!r}")
        return f"{type(self).__name__}({', '.join(parts)})"

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        env_file: str | Path | None = ".env",
    ) -> Settings:
        """Read the configuration; variables in `environ` (default `os.environ`) win over the file.

        A variable present but empty counts as unset, so `FOO=` in a compose file falls back to the
        default rather than to an empty host or port. Raises SettingsError listing every problem.
        """
        values: dict[str, str] = {}
        if env_file is not None and Path(env_file).is_file():
            values.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
        values.update(os.environ if environ is None else environ)
        return _Parser(values).build(cls)

    @property
    def is_production(self) -> bool:
        return self.mode == "production"

    @property
    def payments_sandbox(self) -> bool:
        """Charges go to the embedded sandbox gateway: ASTRA_PAYMENTS=sandbox, or it is unset
        and there is no access token (production then refuses to start, see
        `require_production_secrets`)."""
        if self.payments == "auto":
            return not self.mercadopago_access_token
        return self.payments == "sandbox"

    @property
    def dev_secrets_path(self) -> Path:
        return self.data_dir / DEV_SECRETS_FILE

    def secret_values(self) -> tuple[str, ...]:
        """Every non-empty secret, for the log redactor (the database password on its own too:
        a message may quote it without the rest of the URL)."""
        values = tuple(
            value
            for f in dataclasses.fields(self)
            if f.metadata.get("secret") and (value := getattr(self, f.name))
        )
        return values + _database_passwords(self.database_url)

    def require_production_secrets(self) -> None:
        """Raise SettingsError naming every secret production cannot run without."""
        missing = [env for attr, env in _PLATFORM_SECRETS if not getattr(self, attr)]
        if self.payments == "auto" and not self.mercadopago_access_token:
            # Simulated payments in production must be a decision, never a forgotten token:
            # every charge would be "paid" by whoever can approve sandbox charges.
            missing.append("MERCADOPAGO_ACCESS_TOKEN")
        if (
            not self.payments_sandbox
            and self.mercadopago_access_token
            and not self.mercadopago_webhook_secret
            and not self.allow_unsigned_webhooks
        ):
            # Without it any caller could mark a charge as paid through the webhook.
            missing.append("MERCADOPAGO_WEBHOOK_SECRET")
        if not missing:
            return
        problems = [
            f"{name} is required in production mode" + (
                " (or set ASTRA_PAYMENTS=sandbox to run on simulated payments, where no money"
                " moves)" if name == "MERCADOPAGO_ACCESS_TOKEN" else ""
            )
            for name in missing
        ]
        if "MERCADOPAGO_WEBHOOK_SECRET" in missing:
            problems[-1] += (
                " when MERCADOPAGO_ACCESS_TOKEN is set"
                " (or set ASTRA_ALLOW_UNSIGNED_WEBHOOKS=1 to accept unsigned webhooks)"
            )
        raise SettingsError(problems)

    def with_dev_secrets(self) -> Settings:
        return ensure_dev_secrets(self)


def _database_passwords(url: str) -> tuple[str, ...]:
    if not url:
        return ()
    from urllib.parse import parse_qs, unquote, urlsplit

    try:
        parts = urlsplit(url)
        found = [unquote(parts.password)] if parts.password else []
        found += parse_qs(parts.query).get("password", [])
    except ValueError:
        return ()
    return tuple(p for p in found if p)


def ensure_dev_secrets(settings: Settings) -> Settings:
    """Fill the platform secrets production would require.

    Production: check them and return `settings` unchanged. Development: the missing ones come from
    `<data_dir>/.secrets.json`, created on first use, so a restart keeps sessions valid and tokens
    encrypted under the master key readable.
    """
    missing = [attr for attr, _ in _PLATFORM_SECRETS if not getattr(settings, attr)]
    if settings.tenant:
        # An instance runtime holds no platform secret: placeholders, never written anywhere,
        # that decrypt nothing (it opens no store; the platform holds every key).
        return dataclasses.replace(
            settings, **{attr: secrets.token_urlsafe(32) for attr in missing}
        )
    if settings.is_production:
        settings.require_production_secrets()
        return settings
    if not missing:
        return settings
    stored, generated = _load_or_create_dev_secrets(settings.dev_secrets_path)
    return dataclasses.replace(
        settings,
        dev_secrets=tuple(missing),
        generated_secrets=tuple(a for a in missing if a in generated),
        **{attr: stored[attr] for attr in missing},
    )


def load_settings(
    environ: Mapping[str, str] | None = None, env_file: str | Path | None = ".env"
) -> Settings:
    """What an entrypoint wants: parsed, checked, with development secrets filled in."""
    return ensure_dev_secrets(Settings.from_env(environ, env_file))


def _new_secret(attr: str) -> str:
    # The admin password is typed by a person: shorter, still 128 bits.
    return secrets.token_urlsafe(16 if attr == "admin_password" else 32)


def _load_or_create_dev_secrets(path: Path) -> tuple[dict[str, str], set[str]]:
    """The development secrets by attribute name, and the names generated by this call."""
    path.parent.mkdir(parents=True, exist_ok=True)
    generated = {attr: _new_secret(attr) for attr, _ in _PLATFORM_SECRETS}
    # The file is written whole under a private name, then hard-linked into place: link fails if
    # the name exists, so of two processes starting together exactly one wins, and the loser never
    # reads a half-written file.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({env: generated[attr] for attr, env in _PLATFORM_SECRETS}, f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        else:
            return generated, set(generated)
    finally:
        tmp.unlink(missing_ok=True)
    stored = _read_dev_secrets(path)
    if all(attr in stored for attr, _ in _PLATFORM_SECRETS):
        return stored, set()
    return _add_dev_secrets(path)


def _add_dev_secrets(path: Path) -> tuple[dict[str, str], set[str]]:
    """Give a file from an older version the secrets it lacks, keeping every value it has
    (a changed master key would make every stored bot token undecryptable). Under an flock on
    the file and re-read inside it: of processes racing here, one writes, the others read."""
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        stored = _read_dev_secrets(path)
        missing = [attr for attr, _ in _PLATFORM_SECRETS if attr not in stored]
        if not missing:
            return stored, set()
        stored.update({attr: _new_secret(attr) for attr in missing})
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(out, "w", encoding="utf-8") as f:
            json.dump({env: stored[attr] for attr, env in _PLATFORM_SECRETS}, f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return stored, set(missing)
    finally:
        os.close(fd)


def _read_dev_secrets(path: Path) -> dict[str, str]:
    """The file's secrets by attribute name. Keys are the variables' names
    (ASTRA_MASTER_KEY...); files written before that used the attribute names (master_key...),
    which are still read."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SettingsError(
            [f"{path} is unreadable ({type(exc).__name__}); fix or delete it"]
        ) from None
    found: dict[str, str] = {}
    if isinstance(data, dict):
        for attr, env in _PLATFORM_SECRETS:
            value = data.get(env, data.get(attr))
            if isinstance(value, str) and value:
                found[attr] = value
    # Never rewrite a damaged one: it may hold the only copy of the master key.
    if not isinstance(data, dict) or any(
        attr not in found for attr, _ in _PLATFORM_SECRETS if attr not in _ADDED_LATER
    ):
        names = ", ".join(env for attr, env in _PLATFORM_SECRETS if attr not in _ADDED_LATER)
        raise SettingsError([f"{path} must be a JSON object with non-empty {names}"])
    return found


class _Parser:
    """Collects every problem instead of stopping at the first, so one start-up shows them all."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = values
        self.problems: list[str] = []

    def build(self, cls: type[Settings]) -> Settings:
        d = cls()
        s = self._str
        kwargs = {
            "mode": self._choice("ASTRA_MODE", d.mode, Mode),
            "data_dir": Path(s("ASTRA_DATA_DIR", str(d.data_dir))).expanduser(),
            "database_url": self._database_url("ASTRA_DATABASE_URL"),
            "host": s("ASTRA_HOST", d.host),
            "portal_port": self._port("ASTRA_PORTAL_PORT", d.portal_port),
            "admin_port": self._port("ASTRA_ADMIN_PORT", d.admin_port),
            "internal_host": s("ASTRA_INTERNAL_HOST", d.internal_host),
            "internal_port": self._port("ASTRA_INTERNAL_PORT", d.internal_port),
            "internal_rate_per_second": self._int(
                "ASTRA_INTERNAL_RATE_PER_SECOND", d.internal_rate_per_second, 1, 1_000_000
            ),
            "internal_rate_burst": self._int(
                "ASTRA_INTERNAL_RATE_BURST", d.internal_rate_burst, 1, 1_000_000
            ),
            "public_url": self._url("ASTRA_PUBLIC_URL", d.public_url),
            "trusted_proxies": self._networks("ASTRA_TRUSTED_PROXIES"),
            "session_secret": s("PORTAL_SESSION_SECRET"),
            "admin_token": s("ADMIN_PANEL_TOKEN"),
            "admin_user": s("ADMIN_PANEL_USER", d.admin_user),
            "admin_password": s("ADMIN_PANEL_PASSWORD"),
            "admin_monitor_token": s("ADMIN_MONITOR_TOKEN"),
            "master_key": s("ASTRA_MASTER_KEY"),
            "payments": self._payments("ASTRA_PAYMENTS", "MERCADOPAGO_ACCESS_TOKEN"),
            "mercadopago_access_token": s("MERCADOPAGO_ACCESS_TOKEN"),
            "mercadopago_webhook_secret": s("MERCADOPAGO_WEBHOOK_SECRET"),
            "mercadopago_api_base": self._url("MERCADOPAGO_API_BASE", d.mercadopago_api_base),
            "allow_unsigned_webhooks": self._bool("ASTRA_ALLOW_UNSIGNED_WEBHOOKS", False),
            "discord_api_base": self._url("DISCORD_API_BASE", d.discord_api_base),
            "discord_oauth_base": self._url("DISCORD_OAUTH_BASE", d.discord_oauth_base),
            "discord_client_id": s("DISCORD_CLIENT_ID"),
            "discord_client_secret": s("DISCORD_CLIENT_SECRET"),
            "platform_fee_bps": self._int("ASTRA_PLATFORM_FEE_BPS", d.platform_fee_bps, 0, 10_000),
            "min_withdrawal_cents": self._int(
                "ASTRA_MIN_WITHDRAWAL_CENTS", d.min_withdrawal_cents, 0
            ),
            "cart_ttl_seconds": self._int("ASTRA_CART_TTL_SECONDS", d.cart_ttl_seconds, 1),
            "plan_price_cents": self._int("ASTRA_PLAN_PRICE_CENTS", d.plan_price_cents, 1),
            "plan_days": self._int("ASTRA_PLAN_DAYS", d.plan_days, 1, 3660),
            "trial_days": self._int("ASTRA_TRIAL_DAYS", d.trial_days, 0, 365),
            "max_instances_per_seller": self._int(
                "ASTRA_PLAN_MAX_INSTANCES", d.max_instances_per_seller, 1, 1000
            ),
            "trial_max_instances": self._int(
                "ASTRA_TRIAL_MAX_INSTANCES", d.trial_max_instances, 1, 1000
            ),
            "plan_bonus_cents_per_day": self._int(
                "ASTRA_PLAN_BONUS_CENTS_PER_DAY", d.plan_bonus_cents_per_day, 0
            ),
            "webhook_max_attempts": self._int(
                "ASTRA_WEBHOOK_MAX_ATTEMPTS", d.webhook_max_attempts, 1, 100
            ),
            "webhook_retry_base_seconds": float(self._int(
                "ASTRA_WEBHOOK_RETRY_BASE_SECONDS", int(d.webhook_retry_base_seconds), 1, 3600
            )),
            "payer_email_domain": s("ASTRA_PAYER_EMAIL_DOMAIN", d.payer_email_domain),
            "reconcile_interval_seconds": self._int(
                "ASTRA_RECONCILE_INTERVAL_SECONDS", d.reconcile_interval_seconds, 1, 3600
            ),
            "reconcile_open_interval_seconds": self._int(
                "ASTRA_RECONCILE_OPEN_INTERVAL_SECONDS", d.reconcile_open_interval_seconds,
                1, 3600,
            ),
            "runtime": self._choice("ASTRA_RUNTIME", d.runtime, RuntimeKind),
            "runtime_image": s("ASTRA_RUNTIME_IMAGE", d.runtime_image),
            "docker_network": self._docker_network("ASTRA_DOCKER_NETWORK", d.docker_network),
            "runtime_restart_limit": self._int(
                "ASTRA_RUNTIME_RESTART_LIMIT", d.runtime_restart_limit, 0, 100
            ),
            "runtime_mode": self._choice("ASTRA_RUNTIME_MODE", d.runtime_mode, RuntimeMode),
            "pool_size": self._int("ASTRA_POOL_SIZE", d.pool_size, 1, 1000),
            "pool_grouping": self._choice("ASTRA_POOL_GROUPING", d.pool_grouping, PoolGrouping),
            "process_isolation": self._choice(
                "ASTRA_PROCESS_ISOLATION", d.process_isolation, ProcessIsolation
            ),
            "swarm_network": self._docker_network("ASTRA_SWARM_NETWORK", d.swarm_network),
            "swarm_constraints": s("ASTRA_SWARM_CONSTRAINTS", d.swarm_constraints),
            "platform_url": self._url("ASTRA_PLATFORM_URL", d.platform_url),
            "tenant": self._bool("ASTRA_TENANT", False),
            "instance_id": s("ASTRA_INSTANCE_ID"),
            "instance_key": s("ASTRA_INSTANCE_KEY"),
            "log_level": self._choice("ASTRA_LOG_LEVEL", d.log_level, LogLevel),
            "log_format": self._choice("ASTRA_LOG_FORMAT", d.log_format, LogFormat),
        }
        ports = {
            "ASTRA_PORTAL_PORT": kwargs["portal_port"],
            "ASTRA_ADMIN_PORT": kwargs["admin_port"],
            "ASTRA_INTERNAL_PORT": kwargs["internal_port"],
        }
        names = list(ports)
        for i, first in enumerate(names):
            for second in names[i + 1 :]:
                if ports[first] == ports[second] and ports[first] != 0:
                    self.problems.append(
                        f"{first} and {second} must differ (both are {ports[first]})"
                    )
        if self.problems:
            raise SettingsError(self.problems)
        return cls(**kwargs)  # type: ignore[arg-type]

    def _str(self, name: str, default: str = "") -> str:
        # Surrounding whitespace in a secret is a copy-paste accident, never part of it.
        value = self._values.get(name, "").strip()
        return value or default

    def _checked(self, name: str, default: _T, parse: Callable[[str], _T]) -> _T:
        raw = self._str(name)
        if not raw:
            return default
        try:
            return parse(raw)
        except ValueError as exc:
            self.problems.append(f"{name} {exc}")
            return default

    def _choice(self, name: str, default: str, allowed: object) -> str:
        options = get_args(allowed)

        def parse(raw: str) -> str:
            value = raw.lower()
            if value not in options:
                raise ValueError(f"must be one of {', '.join(options)} (got {raw!r})")
            return value

        return self._checked(name, default, parse)

    def _int(self, name: str, default: int, low: int, high: int | None = None) -> int:
        def parse(raw: str) -> int:
            try:
                value = int(raw)
            except ValueError:
                raise ValueError(f"must be an integer (got {raw!r})") from None
            if value < low or (high is not None and value > high):
                bounds = f"between {low} and {high}" if high is not None else f">= {low}"
                raise ValueError(f"must be {bounds} (got {value})")
            return value

        return self._checked(name, default, parse)

    def _port(self, name: str, default: int) -> int:
        # 0 asks the OS for a free port, which tests rely on.
        return self._int(name, default, 0, 65_535)

    def _payments(self, name: str, token_name: str) -> str:
        def parse(raw: str) -> str:
            value = raw.lower()
            if value not in ("mercadopago", "sandbox"):
                raise ValueError(f"must be mercadopago or sandbox (got {raw!r})")
            if value == "mercadopago" and not self._str(token_name):
                raise ValueError(f"is mercadopago, which needs {token_name}")
            return value

        return self._checked(name, "auto", parse)

    def _docker_network(self, name: str, default: str) -> str:
        def parse(raw: str) -> str:
            # Host networking puts a bot on the host's loopback (the admin panel, every local
            # service) and lets it bind host ports; Docker's default bridge lets containers reach
            # each other; "none" leaves it no way to its platform.
            if raw in ("host", "none", "bridge", "default") or raw.startswith("container:"):
                raise ValueError(
                    f"must name a bridge network for instance runtimes, never {raw!r}"
                )
            return raw

        return self._checked(name, default, parse)

    def _bool(self, name: str, default: bool) -> bool:
        def parse(raw: str) -> bool:
            value = raw.lower()
            if value in _TRUE:
                return True
            if value in _FALSE:
                return False
            raise ValueError(f"must be 1/0, true/false, yes/no or on/off (got {raw!r})")

        return self._checked(name, default, parse)

    def _networks(self, name: str) -> tuple[str, ...]:
        def parse(raw: str) -> tuple[str, ...]:
            out = []
            for item in (part.strip() for part in raw.split(",")):
                if not item:
                    continue
                try:
                    out.append(str(ipaddress.ip_network(item, strict=False)))
                except ValueError:
                    raise ValueError(
                        f"must be comma-separated IP addresses or CIDR networks (got {item!r})"
                    ) from None
            return tuple(out)

        return self._checked(name, (), parse)

    def _database_url(self, name: str) -> str:
        def parse(raw: str) -> str:
            if not raw.startswith(("postgresql://", "postgres://")):
                # Never echo the value: it may hold a password.
                raise ValueError("must be a postgresql:// URL (or be unset for the JSON store)")
            return raw

        return self._checked(name, "", parse)

    def _url(self, name: str, default: str) -> str:
        def parse(raw: str) -> str:
            if not raw.startswith(("http://", "https://")):
                raise ValueError(f"must be an http:// or https:// URL (got {raw!r})")
            # Callers join paths onto it; a trailing slash would double up.
            return raw.rstrip("/")

        return self._checked(name, default, parse)
