"""Public polyfactory factories for the service's models and request bodies.

Importable by other projects' tests (``from app.testing.factories import UserFactory``). Values are realistic and
always satisfy the contract's validation rules. Seed them for reproducible data with :func:`seed_factories`.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Final

from argon2 import PasswordHasher
from polyfactory import Ignore, Use
from polyfactory.factories.sqlalchemy_factory import SQLAlchemyFactory

from app.domain.accounts.models import User

__all__ = ("DEFAULT_PASSWORD", "UserFactory", "password_hash_for", "seed_factories")

#: The password every factory-made user has unless told otherwise.
DEFAULT_PASSWORD: Final = "correct-horse-battery"


@functools.cache
def password_hash_for(password: str) -> str:
    """An argon2id hash of ``password`` with the service's parameters (cached: hashing costs ~20 ms)."""
    return PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1).hash(password)


def _now() -> datetime:
    return datetime.now(UTC)


class UserFactory(SQLAlchemyFactory[User]):
    """An active user with a unique, realistic email and :data:`DEFAULT_PASSWORD`. Roles are assigned separately."""

    __set_relationships__ = False
    __check_model__ = False

    full_name = Use(lambda: UserFactory.__faker__.name())
    password_hash = Use(lambda: password_hash_for(DEFAULT_PASSWORD))
    is_active = True
    created_at = Use(_now)
    updated_at = Use(_now)
    sa_orm_sentinel = Ignore()

    @classmethod
    def email(cls) -> str:
        user = cls.__faker__.user_name()
        return f"{user}.{cls.__random__.randrange(16**8):08x}@{cls.__faker__.free_email_domain()}".lower()


def seed_factories(seed: int) -> None:
    """Make every factory's output reproducible: the same seed gives the same data."""
    for factory in (UserFactory,):
        factory.seed_random(seed)
