"""Graceful shutdown (CONTRACT §8, §7a): real uvicorn and SAQ worker processes, real SIGTERM.

Each test starts its own process against the session's PostgreSQL and Redis, sends it SIGTERM and watches what a
client sees: ``/ready`` 503 at once, everything else still served during the drain (with ``Connection: close``), the
request in flight finished, sockets closed with 1012, exit status 0; and the worker finishing its running email job.
"""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from app.config import Settings
from app.domain.orders.models import OrderEvent
from tests.integration.events.conftest import Mailbox, SMTPServer, bearer
from tests.integration.orders.conftest import Shopper, place
from tests.support import ProductMaker, free_port, process_env, start_api, start_worker, wait_ready

pytestmark = pytest.mark.slow

#: The default: long enough to tell "during the drain" from "after it" on a loaded machine.
DRAIN_SECONDS = 5

Spawn = Callable[..., Awaitable["Server"]]


class Server:
    def __init__(self, process: asyncio.subprocess.Process, base: str) -> None:
        self.process = process
        self.base = base

    def terminate(self) -> None:
        self.process.send_signal(signal.SIGTERM)

    async def exit_status(self, within: float = DRAIN_SECONDS + 10) -> int:
        return await asyncio.wait_for(self.process.wait(), within)

    async def draining(self, within: float = DRAIN_SECONDS) -> None:
        """Wait until ``/ready`` says so (on a fresh connection): SIGTERM has been handled."""
        deadline = asyncio.get_running_loop().time() + within
        async with httpx.AsyncClient(base_url=self.base) as fresh:
            while (await fresh.get("/ready", headers={"connection": "close"})).status_code != 503:
                assert asyncio.get_running_loop().time() < deadline, "the drain did not start"
                await asyncio.sleep(0.05)

    async def stopped_listening(self, within: float = DRAIN_SECONDS + 10) -> None:
        """Wait until a new connection is refused: the drain is over and uvicorn's own shutdown has begun.

        A connection the kernel accepted into the backlog just before uvicorn closed its listening socket is reset
        without an answer (a read error, not a refused connect): that is the same moment, seen a little earlier.
        """
        deadline = asyncio.get_running_loop().time() + within
        async with httpx.AsyncClient(base_url=self.base) as fresh:
            while True:
                try:
                    await fresh.get("/health", headers={"connection": "close"})
                except (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError):
                    return
                assert asyncio.get_running_loop().time() < deadline, "the server kept listening"
                await asyncio.sleep(0.1)


def _env(settings: Settings, **extra: str) -> dict[str, str]:
    defaults = {
        "EMAIL_BACKEND": "console",
        "LOG_LEVEL": "WARNING",
        "DB_POOL_SIZE": "3",
        "DB_DIRECT_POOL_SIZE": "2",
        "LITESTAR_APP": "app.main:app",
        "SHUTDOWN_DRAIN_SECONDS": str(DRAIN_SECONDS),
    }
    return process_env(settings, **{**defaults, **extra})


def _smtp_env(settings: Settings, smtp_server: SMTPServer, *, grace: float) -> dict[str, str]:
    """A worker that emails through the test SMTP server and gives running jobs ``grace`` seconds on SIGTERM."""
    return _env(
        settings,
        EMAIL_BACKEND="smtp",
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(smtp_server.port),
        SMTP_TLS="none",
        WORKER_SHUTDOWN_GRACE_SECONDS=str(int(grace)),
    )


