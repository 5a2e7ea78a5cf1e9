"""Page math: ``pages`` is ceil(total / per_page); offsets follow from 1-based pages."""

from __future__ import annotations

import pytest

from app.core.errors import DomainError
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


@pytest.mark.parametrize(("page", "per_page"), [(101, 100), (10_001, 1), (501, 20)])
def test_a_page_starting_at_item_10001_or_later_is_page_too_deep(page: int, per_page: int) -> None:
    with pytest.raises(DomainError) as raised:
        PageParams(page=page, per_page=per_page)

    assert (raised.value.code, raised.value.status_code) == ("page_too_deep", 422)
    assert "cursor" in raised.value.detail


@pytest.mark.parametrize(("page", "per_page"), [(100, 100), (10_000, 1), (500, 20)])
def test_the_last_page_starting_within_10000_items_is_allowed(page: int, per_page: int) -> None:
    assert PageParams(page=page, per_page=per_page).offset < 10_000
