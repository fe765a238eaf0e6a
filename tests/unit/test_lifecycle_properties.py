"""Properties of the lifecycle over random orders and event sets (hypothesis)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from lifecycle import apply
from schemas.cloudevents import CloudEvent
from schemas.document import OrderDocument
from schemas.events import Inbound
from schemas.names import EventType
from tests.factories import cancel_fulfillment, captured, line, placed, requested

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
ORDER = "ord-p"
FULFILLMENT_OUTCOMES = (EventType.FULFILLMENT_COMPLETED, EventType.FULFILLMENT_CANCELLED)


@st.composite
def order_events(draw: st.DrawFn) -> tuple[list[Inbound], list[Inbound], list[Inbound]]:
    """The placed, captured and requested streams of one random order (each in topic order)."""
    count = draw(st.integers(1, 3))
    lines = [
        line(
            f"L{i}",
            draw(st.integers(1, 3)),
            draw(st.sampled_from(["shipment", "digital"])),
            price="5.00",
        )
        for i in range(count)
    ]
    total = sum(item["quantity"] for item in lines) * 5
    placed_stream = [placed(ORDER, lines=lines, total=str(total))]
    captures = []
    for index in range(draw(st.integers(0, 3))):
        payment_id = f"p{draw(st.integers(0, index))}"
        amount = draw(st.sampled_from([str(total), str(total), f"{total / 2:.2f}", "1.00"]))
        currency = draw(st.sampled_from(["USD", "USD", "USD", "EUR"]))
        captures.append(captured(ORDER, amount=amount, payment_id=payment_id, currency=currency))
    requests = []
    for index in range(draw(st.integers(0, 4))):
        # Index `count` is a line the order does not have.
        chosen = draw(st.lists(st.integers(0, count), max_size=2, unique=True))
        request_lines = [(f"L{i}", draw(st.integers(1, 2))) for i in chosen] or None
        fulfillment_id = f"f{draw(st.integers(0, index))}"  # sometimes reused
        requests.append(requested(ORDER, fulfillment_id, request_lines))
    return placed_stream, captures, requests


@st.composite
def interleaving(draw: st.DrawFn, streams: tuple[list[Inbound], ...]) -> list[Inbound]:
    """A merge of the streams that keeps each stream's own order."""
    slots = [index for index, stream in enumerate(streams) for _ in stream]
    order = draw(st.permutations(slots))
    queues = [list(stream) for stream in streams]
    return [queues[index].pop(0) for index in order]


def play(events: list[Inbound]) -> tuple[OrderDocument, list[CloudEvent]]:
    order = OrderDocument(_id=ORDER)
    outputs: list[CloudEvent] = []
    for event in events:
        outputs += apply(order, event, NOW).outputs
        for item in order.lines:
            assert 0 <= item.fulfilled_quantity <= item.quantity
    return order, outputs


def outcome(order: OrderDocument, outputs: list[CloudEvent]) -> dict[str, Any]:
    """What the contract says every interleaving must agree on (holds are outside the rule)."""
    fulfillment_outputs = {o.id for o in outputs if o.type in FULFILLMENT_OUTCOMES}
    return {
        "status": order.status,
        "payment_status": order.payment_status,
        "lines": [(item.line_id, item.fulfilled_quantity) for item in order.lines],
        "fulfillments": sorted((f.fulfillment_id, f.status) for f in order.fulfillments),
        "fulfillment_outputs": fulfillment_outputs,
    }


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_every_interleaving_of_placed_captured_requested_ends_in_the_same_outcome(
    data: st.DataObject,
) -> None:
    streams = data.draw(order_events())
    reference = outcome(*play([event for stream in streams for event in stream]))
    shuffled = data.draw(interleaving(streams))
    assert outcome(*play(shuffled)) == reference


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_duplicated_events_change_nothing(data: st.DataObject) -> None:
    streams = data.draw(order_events())
    events = data.draw(interleaving(streams))
    once, once_ids = play(events)
    with_duplicates = list(events)
    for event in data.draw(st.lists(st.sampled_from(events), max_size=6)):
        first = with_duplicates.index(event)
        with_duplicates.insert(data.draw(st.integers(first + 1, len(with_duplicates))), event)
    twice, twice_ids = play(with_duplicates)
    assert twice_ids == once_ids
    assert twice.model_dump(exclude={"timeline"}) == once.model_dump(exclude={"timeline"})


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_ids_reused_by_another_source_change_nothing_but_the_timeline(data: st.DataObject) -> None:
    streams = data.draw(order_events())
    events = [replace(event, source="urn:a") for event in data.draw(interleaving(streams))]
    once, once_ids = play(events)
    with_reuses = list(events)
    for event in data.draw(st.lists(st.sampled_from(events), max_size=6)):
        first = with_reuses.index(event)
        reuse = replace(event, source="urn:b")
        with_reuses.insert(data.draw(st.integers(first + 1, len(with_reuses))), reuse)
    twice, twice_ids = play(with_reuses)
    assert twice_ids == once_ids
    noted_in = {"timeline", "reused_event_ids"}
    assert twice.model_dump(exclude=noted_in) == once.model_dump(exclude=noted_in)


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_fulfilled_quantities_stay_between_zero_and_ordered_with_cancels(
    data: st.DataObject,
) -> None:
    placed_stream, captures, requests = data.draw(order_events())
    cancels = [
        cancel_fulfillment(ORDER, f"f{i}")
        for i in data.draw(st.lists(st.integers(0, 3), max_size=3))
    ]
    play(data.draw(interleaving((placed_stream, captures, requests, cancels))))
