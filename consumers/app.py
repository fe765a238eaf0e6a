"""The FastStream worker: one batch subscriber over the five input topics, committed by hand."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from faststream import AckPolicy, FastStream
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from config import Settings
from consumers.outputs import KafkaOutputs
from consumers.pipeline import Pipeline
from consumers.relay import relay_forever
from consumers.sealing import Sealer
from consumers.topics import ensure_topics
from schemas.names import INPUT_TOPICS
from store.orders import OrderStore, connect

log = logging.getLogger("fulfillment.worker")


def build_app(settings: Settings, sealer: Sealer | None = None) -> FastStream:
    """Wire the pipeline to Kafka and MongoDB; nothing connects until the app starts."""
    sealer = sealer or Sealer.from_env()
    broker = KafkaBroker(
        settings.kafka_bootstrap, graceful_timeout=30.0, security=settings.broker_security()
    )
    store = OrderStore(connect(settings.mongodb_uri), settings.database)
    outputs = KafkaOutputs(settings)
    pipeline = Pipeline(settings, store, outputs, sealer)
    relay: list[asyncio.Task[None]] = []

    # NACK_ON_ERROR: an offset is committed only after the whole batch is saved and published;
    # on an error the batch's partitions are rewound and the records are read again.
    @broker.subscriber(
        *(settings.topic(topic) for topic in INPUT_TOPICS),
        group_id=settings.group_id,
        batch=True,
        max_records=settings.batch_size,
        batch_timeout_ms=50,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        max_poll_interval_ms=600_000,
    )
    async def handle_batch(message: KafkaMessage) -> None:
        records = message.raw_message
        await pipeline.handle(records if isinstance(records, tuple) else (records,))

    app = FastStream(broker, logger=log)

    @app.on_startup
    async def prepare() -> None:
        created = await ensure_topics(settings)
        if created:
            log.info("created %d topics with %d partitions", len(created), settings.partitions)
        await store.ensure_indexes()
        await outputs.start()

    @app.after_startup
    async def start_relay() -> None:
        relay.append(asyncio.create_task(relay_forever(pipeline)))

    @app.after_shutdown
    async def stop() -> None:
        for task in relay:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await outputs.stop()
        await store.client.close()

    return app
