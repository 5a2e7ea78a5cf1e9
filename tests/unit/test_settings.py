"""Settings.from_env: the contract's defaults, and a ConfigError naming the variable for every bad value."""

from __future__ import annotations

import secrets

import pytest

from app.config import DEV_JWT_SECRET, ConfigError, RateLimit, Settings

PRODUCTION = {
    "APP_ENV": "production",
    "DATABASE_URL": "postgresql+asyncpg://app@db/orders",
    "REDIS_URL": "redis://cache:6379/0",
}


def test_defaults_match_the_contract_table() -> None:
    settings = Settings.from_env({})

    assert settings.app_env == "development"
    assert settings.database_url is None
    assert settings.redis_url is None
    assert settings.jwt_secret == DEV_JWT_SECRET
    assert (settings.jwt_algorithm, settings.jwt_issuer, settings.jwt_audience) == ("HS256", None, None)
    assert (settings.access_token_ttl, settings.refresh_token_ttl) == (900, 1_209_600)
    assert settings.cookie_secure is True
    assert settings.email_backend == "console"
    assert settings.rate_limit_auth == RateLimit(count=10, unit="minute")
    assert settings.cors_origins == ()
    assert settings.log_level == "INFO"


def test_email_backend_defaults_to_smtp_when_smtp_host_is_set() -> None:
    assert Settings.from_env({"SMTP_HOST": "mail.example.com"}).email_backend == "smtp"


def test_valid_values_are_parsed() -> None:
    settings = Settings.from_env(
        {
            "ACCESS_TOKEN_TTL": "60",
            "COOKIE_SECURE": "false",
            "RATE_LIMIT_AUTH": "5/seconds",
            "CORS_ORIGINS": "https://a.example, https://b.example",
            "JWT_ALGORITHM": "hs512",
            "LOG_LEVEL": "debug",
        }
    )

    assert settings.access_token_ttl == 60
    assert settings.cookie_secure is False
    assert settings.rate_limit_auth == RateLimit(count=5, unit="second")
    assert settings.cors_origins == ("https://a.example", "https://b.example")
    assert settings.jwt_algorithm == "HS512"
    assert settings.log_level == "DEBUG"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ACCESS_TOKEN_TTL", "abc"),
        ("ACCESS_TOKEN_TTL", "0"),
        ("REFRESH_TOKEN_TTL", "-5"),
        ("COOKIE_SECURE", "maybe"),
        ("RATE_LIMIT_AUTH", "ten"),
        ("RATE_LIMIT_AUTH", "10/fortnight"),
        ("RATE_LIMIT_AUTH", "0/minute"),
        ("DATABASE_URL", "mysql://x"),
        ("DATABASE_URL", "postgresql://x/db"),
        ("REDIS_URL", "memcached://x"),
        ("JWT_ALGORITHM", "none"),
        ("JWT_ALGORITHM", "RS256"),
        ("JWT_SECRET", "too-short"),
        ("APP_ENV", "staging"),
        ("LOG_LEVEL", "LOUD"),
        ("SMTP_PORT", "70000"),
        ("SMTP_TLS", "sometimes"),
        ("EMAIL_BACKEND", "pigeon"),
        ("SHUTDOWN_DRAIN_SECONDS", "-1"),
        ("SHUTDOWN_DRAIN_SECONDS", "soon"),
        ("SHUTDOWN_DRAIN_SECONDS", "301"),
        ("WORKER_SHUTDOWN_GRACE_SECONDS", "1.5"),
        ("DB_POOL_MODE", "statement"),
        ("PAYMENT_EXPIRY_RATE", "-1"),
        ("PAYMENT_EXPIRY_RATE", "fast"),
    ],
)
def test_bad_value_raises_config_error_naming_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({variable: value})

    assert raised.value.variable == variable
    assert str(raised.value).startswith(f"{variable}:")


def test_smtp_backend_without_host_names_smtp_host() -> None:
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({"EMAIL_BACKEND": "smtp"})

    assert raised.value.variable == "SMTP_HOST"


def test_production_without_jwt_secret_refuses() -> None:
    with pytest.raises(ConfigError) as raised:
        Settings.from_env(PRODUCTION)

    assert raised.value.variable == "JWT_SECRET"


def test_production_with_short_jwt_secret_refuses() -> None:
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({**PRODUCTION, "JWT_SECRET": secrets.token_hex(15)})

    assert raised.value.variable == "JWT_SECRET"


@pytest.mark.parametrize("secret", ["a" * 64, "ab" * 32, DEV_JWT_SECRET])
def test_production_with_low_entropy_or_dev_jwt_secret_refuses(secret: str) -> None:
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({**PRODUCTION, "JWT_SECRET": secret})

    assert raised.value.variable == "JWT_SECRET"


@pytest.mark.parametrize("missing", ["DATABASE_URL", "REDIS_URL"])
def test_production_without_server_urls_refuses(missing: str) -> None:
    env = {**PRODUCTION, "JWT_SECRET": secrets.token_urlsafe(48)}
    del env[missing]

    with pytest.raises(ConfigError) as raised:
        Settings.from_env(env)

    assert raised.value.variable == missing


def test_production_with_strong_secret_starts() -> None:
    secret = secrets.token_urlsafe(48)

    settings = Settings.from_env({**PRODUCTION, "JWT_SECRET": secret})

    assert settings.is_production
    assert settings.jwt_secret == secret


def test_order_payment_ttl_defaults_to_thirty_minutes_and_zero_turns_it_off() -> None:
    assert Settings.from_env({}).order_payment_ttl == 1800
    assert Settings.from_env({"ORDER_PAYMENT_TTL": "0"}).order_payment_ttl == 0
    assert Settings.from_env({"ORDER_PAYMENT_TTL": "10"}).order_payment_ttl == 10


