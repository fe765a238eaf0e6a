"""An event's cost does not grow with its order's history: no event scans the growing lists."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from hypothesis import given, settings
from hypothesis import strategies as st

from lifecycle import apply
from schemas.document import Capture, EarlyCancel, OrderDocument
from schemas.events import Inbound
from tests.factories import cancel_fulfillment, cancel_order, captured, line, placed, requested

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
ORDER = "ord-h"
HISTORY = (
    "applied_event_ids",
    "applied_event_sources",
    "reused_event_ids",
    "captures",
    "fulfillments",
    "early_cancels",
    "timeline",
)

T = TypeVar("T")


class CountingList(list[T]):
    """A list that counts the items every scan of it visits."""

    visited = 0

    def __iter__(self) -> Iterator[T]:
        for item in super().__iter__():
            self.visited += 1
            yield item

    def __contains__(self, item: object) -> bool:
        self.visited += len(self)
        return super().__contains__(item)

    def index(self, *args: Any) -> int:
        self.visited += len(self)
        return super().index(*args)

    def count(self, item: T) -> int:
        self.visited += len(self)
        return super().count(item)


def counted_order() -> OrderDocument:
    """A placed and paid order whose history lists count scans (from 0), one kept fulfillment."""
    order = OrderDocument(_id=ORDER)
    for name in HISTORY:
        setattr(order, name, CountingList())
    for event in (
        placed(ORDER, lines=[line("L1", 1000)], total="10000"),
        captured(ORDER, amount="10000.00", payment_id="pay-main"),
        requested(ORDER, "kept", [("L1", 1)]),
    ):
        apply(order, event, NOW)
    for name in HISTORY:
        getattr(order, name).visited = 0
    return order


def visited(order: OrderDocument) -> int:
    return sum(getattr(order, name).visited for name in HISTORY)


def new_event(draw: st.DrawFn, kind: str) -> Inbound:
    number = draw(st.integers(0, 15))
    if kind == "capture":
        currency = draw(st.sampled_from(["USD", "EUR"]))
        return captured(ORDER, "0.01", f"pay-{number}", currency)
    if kind == "request":
        return requested(ORDER, f"ful-{number}", [("L1", 1)])
    if kind == "cancel":
        return cancel_fulfillment(ORDER, f"ful-{number}")
    # Refused: "kept" stays completed.
    return cancel_order(ORDER)


@st.composite
def history_events(draw: st.DrawFn) -> list[Inbound]:
    """Events of every kind, with repeated payment and fulfillment ids, duplicates and reuses."""
    events: list[Inbound] = []
    for _ in range(draw(st.integers(1, 60))):
        kind = draw(st.sampled_from(["capture", "request", "cancel", "order", "again"]))
        if kind != "again":
            events.append(replace(new_event(draw, kind), source="urn:test"))
        elif events:
            # The same id again, from its source, another one or an unknown one.
            source = draw(st.sampled_from(["urn:test", "urn:other", ""]))
            events.append(replace(draw(st.sampled_from(events)), source=source))
    return events


@settings(max_examples=200, deadline=None)
@given(events=history_events())
def test_applying_any_event_never_scans_the_orders_history(events: list[Inbound]) -> None:
    order = counted_order()
    for event in events:
        apply(order, event, NOW)
    assert visited(order) == 0


def test_lookups_follow_lists_replaced_or_grown_outside_the_lifecycle() -> None:
    order = counted_order()
    assert order.capture("pay-main") is not None
    order.captures = []
    assert order.capture("pay-main") is None
    order.captures.append(Capture(payment_id="p9", amount="1", currency="USD", event_id="e9"))
    assert order.capture("p9") is not None
    order.early_cancels.append(EarlyCancel(fulfillment_id="f9", event_id="e9"))
    assert order.early_cancel("f9") is not None
    kept = order.fulfillment("kept")
    assert kept is not None and list(order.completed_fulfillment_ids()) == ["kept"]
    order.fulfillments = []
    assert order.fulfillment("kept") is None and not order.completed_fulfillment_ids()


def test_a_stored_document_finds_what_it_holds() -> None:
    order = counted_order()
    stored = OrderDocument.model_validate(order.to_mongo())
    assert stored.fulfillment("kept") is not None
    assert stored.capture("pay-main") is not None
    assert list(stored.completed_fulfillment_ids()) == ["kept"]
    assert stored.applied_source(order.applied_event_ids[0]) == ""
    assert stored == order
