"""Odd input on the real stack (contract 1.1, "Dead letters"): nothing about one record may hold
up the others or be lost with it.

Each test sends one class of odd record in a burst between valid orders on the same partition,
then a canary order on that partition, and checks (a) the odd record is applied or is in its
`<topic>.dlq` with the expected `x-dlq-reason`, (b) the canary completes and (c) so does every
valid order of the burst (`Harness.burst` and `Harness.completes`).
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from typing import Any

import bson
import pytest
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from cryptography.fernet import Fernet

from schemas.limits import (
    MAX_DOCUMENT_BYTES,
    MAX_INPUT_BYTES,
    MAX_OUTPUT_BYTES,
    MAX_SUMMARY_CHARS,
    MiB,
)
from schemas.names import (
    CancelReason,
    DeadLetterHeader,
    DeadLetterReason,
    EventType,
    FulfillmentStatus,
    OrderStatus,
    PaymentStatus,
    TimelineType,
    Topic,
)
from tests.e2e.harness import Harness, Headers, Raw, Record, batch_with_header_name, bounded
from tests.factories import envelope, fulfillable_order, line, placed_data

pytestmark = pytest.mark.e2e

DLQ_HEADERS = {header.value for header in DeadLetterHeader}
# An exception's type name, as `x-dlq-error` must name a failure of the record's own.
EXCEPTION_NAME = re.compile(r"\b[A-Z][A-Za-z0-9]*(Error|Exception|Invalid\w*|Overflow\w*)\b")
SIZE_WORDS = re.compile(r"size|bytes|large|limit", re.IGNORECASE)


def raw_events(order_id: str, headers: Headers | None = None) -> list[Raw]:
    """The records of a fulfillable order, with `headers` on each."""
    return [Raw.event(topic, event, headers) for topic, event in fulfillable_order(order_id)]


def own_headers(letter: Record) -> Headers:
    """A dead letter's headers without the ones the pipeline adds, in order, as received."""
    return [(name, value) for name, value in letter["header_list"] if name not in DLQ_HEADERS]


def assert_dead_letter(
    harness: Harness,
    letter: Record,
    original: Raw,
    reason: DeadLetterReason,
    value_kept: bool = True,
) -> None:
    """The letter is the original record, byte for byte, with the contract's `x-` headers."""
    headers = letter["headers"]
    assert headers.get(DeadLetterHeader.REASON) == reason.value.encode(), (
        f"reason {headers.get(DeadLetterHeader.REASON)!r}, error {headers.get(DeadLetterHeader.ERROR)!r}"
    )
    assert headers.get(DeadLetterHeader.ERROR)
    assert (
        headers[DeadLetterHeader.ORIGINAL_TOPIC] == harness.settings.topic(original.topic).encode()
    )
    assert headers[DeadLetterHeader.ORIGINAL_PARTITION].isdigit()
    assert headers[DeadLetterHeader.ORIGINAL_OFFSET].isdigit()
    assert letter["key"] == original.key
    assert own_headers(letter) == (original.headers or [])
    if value_kept:
        assert letter["raw"] == original.value


# ---- 1. header values are bytes --------------------------------------------------------------

ODD_HEADERS: Headers = [
    ("trace", b"\xff\xfe"),
    ("nothing", None),
    ("text", "é".encode()),
    ("trace", b"\x00second"),
]


@bounded(60)
async def test_a_valid_event_with_binary_and_null_header_values_is_applied(
    harness: Harness,
) -> None:
    order_id = "ord-headers"
    burst = await harness.burst(raw_events(order_id, ODD_HEADERS))
    await harness.completes([*burst.orders, order_id])


@bounded(60)
async def test_an_invalid_event_with_binary_and_null_headers_keeps_them_byte_for_byte_in_its_dead_letter(
    harness: Harness,
) -> None:
    event = envelope(EventType.ORDER_PLACED, "ord-headers-bad", placed_data())
    odd = Raw.event(Topic.ORDERS_PLACED, event, ODD_HEADERS, key=b"someone-else")
    burst = await harness.burst([odd])
    await harness.completes(burst.orders)
    letter = await harness.dead_letter(Topic.ORDERS_PLACED, odd.key)
    assert_dead_letter(harness, letter, odd, DeadLetterReason.KEY_MISMATCH)


