"""The contract's pagination: ``page``/``per_page`` in, ``{items, total, page, per_page, pages}`` out.

Numbered pages stop at the 10,000th item (:data:`MAX_PAGE_DEPTH`): a page that starts past it is refused with
``page_too_deep`` before any query runs. An ``OFFSET`` reads and throws away every row it skips, so page 10,000 of a
million orders cost seconds; the order lists offer cursor pagination (:class:`CursorPage`) for going further, whose
pages cost the same at any depth.

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

from app.core.errors import DomainError, FieldError

__all__ = ("MAX_PAGE_DEPTH", "MAX_PER_PAGE", "CursorPage", "Page", "PageNumber", "PageParams", "PerPage")

T = TypeVar("T")

MAX_PER_PAGE = 100
#: Items a numbered page may skip: ``(page - 1) * per_page`` must stay below this (contract §1).
MAX_PAGE_DEPTH = 10_000


class PageParams(msgspec.Struct, frozen=True):
    """A numbered page; building one that starts past the 10,000th item raises ``page_too_deep`` (422)."""

    page: int
    per_page: int

    def __post_init__(self) -> None:
        if self.offset >= MAX_PAGE_DEPTH:
            raise DomainError(
                "page_too_deep",
                f"Numbered pages end at item {MAX_PAGE_DEPTH:,}; page {self.page} of {self.per_page} starts at item "
                f"{self.offset + 1:,}. Use cursor pagination instead: `?cursor=` for the first page, then "
                "`?cursor=<next_cursor>` (on the order lists), or narrow the filters.",
                errors=[FieldError(field="page", message=f"(page - 1) * per_page must be below {MAX_PAGE_DEPTH}")],
            )

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


class CursorPage(msgspec.Struct, Generic[T]):
    """One page of a list read by cursor: no total (counting is what makes deep pages dear); ``next_cursor`` is
    null on the last page."""

    items: list[T]
    per_page: int
    next_cursor: str | None


PageNumber = Annotated[int, QueryParameter(ge=1, le=1_000_000, description="Page number, from 1.")]
PerPage = Annotated[int, QueryParameter(ge=1, le=MAX_PER_PAGE, description=f"Items per page, 1..{MAX_PER_PAGE}.")]
