"""After the fulfillment (contract 1.1): tracking updates, status reports and delivery status."""

from __future__ import annotations

from bisect import insort
from datetime import datetime

from lifecycle.record import emit, note, note_for
from schemas.cloudevents import format_time
from schemas.document import (
    Fulfillment,
    OrderDocument,
    ShipmentEvent,
    ShipmentNews,
    TrackingChange,
)
from schemas.events import (
    FulfillmentShipmentUpdated,
    FulfillmentTrackingUpdated,
    Inbound,
    Shipment,
    ShipmentStatusReported,
)
from schemas.names import (
    DeliveryStatus,
    EventType,
    FulfillmentStatus,
    OrderStatus,
    ShipmentStatus,
    TimelineType,
)

# What a consumer of `fulfillment.shipment_updated` sees of a shipment; a change publishes.
Shown = tuple[Shipment | None, ShipmentStatus | None]


def tracking_updated(order: OrderDocument, event: Inbound, now: datetime) -> None:
    """A completed shipment takes the fields given; news of one not completed yet is kept."""
    data = event.data
    assert isinstance(data, FulfillmentTrackingUpdated)
    change = TrackingChange(
        event_id=event.id,
        carrier=data.carrier,
        tracking_number=data.tracking_number,
        tracking_url=data.tracking_url,
    )
    fulfillment = order.fulfillment(data.fulfillment_id)
    if fulfillment is None or fulfillment.status is FulfillmentStatus.PENDING:
        news = _news(order, data.fulfillment_id)
        news.tracking_updates = [*news.tracking_updates, change]
        summary = "tracking update remembered: the fulfillment has not completed yet"
        note(
            order, TimelineType.TRACKING_UPDATE_REMEMBERED, event, summary, now, data.fulfillment_id
        )
        return
    refusal = _refusal(order, fulfillment)
    if refusal is not None:
        summary = f"tracking update refused: {refusal}"
        note(order, TimelineType.TRACKING_UPDATE_REFUSED, event, summary, now, data.fulfillment_id)
        return
    before = _shown(fulfillment)
    _track(order, fulfillment, change, now)
    if _shown(fulfillment) != before:
        _publish(order, fulfillment, event, now, "event", event.id)


def status_reported(order: OrderDocument, event: Inbound, now: datetime) -> None:
    """A completed shipment keeps the report in time order; news of one not completed yet is kept."""
    data = event.data
    assert isinstance(data, ShipmentStatusReported)
    report = ShipmentEvent(
        status=data.status,
        happened_at=_to_millisecond(data.happened_at),
        location=data.location,
        note=data.note,
        event_id=event.id,
    )
    fulfillment = order.fulfillment(data.fulfillment_id)
    if fulfillment is None or fulfillment.status is FulfillmentStatus.PENDING:
        news = _news(order, data.fulfillment_id)
        news.reports = [*news.reports, report]
        summary = (
            f"status report remembered ({report.status.value} at {format_time(report.happened_at)}):"
            " the fulfillment has not completed yet"
        )
        note(order, TimelineType.STATUS_REPORT_REMEMBERED, event, summary, now, data.fulfillment_id)
        return
    refusal = _refusal(order, fulfillment)
    if refusal is not None:
        summary = f"status report refused: {refusal}"
        note(order, TimelineType.STATUS_REPORT_REFUSED, event, summary, now, data.fulfillment_id)
        return
    before = _shown(fulfillment)
    _report(order, fulfillment, report, now)
    if _shown(fulfillment) != before:
        _publish(order, fulfillment, event, now, "event", event.id)


def on_completion(
    order: OrderDocument, fulfillment: Fulfillment, event: Inbound, now: datetime
) -> None:
    """Apply what was remembered for a fulfillment that just completed: updates in arrival
    order, reports in time order; one `fulfillment.shipment_updated` says where that left it."""
    updates, reports = _take_news(order, fulfillment.fulfillment_id)
    if not updates and not reports:
        return
    if not order.ships(fulfillment.lines):
        _refuse_remembered(
            order, fulfillment, updates, reports, "the fulfillment is digital-only", now
        )
        return
    before = _shown(fulfillment)
    for change in updates:
        _track(order, fulfillment, change, now)
    for report in sorted(reports, key=lambda kept: kept.place):
        _report(order, fulfillment, report, now)
    if _shown(fulfillment) != before:
        _publish(order, fulfillment, event, now, "completion")


def on_cancellation(order: OrderDocument, fulfillment: Fulfillment, now: datetime) -> None:
    """A fulfillment cancelled before it completed refuses what was remembered for it."""
    updates, reports = _take_news(order, fulfillment.fulfillment_id)
    if updates or reports:
        _refuse_remembered(
            order, fulfillment, updates, reports, "the fulfillment was cancelled", now
        )


def delivery_status(order: OrderDocument) -> DeliveryStatus:
    """None until something is delivered; delivered once the order is fulfilled and every
    completed fulfillment is (a digital-only one is when it completes)."""
    delivered = order.delivered_count()
    if delivered == 0:
        return DeliveryStatus.NONE
    every = delivered == len(order.completed_fulfillment_ids())
    if every and order.status is OrderStatus.FULFILLED:
        return DeliveryStatus.DELIVERED
    return DeliveryStatus.PARTIALLY_DELIVERED


def refresh_delivery_status(order: OrderDocument, event: Inbound, now: datetime) -> None:
    """Derive the order's `delivery_status` again, noting a change on the timeline."""
    status = delivery_status(order)
    if status is order.delivery_status:
        return
    summary = f"delivery status {order.delivery_status.value} -> {status.value}"
    order.delivery_status = status
    note(order, TimelineType.DELIVERY_STATUS_CHANGED, event, summary, now)


