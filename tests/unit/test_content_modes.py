"""Both CloudEvents content modes of the Kafka binding decode alike (contract 1.1, "Content modes")."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cloudevents.http import CloudEvent
from cloudevents.kafka import to_binary, to_structured

from consumers.decode import Rejection, decode
from schemas.names import DeadLetterReason, EventType, Topic
from tests.factories import envelope, placed_data


def sdk_event(**changes: Any) -> CloudEvent:
    wire = envelope(EventType.ORDER_PLACED, "ord-9", placed_data()) | changes
    data = wire.pop("data")
    return CloudEvent(wire, data)


def as_record(message: Any) -> tuple[bytes, bytes, list[tuple[str, bytes | None]]]:
    key = message.key.encode() if isinstance(message.key, str) else message.key
    return key, message.value, list(message.headers.items())


def test_the_sdks_binary_and_structured_modes_decode_to_the_same_event() -> None:
    event = sdk_event()
    results = []
    for convert in (to_binary, to_structured):
        key, value, headers = as_record(convert(event, key_mapper=lambda e: e["subject"]))
        results.append(decode(Topic.ORDERS_PLACED, key, value, headers))
    binary, structured = results
    assert not isinstance(binary, Rejection)
    assert binary == structured
    assert binary.source == "urn:test" and binary.order_id == "ord-9"


def test_a_binary_mode_event_gets_the_same_validation_as_a_structured_one() -> None:
    event = sdk_event(type="payment.captured")
    key, value, headers = as_record(to_binary(event, key_mapper=lambda e: e["subject"]))
    result = decode(Topic.ORDERS_PLACED, key, value, headers)
    assert isinstance(result, Rejection) and result.reason is DeadLetterReason.WRONG_TYPE


def test_binary_mode_with_a_missing_attribute_is_not_a_cloudevent() -> None:
    key, value, headers = as_record(to_binary(sdk_event(), key_mapper=lambda e: e["subject"]))
    headers = [(name, raw) for name, raw in headers if name != "ce_id"]
    result = decode(Topic.ORDERS_PLACED, key, value, headers)
    assert isinstance(result, Rejection) and result.reason is DeadLetterReason.NOT_CLOUDEVENT
    assert "id" in result.error


def test_binary_mode_data_that_is_not_an_object_is_invalid_data() -> None:
    key, _, headers = as_record(to_binary(sdk_event(), key_mapper=lambda e: e["subject"]))
    result = decode(Topic.ORDERS_PLACED, key, b"[1, 2]", headers)
    assert isinstance(result, Rejection) and result.reason is DeadLetterReason.INVALID_DATA


def test_binary_mode_attribute_header_that_is_not_utf8_is_not_a_cloudevent() -> None:
    key, value, headers = as_record(to_binary(sdk_event(), key_mapper=lambda e: e["subject"]))
    headers = [(n, b"\xff" if n == "ce_source" else raw) for n, raw in headers]
    result = decode(Topic.ORDERS_PLACED, key, value, headers)
    assert isinstance(result, Rejection) and result.reason is DeadLetterReason.NOT_CLOUDEVENT
    assert result.error == "header ce_source is not UTF-8"


def test_binary_mode_attribute_header_whose_name_and_value_are_not_utf8_is_named_escaped() -> None:
    key, value, headers = as_record(to_binary(sdk_event(), key_mapper=lambda e: e["subject"]))
    # A name that is not UTF-8, as the worker reads it (surrogate escapes).
    odd = b"ce_\xff".decode("utf-8", "surrogateescape")
    result = decode(Topic.ORDERS_PLACED, key, value, [*headers, (odd, b"\xff")])
    assert isinstance(result, Rejection) and result.reason is DeadLetterReason.NOT_CLOUDEVENT
    assert result.error == "header ce_\\xff is not UTF-8"
    result.error.encode()  # a header value as it stands


def test_binary_mode_media_type_parameters_are_ignored_but_other_media_types_refused() -> None:
    key, value, headers = as_record(to_binary(sdk_event(), key_mapper=lambda e: e["subject"]))
    with_charset = [
        (n, b"application/json; charset=utf-8" if n == "content-type" else raw)
        for n, raw in headers
    ]
    assert not isinstance(decode(Topic.ORDERS_PLACED, key, value, with_charset), Rejection)
    as_text = [(n, b"text/plain" if n == "content-type" else raw) for n, raw in headers]
    result = decode(Topic.ORDERS_PLACED, key, value, as_text)
    assert isinstance(result, Rejection) and result.reason is DeadLetterReason.NOT_CLOUDEVENT


def test_media_type_parameters_are_ignored_in_structured_mode_too() -> None:
    key, value, headers = as_record(
        to_structured(
            sdk_event(datacontenttype="application/json; charset=utf-8"),
            key_mapper=lambda e: e["subject"],
        )
    )
    assert not isinstance(decode(Topic.ORDERS_PLACED, key, value, headers), Rejection)
    as_text = value.replace(b"application/json; charset=utf-8", b"text/plain")
    result = decode(Topic.ORDERS_PLACED, key, as_text, headers)
    assert isinstance(result, Rejection) and result.reason is DeadLetterReason.NOT_CLOUDEVENT


@pytest.mark.parametrize("data", [[1, 2], "text", None], ids=["list", "string", "null"])
def test_data_that_is_not_an_object_is_invalid_data_in_structured_mode_too(data: Any) -> None:
    wire = envelope(EventType.ORDER_PLACED, "ord-9", placed_data()) | {"data": data}
    result = decode(Topic.ORDERS_PLACED, b"ord-9", json.dumps(wire).encode())
    assert isinstance(result, Rejection) and result.reason is DeadLetterReason.INVALID_DATA
    assert result.error == "data: must be a JSON object"


def test_a_cloudevent_without_data_is_invalid_data_but_a_broken_envelope_is_not_a_cloudevent() -> (
    None
):
    wire = envelope(EventType.ORDER_CANCEL_REQUESTED, "ord-9", {})
    del wire["data"]
    result = decode(Topic.ORDERS_CANCEL_REQUESTED, b"ord-9", json.dumps(wire).encode())
    assert isinstance(result, Rejection) and result.reason is DeadLetterReason.INVALID_DATA
    del wire["id"]
    result = decode(Topic.ORDERS_CANCEL_REQUESTED, b"ord-9", json.dumps(wire).encode())
    assert isinstance(result, Rejection) and result.reason is DeadLetterReason.NOT_CLOUDEVENT


@pytest.mark.parametrize(
    "media_type",
    [b"Application/JSON", b" application/json ", b"application/json;charset=utf-8\r\n"],
)
def test_a_media_type_is_read_without_regard_to_case_or_surrounding_spaces(
    media_type: bytes,
) -> None:
    key, value, headers = as_record(to_binary(sdk_event(), key_mapper=lambda e: e["subject"]))
    labelled = [(n, media_type if n == "content-type" else raw) for n, raw in headers]
    assert not isinstance(decode(Topic.ORDERS_PLACED, key, value, labelled), Rejection)
