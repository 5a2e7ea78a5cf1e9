"""The permissions the code checks, each named once: guards and services import these, never the literal strings.

Which role holds which permission is data (``roles.permissions``, seeded by migration ``0001_accounts``), so granting
one to a role is a data change; only the names are fixed here.
"""

from __future__ import annotations

from typing import Final

__all__ = ("ORDERS_MANAGE", "PRODUCTS_MANAGE", "USERS_MANAGE", "WEBHOOKS_MANAGE")

#: See and change every user's orders, read the admin order feed and the job overview.
ORDERS_MANAGE: Final = "orders:manage"
#: Create and change products.
PRODUCTS_MANAGE: Final = "products:manage"
#: Manage user accounts and their roles.
USERS_MANAGE: Final = "users:manage"
#: Register and change webhook endpoints.
WEBHOOKS_MANAGE: Final = "webhooks:manage"
