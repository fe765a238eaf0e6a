"""Decoding input records: every contract validation rule and every dead-letter reason."""

from __future__ import annotations

import json
from typing import Any

import pytest

from consumers.decode import Rejection, decode
from schemas.events import Inbound, OrderPlaced
from schemas.names import DeadLetterReason, EventType, Topic
from tests.factories import envelope, line, placed_data

ORDER = "ord-1"


def placed_record(**data_changes: Any) -> dict[str, Any]:
    return envelope(EventType.ORDER_PLACED, ORDER, placed_data() | data_changes)


def as_bytes(value: dict[str, Any]) -> bytes:
    return json.dumps(value).encode()


def rejected(topic: Topic, value: bytes | None, key: bytes | None = ORDER.encode()) -> Rejection:
    result = decode(topic, key, value)
    assert isinstance(result, Rejection), result
    return result


def test_valid_order_placed_decodes_to_a_typed_event() -> None:
    result = decode(Topic.ORDERS_PLACED, ORDER.encode(), as_bytes(placed_record()))
    assert isinstance(result, Inbound)
    assert isinstance(result.data, OrderPlaced)
    assert result.order_id == ORDER


def test_unknown_attributes_and_data_fields_are_ignored() -> None:
    record = placed_record(loyalty_tier="gold") | {"traceparent": "00-abc", "partnerext": 1}
    assert isinstance(decode(Topic.ORDERS_PLACED, ORDER.encode(), as_bytes(record)), Inbound)


def test_value_that_is_not_utf8_is_a_dead_letter() -> None:
    assert rejected(Topic.ORDERS_PLACED, b"\xff\xfe{").reason is DeadLetterReason.NOT_UTF8


@pytest.mark.parametrize("value", [b"{not json", b"", None])
def test_value_that_is_not_json_is_a_dead_letter(value: bytes | None) -> None:
    assert rejected(Topic.ORDERS_PLACED, value).reason is DeadLetterReason.NOT_JSON


@pytest.mark.parametrize(
    "document",
    [
        [1, 2],
        {"hello": "world"},
        placed_record() | {"specversion": "0.3"},
        placed_record() | {"time": "yesterday"},
    ],
)
def test_json_that_is_not_a_cloudevent_is_a_dead_letter(document: Any) -> None:
    assert (
        rejected(Topic.ORDERS_PLACED, json.dumps(document).encode()).reason
        is DeadLetterReason.NOT_CLOUDEVENT
    )


def test_event_of_the_wrong_type_for_its_topic_is_a_dead_letter() -> None:
    result = rejected(Topic.PAYMENTS_CAPTURED, as_bytes(placed_record()))
    assert result.reason is DeadLetterReason.WRONG_TYPE
    assert "payment.captured" in result.error


@pytest.mark.parametrize("key", [b"ord-2", None])
def test_key_that_differs_from_the_subject_is_a_dead_letter(key: bytes | None) -> None:
    assert (
        rejected(Topic.ORDERS_PLACED, as_bytes(placed_record()), key).reason
        is DeadLetterReason.KEY_MISMATCH
    )


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"id": ""}, "id"),
        ({"id": "x" * 129}, "id"),
        ({"subject": ""}, "subject"),
    ],
)
def test_ids_must_be_1_to_128_characters(change: dict[str, Any], where: str) -> None:
    record = placed_record() | change
    key = record["subject"].encode()
    result = rejected(Topic.ORDERS_PLACED, as_bytes(record), key)
    assert result.reason is DeadLetterReason.NOT_CLOUDEVENT
    assert where in result.error


@pytest.mark.parametrize(
    ("data_change", "fragment"),
    [
        ({"total": 19.99}, "total"),
        ({"total": "-1"}, "total"),
        ({"total": "1,00"}, "total"),
        ({"currency": "usd"}, "ISO 4217"),
        ({"currency": "ABC"}, "ISO 4217"),
        ({"lines": []}, "lines"),
        ({"lines": [line("L1", 0)]}, "quantity"),
        ({"lines": [line("L1", "2")]}, "quantity"),  # type: ignore[arg-type]
        ({"lines": [line("L1"), line("L1")]}, "unique"),
        ({"shipping_address": None}, "shipping_address is required"),
        (
            {
                "shipping_address": {
                    "name": "A",
                    "line1": "B",
                    "city": "C",
                    "postal_code": "1",
                    "country": "XX",
                }
            },
            "ISO 3166",
        ),
        ({"customer": {"name": "A", "email": "not-an-email"}}, "email"),
    ],
)
def test_order_placed_validation_rules(data_change: dict[str, Any], fragment: str) -> None:
    result = rejected(Topic.ORDERS_PLACED, as_bytes(placed_record(**data_change)))
    assert result.reason is DeadLetterReason.INVALID_DATA
    assert fragment in result.error


