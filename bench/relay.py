"""The CPU floor: aiokafka alone consumes the input topics, produces one record per request, commits.

No decoding, no store: what any Kafka pipeline in Python pays per event before doing its work.
"""

from __future__ import annotations

import asyncio
import signal

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from config import Settings
from schemas.names import INPUT_TOPICS, Topic


async def relay(settings: Settings) -> None:
    """Relay until SIGTERM: every `fulfillment.requested` record goes out once, then a commit."""
    stopping = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
    consumer = AIOKafkaConsumer(
        *(settings.topic(topic) for topic in INPUT_TOPICS),
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=settings.group_id,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all", linger_ms=5)
    requests = settings.topic(Topic.FULFILLMENTS_REQUESTED)
    out = settings.topic(Topic.FULFILLMENTS_COMPLETED)
    await producer.start()
    await consumer.start()
    try:
        while not stopping.is_set():
            batch = await consumer.getmany(timeout_ms=100, max_records=settings.batch_size)
            pending = [
                await producer.send(out, record.value, key=record.key)
                for partition, records in batch.items()
                if partition.topic == requests
                for record in records
            ]
            await asyncio.gather(*pending)
            if batch:
                await consumer.commit()
    finally:
        await consumer.stop()
        await producer.stop()


if __name__ == "__main__":
    asyncio.run(relay(Settings.from_env()))
