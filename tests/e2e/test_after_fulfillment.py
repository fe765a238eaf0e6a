"""Contract 1.1 "After the fulfillment", rule by rule, through a worker process on the real stack."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from cloudevents.http import CloudEvent
from cloudevents.kafka import to_binary, to_structured

from producers.publisher import FulfillmentPublisher
from schemas.document import OrderDocument
from schemas.events import FulfillmentTrackingUpdated, ShipmentStatusReported
from schemas.names import (
    DeliveryStatus,
    EventType,
    FulfillmentStatus,
    OrderStatus,
    ShipmentStatus,
    TimelineType,
    Topic,
)
from tests.e2e.harness import Harness, Record, bounded
from tests.e2e.test_contract_rules import (
    cancel_fulfillment,
    paid,
    placed,
    request,
    send_all,
)
from tests.factories import ADDRESS, T0, envelope, line, report_data, tracking_data
from tests.topic_reading import read_topic

pytestmark = pytest.mark.e2e
SHIPMENT = {"carrier": "DHL", "tracking_number": "AWB-1"}
SECRET = "s3cret-never-in-a-cancel"
Message = tuple[Topic, dict[str, Any]]


def tracking(order_id: str, fulfillment_id: str = "f1", **fields: str) -> Message:
    data = tracking_data(fulfillment_id, **fields)
    return Topic.FULFILLMENTS_TRACKING_UPDATED, envelope(
        EventType.FULFILLMENT_TRACKING_UPDATED, order_id, data
    )


def report(
    order_id: str, status: str, hours: float, fulfillment_id: str = "f1", **extra: str
) -> Message:
    data = report_data(fulfillment_id, status, T0 + timedelta(hours=hours), **extra)
    return Topic.SHIPMENTS_STATUS_REPORTED, envelope(
        EventType.SHIPMENT_STATUS_REPORTED, order_id, data
    )


def of_order(records: list[Record], order_id: str) -> list[dict[str, Any]]:
    return [r["data"] for r in records if r.get("subject") == order_id]


async def updates(harness: Harness, order_id: str, count: int) -> list[dict[str, Any]]:
    """The order's first `count` `fulfillment.shipment_updated`, once they are all out."""
    topic = Topic.FULFILLMENTS_SHIPMENT_UPDATED.value
    await harness.until(
        lambda: len(of_order(harness.seen(topic), order_id)) >= count,
        what=f"{count} shipment updates of {order_id}",
    )
    return of_order(harness.seen(topic), order_id)


async def shipped(harness: Harness, order_id: str, **extra: Any) -> OrderDocument:
    """A paid order whose two units went out as fulfillment `f1` with DHL AWB-1."""
    await send_all(harness, placed(order_id), paid(order_id))
    await send_all(harness, request(order_id, "f1", shipment=SHIPMENT, **extra))
    return await harness.settled(order_id, lambda o: o.status is OrderStatus.FULFILLED)


def fulfillment(order: OrderDocument, fulfillment_id: str = "f1") -> Any:
    found = order.fulfillment(fulfillment_id)
    assert found is not None
    return found


def statuses(order: OrderDocument, fulfillment_id: str = "f1") -> list[str]:
    return [e.status.value for e in fulfillment(order, fulfillment_id).shipment_events]


def refused(order: OrderDocument) -> list[str]:
    kinds = (TimelineType.TRACKING_UPDATE_REFUSED, TimelineType.STATUS_REPORT_REFUSED)
    return [entry.summary for entry in order.timeline if entry.type in kinds]


@bounded(90)
async def test_a_tracking_update_replaces_the_fields_given_and_publishes_shipment_updated(
    harness: Harness,
) -> None:
    order_id = "ord-track"
    await shipped(harness, order_id)
    async with FulfillmentPublisher(harness.settings, source="urn:carrier") as publish:
        await publish.tracking_updated(
            order_id,
            FulfillmentTrackingUpdated(
                fulfillment_id="f1", tracking_number="AWB-2", tracking_url="https://t.example/2"
            ),
        )
    [update] = await updates(harness, order_id, 1)
    assert update["shipment"] == {
        "carrier": "DHL",
        "tracking_number": "AWB-2",
        "tracking_url": "https://t.example/2",
    }
    assert update["delivery_status"] == "none" and update["shipment_status"] is None
    order = await harness.settled(
        order_id, lambda o: fulfillment(o).shipment.tracking_number == "AWB-2"
    )
    assert fulfillment(order).shipment.carrier == "DHL"


