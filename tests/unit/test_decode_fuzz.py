"""Fuzzed decoding: arbitrary bytes and arbitrary JSON never crash it, and every rejection has a reason."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumers.decode import Rejection, decode
from schemas.events import Inbound
from schemas.names import INPUT_TOPICS, DeadLetterReason, EventType
from tests.factories import envelope, placed_data

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
topics = st.sampled_from(INPUT_TOPICS)
keys = st.none() | st.binary(max_size=20)
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def assert_handled(result: Inbound | Rejection) -> None:
    if isinstance(result, Rejection):
        assert result.reason in DeadLetterReason
        assert result.error.strip()
    else:
        assert isinstance(result, Inbound)


@FUZZ
@given(topics, keys, st.binary(max_size=300))
def test_arbitrary_bytes_are_decoded_or_rejected_with_a_reason(
    topic: Any, key: bytes | None, value: bytes
) -> None:
    assert_handled(decode(topic, key, value))


@FUZZ
@given(topics, keys, json_values)
def test_arbitrary_json_is_decoded_or_rejected_with_a_reason(
    topic: Any, key: bytes | None, value: Any
) -> None:
    assert_handled(decode(topic, key, json.dumps(value).encode()))


@FUZZ
@given(st.data())
def test_a_valid_event_with_any_field_replaced_is_decoded_or_rejected(data: st.DataObject) -> None:
    event = envelope(EventType.ORDER_PLACED, "ord-fuzz", placed_data())
    where = data.draw(st.sampled_from([*event, *(f"data.{k}" for k in event["data"])]))
    replacement = data.draw(json_values)
    if where.startswith("data."):
        event["data"][where.removeprefix("data.")] = replacement
    else:
        event[where] = replacement
    topic = data.draw(topics)
    assert_handled(decode(topic, b"ord-fuzz", json.dumps(event).encode()))


@FUZZ
@given(st.integers(min_value=1, max_value=5000))
def test_deeply_nested_json_is_rejected_not_a_crash(depth: int) -> None:
    value = ("[" * depth + "]" * depth).encode()
    result = decode(INPUT_TOPICS[0], b"k", value)
    assert isinstance(result, Rejection)
