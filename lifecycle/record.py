"""What every decision leaves behind: timeline entries and output events with deterministic ids."""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from datetime import datetime
from itertools import islice

from schemas.cloudevents import SEQUENCE_BYTES, CloudEvent, to_json
from schemas.document import OrderDocument, TimelineEntry
from schemas.events import Inbound, OrderStatusChanged, WireModel
from schemas.limits import MAX_OUTPUT_BYTES, MAX_SUMMARY_CHARS
from schemas.names import SERVICE_SOURCE, EventType, OrderStatus

# UTF-8 takes at most this many bytes per character: shorter JSON is measured by its length.
MAX_UTF8_BYTES = 4
# Ids a summary names before it counts the rest.
LISTED_IDS = 5
ELLIPSIS = "…"


def output_id(*parts: str) -> str:
    """The same logical outcome always gets the same id, however often it is re-published."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
    return f"evt-{digest[:32]}"


def note(
    order: OrderDocument,
    kind: str,
    event: Inbound,
    summary: str,
    now: datetime,
    fulfillment_id: str | None = None,
) -> None:
    """Add a timeline entry about `event`; its summary is cut to `MAX_SUMMARY_CHARS`."""
    note_for(order, kind, event.id, summary, now, fulfillment_id, event.time)


def note_for(
    order: OrderDocument,
    kind: str,
    event_id: str,
    summary: str,
    now: datetime,
    fulfillment_id: str | None = None,
    event_time: datetime | None = None,
) -> None:
    """Add a timeline entry about an event applied earlier (one remembered, say), by its id."""
    if len(summary) > MAX_SUMMARY_CHARS:
        summary = summary[: MAX_SUMMARY_CHARS - len(ELLIPSIS)] + ELLIPSIS
    order.timeline.append(
        TimelineEntry(
            at=now,
            type=kind,
            event_id=event_id,
            summary=summary,
            event_time=event_time,
            fulfillment_id=fulfillment_id,
        )
    )


def size_problem(event: CloudEvent) -> str | None:
    """Why `event` may not be published (its JSON is above `MAX_OUTPUT_BYTES`), else None."""
    text = to_json(event)
    # Measured as it will be sent: numbered by the shell if it is not yet.
    extra = SEQUENCE_BYTES if event.sequence is None else 0
    if len(text) * MAX_UTF8_BYTES + extra <= MAX_OUTPUT_BYTES:
        return None
    size = len(text.encode()) + extra
    if size <= MAX_OUTPUT_BYTES:
        return None
    return (
        f"the {event.type.value} event would be {size} bytes,"
        f" above the limit of {MAX_OUTPUT_BYTES} bytes"
    )


def listing(ids: Collection[str]) -> str:
    """A few of `ids` and how many more: "a, b, c, d, e and 7 more"."""
    shown = ", ".join(islice(ids, LISTED_IDS))
    rest = len(ids) - LISTED_IDS
    return f"{shown} and {rest} more" if rest > 0 else shown


def output(
    order: OrderDocument, event_type: EventType, data: WireModel, now: datetime, *key: str
) -> CloudEvent:
    """An output event of this order; its id is derived from what it is about (`key`)."""
    return CloudEvent(
        id=output_id(event_type.value, order.id, *key),
        type=event_type,
        source=SERVICE_SOURCE,
        subject=order.id,
        time=now,
        data=data,
    )


def emit(
    order: OrderDocument, event_type: EventType, data: WireModel, now: datetime, *key: str
) -> None:
    """Record an output event on the order, for the shell to save and publish."""
    order.record(output(order, event_type, data, now, *key))


def set_status(order: OrderDocument, status: OrderStatus, event: Inbound, now: datetime) -> None:
    """Move the order to `status`, announcing the change on the analytics feed."""
    if order.status == status:
        return
    previous = order.status
    order.status = status
    emit(
        order,
        EventType.ORDER_STATUS_CHANGED,
        OrderStatusChanged(
            order_id=order.id,
            order_number=order.order_number,
            from_status=previous,
            to_status=status,
            payment_status=order.payment_status,
        ),
        now,
        event.id,
        status.value,
    )
    note(
        order,
        EventType.ORDER_STATUS_CHANGED,
        event,
        f"status {previous.value if previous else 'none'} -> {status.value}",
        now,
    )
