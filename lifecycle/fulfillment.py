"""Carrying out, refusing and undoing fulfillments of a paid order."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from lifecycle.record import listing, note, output, set_status, size_problem
from lifecycle.shipment import on_cancellation, on_completion
from schemas.cloudevents import CloudEvent
from schemas.document import Fulfillment, OrderDocument
from schemas.events import (
    CancelledLine,
    Distribution,
    FulfilledLine,
    FulfillmentCancelled,
    FulfillmentCompleted,
    FulfillmentHeld,
    HeldLine,
    Inbound,
    RequestedLine,
    RevokedAccess,
)
from schemas.names import (
    CancelReason,
    Delivery,
    EventType,
    FulfillmentStatus,
    HoldReason,
    OrderStatus,
    TimelineType,
)

# Said in the detail of a `fulfillment.cancelled` too large to publish with its lines.
LINES_NOT_LISTED = "its lines are not listed: they would make this event too large"


def progress_status(order: OrderDocument, adding: Mapping[str, int] | None = None) -> OrderStatus:
    """The status a paid order has, given how much of it is fulfilled (plus `adding` per line)."""
    adding = adding or {}
    fulfilled = [
        (line.fulfilled_quantity + adding.get(line.line_id, 0), line.quantity)
        for line in order.lines
    ]
    if all(done == quantity for done, quantity in fulfilled):
        return OrderStatus.FULFILLED
    if any(done > 0 for done, _ in fulfilled):
        return OrderStatus.PARTIALLY_FULFILLED
    return OrderStatus.UNFULFILLED


def resolve_lines(
    order: OrderDocument, fulfillment: Fulfillment
) -> tuple[list[FulfilledLine], str | None]:
    """The lines and quantities to fulfill, or why the request is invalid."""
    if fulfillment.requested_lines is None:
        remaining = [
            FulfilledLine(line_id=line.line_id, sku=line.sku, quantity=line.unfulfilled)
            for line in order.lines
            if line.unfulfilled > 0
        ]
        return remaining, None if remaining else "nothing left to fulfill"
    wanted = _totals(fulfillment.requested_lines)
    for line_id in wanted:
        if order.line(line_id) is None:
            return [], f"unknown line_id {line_id!r}"
    lines = []
    for line_id, quantity in wanted.items():
        line = order.line(line_id)
        assert line is not None
        if quantity > line.unfulfilled:
            return [], (
                f"line {line_id!r}: quantity {quantity} is above the {line.unfulfilled} still unfulfilled"
            )
        lines.append(FulfilledLine(line_id=line_id, sku=line.sku, quantity=quantity))
    return lines, None


def _totals(requested: list[RequestedLine] | None) -> dict[str, int]:
    """A request's quantities summed per line, in the order it first names them: a line named
    again is the same line, and an output lists each line once, however often it was named."""
    totals: dict[str, int] = {}
    for one in requested or ():
        totals[one.line_id] = totals.get(one.line_id, 0) + one.quantity
    return totals


def _sku(order: OrderDocument, line_id: str) -> str | None:
    line = order.line(line_id)
    return line.sku if line is not None else None


def _address_problem(
    order: OrderDocument, fulfillment: Fulfillment, lines: list[FulfilledLine]
) -> str | None:
    if fulfillment.shipping_address or order.shipping_address:
        return None
    for fulfilled in lines:
        line = order.line(fulfilled.line_id)
        if line is not None and line.delivery is Delivery.SHIPMENT:
            return f"line {fulfilled.line_id!r} is shipped but there is no shipping address"
    return None


def carry_out(
    order: OrderDocument, fulfillment: Fulfillment, event: Inbound, now: datetime
) -> None:
    """Fulfill the request on a paid order, or refuse it as invalid (or too large to publish)."""
    lines, problem = resolve_lines(order, fulfillment)
    problem = problem or _address_problem(order, fulfillment, lines)
    if problem:
        cancel(order, fulfillment, CancelReason.INVALID_REQUEST, problem, event, now)
        return
    status = progress_status(order, {line.line_id: line.quantity for line in lines})
    # The slip's address: a corrected one in the request becomes the order's as it completes.
    address = fulfillment.shipping_address or order.shipping_address
    handed, withheld = _handed_out(order, fulfillment, lines)
    completed = output(
        order,
        EventType.FULFILLMENT_COMPLETED,
        FulfillmentCompleted(
            order_id=order.id,
            order_number=order.order_number or "",
            fulfillment_id=fulfillment.fulfillment_id,
            lines=lines,
            shipment=fulfillment.shipment,
            distributions=handed,
            order_status=status,
            customer=order.customer,
            delivery_address=address if order.ships(lines) else None,
        ),
        now,
        fulfillment.fulfillment_id,
    )
    # Measured sealed: a Fernet token is longer than the credentials it seals, so the published
    # event (credentials opened) is never larger than this.
    problem = size_problem(completed)
    if problem:
        cancel(order, fulfillment, CancelReason.INVALID_REQUEST, problem, event, now)
        return
    for fulfilled in lines:
        line = order.line(fulfilled.line_id)
        assert line is not None
        line.fulfilled_quantity += fulfilled.quantity
    if fulfillment.shipping_address and fulfillment.shipping_address != order.shipping_address:
        order.shipping_address = fulfillment.shipping_address
        note(order, TimelineType.SHIPPING_ADDRESS_CHANGED, event, "shipping address corrected", now)
    fulfillment.lines = lines
    if withheld:
        # Their credentials are not kept either: nothing will hand them out.
        fulfillment.distributions = handed
    order.set_fulfillment_status(fulfillment, FulfillmentStatus.COMPLETED)
    fulfillment.completed_at = now
    order.record(completed)
    summary = ", ".join(f"{line.quantity} x {line.sku}" for line in lines)
    if fulfillment.shipment:
        summary += f" via {fulfillment.shipment.carrier} {fulfillment.shipment.tracking_number}"
    if withheld:
        summary += "; distributions not handed out, for no digital line it fulfills: " + listing(
            dict.fromkeys(withheld)
        )
    note(
        order,
        EventType.FULFILLMENT_COMPLETED,
        event,
        f"fulfilled {summary}",
        now,
        fulfillment.fulfillment_id,
    )
    set_status(order, status, event, now)
    on_completion(order, fulfillment, event, now)


def _handed_out(
    order: OrderDocument, fulfillment: Fulfillment, lines: list[FulfilledLine]
) -> tuple[list[Distribution] | None, list[str]]:
    """The request's distributions for digital lines this fulfillment carries out, and the
    line ids of the others: access to another line (or a shipped one) is not this
    fulfillment's to give, nor, once undone, to revoke."""
    if not fulfillment.distributions:
        return fulfillment.distributions, []
    digital = {
        fulfilled.line_id
        for fulfilled in lines
        if (line := order.line(fulfilled.line_id)) and line.delivery is Delivery.DIGITAL
    }
    handed = [given for given in fulfillment.distributions if given.line_id in digital]
    withheld = [
        given.line_id for given in fulfillment.distributions if given.line_id not in digital
    ]
    return handed or None, withheld


