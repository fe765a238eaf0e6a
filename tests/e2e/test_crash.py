"""A worker killed with SIGKILL mid-stream loses nothing and applies nothing twice."""

from __future__ import annotations

import asyncio
import json

import pytest

from schemas.names import EventType, OrderStatus, Topic
from tests.e2e.harness import Harness
from tests.factories import envelope, line, placed_data

pytestmark = pytest.mark.e2e
ORDERS = 400
SECRET = "crash-test-password"


def order_events(index: int) -> list[tuple[Topic, dict[str, object]]]:
    order_id = f"ord-crash-{index}"
    digital = index % 3 == 0
    lines = [line("L1", 1, "digital" if digital else "shipment")]
    request: dict[str, object] = {"fulfillment_id": f"ful-{index}"}
    if digital:
        request["distributions"] = [
            {"line_id": "L1", "credentials": {"username": "u", "password": SECRET}}
        ]
    else:
        request["shipment"] = {"carrier": "DHL", "tracking_number": f"AWB{index:06d}"}
    return [
        (Topic.ORDERS_PLACED, envelope(EventType.ORDER_PLACED, order_id, placed_data(lines))),
        (
            Topic.PAYMENTS_CAPTURED,
            envelope(
                EventType.PAYMENT_CAPTURED,
                order_id,
                {"payment_id": f"p{index}", "amount": "10.00", "currency": "USD"},
            ),
        ),
        (
            Topic.FULFILLMENTS_REQUESTED,
            envelope(EventType.FULFILLMENT_REQUESTED, order_id, request),
        ),
    ]


async def test_sigkilled_worker_restarts_without_loss_or_double_application(
    harness: Harness,
) -> None:
    harness.start_worker()  # two workers in one group
    events = [event for index in range(ORDERS) for event in order_events(index)]

    async def produce() -> None:
        for topic, event in events:
            await harness.send(topic, event)

    producing = asyncio.create_task(produce())
    completed = Topic.FULFILLMENTS_COMPLETED.value

    def done() -> int:
        return len({c["id"] for c in harness.seen(completed)})

    def progress() -> str:
        return f"fulfillment.completed of all {ORDERS} orders ({done()} seen)"

    await harness.until(lambda: done() >= ORDERS // 4, timeout=60, what=progress)
    harness.kill_worker(harness.workers[0])
    harness.start_worker()
    await producing
    await harness.until(lambda: done() >= ORDERS, timeout=120, what=progress)

    fulfilled = {c["data"]["fulfillment_id"] for c in harness.seen(completed)}
    assert fulfilled == {f"ful-{index}" for index in range(ORDERS)}
    documents = [raw async for raw in harness.store.orders.find({})]
    assert len(documents) == ORDERS
    for raw in documents:
        assert raw["status"] == OrderStatus.FULFILLED
        assert [line["fulfilled_quantity"] for line in raw["lines"]] == [1]
        assert len(raw["applied_event_ids"]) == len(set(raw["applied_event_ids"])) == 3
        assert len(raw["captures"]) == 1
    assert SECRET not in json.dumps(documents, default=str)
    assert SECRET not in harness.logs()
