"""Project commands on the ``litestar`` CLI: ``users create``, ``dev`` (and later ``seed``)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import click
from litestar.plugins import CLIPluginProtocol

from litestar import Litestar

if TYPE_CHECKING:
    from click import Group

__all__ = ("OrdersCLIPlugin",)


class OrdersCLIPlugin(CLIPluginProtocol):
    """Adds the service's commands to ``uv run litestar``."""

    def on_cli_init(self, cli: Group) -> None:
        cli.add_command(users_group)
        cli.add_command(dev_command)


@click.group(name="users")
def users_group() -> None:
    """Manage user accounts."""


@users_group.command(name="create")
@click.option("--email", required=True, help="Login email (stored lower-cased).")
@click.option("--password", required=True, help="8 to 128 characters.")
@click.option("--role", type=click.Choice(["customer", "staff", "admin"]), default="customer", show_default=True)
@click.option("--full-name", default=None, help="Display name.")
def create_user(app: Litestar, email: str, password: str, role: str, full_name: str | None) -> None:
    """Create a user with a role, or reset an existing user's password and role (bootstraps the first admin)."""
    from app.core.security import PasswordHashing
    from app.db.session import alchemy_of, session_scope
    from app.domain.accounts.services import UserService

    if not 8 <= len(password) <= 128:
        raise click.BadParameter("must be 8 to 128 characters", param_hint="--password")
    alchemy = alchemy_of(app)

    async def create() -> None:
        try:
            async with session_scope(alchemy) as session:
                user = await UserService(session=session).create_with_roles(
                    email=email, password=password, roles=[role], passwords=PasswordHashing(), full_name=full_name
                )
        finally:
            await alchemy.get_engine().dispose()
        click.echo(f"user {user.email} ({user.id}) has role {role}")

    asyncio.run(create())


@click.command(name="dev")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
def dev_command(app: Litestar, host: str, port: int) -> None:
    """Zero-config development server: embedded PostgreSQL and Redis, migrations, demo data, API and worker."""
    from app.dev.server import run_dev_server

    run_dev_server(app, host=host, port=port)
