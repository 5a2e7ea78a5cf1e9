"""Public polyfactory factories for the service's models and request bodies.

Importable by other projects' tests (``from app.testing.factories import UserFactory``). Values are realistic and
always satisfy the contract's validation rules. Seed them for reproducible data with :func:`seed_factories`.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any, ClassVar, Final

from argon2 import PasswordHasher
from faker import Faker
from polyfactory import Ignore, Use
from polyfactory.factories.msgspec_factory import MsgspecFactory
from polyfactory.factories.sqlalchemy_factory import SQLAlchemyFactory

from app.domain.accounts.models import User
from app.domain.addresses.models import Address
from app.domain.addresses.schemas import AddressCreate
from app.domain.catalog.models import Product
from app.domain.catalog.schemas import ProductCreate

__all__ = (
    "DEFAULT_PASSWORD",
    "AddressCreateFactory",
    "AddressFactory",
    "ProductCreateFactory",
    "ProductFactory",
    "UserFactory",
    "password_hash_for",
    "seed_factories",
)

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

    password_hash = Use(lambda: password_hash_for(DEFAULT_PASSWORD))
    is_active = True
    created_at = Use(_now)
    updated_at = Use(_now)
    sa_orm_sentinel = Ignore()

    @classmethod
    def full_name(cls) -> str:
        return str(cls.__faker__.name())

    @classmethod
    def email(cls) -> str:
        user = cls.__faker__.user_name()
        return f"{user}.{cls.__random__.randrange(16**8):08x}@{cls.__faker__.free_email_domain()}".lower()


_ADJECTIVES: Final = (
    "Ergonomic", "Rustic", "Handcrafted", "Lightweight", "Durable", "Compact", "Classic", "Insulated",
    "Recycled", "Waterproof", "Foldable", "Minimalist", "Vintage", "Heavy-Duty", "Organic", "Cordless",
)  # fmt: skip
_MATERIALS: Final = (
    "Steel", "Oak", "Cotton", "Leather", "Bamboo", "Ceramic", "Wool", "Aluminium", "Glass", "Linen", "Walnut",
    "Enamel", "Cork", "Copper", "Canvas", "Stoneware",
)  # fmt: skip
_PRODUCTS: Final = (
    "Chair", "Mug", "Backpack", "Desk Lamp", "Notebook", "Water Bottle", "Desk Organiser", "Throw Blanket",
    "Cutting Board", "Headphone Stand", "Plant Pot", "Travel Kettle", "Wall Clock", "Bookshelf", "Serving Bowl",
    "Tote Bag", "Coffee Grinder", "Picture Frame", "Doormat", "Pen Holder",
)  # fmt: skip


class ProductFactory(SQLAlchemyFactory[Product]):
    """An active product: unique ``SKU-ABCD-1234`` sku, a realistic name, 1.00-500.00 price, 0-500 in stock."""

    __set_relationships__ = False
    __check_model__ = False

    #: Skus handed out in this process (reset by :func:`seed_factories`), so a run never repeats one.
    _issued_skus: ClassVar[set[str]] = set()

    description = Use(lambda: ProductFactory.__faker__.paragraph(nb_sentences=3)[:5000])
    price_cents = Use(lambda: ProductFactory.__random__.randint(100, 50_000))
    stock = Use(lambda: ProductFactory.__random__.randint(0, 500))
    is_active = True
    created_at = Use(_now)
    updated_at = Use(_now)
    sa_orm_sentinel = Ignore()

    @classmethod
    def sku(cls) -> str:
        while True:
            letters = "".join(cls.__random__.choices("ABCDEFGHIJKLMNOPQRSTUVWXYZ", k=4))
            sku = f"SKU-{letters}-{cls.__random__.randrange(10_000):04d}"
            if sku not in cls._issued_skus:
                cls._issued_skus.add(sku)
                return sku

    @classmethod
    def name(cls) -> str:
        pick = cls.__random__.choice
        return f"{pick(_ADJECTIVES)} {pick(_MATERIALS)} {pick(_PRODUCTS)}"


class ProductCreateFactory(MsgspecFactory[ProductCreate]):
    """A valid ``POST /products`` body with the same realistic values as :class:`ProductFactory`."""

    sku = Use(ProductFactory.sku)
    name = Use(ProductFactory.name)
    description = Use(lambda: ProductFactory.__faker__.paragraph(nb_sentences=3)[:5000])
    price_cents = Use(lambda: ProductCreateFactory.__random__.randint(100, 50_000))
    stock = Use(lambda: ProductCreateFactory.__random__.randint(0, 500))


#: Faker locales whose address formats are used, and their ISO 3166-1 alpha-2 country and calling codes.
_ADDRESS_LOCALES: Final = {
    "en_US": ("US", "1"),
    "en_GB": ("GB", "44"),
    "de_DE": ("DE", "49"),
    "fr_FR": ("FR", "33"),
    "es_ES": ("ES", "34"),
    "it_IT": ("IT", "39"),
    "nl_NL": ("NL", "31"),
    "en_CA": ("CA", "1"),
    "en_AU": ("AU", "61"),
}
_address_faker: Final = Faker(list(_ADDRESS_LOCALES))


def _one_line(text: str, max_length: int) -> str:
    """Some locales' formats contain line breaks; the API's address fields are single lines."""
    return " ".join(text.split())[:max_length].rstrip()


def _address_parts(random: Any) -> dict[str, Any]:
    """A coherent address (street, city, postcode and country from one locale); line2, region, phone optional."""
    locale = random.choice(list(_ADDRESS_LOCALES))
    country, calling_code = _ADDRESS_LOCALES[locale]
    fake = _address_faker[locale]
    line2 = (
        _one_line(fake.secondary_address(), 200)
        if hasattr(fake, "secondary_address") and random.random() < 0.3
        else None
    )
    phone = (
        f"+{calling_code} {random.randrange(100, 1000)} {random.randrange(100, 1000)} {random.randrange(1000, 10_000)}"
        if random.random() < 0.7
        else None
    )
    return {
        "recipient_name": _one_line(fake.name(), 200),
        "line1": _one_line(fake.street_address(), 200),
        "line2": line2,
        "city": _one_line(fake.city(), 100),
        "region": _one_line(fake.administrative_unit(), 100) if random.random() < 0.8 else None,
        "postal_code": _one_line(fake.postcode(), 20),
        "country": country,
        "phone": phone,
    }


class AddressFactory(SQLAlchemyFactory[Address]):
    """A live address with coherent parts from one of several countries. Pass ``user_id`` (or persist a user)."""

    __set_relationships__ = False
    __set_foreign_keys__ = False
    __check_model__ = False

    deleted_at = None
    created_at = Use(_now)
    updated_at = Use(_now)
    sa_orm_sentinel = Ignore()

    @classmethod
    def build(cls, factory_use_construct: bool = False, **kwargs: Any) -> Address:
        return super().build(factory_use_construct, **{**_address_parts(cls.__random__), **kwargs})


class AddressCreateFactory(MsgspecFactory[AddressCreate]):
    """A valid ``POST /addresses`` body."""

    @classmethod
    def build(cls, factory_use_construct: bool = False, **kwargs: Any) -> AddressCreate:
        return super().build(factory_use_construct, **{**_address_parts(cls.__random__), **kwargs})


def seed_factories(seed: int) -> None:
    """Make every factory's output reproducible: the same seed gives the same data."""
    for factory in (UserFactory, ProductFactory, ProductCreateFactory, AddressFactory, AddressCreateFactory):
        factory.seed_random(seed)
    _address_faker.seed_instance(seed)
    ProductFactory._issued_skus.clear()
