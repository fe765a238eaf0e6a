"""Reading a whole topic in a test: every record up to its end when asked, however slow the broker."""

from __future__ import annotations

import asyncio
import time

from aiokafka import AIOKafkaConsumer, ConsumerRecord

# Start-up, metadata and the fetches of a loaded machine fit in this, with room to spare.
READ_TIMEOUT_S = 30.0


async def read_topic(bootstrap: str, topic: str) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of `topic` up to its end offsets at the time of asking, partition by partition."""
    # Without a group, the consumer takes every partition of the topic itself.
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    try:
        deadline = time.monotonic() + READ_TIMEOUT_S
        while not consumer.assignment():
            assert time.monotonic() < deadline, f"{topic} has no partitions"
            await asyncio.sleep(0.1)
        partitions = sorted(consumer.assignment())
        ends = await consumer.end_offsets(partitions)
        records: list[ConsumerRecord[bytes, bytes]] = []
        while [p for p in partitions if await consumer.position(p) < ends[p]]:
            assert time.monotonic() < deadline, f"{topic} was not read to its end in time"
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                records.extend(batch)
        return records
    finally:
        await consumer.stop()
