"""Raw Kafka records to validated events, or to the reason they must be dead-lettered."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from schemas.events import INPUT_DATA, Envelope, Inbound, InputData
from schemas.limits import MAX_INPUT_BYTES
from schemas.names import TOPIC_TYPE, DeadLetterReason, Topic

MAX_ERROR_LENGTH = 1000


@dataclass(frozen=True)
class Rejection:
    """Why a record cannot be used: the `x-dlq-reason` code and a readable `x-dlq-error`."""

    reason: DeadLetterReason
    error: str


def decode(topic: Topic, key: bytes | None, value: bytes | None) -> Inbound | Rejection:
    """Validate one record of an input topic against the contract."""
    document = _json_object(value)
    if isinstance(document, Rejection):
        return document
    try:
        envelope = Envelope.model_validate(document)
    except ValidationError as problem:
        return Rejection(DeadLetterReason.NOT_CLOUDEVENT, _describe(problem))
    expected = TOPIC_TYPE[topic]
    if envelope.type != expected:
        return Rejection(
            DeadLetterReason.WRONG_TYPE,
            f"topic {topic.value} carries {expected.value}, got {envelope.type!r}",
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
        id=envelope.id, type=expected, order_id=envelope.subject, time=envelope.time, data=data
    )


def _json_object(value: bytes | None) -> dict[str, Any] | Rejection:
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
        document = json.loads(text)
    except json.JSONDecodeError as problem:
        return Rejection(DeadLetterReason.NOT_JSON, f"value is not JSON: {problem.msg}")
    except RecursionError:
        return Rejection(DeadLetterReason.NOT_JSON, "value is not JSON: nested too deeply")
    except ValueError:
        # json raises a bare ValueError for integers longer than sys.get_int_max_str_digits().
        return Rejection(DeadLetterReason.NOT_JSON, "value is not JSON: a number is too long")
    if not isinstance(document, dict):
        return Rejection(DeadLetterReason.NOT_CLOUDEVENT, "a CloudEvent must be a JSON object")
    return document


def _describe(problem: ValidationError, prefix: str = "") -> str:
    """Validation errors without the offending values, which may hold secrets."""
    parts = []
    for error in problem.errors(include_input=False, include_url=False, include_context=False):
        location = ".".join(str(part) for part in (prefix, *error["loc"]) if part != "")
        parts.append(f"{location or 'value'}: {error['msg']}")
    return "; ".join(parts)[:MAX_ERROR_LENGTH]