@bounded(90)
async def test_reports_are_kept_by_happened_at_and_only_a_change_of_current_status_publishes(
    harness: Harness,
) -> None:
    order_id = "ord-reports"
    await shipped(harness, order_id)
    newest = report(order_id, "delivered", 3)
    await send_all(
        harness,
        report(order_id, "in_transit", 2, location="Leipzig hub"),  # publishes
        report(order_id, "handed_over", 1),  # older: kept, nothing
        report(order_id, "in_transit", 2.5, location="Berlin hub"),  # same status: nothing
        newest,  # publishes
        newest,  # a duplicate: nothing
        report(order_id, "delivery_failed", 3),  # a tie, later in the list: publishes
    )
    order = await harness.settled(order_id, lambda o: len(statuses(o)) == 5)
    assert statuses(order) == [
        "handed_over",
        "in_transit",
        "in_transit",
        "delivered",
        "delivery_failed",
    ]
    assert fulfillment(order).shipment_status is ShipmentStatus.DELIVERY_FAILED
    assert fulfillment(order).shipment_events[1].location == "Leipzig hub"
    assert len(order.applied_event_ids) == 3 + 5
    published = await updates(harness, order_id, 3)
    assert [(u["shipment_status"], u["happened_at"]) for u in published] == [
        ("in_transit", "2026-11-21T12:00:00Z"),
        ("delivered", "2026-11-21T13:00:00Z"),
        ("delivery_failed", "2026-11-21T13:00:00Z"),
    ]
    assert [u["delivery_status"] for u in published] == ["none", "delivered", "none"]


@bounded(90)
async def test_news_that_arrives_before_the_request_and_before_payment_applies_on_completion(
    harness: Harness,
) -> None:
    order_id = "ord-early-news"
    await send_all(
        harness,
        report(order_id, "out_for_delivery", 2),
        tracking(order_id, tracking_number="AWB-2"),
        report(order_id, "handed_over", 0),
        tracking(order_id, tracking_url="https://t.example/3"),
    )
    await harness.settled(order_id, lambda o: len(o.applied_event_ids) == 4)
    await send_all(harness, placed(order_id), request(order_id, "f1", shipment=SHIPMENT))
    order = await harness.settled(order_id, lambda o: o.fulfillment("f1") is not None)
    assert fulfillment(order).status is FulfillmentStatus.PENDING
    await send_all(harness, report(order_id, "in_transit", 1))
    await harness.settled(order_id, lambda o: len(o.applied_event_ids) == 7)
    await send_all(harness, paid(order_id))
    order = await harness.settled(order_id, lambda o: o.status is OrderStatus.FULFILLED)
    assert statuses(order) == ["handed_over", "in_transit", "out_for_delivery"]
    assert fulfillment(order).shipment.model_dump() == {
        "carrier": "DHL",
        "tracking_number": "AWB-2",
        "tracking_url": "https://t.example/3",
    }
    completed = await harness.outputs_of(Topic.FULFILLMENTS_COMPLETED, 1)
    assert completed[0]["data"]["shipment"]["tracking_number"] == "AWB-1"  # as requested
    [update] = await updates(harness, order_id, 1)
    assert update["shipment"]["tracking_number"] == "AWB-2"
    assert update["shipment_status"] == "out_for_delivery"


