"""Routes of ``/products``. Reads are public; writes need ``products:manage``."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Request, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from app.core.auth import SCHEME_NAME, authenticate, bearer_token, requires_permission
from app.core.errors import AuthenticationFailed
from app.core.openapi import problems
from app.core.pagination import Page, PageNumber, PageParams, PerPage
from app.core.permissions import PRODUCTS_MANAGE
from app.domain.accounts.services import UserService
from app.domain.catalog.schemas import ProductCreate, ProductRead, ProductUpdate
from app.domain.catalog.services import ProductService

__all__ = ("ProductController",)


class ProductController(Controller):
    path = "/products"
    tags = ["catalog"]

    @get("/", exclude_from_auth=True, security=[{}], responses=problems(422))
    async def list_products(
        self,
        products: NamedDependency[ProductService],
        page: PageNumber = 1,
        per_page: PerPage = 20,
        q: Annotated[
            str | None,
            QueryParameter(
                max_length=200,
                pattern=r"^[^\x00]*$",
                description="Case-insensitive substring of the name or the sku.",
            ),
        ] = None,
        in_stock: Annotated[
            bool | None,
            QueryParameter(description="true: only products with stock; false: only sold-out ones."),
        ] = None,
    ) -> Page[ProductRead]:
        """Active products, newest first. Public; credentials, if sent, are ignored."""
        return await products.list_active(q=q, in_stock=in_stock, paging=PageParams(page, per_page))

    @get(
        "/{product_id:uuid}",
        exclude_from_auth=True,
        security=[{}, {SCHEME_NAME: []}],  # optional: a token only matters for archived products
        responses=problems(401, 404),
    )
    async def get_product(
        self,
        request: Request[Any, Any, Any],
        product_id: FromPath[uuid.UUID],
        products: NamedDependency[ProductService],
    ) -> ProductRead:
        """One product. Public for active products; archived ones are 404 unless the caller has products:manage.

        The route is outside the auth middleware, so the caller is resolved here, and only when it matters (the
        product is archived or missing). Without a bearer token the caller is anonymous. A bearer token that is
        invalid or expired, or whose account is gone or deactivated, is a 401 exactly as on protected routes, rather
        than a silent downgrade to anonymous: a staff client with a stale token is told to refresh instead of being
        told the product does not exist. Active products never look at the token, so a stale token cannot break
        public browsing.
        """

        async def caller_may_manage() -> bool:
            authorization = request.headers.get("authorization")
            if bearer_token(authorization) is None:
                return False
            # The codec comes from the app's components, not DI: a second dependency would make Litestar resolve
            # the two in a task group on every request of this hot route.
            components = request.app.state.components
            claims = authenticate(authorization, components.tokens)
            users = UserService(session=products.session, direct=components.direct)
            principal = await users.load_principal(claims.user_id, issued_at=claims.issued_at)
            if principal is None:
                raise AuthenticationFailed("invalid_token", "The account no longer exists or is deactivated")
            request.scope["user"] = principal  # for the access log's user id
            return principal.can(PRODUCTS_MANAGE)

        return await products.read_visible(product_id, may_see_archived=caller_may_manage)

    @post(
        "/",
        status_code=HTTP_201_CREATED,
        guards=[requires_permission(PRODUCTS_MANAGE)],
        responses=problems(401, 403, 409, 413, 422),
    )
    async def create_product(
        self, data: JSONBody[ProductCreate], products: NamedDependency[ProductService]
    ) -> ProductRead:
        """Add a product. A sku already in use (by an active or archived product) is 409 ``sku_taken``."""
        return await products.add_product(data)

    @patch(
        "/{product_id:uuid}",
        guards=[requires_permission(PRODUCTS_MANAGE)],
        responses=problems(401, 403, 404, 409, 413, 422),
    )
    async def update_product(
        self,
        product_id: FromPath[uuid.UUID],
        data: JSONBody[ProductUpdate],
        products: NamedDependency[ProductService],
    ) -> ProductRead:
        """Change any subset of fields; ``is_active: true`` un-archives. Taking another product's sku is 409."""
        return await products.update_product(product_id, data)

    @delete(
        "/{product_id:uuid}",
        status_code=HTTP_204_NO_CONTENT,
        guards=[requires_permission(PRODUCTS_MANAGE)],
        responses=problems(401, 403, 404),
    )
    async def archive_product(self, product_id: FromPath[uuid.UUID], products: NamedDependency[ProductService]) -> None:
        """Archive the product (``is_active=false``): hidden from the catalog, kept for past orders. Idempotent."""
        await products.archive(product_id)