# A header name is any bytes on the wire: librdkafka and others send names that are not UTF-8,
# which aiokafka alone would fail to read (the partition would stall at that record).
ODD_NAME = b"\xff\xfe-trace"


@bounded(90)
async def test_events_whose_header_name_is_not_utf8_are_read_and_applied(
    harness: Harness,
) -> None:
    order_id = "ord-odd-name"
    batches = [(raw.topic, batch_with_header_name([raw], ODD_NAME)) for raw in raw_events(order_id)]
    partition = harness.partition_of(order_id.encode())
    burst = await harness.burst([], partition=partition, odd_batches=batches)
    await harness.completes([*burst.orders, order_id])


@bounded(90)
async def test_a_binary_mode_attribute_whose_name_and_value_are_not_utf8_is_dead_lettered(
    harness: Harness,
) -> None:
    # Its error names the header: a name read with surrogate escapes once stalled the batch.
    odd = Raw(Topic.ORDERS_PLACED, b"ord-odd-attribute", b"{}", [("ce_specversion", b"1.0")])
    batch = batch_with_header_name([odd], b"ce_\xff", value=b"\xff")
    burst = await harness.burst(
        [], partition=harness.partition_of(odd.key or b""), odd_batches=[(odd.topic, batch)]
    )
    await harness.completes(burst.orders)
    letter = await harness.dead_letter(Topic.ORDERS_PLACED, odd.key)
    headers = letter["headers"]
    assert headers[DeadLetterHeader.REASON] == DeadLetterReason.NOT_CLOUDEVENT.value.encode()
    assert headers[DeadLetterHeader.ERROR] == b"header ce_\\xff is not UTF-8"
    assert own_headers(letter) == [("ce_specversion", b"1.0"), ("ce_\\xff", b"\xff")]
    assert letter["raw"] == odd.value


@bounded(90)
async def test_an_invalid_event_whose_header_name_is_not_utf8_is_dead_lettered_with_the_name_escaped(
    harness: Harness,
) -> None:
    event = envelope(EventType.ORDER_PLACED, "ord-odd-name-bad", placed_data())
    odd = Raw.event(Topic.ORDERS_PLACED, event, [("trace", b"\x00t")], key=b"someone-else-2")
    batch = batch_with_header_name([odd], ODD_NAME)
    burst = await harness.burst(
        [], partition=harness.partition_of(odd.key or b""), odd_batches=[(odd.topic, batch)]
    )
    await harness.completes(burst.orders)
    letter = await harness.dead_letter(Topic.ORDERS_PLACED, odd.key)
    assert (
        letter["headers"][DeadLetterHeader.REASON] == DeadLetterReason.KEY_MISMATCH.value.encode()
    )
    assert own_headers(letter) == [("trace", b"\x00t"), ("\\xff\\xfe-trace", b"v")]
    assert letter["raw"] == odd.value


# ---- 2. the body is ours to parse, whatever its content-type says -----------------------------


def _truncated_json() -> bytes:
    event = envelope(EventType.ORDER_PLACED, "ord-body", placed_data())
    return json.dumps(event).encode()[:-7]


def _five_thousand_digits() -> bytes:
    # json.dumps cannot write it (Python's int-to-str limit), so it is spliced in as text.
    data = {"payment_id": "p-digits", "amount": "10.00", "currency": "USD", "sequence": 0}
    text = json.dumps(envelope(EventType.PAYMENT_CAPTURED, "ord-body", data))
    return text.replace('"sequence": 0', '"sequence": ' + "7" * 5000).encode()


BODIES = [
    pytest.param(
        Topic.ORDERS_PLACED,
        _truncated_json(),
        [("content-type", b"application/json")],
        DeadLetterReason.NOT_JSON,
        id="truncated_json_labelled_application_json",
    ),
    pytest.param(
        Topic.ORDERS_PLACED,
        b"\xff\xfe not UTF-8 \xc3\x28",
        [("content-type", b"text/plain")],
        DeadLetterReason.NOT_UTF8,
        id="not_utf8_labelled_text_plain",
    ),
    pytest.param(
        Topic.ORDERS_PLACED,
        b"[" * 100_000 + b"]" * 100_000,
        [],
        DeadLetterReason.NOT_JSON,
        id="array_nested_100000_deep_unlabelled",
    ),
    pytest.param(
        Topic.PAYMENTS_CAPTURED,
        _five_thousand_digits(),
        [("content-type", b"application/json")],
        DeadLetterReason.NOT_JSON,
        id="cloudevent_with_a_5000_digit_integer_labelled_application_json",
    ),
]


