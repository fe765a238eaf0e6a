"""Realistic input events for N orders, serialised once so every variant gets the same bytes."""

from __future__ import annotations

import json
from dataclasses import dataclass

from producers.publisher import cloud_event
from schemas.events import (
    Credentials,
    Distribution,
    FulfillmentRequested,
    PaymentCaptured,
    WireModel,
)
from schemas.names import EventType, Topic
from tools.scenarios import Builder

Record = tuple[bytes, bytes]  # key, value


@dataclass(frozen=True)
class Workload:
    """Each topic's records, in order: order i's events are at index i of every list."""

    orders: int
    placed: list[Record]
    captured: list[Record]
    requested: list[Record]

    def by_topic(self) -> dict[Topic, list[Record]]:
        return {
            Topic.ORDERS_PLACED: self.placed,
            Topic.PAYMENTS_CAPTURED: self.captured,
            Topic.FULFILLMENTS_REQUESTED: self.requested,
        }

    @property
    def messages(self) -> int:
        return 3 * self.orders


def _record(event_type: EventType, order_id: str, data: WireModel, index: int) -> Record:
    event = cloud_event(
        event_type, order_id, data, "urn:bench", event_id=f"{order_id}-{event_type.value}"
    )
    return order_id.encode(), json.dumps(event).encode()


def workload(orders: int, run: str) -> Workload:
    """Placed, captured and requested events of `orders` orders; one in five is digital."""
    make = Builder(run, seed=11)
    placed, captured, requested = [], [], []
    for index in range(orders):
        digital = index % 5 == 0
        order_id, order = make.order(digital=digital, quantity=1 + index % 3)
        payment = PaymentCaptured(
            payment_id=f"pay-{order_id}", amount=order.total, currency=order.currency, method="card"
        )
        if digital:
            credentials = Credentials(username=order_id, token=f"tok-{index:08d}")
            request = FulfillmentRequested(
                fulfillment_id=f"ful-{order_id}",
                distributions=[
                    Distribution(
                        line_id="L1",
                        access_url=f"https://dl.example.com/{order_id}",
                        credentials=credentials,
                    )
                ],
            )
        else:
            request = FulfillmentRequested(
                fulfillment_id=f"ful-{order_id}", shipment=make.shipment(), requested_by="wms"
            )
        placed.append(_record(EventType.ORDER_PLACED, order_id, order, index))
        captured.append(_record(EventType.PAYMENT_CAPTURED, order_id, payment, index))
        requested.append(_record(EventType.FULFILLMENT_REQUESTED, order_id, request, index))
    return Workload(orders, placed, captured, requested)
