"""The committed AsyncAPI document and JSON Schemas are exactly what the code generates."""

from __future__ import annotations

import json

from schemas.contracts import event_model
from schemas.names import DLQ_SUFFIX, INPUT_TOPICS, OUTPUT_TOPICS, TOPIC_TYPE, EventType
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


def test_typed_event_model_accepts_a_contract_event_and_hides_sealed_credentials() -> None:
    event = envelope(EventType.ORDER_PLACED, "ord-1", placed_data())
    assert event_model(EventType.ORDER_PLACED).model_validate(event)
    assert "sealed_credentials" not in json.dumps(rendered())