@pytest.mark.parametrize(("topic", "value", "headers", "reason"), BODIES)
@bounded(60)
async def test_a_body_is_decoded_by_the_pipeline_whatever_its_content_type_and_dead_lettered_when_bad(
    harness: Harness, topic: Topic, value: bytes, headers: Headers, reason: DeadLetterReason
) -> None:
    odd = Raw(topic, b"ord-body", value, headers)
    burst = await harness.burst([odd])
    await harness.completes(burst.orders)
    letter = await harness.dead_letter(topic, odd.key)
    assert_dead_letter(harness, letter, odd, reason)


# ---- 3. values the store or the arithmetic would misread ---------------------------------------


def _with(event: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return event | changes


async def only_cancel_of(harness: Harness, order_id: str, what: str) -> Record:
    """The one `fulfillment.cancelled` of `order_id`, once it is out."""
    cancelled = Topic.FULFILLMENTS_CANCELLED.value
    await harness.until(
        lambda: any(c["subject"] == order_id for c in harness.seen(cancelled)), 30, what=what
    )
    [refusal] = [c for c in harness.seen(cancelled) if c["subject"] == order_id]
    return refusal


def _capture(order_id: str, amount: str) -> dict[str, Any]:
    data = {"payment_id": f"p-{order_id}", "amount": amount, "currency": "USD"}
    return envelope(EventType.PAYMENT_CAPTURED, order_id, data)


VALUES = [
    pytest.param(
        Topic.ORDERS_PLACED,
        _with(
            envelope(EventType.ORDER_PLACED, "ord-year-10000", placed_data()),
            time="9999-12-31T23:59:59-23:59",
        ),
        DeadLetterReason.NOT_CLOUDEVENT,
        id="time_in_year_10000_once_in_utc",
    ),
    pytest.param(
        Topic.PAYMENTS_CAPTURED,
        _with(_capture("ord-numeric-time", "10.00"), time=1795300000),
        DeadLetterReason.NOT_CLOUDEVENT,
        id="time_as_a_json_number",
    ),
    pytest.param(
        Topic.PAYMENTS_CAPTURED,
        _capture("ord-arabic-digits", "\u0661\u0660"),  # "10" in Arabic-Indic digits
        DeadLetterReason.INVALID_DATA,
        id="money_in_arabic_indic_digits",
    ),
]


@pytest.mark.parametrize(("topic", "event", "reason"), VALUES)
@bounded(60)
async def test_a_time_or_amount_outside_the_contract_is_dead_lettered_not_stored(
    harness: Harness, topic: Topic, event: dict[str, Any], reason: DeadLetterReason
) -> None:
    odd = Raw.event(topic, event)
    burst = await harness.burst([odd])
    await harness.completes(burst.orders)
    letter = await harness.dead_letter(topic, odd.key)
    assert_dead_letter(harness, letter, odd, reason)
    assert await harness.store.load(event["subject"]) is None


# ---- 4. size -----------------------------------------------------------------------------------


def _record_of_estimated_size(topic: Topic, key: bytes, headers: Headers, target: int) -> Raw:
    """An order.placed with invalid data, padded so aiokafka estimates the record at `target`."""
    event = envelope(EventType.ORDER_PLACED, key.decode(), placed_data() | {"currency": "usd"})
    event["padding"] = ""
    base = DefaultRecordBatchBuilder.estimate_size_in_bytes(
        key, json.dumps(event).encode(), headers
    )
    event["padding"] = "p" * (target - base)
    value = json.dumps(event).encode()
    # The padding's own length prefix grows by a byte or two: trim until it fits again.
    while DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, headers) > target:
        event["padding"] = event["padding"][:-1]
        value = json.dumps(event).encode()
    return Raw(topic, key, value, headers)


