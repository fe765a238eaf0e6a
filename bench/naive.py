"""The naive peer: what every team writes first. Per message: one find, one replace, one awaited publish.

It runs the same lifecycle as our pipeline and keeps its guarantees (compare-and-set, commit
after the work), but handles one message at a time with FastStream's default per-message flow.
"""

from __future__ import annotations

import asyncio
import logging

from faststream import AckPolicy, FastStream
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from config import Settings
from consumers.decode import Rejection, decode
from consumers.pipeline import utc_now
from consumers.sealing import Sealer
from lifecycle import apply
from schemas.document import OrderDocument, OutboxMessage
from schemas.names import INPUT_TOPICS
from store.orders import connect


def build(settings: Settings) -> FastStream:
    # No per-message access log: the comparison is about round trips, not logging.
    broker = KafkaBroker(settings.kafka_bootstrap, logger=None)
    orders = connect(settings.mongodb_uri)[settings.database]["orders"]
    sealer = Sealer.from_env()
    topics = {settings.topic(topic): topic for topic in INPUT_TOPICS}

    @broker.subscriber(
        *topics,
        group_id=settings.group_id,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
    )
    async def handle(message: KafkaMessage) -> None:
        record = message.raw_message
        assert not isinstance(record, tuple)
        event = decode(topics[record.topic], record.key, record.value)
        if isinstance(event, Rejection):
            return
        event = sealer.seal(event)
        raw = await orders.find_one({"_id": event.order_id})
        order = OrderDocument.model_validate(raw) if raw else OrderDocument(_id=event.order_id)
        loaded = order.version
        result = apply(order, event, utc_now())
        if not result.changed:
            return
        order.version = loaded + 1
        if loaded == 0:
            await orders.insert_one(order.to_mongo())
        elif (
            await orders.replace_one({"_id": order.id, "version": loaded}, order.to_mongo())
        ).matched_count == 0:
            raise RuntimeError("lost a race; the message is read again")
        for output in map(OutboxMessage.of, result.outputs):
            value = sealer.open_output(output)
            await broker.publish(
                value.encode(), settings.topic(output.topic), key=output.key.encode()
            )

    return FastStream(broker)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(build(Settings.from_env()).run())
