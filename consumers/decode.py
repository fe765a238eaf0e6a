"""Raw Kafka records to validated events, or to the reason they must be dead-lettered."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from pydantic_core import from_json

from consumers.kafka_records import printable_name
from schemas.cloudevents import CONTENT_TYPE_HEADER, envelope_model
from schemas.errors import problems
from schemas.events import INPUT_DATA, Envelope, Inbound, InputData
from schemas.limits import MAX_INPUT_BYTES
from schemas.names import TOPIC_TYPE, DeadLetterReason, Topic

MAX_ERROR_LENGTH = 1000
# CloudEvents Kafka binding: a record with this header is in binary content mode.
BINARY_MODE_MARK = "ce_specversion"


@dataclass(frozen=True)
class Rejection:
    """Why a record cannot be used: the `x-dlq-reason` code and a readable `x-dlq-error`."""

    reason: DeadLetterReason
    error: str


NOT_AN_OBJECT = Rejection(DeadLetterReason.INVALID_DATA, "data: must be a JSON object")


def decode(
    topic: Topic,
    key: bytes | None,
    value: bytes | None,
    headers: Sequence[tuple[str, bytes | None]] = (),
) -> Inbound | Rejection:
    """Validate one record of an input topic against the contract, in either content mode."""
    binary = any(name == BINARY_MODE_MARK for name, _ in headers)
    if not binary:
        valid = _valid_structured(topic, key, value)
        if valid is not None:
            return valid
    # A record that is not plainly valid is taken apart step by step, to say what is wrong.
    document = _from_headers(headers, value) if binary else _json_object(value)
    if isinstance(document, Rejection):
        return document
    try:
        envelope = Envelope.model_validate(document)
    except ValidationError as problem:
        if all(error["loc"][:1] == ("data",) for error in problem.errors()):
            # A CloudEvent whose data is missing or not an object: as in binary mode.
            return NOT_AN_OBJECT
        return Rejection(DeadLetterReason.NOT_CLOUDEVENT, _describe(problem))
    expected = TOPIC_TYPE[topic]
    if envelope.type != expected:
        return Rejection(
            DeadLetterReason.WRONG_TYPE,
            f"topic {topic.value} carries {expected.value} events only",
        )
    if key is None or key != envelope.subject.encode():
        return Rejection(
            DeadLetterReason.KEY_MISMATCH, "the message key must equal the envelope subject"
        )
    try:
        data: InputData = INPUT_DATA[expected].model_validate(envelope.data)  # type: ignore[assignment]
    except ValidationError as problem:
        return Rejection(DeadLetterReason.INVALID_DATA, _describe(problem, prefix="data"))
    return Inbound(
        id=envelope.id,
        type=expected,
        order_id=envelope.subject,
        time=envelope.time,
        data=data,
        source=envelope.source,
    )


def _valid_structured(topic: Topic, key: bytes | None, value: bytes | None) -> Inbound | None:
    """The event, when the record is a valid structured one (nearly all are); else None."""
    if value is None or len(value) > MAX_INPUT_BYTES:
        return None
    expected = TOPIC_TYPE[topic]
    try:
        envelope: Any = envelope_model(expected).model_validate_json(value)
    except ValidationError:
        return None
    if key is None or key != envelope.subject.encode():
        return None
    return Inbound(
        id=envelope.id,
        type=expected,
        order_id=envelope.subject,
        time=envelope.time,
        data=envelope.data,
        source=envelope.source,
    )


def _from_headers(
    headers: Sequence[tuple[str, bytes | None]], value: bytes | None
) -> dict[str, Any] | Rejection:
    """Binary content mode: attributes in `ce_` headers, the value is the `data` itself."""
    document: dict[str, Any] = {}
    for name, raw in headers:
        attribute = name.removeprefix("ce_") if name.startswith("ce_") else None
        if name.lower() == CONTENT_TYPE_HEADER:
            attribute = "datacontenttype"
        if attribute is None or raw is None:
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            problem = f"header {printable_name(name)} is not UTF-8"
            return Rejection(DeadLetterReason.NOT_CLOUDEVENT, problem)
        document[attribute] = text
    data = _json(value)
    if isinstance(data, Rejection):
        return data
    if not isinstance(data, dict):
        return NOT_AN_OBJECT
    return document | {"data": data}


def _json_object(value: bytes | None) -> dict[str, Any] | Rejection:
    """Structured content mode: the value is the whole CloudEvent."""
    document = _json(value)
    if isinstance(document, Rejection | dict):
        return document
    return Rejection(DeadLetterReason.NOT_CLOUDEVENT, "a CloudEvent must be a JSON object")


def _json(value: bytes | None) -> Any:
    """The value as JSON, or the rejection that says why it is not."""
    if value is None:
        return Rejection(DeadLetterReason.NOT_JSON, "the message has no value")
    if len(value) > MAX_INPUT_BYTES:
        return Rejection(
            DeadLetterReason.TOO_LARGE,
            f"the value is {len(value)} bytes, above the limit of {MAX_INPUT_BYTES}",
        )
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as problem:
        return Rejection(DeadLetterReason.NOT_UTF8, f"value is not UTF-8 (byte {problem.start})")
    try:
        # The same parser as the valid path's (pydantic's): it also refuses numbers too long
        # to read and nesting too deep, with a position and never a value in its message.
        return from_json(text)
    except ValueError as problem:
        return Rejection(DeadLetterReason.NOT_JSON, f"value is not JSON: {problem}")


def _describe(problem: ValidationError, prefix: str = "") -> str:
    """Validation errors without the offending values, which may hold secrets."""
    parts = []
    for where, message in problems(problem):
        location = ".".join(str(part) for part in (prefix, *where) if part != "")
        parts.append(f"{location or 'value'}: {message}")
    return "; ".join(parts)[:MAX_ERROR_LENGTH]