@bounded(60)
async def test_a_dead_letter_too_large_for_the_broker_keeps_key_and_headers_and_omits_its_value(
    harness: Harness,
) -> None:
    # Kafka's default message.max.bytes is 1,048,588: the original fits, with the x- headers
    # added its dead letter does not (nor in the producer's default 1 MiB max_request_size).
    # UTF-8 header values: only the size is odd here (binary ones have their own test).
    headers: Headers = [("trace", b"t-big"), ("origin", b"erp-7")]
    odd = _record_of_estimated_size(Topic.ORDERS_PLACED, b"ord-huge-bad", headers, 1_048_500)
    assert odd.value is not None and len(odd.value) < MAX_INPUT_BYTES
    async with harness.extra_producer(max_request_size=2 * MiB) as big:
        burst = await harness.burst([odd], via=big)
    await harness.completes(burst.orders)
    letter = await harness.dead_letter(Topic.ORDERS_PLACED, odd.key)
    assert_dead_letter(harness, letter, odd, DeadLetterReason.INVALID_DATA, value_kept=False)
    assert letter["raw"] in (None, b"")
    assert letter["headers"].get(DeadLetterHeader.VALUE_OMITTED) == str(len(odd.value)).encode()


@bounded(60)
async def test_a_request_whose_completion_would_exceed_the_output_limit_is_cancelled_as_invalid(
    harness: Harness,
) -> None:
    order_id = "ord-huge-output"
    distributions = [{"line_id": "L1", "instructions": "i" * 1000}] * 950
    request = envelope(
        EventType.FULFILLMENT_REQUESTED,
        order_id,
        {"fulfillment_id": "ful-huge", "distributions": distributions},
    )
    odd = [
        Raw.event(
            Topic.ORDERS_PLACED,
            envelope(EventType.ORDER_PLACED, order_id, placed_data([line("L1", 1, "digital")])),
        ),
        Raw.event(Topic.PAYMENTS_CAPTURED, _capture(order_id, "10.00")),
        Raw.event(Topic.FULFILLMENTS_REQUESTED, request),
    ]
    assert odd[2].value is not None and len(odd[2].value) < MAX_INPUT_BYTES
    assert len(json.dumps(distributions, separators=(",", ":"))) > MAX_OUTPUT_BYTES
    burst = await harness.burst(odd)
    await harness.completes(burst.orders)

    refusal = await only_cancel_of(
        harness, order_id, "the fulfillment.cancelled of the oversized request"
    )
    assert refusal["data"]["fulfillment_id"] == "ful-huge"
    assert refusal["data"]["reason"] == CancelReason.INVALID_REQUEST
    assert SIZE_WORDS.search(refusal["data"]["detail"]), refusal["data"]["detail"]
    assert order_id not in harness.completed_subjects()
    order = await harness.settled(order_id, lambda o: o.status is OrderStatus.UNFULFILLED)
    assert [f.status for f in order.fulfillments] == [FulfillmentStatus.CANCELLED]
    assert order.lines[0].fulfilled_quantity == 0


