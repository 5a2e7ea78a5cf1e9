"""The status table: exactly the contract's transitions, nothing else."""

from __future__ import annotations

import itertools

from app.domain.orders.state_machine import FINAL_STATUSES, OrderStatus, can_transition

ALLOWED = {
    (OrderStatus.PENDING, OrderStatus.PAID),
    (OrderStatus.PAID, OrderStatus.SHIPPED),
    (OrderStatus.SHIPPED, OrderStatus.DELIVERED),
    (OrderStatus.PENDING, OrderStatus.CANCELLED),
    (OrderStatus.PAID, OrderStatus.CANCELLED),
}


def test_only_the_contracts_transitions_are_allowed() -> None:
    for current, target in itertools.product(OrderStatus, repeat=2):
        assert can_transition(current, target) is ((current, target) in ALLOWED), (current, target)


def test_delivered_and_cancelled_are_final() -> None:
    assert {OrderStatus.DELIVERED, OrderStatus.CANCELLED} == FINAL_STATUSES
