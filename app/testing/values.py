"""Realistic field values that always satisfy the contract's validation rules, from one seedable random source.

The factories (:mod:`app.testing.factories`) and the seed command (:mod:`app.testing.seed`) both draw their values
here, so a row made in a test and a row made by ``litestar seed`` look alike. A :class:`FakeValues` owns one
``random.Random`` and its own Faker instances (it never touches the global ``random`` module or Faker's shared
generator), so the same seed gives the same sequence of values, with the same versions of this code and of Faker.
"""

from __future__ import annotations

import functools
import itertools
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from random import Random
from typing import Any, Final

from faker import Faker

from app.domain.addresses.countries import ISO_3166_ALPHA2
from app.domain.orders.schemas import MAX_LINES, MAX_QUANTITY
from app.domain.orders.state_machine import OrderStatus

__all__ = ("ADDRESS_LOCALES", "FakeValues", "Transition")

#: Faker locales whose address formats are used, and their ISO 3166-1 alpha-2 country and calling codes.
ADDRESS_LOCALES: Final = {
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
assert {country for country, _ in ADDRESS_LOCALES.values()} <= ISO_3166_ALPHA2

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
_LETTERS: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

#: How orders end up, roughly as in a shop that has run for a while: most delivered, a tail still in flight.
_STATUS_WEIGHTS: Final = {
    OrderStatus.PENDING: 8,
    OrderStatus.PAID: 9,
    OrderStatus.SHIPPED: 12,
    OrderStatus.DELIVERED: 61,
    OrderStatus.CANCELLED: 10,
}
_HOUR: Final = 3600.0
_DAY: Final = 24 * _HOUR


@dataclass(frozen=True, slots=True)
class Transition:
    """One step of an order's history: it entered ``status`` (from ``previous``, None when placed) at ``at``."""

    status: OrderStatus
    previous: OrderStatus | None
    at: datetime
    reason: str | None = None  # why the system made the change (``payment_timeout``); None for people's changes


def _one_line(text: str, max_length: int) -> str:
    """Some locales' formats contain line breaks; the API's address fields are single lines."""
    return " ".join(text.split())[:max_length].rstrip()


class FakeValues:
    """A seedable source of realistic values: people, emails, products, addresses, order lines and histories.

    Emails and skus are unique per instance (a clash with the database is the caller's business: the seed command
    checks and redraws). ``seed=None`` seeds from the operating system.
    """

    def __init__(self, seed: int | str | None = None, *, now: datetime | None = None) -> None:
        self.random = Random()  # noqa: S311 - fake data, reproducible on purpose; nothing here is a secret
        self._issued_emails: set[str] = set()
        self._issued_skus: set[str] = set()
        self._frozen_now: datetime | None = None
        self._faker_seeds = (0, 0)
        self._address_fakers: dict[str, Faker] = {}
        self.reseed(seed, now=now)

    def reseed(self, seed: int | str | None, *, now: datetime | None = None) -> None:
        """Restart the sequence: after ``reseed(s)`` the values are those of a fresh ``FakeValues(s)``.

        ``now`` pins the clock (see :meth:`now`); without it, timestamps and the time part of ids follow the real
        clock and are the only values that differ between two runs with the same seed.
        """
        self._frozen_now = now
        self.random.seed(seed)
        # Faker gets seeds derived from ours, so its generators never fall back to the shared global ``random``.
        self._faker_seeds = (self.random.getrandbits(64), self.random.getrandbits(64))
        self.__dict__.pop("faker", None)
        self._address_fakers.clear()
        self._issued_emails.clear()
        self._issued_skus.clear()

    # Fakers are made on first use (~0.7 ms per locale; a source often needs one or none), each with its own seed
    # derived from ours, so a locale's values do not depend on which other locales were used before.
    @functools.cached_property
    def faker(self) -> Faker:
        faker = Faker()
        faker.seed_instance(self._faker_seeds[0])
        return faker

    def _address_faker(self, locale: str) -> Faker:
        faker = self._address_fakers.get(locale)
        if faker is None:
            faker = self._address_fakers[locale] = Faker(locale)
            faker.seed_instance(f"{self._faker_seeds[1]}:{locale}")
            for provider in faker.get_providers():
                # Faker builds it_IT's city list from a set, so its order, and the city a seed picks, would change
                # with PYTHONHASHSEED from one process to the next. Sorted, the same seed picks the same city.
                cities = getattr(provider, "cities", None)
                if isinstance(cities, list):
                    provider.cities = sorted(cities)
        return faker

    # ------------------------------------------------------------------------------------------------ time, ids

    def now(self) -> datetime:
        """The current time (UTC), or the time pinned by ``reseed(..., now=...)``."""
        return self._frozen_now or datetime.now(UTC)

    def uuid7(self, at: datetime) -> uuid.UUID:
        """A UUIDv7 (RFC 9562) whose timestamp is ``at`` and whose random bits come from this source.

        Ids sort by creation time like the ones the service makes (``uuid_utils.uuid7``), but are reproducible.
        """
        millis = int(at.timestamp() * 1000) & (2**48 - 1)
        bits = self.random.getrandbits(74)
        rand_a, rand_b = bits >> 62, bits & (2**62 - 1)
        return uuid.UUID(int=(millis << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b)

    # --------------------------------------------------------------------------------------------------- people

    def full_name(self) -> str:
        return str(self.faker.name())[:200]

    def email(self) -> str:
        """``first.last.1a2b3c4d@gmail.com``-like, lower-case; the random suffix keeps large batches unique."""
        while True:
            user = self.faker.user_name()
            email = f"{user}.{self.random.getrandbits(32):08x}@{self.faker.free_email_domain()}".lower()
            if email not in self._issued_emails:
                self._issued_emails.add(email)
                return email

    def password(self) -> str:
        """A 12-24 character password (the contract allows 8-128)."""
        return str(self.faker.password(length=self.random.randint(12, 24)))

    # ------------------------------------------------------------------------------------------------- products

    def sku(self) -> str:
        """``SKU-ABCD-1234``: 4.6 billion combinations, and never the same twice from one source."""
        while True:
            letters = "".join(self.random.choices(_LETTERS, k=4))
            sku = f"SKU-{letters}-{self.random.randrange(10_000):04d}"
            if sku not in self._issued_skus:
                self._issued_skus.add(sku)
                return sku

    def product_name(self) -> str:
        pick = self.random.choice
        return f"{pick(_ADJECTIVES)} {pick(_MATERIALS)} {pick(_PRODUCTS)}"

    def description(self) -> str:
        return str(self.faker.paragraph(nb_sentences=3))[:5000]

    def price_cents(self) -> int:
        """1.00 to 500.00, most under 50.00, and usually ending in 99, 49 or 00 like shop prices do."""
        dollars = min(499, int(self.random.lognormvariate(3.0, 0.9)))
        return max(1, dollars) * 100 + self.random.choice((99, 99, 99, 49, 0))

    def stock(self) -> int:
        """1 to 500 units: in stock, so a factory-made product can be ordered (the seed sells some out)."""
        return self.random.randint(1, 500)

    # ------------------------------------------------------------------------------------------------ addresses

    def address(self) -> dict[str, Any]:
        """A coherent address (street, city, postcode and country from one locale); line2, region, phone optional."""
        locale = self.random.choice(list(ADDRESS_LOCALES))
        country, calling_code = ADDRESS_LOCALES[locale]
        fake = self._address_faker(locale)
        random = self.random
        line2 = (
            _one_line(fake.secondary_address(), 200)
            if hasattr(fake, "secondary_address") and random.random() < 0.3
            else None
        )
        phone = None
        if random.random() < 0.7:
            digits = (random.randrange(100, 1000), random.randrange(100, 1000), random.randrange(1000, 10_000))
            phone = f"+{calling_code} {digits[0]} {digits[1]} {digits[2]}"
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

    # --------------------------------------------------------------------------------------------------- orders

    def quantity(self, available: int = MAX_QUANTITY) -> int:
        """1 to 100 units of one line: usually 1-3, rarely a bulk order; never more than ``available`` (≥ 1)."""
        if self.random.random() < 0.01:
            wanted = self.random.randint(10, MAX_QUANTITY)
        else:
            wanted = 1 + min(8, int(self.random.expovariate(1.3)))
        return max(1, min(wanted, available))

    def line_count(self, available: int) -> int:
        """1 to 50 distinct products per order, about 2.5 on average; never more than ``available`` (≥ 1)."""
        if self.random.random() < 0.002:
            wanted = self.random.randint(20, MAX_LINES)
        else:
            wanted = 1 + int(self.random.expovariate(1 / 1.9))
        return max(1, min(wanted, MAX_LINES, available))

    def order_status(self) -> OrderStatus:
        return self.random.choices(list(_STATUS_WEIGHTS), weights=list(_STATUS_WEIGHTS.values()))[0]

    def popularity(self) -> float:
        """A heavy-tailed weight: a few products (or customers) get most of the orders, as in real shops."""
        return min(self.random.paretovariate(1.2), 200.0)

    def order_history(
        self, status: OrderStatus, *, until: datetime, span: timedelta, pending_for: timedelta | None = None
    ) -> list[Transition]:
        """A plausible history ending in ``status``: placed, then each step the status machine allows to get there.

        Every step happens before ``until``, and the order was placed within ``span`` of it. Orders still in flight
        are recent (a pending order waits hours, not months); delivered and cancelled ones are spread over ``span``.
        ``pending_for`` caps how long a pending order has waited at ``until`` (the payment window, when there is one:
        an older one would have been cancelled).
        """
        random = self.random
        path = [OrderStatus.PENDING]
        gaps: list[float] = []  # seconds between consecutive steps
        if status is OrderStatus.CANCELLED:
            if random.random() < 0.4:  # paid, then cancelled
                path.append(OrderStatus.PAID)
                gaps.append(random.expovariate(1 / (0.5 * _HOUR)))
            path.append(OrderStatus.CANCELLED)
            gaps.append(random.expovariate(1 / (6 * _HOUR)))
        else:
            steps = {
                OrderStatus.PAID: (0.5 * _HOUR, 0.0),
                OrderStatus.SHIPPED: (20 * _HOUR, 4 * _HOUR),
                OrderStatus.DELIVERED: (2 * _DAY, 1 * _DAY),
            }
            for step, (mean, minimum) in steps.items():
                if path[-1] is status:
                    break
                path.append(step)
                gaps.append(minimum + random.expovariate(1 / mean))
        # How long the order has rested in its current status: in-flight orders move on within days.
        waiting = {OrderStatus.PENDING: 0.5 * _DAY, OrderStatus.PAID: 1 * _DAY, OrderStatus.SHIPPED: 3 * _DAY}
        busy = sum(gaps)
        room = max(0.0, span.total_seconds() - busy)
        if pending_for is not None:
            waiting[OrderStatus.PENDING] = min(waiting[OrderStatus.PENDING], pending_for.total_seconds())
        idle = random.uniform(0, min(room, waiting.get(status, room)))
        at = until - timedelta(seconds=idle + busy)
        history = [Transition(OrderStatus.PENDING, None, at)]
        for (previous, step), gap in zip(itertools.pairwise(path), gaps, strict=True):
            at += timedelta(seconds=gap)
            history.append(Transition(step, previous, at))
        return history
