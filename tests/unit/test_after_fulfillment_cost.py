"""Tracking updates, status reports and holds cost the same on any order: no scan of its history."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from lifecycle import apply
from schemas.document import OrderDocument
from schemas.events import Inbound
from tests.factories import (
    T0,
    cancel_fulfillment,
    captured,
    requested,
    status_reported,
    tracking_updated,
)
from tests.unit.test_history_cost import NOW, ORDER, CountingList, counted_order, visited


def counted_news_order() -> OrderDocument:
    """The order of `counted_order`, its remembered news and the kept shipment's reports counted too."""
    order = counted_order()
    order.early_shipment_news = CountingList()
    kept = order.fulfillment("kept")
    assert kept is not None
    kept.shipment_events = CountingList()
    return order


def news_visited(order: OrderDocument) -> int:
    kept = order.fulfillment("kept")
    assert kept is not None
    lists = [order.early_shipment_news, kept.shipment_events]
    return visited(order) + sum(getattr(items, "visited", 0) for items in lists)


def news_event(draw: st.DrawFn) -> Inbound:
    number = draw(st.integers(0, 15))
    # About the kept shipment (live), or a request that may arrive, complete or be cancelled.
    fulfillment_id = draw(st.sampled_from(["kept", f"ful-{number}"]))
    kind = draw(st.sampled_from(["report", "tracking", "request", "cancel", "capture"]))
    if kind == "report":
        hours = draw(st.integers(0, 48))
        status = draw(st.sampled_from(["in_transit", "delivered", "returned"]))
        return status_reported(ORDER, fulfillment_id, status, T0 + timedelta(hours=hours))
    if kind == "tracking":
        return tracking_updated(
            ORDER, fulfillment_id, carrier="UPS", tracking_number=f"1Z-{number}"
        )
    if kind == "request":
        return requested(ORDER, f"ful-{number}", [("L1", 1)])
    if kind == "cancel":
        return cancel_fulfillment(ORDER, f"ful-{number}")
    return captured(ORDER, "0.01", f"pay-{number}")


@st.composite
def news_events(draw: st.DrawFn) -> list[Inbound]:
    events: list[Inbound] = []
    for _ in range(draw(st.integers(1, 60))):
        if events and draw(st.integers(0, 5)) == 0:
            events.append(draw(st.sampled_from(events)))  # a duplicate
        else:
            events.append(replace(news_event(draw), source="urn:test"))
    return events


@settings(max_examples=200, deadline=None)
@given(events=news_events())
def test_applying_news_never_scans_the_orders_history(events: list[Inbound]) -> None:
    order = counted_news_order()
    for event in events:
        apply(order, event, NOW)
    assert news_visited(order) == 0


def test_a_stored_document_finds_its_remembered_news_and_delivered_fulfillments() -> None:
    order = counted_news_order()
    apply(order, tracking_updated(ORDER, "later", carrier="UPS"), NOW)
    apply(order, tracking_updated(ORDER, "kept", carrier="UPS", tracking_number="1Z"), NOW)
    apply(order, status_reported(ORDER, "kept", "delivered"), NOW)
    stored = OrderDocument.model_validate(order.to_mongo())
    assert stored.shipment_news("later") is not None
    assert stored.delivered_count() == order.delivered_count() == 1
    assert stored == order