@bounded(90)
async def test_a_request_whose_held_event_would_exceed_the_output_limit_is_cancelled_and_its_order_goes_on(
    harness: Harness,
) -> None:
    order_id = "ord-huge-hold"
    lines = [line(f"L{n}", 1, price="1.00") | {"sku": f"{n}-".ljust(1000, "s")} for n in range(900)]
    request = {
        "fulfillment_id": "ful-huge",
        "lines": [{"line_id": f"L{n}", "quantity": 1} for n in range(900)],
    }
    odd = [
        Raw.event(
            Topic.ORDERS_PLACED, envelope(EventType.ORDER_PLACED, order_id, placed_data(lines))
        ),
        Raw.event(
            Topic.FULFILLMENTS_REQUESTED,
            envelope(EventType.FULFILLMENT_REQUESTED, order_id, request),
        ),
    ]
    assert all(record.value is not None and len(record.value) < MAX_INPUT_BYTES for record in odd)
    held_lines = [{"line_id": one["line_id"], "sku": one["sku"], "quantity": 1} for one in lines]
    assert len(json.dumps(held_lines, separators=(",", ":"))) > MAX_OUTPUT_BYTES
    burst = await harness.burst(odd)
    await harness.completes(burst.orders)

    refusal = await only_cancel_of(
        harness, order_id, "the fulfillment.cancelled of the request too large to hold"
    )
    assert refusal["data"]["reason"] == CancelReason.INVALID_REQUEST
    assert refusal["data"]["lines"] == []
    assert "fulfillment.held event would be" in refusal["data"]["detail"]
    # The request may arrive before its order (another topic): held then for the order, its
    # lines without skus. The hold for payment, with every long sku, never goes out.
    holds = [h for h in harness.seen(Topic.FULFILLMENTS_HELD.value) if h["subject"] == order_id]
    assert [h["data"]["reason"] for h in holds] in ([], ["awaiting_order"]), holds
    assert all(line["sku"] is None for h in holds for line in h["data"]["lines"])
    # Nothing of it waits in the order's outbox: the order's next outputs go out.
    await harness.send(Topic.PAYMENTS_CAPTURED, _capture(order_id, "900.00"))
    await harness.until(
        lambda: any(
            c["subject"] == order_id and c["data"]["to_status"] == "unfulfilled"
            for c in harness.seen(Topic.ORDERS_STATUS_CHANGED.value)
        ),
        30,
        what="the order's status change once paid",
    )
    order = await harness.order(order_id)
    assert [f.status for f in order.fulfillments] == [FulfillmentStatus.CANCELLED]
    harness.check_workers()


# ---- 5. compression ----------------------------------------------------------------------------


@pytest.mark.parametrize("codec", ["gzip", "lz4", "snappy", "zstd"])
@bounded(60)
async def test_batches_compressed_with_any_kafka_codec_are_applied(
    harness: Harness, codec: str
) -> None:
    order_id = f"ord-{codec}"
    # Creating the producer fails when aiokafka lacks the codec: a failure, never a skip.
    async with harness.extra_producer(compression_type=codec, linger_ms=20) as squeezed:
        burst = await harness.burst(raw_events(order_id), via=squeezed, neighbours_via=squeezed)
    await harness.completes([*burst.orders, order_id])


# ---- 6. a credential sealed with a key this worker does not have --------------------------------


@bounded(300)
async def test_credentials_sealed_with_a_retired_key_park_their_order_until_a_worker_has_that_key(
    harness: Harness,
) -> None:
    order_id = "ord-rotated"
    secret = f"rotated-{uuid.uuid4().hex}"
    credentials = {"username": "rot-user", "password": secret}
    placed = envelope(EventType.ORDER_PLACED, order_id, placed_data([line("L1", 1, "digital")]))
    request = envelope(
        EventType.FULFILLMENT_REQUESTED,
        order_id,
        {
            "fulfillment_id": "ful-rotated",
            "distributions": [{"line_id": "L1", "credentials": credentials}],
        },
    )
    # Worker A (key KA, the harness's) seals the credentials of the pending request.
    async with asyncio.timeout(60):
        await harness.send(Topic.ORDERS_PLACED, placed)
        await harness.send(Topic.FULFILLMENTS_REQUESTED, request)
        await harness.settled(
            order_id,
            lambda o: [f.status for f in o.fulfillments] == [FulfillmentStatus.PENDING],
            timeout=60,
        )
        await harness.stop_worker(harness.workers[0])

    # Worker B has only KB: the order completes in the store, its output waits; others go on.
    new_key = Fernet.generate_key().decode()
    harness.start_worker(FULFILLMENT_SECRET_KEY=new_key)
    async with asyncio.timeout(60):
        burst = await harness.burst(
            [Raw.event(Topic.PAYMENTS_CAPTURED, _capture(order_id, "10.00"))]
        )
        await harness.completes(burst.orders)
        while (order := await harness.order(order_id)).status is not OrderStatus.FULFILLED:
            await asyncio.sleep(0.2)
        assert [f.status for f in order.fulfillments] == [FulfillmentStatus.COMPLETED]
        await harness.until(lambda: True)
        assert order_id not in harness.completed_subjects(), "published without its credentials"
        await harness.stop_worker(harness.workers[-1])

    # Worker C has both keys (the first seals, any opens): the relay publishes the parked output,
    # once its 30 s grace is over (about 32 s on a quiet machine).
    harness.start_worker(FULFILLMENT_SECRET_KEY=f"{new_key},{harness.secret_key}")
    async with asyncio.timeout(120):
        await harness.until(
            lambda: order_id in harness.completed_subjects(),
            120,
            what="the parked fulfillment.completed, published by the relay",
        )
    completed = [
        c for c in harness.seen(Topic.FULFILLMENTS_COMPLETED.value) if c["subject"] == order_id
    ]
    assert {c["id"] for c in completed} == {completed[0]["id"]}
    assert completed[0]["data"]["fulfillment_id"] == "ful-rotated"
    assert completed[0]["data"]["distributions"][0]["credentials"] == credentials
    assert secret not in harness.logs()


