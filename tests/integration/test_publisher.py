"""The publisher platforms embed, against the real broker."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.errors import MessageSizeTooLargeError

from config import Settings
from producers.publisher import FulfillmentPublisher
from tests.conftest import Infra, Names
from tests.integration.test_outputs_producer import published_records, small_limit_topic

pytestmark = pytest.mark.integration


async def test_a_send_the_broker_refused_leaves_later_sends_to_its_partition_going_out(
    infra: Infra, names: Names
) -> None:
    # aiokafka keeps a refused batch's sequence numbers: the same producer's next batch to the
    # partition would be refused as out of order, and so every later one.
    topic = await small_limit_topic(infra, names)
    settings = Settings(infra.kafka_bootstrap, infra.mongodb_uri, names.database, names.prefix)
    async with FulfillmentPublisher(settings) as publisher:
        await publisher.send_raw(topic, b"ord-1", b"before")
        with pytest.raises(MessageSizeTooLargeError):
            await publisher.send_raw(topic, b"ord-1", b"x" * 300_000)
        await asyncio.wait_for(publisher.send_raw(topic, b"ord-1", b"after"), 30)
        await publisher.send_many([(topic, b"ord-1", b"and more")])
    values = [value for _, value in await published_records(infra, topic)]
    assert values == [b"before", b"after", b"and more"]
