"""WebSocket limits: at most ``WS_MAX_PER_USER`` sockets per user across processes, and ``since`` within bigint range.

The cap is counted in Redis (leases that every process renews); here it is 2, and "another process" is a second app
instance (own sockets, own watchdog) or a real uvicorn process that is killed with SIGKILL.
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_ws import WebSocketDisconnect, WebSocketUpgradeError, aconnect_ws
from litestar import Litestar
from redis.asyncio import Redis
from websockets.asyncio.client import connect

from app.config import Settings
from app.events.socket_leases import SocketLeases
from app.main import create_app
from tests.conftest import running
from tests.integration.core.dedicated_app import dedicated_settings
from tests.integration.events.conftest import RECEIVE_TIMEOUT, bearer, refusal, ws_client
from tests.integration.events.test_redis_outage import ThrowawayRedis
from tests.support import UserMaker, free_port, process_env, start_api, wait_ready

CAP = 2
MAX_EVENT_ID = 2**63 - 1


def capped_settings(base: Settings, **env: str) -> Settings:
    return dedicated_settings(base, WS_MAX_PER_USER=str(CAP), LIVE_CHECK_INTERVAL="0.5", **env)


@pytest.fixture
async def capped_app(settings: Settings, committed_db: None) -> AsyncIterator[Litestar]:
    async with running(create_app(capped_settings(settings))) as application:
        yield application


async def _answers_ping(ws: Any) -> bool:
    await ws.send_text("ping")
    return bool(json.loads(await ws.receive_text(timeout=RECEIVE_TIMEOUT)) == {"type": "pong"})


async def test_a_user_at_the_cap_is_refused_one_more_socket_on_either_feed(
    capped_app: Litestar, users: UserMaker, tokens: Any
) -> None:
    clerk, colleague = bearer(tokens(await users(roles=("staff",)))), bearer(tokens(await users(roles=("staff",))))
    async with (
        ws_client(capped_app) as client,
        aconnect_ws(f"/ws/orders?token={clerk}", client) as first,
        aconnect_ws(f"/ws/admin/orders?token={clerk}", client) as second,
    ):
        refused = [await refusal(capped_app, f"/ws/{feed}?token={clerk}") for feed in ("orders", "admin/orders")]
        async with aconnect_ws(f"/ws/orders?token={colleague}", client) as someone_else:
            others_unaffected = await _answers_ping(someone_else)
        still_open = [await _answers_ping(first), await _answers_ping(second)]

    assert all(code in {403, 1008} for code in refused), refused
    assert others_unaffected
    assert still_open == [True, True]


async def test_a_closed_socket_frees_its_place(capped_app: Litestar, users: UserMaker, tokens: Any) -> None:
    token = bearer(tokens(await users()))
    async with ws_client(capped_app) as client, aconnect_ws(f"/ws/orders?token={token}", client) as kept:
        for _ in range(3):  # open and close the second place more often than the cap
            async with aconnect_ws(f"/ws/orders?token={token}", client) as again:
                assert await _answers_ping(again)
        assert await _answers_ping(kept)


async def test_the_cap_counts_the_sockets_of_every_process(
    capped_app: Litestar, settings: Settings, users: UserMaker, tokens: Any
) -> None:
    token = bearer(tokens(await users()))
    async with (
        running(create_app(capped_settings(settings))) as other_process,
        ws_client(capped_app) as here,
        ws_client(other_process) as there,
        aconnect_ws(f"/ws/orders?token={token}", here),
        aconnect_ws(f"/ws/orders?token={token}", there),
    ):
        refused = [
            await refusal(capped_app, f"/ws/orders?token={token}"),
            await refusal(other_process, f"/ws/orders?token={token}"),
        ]

    assert all(code in {403, 1008} for code in refused), refused


async def test_a_burst_of_handshakes_across_processes_admits_exactly_the_cap(
    capped_app: Litestar, settings: Settings, users: UserMaker, tokens: Any
) -> None:
    token = bearer(tokens(await users()))
    opened: list[bool] = []
    release = asyncio.Event()

    async def connect_and_hold(app: Litestar) -> None:
        async with ws_client(app) as client:
            try:
                async with aconnect_ws(f"/ws/orders?token={token}", client) as ws:
                    opened.append(await _answers_ping(ws))
                    await release.wait()
            except (WebSocketUpgradeError, WebSocketDisconnect):  # refused: 403 or 1008
                opened.append(False)

    async with running(create_app(capped_settings(settings))) as other_process:
        attempts = [asyncio.create_task(connect_and_hold(app)) for app in (capped_app, other_process) * 4]
        deadline = asyncio.get_running_loop().time() + 60
        while len(opened) < len(attempts):
            assert asyncio.get_running_loop().time() < deadline, "a handshake neither completed nor was refused"
            await asyncio.sleep(0.05)
        release.set()
        await asyncio.gather(*attempts)

    assert opened.count(True) == CAP


@pytest.mark.parametrize(
    "since",
    ["-1", str(MAX_EVENT_ID + 1), "1" * 40, "abc", "1.5", "1e3", "", "+5", " 5", "5_0", "\N{ARABIC-INDIC DIGIT THREE}"],
)
async def test_since_outside_the_bigint_range_or_not_an_integer_is_refused(
    capped_app: Litestar, users: UserMaker, tokens: Any, since: str
) -> None:
    token = bearer(tokens(await users()))

    assert await refusal(capped_app, f"/ws/orders?{httpx.QueryParams(token=token, since=since)}") in {403, 1008}


async def test_since_at_the_top_of_the_bigint_range_is_accepted(
    capped_app: Litestar, users: UserMaker, tokens: Any
) -> None:
    token = bearer(tokens(await users()))
    async with (
        ws_client(capped_app) as client,
        aconnect_ws(f"/ws/orders?token={token}&since={MAX_EVENT_ID}", client) as ws,
    ):
        assert await _answers_ping(ws)


async def test_sockets_are_accepted_while_redis_is_down_up_to_the_cap_per_process(
    settings: Settings, committed_db: None, tmp_path: Path, users: UserMaker, tokens: Any
) -> None:
    redis_server = ThrowawayRedis(tmp_path)
    redis_server.start()
    user = await users()
    token = bearer(tokens(user))
    try:
        async with (
            running(create_app(capped_settings(settings, REDIS_URL=redis_server.url))) as application,
            ws_client(application) as client,
            AsyncExitStack() as sockets,
        ):
            redis_server.stop()
            held = [
                await sockets.enter_async_context(aconnect_ws(f"/ws/orders?token={token}", client)) for _ in range(CAP)
            ]
            refused = await refusal(application, f"/ws/orders?token={token}")
            answered = [await _answers_ping(ws) for ws in held]

            redis_server.start()
            async with Redis.from_url(redis_server.url) as redis:
                # The first renewal after Redis is back registers the sockets that were opened while it was down.
                deadline = asyncio.get_running_loop().time() + 60
                while await redis.zcard(SocketLeases.key(user.id)) < CAP:
                    assert asyncio.get_running_loop().time() < deadline, "the sockets were never registered"
                    await asyncio.sleep(0.1)
    finally:
        redis_server.stop()

    assert answered == [True] * CAP
    assert refused in {403, 1008}


@pytest.mark.slow
async def test_sockets_of_a_killed_process_stop_counting(
    capped_app: Litestar, settings: Settings, tmp_path: Path, users: UserMaker, tokens: Any
) -> None:
    token = bearer(tokens(await users()))
    process, base = await _start_api_process(settings, tmp_path)
    try:
        url = base.replace("http", "ws") + f"/ws/orders?token={token}"
        held = [await connect(url) for _ in range(CAP)]
        refused_while_held = await refusal(capped_app, f"/ws/orders?token={token}")

        process.send_signal(signal.SIGKILL)
        await process.wait()
        for ws in held:
            await ws.close()
        # Its leases are no longer renewed: they lapse (3 x 0.5 s + 5 s here) and the user may connect again.
        deadline = asyncio.get_running_loop().time() + 60
        while True:
            async with ws_client(capped_app) as client:
                try:
                    async with aconnect_ws(f"/ws/orders?token={token}", client) as ws:
                        assert await _answers_ping(ws)
                        break
                except (WebSocketUpgradeError, WebSocketDisconnect):  # still refused: not lapsed yet
                    assert asyncio.get_running_loop().time() < deadline, "the killed process's sockets still count"
                    await asyncio.sleep(0.5)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    assert refused_while_held in {403, 1008}


async def _start_api_process(settings: Settings, tmp_path: Path) -> tuple[asyncio.subprocess.Process, str]:
    env = process_env(
        settings,
        EMAIL_BACKEND="console",
        LOG_LEVEL="WARNING",
        DB_POOL_SIZE="2",
        WS_MAX_PER_USER=str(CAP),
        LIVE_CHECK_INTERVAL="0.5",
    )
    port = free_port()
    log = (tmp_path / "api.log").open("wb")
    process = await start_api(port, env, log)
    log.close()
    base = f"http://127.0.0.1:{port}"
    await wait_ready(base, [process], within=60)
    return process, base
