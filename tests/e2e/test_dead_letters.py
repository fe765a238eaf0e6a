"""Bad input goes to `<topic>.dlq` with its reason; processing goes on."""

from __future__ import annotations

import json

import pytest

from schemas.names import DLQ_SUFFIX, EventType, OrderStatus, Topic
from tests.e2e.harness import Harness
from tests.factories import envelope, placed_data

pytestmark = pytest.mark.e2e


async def test_each_kind_of_dead_letter_keeps_the_original_and_later_messages_still_apply(
    harness: Harness,
) -> None:
    good = envelope(EventType.ORDER_PLACED, "ord-dlq", placed_data())
    wrong_type = envelope(
        EventType.PAYMENT_CAPTURED, "ord-x", {"payment_id": "p", "amount": "1", "currency": "USD"}
    )
    invalid = envelope(EventType.ORDER_PLACED, "ord-y", placed_data() | {"currency": "usd"})
    cases = [
        (b"ord-a", b"\xff\xfe\xfd", "not_utf8"),
        (b"ord-b", b"{oops", "not_json"),
        (b"ord-c", json.dumps({"hello": "world"}).encode(), "not_cloudevent"),
        (b"ord-x", json.dumps(wrong_type).encode(), "wrong_type"),
        (b"ord-y", json.dumps(invalid).encode(), "invalid_data"),
        (b"someone-else", json.dumps(good).encode(), "key_mismatch"),
    ]
    for key, value, _ in cases:
        await harness.send_raw(Topic.ORDERS_PLACED, key, value, headers=[("trace", b"t-1")])
    await harness.send(Topic.ORDERS_PLACED, good)

    dlq = f"{Topic.ORDERS_PLACED.value}{DLQ_SUFFIX}"
    await harness.until(lambda: len(harness.seen(dlq)) >= len(cases))
    # Dead letters keep their key, so they spread over partitions: compare them by key.
    letters = sorted(harness.seen(dlq), key=lambda letter: letter["key"])
    expected = sorted(cases)
    assert [(letter["key"], letter["raw"]) for letter in letters] == [
        (k, v) for k, v, _ in expected
    ]
    assert [letter["headers"]["x-dlq-reason"].decode() for letter in letters] == [
        r for *_, r in expected
    ]
    for letter in letters:
        headers = letter["headers"]
        assert headers["trace"] == b"t-1"
        assert headers["x-dlq-error"]
        assert headers["x-original-topic"] == harness.settings.topic(Topic.ORDERS_PLACED).encode()
        assert headers["x-original-partition"].isdigit() and headers["x-original-offset"].isdigit()

    order = await harness.settled("ord-dlq", lambda o: o.status is OrderStatus.AWAITING_PAYMENT)
    assert order.order_number == "#1001"
