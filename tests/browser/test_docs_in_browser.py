"""The interactive docs in a real headless Chromium, with every request that leaves the service blocked.

A user opens ``/schema``, sees the operations, logs in with *Authorize* (the OAuth2 password form, which posts to
``/auth/token``), runs ``GET /auth/me`` with *Try it out* → *Execute*, and reads their email in the response. The
browser may reach only the server under test: any other request is aborted and fails the test, so a page that
needed a CDN (fonts, scripts, styles, an icon) would show up here even on a machine with internet access.

Chromium is Debian's (``/usr/bin/chromium``), driven by Playwright without a browser download. Where it is missing
the test is skipped, unless ``REQUIRE_BROWSER_TESTS=1`` (as ``.ci/run`` sets) turns the skip into a failure. On
failure a full-page screenshot is kept in ``test-artifacts/`` (git-ignored).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import Browser, Page, Route, async_playwright, expect

from app.config import PROJECT_ROOT, Settings
from tests.conftest import Servers
from tests.live_server import LiveServer, live_server

pytestmark = pytest.mark.slow

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
REQUIRED = os.environ.get("REQUIRE_BROWSER_TESTS") == "1"
SCREENSHOTS = PROJECT_ROOT / "test-artifacts"
EMAIL = "docs-reader@example.com"
PASSWORD = "docs-reader-password-1"
#: Generous bound for the page and each answer (a first load parses 1.5 MB of JavaScript on a busy 2-core machine).
TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.is_file():
        reason = f"Chromium is not installed at {CHROMIUM} (Debian: apt-get install chromium)"
        if REQUIRED:
            pytest.fail(f"{reason}, and REQUIRE_BROWSER_TESTS=1")
        pytest.skip(reason)
    return CHROMIUM


@pytest.fixture(scope="module")
def docs_server(chromium: Path, servers: Servers, settings: Settings) -> Iterator[LiveServer]:
    with live_server(servers, settings, name="orders_docs") as server:
        registered = httpx.post(f"{server.url}/auth/register", json={"email": EMAIL, "password": PASSWORD})
        assert registered.status_code == 201, registered.text
        yield server


def _documented_operations(server: LiveServer) -> set[tuple[str, str]]:
    paths = httpx.get(f"{server.url}/schema/openapi.json").json()["paths"]
    return {(method, path) for path, item in paths.items() for method in item if method in _METHODS}


_METHODS = frozenset({"get", "put", "post", "delete", "patch", "head", "options"})


async def _open(browser: Browser, server: LiveServer, blocked: list[str]) -> Page:
    """A page whose requests to anything but ``server`` are aborted and recorded."""
    origin = urlsplit(server.url).netloc
    context = await browser.new_context()

    async def only_the_server(route: Route) -> None:
        if urlsplit(route.request.url).netloc == origin:
            await route.continue_()
        else:
            blocked.append(route.request.url)
            await route.abort("internetdisconnected")

    await context.route("**/*", only_the_server)
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    return page


async def test_a_customer_authorizes_and_runs_get_auth_me_from_the_docs_offline(
    chromium: Path, docs_server: LiveServer, request: pytest.FixtureRequest
) -> None:
    blocked: list[str] = []
    errors: list[str] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, headless=True)
        page = await _open(browser, docs_server, blocked)
        page.on("pageerror", lambda error: errors.append(str(error)))
        try:
            await page.goto(f"{docs_server.url}/schema")
            me = page.locator(".opblock-get", has=page.locator(".opblock-summary-path[data-path='/auth/me']"))
            await expect(me).to_be_visible(timeout=TIMEOUT_MS)
            listed = await page.locator(".opblock").evaluate_all(
                """blocks => blocks.map(block => [
                    block.querySelector('.opblock-summary-method').textContent.toLowerCase(),
                    block.querySelector('.opblock-summary-path').dataset.path,
                ])"""
            )
            assert {tuple(operation) for operation in listed} == _documented_operations(docs_server)
            await expect(page.locator(".info")).to_contain_text("Live order events (WebSocket)")

            await page.locator(".auth-wrapper button.authorize").click()
            await page.locator("#oauth_username").fill(EMAIL)
            await page.locator("#oauth_password").fill(PASSWORD)
            await page.locator(".modal-ux button.modal-btn.authorize").click()
            await expect(page.locator(".modal-ux button", has_text="Logout")).to_be_visible(timeout=TIMEOUT_MS)
            await page.locator(".modal-ux button.btn-done").click()

            await me.locator(".opblock-summary").click()
            await me.locator("button.try-out__btn").click()
            await me.locator("button.execute").click()
            answer = me.locator(".live-responses-table .response")
            await expect(answer.locator(".response-col_status")).to_have_text("200", timeout=TIMEOUT_MS)
            await expect(answer.locator(".response-col_description")).to_contain_text(
                f'"email": "{EMAIL}"', timeout=TIMEOUT_MS
            )
        except BaseException:
            SCREENSHOTS.mkdir(exist_ok=True)
            screenshot = SCREENSHOTS / f"{request.node.name}.png"
            await page.screenshot(path=screenshot, full_page=True)
            print(f"screenshot: {screenshot}\nblocked requests: {blocked}\npage errors: {errors}")
            raise
        finally:
            await browser.close()

    assert blocked == []
    assert errors == []
