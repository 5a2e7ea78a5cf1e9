"""Catalog rules: who sees which products, how the public list is queried, and sku uniqueness.

The public list and the product page are the hottest reads of the service, so they are prepared statements run
straight on asyncpg (see ``app.db.prepared``) that build :class:`ProductRead` positionally from each row: one round
trip for a page and its total.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final

import msgspec
from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from sqlalchemy import String, bindparam, func, or_, select, true
from sqlalchemy.exc import IntegrityError

from app.core.errors import Conflict, NotFound, is_unique_violation
from app.core.pagination import Page, PageParams
from app.db.prepared import Prepared
from app.db.services import Service, apply_changes
from app.domain.catalog.models import Product
from app.domain.catalog.schemas import ProductCreate, ProductRead, ProductUpdate

if TYPE_CHECKING:
    from sqlalchemy import ColumnElement

__all__ = ("ProductService", "to_product_read")

#: The columns of :class:`ProductRead`, in its field order, so a result row converts positionally.
_READ_COLUMNS: Final = tuple(getattr(Product, name) for name in ProductRead.__struct_fields__)
_NEWEST_FIRST: Final = (Product.created_at.desc(), Product.id.desc())
_SKU_CONSTRAINT: Final = "uq_products_sku"
_LIKE_ESCAPE: Final = "\\"


_BY_ID: Final = Prepared(select(*_READ_COLUMNS).where(Product.id == bindparam("product_id")))


@functools.cache
def _page_queries(search: bool, in_stock: bool | None) -> tuple[Prepared, Prepared]:
    """The page (with its total) and the count-only statement for one combination of filters."""
    # ``= true`` rather than ``IS TRUE``: only the former can use the (is_active, created_at, id) index.
    conditions: list[ColumnElement[bool]] = [Product.is_active == true()]
    if search:
        pattern = bindparam("pattern", type_=String)
        conditions.append(
            or_(Product.name.ilike(pattern, escape=_LIKE_ESCAPE), Product.sku.ilike(pattern, escape=_LIKE_ESCAPE))
        )
    if in_stock is not None:
        conditions.append(Product.stock > 0 if in_stock else Product.stock == 0)
    total = select(func.count()).select_from(Product).where(*conditions)
    page = (
        select(*_READ_COLUMNS, total.scalar_subquery().label("total"))
        .where(*conditions)
        .order_by(*_NEWEST_FIRST)
        .limit(bindparam("limit"))
        .offset(bindparam("offset"))
    )
    return Prepared(page), Prepared(total)


def _without(params: dict[str, Any], *names: str) -> dict[str, Any]:
    return {k: v for k, v in params.items() if k not in names}


def to_product_read(product: Product) -> ProductRead:
    return ProductRead(*(getattr(product, name) for name in ProductRead.__struct_fields__))


def _contains(term: str) -> str:
    """An ``ILIKE`` pattern matching ``term`` literally anywhere (``%`` and ``_`` in the term are not wildcards)."""
    escaped = term.replace(_LIKE_ESCAPE, _LIKE_ESCAPE * 2).replace("%", r"\%").replace("_", r"\_")
    return f"%{escaped}%"


def _sku_taken(sku: str) -> Conflict:
    return Conflict("sku_taken", f"A product with sku {sku!r} already exists")


class ProductService(Service[Product]):
    """Products. Writes commit explicitly; the unique index on ``sku`` decides duplicates, races included."""

    class Repo(SQLAlchemyAsyncRepository[Product]):
        model_type = Product

    repository_type = Repo

    async def list_active(self, *, q: str | None, in_stock: bool | None, paging: PageParams) -> Page[ProductRead]:
        """One page of active products, newest first.

        ``q`` matches name or sku case-insensitively as a substring (served by the trigram indexes);
        ``in_stock=True`` keeps products with stock, ``False`` those without. The page and its total come back in one
        round trip (the total as an uncorrelated sub-select, computed once from the index, not with a window over
        every matching row); only a page past the end needs a second statement for the total. Identical page reads
        in flight together share round trips, never answering with rows read before the request
        (:mod:`app.db.shared_reads`): the first page of the catalog is what every visitor asks for at once.
        """
        term = (q or "").strip()
        page, count = _page_queries(bool(term), in_stock)
        params = {"pattern": _contains(term), "limit": paging.per_page, "offset": paging.offset}
        if not term:
            del params["pattern"]
        rows = await page.fetch_shared(self.direct, **params)
        return await Page.counted(
            [ProductRead(*row[:-1]) for row in rows],
            rows,
            paging,
            lambda: count.fetchval(self.direct, **_without(params, "limit", "offset")),
        )

    async def read_visible(
        self, product_id: uuid.UUID, *, may_see_archived: Callable[[], Awaitable[bool]]
    ) -> ProductRead:
        """A product as its caller may see it: active ones to anyone, archived ones only with ``products:manage``.

        ``may_see_archived`` is asked only when the answer depends on it (the product is archived *or missing*), so
        the common case costs one query and no caller lookup. Asking it for missing products too keeps a missing and
        an archived product indistinguishable to every caller, whatever credentials they send.
        """
        row = await _BY_ID.fetchrow(self.direct, product_id=product_id)
        if row is not None and row["is_active"]:
            return ProductRead(*row)
        if not await may_see_archived() or row is None:
            raise NotFound("Product")
        return ProductRead(*row)

    async def add_product(self, data: ProductCreate) -> ProductRead:
        """Create a product. A duplicate sku is 409 ``sku_taken``, also when two creates race (the index decides)."""
        product = Product(**msgspec.structs.asdict(data))
        self.session.add(product)
        await self._flush(data.sku)
        created = to_product_read(product)
        await self.session.commit()
        return created

    async def update_product(self, product_id: uuid.UUID, data: ProductUpdate) -> ProductRead:
        """Change any subset of a product (archived ones too; ``is_active=True`` un-archives).

        The row is locked first, so a change serialises with order placement, which locks the same row to take
        stock: a stock set here is applied either before or after an order's decrement, never lost in between.
        """
        product = await self.repository.get_one_or_none(Product.id == product_id, with_for_update=True)
        if product is None:
            raise NotFound("Product")
        apply_changes(product, data)
        await self._flush(product.sku)
        updated = to_product_read(product)
        await self.session.commit()
        return updated

    async def archive(self, product_id: uuid.UUID) -> None:
        """Archive a product (``is_active=False``): it leaves the public catalog, its row and past orders stay.

        Idempotent: archiving an archived product changes nothing (not even ``updated_at``).
        """
        product = await self.repository.get_one_or_none(Product.id == product_id, with_for_update=True)
        if product is None:
            raise NotFound("Product")
        if product.is_active:
            product.is_active = False
            await self._flush(product.sku)
        await self.session.commit()

    async def _flush(self, sku: str) -> None:
        """Flush pending changes; a duplicate sku (even one committed a moment ago by a racing request) is 409.

        The constraint is identified by name on the driver's error (see ``is_unique_violation``: advanced-alchemy's
        ``DuplicateKeyError`` is not raised for asyncpg's message format). Any other integrity error propagates.
        """
        session = self.session
        try:
            await session.flush()
        except IntegrityError as exc:
            await session.rollback()
            if is_unique_violation(exc, _SKU_CONSTRAINT):
                raise _sku_taken(sku) from None
            raise
