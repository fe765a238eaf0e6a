"""What the pages show of an order, built from its document; credentials are never in it."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from console.forms import can_capture, outstanding
from schemas.document import Fulfillment, OrderDocument, TimelineEntry
from schemas.names import Delivery, FulfillmentStatus, OrderStatus, TimelineType

Raw = dict[str, Any]
SAFE_LINK = re.compile(r"https?://[^\s\"'<>]+$")
# Timeline types that mean the pipeline did not do what the event asked.
REFUSALS = frozenset(
    {
        TimelineType.ORDER_CANCEL_REFUSED.value,
        TimelineType.ORDER_CANCEL_IGNORED.value,
        TimelineType.FULFILLMENT_CANCEL_IGNORED.value,
        TimelineType.FULFILLMENT_DUPLICATE.value,
        TimelineType.PAYMENT_DUPLICATE.value,
        TimelineType.PAYMENT_NOT_COUNTED.value,
        TimelineType.EVENT_ID_REUSED.value,
        TimelineType.TRACKING_UPDATE_REFUSED.value,
        TimelineType.STATUS_REPORT_REFUSED.value,
    }
)
# Timeline types that mean the pipeline keeps the event for later.
WAITS = frozenset(
    {
        TimelineType.FULFILLMENT_PENDING.value,
        TimelineType.TRACKING_UPDATE_REMEMBERED.value,
        TimelineType.STATUS_REPORT_REMEMBERED.value,
    }
)


def when(moment: datetime | str | None) -> str:
    """A time as people read it, in UTC."""
    if moment is None:
        return ""
    if isinstance(moment, str):
        try:
            moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
        except ValueError:
            return str(moment)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def safe_link(url: str | None) -> str | None:
    """The URL if it is a plain web address, else None: anything else is shown as text only."""
    return url if url and SAFE_LINK.match(url) else None


def money(value: str | None) -> str:
    """A decimal amount with at least two decimals, as invoices show it: 0 -> 0.00."""
    if not value:
        return ""
    whole, _, cents = value.partition(".")
    return f"{whole}.{cents.ljust(2, '0')}"


def label(value: str | None) -> str:
    """A status code as words: partially_fulfilled -> partially fulfilled."""
    return (value or "").replace("_", " ")


@dataclass(frozen=True)
class ShipmentEvent:
    status: str
    happened_at: str
    location: str
    note: str


@dataclass(frozen=True)
class FulfillmentView:
    """A fulfillment as shown: what was sent how, and what may still be done with it."""

    fulfillment: Fulfillment
    hold: str | None

    @property
    def id(self) -> str:
        return self.fulfillment.fulfillment_id

    @property
    def status(self) -> str:
        return self.fulfillment.status.value

    @property
    def completed(self) -> bool:
        return self.fulfillment.status is FulfillmentStatus.COMPLETED

    @property
    def items(self) -> str:
        f = self.fulfillment
        if f.lines:
            return ", ".join(f"{line.quantity} x {line.sku}" for line in f.lines)
        if f.requested_lines is None:
            return "everything still unfulfilled"
        return ", ".join(f"{r.quantity} x {r.line_id}" for r in f.requested_lines)

    @property
    def tracking_link(self) -> str | None:
        shipment = self.fulfillment.shipment
        return safe_link(shipment.tracking_url) if shipment else None

    @property
    def shipment_status(self) -> str | None:
        status = self.fulfillment.shipment_status
        return status.value if status else None

    @property
    def shipment_events(self) -> list[ShipmentEvent]:
        """Every status report, newest first."""
        return [
            ShipmentEvent(
                status=event.status.value,
                happened_at=when(event.happened_at),
                location=event.location or "",
                note=event.note or "",
            )
            for event in reversed(self.fulfillment.shipment_events)
        ]

    @property
    def held_for(self) -> str:
        """The reasons this request was held, in words."""
        return ", then ".join(label(reason.value) for reason in self.fulfillment.holds)

    @property
    def released(self) -> str | None:
        """How a held request was released: None while it still waits."""
        f = self.fulfillment
        if f.status is FulfillmentStatus.PENDING:
            return None
        if f.completed_at is not None:
            undone = " (undone since)" if f.status is FulfillmentStatus.CANCELLED else ""
            return f"released: completed {when(f.completed_at)}{undone}"
        return f"released: cancelled {when(f.cancelled_at)}"

    @property
    def can_follow_shipment(self) -> bool:
        """Tracking updates and status reports apply to completed shipments only."""
        return self.completed and self.fulfillment.shipment is not None


@dataclass(frozen=True)
class Distribution:
    """A digital delivery as shown: credentials only as "sealed", never their value."""

    line_id: str
    access_url: str | None
    access_link: str | None
    instructions: str | None
    credentials_sealed: bool


def distributions(fulfillment: Fulfillment) -> list[Distribution]:
    return [
        Distribution(
            line_id=d.line_id,
            access_url=d.access_url,
            access_link=safe_link(d.access_url),
            instructions=d.instructions,
            credentials_sealed=bool(d.sealed_credentials or d.credentials),
        )
        for d in fulfillment.distributions or []
    ]


def _waiting(order: OrderDocument) -> dict[str, str]:
    """Why each pending fulfillment waits: its latest pending entry on the timeline."""
    pending = {
        f.fulfillment_id for f in order.fulfillments if f.status is FulfillmentStatus.PENDING
    }
    waiting: dict[str, str] = {}
    for entry in order.timeline:
        if entry.fulfillment_id in pending and entry.type == TimelineType.FULFILLMENT_PENDING:
            waiting[entry.fulfillment_id] = entry.summary
    return waiting


@dataclass(frozen=True)
class OrderView:
    """Everything the order page shows."""

    order: OrderDocument

    @property
    def title(self) -> str:
        return self.order.order_number or self.order.id

    @property
    def delivery_status(self) -> str:
        return self.order.delivery_status.value

    @property
    def outstanding(self) -> str:
        return format(outstanding(self.order), "f")

    @property
    def can_capture(self) -> bool:
        return can_capture(self.order)

    @property
    def unfulfilled(self) -> int:
        return sum(line.unfulfilled for line in self.order.lines)

    @property
    def can_fulfill(self) -> bool:
        return (
            self.order.placed
            and self.order.status is not OrderStatus.CANCELLED
            and self.unfulfilled > 0
        )

    @property
    def can_cancel(self) -> bool:
        return self.order.placed and self.order.status is not OrderStatus.CANCELLED

    @property
    def completed_fulfillments(self) -> list[str]:
        return list(self.order.completed_fulfillment_ids())

    @property
    def fulfillments(self) -> list[FulfillmentView]:
        waiting = _waiting(self.order)
        return [FulfillmentView(f, waiting.get(f.fulfillment_id)) for f in self.order.fulfillments]

    @property
    def holds(self) -> list[FulfillmentView]:
        """Requests that were held (`fulfillment.held`), waiting still or released."""
        return [view for view in self.fulfillments if view.fulfillment.holds or view.hold]

    @property
    def ships(self) -> bool:
        return any(line.delivery is Delivery.SHIPMENT for line in self.order.lines)

    @property
    def timeline(self) -> list[TimelineEntry]:
        """Newest first: what just happened is what an operator looks for."""
        return list(reversed(self.order.timeline))

    def fulfillment(self, fulfillment_id: str) -> FulfillmentView | None:
        return next((f for f in self.fulfillments if f.id == fulfillment_id), None)


@dataclass(frozen=True)
class Outcome:
    """The pipeline's answer to one event, for the notification."""

    state: str  # pending, done, refused or waiting
    summary: str


def outcome(applied: bool, entries: Sequence[Mapping[str, Any]]) -> Outcome:
    """Classify what the pipeline recorded for an event: done, refused, waiting or pending."""
    if not applied:
        return Outcome("pending", "Sent; waiting for the pipeline to apply it…")
    summary = "; ".join(str(entry.get("summary", "")) for entry in entries) or "applied"
    types = {str(entry.get("type")) for entry in entries}
    refused = types & REFUSALS or any(
        "refused" in kind or "invalid_request" in str(entry.get("summary", ""))
        for entry in entries
        for kind in [str(entry.get("type"))]
    )
    if refused:
        return Outcome("refused", summary)
    if types & WAITS:
        return Outcome("waiting", summary)
    return Outcome("done", summary)
