"""`dlq replay` reads a letter's headers whatever the original record carried in them."""

from __future__ import annotations

from types import SimpleNamespace

from cli.messages import _original_topic, _replays, value_omitted
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


def test_a_replay_count_too_long_to_be_ours_counts_as_none_instead_of_failing_the_listing() -> None:
    # int() refuses more than 4,300 digits: one such header would end `dlq list` and replay.
    assert _replays(letter((DeadLetterHeader.REPLAYS.value, b"7" * 5000))) == 0
    assert _replays(letter((DeadLetterHeader.REPLAYS.value, b"123456789"))) == 123456789


def test_only_a_letter_without_its_value_counts_as_value_omitted() -> None:
    # A record that carried its own `x-dlq-value-omitted` still has its value: replayable.
    omitted = (DeadLetterHeader.VALUE_OMITTED.value, b"2000000")
    assert value_omitted(SimpleNamespace(value=None, headers=[omitted]))
    assert not value_omitted(SimpleNamespace(value=b"{}", headers=[omitted]))
    assert not value_omitted(SimpleNamespace(value=None, headers=[]))
