"""The chaos oracle after the fulfillment (contract 1.1): what it expects and what it catches."""

from __future__ import annotations

import random
from types import SimpleNamespace
from typing import Any

import bson
from bson.codec_options import CodecOptions

from chaos.news import shipment_news
from chaos.oracle import (
    Expected,
    Input,
    expect,
    judge,
    outcome,
    stripped_letters,
    trace_missing_letters,
)
from chaos.run import Plan, build_stream
from consumers.decode import Rejection, decode
from lifecycle import apply
from schemas.document import OrderDocument
from schemas.names import DeadLetterHeader, Topic

ORDERS = 60


def stream() -> dict[str, list[Input]]:
    """Each order's events as the chaos run sends them, news for every order."""
    _, per_order, _, _, _ = build_stream(Plan(orders=ORDERS, news_rate=1.0), "unit")
    return per_order


def stored(final: dict[str, Any]) -> dict[str, Any]:
    """A document as the chaos run reads it back from the store: times are UTC datetimes."""
    raw = bson.encode(final)
    return bson.decode(raw, codec_options=CodecOptions(tz_aware=True))


def test_every_shipped_order_gets_reports_and_updates_mixed_among_its_other_events() -> None:
    per_order = stream()
    topics = [item.topic for events in per_order.values() for item in events]
    assert topics.count(Topic.SHIPMENTS_STATUS_REPORTED) >= ORDERS
    assert topics.count(Topic.FULFILLMENTS_TRACKING_UPDATED) > ORDERS // 2
    firsts = {events[0].topic for events in per_order.values()}
    assert Topic.SHIPMENTS_STATUS_REPORTED in firsts  # some news comes before the request


def test_an_orders_expected_state_is_the_same_whatever_order_its_events_arrive_in() -> None:
    shuffle = random.Random(5)
    for order_id, events in stream().items():
        wanted = expect(order_id, events).final
        for _ in range(4):
            reordered = shuffle.sample(events, len(events))
            assert expect(order_id, reordered).final == wanted, order_id


def test_the_expected_state_covers_shipments_statuses_reports_and_delivery_status() -> None:
    finals = [expect(order_id, events).final for order_id, events in stream().items()]
    statuses = {final["delivery_status"] for final in finals}
    assert statuses >= {"none", "delivered"}
    [(_, _, shipment, status, reports)] = next(
        final["fulfillments"] for final in finals if final["fulfillments"][0][4]
    )
    assert shipment["carrier"] and status and reports[0][1].endswith("+00:00")


def test_a_stored_document_and_the_lifecycles_own_state_compare_equal() -> None:
    # Stored: times are UTC datetimes to the millisecond; dumped: text with their own offset.
    for order_id, events in list(stream().items())[:20]:
        order = applied(order_id, events)
        as_json = order.model_dump(mode="json", by_alias=True)
        assert outcome(stored(order.to_mongo())) == outcome(as_json)
        assert outcome(as_json) == expect(order_id, events).final


def test_a_wrong_shipment_status_or_a_missing_report_is_a_differing_final_state() -> None:
    per_order = stream()
    expected: dict[str, Expected] = {}
    documents: dict[str, dict[str, Any]] = {}
    for order_id, events in per_order.items():
        expected[order_id] = expect(order_id, events)
        documents[order_id] = stored(applied(order_id, events).to_mongo())
    reported = [
        order_id
        for order_id, document in documents.items()
        if len(document["fulfillments"][0]["shipment_events"]) >= 2
    ]
    wrong, missing = reported[:2]
    documents[wrong]["fulfillments"][0]["shipment_status"] = "lost"
    documents[missing]["fulfillments"][0]["shipment_events"].pop(0)
    published = [i for wanted in expected.values() for i in wanted.output_ids]

    verdict = judge(expected, documents, published, {}, {}, [], [])

    assert verdict.final_states_differing == 2
    assert verdict.events_applied_twice == 0 and verdict.expected_outputs_missing == 0


def test_news_about_a_digital_only_fulfillment_is_one_report_and_one_update_both_refused() -> None:
    request = b'{"data": {"fulfillment_id": "ful-1", "distributions": []}}'
    news = shipment_news("ord-1", request, random.Random(1), rate=1.0)
    assert sorted(item.topic for item in news) == [
        Topic.FULFILLMENTS_TRACKING_UPDATED,
        Topic.SHIPMENTS_STATUS_REPORTED,
    ]


def applied(order_id: str, events: list[Input]) -> OrderDocument:
    """The order the lifecycle makes of `events`, in the order given."""
    order = OrderDocument(_id=order_id)
    for item in events:
        event = decode(item.topic, item.key, item.value, item.headers)
        assert not isinstance(event, Rejection)
        apply(order, event, event.time)
    return order


def test_a_missing_dead_letter_is_traced_to_its_input_and_keyless_letters_are_counted() -> None:
    inputs = [
        SimpleNamespace(topic="p.payments.captured", partition=4, offset=17, key=b"bad-1"),
        SimpleNamespace(topic="p.orders.placed", partition=0, offset=3, key=b"o-1"),
    ]
    keyless = SimpleNamespace(key=None, headers=[(DeadLetterHeader.REASON.value, b"invalid_data")])
    lines = trace_missing_letters([b"bad-1", b"bad-2", b"o-1"], inputs, [keyless], {"o-1": {}})
    assert lines == [
        "b'bad-1': input at p.payments.captured[4]@17",
        "b'bad-2': no input in Kafka",
        "b'o-1': input at p.orders.placed[0]@3, applied as an order",
        "1 dead letters without a key: {'invalid_data': 1}",
    ]


def test_a_dead_letter_without_its_key_a_value_that_fit_or_its_headers_counts_as_stripped() -> None:
    def letter(key: bytes, offset: int, *extra: tuple[str, bytes | None]) -> SimpleNamespace:
        headers = [(DeadLetterHeader.ORIGINAL_TOPIC.value, b"p.payments.captured")]
        headers.append((DeadLetterHeader.ORIGINAL_OFFSET.value, str(offset).encode()))
        return SimpleNamespace(key=key, headers=[*headers, *extra])

    odd = (("trace", b"\xff\x00"), ("nothing", None))
    sent = {
        b"small": Input(Topic.PAYMENTS_CAPTURED, b"small", b"{}", odd),
        b"huge": Input(Topic.PAYMENTS_CAPTURED, b"huge", b"x" * 1_048_500),
    }
    omitted = (DeadLetterHeader.VALUE_OMITTED.value, b"1")
    letters = [
        letter(b"small", 1, *odd),  # whole
        letter(b"huge", 2, omitted),  # too large: its value may go
        letter(b"small", 3, *odd, omitted),  # a value that fit
        letter(b"small", 4, odd[0]),  # one of its own headers lost
        SimpleNamespace(key=None, headers=[(DeadLetterHeader.KEY_OMITTED.value, b"5")]),
    ]
    assert [line.split("@")[1].split()[0] for line in stripped_letters(letters, sent)] == [
        "3",
        "4",
        "?",
    ]