# ---- 7. the document's size budget -------------------------------------------------------------


async def _raw_document(harness: Harness, order_id: str) -> dict[str, Any]:
    raw = await harness.store.orders.find_one({"_id": order_id})
    assert raw is not None, f"order {order_id} not stored"
    return raw


# Eight ~890 KB requests sealed, over budget, then re-run one by one: ~22 s of a worker's CPU
# on a quiet machine, so a loaded one gets room.
@bounded(180)
async def test_requests_that_would_push_the_document_over_its_budget_are_cancelled_as_invalid(
    harness: Harness,
) -> None:
    order_id = "ord-heavy"
    # Sealed credentials take more room than their plain text: each request (~890 KB) adds
    # ~1.2 MB to the document, so 8 of them (~7.1 MB in Kafka) cannot all fit in 8 MiB.
    distribution = {
        "line_id": "L1",
        "credentials": {"username": "u" * 1000, "password": "p" * 1000, "token": "t" * 1000},
    }
    requests = [f"ful-heavy-{index:02d}" for index in range(8)]
    odd = [
        Raw.event(
            Topic.ORDERS_PLACED,
            envelope(EventType.ORDER_PLACED, order_id, placed_data([line("L1", 1, "digital")])),
        ),
        *(
            Raw.event(
                Topic.FULFILLMENTS_REQUESTED,
                envelope(
                    EventType.FULFILLMENT_REQUESTED,
                    order_id,
                    {"fulfillment_id": fulfillment_id, "distributions": [distribution] * 290},
                ),
            )
            for fulfillment_id in requests
        ),
    ]
    assert all(r.value is not None and 850_000 < len(r.value) < MAX_INPUT_BYTES for r in odd[1:])
    burst = await harness.burst(odd)
    await harness.completes(burst.orders, timeout=150)

    cancelled = Topic.FULFILLMENTS_CANCELLED.value

    def refused() -> dict[str, Record]:
        return {
            c["data"]["fulfillment_id"]: c
            for c in harness.seen(cancelled)
            if c["subject"] == order_id
        }

    raw = await _raw_document(harness, order_id)
    pending = [
        f["fulfillment_id"] for f in raw["fulfillments"] if f["status"] == FulfillmentStatus.PENDING
    ]

    def unaccounted() -> str:
        missing = sorted(set(requests) - set(pending) - set(refused()))
        letters = [
            letter["headers"].get(DeadLetterHeader.REASON)
            for letter in harness.seen(Topic.FULFILLMENTS_REQUESTED.dlq)
            if letter["key"] == order_id.encode()
        ]
        return f"a cancellation of each request not kept: {missing}; dead letters: {letters}"

    await harness.until(
        lambda: set(pending) | set(refused()) == set(requests), 30, what=unaccounted
    )
    size = len(bson.encode(raw))
    assert size <= MAX_DOCUMENT_BYTES, f"document is {size:,} bytes"
    assert refused(), "every request was kept"
    assert not set(pending) & set(refused())
    assert pending == requests[: len(pending)], "a later request was kept after one was refused"
    for refusal in refused().values():
        assert refusal["data"]["reason"] == CancelReason.INVALID_REQUEST
        assert SIZE_WORDS.search(refusal["data"]["detail"]), refusal["data"]["detail"]
    for stored in raw["fulfillments"]:
        if stored["status"] == FulfillmentStatus.CANCELLED:
            assert stored["fulfillment_id"] in refused()


