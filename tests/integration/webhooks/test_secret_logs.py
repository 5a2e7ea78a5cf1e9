"""Webhook secrets never reach the logs, even when a delivery fails with an error that quotes them.

A real API process and a real worker process (``litestar workers run``, as deployed) deliver to a receiver that
answers 500; a database trigger then makes recording the failure raise an error whose message holds the endpoint's
current and previous secrets (as a careless driver or library message might), so the webhook job fails and SAQ logs
it with its traceback. Everything both processes wrote is searched for both secrets, whole and in pieces.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from app.config import Settings
from tests.integration.core.test_log_secrets import _empty_tables, _pieces, _run_script, _wait_for_line
from tests.integration.webhooks.conftest import Receiver
from tests.support import AddressMaker, ProductMaker, UserMaker, api_and_worker, process_env, webhook_redis_url

pytestmark = pytest.mark.slow

PASSWORD = "webhook-log-test-password"
JWT_SECRET = "webhook-log-test-jwt-secret-0123456789abcdef"
#: Recording an attempt (not claiming it) fails, quoting the endpoint's secrets in the error message.
FAULT = """
CREATE FUNCTION injected_secret_fault() RETURNS trigger LANGUAGE plpgsql AS $$
  DECLARE quoted text;
  BEGIN
    SELECT secret || ' ' || coalesce(previous_secret, '') INTO quoted FROM webhook_endpoints WHERE id = NEW.endpoint_id;
    RAISE EXCEPTION 'injected fault, secrets %', quoted;
  END $$;
CREATE TRIGGER injected_secret_fault BEFORE UPDATE ON webhook_deliveries
  FOR EACH ROW WHEN (NEW.attempts <> OLD.attempts) EXECUTE FUNCTION injected_secret_fault();
"""
NO_FAULT = """
DROP TRIGGER IF EXISTS injected_secret_fault ON webhook_deliveries;
DROP FUNCTION IF EXISTS injected_secret_fault();
"""


async def test_a_delivery_failing_with_an_error_that_quotes_the_secrets_logs_neither_secret(
    settings: Settings, engine: AsyncEngine, receiver: Receiver, tmp_path: Path
) -> None:
    receiver.default = 500
    async with async_sessionmaker(engine, expire_on_commit=False)() as session:
        admin = await UserMaker(session)(roles=("admin",), password=PASSWORD)
        customer = await UserMaker(session)(password=PASSWORD)
        address = await AddressMaker(session)(customer)
        product = await ProductMaker(session)(stock=5)
    env = process_env(
        settings,
        JWT_SECRET=JWT_SECRET,
        EMAIL_BACKEND="console",
        COOKIE_SECURE="false",
        LOG_LEVEL="INFO",
        DB_POOL_SIZE="3",
        LITESTAR_APP="app.main:app",
        WEBHOOK_ALLOW_PRIVATE="true",  # the receiver is on 127.0.0.1
        WEBHOOK_ALLOW_INSECURE="true",
        WEBHOOK_RETRY_DELAY="0.1",
        REDIS_URL=webhook_redis_url(settings.redis_url),  # the webhook tests' own queue (see the conftest)
    )
    log_path = tmp_path / "output.log"
    with log_path.open("wb") as log:
        try:
            async with api_and_worker(env, log, stop_within=20) as base, httpx.AsyncClient(base_url=base) as client:
                headers = {}
                for user in (admin, customer):
                    login = await client.post("/auth/login", json={"email": user.email, "password": PASSWORD})
                    assert login.status_code == 200, login.text
                    headers[user.email] = {"Authorization": f"Bearer {login.json()['access_token']}"}
                created = await client.post("/admin/webhooks", json={"url": receiver.url}, headers=headers[admin.email])
                assert created.status_code == 201, created.text
                endpoint_id = created.json()["id"]
                rotated = await client.post(
                    f"/admin/webhooks/{endpoint_id}/rotate-secret", headers=headers[admin.email]
                )
                assert rotated.status_code == 200, rotated.text
                await _run_script(engine, FAULT)
                order = {
                    "items": [{"product_id": str(product.id), "quantity": 1}],
                    "shipping_address_id": str(address.id),
                }
                placed = await client.post("/orders", json=order, headers=headers[customer.email])
                assert placed.status_code == 201, placed.text
                await receiver.wait_for(1, within=60)
                await _wait_for_line(log_path, "injected fault, secrets")
        finally:
            await _run_script(engine, NO_FAULT)
            await _empty_tables(engine)
    output = log_path.read_text(errors="replace")
    secrets = {"secret": created.json()["secret"], "rotated secret": rotated.json()["secret"]}

    assert "injected fault, secrets [REDACTED] [REDACTED]" in output  # the error was logged, secrets replaced
    for name, secret in secrets.items():
        leaked = sorted(piece for piece in _pieces(secret) if piece in output)
        assert not leaked, f"the {name} is in the logs: {leaked[:3]}"
