"""Builders of valid input events, shared by unit, property and end-to-end tests."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from consumers.pipeline import PlainRecord
from schemas import cloudevents
from schemas.document import OrderDocument
from schemas.events import INPUT_DATA, Inbound
from schemas.names import EventType, Topic

# A consumed Kafka record, for driving the pipeline directly.
Record = PlainRecord

T0 = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
_ids = itertools.count(1)

ADDRESS = {
    "name": "Ada Buyer",
    "line1": "1 Main St",
    "city": "Springfield",
    "postal_code": "12345",
    "country": "US",
}


def line(
    line_id: str = "L1", quantity: int = 2, delivery: str = "shipment", price: str = "10.00"
) -> dict[str, Any]:
    return {
        "line_id": line_id,
        "sku": f"SKU-{line_id}",
        "title": f"Item {line_id}",
        "quantity": quantity,
        "unit_price": price,
        "delivery": delivery,
    }


def placed_data(
    lines: list[dict[str, Any]] | None = None, total: str | None = None, currency: str = "USD"
) -> dict[str, Any]:
    lines = lines if lines is not None else [line()]
    if total is None:
        total = str(sum(int(item["quantity"]) * float(item["unit_price"]) for item in lines))
    data: dict[str, Any] = {
        "order_number": "#1001",
        "customer": {"name": "Ada Buyer", "email": "ada@example.com"},
        "currency": currency,
        "total": f"{float(total):.2f}",
        "lines": lines,
    }
    if any(item["delivery"] == "shipment" for item in lines):
        data["shipping_address"] = ADDRESS
    return data


def envelope(
    event_type: EventType, order_id: str, data: dict[str, Any], event_id: str | None = None
) -> dict[str, Any]:
    """A CloudEvent as it travels on the wire."""
    return cloudevents.envelope(
        event_type,
        order_id,
        data,
        event_id=event_id or f"evt-{next(_ids)}",
        source="urn:test",
        time=T0 + timedelta(seconds=next(_ids)),
    )


def inbound(
    event_type: EventType, order_id: str, data: dict[str, Any], event_id: str | None = None
) -> Inbound:
    """The same event, validated, as the lifecycle receives it."""
    wire = envelope(event_type, order_id, data, event_id)
    return Inbound(
        id=wire["id"],
        type=event_type,
        order_id=order_id,
        time=datetime.fromisoformat(wire["time"]),
        data=INPUT_DATA[event_type].model_validate(data),  # type: ignore[arg-type]
    )


def placed(order_id: str = "ord-1", event_id: str | None = None, **kwargs: Any) -> Inbound:
    return inbound(EventType.ORDER_PLACED, order_id, placed_data(**kwargs), event_id)


def captured(
    order_id: str = "ord-1",
    amount: str = "20.00",
    payment_id: str = "pay-1",
    currency: str = "USD",
    event_id: str | None = None,
) -> Inbound:
    data = {"payment_id": payment_id, "amount": amount, "currency": currency}
    return inbound(EventType.PAYMENT_CAPTURED, order_id, data, event_id)


def requested(
    order_id: str = "ord-1",
    fulfillment_id: str = "ful-1",
    lines: list[tuple[str, int]] | None = None,
    event_id: str | None = None,
    **extra: Any,
) -> Inbound:
    data: dict[str, Any] = {"fulfillment_id": fulfillment_id, **extra}
    if lines is not None:
        data["lines"] = [{"line_id": line_id, "quantity": quantity} for line_id, quantity in lines]
    return inbound(EventType.FULFILLMENT_REQUESTED, order_id, data, event_id)


def cancel_fulfillment(
    order_id: str = "ord-1", fulfillment_id: str = "ful-1", event_id: str | None = None
) -> Inbound:
    data = {"fulfillment_id": fulfillment_id, "reason": "buyer changed their mind"}
    return inbound(EventType.FULFILLMENT_CANCEL_REQUESTED, order_id, data, event_id)


def cancel_order(order_id: str = "ord-1", event_id: str | None = None) -> Inbound:
    return inbound(EventType.ORDER_CANCEL_REQUESTED, order_id, {"reason": "fraud"}, event_id)


def tracking_data(fulfillment_id: str = "ful-1", **fields: str) -> dict[str, Any]:
    """A `fulfillment.tracking_updated` data: some of carrier, tracking_number, tracking_url."""
    return {"fulfillment_id": fulfillment_id, **fields}


def tracking_updated(
    order_id: str = "ord-1",
    fulfillment_id: str = "ful-1",
    event_id: str | None = None,
    **fields: str,
) -> Inbound:
    data = tracking_data(fulfillment_id, **fields)
    return inbound(EventType.FULFILLMENT_TRACKING_UPDATED, order_id, data, event_id)


def report_data(
    fulfillment_id: str = "ful-1",
    status: str = "in_transit",
    happened_at: datetime | str = T0,
    **extra: str,
) -> dict[str, Any]:
    """A `shipment.status_reported` data; `happened_at` as RFC 3339 (a datetime is formatted)."""
    when = happened_at if isinstance(happened_at, str) else cloudevents.format_time(happened_at)
    return {"fulfillment_id": fulfillment_id, "status": status, "happened_at": when, **extra}


def status_reported(
    order_id: str = "ord-1",
    fulfillment_id: str = "ful-1",
    status: str = "in_transit",
    happened_at: datetime | str = T0,
    event_id: str | None = None,
    **extra: str,
) -> Inbound:
    data = report_data(fulfillment_id, status, happened_at, **extra)
    return inbound(EventType.SHIPMENT_STATUS_REPORTED, order_id, data, event_id)


def fulfillable_order(
    order_id: str, delivery: str = "shipment", quantity: int = 1
) -> list[tuple[Topic, dict[str, Any]]]:
    """The wire events of an order that must end fulfilled: placed, paid in full, one request."""
    lines = [line("L1", quantity, delivery, "10.00")]
    request: dict[str, Any] = {"fulfillment_id": f"ful-{order_id}"}
    if delivery == "shipment":
        request["shipment"] = {"carrier": "DHL", "tracking_number": f"AWB-{order_id}"}
    total = f"{10 * quantity}.00"
    payment = {"payment_id": f"pay-{order_id}", "amount": total, "currency": "USD"}
    return [
        (Topic.ORDERS_PLACED, envelope(EventType.ORDER_PLACED, order_id, placed_data(lines))),
        (
            Topic.PAYMENTS_CAPTURED,
            envelope(EventType.PAYMENT_CAPTURED, order_id, payment),
        ),
        (
            Topic.FULFILLMENTS_REQUESTED,
            envelope(EventType.FULFILLMENT_REQUESTED, order_id, request),
        ),
    ]


def stored_before_1_1(order: OrderDocument) -> dict[str, Any]:
    """`order` as a worker before contract 1.1 stored it: without the fields 1.1 added."""
    older = order.to_mongo()
    for name in ("delivery_status", "early_shipment_news"):
        del older[name]
    for kept in older["fulfillments"]:
        for name in ("shipment_status", "shipment_events", "holds"):
            del kept[name]
    return older