@bounded(90)
async def test_news_of_a_cancelled_or_digital_only_fulfillment_is_refused_on_the_timeline(
    harness: Harness,
) -> None:
    # Cancelled after it completed: refused on arrival.
    undone = "ord-refused-undone"
    await shipped(harness, undone)
    await send_all(harness, cancel_fulfillment(undone, "f1"))
    await harness.settled(undone, lambda o: fulfillment(o).status is FulfillmentStatus.CANCELLED)
    await send_all(
        harness, tracking(undone, tracking_number="AWB-2"), report(undone, "delivered", 1)
    )
    order = await harness.settled(undone, lambda o: len(refused(o)) == 2)
    assert sorted(refused(order)) == [
        "status report refused: the fulfillment is cancelled",
        "tracking update refused: the fulfillment is cancelled",
    ]
    assert fulfillment(order).shipment_events == []
    # Remembered, then cancelled while pending: refused then.
    withdrawn = "ord-refused-withdrawn"
    await send_all(
        harness,
        placed(withdrawn),
        request(withdrawn, "f1", shipment=SHIPMENT),
        report(withdrawn, "in_transit", 1),
    )
    await harness.settled(withdrawn, lambda o: len(o.applied_event_ids) == 3)
    await send_all(harness, cancel_fulfillment(withdrawn, "f1"))
    order = await harness.settled(withdrawn, lambda o: len(refused(o)) == 1)
    assert refused(order) == [
        "remembered status report (in_transit) refused: the fulfillment was cancelled"
    ]
    # Digital-only: refused on arrival, and what was remembered refused on completion.
    digital = "ord-refused-digital"
    await send_all(harness, report(digital, "delivered", 1))
    await harness.settled(digital, lambda o: len(o.applied_event_ids) == 1)
    await send_all(
        harness,
        placed(digital, [line("D1", 1, "digital")]),
        paid(digital, "10.00"),
        request(digital, "f1"),
    )
    await harness.settled(digital, lambda o: o.status is OrderStatus.FULFILLED)
    await send_all(harness, tracking(digital, carrier="DHL", tracking_number="X"))
    order = await harness.settled(digital, lambda o: len(refused(o)) == 2)
    assert refused(order) == [
        "remembered status report (delivered) refused: the fulfillment is digital-only",
        "tracking update refused: the fulfillment is digital-only",
    ]
    # Every output of theirs is out (settled): none of the refused news was announced.
    updated = await read_topic(
        harness.settings.kafka_bootstrap,
        harness.settings.topic(Topic.FULFILLMENTS_SHIPMENT_UPDATED),
    )
    assert not {json.loads(r.value)["subject"] for r in updated} & {undone, withdrawn, digital}


@bounded(90)
async def test_delivery_status_goes_from_none_to_partially_delivered_to_delivered(
    harness: Harness,
) -> None:
    order_id = "ord-delivery"
    await send_all(harness, placed(order_id, [line("L1", 1), line("L2", 1)]), paid(order_id))
    await send_all(
        harness,
        request(order_id, "a", [("L1", 1)], shipment=SHIPMENT),
        request(order_id, "b", [("L2", 1)], shipment=SHIPMENT | {"tracking_number": "AWB-B"}),
    )
    order = await harness.settled(order_id, lambda o: o.status is OrderStatus.FULFILLED)
    assert order.delivery_status is DeliveryStatus.NONE
    await send_all(harness, report(order_id, "delivered", 1, "a"))
    order = await harness.settled(
        order_id, lambda o: o.delivery_status is DeliveryStatus.PARTIALLY_DELIVERED
    )
    await send_all(harness, report(order_id, "delivered", 2, "b"))
    order = await harness.settled(order_id, lambda o: o.delivery_status is DeliveryStatus.DELIVERED)
    published = await updates(harness, order_id, 2)
    assert [(u["fulfillment_id"], u["delivery_status"]) for u in published] == [
        ("a", "partially_delivered"),
        ("b", "delivered"),
    ]
    raw = await harness.store.orders.find_one({"_id": order_id})
    assert raw is not None and raw["delivery_status"] == "delivered"
    assert raw["fulfillments"][0]["shipment_status"] == "delivered"
    assert set(raw["fulfillments"][0]["shipment_events"][0]) >= {
        "status",
        "happened_at",
        "event_id",
    }


