"""The zero-config development server behind ``uv run litestar dev``.

One process tree: embedded PostgreSQL and Redis (started when the CLI loaded the app, because ``DATABASE_URL`` and
``REDIS_URL`` were unset), migrations, demo data, and the API with the queue worker running in its event loop.
Ctrl-C stops uvicorn, then the embedded servers (their data stays under ``.data/`` for the next start).
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from types import FrameType

import click
import msgspec
import uvicorn
from advanced_alchemy.alembic.commands import AlembicCommands
from litestar import Litestar

from app.components import components_of
from app.config import Settings
from app.dev.demo import DEMO_USERS, ensure_demo_data, ensure_demo_users
from app.dev.embedded import stop_embedded_services

__all__ = ("run_dev_server",)


def run_dev_server(loaded_app: Litestar, build_app: Callable[[Settings], Litestar], *, host: str, port: int) -> None:
    settings = components_of(loaded_app).settings
    alchemy = components_of(loaded_app).alchemy
    click.secho("Applying migrations…", fg="cyan")
    AlembicCommands(sqlalchemy_config=alchemy).upgrade(revision="head")

    async def prepare() -> str:
        try:
            await ensure_demo_users(alchemy)
            seeded = await ensure_demo_data(alchemy, payment_ttl=settings.order_payment_ttl)
        finally:
            await alchemy.get_engine().dispose()
        if seeded is None:
            return "kept from an earlier start"
        return f"{seeded.products} products, {seeded.orders} orders of {DEMO_USERS[2].email} (first start)"

    click.secho("Preparing demo data…", fg="cyan")
    demo_data = asyncio.run(prepare())

    dev_settings = msgspec.structs.replace(settings, worker_in_process=True, email_backend="console")
    app = build_app(dev_settings)
    base = f"http://{host}:{port}"
    click.echo(
        "\n".join(
            [
                "",
                click.style("Orders service (development)", bold=True),
                f"  API           {base}",
                f"  API docs      {base}/schema",
                f"  Health        {base}/health   Ready {base}/ready",
                f"  WebSocket     ws://{host}:{port}/ws/orders?token=<access token>",
                f"  PostgreSQL    {dev_settings.database_url}",
                f"  Redis         {dev_settings.redis_url}",
                f"  Data          {dev_settings.data_dir}",
                f"  Demo data     {demo_data}",
                "  Demo logins (POST /auth/login):",
                *(f"    {u.role:<9} {u.email:<22} {u.password}" for u in DEMO_USERS),
                "  Emails are printed to this console. Ctrl-C stops everything.",
                "",
            ]
        )
    )
    # uvicorn re-raises SIGINT/SIGTERM after its graceful shutdown; turn both into a normal exit so the embedded
    # servers are stopped (atexit does not run when the default SIGTERM handler kills the process).
    signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        uvicorn.run(app, host=host, port=port, log_config=None, access_log=False, lifespan="on")
    except KeyboardInterrupt:
        pass
    finally:
        stop_embedded_services()
        click.secho("Stopped; data kept in " + str(dev_settings.data_dir), fg="cyan")


def _exit_on_signal(signum: int, _: FrameType | None) -> None:
    raise SystemExit(128 + signum)
