"""Creating the contract's topics next to ones an earlier version created."""

from __future__ import annotations

from dataclasses import replace

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from config import Settings
from consumers.topics import contract_topics, ensure_topics
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


async def test_topics_added_later_get_the_partition_count_of_the_existing_input_topics(
    infra: Infra, names: Names
) -> None:
    settings = Settings(infra.kafka_bootstrap, infra.mongodb_uri, names.database, names.prefix)
    admin = AIOKafkaAdminClient(bootstrap_servers=infra.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(settings.topic(topic), 3, 1) for topic in FIRST_INPUTS])
        # Configured for 6 now: the topics already in use say 3.
        created = await ensure_topics(replace(settings, partitions=6))
        assert settings.topic(Topic.SHIPMENTS_STATUS_REPORTED) in created
        described = await admin.describe_topics(contract_topics(settings))
        assert {topic["topic"]: len(topic["partitions"]) for topic in described} == {
            name: 3 for name in contract_topics(settings)
        }
    finally:
        await admin.close()