def test_payment_expiry_sweeps_every_second_at_3500_orders_per_second_and_zero_means_flat_out() -> None:
    defaults = Settings.from_env({})
    assert (defaults.payment_expiry_interval, defaults.payment_expiry_rate) == (1.0, 3500.0)
    assert Settings.from_env({"PAYMENT_EXPIRY_RATE": "0"}).payment_expiry_rate == 0.0


@pytest.mark.parametrize("value", ["1", "9", "-1", "soon"])
def test_order_payment_ttl_refuses_one_to_nine_seconds_and_non_integers(value: str) -> None:
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({"ORDER_PAYMENT_TTL": value})

    assert raised.value.variable == "ORDER_PAYMENT_TTL"


@pytest.mark.parametrize("origins", ["*", "https://shop.example.com, *"])
def test_cors_wildcard_is_refused(origins: str) -> None:
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({"CORS_ORIGINS": origins})

    assert raised.value.variable == "CORS_ORIGINS"
    assert "'*' is refused" in str(raised.value)


def test_database_url_without_jwt_secret_refuses_the_development_key() -> None:
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({"DATABASE_URL": "postgresql+asyncpg://app@db/orders"})

    assert raised.value.variable == "JWT_SECRET"
    assert "DATABASE_URL" in str(raised.value)


def test_database_url_with_jwt_secret_starts() -> None:
    secret = secrets.token_urlsafe(48)

    settings = Settings.from_env({"DATABASE_URL": "postgresql+asyncpg://app@db/orders", "JWT_SECRET": secret})

    assert settings.jwt_secret == secret


def test_metrics_token_is_read() -> None:
    assert Settings.from_env({}).metrics_token is None
    assert Settings.from_env({"METRICS_TOKEN": "scrape-me-please"}).metrics_token == "scrape-me-please"


def test_secret_values_are_every_secret_of_the_configuration() -> None:
    settings = Settings.from_env(
        {
            "DATABASE_URL": "postgresql+asyncpg://app:db%40pass-123@db/orders",
            "REDIS_URL": "redis://default:redis-pass-456@cache:6379/0",
            "JWT_SECRET": "j" * 16 + "k" * 16,
            "SMTP_HOST": "mail.example.com",
            "SMTP_PASSWORD": "smtp-pass-789",
            "METRICS_TOKEN": "metrics-token-0",
        }
    )

    assert set(settings.secret_values()) == {
        "j" * 16 + "k" * 16,
        "db%40pass-123",
        "db@pass-123",
        "redis-pass-456",
        "smtp-pass-789",
        "metrics-token-0",
    }


def test_webhook_settings_default_to_the_contract_table() -> None:
    settings = Settings.from_env({})

    assert (settings.webhook_allow_private, settings.webhook_allow_insecure) == (False, False)
    assert settings.webhook_retry_delay == 5.0
    assert (settings.webhook_max_attempts, settings.webhook_disable_after) == (10, 20)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("WEBHOOK_ALLOW_PRIVATE", "maybe"),
        ("WEBHOOK_RETRY_DELAY", "-1"),
        ("WEBHOOK_MAX_ATTEMPTS", "0"),
        ("WEBHOOK_DISABLE_AFTER", "x"),
    ],
)
def test_bad_webhook_value_names_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        Settings.from_env({variable: value})


@pytest.mark.parametrize("variable", ["WEBHOOK_ALLOW_PRIVATE", "WEBHOOK_ALLOW_INSECURE"])
def test_production_refuses_development_only_webhook_switches(variable: str) -> None:
    env = {**PRODUCTION, "JWT_SECRET": secrets.token_urlsafe(48), variable: "true"}

    with pytest.raises(ConfigError, match=variable):
        Settings.from_env(env)


def test_account_lifecycle_defaults_match_the_contract_table() -> None:
    settings = Settings.from_env({})

    assert settings.refresh_session_max_age == 2_592_000
    assert settings.public_base_url == "http://127.0.0.1:8000"
    assert (settings.password_reset_ttl, settings.email_verification_ttl) == (1800, 172_800)


def test_public_base_url_loses_its_trailing_slash() -> None:
    assert Settings.from_env({"PUBLIC_BASE_URL": "https://shop.example.com/app/"}).public_base_url == (
        "https://shop.example.com/app"
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PUBLIC_BASE_URL", "shop.example.com"),
        ("PUBLIC_BASE_URL", "https://shop.example.com/?next=x"),
        ("REFRESH_SESSION_MAX_AGE", "10"),
        ("PASSWORD_RESET_TTL", "abc"),
        ("EMAIL_VERIFICATION_TTL", "0"),
    ],
)
def test_bad_account_lifecycle_values_name_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigError) as error:
        Settings.from_env({variable: value})

    assert error.value.variable == variable


def test_shutdown_and_pool_mode_defaults_match_the_contract_table() -> None:
    settings = Settings.from_env({})

    assert (settings.shutdown_drain_seconds, settings.db_pool_mode) == (5.0, "session")
    assert settings.worker_shutdown_grace_seconds == 20


def test_a_drain_of_zero_seconds_is_allowed_and_transaction_pooling_is_parsed() -> None:
    settings = Settings.from_env({"SHUTDOWN_DRAIN_SECONDS": "0", "DB_POOL_MODE": "Transaction"})

    assert (settings.shutdown_drain_seconds, settings.db_pool_mode) == (0.0, "transaction")