@pytest.mark.parametrize("total", ["\u0661\u0660", "1\u0660.00", "\uff11\uff10", "10.\u0660"])
def test_money_takes_only_ascii_digits(total: str) -> None:
    result = rejected(Topic.ORDERS_PLACED, as_bytes(placed_record(total=total)))
    assert result.reason is DeadLetterReason.INVALID_DATA
    assert "total" in result.error


@pytest.mark.parametrize(
    "time",
    [
        1700000000,
        1700000000.5,
        "1700000000",
        "2026-11-21",
        "2026-11-21 10:00:00Z",
        "2026-11-21T10:00Z",
        "2026-11-21T10:00:00",
        "2026-11-21T10:00:00+0100",
        "\u0662\u0660\u0662\u0666-11-21T10:00:00Z",
    ],
)
def test_time_must_be_an_rfc3339_string(time: Any) -> None:
    result = rejected(Topic.ORDERS_PLACED, as_bytes(placed_record() | {"time": time}))
    assert result.reason is DeadLetterReason.NOT_CLOUDEVENT
    assert "time" in result.error


@pytest.mark.parametrize("time", ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+01:00"])
def test_time_outside_years_1_to_9999_in_utc_is_refused(time: str) -> None:
    result = rejected(Topic.ORDERS_PLACED, as_bytes(placed_record() | {"time": time}))
    assert result.reason is DeadLetterReason.NOT_CLOUDEVENT
    assert "9999 in UTC" in result.error


@pytest.mark.parametrize(
    "time",
    [
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59.999999Z",
        "9999-12-31T23:59:59+01:00",
        "2026-11-21t10:00:00.5+05:30",
        "2026-11-21T10:00:00z",
    ],
)
def test_any_rfc3339_time_within_years_1_to_9999_in_utc_is_accepted(time: str) -> None:
    record = placed_record() | {"time": time}
    assert isinstance(decode(Topic.ORDERS_PLACED, ORDER.encode(), as_bytes(record)), Inbound)


def test_digital_only_order_needs_no_shipping_address() -> None:
    record = envelope(EventType.ORDER_PLACED, ORDER, placed_data([line("D1", 1, "digital")]))
    assert "shipping_address" not in record["data"]
    assert isinstance(decode(Topic.ORDERS_PLACED, ORDER.encode(), as_bytes(record)), Inbound)


def test_validation_errors_never_echo_the_rejected_values() -> None:
    secret = "hunter2-secret"
    record = envelope(
        EventType.FULFILLMENT_REQUESTED,
        ORDER,
        {
            "fulfillment_id": "f1",
            "distributions": [{"line_id": "D1", "credentials": {"password": [secret]}}],
        },
    )
    result = rejected(Topic.FULFILLMENTS_REQUESTED, as_bytes(record))
    assert result.reason is DeadLetterReason.INVALID_DATA
    assert secret not in result.error


SECRET = "sk_live_SECRET123"


@pytest.mark.parametrize(
    ("topic", "record"),
    [
        (Topic.ORDERS_PLACED, placed_record(currency=SECRET)),
        (
            Topic.ORDERS_PLACED,
            placed_record(shipping_address=placed_data()["shipping_address"] | {"country": SECRET}),
        ),
        (Topic.ORDERS_PLACED, placed_record() | {"type": SECRET}),
        (Topic.PAYMENTS_CAPTURED, placed_record() | {"type": SECRET}),
    ],
    ids=["currency", "country", "type-unknown", "type-of-another-topic"],
)
def test_a_dead_letters_error_names_the_failure_but_never_a_value_from_the_record(
    topic: Topic, record: dict[str, Any]
) -> None:
    result = rejected(topic, as_bytes(record))
    assert result.error and SECRET not in result.error


def test_a_pattern_mismatch_says_what_the_field_should_be_never_the_expression() -> None:
    record = placed_record()
    record["data"]["total"] = "12,50"
    record["data"]["customer"]["email"] = "ada at example"
    result = rejected(Topic.ORDERS_PLACED, as_bytes(record))
    assert result.reason is DeadLetterReason.INVALID_DATA
    assert "data.total: should be a decimal string of up to 15 digits" in result.error
    assert "data.customer.email: should be an email address" in result.error
    assert "^" not in result.error and "12,50" not in result.error