def _to_millisecond(moment: datetime) -> datetime:
    # The store keeps milliseconds: an order decided on finer times could change on reloading.
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _refusal(order: OrderDocument, fulfillment: Fulfillment) -> str | None:
    """Why news of a fulfillment that has come to an end cannot be taken, if it cannot."""
    if fulfillment.status is FulfillmentStatus.CANCELLED:
        return "the fulfillment is cancelled"
    if not order.ships(fulfillment.lines):
        return "the fulfillment is digital-only"
    return None


def _news(order: OrderDocument, fulfillment_id: str) -> ShipmentNews:
    news = order.shipment_news(fulfillment_id)
    if news is None:
        news = ShipmentNews(fulfillment_id=fulfillment_id)
        order.add_shipment_news(news)
    return news


def _take_news(
    order: OrderDocument, fulfillment_id: str
) -> tuple[list[TrackingChange], list[ShipmentEvent]]:
    """What was remembered for the fulfillment, no longer remembered."""
    news = order.shipment_news(fulfillment_id)
    if news is None:
        return [], []
    taken = news.tracking_updates, news.reports
    # Emptied, not removed: removing would shift every later entry's position in the index.
    news.tracking_updates, news.reports = [], []
    return taken


def _refuse_remembered(
    order: OrderDocument,
    fulfillment: Fulfillment,
    updates: list[TrackingChange],
    reports: list[ShipmentEvent],
    why: str,
    now: datetime,
) -> None:
    fulfillment_id = fulfillment.fulfillment_id
    for change in updates:
        summary = f"remembered tracking update refused: {why}"
        note_for(
            order,
            TimelineType.TRACKING_UPDATE_REFUSED,
            change.event_id,
            summary,
            now,
            fulfillment_id,
        )
    for report in reports:
        summary = f"remembered status report ({report.status.value}) refused: {why}"
        note_for(
            order, TimelineType.STATUS_REPORT_REFUSED, report.event_id, summary, now, fulfillment_id
        )


def _shown(fulfillment: Fulfillment) -> Shown:
    return fulfillment.shipment, fulfillment.shipment_status


def _track(
    order: OrderDocument, fulfillment: Fulfillment, change: TrackingChange, now: datetime
) -> None:
    """The fields given replace the shipment's; a shipment without one needs carrier and number."""
    fulfillment_id = fulfillment.fulfillment_id
    current = fulfillment.shipment
    if current is None:
        if change.carrier is None or change.tracking_number is None:
            summary = (
                "tracking update refused: the fulfillment has no tracking data yet;"
                " the first update must give carrier and tracking_number"
            )
            note_for(
                order,
                TimelineType.TRACKING_UPDATE_REFUSED,
                change.event_id,
                summary,
                now,
                fulfillment_id,
            )
            return
        current = Shipment(carrier=change.carrier, tracking_number=change.tracking_number)
    given: dict[str, str | None] = {}
    if change.carrier is not None:
        given["carrier"] = change.carrier
    if change.tracking_number is not None:
        given["tracking_number"] = change.tracking_number
    if change.tracking_url is not None:
        given["tracking_url"] = change.tracking_url or None  # "" removes the link
    updated = current.model_copy(update=given)
    if updated == fulfillment.shipment:
        summary = "tracking update changed nothing"
    else:
        fulfillment.shipment = updated
        link = f" ({updated.tracking_url})" if updated.tracking_url else ""
        summary = f"tracking: {updated.carrier} {updated.tracking_number}{link}"
    note_for(
        order, EventType.FULFILLMENT_TRACKING_UPDATED, change.event_id, summary, now, fulfillment_id
    )


def _report(
    order: OrderDocument, fulfillment: Fulfillment, report: ShipmentEvent, now: datetime
) -> None:
    """Keep the report in time order; the latest (on a tie, the later status) is current."""
    events = list(fulfillment.shipment_events)
    latest = events[-1] if events else None
    insort(events, report, key=lambda kept: kept.place)
    fulfillment.shipment_events = events
    when = format_time(report.happened_at)
    if latest is not None and report.precedence <= latest.precedence:
        summary = (
            f"status report kept: {report.status.value} at {when}"
            f" is not later than the current {latest.status.value}"
        )
    else:
        order.set_shipment_status(fulfillment, report.status)
        summary = f"shipment {report.status.value} at {when}"
        if report.location:
            summary += f", {report.location}"
    note_for(
        order,
        EventType.SHIPMENT_STATUS_REPORTED,
        report.event_id,
        summary,
        now,
        fulfillment.fulfillment_id,
    )


def _publish(
    order: OrderDocument, fulfillment: Fulfillment, event: Inbound, now: datetime, *key: str
) -> None:
    """`fulfillment.shipment_updated`, once the delivery status is derived again; not without
    tracking data, which the event requires."""
    refresh_delivery_status(order, event, now)
    if fulfillment.shipment is None:
        return
    current = fulfillment.shipment_events[-1] if fulfillment.shipment_events else None
    emit(
        order,
        EventType.FULFILLMENT_SHIPMENT_UPDATED,
        FulfillmentShipmentUpdated(
            order_id=order.id,
            order_number=order.order_number or "",
            fulfillment_id=fulfillment.fulfillment_id,
            shipment=fulfillment.shipment,
            shipment_status=fulfillment.shipment_status,
            happened_at=current.happened_at if current else None,
            delivery_status=order.delivery_status,
        ),
        now,
        fulfillment.fulfillment_id,
        *key,
    )
