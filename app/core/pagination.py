"""The contract's pagination: ``page``/``per_page`` in, ``{items, total, page, per_page, pages}`` out.

advanced-alchemy's filter providers use camelCase names and have no upper bound on the page size, so the two
query parameters are declared here once (as a dependency every list route reuses) and turned into AA's
``LimitOffset`` filter for repositories.
"""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

import msgspec
from advanced_alchemy.filters import LimitOffset
from litestar.di import Provide
from litestar.params import QueryParameter

__all__ = ("MAX_PER_PAGE", "Page", "PageParams", "provide_page_params")

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


def _page_params(
    page: Annotated[int, QueryParameter(ge=1, le=1_000_000, description="Page number, from 1.")] = 1,
    per_page: Annotated[
        int,
        QueryParameter(ge=1, le=MAX_PER_PAGE, description=f"Items per page, 1..{MAX_PER_PAGE}."),
    ] = 20,
) -> PageParams:
    return PageParams(page=page, per_page=per_page)


#: Register as ``dependencies={"paging": provide_page_params}`` on list routes.
provide_page_params = Provide(_page_params, sync_to_thread=False)
