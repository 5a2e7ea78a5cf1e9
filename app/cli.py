"""Project commands on the ``litestar`` CLI: ``users create``, ``seed``, ``dev``."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click
import uvloop
from litestar import Litestar

# Private module (pinned in pyproject, checked by tests/unit/test_private_apis.py); no upstream issue yet.
from litestar.cli._utils import LitestarGroup
from litestar.plugins import CLIPluginProtocol

if TYPE_CHECKING:
    from click import Group
    from rich.progress import Progress, TaskID

    from app.config import Settings
    from app.testing.seed import SeedReport, Stage

__all__ = ("OrdersCLIPlugin",)


class OrdersCLIPlugin(CLIPluginProtocol):
    """Adds the service's commands to ``uv run litestar``.

    ``build_app`` is the composition root's ``create_app``, handed in by it: ``litestar dev`` builds a second app
    with development settings, and taking the builder from the plugin keeps this module (and ``app.dev``) from
    importing ``app.main``, which imports them.
    """

    def __init__(self, build_app: Callable[[Settings], Litestar]) -> None:
        self.build_app = build_app

    def on_cli_init(self, cli: Group) -> None:
        # Every command's event loop is uvloop's, as the API's is under uvicorn. ``litestar workers run`` spends most
        # of its time in socket I/O (PostgreSQL, Redis), which uvloop does in C; the asyncio default costs it more CPU.
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        cli.add_command(users_group)
        cli.add_command(seed_command)
        cli.add_command(dev_command)


def _users() -> None:
    """Manage user accounts."""


# A LitestarGroup, not a plain click group: it injects ``app`` into its commands.
users_group: click.Group = click.group(name="users", cls=LitestarGroup)(_users)


@users_group.command(name="create")
@click.option("--email", required=True, help="Login email (stored lower-cased).")
@click.option("--password", required=True, help="8 to 128 characters.")
@click.option("--role", type=click.Choice(["customer", "staff", "admin"]), default="customer", show_default=True)
@click.option("--full-name", default=None, help="Display name.")
def create_user(app: Litestar, email: str, password: str, role: str, full_name: str | None) -> None:
    """Create a user with a role, or reset an existing user's password and role (bootstraps the first admin)."""
    from app.components import components_of
    from app.core.errors import InvalidRequest
    from app.core.security import PasswordHashing
    from app.db.session import session_scope
    from app.domain.accounts.services import UserService

    if not 8 <= len(password) <= 128:
        raise click.BadParameter("must be 8 to 128 characters", param_hint="--password")
    alchemy = components_of(app).alchemy

    async def create() -> None:
        try:
            async with session_scope(alchemy) as session:
                user = await UserService(session=session).create_with_roles(
                    email=email, password=password, roles=[role], passwords=PasswordHashing(), full_name=full_name
                )
        except InvalidRequest as exc:
            raise click.BadParameter(exc.detail, param_hint="--email") from None
        finally:
            await alchemy.get_engine().dispose()
        click.echo(f"user {user.email} ({user.id}) has role {role}")

    asyncio.run(create())