@bounded(90)
async def test_a_request_waits_visibly_held_once_per_reason_and_completion_releases_it(
    harness: Harness,
) -> None:
    order_id = "ord-held"
    await send_all(harness, request(order_id, "f1", [("L1", 2)]))
    [held] = await harness.outputs_of(Topic.FULFILLMENTS_HELD, 1)
    assert held["data"] == {
        "order_id": order_id,
        "order_number": None,
        "fulfillment_id": "f1",
        "reason": "awaiting_order",
        "lines": [{"line_id": "L1", "sku": None, "quantity": 2}],
    }
    await send_all(harness, placed(order_id))
    both = await harness.outputs_of(Topic.FULFILLMENTS_HELD, 2)
    assert both[1]["data"]["reason"] == "awaiting_payment"
    assert both[1]["data"]["lines"] == [{"line_id": "L1", "sku": "SKU-L1", "quantity": 2}]
    await send_all(harness, paid(order_id, "5.00", "p1"), paid(order_id, "15.00", "p2"))
    await harness.settled(order_id, lambda o: o.status is OrderStatus.FULFILLED)
    completed = await harness.outputs_of(Topic.FULFILLMENTS_COMPLETED, 1)
    assert completed[0]["data"]["fulfillment_id"] == "f1"
    assert len(harness.seen(Topic.FULFILLMENTS_HELD.value)) == 2
    assert len({h["id"] for h in both}) == 2


@bounded(90)
async def test_completed_event_carries_the_customer_and_the_delivery_address_in_force(
    harness: Harness,
) -> None:
    order_id = "ord-slip"
    corrected = ADDRESS | {"line1": "2 Side St", "line2": "Flat 3"}
    await send_all(
        harness,
        placed(order_id, [line("L1", 1), line("D1", 1, "digital")]),
        paid(order_id, "20.00"),
    )
    await send_all(
        harness,
        request(order_id, "parcel", [("L1", 1)], shipment=SHIPMENT, shipping_address=corrected),
    )
    await harness.settled(order_id, lambda o: o.status is OrderStatus.PARTIALLY_FULFILLED)
    await send_all(harness, request(order_id, "download", [("D1", 1)]))
    completed = await harness.outputs_of(Topic.FULFILLMENTS_COMPLETED, 2)
    by_id = {c["data"]["fulfillment_id"]: c["data"] for c in completed}
    assert by_id["parcel"]["customer"] == {
        "name": "Ada Buyer",
        "email": "ada@example.com",
        "phone": None,
    }
    assert by_id["parcel"]["delivery_address"]["line1"] == "2 Side St"
    assert by_id["parcel"]["delivery_address"]["line2"] == "Flat 3"
    assert by_id["download"]["customer"]["email"] == "ada@example.com"
    assert by_id["download"]["delivery_address"] is None


@bounded(90)
async def test_undoing_a_digital_fulfillment_lists_the_access_to_revoke_without_credentials(
    harness: Harness,
) -> None:
    order_id = "ord-revoke"
    distribution = {
        "line_id": "D1",
        "access_url": "https://dl.example/d1",
        "credentials": {"username": "ada", "password": SECRET},
    }
    await send_all(
        harness,
        placed(order_id, [line("D1", 1, "digital"), line("D2", 1, "digital")]),
        paid(order_id, "20.00"),
    )
    await send_all(harness, request(order_id, "f1", distributions=[distribution]))
    order = await harness.settled(order_id, lambda o: o.status is OrderStatus.FULFILLED)
    assert order.delivery_status is DeliveryStatus.DELIVERED
    await send_all(harness, cancel_fulfillment(order_id, "f1"))
    [cancelled] = await harness.outputs_of(Topic.FULFILLMENTS_CANCELLED, 1)
    assert cancelled["data"]["previously_completed"] is True
    assert cancelled["data"]["revoke_access"] == [
        {"line_id": "D1", "access_url": "https://dl.example/d1"},
        {"line_id": "D2", "access_url": None},
    ]
    assert SECRET.encode() not in cancelled["raw"]
    order = await harness.settled(order_id, lambda o: o.status is OrderStatus.UNFULFILLED)
    assert order.delivery_status is DeliveryStatus.NONE


