"""GET /admin/jobs: failed and pending email deliveries are visible to staff, with the job's last error."""

from __future__ import annotations

import asyncio

import httpx

from tests.integration.events.conftest import Mailbox
from tests.integration.orders.conftest import Shopper, place
from tests.support import ProductMaker


async def test_an_email_that_keeps_failing_is_listed_with_its_error(
    events_client: httpx.AsyncClient, alice: Shopper, staff: dict[str, str], products: ProductMaker, mailbox: Mailbox
) -> None:
    mailbox.fail_next = 10_000  # the SMTP server refuses everything
    product = await products(stock=5)
    order_id = (await place(events_client, alice, (product, 1))).json()["id"]

    for _ in range(100):
        overview = (await events_client.get("/admin/jobs", headers=staff)).json()
        pending = [e for e in overview["undelivered_emails"] if e["order_id"] == order_id]
        if pending and pending[0]["job"] and pending[0]["job"]["attempts"] >= 2:
            break
        await asyncio.sleep(0.1)

    [email] = pending
    assert email["type"] == "order_created"
    assert email["event_id"] is not None
    assert email["job"]["error"] is not None
    assert "451" in email["job"]["error"]
    assert set(overview["queue"]) == {"name", "queued", "active", "scheduled", "workers"}


async def test_delivered_emails_are_not_listed(
    events_client: httpx.AsyncClient, alice: Shopper, staff: dict[str, str], products: ProductMaker, mailbox: Mailbox
) -> None:
    product = await products(stock=5)
    order_id = (await place(events_client, alice, (product, 1))).json()["id"]
    await mailbox.wait_for(1)
    await asyncio.sleep(0.2)  # the job records the delivery right after the SMTP server accepted it

    overview = (await events_client.get("/admin/jobs", headers=staff)).json()

    assert order_id not in {e["order_id"] for e in overview["undelivered_emails"]}


async def test_jobs_overview_needs_orders_manage(events_client: httpx.AsyncClient, alice: Shopper) -> None:
    assert (await events_client.get("/admin/jobs", headers=alice.headers)).status_code == 403
    assert (await events_client.get("/admin/jobs")).status_code == 401