@click.command(name="seed")
@click.option("--users", default=100, show_default=True, type=click.IntRange(min=0), help="Customers to create.")
@click.option("--products", default=200, show_default=True, type=click.IntRange(min=0), help="Products to create.")
@click.option("--orders", default=1_000, show_default=True, type=click.IntRange(min=0), help="Orders to place.")
@click.option(
    "--seed", "seed", type=click.IntRange(min=0), default=None, help="Same seed, same data.  [default: random]"
)
@click.option(
    "--as-of",
    type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]),
    default=None,
    help="End of the generated history, UTC.  [default: today 00:00]",
)
@click.option(
    "--batch-size",
    default=2_000,
    show_default=True,
    type=click.IntRange(min=1),
    help="Orders (users, products) per transaction.",
)
@click.option("--demo-users", is_flag=True, help="Also create or reset the demo users (admin, staff, customer).")
def seed_command(
    app: Litestar,
    users: int,
    products: int,
    orders: int,
    seed: int | None,
    as_of: datetime | None,
    batch_size: int,
    demo_users: bool,
) -> None:
    """Fill the database with realistic fake data, made by the polyfactory factories under the API's rules.

    Every seeded user's password is printed at the end. Events of seeded orders are recorded as already delivered,
    so nobody is emailed and WebSocket listeners are not flooded. Running it again adds more data.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from app.components import components_of
    from app.dev.demo import DEMO_USERS, ensure_demo_users
    from app.testing.seed import SEED_PASSWORD, Seeder, SeedOptions, start_of_day

    components = components_of(app)
    if components.settings.is_production:
        # Seeded users share one published password (printed below); in production they would be open accounts.
        raise click.ClickException("litestar seed refuses to run when APP_ENV=production (it makes fake accounts)")
    try:
        options = SeedOptions(
            users=users,
            products=products,
            orders=orders,
            seed=secrets.randbelow(2**31) if seed is None else seed,
            as_of=start_of_day() if as_of is None else as_of.replace(tzinfo=UTC),
            batch_size=batch_size,
            payment_ttl=components.settings.order_payment_ttl,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    alchemy = components.alchemy
    console = Console()
    columns = (TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as bars:
        seeder = Seeder(options, progress=_ProgressBars(bars))

        async def run() -> None:
            try:
                if demo_users:
                    await ensure_demo_users(alchemy)
                async with alchemy.get_engine().connect() as connection:
                    await seeder.run(connection)
            finally:
                await alchemy.get_engine().dispose()

        bars.console.print(f"Planning {orders:,} orders for {users:,} users and {products:,} products…")
        try:
            asyncio.run(run())
        except KeyboardInterrupt:
            bars.stop()
            console.print(_seed_summary(seeder.report, SEED_PASSWORD, interrupted=True))
            raise SystemExit(130) from None
    console.print(_seed_summary(seeder.report, SEED_PASSWORD, interrupted=False))
    if demo_users:
        console.print("Demo logins (POST /auth/login):")
        for demo in DEMO_USERS:
            console.print(f"  {demo.role:<9} {demo.email:<22} {demo.password}", highlight=False)
    reproduce = f"--users {users} --products {products} --orders {orders} --seed {options.seed}"
    console.print(f"Same data on an empty database: litestar seed {reproduce} --as-of {options.as_of:%Y-%m-%d}")


class _ProgressBars:
    """Shows a seed run's stages as rich progress bars."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._tasks: dict[Stage, TaskID] = {}

    def start(self, stage: Stage, total: int) -> None:
        self._tasks[stage] = self._progress.add_task(stage, total=total)

    def advance(self, stage: Stage, count: int) -> None:
        self._progress.advance(self._tasks[stage], count)


def _seed_summary(report: SeedReport, password: str, *, interrupted: bool) -> str:
    seconds = max(report.seconds, 1e-9)
    events = f"{report.events:>9,}"
    if report.first_event_id is not None:
        events += f"   event_id {report.first_event_id}..{report.last_event_id}, recorded as already delivered"
    lines = [
        ("Interrupted; committed before that" if interrupted else "Seeded")
        + f" in {report.seconds:.1f} s (seed {report.seed}, history up to {report.as_of:%Y-%m-%d %H:%M} UTC):",
        f"  users     {report.users:>9,}   password: {password}",
        f"  addresses {report.addresses:>9,}",
        f"  products  {report.products:>9,}",
        f"  orders    {report.orders:>9,}",
        f"  items     {report.items:>9,}",
        f"  events    {events}",
        f"  rows      {report.rows:>9,}   {report.rows / seconds:,.0f} rows/s",
    ]
    return "\n".join(lines)


@click.command(name="dev")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
def dev_command(app: Litestar, host: str, port: int) -> None:
    """Zero-config development server: embedded PostgreSQL and Redis, migrations, demo data, API and worker."""
    from app.dev.server import run_dev_server

    run_dev_server(app, app.plugins.get(OrdersCLIPlugin).build_app, host=host, port=port)
