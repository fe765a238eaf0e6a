"""Prometheus metrics of the worker: messages, latency, dead letters, outbox backlog, lag."""

from __future__ import annotations

import collections
from collections.abc import Iterable
from functools import cache
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

MESSAGES = Counter(
    "fulfillment_messages_total",
    "Input records by topic and outcome (accepted, dead_letter).",
    ["topic", "outcome"],
)
EVENTS = Counter(
    "fulfillment_events_total",
    "Decoded input events by type and outcome (applied, duplicate).",
    ["type", "outcome"],
)
DEAD_LETTERS = Counter(
    "fulfillment_dead_letters_total",
    "Records sent to a dead-letter topic, by input topic and reason.",
    ["topic", "reason"],
)
OUTPUTS = Counter(
    "fulfillment_outputs_published_total", "Output events published, by topic.", ["topic"]
)
CONFLICTS = Counter(
    "fulfillment_save_conflicts_total", "Orders re-decided after losing a compare-and-set race."
)
RETRIES = Counter(
    "fulfillment_retries_total", "Retries of an operation during an outage.", ["operation"]
)
BATCH_SECONDS = Histogram(
    "fulfillment_batch_seconds",
    "Time to handle one batch: decode, load, decide, save, publish.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
BATCH_RECORDS = Histogram(
    "fulfillment_batch_records", "Records per batch.", buckets=(1, 5, 10, 50, 100, 250, 500, 1000)
)
OUTBOX_BACKLOG = Gauge(
    "fulfillment_outbox_backlog_orders",
    "Orders whose outputs were saved but not yet sent, older than the relay's grace.",
)
LAG = Gauge(
    "fulfillment_consumer_lag",
    "Records behind the end of each assigned partition.",
    ["topic", "partition"],
)
PARKED = Gauge(
    "fulfillment_parked_orders",
    "Orders whose outputs this worker cannot publish yet (unknown sealing key, output refused); "
    "the relay retries them.",
)
ISOLATED = Counter(
    "fulfillment_isolations_total",
    "Batches or orders re-run record by record because one record failed on its own.",
)
STALLED_SECONDS = Gauge(
    "fulfillment_stalled_seconds",
    "How long the batch in hand has been waiting (an outage being waited out); 0 when idle.",
)
LAST_PROGRESS = Gauge(
    "fulfillment_last_progress_timestamp_seconds", "When this worker last finished a batch."
)
ID_REUSED = Counter(
    "fulfillment_event_id_reused_total",
    "Events not applied because their id was already applied from another source.",
)


@cache
def labelled(metric: Any, *labels: str) -> Any:
    """`metric.labels(*labels)`, looked up once: the lookup costs more than the increment."""
    return metric.labels(*labels)


def count(metric: Any, labels: Iterable[tuple[str, ...]]) -> None:
    """Add to `metric` how often each label set occurs in `labels`: one increment (and lock)
    per label set in a batch, not one per event."""
    for key, times in collections.Counter(labels).items():
        labelled(metric, *key).inc(times)
