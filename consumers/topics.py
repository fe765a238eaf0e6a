"""Creating the contract's topics, with enough partitions, before anything consumes them."""

from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from config import Settings
from schemas.names import DLQ_SUFFIX, INPUT_TOPICS, OUTPUT_TOPICS

TOPIC_ALREADY_EXISTS = 36


def contract_topics(settings: Settings) -> list[str]:
    """Every topic the worker reads or writes: inputs, their dead-letter topics, outputs."""
    inputs = [settings.topic(topic) for topic in INPUT_TOPICS]
    return [
        *inputs,
        *(f"{name}{DLQ_SUFFIX}" for name in inputs),
        *(settings.topic(t) for t in OUTPUT_TOPICS),
    ]


async def ensure_topics(settings: Settings) -> list[str]:
    """Create the missing contract topics; return the names created."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap, **settings.kafka_options()
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [name for name in contract_topics(settings) if name not in existing]
        if not missing:
            return []
        response = await admin.create_topics(
            [NewTopic(name, settings.partitions, settings.replication_factor) for name in missing]
        )
        for name, code, *_ in response.topic_errors:
            if code not in (0, TOPIC_ALREADY_EXISTS):
                raise RuntimeError(f"could not create topic {name}: error code {code}")
        return missing
    finally:
        await admin.close()
