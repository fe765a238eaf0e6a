"""The JSON log keeps noisy libraries to one line per kind of message per interval."""

from __future__ import annotations

import io
import json
import logging
import os
import sys

import pytest

from consumers.logs import JsonFormatter, RateLimitFilter


class Clock:
    """A hand-moved clock, so the filter's interval needs no sleeping."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def record(name: str, template: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord(name, logging.ERROR, __file__, 1, template, args, None)


def test_one_record_per_logger_and_template_per_interval_gets_through() -> None:
    clock = Clock()
    limit = RateLimitFilter(interval=10, clock=clock)
    template = 'Unable connect to "%s:%s": %s'
    passed = []
    for second in range(30):
        clock.now = second / 2  # 2 a second for 15 s
        passed.append(limit.filter(record("aiokafka.conn", template, "h", second, "refused")))
    assert passed.count(True) == 2  # at 0 s and at 10 s
    assert passed[0] and passed[20]


def test_the_next_line_let_through_counts_the_suppressed_ones() -> None:
    clock = Clock()
    limit = RateLimitFilter(interval=10, clock=clock)
    first = record("aiokafka", "Unable to update metadata from %s", [1])
    assert limit.filter(first) and not hasattr(first, "suppressed")
    for _ in range(139):
        clock.now += 0.05
        assert not limit.filter(record("aiokafka", "Unable to update metadata from %s", [1]))
    clock.now = 10.0
    later = record("aiokafka", "Unable to update metadata from %s", [1])
    assert limit.filter(later)
    assert later.suppressed == 139  # type: ignore[attr-defined]
    shown = json.loads(JsonFormatter().format(later))
    assert shown["suppressed"] == 139


def test_different_templates_and_loggers_are_limited_separately() -> None:
    limit = RateLimitFilter(interval=10, clock=Clock())
    assert limit.filter(record("aiokafka.conn", "a %s", 1))
    assert limit.filter(record("aiokafka.conn", "b %s", 1))
    assert limit.filter(record("aiokafka.client", "a %s", 1))
    assert not limit.filter(record("aiokafka.conn", "a %s", 2))


def test_our_own_loggers_and_other_libraries_are_never_limited() -> None:
    limit = RateLimitFilter(interval=10, clock=Clock())
    for _ in range(5):
        assert limit.filter(record("fulfillment.retry", "store unavailable, retry %d", 1))
        assert limit.filter(record("aiokafkaesque", "not a child of aiokafka", 1))
    assert limit.filter(record("faststream.access.kafka", "x", 1))
    assert not limit.filter(record("faststream.access.kafka", "x", 1))


def test_the_filter_keeps_a_bounded_memory_of_preformatted_messages() -> None:
    clock = Clock()
    limit = RateLimitFilter(interval=1, clock=clock)
    for index in range(5 * RateLimitFilter.MAX_KEYS):
        clock.now = index * 0.01
        limit.filter(record("faststream", f"message {index}"))
    assert len(limit._last) <= RateLimitFilter.MAX_KEYS + 1


def test_configured_worker_logs_let_one_aiokafka_line_through_per_interval(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from consumers import logs

    root = logging.getLogger()
    saved = (root.handlers[:], root.level, logging.getLogger("aiokafka").level)
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    try:
        logs.configure("INFO")
        noisy = logging.getLogger("aiokafka.conn")
        for _ in range(100):
            noisy.error('Unable connect to "%s:%s": %s', "127.0.0.1", 9092, "refused")
    finally:
        root.handlers[:], level, kafka_level = saved
        root.setLevel(level)
        logging.getLogger("aiokafka").setLevel(kafka_level)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(lines) == 1 and lines[0]["logger"] == "aiokafka.conn"


def test_each_line_names_the_process_that_wrote_it() -> None:
    # `worker --processes N` writes every worker's lines to one stream.
    line = json.loads(JsonFormatter().format(record("fulfillment.pipeline", "batch")))
    assert line["pid"] == os.getpid()
