"""Settings, parsed once from the environment into one typed, immutable object.

Every variable of the contract's configuration table is read here and nowhere else. A bad value fails at start-up
with a :class:`ConfigError` that names the variable, so an operator sees ``JWT_SECRET: must be at least 32 bytes``
instead of a stack trace from deep inside a library an hour later.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Final, Literal, TypedDict
from urllib.parse import unquote, urlsplit

import msgspec
from advanced_alchemy.extensions.litestar import (
    AlembicAsyncConfig,
    AsyncSessionConfig,
    EngineConfig,
    SQLAlchemyAsyncConfig,
)

from app.db.pooling import driver_options, server_settings

__all__ = (
    "DEV_JWT_SECRET",
    "MIGRATIONS_VERSION_TABLE",
    "ConfigError",
    "RateLimit",
    "Settings",
    "alchemy_config",
)

PROJECT_ROOT: Final = Path(__file__).resolve().parent.parent
MIGRATIONS_VERSION_TABLE: Final = "alembic_versions"

#: Used only when ``APP_ENV=development`` and ``JWT_SECRET`` is unset; production refuses to start with it.
DEV_JWT_SECRET: Final = "development-only-insecure-jwt-secret-change-me"

_ALGORITHMS: Final = ("HS256", "HS384", "HS512")
_RATE_UNITS: Final = ("second", "minute", "hour", "day")
_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"0", "false", "no", "off"})
_LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
#: A payment window under 10 s would cancel orders while their customer is still on the payment page.
MIN_ORDER_PAYMENT_TTL: Final = 10


class ConfigError(ValueError):
    """A configuration variable has a value the service cannot run with."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable


