"""An output's `sequence`: written into its JSON as a fresh rendering would, and counted in its
size before the shell numbers it."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from lifecycle import record
from schemas.cloudevents import SEQUENCE_BYTES, CloudEvent, numbered, sequence, to_json
from schemas.events import OrderStatusChanged
from schemas.names import SERVICE_SOURCE, EventType, OrderStatus, PaymentStatus


def event() -> CloudEvent:
    return CloudEvent(
        id="out-1",
        type=EventType.ORDER_STATUS_CHANGED,
        source=SERVICE_SOURCE,
        subject="ord-1",
        time=datetime(2026, 11, 24, 10, 0, tzinfo=UTC),
        data=OrderStatusChanged(
            order_id="ord-1",
            order_number="#1",
            from_status=None,
            to_status=OrderStatus.UNFULFILLED,
            payment_status=PaymentStatus.CAPTURED,
        ),
    )


def test_a_sequence_sorts_by_version_then_place_as_text() -> None:
    places = [sequence(2, 10), sequence(10, 0), sequence(2, 9), sequence(1, 999_999)]
    assert sorted(places) == [
        sequence(1, 999_999),
        sequence(2, 9),
        sequence(2, 10),
        sequence(10, 0),
    ]
    assert {len(place) for place in places} == {len(sequence(0, 0))}


@pytest.mark.parametrize("written_first", [True, False], ids=["json cached", "json not yet"])
def test_a_numbered_events_json_is_the_fresh_rendering_with_the_sequence(
    written_first: bool,
) -> None:
    original = event()
    if written_first:
        to_json(original)
    place = sequence(3, 0)
    result = to_json(numbered([original], 3)[0])
    assert result == to_json(replace(original, sequence=place))
    assert json.loads(result)["sequence"] == place
    assert len(result) == len(to_json(original)) + SEQUENCE_BYTES


def test_an_output_within_the_sequences_width_of_the_limit_is_already_too_large(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    unnumbered = event()
    size = len(to_json(unnumbered).encode())
    monkeypatch.setattr(record, "MAX_OUTPUT_BYTES", size + SEQUENCE_BYTES - 1)
    assert record.size_problem(unnumbered) is not None
    monkeypatch.setattr(record, "MAX_OUTPUT_BYTES", size + SEQUENCE_BYTES)
    assert record.size_problem(unnumbered) is None
    assert record.size_problem(numbered([unnumbered], 1)[0]) is None
