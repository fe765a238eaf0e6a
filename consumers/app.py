"""The FastStream worker: one batch subscriber over the five input topics, committed by hand."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from importlib.metadata import version
from typing import Any

from faststream import AckPolicy, FastStream
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.specification import AsyncAPI
from pydantic import BaseModel

from config import Settings
from consumers.outputs import KafkaOutputs
from consumers.pipeline import Pipeline
from consumers.relay import relay_forever
from consumers.sealing import Sealer
from consumers.topics import ensure_topics
from schemas.contracts import event_model
from schemas.names import INPUT_TOPICS, OUTPUT_TOPICS, TOPIC_TYPE
from store.orders import OrderStore, connect

log = logging.getLogger("fulfillment.worker")
__version__ = version("fulfillment-pipeline")


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
        include_in_schema=False,
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


def asyncapi_document() -> dict[str, Any]:
    """The AsyncAPI 3 document of the worker: what it consumes, publishes and dead-letters.

    The running app has one batch subscriber for all five topics; this declares each topic
    with its typed event, from the same topic names and models, so integrators see the contract.
    """
    broker = KafkaBroker(
        "localhost:9092",
        description="Kafka; every message is a CloudEvent in structured mode, keyed by the order id.",
    )
    for topic in INPUT_TOPICS:
        event_type = TOPIC_TYPE[topic]
        broker.subscriber(
            topic.value,
            title=f"{topic.value}:consume",
            description=f"`{event_type.value}` events; the worker's group commits only after saving and publishing.",
        )(_documented_handler(event_model(event_type)))
        broker.publisher(
            topic.dlq,
            title=f"{topic.dlq}:publish",
            description=(
                "Input that could not be used: original key, value and headers, plus x-dlq-reason, "
                "x-dlq-error, x-original-topic, x-original-partition, x-original-offset."
            ),
            schema=bytes,
        )
    for topic in OUTPUT_TOPICS:
        broker.publisher(
            topic.value,
            title=f"{topic.value}:publish",
            description=f"`{TOPIC_TYPE[topic].value}` events with deterministic ids.",
            schema=event_model(TOPIC_TYPE[topic]),
        )
    specification = AsyncAPI(
        broker,
        title="Order-fulfillment pipeline",
        version=__version__,
        description="Order, payment and fulfillment events in; fulfillment outcomes and status changes out.",
        schema_version="3.0.0",
    )
    document: dict[str, Any] = specification.to_specification().to_jsonable()
    return document


def _documented_handler(model: type[BaseModel]) -> Callable[..., Awaitable[None]]:
    async def consume(event: Any) -> None:
        """Declared for the specification only."""

    consume.__annotations__ = {"event": model, "return": None}
    return consume
