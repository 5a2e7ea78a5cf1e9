"""Where a webhook may be sent: ``https://`` URLs of public hosts only (SSRF protection).

A webhook URL is chosen by an admin, but the request is made from inside our network: without this check an
endpoint ``http://169.254.169.254/…`` or ``http://localhost:6379`` would have the worker probe the cloud metadata
service or internal servers, and report status codes and errors back through the delivery log. So a host that is,
or resolves to, an address that is not globally routable is refused — when the endpoint is saved and again at every
delivery, because DNS can change in between (the delivery connects to the very address it checked; see
``app.events.webhooks``).

An address is public when Python's ``ipaddress`` calls it global and it is neither multicast nor reserved; for IPv6
addresses that embed an IPv4 one (IPv4-mapped ``::ffff:a.b.c.d``, NAT64 ``64:ff9b::/96``, 6to4, Teredo), the
embedded address must be public too.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

__all__ = ("TargetPolicy", "TargetRefused", "is_public", "resolve")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64: Final = ipaddress.ip_network("64:ff9b::/96")
#: How long a lookup may take when an endpoint is saved (a delivery's lookup counts against its own 10 s).
RESOLVE_TIMEOUT_S: Final = 5.0


class TargetRefused(Exception):
    """The URL's scheme or host is not allowed; the message says why (it never contains a secret)."""


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    return None


def is_public(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            return False
        embedded = _embedded_ipv4(address)
        if embedded is not None and not is_public(embedded):
            return False
        if embedded is not None and address.ipv4_mapped is not None:
            return True  # ::ffff:0:0/96 itself is "reserved"; the mapped address is what is reached
    return address.is_global and not (address.is_multicast or address.is_reserved or address.is_unspecified)


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to (an IP literal resolves to itself), in the resolver's order."""
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


@dataclass(frozen=True, slots=True)
class TargetPolicy:
    """``WEBHOOK_ALLOW_PRIVATE`` / ``WEBHOOK_ALLOW_INSECURE`` (development and tests only)."""

    allow_private: bool = False
    allow_insecure: bool = False

    def check_url(self, url: str) -> tuple[str, int]:
        """The URL's host and port, if its form is allowed (scheme, host present, no credentials)."""
        parts = urlsplit(url)
        schemes = ("https", "http") if self.allow_insecure else ("https",)
        if parts.scheme not in schemes:
            raise TargetRefused("url must start with https://" + (" or http://" if self.allow_insecure else ""))
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise TargetRefused("url has an invalid port") from None
        if not parts.hostname:
            raise TargetRefused("url has no host")
        if parts.username is not None or parts.password is not None:
            raise TargetRefused("url must not contain credentials")
        return parts.hostname, port

    def check_addresses(self, host: str, addresses: list[IPAddress]) -> None:
        if self.allow_private:
            return
        refused = [str(a) for a in addresses if not is_public(a)]
        if refused:
            raise TargetRefused(f"{host} resolves to a non-public address ({', '.join(refused)})")

    async def check_target(self, url: str) -> None:
        """Refuse a URL whose host is, or resolves to, a non-public address.

        A name that does not resolve (yet) is accepted: it cannot reach anything now, and every delivery checks
        again what it resolves to then.
        """
        host, port = self.check_url(url)
        try:
            async with asyncio.timeout(RESOLVE_TIMEOUT_S):
                addresses = await resolve(host, port)
        except (OSError, TimeoutError, UnicodeError):
            return
        self.check_addresses(host, addresses)
