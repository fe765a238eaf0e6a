"""The contract files integrators read: contracts/asyncapi.json and contracts/json-schema/*.json.

Generated from the worker's topic names and typed event models; a test keeps the committed
files equal to what this writes (`fulfillment contracts write`).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI
from pydantic import BaseModel

from schemas.cloudevents import CONTENT_TYPE, CONTENT_TYPE_HEADER
from schemas.contracts import event_model, json_schema
from schemas.names import (
    CONTRACT_VERSION,
    INPUT_TOPICS,
    OUTPUT_TOPICS,
    TOPIC_TYPE,
    DeadLetterHeader,
    EventType,
)

CONTRACTS_DIR = Path(__file__).resolve().parent.parent / "contracts"
# Headers only some letters carry: too large for the broker, or sent back by a replay.
_SOMETIMES = (
    DeadLetterHeader.VALUE_OMITTED,
    DeadLetterHeader.KEY_OMITTED,
    DeadLetterHeader.REPLAYS,
)
_DLQ_HEADERS = ", ".join(header.value for header in DeadLetterHeader if header not in _SOMETIMES)
_DLQ_SOMETIMES = (
    f"{DeadLetterHeader.VALUE_OMITTED.value} (then {DeadLetterHeader.KEY_OMITTED.value}) when"
    f" the letter was too large for the broker, {DeadLetterHeader.REPLAYS.value} once replayed"
)


STRUCTURED_MEDIA_TYPE = CONTENT_TYPE.split(";")[0]
KAFKA_BINDING_VERSION = "0.5.0"
_KEY = {
    "type": "string",
    "description": (
        "The order id in UTF-8, equal to the event's `subject` (another key is dead-lettered"
        " as key_mismatch); partitioned by murmur2, Kafka's default partitioner."
    ),
}
_DLQ_KEY = {
    "type": ["string", "null"],
    "description": "The original record's key, byte for byte (dropped only when too large).",
}
_HEADER_SCHEMA = {
    "type": "object",
    "properties": {
        CONTENT_TYPE_HEADER: {
            "type": "string",
            "description": (
                f"`{CONTENT_TYPE}` in structured mode (every output); in binary mode (inputs"
                " only) the data's media type, the attributes then in `ce_` headers."
            ),
        }
    },
}
_DLQ_HEADER_SCHEMA = {
    "type": "object",
    "description": "The original record's headers, plus the dead-letter headers.",
    "properties": {header.value: {"type": "string"} for header in DeadLetterHeader},
    "required": [header.value for header in DeadLetterHeader if header not in _SOMETIMES],
}


def asyncapi_document() -> dict[str, Any]:
    """The AsyncAPI 3 document of the worker: what it consumes, publishes and dead-letters.

    The running worker has one untyped batch subscriber over every input topic; this declares
    each topic with its typed event, from the same names and models, so integrators see the
    contract.
    """
    broker = KafkaBroker(
        "localhost:9092",
        description=(
            "Kafka; every message is a CloudEvent keyed by the order id: inputs in structured"
            " or binary content mode, outputs in structured mode."
        ),
    )
    for topic in INPUT_TOPICS:
        event_type = TOPIC_TYPE[topic]
        broker.subscriber(
            topic.value,
            title=f"{topic.value}:consume",
            description=f"`{event_type.value}` events; the worker's group commits only after saving and publishing.",
        )(_documented_handler(event_model(event_type)))
        broker.publisher(
            topic.dlq,
            title=f"{topic.dlq}:publish",
            description=(
                f"Input that could not be used: original key, value and headers, plus {_DLQ_HEADERS};"
                f" {_DLQ_SOMETIMES}."
            ),
            schema=bytes,
        )
    for topic in OUTPUT_TOPICS:
        broker.publisher(
            topic.value,
            title=f"{topic.value}:publish",
            description=(
                f"`{TOPIC_TYPE[topic].value}` events with deterministic ids and the CloudEvents"
                " `sequence` extension (one order's outputs sort by it across topics)."
            ),
            schema=event_model(TOPIC_TYPE[topic]),
        )
    specification = AsyncAPI(
        broker,
        title="Order-fulfillment pipeline",
        version=CONTRACT_VERSION,
        description="Order, payment and fulfillment events in; fulfillment outcomes and status changes out.",
        schema_version="3.0.0",
    )
    document: dict[str, Any] = specification.to_specification().to_jsonable()
    # Structured mode: what every output is, and what a producer sends unless it uses binary
    # mode (then the `ce_` headers carry the attributes and `content-type` the data's type).
    document["defaultContentType"] = STRUCTURED_MEDIA_TYPE
    for name, message in document["components"]["messages"].items():
        # FastStream declares its own correlation header, which is no part of the contract.
        message.pop("correlationId", None)
        letter = ".dlq:" in name
        key = _DLQ_KEY if letter else _KEY
        message["bindings"] = {"kafka": {"key": key, "bindingVersion": KAFKA_BINDING_VERSION}}
        message["headers"] = _DLQ_HEADER_SCHEMA if letter else _HEADER_SCHEMA
        if letter:
            # The original value byte for byte: any bytes, JSON or not.
            message["contentType"] = "application/octet-stream"
    return document


def _documented_handler(model: type[BaseModel]) -> Callable[..., Awaitable[None]]:
    async def consume(event: Any) -> None:
        """Declared for the specification only."""

    consume.__annotations__ = {"event": model, "return": None}
    return consume


def rendered() -> dict[str, str]:
    """Every published contract file, by path relative to `contracts/`."""
    files = {f"json-schema/{t.value}.json": _dump(json_schema(t)) for t in EventType}
    files["asyncapi.json"] = _dump(asyncapi_document())
    return files


def _dump(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def write(root: Path = CONTRACTS_DIR) -> list[Path]:
    """Regenerate the committed contract files."""
    written = []
    for relative, text in rendered().items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    return written