@bounded(90)
async def test_invalid_new_inputs_are_dead_lettered_as_for_the_1_0_inputs(
    harness: Harness,
) -> None:
    def raw(event_type: EventType, key: str, data: dict[str, Any]) -> bytes:
        return json.dumps(envelope(event_type, key, data)).encode()

    report_type, tracking_type = (
        EventType.SHIPMENT_STATUS_REPORTED,
        EventType.FULFILLMENT_TRACKING_UPDATED,
    )
    reports, updates_ = Topic.SHIPMENTS_STATUS_REPORTED, Topic.FULFILLMENTS_TRACKING_UPDATED
    cases = [
        (reports, "ord-bad-status", report_data("f1", "lost_at_sea"), "data.status"),
        (reports, "ord-bad-date", report_data("f1", "delivered", "2026-11-21"), "data.happened_at"),
        (
            reports,
            "ord-bad-zone",
            report_data("f1", "delivered", "2026-11-21T10:00:00"),
            "data.happened_at",
        ),
        (
            reports,
            "ord-bad-number",
            report_data("f1") | {"happened_at": 1_790_000_000},
            "data.happened_at",
        ),
        (
            updates_,
            "ord-bad-none",
            {"fulfillment_id": "f1"},
            "at least one of carrier, tracking_number, tracking_url",
        ),
        (updates_, "ord-bad-null", {"fulfillment_id": "f1", "carrier": None}, "at least one of"),
    ]
    for topic, key, data, _ in cases:
        event_type = report_type if topic is reports else tracking_type
        await harness.send_raw(
            topic, key.encode(), raw(event_type, key, data), headers=[("trace", b"t-9")]
        )
    wrong = envelope(tracking_type, "ord-bad-type", tracking_data(carrier="UPS"))
    await harness.send_raw(reports, b"ord-bad-type", json.dumps(wrong).encode())
    for topic, key, _, names in cases:
        letter = await harness.dead_letter(topic, key.encode())
        headers = letter["headers"]
        assert headers["x-dlq-reason"] == b"invalid_data"
        assert names in headers["x-dlq-error"].decode()
        assert b"lost_at_sea" not in headers["x-dlq-error"]
        assert headers["trace"] == b"t-9"
        assert headers["x-original-topic"] == harness.settings.topic(topic).encode()
        assert headers["x-original-partition"].isdigit() and headers["x-original-offset"].isdigit()
    letter = await harness.dead_letter(reports, b"ord-bad-type")
    assert letter["headers"]["x-dlq-reason"] == b"wrong_type"
    # Processing goes on: a good report after the bad ones is applied.
    await shipped(harness, "ord-bad-status")
    await send_all(harness, report("ord-bad-status", "delivered", 1))
    await harness.settled("ord-bad-status", lambda o: o.delivery_status is DeliveryStatus.DELIVERED)


@bounded(90)
async def test_the_new_inputs_in_both_content_modes_of_the_official_sdk_are_applied(
    harness: Harness,
) -> None:
    order_id = "ord-sdk-modes"
    await shipped(harness, order_id)
    # A media type with parameters, as the SDK's users may label JSON, in structured mode.
    in_transit = report(order_id, "in_transit", 1)[1] | {
        "datacontenttype": "application/json; charset=utf-8"
    }
    sent: list[tuple[Topic, Callable[..., Any], dict[str, Any]]] = [
        (Topic.FULFILLMENTS_TRACKING_UPDATED, to_binary, tracking(order_id, carrier="UPS")[1]),
        (Topic.SHIPMENTS_STATUS_REPORTED, to_structured, in_transit),
        (Topic.SHIPMENTS_STATUS_REPORTED, to_binary, report(order_id, "delivered", 2)[1]),
    ]
    for topic, convert, wire in sent:
        attributes = dict(wire)
        data = attributes.pop("data")
        message = convert(CloudEvent(attributes, data), key_mapper=lambda e: e["subject"])
        key = message.key.encode() if isinstance(message.key, str) else message.key
        await harness.send_raw(topic, key, message.value, headers=list(message.headers.items()))
    order = await harness.settled(order_id, lambda o: o.delivery_status is DeliveryStatus.DELIVERED)
    assert fulfillment(order).shipment.carrier == "UPS"
    assert statuses(order) == ["in_transit", "delivered"]


@bounded(90)
async def test_the_typed_publisher_sends_a_status_report(harness: Harness) -> None:
    order_id = "ord-typed-report"
    await shipped(harness, order_id)
    async with FulfillmentPublisher(harness.settings, source="urn:carrier") as publish:
        event_id = await publish.shipment_status_reported(
            order_id,
            ShipmentStatusReported.model_validate(
                {
                    "fulfillment_id": "f1",
                    "status": "handed_over",
                    "happened_at": "2026-11-21T10:00:00Z",
                }
            ),
        )
    order = await harness.settled(order_id, lambda o: bool(statuses(o)))
    assert fulfillment(order).shipment_events[0].event_id == event_id
