"""/metrics: Prometheus text with request counts and latencies labelled by route template and status."""

from __future__ import annotations

import uuid

import httpx
import pytest

from app.config import Settings
from tests.integration.core.dedicated_app import running_app


async def test_metrics_is_prometheus_text_without_credentials(client: httpx.AsyncClient) -> None:
    await client.get("/health")

    response = await client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert 'orders_requests_total{method="GET",path="/health",status_code="200"}' in response.text
    assert "orders_request_duration_seconds_bucket" in response.text


async def test_metrics_label_routes_by_template_not_by_concrete_path(
    client: httpx.AsyncClient, make_user, auth_headers
) -> None:
    user = await make_user()
    session_id = uuid.uuid4()
    await client.delete(f"/auth/sessions/{session_id}", headers=auth_headers(user))

    text = (await client.get("/metrics")).text

    assert 'path="/auth/sessions/{session_id}",status_code="404"' in text
    assert str(session_id) not in text


async def test_metrics_do_not_grow_a_label_per_unknown_url(client: httpx.AsyncClient) -> None:
    probe = f"/scanner-{uuid.uuid4().hex}"
    await client.get(probe)

    assert probe not in (await client.get("/metrics")).text


async def test_metrics_report_the_task_queue_depth(client: httpx.AsyncClient) -> None:
    text = (await client.get("/metrics")).text

    assert 'orders_queue_jobs{queue="orders",state="queued"}' in text


METRICS_TOKEN = "metrics-" + "t" * 24


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token", f"Basic {METRICS_TOKEN}", f"Bearer {METRICS_TOKEN[:-1]}", "Bearer "],
    ids=["missing", "wrong", "other-scheme", "prefix", "empty"],
)
async def test_metrics_token_set_refuses_a_scrape_without_it(settings: Settings, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    async with running_app(settings, METRICS_TOKEN=METRICS_TOKEN) as client:
        response = await client.get("/metrics", headers=headers)

    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"] == "Bearer"
    assert "orders_requests_total" not in response.text


async def test_metrics_token_set_lets_its_bearer_scrape(settings: Settings) -> None:
    async with running_app(settings, METRICS_TOKEN=METRICS_TOKEN) as client:
        response = await client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})

    assert response.status_code == 200
    assert "orders_request_duration_seconds_bucket" in response.text
