"""Creating the contract's topics next to ones an earlier version created."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from config import Settings
from consumers.topics import contract_topics, create_missing, ensure_topics
from schemas.names import INPUT_TOPICS, Topic
from tests.conftest import Infra, Names

pytestmark = pytest.mark.integration

# The input topics of contract 1.0; 1.1 added the tracking and status report topics.
FIRST_INPUTS = [
    topic
    for topic in INPUT_TOPICS
    if topic
    not in (
        Topic.FULFILLMENTS_TRACKING_UPDATED,
        Topic.SHIPMENTS_STATUS_REPORTED,
    )
]


# Each round creates the old topics just before the worker starts: a broker lists a topic
# created a moment ago only some time later, which one round in ten hit on the old code.
ROUNDS = 20


async def test_topics_added_later_get_the_partition_count_of_the_existing_input_topics(
    infra: Infra, names: Names
) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=infra.kafka_bootstrap)
    await admin.start()
    try:
        for round_ in range(ROUNDS):
            settings = Settings(
                infra.kafka_bootstrap, infra.mongodb_uri, names.database, f"{names.prefix}{round_}."
            )
            await admin.create_topics(
                [NewTopic(settings.topic(topic), 3, 1) for topic in FIRST_INPUTS]
            )
            # Configured for 6 now: the topics already in use say 3.
            created = await create_missing(replace(settings, partitions=6))
            assert settings.topic(Topic.SHIPMENTS_STATUS_REPORTED) in created.names
            assert not set(created.names) & {settings.topic(topic) for topic in FIRST_INPUTS}
            assert created.partitions == 3  # what `topics create` reports
            counts = await partition_counts(admin, contract_topics(settings))
            assert counts == {name: 3 for name in contract_topics(settings)}, f"round {round_}"
    finally:
        await admin.close()


async def partition_counts(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, int]:
    """Each topic's partition count, once the broker describes them all (it lags creation)."""
    for _ in range(100):
        described = await admin.describe_topics(names)
        if all(topic["partitions"] for topic in described):
            break
        await asyncio.sleep(0.1)
    return {topic["topic"]: len(topic["partitions"]) for topic in described}


async def test_a_topic_the_broker_refuses_to_create_ends_at_once_with_the_brokers_reason(
    infra: Infra, names: Names
) -> None:
    settings = Settings(infra.kafka_bootstrap, infra.mongodb_uri, names.database, names.prefix)
    with pytest.raises(RuntimeError, match=r"could not create topic .*[Rr]eplication factor"):
        await asyncio.wait_for(ensure_topics(replace(settings, replication_factor=99)), 10)