def hold(
    order: OrderDocument,
    fulfillment: Fulfillment,
    reason: HoldReason,
    event: Inbound,
    now: datetime,
) -> None:
    """Keep a request pending, and say why with `fulfillment.held`, once per reason; one whose
    `fulfillment.held` would be too large to publish is cancelled as invalid instead."""
    held = None if reason in fulfillment.holds else _held(order, fulfillment, reason, now)
    problem = None if held is None else size_problem(held)
    if problem:
        cancel(order, fulfillment, CancelReason.INVALID_REQUEST, problem, event, now)
        return
    waiting = "payment" if reason is HoldReason.AWAITING_PAYMENT else "the order to be placed"
    note(
        order,
        TimelineType.FULFILLMENT_PENDING,
        event,
        f"pending: waiting for {waiting}",
        now,
        fulfillment.fulfillment_id,
    )
    if held is not None:
        fulfillment.holds = [*fulfillment.holds, reason]
        order.record(held)


def _held(
    order: OrderDocument, fulfillment: Fulfillment, reason: HoldReason, now: datetime
) -> CloudEvent:
    lines = [
        HeldLine(line_id=line_id, sku=_sku(order, line_id), quantity=quantity)
        for line_id, quantity in _totals(fulfillment.requested_lines).items()
    ]
    return output(
        order,
        EventType.FULFILLMENT_HELD,
        FulfillmentHeld(
            order_id=order.id,
            order_number=order.order_number,
            fulfillment_id=fulfillment.fulfillment_id,
            reason=reason,
            lines=lines,
        ),
        now,
        fulfillment.fulfillment_id,
        reason.value,
    )


