"""Outputs land on the partition Kafka's default partitioner (and Java clients) would pick."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given, settings
from hypothesis import strategies as st

from consumers.outputs import partition_for


@settings(deadline=None)  # a stall of a shared machine is not a slow partitioner
@given(st.binary(min_size=0, max_size=200), st.integers(min_value=1, max_value=64))
def test_a_keyed_output_goes_where_the_default_partitioner_sends_it(key: bytes, count: int) -> None:
    partitions = list(range(count))
    assert partition_for(key, partitions) == DefaultPartitioner()(key, partitions, partitions)


def test_an_output_without_a_key_goes_to_one_of_the_partitions() -> None:
    assert {partition_for(None, [0, 1, 2]) for _ in range(200)} <= {0, 1, 2}
