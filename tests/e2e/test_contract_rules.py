"""Every lifecycle workflow of the contract, through a worker process on the real stack."""

from __future__ import annotations

import json
from typing import Any

import pytest

from schemas.names import EventType, FulfillmentStatus, OrderStatus, Topic
from tests.e2e.harness import Harness
from tests.factories import envelope, line, placed_data

pytestmark = pytest.mark.e2e
SECRET = "pa55-word-never-logged"


def placed(
    order_id: str, lines: list[dict[str, Any]] | None = None
) -> tuple[Topic, dict[str, Any]]:
    return Topic.ORDERS_PLACED, envelope(EventType.ORDER_PLACED, order_id, placed_data(lines))


def paid(
    order_id: str, amount: str = "20.00", payment_id: str = "pay-1"
) -> tuple[Topic, dict[str, Any]]:
    data = {"payment_id": payment_id, "amount": amount, "currency": "USD"}
    return Topic.PAYMENTS_CAPTURED, envelope(EventType.PAYMENT_CAPTURED, order_id, data)


def request(
    order_id: str, fulfillment_id: str, lines: list[tuple[str, int]] | None = None, **extra: Any
) -> tuple[Topic, dict[str, Any]]:
    data: dict[str, Any] = {"fulfillment_id": fulfillment_id, **extra}
    if lines is not None:
        data["lines"] = [{"line_id": line_id, "quantity": quantity} for line_id, quantity in lines]
    return Topic.FULFILLMENTS_REQUESTED, envelope(EventType.FULFILLMENT_REQUESTED, order_id, data)


def cancel_fulfillment(order_id: str, fulfillment_id: str) -> tuple[Topic, dict[str, Any]]:
    data = {"fulfillment_id": fulfillment_id, "reason": "wrong parcel"}
    return Topic.FULFILLMENTS_CANCEL_REQUESTED, envelope(
        EventType.FULFILLMENT_CANCEL_REQUESTED, order_id, data
    )


def cancel_order(order_id: str) -> tuple[Topic, dict[str, Any]]:
    return Topic.ORDERS_CANCEL_REQUESTED, envelope(
        EventType.ORDER_CANCEL_REQUESTED, order_id, {"reason": "fraud"}
    )


async def send_all(harness: Harness, *messages: tuple[Topic, dict[str, Any]]) -> None:
    for topic, event in messages:
        await harness.send(topic, event)


def statuses(order: Any) -> dict[str, FulfillmentStatus]:
    return {f.fulfillment_id: f.status for f in order.fulfillments}


async def test_partial_fulfillment_then_the_rest(harness: Harness) -> None:
    order_id = "ord-partial"
    await send_all(
        harness, placed(order_id, [line("L1", 2), line("L2", 1)]), paid(order_id, "30.00")
    )
    await send_all(harness, request(order_id, "f1", [("L1", 1)]))
    order = await harness.settled(order_id, lambda o: o.status is OrderStatus.PARTIALLY_FULFILLED)
    assert [(item.line_id, item.fulfilled_quantity) for item in order.lines] == [
        ("L1", 1),
        ("L2", 0),
    ]
    await send_all(harness, request(order_id, "f2"))
    order = await harness.settled(order_id, lambda o: o.status is OrderStatus.FULFILLED)
    completed = await harness.outputs_of(Topic.FULFILLMENTS_COMPLETED, 2)
    assert [c["data"]["order_status"] for c in completed] == ["partially_fulfilled", "fulfilled"]


async def test_payment_arriving_after_the_request_releases_it(harness: Harness) -> None:
    order_id = "ord-late-pay"
    await send_all(harness, placed(order_id), request(order_id, "f1"))
    order = await harness.settled(order_id, lambda o: bool(o.fulfillments))
    assert statuses(order) == {"f1": FulfillmentStatus.PENDING}
    await send_all(harness, paid(order_id))
    order = await harness.settled(order_id, lambda o: o.status is OrderStatus.FULFILLED)
    assert statuses(order) == {"f1": FulfillmentStatus.COMPLETED}


async def test_fully_reversed_arrival_ends_like_the_natural_order(harness: Harness) -> None:
    order_id = "ord-reversed"
    await send_all(harness, request(order_id, "f1"), paid(order_id), placed(order_id))
    order = await harness.settled(order_id, lambda o: o.status is OrderStatus.FULFILLED)
    assert statuses(order) == {"f1": FulfillmentStatus.COMPLETED}
    assert order.lines[0].fulfilled_quantity == 2


async def test_every_input_sent_three_times_is_applied_once(harness: Harness) -> None:
    order_id = "ord-thrice"
    messages = [
        placed(order_id, [line("L1", 3)]),
        paid(order_id, "30.00"),
        request(order_id, "f1", [("L1", 1)]),
    ]
    for _ in range(3):
        await send_all(harness, *messages)
    order = await harness.settled(order_id, lambda o: len(o.applied_event_ids) == 3)
    await send_all(harness, request(order_id, "marker", [("L1", 1)]))
    order = await harness.settled(order_id, lambda o: o.fulfillment("marker") is not None)
    assert order.lines[0].fulfilled_quantity == 2
    assert len(order.captures) == 1
    completed = await harness.outputs_of(Topic.FULFILLMENTS_COMPLETED, 2)
    assert sorted(c["data"]["fulfillment_id"] for c in completed) == ["f1", "marker"]


