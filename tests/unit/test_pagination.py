"""Page math: ``pages`` is ceil(total / per_page); offsets follow from 1-based pages."""

from __future__ import annotations

import pytest

from app.core.pagination import Page, PageParams


@pytest.mark.parametrize(
    ("total", "per_page", "pages"),
    [(0, 20, 0), (1, 20, 1), (20, 20, 1), (21, 20, 2), (100, 100, 1), (101, 100, 2), (7, 1, 7)],
)
def test_pages_is_the_ceiling_of_total_over_per_page(total: int, per_page: int, pages: int) -> None:
    page = Page.of([], total, PageParams(page=1, per_page=per_page))

    assert page.pages == pages


def test_page_echoes_the_request() -> None:
    page = Page.of(["a", "b"], 12, PageParams(page=3, per_page=5))

    assert (page.items, page.total, page.page, page.per_page) == (["a", "b"], 12, 3, 5)


@pytest.mark.parametrize(("page", "per_page", "offset"), [(1, 20, 0), (2, 20, 20), (5, 7, 28)])
def test_offset_skips_the_previous_pages(page: int, per_page: int, offset: int) -> None:
    params = PageParams(page=page, per_page=per_page)

    assert params.offset == offset
    assert params.limit_offset.limit == per_page
    assert params.limit_offset.offset == offset
