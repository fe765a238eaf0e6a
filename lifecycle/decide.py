"""One input event applied to one order: the rules of the contract, "The order's life"."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from lifecycle.fulfillment import cancel, carry_out, hold
from lifecycle.record import listing, note, set_status
from lifecycle.shipment import refresh_delivery_status, status_reported, tracking_updated
from schemas.cloudevents import CloudEvent
from schemas.document import Capture, EarlyCancel, Fulfillment, Line, OrderDocument
from schemas.events import (
    FulfillmentCancelRequested,
    FulfillmentRequested,
    Inbound,
    OrderCancelRequested,
    OrderPlaced,
    PaymentCaptured,
    amount,
)
from schemas.names import (
    CancelReason,
    EventType,
    FulfillmentStatus,
    HoldReason,
    OrderStatus,
    PaymentStatus,
    TimelineType,
)


class Outcome(StrEnum):
    """What became of an input event (the values suit a metric label)."""

    APPLIED = "applied"
    DUPLICATE = "duplicate"
    # Its id was applied before from another source: not applied, but noted on the timeline.
    ID_REUSED = "id_reused"
    # It would make the order's document too large and is not a fulfillment request.
    REFUSED = "refused"


@dataclass(frozen=True)
class Applied:
    """How `apply` took an event, and the output events it caused, in order."""

    outcome: Outcome
    outputs: list[CloudEvent]

    @property
    def changed(self) -> bool:
        """Whether the document changed and must be saved."""
        return self.outcome in (Outcome.APPLIED, Outcome.ID_REUSED)


def apply(
    order: OrderDocument, event: Inbound, now: datetime, too_large: str | None = None
) -> Applied:
    """Apply `event` to `order` in place: applied, a duplicate, a reused id, or refused.

    `too_large` says why the shell found that the event would make the document, or one of
    its outputs, larger than it may be (contract 1.1): a fulfillment request is then
    cancelled as invalid without keeping its payload, and any other event is refused,
    changing nothing.
    """
    applied_from = order.applied_source(event.id)
    if applied_from is not None:
        return _already_applied(order, event, applied_from, now)
    if too_large is not None and event.type is not EventType.FULFILLMENT_REQUESTED:
        return Applied(Outcome.REFUSED, [])
    order.mark_applied(event.id, event.source)
    if too_large is not None:
        _refuse_request(order, event, too_large, now)
    else:
        _HANDLERS[event.type](order, event, now)
    refresh_delivery_status(order, event, now)
    order.updated_at = now
    return Applied(Outcome.APPLIED, order.take_events())


def _already_applied(
    order: OrderDocument, event: Inbound, applied_from: str, now: datetime
) -> Applied:
    """Idempotency is on the id alone; the same id from another source is noted, once."""
    unknown = not applied_from or not event.source
    if unknown or event.source == applied_from or order.reuse_noted(event.id, event.source):
        return Applied(Outcome.DUPLICATE, [])
    order.note_reuse(event.id, event.source)
    summary = (
        f"event id {event.id} was already applied from source {applied_from};"
        f" this {event.type.value} from source {event.source} was not applied"
    )
    note(order, TimelineType.EVENT_ID_REUSED, event, summary, now)
    order.updated_at = now
    return Applied(Outcome.ID_REUSED, [])


def _refuse_request(order: OrderDocument, event: Inbound, detail: str, now: datetime) -> None:
    """A request too large to keep, or whose outputs would be: on the record as cancelled,
    without shipment or credentials."""
    data = event.data
    assert isinstance(data, FulfillmentRequested)
    if order.fulfillment(data.fulfillment_id) is not None:
        _requested(order, event, now)  # a reused fulfillment_id: refused as ever, payload unused
        return
    fulfillment = Fulfillment(
        fulfillment_id=data.fulfillment_id,
        status=FulfillmentStatus.PENDING,
        event_id=event.id,
        requested_at=event.time,
        requested_lines=data.lines or None,
    )
    order.add_fulfillment(fulfillment)
    note(
        order,
        EventType.FULFILLMENT_REQUESTED,
        event,
        "fulfillment requested",
        now,
        data.fulfillment_id,
    )
    cancel(order, fulfillment, CancelReason.INVALID_REQUEST, detail, event, now)


def _is_paid(order: OrderDocument) -> bool:
    return order.placed and order.payment_status is PaymentStatus.CAPTURED


def _add_payment(order: OrderDocument, money: Decimal) -> None:
    """Keep the captured sum as a running total, so a capture costs the same on any order."""
    if not order.placed or order.total is None:
        return
    captured = amount(order.captured_amount) + money
    order.captured_amount = str(captured)
    if captured >= amount(order.total):
        order.payment_status = PaymentStatus.CAPTURED
    elif captured > 0:
        order.payment_status = PaymentStatus.PARTIALLY_CAPTURED
    else:
        order.payment_status = PaymentStatus.PENDING


def _advance(order: OrderDocument, event: Inbound, now: datetime) -> None:
    """Once paid, the order is ready to fulfill and pending requests run in arrival order."""
    if order.status is not OrderStatus.AWAITING_PAYMENT or not _is_paid(order):
        return
    set_status(order, OrderStatus.UNFULFILLED, event, now)
    for fulfillment in order.fulfillments:
        if fulfillment.status is FulfillmentStatus.PENDING:
            carry_out(order, fulfillment, event, now)


def _placed(order: OrderDocument, event: Inbound, now: datetime) -> None:
    data = event.data
    assert isinstance(data, OrderPlaced)
    if order.placed:
        note(
            order,
            TimelineType.ORDER_PLACED_IGNORED,
            event,
            "order.placed ignored: already placed",
            now,
        )
        return
    order.placed = True
    order.order_number = data.order_number
    order.customer = data.customer
    order.currency = data.currency
    order.total = data.total
    order.lines = [Line(**line.model_dump()) for line in data.lines]
    order.shipping_address = data.shipping_address
    order.billing_address = data.billing_address
    order.placed_at = event.time
    note(
        order,
        EventType.ORDER_PLACED,
        event,
        f"order {data.order_number} placed: {len(data.lines)} lines, total {data.total} {data.currency}",
        now,
    )
    # Once per order: the captures that arrived before it was placed start the running total.
    order.captured_amount = "0"
    earlier = (amount(c.amount) for c in order.captures if c.currency == order.currency)
    _add_payment(order, sum(earlier, Decimal(0)))
    if order.status is None:
        set_status(order, OrderStatus.AWAITING_PAYMENT, event, now)
    _advance(order, event, now)
    if order.status is OrderStatus.AWAITING_PAYMENT:
        # Requests that waited for the order now wait for payment: held again, for that.
        for fulfillment in order.fulfillments:
            if fulfillment.status is FulfillmentStatus.PENDING:
                hold(order, fulfillment, HoldReason.AWAITING_PAYMENT, event, now)


def _captured(order: OrderDocument, event: Inbound, now: datetime) -> None:
    data = event.data
    assert isinstance(data, PaymentCaptured)
    if order.capture(data.payment_id) is not None:
        note(
            order,
            TimelineType.PAYMENT_DUPLICATE,
            event,
            f"payment {data.payment_id} counted once",
            now,
        )
        return
    order.add_capture(Capture(**data.model_dump(), event_id=event.id))
    note(order, EventType.PAYMENT_CAPTURED, event, f"captured {data.amount} {data.currency}", now)
    if order.placed and data.currency != order.currency:
        summary = (
            f"capture in {data.currency} recorded, not counted: the order is in {order.currency}"
        )
        note(order, TimelineType.PAYMENT_NOT_COUNTED, event, summary, now)
        return
    _add_payment(order, amount(data.amount))
    _advance(order, event, now)


def _requested(order: OrderDocument, event: Inbound, now: datetime) -> None:
    data = event.data
    assert isinstance(data, FulfillmentRequested)
    fulfillment_id = data.fulfillment_id
    if order.fulfillment(fulfillment_id) is not None:
        note(
            order,
            TimelineType.FULFILLMENT_DUPLICATE,
            event,
            "fulfillment_id seen before",
            now,
            fulfillment_id,
        )
        return
    fulfillment = Fulfillment(
        fulfillment_id=fulfillment_id,
        status=FulfillmentStatus.PENDING,
        event_id=event.id,
        requested_at=event.time,
        requested_lines=data.lines or None,
        shipment=data.shipment,
        distributions=data.distributions,
        shipping_address=data.shipping_address,
        requested_by=data.requested_by,
    )
    order.add_fulfillment(fulfillment)
    note(
        order, EventType.FULFILLMENT_REQUESTED, event, "fulfillment requested", now, fulfillment_id
    )
    early = order.early_cancel(fulfillment_id)
    if early is not None:
        detail = early.reason or "cancel request arrived before the fulfillment request"
        cancel(order, fulfillment, CancelReason.CANCEL_REQUESTED, detail, event, now)
    elif order.status is OrderStatus.CANCELLED:
        cancel(
            order, fulfillment, CancelReason.ORDER_CANCELLED, "the order was cancelled", event, now
        )
    elif _is_paid(order):
        carry_out(order, fulfillment, event, now)
    else:
        reason = HoldReason.AWAITING_PAYMENT if order.placed else HoldReason.AWAITING_ORDER
        hold(order, fulfillment, reason, event, now)


def _cancel_fulfillment(order: OrderDocument, event: Inbound, now: datetime) -> None:
    data = event.data
    assert isinstance(data, FulfillmentCancelRequested)
    fulfillment_id = data.fulfillment_id
    fulfillment = order.fulfillment(fulfillment_id)
    if fulfillment is None:
        if order.early_cancel(fulfillment_id) is not None:
            note(
                order,
                TimelineType.FULFILLMENT_CANCEL_IGNORED,
                event,
                "already remembered",
                now,
                fulfillment_id,
            )
            return
        order.add_early_cancel(
            EarlyCancel(fulfillment_id=fulfillment_id, event_id=event.id, reason=data.reason)
        )
        summary = "cancel remembered: the fulfillment request has not arrived yet"
        note(order, TimelineType.FULFILLMENT_CANCEL_REMEMBERED, event, summary, now, fulfillment_id)
    elif fulfillment.status is FulfillmentStatus.CANCELLED:
        note(
            order,
            TimelineType.FULFILLMENT_CANCEL_IGNORED,
            event,
            "already cancelled",
            now,
            fulfillment_id,
        )
    else:
        detail = data.reason or "cancel requested"
        cancel(order, fulfillment, CancelReason.CANCEL_REQUESTED, detail, event, now)


def _cancel_order(order: OrderDocument, event: Inbound, now: datetime) -> None:
    data = event.data
    assert isinstance(data, OrderCancelRequested)
    if order.status is OrderStatus.CANCELLED:
        note(order, TimelineType.ORDER_CANCEL_IGNORED, event, "order already cancelled", now)
        return
    completed = order.completed_fulfillment_ids()
    if completed:
        summary = (
            f"cancel refused: fulfillments {listing(completed)} are completed; cancel them first"
        )
        note(order, TimelineType.ORDER_CANCEL_REFUSED, event, summary, now)
        return
    note(
        order,
        EventType.ORDER_CANCEL_REQUESTED,
        event,
        f"order cancelled: {data.reason or 'no reason'}",
        now,
    )
    set_status(order, OrderStatus.CANCELLED, event, now)
    for fulfillment in order.fulfillments:
        if fulfillment.status is FulfillmentStatus.PENDING:
            cancel(
                order,
                fulfillment,
                CancelReason.ORDER_CANCELLED,
                "the order was cancelled",
                event,
                now,
            )


_HANDLERS: dict[EventType, Callable[[OrderDocument, Inbound, datetime], None]] = {
    EventType.ORDER_PLACED: _placed,
    EventType.PAYMENT_CAPTURED: _captured,
    EventType.FULFILLMENT_REQUESTED: _requested,
    EventType.FULFILLMENT_CANCEL_REQUESTED: _cancel_fulfillment,
    EventType.ORDER_CANCEL_REQUESTED: _cancel_order,
    EventType.FULFILLMENT_TRACKING_UPDATED: tracking_updated,
    EventType.SHIPMENT_STATUS_REPORTED: status_reported,
}