def _cancelled_lines(order: OrderDocument, fulfillment: Fulfillment) -> list[CancelledLine]:
    if fulfillment.status is FulfillmentStatus.COMPLETED or fulfillment.requested_lines is None:
        return [CancelledLine(**line.model_dump()) for line in fulfillment.lines]
    return [
        CancelledLine(line_id=line_id, sku=_sku(order, line_id), quantity=quantity)
        for line_id, quantity in _totals(fulfillment.requested_lines).items()
    ]


def cancel(
    order: OrderDocument,
    fulfillment: Fulfillment,
    reason: CancelReason,
    detail: str,
    event: Inbound,
    now: datetime,
) -> None:
    """Refuse, withdraw or undo a fulfillment; an undone one gives its quantities back."""
    undo = fulfillment.status is FulfillmentStatus.COMPLETED
    lines = _cancelled_lines(order, fulfillment)
    if undo:
        for cancelled in lines:
            line = order.line(cancelled.line_id)
            assert line is not None
            line.fulfilled_quantity -= cancelled.quantity
    order.set_fulfillment_status(fulfillment, FulfillmentStatus.CANCELLED)
    fulfillment.reason = reason
    fulfillment.detail = detail
    fulfillment.previously_completed = undo
    fulfillment.cancelled_at = now
    status = progress_status(order) if undo else order.status
    revoke = _access_to_revoke(order, fulfillment) if undo else None
    data = FulfillmentCancelled(
        order_id=order.id,
        order_number=order.order_number,
        fulfillment_id=fulfillment.fulfillment_id,
        reason=reason,
        detail=detail,
        previously_completed=undo,
        lines=lines,
        order_status=status,
        revoke_access=revoke,
    )
    announced = output(
        order, EventType.FULFILLMENT_CANCELLED, data, now, fulfillment.fulfillment_id
    )
    if size_problem(announced):
        # The request's lines (long skus, named by the hundred) make it too large to publish:
        # it goes out without them, and the cancel stays the request's, not the event's, fault.
        data = data.model_copy(update={"lines": [], "detail": f"{detail} ({LINES_NOT_LISTED})"})
        announced = output(
            order, EventType.FULFILLMENT_CANCELLED, data, now, fulfillment.fulfillment_id
        )
    order.record(announced)
    verb = "undone" if undo else "cancelled"
    note(
        order,
        EventType.FULFILLMENT_CANCELLED,
        event,
        f"fulfillment {verb} ({reason.value}): {detail}",
        now,
        fulfillment.fulfillment_id,
    )
    if status is not None:
        set_status(order, status, event, now)
    if not undo:
        on_cancellation(order, fulfillment, now)


def _access_to_revoke(order: OrderDocument, fulfillment: Fulfillment) -> list[RevokedAccess] | None:
    """Every access its `fulfillment.completed` handed out, and every digital line it carried
    out that no distribution named; never credentials."""
    # Only its digital lines': a completion stored before `_handed_out` kept every distribution.
    handed, _ = _handed_out(order, fulfillment, fulfillment.lines)
    revoke = [
        RevokedAccess(line_id=given.line_id, access_url=given.access_url) for given in handed or ()
    ]
    named = {given.line_id for given in handed or ()}
    for fulfilled in fulfillment.lines:
        line = order.line(fulfilled.line_id)
        if line is not None and line.delivery is Delivery.DIGITAL and line.line_id not in named:
            named.add(line.line_id)
            revoke.append(RevokedAccess(line_id=line.line_id))
    return revoke or None
