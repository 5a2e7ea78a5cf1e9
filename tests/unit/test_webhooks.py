"""Webhook building blocks: which addresses are public, Standard Webhooks signatures, the retry schedule."""

from __future__ import annotations

import base64
import ipaddress
import time

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from app.domain.webhooks.signing import new_secret, signature_header
from app.domain.webhooks.targets import TargetPolicy, TargetRefused, is_public
from app.events.webhooks import retry_delay


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0",
        "224.0.0.1", "239.255.255.250", "255.255.255.255", "192.0.2.1", "198.18.0.1", "240.0.0.1",
        "::1", "::", "fe80::1", "fc00::1", "fd12:3456::1", "ff02::1", "2001:db8::1",
        "::ffff:127.0.0.1", "::ffff:10.0.0.1", "64:ff9b::a00:1", "2002:a00:1::1", "2002:7f00:1::",
    ],
)  # fmt: skip
def test_non_public_addresses_are_refused(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["8.8.8.8", "93.184.215.14", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert is_public(ipaddress.ip_address(address))


def test_private_addresses_pass_only_when_allowed() -> None:
    addresses = [ipaddress.ip_address("127.0.0.1")]

    TargetPolicy(allow_private=True).check_addresses("localhost", addresses)
    with pytest.raises(TargetRefused, match="non-public"):
        TargetPolicy().check_addresses("localhost", addresses)


@pytest.mark.parametrize(
    ("url", "insecure_allowed"),
    [("http://example.com/", False), ("ftp://example.com/", True), ("https:///nohost", False)],
)
def test_url_forms_refused(url: str, insecure_allowed: bool) -> None:
    with pytest.raises(TargetRefused):
        TargetPolicy(allow_insecure=insecure_allowed).check_url(url)


def test_http_allowed_only_when_insecure_allowed() -> None:
    assert TargetPolicy(allow_insecure=True).check_url("http://example.com/x") == ("example.com", 80)


def test_secret_is_standard_webhooks_form_with_32_random_bytes() -> None:
    secret = new_secret()

    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert new_secret() != secret


def test_signature_verifies_with_the_standardwebhooks_library() -> None:
    secret, body, now = new_secret(), b'{"type":"order_created"}', int(time.time())
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(now),
        "webhook-signature": signature_header([secret], "msg_1", now, body),
    }

    assert Webhook(secret).verify(body, headers) == {"type": "order_created"}
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body + b" ", headers)


def test_two_secrets_give_two_signatures_each_of_which_verifies() -> None:
    old, new, body, now = new_secret(), new_secret(), b"{}", int(time.time())
    header = signature_header([new, old], "msg_2", now, body)
    headers = {"webhook-id": "msg_2", "webhook-timestamp": str(now), "webhook-signature": header}

    assert len(header.split(" ")) == 2
    assert all(part.startswith("v1,") for part in header.split(" "))
    assert Webhook(old).verify(body, headers) == Webhook(new).verify(body, headers) == {}


def test_retry_delay_doubles_from_the_first_delay() -> None:
    assert [retry_delay(5.0, n) for n in range(1, 10)] == [5, 10, 20, 40, 80, 160, 320, 640, 1280]
    assert retry_delay(5.0, 40) == 86_400  # capped at a day
