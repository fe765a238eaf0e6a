"""Deleting a finished run's private topics by prefix, and nothing else."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from config import Settings
from consumers.topics import contract_topics, delete_prefixed_topics, ensure_topics
from tests.conftest import Infra, Names


async def _topics(infra: Infra) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=infra.kafka_bootstrap)
    await admin.start()
    try:
        return list(await admin.list_topics())
    finally:
        await admin.close()


async def test_only_the_topics_under_the_given_prefixes_are_deleted(
    infra: Infra, names: Names
) -> None:
    doomed = Settings(infra.kafka_bootstrap, infra.mongodb_uri, topic_prefix=f"{names.prefix}a.")
    kept = Settings(infra.kafka_bootstrap, infra.mongodb_uri, topic_prefix=f"{names.prefix}b.")
    for settings in (doomed, kept):
        await ensure_topics(settings)
    # A broker lists a topic created a moment ago only shortly after; deleting goes by its list.
    async with asyncio.timeout(30):
        while not set(contract_topics(doomed)) | set(contract_topics(kept)) <= set(
            await _topics(infra)
        ):
            await asyncio.sleep(0.2)

    deleted = await delete_prefixed_topics(doomed, [doomed.topic_prefix])

    assert deleted == len(contract_topics(doomed))
    # The broker deletes in the background; its metadata says so shortly after.
    async with asyncio.timeout(30):
        while [t for t in await _topics(infra) if t.startswith(doomed.topic_prefix)]:
            await asyncio.sleep(0.2)
    assert set(contract_topics(kept)) <= set(await _topics(infra))


async def test_an_empty_prefix_that_would_match_every_topic_is_refused(infra: Infra) -> None:
    settings = Settings(infra.kafka_bootstrap, infra.mongodb_uri)
    with pytest.raises(ValueError, match="non-empty prefixes"):
        await delete_prefixed_topics(settings, [""])
    with pytest.raises(ValueError, match="non-empty prefixes"):
        await delete_prefixed_topics(settings, [])
