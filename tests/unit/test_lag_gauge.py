"""`fulfillment_consumer_lag`: every partition read here, named as the other metrics name topics."""

from __future__ import annotations

from aiokafka import ConsumerRecord, TopicPartition
from prometheus_client import REGISTRY

from consumers.app import LagGauge


class Consumer:
    """aiokafka's consumer as the gauge reads it: the assignment and each partition's end."""

    def __init__(self, ends: dict[TopicPartition, int]) -> None:
        self.ends = ends

    def assignment(self) -> set[TopicPartition]:
        return set(self.ends)

    def highwater(self, position: TopicPartition) -> int | None:
        return self.ends.get(position)


def record(partition: int, offset: int) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord("p.orders.placed", partition, offset, 0, 0, b"k", b"v", None, 1, 1, [])


def lag(partition: int) -> float | None:
    return REGISTRY.get_sample_value(
        "fulfillment_consumer_lag", {"topic": "orders.placed", "partition": str(partition)}
    )


def test_lag_is_reported_for_every_partition_read_here_even_without_records_in_this_batch() -> None:
    gauge = LagGauge({"p.orders.placed": "orders.placed"})
    first, second = TopicPartition("p.orders.placed", 0), TopicPartition("p.orders.placed", 1)
    consumer = Consumer({first: 10, second: 5})
    gauge.record(consumer, [record(0, 6), record(1, 4)])
    assert (lag(0), lag(1)) == (3, 0)
    consumer.ends[first] = 12  # more arrived; this batch had none of partition 0
    gauge.record(consumer, [record(1, 4)])
    assert (lag(0), lag(1)) == (5, 0)


def test_a_partition_a_rebalance_took_away_is_no_longer_reported() -> None:
    gauge = LagGauge({"p.orders.placed": "orders.placed"})
    first, second = TopicPartition("p.orders.placed", 0), TopicPartition("p.orders.placed", 1)
    gauge.record(Consumer({first: 10, second: 5}), [record(0, 6), record(1, 4)])
    gauge.record(Consumer({second: 5}), [])
    assert lag(0) is None and lag(1) == 0
