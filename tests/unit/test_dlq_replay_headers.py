"""`dlq replay` reads a letter's headers whatever the original record carried in them."""

from __future__ import annotations

from types import SimpleNamespace

from cli.messages import _original_topic, _replays
from schemas.names import DeadLetterHeader


def letter(*headers: tuple[str, bytes | None]) -> SimpleNamespace:
    return SimpleNamespace(topic="pfx.orders.placed.dlq", headers=list(headers))


def test_a_replay_count_without_a_value_or_not_a_number_counts_as_none() -> None:
    assert _replays(letter((DeadLetterHeader.REPLAYS.value, None))) == 0
    assert _replays(letter((DeadLetterHeader.REPLAYS.value, b"\xb2"))) == 0
    assert _replays(letter((DeadLetterHeader.REPLAYS.value, b"2"))) == 2


def test_an_original_topic_without_a_value_or_not_utf8_is_the_dead_letter_topics_source() -> None:
    original = DeadLetterHeader.ORIGINAL_TOPIC.value
    assert _original_topic(letter((original, None))) == "pfx.orders.placed"
    assert _original_topic(letter((original, b"\xff"))) == "pfx.orders.placed"
    assert _original_topic(letter()) == "pfx.orders.placed"
    assert _original_topic(letter((original, b"pfx.payments.captured"))) == "pfx.payments.captured"
