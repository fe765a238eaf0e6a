"""The committed AsyncAPI document and JSON Schemas are exactly what the code generates."""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonschema
import pytest

from consumers.decode import Rejection, decode
from schemas.contracts import event_model
from schemas.names import DLQ_SUFFIX, INPUT_TOPICS, OUTPUT_TOPICS, TOPIC_TYPE, TYPE_TOPIC, EventType
from tests.factories import envelope, placed_data
from tools.contracts import CONTRACTS_DIR, rendered


def test_committed_contracts_match_the_code_run_fulfillment_contracts_write_to_update() -> None:
    for relative, text in rendered().items():
        path = CONTRACTS_DIR / relative
        assert path.exists(), f"{relative} is missing: run `fulfillment contracts write`"
        assert path.read_text() == text, (
            f"{relative} drifted from the code: run `fulfillment contracts write`"
        )


def test_asyncapi_declares_every_contract_topic_with_its_typed_event() -> None:
    document = json.loads((CONTRACTS_DIR / "asyncapi.json").read_text())
    addresses = {channel["address"] for channel in document["channels"].values()}
    expected = {t.value for t in (*INPUT_TOPICS, *OUTPUT_TOPICS)} | {
        f"{t.value}{DLQ_SUFFIX}" for t in INPUT_TOPICS
    }
    assert document["asyncapi"] == "3.0.0"
    assert addresses == expected
    for topic in (*INPUT_TOPICS, *OUTPUT_TOPICS):
        assert event_model(TOPIC_TYPE[topic]).__name__ in document["components"]["schemas"]


def test_asyncapi_says_each_message_is_keyed_by_order_and_names_its_headers() -> None:
    document = json.loads((CONTRACTS_DIR / "asyncapi.json").read_text())
    assert document["defaultContentType"] == "application/cloudevents+json"
    for name, message in document["components"]["messages"].items():
        key = message["bindings"]["kafka"]["key"]
        assert "string" in key["type"]
        if ".dlq:" in name:
            assert {"x-dlq-reason", "x-dlq-error", "x-original-topic"} <= set(
                message["headers"]["required"]
            )
            assert message["contentType"] == "application/octet-stream"  # any bytes
            assert "null" in key["type"]  # a record without a key, or one dropped
        else:
            assert "subject" in key["description"]
            assert "content-type" in message["headers"]["properties"]


def test_typed_event_model_accepts_a_contract_event_and_hides_sealed_credentials() -> None:
    event = envelope(EventType.ORDER_PLACED, "ord-1", placed_data())
    assert event_model(EventType.ORDER_PLACED).model_validate(event)
    assert "sealed_credentials" not in json.dumps(rendered())


def _published_schema(event_type: EventType) -> jsonschema.Draft202012Validator:
    schema = json.loads((CONTRACTS_DIR / "json-schema" / f"{event_type.value}.json").read_text())
    return jsonschema.Draft202012Validator(schema)


def _with(document: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of `document` with the item at `path` ("data.lines.0.quantity") set to `value`."""
    changed = copy.deepcopy(document)
    *parents, last = path.split(".")
    target: Any = changed
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    target[last] = value
    return changed


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("data.currency", "usd"),
        ("data.currency", "ZZZ"),
        ("data.shipping_address.country", "Narnia"),
        ("time", "21 Nov 2026 10:00"),
        ("time", "2026-11-21 10:00:00"),
    ],
)
def test_a_value_the_worker_refuses_the_published_schema_refuses_too(path: str, value: Any) -> None:
    valid = envelope(EventType.ORDER_PLACED, "ord-1", placed_data())
    refused = _with(valid, path, value)
    result = decode(TYPE_TOPIC[EventType.ORDER_PLACED], b"ord-1", json.dumps(refused).encode())
    assert isinstance(result, Rejection), "the worker takes it: not a case for this test"
    schema = _published_schema(EventType.ORDER_PLACED)
    assert not schema.is_valid(refused), f"the schema takes {path}={value!r}"
    assert schema.is_valid(valid)