async def test_cancelling_a_fulfillment_and_fulfilling_again(harness: Harness) -> None:
    order_id = "ord-redo"
    await send_all(harness, placed(order_id), paid(order_id), request(order_id, "f1"))
    await harness.settled(order_id, lambda o: o.status is OrderStatus.FULFILLED)
    await send_all(harness, cancel_fulfillment(order_id, "f1"))
    order = await harness.settled(order_id, lambda o: o.status is OrderStatus.UNFULFILLED)
    assert order.lines[0].fulfilled_quantity == 0
    cancelled = await harness.outputs_of(Topic.FULFILLMENTS_CANCELLED, 1)
    assert cancelled[0]["data"]["previously_completed"] is True
    assert cancelled[0]["data"]["reason"] == "cancel_requested"
    await send_all(
        harness, request(order_id, "f2", shipment={"carrier": "UPS", "tracking_number": "1Z999"})
    )
    order = await harness.settled(order_id, lambda o: o.status is OrderStatus.FULFILLED)
    assert statuses(order) == {"f1": FulfillmentStatus.CANCELLED, "f2": FulfillmentStatus.COMPLETED}


async def test_order_cancellation_cancels_pending_and_later_requests(harness: Harness) -> None:
    order_id = "ord-cancel"
    await send_all(harness, placed(order_id), request(order_id, "f1"), cancel_order(order_id))
    await harness.settled(order_id, lambda o: o.status is OrderStatus.CANCELLED)
    await send_all(harness, request(order_id, "f2"), paid(order_id))
    order = await harness.settled(
        order_id, lambda o: len(o.fulfillments) == 2 and len(o.captures) == 1
    )
    assert order.status is OrderStatus.CANCELLED
    cancelled = await harness.outputs_of(Topic.FULFILLMENTS_CANCELLED, 2)
    assert {(c["data"]["fulfillment_id"], c["data"]["reason"]) for c in cancelled} == {
        ("f1", "order_cancelled"),
        ("f2", "order_cancelled"),
    }


async def test_order_cancellation_is_refused_after_a_completed_fulfillment(
    harness: Harness,
) -> None:
    order_id = "ord-refuse"
    await send_all(
        harness,
        placed(order_id),
        paid(order_id),
        request(order_id, "f1", [("L1", 1)]),
    )
    await harness.settled(order_id, lambda o: o.status is OrderStatus.PARTIALLY_FULFILLED)
    await send_all(harness, cancel_order(order_id))
    order = await harness.settled(
        order_id, lambda o: any(e.type == "order.cancel_refused" for e in o.timeline)
    )
    assert order.status is OrderStatus.PARTIALLY_FULFILLED


async def test_each_invalid_request_is_cancelled_with_its_reason(harness: Harness) -> None:
    order_id = "ord-invalid"
    await send_all(
        harness,
        placed(order_id),
        paid(order_id),
        request(order_id, "unknown-line", [("L9", 1)]),
        request(order_id, "too-many", [("L1", 3)]),
        request(order_id, "all", None),
        request(order_id, "nothing-left", None),
    )
    cancelled = await harness.outputs_of(Topic.FULFILLMENTS_CANCELLED, 3)
    details = {
        c["data"]["fulfillment_id"]: (c["data"]["reason"], c["data"]["detail"]) for c in cancelled
    }
    assert details["unknown-line"] == ("invalid_request", "unknown line_id 'L9'")
    assert details["too-many"][0] == "invalid_request" and "above" in details["too-many"][1]
    assert details["nothing-left"] == ("invalid_request", "nothing left to fulfill")
    order = await harness.order(order_id)
    assert order.status is OrderStatus.FULFILLED


async def test_digital_credentials_are_delivered_in_the_completed_event_only(
    harness: Harness,
) -> None:
    order_id = "ord-digital"
    distribution = {
        "line_id": "D1",
        "access_url": "https://example.com/dl",
        "credentials": {"username": "ada", "password": SECRET},
    }
    await send_all(harness, placed(order_id, [line("D1", 1, "digital")]), paid(order_id, "10.00"))
    await send_all(harness, request(order_id, "f1", distributions=[distribution]))
    completed = await harness.outputs_of(Topic.FULFILLMENTS_COMPLETED, 1)
    assert completed[0]["data"]["distributions"][0]["credentials"] == {
        "username": "ada",
        "password": SECRET,
    }
    await harness.settled(order_id, lambda o: o.status is OrderStatus.FULFILLED)
    raw = await harness.store.orders.find_one({"_id": order_id})
    assert SECRET not in json.dumps(raw, default=str)
    statuses_seen = await harness.outputs_of(Topic.ORDERS_STATUS_CHANGED, 3)
    assert all(SECRET.encode() not in s["raw"] for s in statuses_seen)
    assert SECRET not in harness.logs()
