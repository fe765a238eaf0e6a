"""How a save writes an order: whole when new or small, else only what changed since it was stored.

Most tests here write updates at any size (`whole_below=0`), to try them on small orders."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import bson
import pytest
from bson.codec_options import CodecOptions
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from lifecycle import apply
from schemas.document import OrderDocument, TimelineEntry
from schemas.events import Inbound
from store.orders import EncodedOrder, encode, measured
from tests.factories import (
    cancel_fulfillment,
    captured,
    line,
    placed,
    requested,
    stored_before_1_1,
    tracking_updated,
)
from tests.fakes import updated
from tests.unit.test_after_fulfillment_properties import orders_with_news
from tests.unit.test_history_cost import history_events

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
# As the store's client reads documents (store.orders.connect).
AWARE: CodecOptions[dict[str, Any]] = CodecOptions(tz_aware=True)


def save(order: OrderDocument, stored: bytes | None) -> tuple[bytes, int]:
    """The stored bytes after saving `order` as the pipeline does, and the write's size."""
    loaded = order.version
    order.version += 1
    change = encode(order, loaded, "token", whole_below=0)
    if isinstance(change.write, EncodedOrder):
        stored = bytes(change.write.raw)
    else:
        assert stored is not None
        stored = updated(stored, change.write)
    order.remember_stored(change.stored)
    return stored, change.size


def saved_after_every_event(order_id: str, events: list[Inbound]) -> None:
    """Save after each event as the pipeline does; the store's copy must equal the order."""
    order = OrderDocument(_id=order_id)
    stored, _ = save(order, None)
    for event in events:
        apply(order, event, NOW)
        stored, size = save(order, stored)
        document = bson.decode(stored, codec_options=AWARE)
        assert len(stored) <= size
        assert OrderDocument.model_validate(document).model_dump() == order.model_dump()
        assert measured(document, len(stored)).lengths == order.appended_lengths()


@settings(max_examples=150, deadline=None)
@given(events=history_events())
def test_saving_after_every_event_keeps_the_stored_document_equal_to_the_order(
    events: list[Inbound],
) -> None:
    saved_after_every_event("ord-h", events)


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_saving_after_every_event_with_shipment_news_keeps_the_stored_document_equal(
    data: st.DataObject,
) -> None:
    streams = data.draw(orders_with_news())
    events = [event for stream in streams for event in stream]
    saved_after_every_event(events[0].order_id, data.draw(st.permutations(events)))


def test_a_save_whose_size_bound_reaches_the_limit_writes_the_whole_document() -> None:
    order = OrderDocument(_id="ord-b")
    apply(order, placed("ord-b"), NOW)
    _, size = save(order, None)
    apply(order, captured("ord-b"), NOW)
    change = encode(order, order.version, "token", limit=size, whole_below=0)
    assert isinstance(change.write, EncodedOrder)
    assert change.size == len(change.write.raw)


def test_a_save_writes_the_same_bytes_whatever_the_length_of_the_timeline() -> None:
    writes = []
    for history in (10, 1_000):
        order = OrderDocument(_id="ord-t")
        apply(order, placed("ord-t"), NOW)
        for number in range(history):
            # Another currency: recorded, not counted, so the running totals stay as they are.
            capture = captured("ord-t", "0.01", f"p{number}", "EUR", event_id=f"e{number}")
            apply(order, capture, NOW)
        save(order, None)
        apply(order, captured("ord-t", "0.01", "last", "EUR", event_id="last"), NOW)
        change = encode(order, order.version, "token", whole_below=0)
        assert not isinstance(change.write, EncodedOrder)
        writes.append(len(bson.encode(change.write)))
    assert writes[0] == writes[1]


def test_a_save_after_undoing_one_fulfillment_writes_the_same_bytes_however_many_there_are() -> (
    None
):
    writes = []
    for count in (5, 200):
        order = OrderDocument(_id="ord-f")
        apply(order, placed("ord-f", lines=[line("L1", 1_000, "digital", "1.00")]), NOW)
        apply(order, captured("ord-f", "1000.00"), NOW)
        for number in range(count):
            request = requested("ord-f", f"ful-{number:03d}", [("L1", 1)], event_id=f"r{number}")
            apply(order, request, NOW)
        save(order, None)
        apply(order, cancel_fulfillment("ord-f", "ful-003", event_id="undo"), NOW)
        change = encode(order, order.version, "token", whole_below=0)
        assert not isinstance(change.write, EncodedOrder)
        assert "fulfillments.3" in change.write["$set"]
        writes.append(len(bson.encode(change.write)))
    assert writes[0] == writes[1]


@pytest.mark.parametrize(
    "event",
    [
        tracking_updated("ord-old", "ful-later", tracking_number="AWB-9"),
        captured("ord-old", amount="0.00", payment_id="pay-2"),
    ],
    ids=["a list it lacks changes", "nothing 1.1 added changes"],
)
def test_a_document_stored_without_a_field_of_this_version_is_written_whole_once(
    event: Inbound,
) -> None:
    order = OrderDocument(_id="ord-old")
    for before in (placed("ord-old"), captured("ord-old"), requested("ord-old")):
        apply(order, before, NOW)
    order.version = 1
    stored = bson.encode(stored_before_1_1(order))
    document = bson.decode(stored, codec_options=AWARE)
    order.remember_stored(measured(document, len(stored)))
    apply(order, event, NOW)
    order.version += 1
    change = encode(order, order.version - 1, "token", whole_below=0)
    assert isinstance(change.write, EncodedOrder)
    after = bson.decode(change.write.raw, codec_options=AWARE)
    assert after["delivery_status"] == "none"
    assert all(
        {"shipment_status", "shipment_events", "holds"} <= f.keys() for f in after["fulfillments"]
    )
    order.remember_stored(change.stored)
    apply(order, captured("ord-old", amount="0.00", payment_id="pay-3"), NOW)
    order.version += 1
    assert not isinstance(encode(order, order.version - 1, "t", whole_below=0).write, EncodedOrder)


def test_a_document_stored_small_is_written_whole() -> None:
    order = OrderDocument(_id="ord-small")
    apply(order, placed("ord-small"), NOW)
    save(order, None)
    apply(order, captured("ord-small"), NOW)
    assert isinstance(encode(order, order.version, "token").write, EncodedOrder)


def test_a_document_not_loaded_from_the_store_is_written_whole() -> None:
    order = OrderDocument(_id="ord-w", version=3)
    assert isinstance(encode(order, 3, "token").write, EncodedOrder)


def test_items_of_appended_lists_cannot_be_changed_in_place() -> None:
    entry = TimelineEntry(at=NOW, type="order.placed", event_id="e", summary="placed")
    with pytest.raises(ValidationError):
        entry.summary = "edited"
