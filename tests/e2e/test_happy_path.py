"""The main job on the real stack: placed, paid, fulfilled, announced."""

from __future__ import annotations

import pytest

from schemas.cloudevents import CONTENT_TYPE
from schemas.names import SERVICE_SOURCE, EventType, OrderStatus, Topic
from tests.e2e.harness import Harness
from tests.factories import envelope, line, placed_data
from tests.topic_reading import read_topic

pytestmark = pytest.mark.e2e


async def test_paid_order_is_fulfilled_and_announced(harness: Harness) -> None:
    order_id = "ord-happy"
    await harness.send(
        Topic.ORDERS_PLACED,
        envelope(EventType.ORDER_PLACED, order_id, placed_data([line("L1", 2)])),
    )
    await harness.send(
        Topic.PAYMENTS_CAPTURED,
        envelope(
            EventType.PAYMENT_CAPTURED,
            order_id,
            {"payment_id": "p1", "amount": "20.00", "currency": "USD"},
        ),
    )
    await harness.send(
        Topic.FULFILLMENTS_REQUESTED,
        envelope(
            EventType.FULFILLMENT_REQUESTED,
            order_id,
            {"fulfillment_id": "f1", "shipment": {"carrier": "DHL", "tracking_number": "AWB123"}},
        ),
    )
    completed = await harness.outputs_of(Topic.FULFILLMENTS_COMPLETED, 1)
    assert completed[0]["data"]["order_status"] == "fulfilled"
    assert completed[0]["data"]["shipment"]["tracking_number"] == "AWB123"
    assert completed[0]["key"] == order_id.encode()
    order = await harness.settled(order_id, lambda o: o.status is OrderStatus.FULFILLED)
    assert order.lines[0].fulfilled_quantity == 2
    statuses = await harness.outputs_of(Topic.ORDERS_STATUS_CHANGED, 3)
    assert [s["data"]["to_status"] for s in statuses] == [
        "awaiting_payment",
        "unfulfilled",
        "fulfilled",
    ]
    assert [s["data"]["from_status"] for s in statuses] == [None, "awaiting_payment", "unfulfilled"]
    # Across topics, `sequence` puts the order's outputs in the order they happened.
    ordered = sorted([*completed, *statuses], key=lambda output: output["sequence"])
    assert [(o["type"], o["data"].get("to_status")) for o in ordered] == [
        ("order.status_changed", "awaiting_payment"),
        ("order.status_changed", "unfulfilled"),
        ("fulfillment.completed", None),
        ("order.status_changed", "fulfilled"),
    ]
    # Every output: a structured CloudEvent from this service, keyed by the order, on the
    # partition number all of the order's messages share.
    inputs = await read_topic(
        harness.settings.kafka_bootstrap, harness.settings.topic(Topic.ORDERS_PLACED)
    )
    [placed] = [r for r in inputs if r.key == order_id.encode()]
    for output in [*completed, *statuses]:
        assert output["source"] == SERVICE_SOURCE and output["specversion"] == "1.0"
        assert output["headers"]["content-type"] == CONTENT_TYPE.encode()
        assert output["key"] == order_id.encode() and output["subject"] == order_id
        assert output["partition"] == placed.partition