@bounded(120)
async def test_refused_order_cancels_keep_the_document_in_budget_and_timeline_summaries_short(
    harness: Harness,
) -> None:
    order_id = "ord-many-fulfillments"
    count = 600
    lines = [line(f"L{index}", 1, "digital", "0.01") for index in range(count)]
    fulfillment_ids = [f"{index:03d}-" + "f" * 124 for index in range(count)]  # 128 characters
    async with asyncio.timeout(60):
        await harness.send(
            Topic.ORDERS_PLACED,
            envelope(EventType.ORDER_PLACED, order_id, placed_data(lines, total="6.00")),
        )
        await harness.send(Topic.PAYMENTS_CAPTURED, _capture(order_id, "6.00"))
        pending = []
        for index, fulfillment_id in enumerate(fulfillment_ids):
            data = {
                "fulfillment_id": fulfillment_id,
                "lines": [{"line_id": f"L{index}", "quantity": 1}],
            }
            event = envelope(EventType.FULFILLMENT_REQUESTED, order_id, data)
            record = Raw.event(Topic.FULFILLMENTS_REQUESTED, event)
            pending.append(
                await harness.producer.send(
                    harness.settings.topic(record.topic), record.value, key=record.key
                )
            )
        await asyncio.gather(*pending)
        await harness.settled(order_id, lambda o: o.status is OrderStatus.FULFILLED, timeout=60)

    # Each refusal names the 600 completed fulfillments: 220 of them in full would be ~17 MB.
    cancels = [
        Raw.event(
            Topic.ORDERS_CANCEL_REQUESTED,
            envelope(EventType.ORDER_CANCEL_REQUESTED, order_id, {"reason": "fraud"}),
        )
        for _ in range(220)
    ]
    async with asyncio.timeout(60):
        burst = await harness.burst(cancels)
        await harness.completes(burst.orders)
        # The canary has no event on orders.cancel-requested: wait for the cancels themselves.
        await harness.settled(
            order_id,
            lambda o: sum(e.type == TimelineType.ORDER_CANCEL_REFUSED for e in o.timeline) >= 220,
        )
        raw = await _raw_document(harness, order_id)
    size = len(bson.encode(raw))
    assert size <= MAX_DOCUMENT_BYTES, f"document is {size:,} bytes"
    refusals = [e for e in raw["timeline"] if e["type"] == TimelineType.ORDER_CANCEL_REFUSED]
    assert len(refusals) == 220
    longest = max(len(entry["summary"]) for entry in raw["timeline"])
    assert longest <= MAX_SUMMARY_CHARS, f"a summary of {longest} characters"
    assert raw["status"] == OrderStatus.FULFILLED


# ---- 8. one event id, two sources --------------------------------------------------------------


@bounded(60)
async def test_an_event_id_reused_by_another_source_is_not_applied_and_shows_on_the_timeline(
    harness: Harness,
) -> None:
    order_id = "ord-id-reused"
    placed = envelope(EventType.ORDER_PLACED, order_id, placed_data([line("L1", 2)]))
    first = _capture(order_id, "10.00") | {"id": "evt-shared", "source": "urn:psp-a"}
    second = _capture(order_id, "10.00") | {"id": "evt-shared", "source": "urn:psp-b"}
    second["data"] = second["data"] | {"payment_id": "p-second"}
    odd = [
        Raw.event(Topic.ORDERS_PLACED, placed),
        Raw.event(Topic.PAYMENTS_CAPTURED, first),
        Raw.event(Topic.PAYMENTS_CAPTURED, second),
    ]
    burst = await harness.burst(odd)
    await harness.completes(burst.orders)
    order = await harness.settled(order_id, lambda o: len(o.applied_event_ids) >= 2)
    assert [capture.payment_id for capture in order.captures] == [first["data"]["payment_id"]]
    assert order.payment_status is PaymentStatus.PARTIALLY_CAPTURED
    assert order.status is OrderStatus.AWAITING_PAYMENT
    reused = [e for e in order.timeline if e.type == TimelineType.EVENT_ID_REUSED]
    assert [e.event_id for e in reused] == ["evt-shared"]


