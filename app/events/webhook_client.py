"""The webhook HTTP client: signed POSTs to public targets only, in 10 s, without following redirects.

A module of its own so that only the process that sends webhooks imports httpx (and httpcore, h11, certifi): the
API processes build the worker's configuration too, and with httpx imported by ``app.events.webhooks`` each of them
carried about 1-2.5 MB more (peak RSS per API process is held under 120 MB).

SSRF at delivery time: the network backend resolves the host itself, refuses the connection if any address is not
public (unless ``WEBHOOK_ALLOW_PRIVATE``), and connects to the address it checked — there is no second lookup a
DNS-rebinding attacker could answer differently.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import httpcore
import httpx
import msgspec

from app.domain.webhooks.schemas import WebhookHeaders
from app.domain.webhooks.signing import signature_header
from app.domain.webhooks.targets import TargetPolicy, TargetRefused, resolve
from app.events.webhooks import ATTEMPT_TIMEOUT_S

__all__ = ("AttemptResult", "DeliveryClient")

USER_AGENT: Final = "orders-service-webhooks/1"
#: A receiver's answer is read up to this much (only its status matters; reading lets the connection be reused).
MAX_RESPONSE_BYTES: Final = 65_536


class _CheckedNetworkBackend(httpcore.AsyncNetworkBackend):
    """Resolves the host, checks every address, and connects to the checked one (no second DNS lookup)."""

    def __init__(self, policy: TargetPolicy) -> None:
        self._policy = policy
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await resolve(host, port)
        self._policy.check_addresses(host, addresses)
        if not addresses:
            raise httpcore.ConnectError(f"{host} does not resolve")
        error: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(address), port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        assert error is not None
        raise error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not webhook targets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _CheckedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport with :class:`_CheckedNetworkBackend` under its connection pool.

    httpx 0.28 has no option for a network backend, so the pool it built is replaced by an identical one that has
    it. Connections are pooled per host name (not per address), so TLS SNI, certificate checks and ``Host`` are
    the URL's host, as with any client.
    """

    def __init__(self, policy: TargetPolicy, ssl_context: ssl.SSLContext) -> None:
        super().__init__(verify=ssl_context, trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=100,
            max_keepalive_connections=100,
            keepalive_expiry=5.0,
            network_backend=_CheckedNetworkBackend(policy),
        )


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TargetRefused):
        return f"target refused: {exc}"
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return f"no answer within {ATTEMPT_TIMEOUT_S:g} s"
    if isinstance(exc, httpx.ConnectError):
        return f"connection failed: {exc}" if str(exc) else "connection failed"
    if isinstance(exc, OSError):
        return f"connection failed: {exc.strerror or type(exc).__name__}"
    return f"request failed: {type(exc).__name__}"


@dataclass(frozen=True, slots=True)
class AttemptResult:
    status_code: int | None
    error: str | None

    @property
    def succeeded(self) -> bool:
        return self.error is None


class DeliveryClient:
    """POSTs signed messages: 10 s in all, no redirects, public targets only (unless the policy allows)."""

    def __init__(self, policy: TargetPolicy) -> None:
        self._policy = policy
        self._http = httpx.AsyncClient(
            transport=_CheckedTransport(policy, httpx.create_ssl_context()),
            timeout=httpx.Timeout(ATTEMPT_TIMEOUT_S),
            follow_redirects=False,
            trust_env=False,
            headers={"user-agent": USER_AGENT},
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def attempt(self, url: str, msg_id: str, secrets_in_use: Sequence[str], body: bytes) -> AttemptResult:
        timestamp = int(time.time())
        signed = WebhookHeaders(
            webhook_id=msg_id,
            webhook_timestamp=str(timestamp),
            webhook_signature=signature_header(secrets_in_use, msg_id, timestamp, body),
        )
        headers = {"content-type": "application/json", **msgspec.to_builtins(signed)}
        try:
            self._policy.check_url(url)  # the scheme rule may have changed since the endpoint was saved
            async with asyncio.timeout(ATTEMPT_TIMEOUT_S):
                async with self._http.stream("POST", url, content=body, headers=headers) as response:
                    status = response.status_code
                    # Read (and drop) a short body so the connection can be kept alive; a long one closes it.
                    received = 0
                    async for chunk in response.aiter_raw():
                        received += len(chunk)
                        if received > MAX_RESPONSE_BYTES:
                            break
        except (TargetRefused, TimeoutError, httpx.HTTPError, OSError) as exc:
            return AttemptResult(None, _describe(exc)[:500])
        if 200 <= status < 300:
            return AttemptResult(status, None)
        if 300 <= status < 400:
            return AttemptResult(status, f"HTTP {status}: redirects are not followed")
        return AttemptResult(status, f"HTTP {status}")
