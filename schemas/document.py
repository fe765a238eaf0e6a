"""The order document: one per order in MongoDB, `_id` = order id."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from schemas.events import (
    Address,
    Customer,
    Distribution,
    FulfilledLine,
    RequestedLine,
    Shipment,
)
from schemas.names import (
    CancelReason,
    Delivery,
    FulfillmentStatus,
    OrderStatus,
    PaymentStatus,
)


class DocumentModel(BaseModel):
    """Stored state: mutable in the lifecycle, validated on load."""

    model_config = ConfigDict(extra="ignore", validate_assignment=False, populate_by_name=True)


class Line(DocumentModel):
    line_id: str
    sku: str
    title: str
    quantity: int
    unit_price: str
    delivery: Delivery
    fulfilled_quantity: int = 0

    @property
    def unfulfilled(self) -> int:
        return self.quantity - self.fulfilled_quantity


class Capture(DocumentModel):
    payment_id: str
    amount: str
    currency: str
    method: str | None = None
    event_id: str


class Fulfillment(DocumentModel):
    """One fulfillment request and what became of it."""

    fulfillment_id: str
    status: FulfillmentStatus
    event_id: str
    requested_at: datetime
    # As requested (None = every quantity still unfulfilled), kept while pending.
    requested_lines: list[RequestedLine] | None = None
    # As carried out, or as they were when cancelled.
    lines: list[FulfilledLine] = Field(default_factory=list)
    shipment: Shipment | None = None
    distributions: list[Distribution] | None = None
    shipping_address: Address | None = None
    requested_by: str | None = None
    completed_at: datetime | None = None
    cancelled_at: datetime | None = None
    reason: CancelReason | None = None
    detail: str | None = None
    previously_completed: bool = False


class EarlyCancel(DocumentModel):
    """A cancel request that arrived before its fulfillment request."""

    fulfillment_id: str
    event_id: str
    reason: str | None = None


class TimelineEntry(DocumentModel):
    at: datetime
    type: str
    event_id: str
    summary: str
    event_time: datetime | None = None
    fulfillment_id: str | None = None


class OutboxMessage(DocumentModel):
    """An output event saved with the state change that caused it, until the broker acks it."""

    id: str
    topic: str
    key: str
    # The CloudEvent as JSON text: cheap for the store to keep, and sent as it is.
    value: str

    @property
    def event(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.value)
        return parsed


class PendingOutbox(DocumentModel):
    """A marker in the `outbox_pending` collection: this saved version's outbox may be unsent."""

    id: str = Field(alias="_id")
    order_id: str
    version: int
    at: datetime

    @staticmethod
    def key(order_id: str, version: int) -> str:
        return f"{order_id}@{version}"

    @classmethod
    def of(cls, order: OrderDocument, now: datetime) -> PendingOutbox:
        return cls(
            _id=cls.key(order.id, order.version), order_id=order.id, version=order.version, at=now
        )

    def to_mongo(self) -> dict[str, Any]:
        return self.model_dump(mode="python", by_alias=True)


class OrderDocument(DocumentModel):
    id: str = Field(alias="_id")
    version: int = 0
    placed: bool = False
    status: OrderStatus | None = None
    payment_status: PaymentStatus = PaymentStatus.PENDING
    order_number: str | None = None
    customer: Customer | None = None
    currency: str | None = None
    total: str | None = None
    captured_amount: str = "0"
    lines: list[Line] = Field(default_factory=list)
    shipping_address: Address | None = None
    billing_address: Address | None = None
    placed_at: datetime | None = None
    captures: list[Capture] = Field(default_factory=list)
    fulfillments: list[Fulfillment] = Field(default_factory=list)
    early_cancels: list[EarlyCancel] = Field(default_factory=list)
    applied_event_ids: list[str] = Field(default_factory=list)
    timeline: list[TimelineEntry] = Field(default_factory=list)
    # The outputs of the last save; whether they were sent is kept in `outbox_pending`.
    outbox: list[OutboxMessage] = Field(default_factory=list)
    updated_at: datetime | None = None

    def fulfillment(self, fulfillment_id: str) -> Fulfillment | None:
        return next((f for f in self.fulfillments if f.fulfillment_id == fulfillment_id), None)

    def line(self, line_id: str) -> Line | None:
        return next((line for line in self.lines if line.line_id == line_id), None)

    def to_mongo(self) -> dict[str, Any]:
        """The BSON-ready document; credentials in it are already sealed."""
        return self.model_dump(mode="python", by_alias=True)