@asynccontextmanager
async def _worker(env: dict[str, str], log_path: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    """``litestar workers run`` logging to ``log_path``; killed at the end if the test left it running."""
    with log_path.open("wb") as log:
        worker = await start_worker(env, log)
        try:
            yield worker
        finally:
            if worker.returncode is None:
                worker.kill()
                await worker.wait()


@pytest.fixture
async def spawn(settings: Settings, tmp_path: Path, committed_db: None) -> AsyncIterator[Spawn]:
    """Start ``uvicorn app.main:app [args]`` on a free port and wait until it is ready."""
    started: list[asyncio.subprocess.Process] = []
    log_path = tmp_path / "server.log"
    log = log_path.open("wb")

    async def start(*args: str) -> Server:
        port = free_port()
        process = await start_api(port, _env(settings), log, *args)
        started.append(process)
        server = Server(process, f"http://127.0.0.1:{port}")
        await wait_ready(server.base, [process], within=30)
        return server

    try:
        yield start
    finally:
        for process in started:
            if process.returncode is None:
                process.kill()
                await process.wait()
        log.close()
        print(log_path.read_text(errors="replace")[-8000:])  # shown by pytest when the test failed


async def test_ready_answers_503_at_once_after_sigterm_naming_the_shutdown(spawn: Spawn) -> None:
    server = await spawn()
    async with httpx.AsyncClient(base_url=server.base) as client:
        server.terminate()
        ready = await client.get("/ready")

    assert ready.status_code == 503
    assert ready.json()["detail"] == "Not ready: process shutting down"
    assert await server.exit_status() == 0


async def test_during_the_drain_other_routes_are_served_and_close_their_connection(
    spawn: Spawn, products: ProductMaker
) -> None:
    product = await products(stock=1)
    server = await spawn()
    async with httpx.AsyncClient(base_url=server.base) as client:
        assert (await client.get("/health")).status_code == 200  # leaves an idle keep-alive connection
        server.terminate()
        await server.draining()
        health = await client.get("/health")  # on that idle connection, during the drain
        read = await client.get(f"/products/{product.id}")

    assert (health.status_code, health.headers["connection"]) == (200, "close")
    assert (read.status_code, read.headers["connection"]) == (200, "close")
    assert await server.exit_status() == 0


async def test_a_request_in_flight_when_the_drain_ends_completes(
    spawn: Spawn, alice: Shopper, products: ProductMaker
) -> None:
    product = await products(stock=1)
    server = await spawn()
    body = httpx.Request("POST", "/", json=alice.order((product, 1))).content
    rest_may_go = asyncio.Event()

    async def slow_body() -> AsyncIterator[bytes]:
        yield body[:10]
        await rest_may_go.wait()
        yield body[10:]

    async with httpx.AsyncClient(base_url=server.base, timeout=30) as client:
        placing = asyncio.create_task(
            client.post(
                "/orders",
                content=slow_body(),
                headers={**alice.headers, "content-type": "application/json"},
            )
        )
        await asyncio.sleep(0.5)  # the request line and headers are in
        server.terminate()
        await server.stopped_listening()
        rest_may_go.set()
        placed = await placing

    assert placed.status_code == 201
    assert await server.exit_status() == 0


async def test_websockets_are_closed_with_1012_after_the_drain(spawn: Spawn, alice: Shopper) -> None:
    server = await spawn()
    url = server.base.replace("http", "ws") + f"/ws/orders?token={bearer(alice.headers)}"
    async with connect(url) as socket:
        server.terminate()
        await socket.send("ping")
        pong = await asyncio.wait_for(socket.recv(), 5)  # still served during the drain
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(socket.recv(), DRAIN_SECONDS + 10)

    assert pong == '{"type":"pong"}'
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1012
    assert await server.exit_status() == 0


async def test_under_several_workers_sigterm_to_the_supervisor_drains_each_worker_and_exits_0(spawn: Spawn) -> None:
    server = await spawn("--workers", "2")
    async with httpx.AsyncClient(base_url=server.base) as client:
        server.terminate()
        # The supervisor forwards SIGTERM at its next 0.5 s tick; from the first 503 on, every worker answers 503.
        await server.draining()
        await asyncio.sleep(0.2)
        answers = [await client.get("/ready", headers={"connection": "close"}) for _ in range(6)]
        health = await client.get("/health")

    assert {a.status_code for a in answers} == {503}
    assert health.status_code == 200
    assert await server.exit_status() == 0


async def test_worker_finishes_the_running_email_job_on_sigterm_takes_no_new_one_and_the_email_arrives_once(
    settings: Settings,
    tmp_path: Path,
    smtp_server: SMTPServer,
    mailbox: Mailbox,
    committed_client: httpx.AsyncClient,
    session: AsyncSession,
    alice: Shopper,
    products: ProductMaker,
) -> None:
    mailbox.delay = 2.0  # the SMTP server takes its time: the job is mid-send when SIGTERM arrives
    async with _worker(_smtp_env(settings, smtp_server, grace=10), tmp_path / "worker.log") as worker:
        product = await products(stock=2)
        order_id = (await place(committed_client, alice, (product, 1))).json()["id"]
        await mailbox.wait_for_attempt(within=30)
        worker.send_signal(signal.SIGTERM)
        # Placed while the first email is still being sent: its job waits in the queue for the next worker.
        later_id = (await place(committed_client, alice, (product, 1))).json()["id"]
        status = await asyncio.wait_for(worker.wait(), 20)

    emailed_at = await session.scalar(select(OrderEvent.emailed_at).where(OrderEvent.order_id == uuid.UUID(order_id)))
    later = await session.scalar(select(OrderEvent.emailed_at).where(OrderEvent.order_id == uuid.UUID(later_id)))
    assert status == 0
    assert mailbox.attempts == 1
    assert [m["To"] for m in mailbox.messages] == [alice.user.email]
    assert emailed_at is not None  # marked: no later job sends it again
    assert later is None  # not sent by the stopping worker, not lost: the outbox sweep hands it to the next one


async def test_an_idle_worker_stops_on_sigterm_without_waiting_out_its_grace(
    settings: Settings, tmp_path: Path
) -> None:
    # SAQ alone waited the whole grace for its idle dequeue loops (21 s with the default 20 s); 120 s here, so a
    # worker that waits for them cannot pass. It exits in about 2.5 s; 45 s leaves room for a loaded machine
    # (the webhook process it stops runs at niceness 10).
    env = _env(settings, WORKER_SHUTDOWN_GRACE_SECONDS="120", LOG_LEVEL="INFO")
    log_path = tmp_path / "worker.log"
    async with _worker(env, log_path) as worker:
        deadline = asyncio.get_running_loop().time() + 30
        while b"webhook_worker_started" not in log_path.read_bytes():
            assert asyncio.get_running_loop().time() < deadline, "the worker did not start"
            await asyncio.sleep(0.1)
        worker.send_signal(signal.SIGTERM)
        status = await asyncio.wait_for(worker.wait(), 45)

    assert status == 0
    assert b"did not finish within the shutdown grace period" not in log_path.read_bytes()


async def test_a_job_overrunning_the_grace_is_cancelled_when_the_grace_ends_and_left_for_the_next_worker(
    settings: Settings,
    tmp_path: Path,
    smtp_server: SMTPServer,
    mailbox: Mailbox,
    committed_client: httpx.AsyncClient,
    session: AsyncSession,
    alice: Shopper,
    products: ProductMaker,
) -> None:
    # SAQ's own stop gave such a job the grace a second time (2 x 8 s + 1 s here); now it is cancelled when the one
    # grace ends, so a pod's terminationGracePeriodSeconds (grace + 10 s) is never overrun and the worker exits 0.
    mailbox.delay = 60.0  # the SMTP server never answers in time
    grace = 8.0
    loop = asyncio.get_running_loop()
    async with _worker(_smtp_env(settings, smtp_server, grace=grace), tmp_path / "worker.log") as worker:
        product = await products(stock=1)
        order_id = (await place(committed_client, alice, (product, 1))).json()["id"]
        await mailbox.wait_for_attempt(within=30)
        worker.send_signal(signal.SIGTERM)
        signalled = loop.time()
        status = await asyncio.wait_for(worker.wait(), 60)
        took = loop.time() - signalled

    emailed_at = await session.scalar(select(OrderEvent.emailed_at).where(OrderEvent.order_id == uuid.UUID(order_id)))
    assert status == 0
    assert grace <= took < 2 * grace, took
    assert emailed_at is None  # not marked: the retried job (or the outbox sweep) sends it with the next worker