class RateLimit(msgspec.Struct, frozen=True):
    """``count`` requests per ``unit`` (Litestar's rate-limit units)."""

    count: int
    unit: Literal["second", "minute", "hour", "day"]

    def __str__(self) -> str:
        return f"{self.count}/{self.unit}"


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """The service's configuration. Build it with :meth:`from_env`; tests pass their own mapping."""

    app_env: Literal["development", "production"] = "development"
    database_url: str | None = None
    redis_url: str | None = None
    jwt_secret: str = DEV_JWT_SECRET
    jwt_algorithm: str = "HS256"
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    access_token_ttl: int = 900
    refresh_token_ttl: int = 1_209_600
    cookie_secure: bool = True
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_tls: Literal["starttls", "tls", "none"] = "starttls"
    email_from: str = "Orders <orders@example.com>"
    email_backend: Literal["smtp", "console"] = "console"
    rate_limit_auth: RateLimit = RateLimit(count=10, unit="minute")
    cors_origins: tuple[str, ...] = ()
    log_level: str = "INFO"
    # Operational knobs beyond the contract's table (documented in the README).
    db_pool_size: int = 10
    db_max_overflow: int = 10
    db_direct_pool_size: int = 10
    db_pool_mode: Literal["session", "transaction"] = "session"
    data_dir: Path = PROJECT_ROOT / ".data"
    worker_in_process: bool = False
    worker_concurrency: int = 10
    email_max_attempts: int = 8
    email_retry_delay: float = 1.0
    email_retry_backoff: float = 300.0
    live_check_interval: float = 5.0
    # WebSocket limits (CONTRACT §7a): live sockets per user across all processes.
    ws_max_per_user: int = 20
    # Payment timeout (issue 17): seconds a pending order waits for payment (0: forever), and how often workers look.
    order_payment_ttl: int = 1800
    payment_expiry_interval: float = 1.0
    payment_expiry_rate: float = 3_500.0  # orders/s per worker (0: flat out); why this pace: app/events/payment_timeout
    # Safe defaults and secrets (issue 12).
    metrics_token: str | None = None
    # Webhooks (contract §9). ALLOW_PRIVATE / ALLOW_INSECURE are for development and tests: refused in production.
    webhook_allow_private: bool = False
    webhook_allow_insecure: bool = False
    webhook_retry_delay: float = 5.0
    webhook_max_attempts: int = 10
    webhook_disable_after: int = 20
    # Sessions and account lifecycle (CONTRACT §2).
    refresh_session_max_age: int = 2_592_000
    public_base_url: str = "http://127.0.0.1:8000"
    password_reset_ttl: int = 1800
    email_verification_ttl: int = 172_800
    # Operations (CONTRACT §8): graceful shutdown.
    shutdown_drain_seconds: float = 5.0
    worker_shutdown_grace_seconds: int = 20

    @property
    def is_production(self) -> bool:
        return self.app_env == "production"

    def secret_values(self) -> tuple[str, ...]:
        """Every value of this configuration that must never be written to a log line."""
        found = [self.jwt_secret, self.smtp_password, self.metrics_token]
        for url in (self.database_url, self.redis_url):
            if url and (password := urlsplit(url).password):
                found += [password, unquote(password)]
        return tuple(v for v in found if v)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Parse and validate the environment. Raises :class:`ConfigError` naming the first bad variable."""
        env = _Env(os.environ if environ is None else environ)
        app_env = env.choice("APP_ENV", ("development", "production"), "development")
        production = app_env == "production"

        database_url = env.text("DATABASE_URL")
        if database_url is not None and not database_url.startswith("postgresql+asyncpg://"):
            raise ConfigError("DATABASE_URL", "must be a postgresql+asyncpg:// URL")
        redis_url = env.text("REDIS_URL")
        if redis_url is not None and not redis_url.startswith(("redis://", "rediss://")):
            raise ConfigError("REDIS_URL", "must be a redis:// or rediss:// URL")
        if production and database_url is None:
            raise ConfigError(
                "DATABASE_URL",
                "is required when APP_ENV=production (embedded servers are dev-only)",
            )
        if production and redis_url is None:
            raise ConfigError(
                "REDIS_URL",
                "is required when APP_ENV=production (embedded servers are dev-only)",
            )

        jwt_secret = env.text("JWT_SECRET")
        if jwt_secret is None:
            if production:
                raise ConfigError("JWT_SECRET", "is required when APP_ENV=production")
            if database_url is not None:
                # The built-in key is public (it is in this file): anyone could sign an admin token with it. It is
                # only for the embedded servers of a developer's machine; a real database means real users.
                raise ConfigError(
                    "JWT_SECRET",
                    "is required when DATABASE_URL is set (the built-in development key serves only the embedded "
                    "servers); set it to 32+ random bytes",
                )
            jwt_secret = DEV_JWT_SECRET
        elif len(jwt_secret.encode()) < 32:
            raise ConfigError("JWT_SECRET", "must be at least 32 bytes")
        if production and (jwt_secret == DEV_JWT_SECRET or len(set(jwt_secret)) < 10):
            raise ConfigError("JWT_SECRET", "is too weak for production; use 32+ random bytes")

        smtp_host = env.text("SMTP_HOST")
        smtp_tls = env.choice("SMTP_TLS", ("starttls", "tls", "none"), "starttls")
        default_port = {"starttls": 587, "tls": 465, "none": 25}[smtp_tls]
        email_backend = env.choice("EMAIL_BACKEND", ("smtp", "console"), "smtp" if smtp_host else "console")
        if email_backend == "smtp" and not smtp_host:
            raise ConfigError("SMTP_HOST", "is required when EMAIL_BACKEND=smtp")

        order_payment_ttl = env.integer("ORDER_PAYMENT_TTL", 1800, minimum=0)
        if 0 < order_payment_ttl < MIN_ORDER_PAYMENT_TTL:
            raise ConfigError(
                "ORDER_PAYMENT_TTL",
                f"must be 0 (off) or at least {MIN_ORDER_PAYMENT_TTL} seconds, got {order_payment_ttl}",
            )
        cors_origins = env.items("CORS_ORIGINS")
        if "*" in cors_origins:
            # Credentials (the refresh cookie) are allowed cross-origin, so the allowed origins must be named.
            raise ConfigError("CORS_ORIGINS", "must list origins (https://shop.example.com); '*' is refused")

        return cls(
            app_env=app_env,  # type: ignore[arg-type]  # narrowed by choice()
            database_url=database_url,
            redis_url=redis_url,
            jwt_secret=jwt_secret,
            jwt_algorithm=env.choice("JWT_ALGORITHM", _ALGORITHMS, "HS256", upper=True),
            jwt_issuer=env.text("JWT_ISSUER"),
            jwt_audience=env.text("JWT_AUDIENCE"),
            access_token_ttl=env.integer("ACCESS_TOKEN_TTL", 900, minimum=30),
            refresh_token_ttl=env.integer("REFRESH_TOKEN_TTL", 1_209_600, minimum=60),
            cookie_secure=env.boolean("COOKIE_SECURE", True),
            smtp_host=smtp_host,
            smtp_port=env.integer("SMTP_PORT", default_port, minimum=1, maximum=65535),
            smtp_username=env.text("SMTP_USERNAME"),
            smtp_password=env.text("SMTP_PASSWORD"),
            smtp_tls=smtp_tls,  # type: ignore[arg-type]
            email_from=env.text("EMAIL_FROM") or "Orders <orders@example.com>",
            email_backend=email_backend,  # type: ignore[arg-type]
            rate_limit_auth=env.rate("RATE_LIMIT_AUTH", RateLimit(count=10, unit="minute")),
            cors_origins=cors_origins,
            log_level=env.choice("LOG_LEVEL", _LOG_LEVELS, "INFO", upper=True),
            db_pool_size=env.integer("DB_POOL_SIZE", 10, minimum=1, maximum=200),
            db_max_overflow=env.integer("DB_MAX_OVERFLOW", 10, minimum=0, maximum=200),
            db_direct_pool_size=env.integer("DB_DIRECT_POOL_SIZE", 10, minimum=1, maximum=200),
            db_pool_mode=env.choice("DB_POOL_MODE", ("session", "transaction"), "session"),  # type: ignore[arg-type]
            data_dir=Path(env.text("DATA_DIR") or PROJECT_ROOT / ".data"),
            worker_in_process=env.boolean("WORKER_IN_PROCESS", False),
            worker_concurrency=env.integer("WORKER_CONCURRENCY", 10, minimum=1, maximum=1000),
            email_max_attempts=env.integer("EMAIL_MAX_ATTEMPTS", 8, minimum=1, maximum=100),
            email_retry_delay=env.number("EMAIL_RETRY_DELAY", 1.0, minimum=0.0),
            email_retry_backoff=env.number("EMAIL_RETRY_BACKOFF", 300.0, minimum=0.0),
            live_check_interval=env.number("LIVE_CHECK_INTERVAL", 5.0, minimum=0.1),
            ws_max_per_user=env.integer("WS_MAX_PER_USER", 20, minimum=1, maximum=10_000),
            order_payment_ttl=order_payment_ttl,
            payment_expiry_interval=env.number("PAYMENT_EXPIRY_INTERVAL", 1.0, minimum=0.05),
            payment_expiry_rate=env.number("PAYMENT_EXPIRY_RATE", 3_500.0, minimum=0.0),
            metrics_token=env.text("METRICS_TOKEN"),
            **_webhook_settings(env, production=production),
            # Sessions and account lifecycle (CONTRACT §2).
            refresh_session_max_age=env.integer("REFRESH_SESSION_MAX_AGE", 2_592_000, minimum=60),
            public_base_url=_base_url(env.text("PUBLIC_BASE_URL") or "http://127.0.0.1:8000"),
            password_reset_ttl=env.integer("PASSWORD_RESET_TTL", 1800, minimum=60),
            email_verification_ttl=env.integer("EMAIL_VERIFICATION_TTL", 172_800, minimum=60),
            shutdown_drain_seconds=env.number("SHUTDOWN_DRAIN_SECONDS", 5.0, minimum=0.0, maximum=300.0),
            worker_shutdown_grace_seconds=env.integer("WORKER_SHUTDOWN_GRACE_SECONDS", 20, minimum=0, maximum=3600),
        )


class _WebhookSettings(TypedDict):
    webhook_allow_private: bool
    webhook_allow_insecure: bool
    webhook_retry_delay: float
    webhook_max_attempts: int
    webhook_disable_after: int


def _webhook_settings(env: _Env, *, production: bool) -> _WebhookSettings:
    """The ``WEBHOOK_*`` variables. Private targets and plain HTTP would let an admin token reach internal services
    (SSRF) or send signed payloads in clear text, so production refuses both switches."""
    allow_private = env.boolean("WEBHOOK_ALLOW_PRIVATE", False)
    allow_insecure = env.boolean("WEBHOOK_ALLOW_INSECURE", False)
    for name, value in (("WEBHOOK_ALLOW_PRIVATE", allow_private), ("WEBHOOK_ALLOW_INSECURE", allow_insecure)):
        if production and value:
            raise ConfigError(name, "is for development and tests only; refused when APP_ENV=production")
    return _WebhookSettings(
        webhook_allow_private=allow_private,
        webhook_allow_insecure=allow_insecure,
        webhook_retry_delay=env.number("WEBHOOK_RETRY_DELAY", 5.0, minimum=0.0),
        webhook_max_attempts=env.integer("WEBHOOK_MAX_ATTEMPTS", 10, minimum=1, maximum=50),
        webhook_disable_after=env.integer("WEBHOOK_DISABLE_AFTER", 20, minimum=1, maximum=100_000),
    )


def _base_url(raw: str) -> str:
    """``PUBLIC_BASE_URL`` without its trailing slash (links append ``/reset-password?…``)."""
    if not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", raw):
        raise ConfigError(
            "PUBLIC_BASE_URL", f"must be an http:// or https:// URL without query or fragment, got {raw!r}"
        )
    return raw.rstrip("/")


class _Env:
    """Typed accessors over an environment mapping; every failure names its variable."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def text(self, name: str) -> str | None:
        value = self._environ.get(name, "").strip()
        return value or None

    def integer(self, name: str, default: int, *, minimum: int, maximum: int | None = None) -> int:
        raw = self.text(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(name, f"must be an integer, got {raw!r}") from None
        if value < minimum or (maximum is not None and value > maximum):
            bounds = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
            raise ConfigError(name, f"must be {bounds}, got {value}")
        return value

    def number(self, name: str, default: float, *, minimum: float, maximum: float | None = None) -> float:
        raw = self.text(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(name, f"must be a number, got {raw!r}") from None
        if not value >= minimum:  # also rejects NaN
            raise ConfigError(name, f"must be at least {minimum}, got {raw}")
        if maximum is not None and value > maximum:
            raise ConfigError(name, f"must be at most {maximum}, got {raw}")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        raw = self.text(name)
        if raw is None:
            return default
        if raw.lower() in _TRUE:
            return True
        if raw.lower() in _FALSE:
            return False
        raise ConfigError(name, f"must be true or false, got {raw!r}")

    def choice(self, name: str, choices: tuple[str, ...], default: str, *, upper: bool = False) -> str:
        raw = self.text(name)
        if raw is None:
            return default
        value = raw.upper() if upper else raw.lower()
        if value not in choices:
            raise ConfigError(name, f"must be one of {', '.join(choices)}, got {raw!r}")
        return value

    def items(self, name: str) -> tuple[str, ...]:
        raw = self.text(name)
        return tuple(item.strip() for item in raw.split(",") if item.strip()) if raw else ()

    def rate(self, name: str, default: RateLimit) -> RateLimit:
        raw = self.text(name)
        if raw is None:
            return default
        match = re.fullmatch(r"\s*(\d+)\s*/\s*([a-z]+?)s?\s*", raw.lower())
        if not match or match.group(2) not in _RATE_UNITS or int(match.group(1)) < 1:
            raise ConfigError(
                name,
                f"must look like 10/minute (units: {', '.join(_RATE_UNITS)}), got {raw!r}",
            )
        return RateLimit(count=int(match.group(1)), unit=match.group(2))  # type: ignore[arg-type]


def alchemy_config(settings: Settings) -> SQLAlchemyAsyncConfig:
    """advanced-alchemy's config: pooled asyncpg engine, Alembic in ``migrations/``, explicit commits.

    ``before_send_handler=None`` only closes the request's session: services commit explicitly, because the
    ``autocommit`` handler commits after the response status is chosen and swallows a failing commit.
    """
    if settings.database_url is None:
        raise ConfigError("DATABASE_URL", "is not set (resolve embedded services first)")
    return SQLAlchemyAsyncConfig(
        connection_string=settings.database_url,
        engine_config=EngineConfig(
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_recycle=1800,
            pool_timeout=10,
            # SQLAlchemy puts a statement's parameters (emails, token hashes) into its error messages, and so into
            # logged tracebacks; the SQL and the SQLSTATE say enough.
            hide_parameters=True,
            connect_args={
                # No JIT in session mode: see ``app.db.pooling.server_settings``.
                "server_settings": server_settings(settings.db_pool_mode),
                "timeout": 5,
                **driver_options(settings.db_pool_mode),
            },
        ),
        session_config=AsyncSessionConfig(expire_on_commit=False),
        before_send_handler=None,
        create_all=False,
        alembic_config=alembic_config(),
    )


def alembic_config() -> AlembicAsyncConfig:
    return AlembicAsyncConfig(
        script_location=str(PROJECT_ROOT / "migrations"),
        script_config=str(PROJECT_ROOT / "migrations" / "alembic.ini"),
        version_table_name=MIGRATIONS_VERSION_TABLE,
        compare_type=True,
        render_as_batch=False,
    )
