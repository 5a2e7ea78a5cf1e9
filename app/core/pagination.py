"""The contract's pagination: ``page``/``per_page`` in, ``{items, total, page, per_page, pages}`` out.

advanced-alchemy's filter providers use camelCase names and have no upper bound on the page size, so the two
query parameters are declared here once, as parameter types every list route reuses
(``page: PageNumber = 1, per_page: PerPage = 20`` → ``PageParams(page, per_page)``), and turned into AA's
``LimitOffset`` filter for repositories.

Why parameter types and not a dependency: Litestar resolves a handler's independent dependencies concurrently, in
an anyio task group created for every request. A list route needs its service *and* its paging, and that task
group cost about 150 µs per request here — more than the query the route runs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Annotated, Any, Generic, TypeVar

import msgspec
from advanced_alchemy.filters import LimitOffset
from litestar.params import QueryParameter

__all__ = ("MAX_PER_PAGE", "Page", "PageNumber", "PageParams", "PerPage")

T = TypeVar("T")

MAX_PER_PAGE = 100


class PageParams(msgspec.Struct, frozen=True):
    page: int
    per_page: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page

    @property
    def limit_offset(self) -> LimitOffset:
        return LimitOffset(limit=self.per_page, offset=self.offset)


class Page(msgspec.Struct, Generic[T]):
    """One page of a list, newest first unless the route says otherwise."""

    items: list[T]
    total: int
    page: int
    per_page: int
    pages: int

    @classmethod
    def of(cls, items: list[T], total: int, params: PageParams) -> Page[T]:
        return cls(
            items=items,
            total=total,
            page=params.page,
            per_page=params.per_page,
            pages=-(-total // params.per_page),
        )

    @classmethod
    async def counted(
        cls, items: list[T], rows: Sequence[Mapping[str, Any]], params: PageParams, count: Callable[[], Awaitable[int]]
    ) -> Page[T]:
        """The page of a query whose rows each carry the total (column ``total``), read in the same round trip.

        Only a page without rows lacks it: on the first page the total is 0; past the end, ``count`` asks for it.
        """
        if rows:
            total = int(rows[0]["total"])
        elif params.offset == 0:
            total = 0
        else:
            total = await count()
        return cls.of(items, total, params)


PageNumber = Annotated[int, QueryParameter(ge=1, le=1_000_000, description="Page number, from 1.")]
PerPage = Annotated[int, QueryParameter(ge=1, le=MAX_PER_PAGE, description=f"Items per page, 1..{MAX_PER_PAGE}.")]
