"""Properties of contract 1.1 "After the fulfillment" over random orders and arrival orders."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from lifecycle import Outcome, apply
from schemas.document import OrderDocument
from schemas.events import Inbound, ShipmentStatusReported
from schemas.names import EventType, FulfillmentStatus, ShipmentStatus, TimelineType
from tests.factories import (
    T0,
    captured,
    line,
    placed,
    requested,
    status_reported,
    tracking_updated,
)
from tests.unit.test_lifecycle_properties import NOW, ORDER, interleaving, outcome, play

Streams = tuple[list[Inbound], ...]
FULFILLMENT_IDS = ["f0", "f1", "f2", "f3"]  # f3 is never requested
# News mostly about the first request, so that most examples have a shipment to follow.
NEWS_ABOUT = ["f0", "f0", "f0", "f1", "f2", "f3"]
REFUSED = (TimelineType.TRACKING_UPDATE_REFUSED, TimelineType.STATUS_REPORT_REFUSED)


@st.composite
def orders_with_news(draw: st.DrawFn) -> Streams:
    """Placed, captured and requested streams (in topic order), tracking updates (in topic
    order) and status reports (in any order: each source reports when it can)."""
    count = draw(st.integers(1, 3))
    lines = [
        line(f"L{i}", draw(st.integers(1, 2)), draw(st.sampled_from(["shipment", "digital"])))
        for i in range(count)
    ]
    total = sum(item["quantity"] for item in lines) * 10
    placed_stream = [placed(ORDER, lines=lines, total=str(total))]
    captures = [
        captured(
            ORDER, amount=draw(st.sampled_from([str(total)] * 3 + ["1.00"])), payment_id=f"p{i}"
        )
        for i in range(draw(st.integers(0, 2)))
    ]
    requests = []
    for index in range(draw(st.integers(1, 3))):
        chosen = draw(st.lists(st.integers(0, count - 1), max_size=2, unique=True))
        request_lines = [(f"L{i}", 1) for i in chosen] or None
        extra: dict[str, Any] = {}
        if draw(st.integers(0, 3)):
            extra["shipment"] = {"carrier": "DHL", "tracking_number": f"AWB-{index}"}
        fulfillment_id = FULFILLMENT_IDS[draw(st.integers(0, min(index, 2)))]
        requests.append(requested(ORDER, fulfillment_id, request_lines, **extra))
    updates = []
    for _ in range(draw(st.integers(0, 3))):
        fields = draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "carrier": st.sampled_from(["UPS", "FedEx"]),
                    "tracking_number": st.sampled_from(["1Z-1", "1Z-2"]),
                    # "" removes the link.
                    "tracking_url": st.sampled_from(["", "https://t.example/1"]),
                },
            ).filter(bool)
        )
        updates.append(tracking_updated(ORDER, draw(st.sampled_from(NEWS_ABOUT)), **fields))
    reports = [
        status_reported(
            ORDER,
            draw(st.sampled_from(NEWS_ABOUT)),
            draw(st.sampled_from(list(ShipmentStatus))).value,
            # Few distinct times, so that ties are common.
            T0 + timedelta(hours=draw(st.integers(0, 2))),
            location=draw(st.sampled_from(["Hub A", "Hub B"])),
        )
        for _ in range(draw(st.integers(0, 5)))
    ]
    return placed_stream, captures, requests, updates, reports


def after(order: OrderDocument) -> dict[str, Any]:
    """What contract 1.1 says every arrival order must agree on, and what was refused."""
    remembered = {
        news.fulfillment_id: (
            [change.event_id for change in news.tracking_updates],
            sorted(report.event_id for report in news.reports),
        )
        for news in order.early_shipment_news
        if news.tracking_updates or news.reports  # an emptied entry is bookkeeping
    }
    return {
        "fulfillments": sorted(
            (
                f.fulfillment_id,
                f.status,
                f.shipment.model_dump() if f.shipment else None,
                f.shipment_status,
                [event.model_dump() for event in f.shipment_events],
            )
            for f in order.fulfillments
        ),
        "delivery_status": order.delivery_status,
        "refused": sorted(e.event_id for e in order.timeline if e.type in REFUSED),
        "remembered": remembered,
    }


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_any_arrival_order_of_reports_and_updates_ends_in_the_same_shipments(
    data: st.DataObject,
) -> None:
    placed_stream, captures, requests, updates, reports = data.draw(orders_with_news())
    reference, reference_outputs = play([*placed_stream, *captures, *requests, *updates, *reports])
    any_order = data.draw(st.permutations(reports))
    shuffled = data.draw(interleaving((placed_stream, captures, requests, updates, any_order)))
    order, outputs = play(shuffled)
    assert after(order) == after(reference)
    # The 1.0 rule holds with the new events mixed in.
    assert outcome(order, outputs) == outcome(reference, reference_outputs)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_duplicated_reports_updates_and_requests_change_nothing(data: st.DataObject) -> None:
    streams = data.draw(orders_with_news())
    events = data.draw(interleaving(streams))
    once, once_outputs = play(events)
    with_duplicates = list(events)
    for event in data.draw(st.lists(st.sampled_from(events), max_size=6)) if events else []:
        first = with_duplicates.index(event)
        with_duplicates.insert(data.draw(st.integers(first + 1, len(with_duplicates))), event)
    twice, twice_outputs = play(with_duplicates)
    assert twice_outputs == once_outputs
    assert twice.model_dump(exclude={"timeline"}) == once.model_dump(exclude={"timeline"})


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_shipment_updated_goes_out_exactly_when_the_shipment_or_its_status_changes(
    data: st.DataObject,
) -> None:
    events = data.draw(interleaving(data.draw(orders_with_news())))
    order = OrderDocument(_id=ORDER)
    for event in events:
        news = event.type in (
            EventType.SHIPMENT_STATUS_REPORTED,
            EventType.FULFILLMENT_TRACKING_UPDATED,
        )
        target = order.fulfillment(getattr(event.data, "fulfillment_id", ""))
        live = news and target is not None and target.status is FulfillmentStatus.COMPLETED
        before = (target.shipment, target.shipment_status) if target else None
        latest = target.shipment_events[-1] if target and target.shipment_events else None
        result = apply(order, event, NOW)
        if not live:
            continue
        assert target is not None and result.outcome is Outcome.APPLIED
        published = [o for o in result.outputs if o.type is EventType.FULFILLMENT_SHIPMENT_UPDATED]
        changed = (target.shipment, target.shipment_status) != before
        assert len(published) == (1 if changed and target.shipment is not None else 0)
        data_ = event.data
        if isinstance(data_, ShipmentStatusReported) and latest is not None:
            rank = data_.status.rank
            if (data_.happened_at, rank) <= latest.precedence:
                assert result.outputs == [], "a report older than the current one published"