# ---- 9. what the store refuses for reasons of its own ------------------------------------------


@bounded(60)
async def test_a_nul_character_in_a_text_is_applied_or_dead_lettered_without_the_value(
    harness: Harness,
) -> None:
    # FerretDB v1 over SQLite stores "\u0000" in string values (checked by hand); MongoDB too.
    order_id = "ord-nul"
    events = fulfillable_order(order_id)
    events[0][1]["data"]["customer"]["name"] = "Ada\u0000Lovelace"
    odd = [Raw.event(topic, event) for topic, event in events]
    burst = await harness.burst(odd)
    await harness.completes(burst.orders)
    stored = await harness.store.load(order_id)
    if stored is not None and stored.placed:
        await harness.completes([order_id])
        order = await harness.order(order_id)
        assert order.customer is not None and order.customer.name == "Ada\u0000Lovelace"
    else:
        letter = await harness.dead_letter(Topic.ORDERS_PLACED, order_id.encode())
        assert_dead_letter(harness, letter, odd[0], DeadLetterReason.PROCESSING_FAILED)
        error = letter["headers"][DeadLetterHeader.ERROR].decode()
        assert EXCEPTION_NAME.search(error), error
        assert "Lovelace" not in error


@bounded(60)
async def test_a_lone_surrogate_the_store_cannot_encode_is_dead_lettered_without_the_value(
    harness: Harness,
) -> None:
    order_id = "ord-surrogate"
    event = envelope(EventType.ORDER_PLACED, order_id, placed_data())
    event["data"]["customer"]["name"] = "Ada-SURROGATE-Lovelace"
    value = json.dumps(event).replace("SURROGATE", "\\ud800").encode()  # valid UTF-8, valid JSON
    odd = Raw(Topic.ORDERS_PLACED, order_id.encode(), value)
    burst = await harness.burst([odd])
    await harness.completes(burst.orders)
    letter = await harness.dead_letter(Topic.ORDERS_PLACED, odd.key)
    reason = letter["headers"][DeadLetterHeader.REASON].decode()
    assert reason in {
        DeadLetterReason.NOT_JSON,
        DeadLetterReason.INVALID_DATA,
        DeadLetterReason.PROCESSING_FAILED,
    }
    assert_dead_letter(harness, letter, odd, DeadLetterReason(reason))
    error = letter["headers"][DeadLetterHeader.ERROR].decode()
    assert "Lovelace" not in error
    if reason == DeadLetterReason.PROCESSING_FAILED:
        assert EXCEPTION_NAME.search(error), error
    stored = await harness.store.load(order_id)
    assert stored is None or not stored.placed


# ---- 9. sizes that only compression lets through ------------------------------------------


@pytest.mark.parametrize("size", [8 * MiB, 256 * MiB], ids=["8MiB", "256MiB"])
@bounded(120)
async def test_an_input_over_the_limit_that_compression_let_through_is_dead_lettered_too_large(
    harness: Harness, size: int
) -> None:
    # A valid order padded past the input limit: a 1 MiB broker limit on the compressed
    # batch lets it through, the 256 MiB one as a decompression bomb of about 250 KiB.
    event = envelope(EventType.ORDER_PLACED, "ord-squeezed", placed_data())
    text = json.dumps(event).encode()
    value = text[:-1] + b', "padding": "' + b"0" * (size - len(text)) + b'"}'
    odd = Raw(Topic.ORDERS_PLACED, b"ord-squeezed", value, [("trace", b"t-squeezed")])
    async with harness.extra_producer(
        compression_type="gzip", max_request_size=size + MiB
    ) as squeezed:
        burst = await harness.burst([odd], via=squeezed)
    await harness.completes(burst.orders)
    letter = await harness.dead_letter(Topic.ORDERS_PLACED, odd.key)
    assert_dead_letter(harness, letter, odd, DeadLetterReason.TOO_LARGE, value_kept=False)
    assert letter["headers"].get(DeadLetterHeader.VALUE_OMITTED) == str(len(value)).encode()
    assert str(len(value)) in letter["headers"][DeadLetterHeader.ERROR].decode()
    harness.check_workers()
