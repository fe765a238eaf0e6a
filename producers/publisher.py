"""A typed publisher of the contract's input events, for platforms and partners to embed."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaProducer

from config import Settings
from schemas.cloudevents import CONTENT_TYPE, CONTENT_TYPE_HEADER, cloud_event, envelope_model
from schemas.events import (
    INPUT_DATA,
    FulfillmentCancelRequested,
    FulfillmentRequested,
    FulfillmentTrackingUpdated,
    OrderCancelRequested,
    OrderPlaced,
    PaymentCaptured,
    ShipmentStatusReported,
    WireModel,
)
from schemas.limits import MAX_INPUT_BYTES, MAX_RECORD_BYTES, record_bytes
from schemas.names import TYPE_TOPIC, EventType

__all__ = ["EventTooLarge", "FulfillmentPublisher", "PublisherClosed", "SendFailed", "cloud_event"]


class EventTooLarge(ValueError):
    """An event above the contract's size limit: the worker would dead-letter it unapplied."""


# The headers of a structured-mode record: what `publish` sends, and `send_raw` by default.
STRUCTURED_HEADERS = [(CONTENT_TYPE_HEADER, CONTENT_TYPE.encode())]
# How long sends wait, after a failure, for the failed producer to deliver or fail what it
# holds: their order is kept within this; a longer wait would hold up every other order.
FAILED_PRODUCER_WAIT_S = 5.0


class SendFailed(Exception):
    """The broker did not acknowledge the event: it may or may not have arrived. Sending it
    again with `event_id` is safe, since the pipeline applies an event id once; the Kafka
    client's error is the `__cause__`."""

    def __init__(self, event_id: str, cause: BaseException) -> None:
        super().__init__(
            f"event {event_id} was not acknowledged ({type(cause).__name__}):"
            f" send it again with event_id={event_id!r}"
        )
        self.event_id = event_id


class PublisherClosed(RuntimeError):
    """The publisher was used outside its `async with` block."""


class FulfillmentPublisher:
    """Validates and publishes input events; keyed by order id, acknowledged by the broker.

    Use as `async with FulfillmentPublisher(Settings.from_env(), source="urn:shop") as publish:`,
    then, say, `await publish.tracking_updated("ord-1", FulfillmentTrackingUpdated(
    fulfillment_id="ful-1", tracking_number="AWB-2"))`.
    """

    def __init__(self, settings: Settings, source: str = "urn:fulfillment-publisher") -> None:
        self.settings = settings
        self.source = source
        self._producer: AIOKafkaProducer | None = None
        # The current producer, once a send failed on it: the next send replaces it.
        self._failed: AIOKafkaProducer | None = None
        self._replacing = asyncio.Lock()
        self._retired: set[asyncio.Task[None]] = set()
        self._retiring: tuple[AIOKafkaProducer, asyncio.Task[None]] | None = None
        self._closed = False

    async def __aenter__(self) -> FulfillmentPublisher:
        self._closed = False
        self._producer = self._new_producer()
        try:
            await self._producer.start()
        except BaseException:
            await _stop_quietly(self._producer)  # its connections, opened or half-opened
            self._producer = None
            raise
        return self

    async def __aexit__(self, *_: object) -> None:
        self._closed = True
        # After a replacement under way: the producer it started is the one to stop.
        async with self._replacing:
            if self._producer is not None:
                await self._producer.stop()
        if self._retired:
            await asyncio.gather(*self._retired)

    def _new_producer(self) -> AIOKafkaProducer:
        return AIOKafkaProducer(
            bootstrap_servers=self.settings.kafka_bootstrap,
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
            **self.settings.kafka_options(),
        )

    async def _ready_producer(self) -> AIOKafkaProducer:
        """The producer to send with: a new one after a send failed. aiokafka (0.14) keeps the
        sequence numbers of a batch the broker refused or that expired unsent, and the broker
        then refuses every later batch of that producer to the partition
        (aio-libs/aiokafka#1017): without this, one failure would fail every later send."""
        self._check_open()
        # One replacement for sends that wait together.
        async with self._replacing:
            self._check_open()  # closed while this send waited for the lock
            if self._failed is not None and self._failed is self._producer:
                # What the failed producer still holds goes out (or fails) before anything
                # sent after it, so that one order's events keep their order; for a while,
                # then the new producer goes on regardless (every sender waits meanwhile).
                await asyncio.wait({self._retire(self._producer)}, timeout=FAILED_PRODUCER_WAIT_S)
                self._check_open()  # closed meanwhile: no producer that nothing would stop
                self._producer = self._new_producer()
                # An outage raises here; the unstarted producer counts as failed, for the next
                # send to replace.
                self._failed = self._producer
                await self._producer.start()
                self._failed = None
            return self._producer

    def _check_open(self) -> None:
        if self._producer is None or self._closed:
            # Never a producer of its own that nothing would stop.
            raise PublisherClosed("use FulfillmentPublisher inside `async with`, not after it")

    def _retire(self, producer: AIOKafkaProducer) -> asyncio.Task[None]:
        """Stop a failed producer, once (a sender that gave up waiting leaves it stopping):
        stopping delivers (or fails) what it holds queued; awaited on exit."""
        if self._retiring is not None and self._retiring[0] is producer:
            return self._retiring[1]
        task = asyncio.create_task(_stop_quietly(producer))
        self._retired.add(task)
        task.add_done_callback(self._retired.discard)
        self._retiring = (producer, task)
        return task

    @contextlib.asynccontextmanager
    async def _sending(self) -> AsyncIterator[AIOKafkaProducer]:
        producer = await self._ready_producer()
        try:
            yield producer
        except BaseException:
            # A send that failed on a producer already replaced says nothing of the new one.
            if producer is self._producer:
                self._failed = producer
            raise

    async def order_placed(self, order_id: str, data: OrderPlaced, **envelope: Any) -> str:
        return await self.publish(EventType.ORDER_PLACED, order_id, data, **envelope)

    async def payment_captured(self, order_id: str, data: PaymentCaptured, **envelope: Any) -> str:
        return await self.publish(EventType.PAYMENT_CAPTURED, order_id, data, **envelope)

    async def fulfillment_requested(
        self, order_id: str, data: FulfillmentRequested, **envelope: Any
    ) -> str:
        return await self.publish(EventType.FULFILLMENT_REQUESTED, order_id, data, **envelope)

    async def fulfillment_cancel_requested(
        self, order_id: str, data: FulfillmentCancelRequested, **envelope: Any
    ) -> str:
        return await self.publish(
            EventType.FULFILLMENT_CANCEL_REQUESTED, order_id, data, **envelope
        )

    async def order_cancel_requested(
        self, order_id: str, data: OrderCancelRequested, **envelope: Any
    ) -> str:
        return await self.publish(EventType.ORDER_CANCEL_REQUESTED, order_id, data, **envelope)

    async def tracking_updated(
        self, order_id: str, data: FulfillmentTrackingUpdated, **envelope: Any
    ) -> str:
        """A shipment's new carrier, tracking number or link (contract 1.1)."""
        return await self.publish(
            EventType.FULFILLMENT_TRACKING_UPDATED, order_id, data, **envelope
        )

    async def shipment_status_reported(
        self, order_id: str, data: ShipmentStatusReported, **envelope: Any
    ) -> str:
        """Where a shipment is, as its carrier or partner reports it (contract 1.1)."""
        return await self.publish(EventType.SHIPMENT_STATUS_REPORTED, order_id, data, **envelope)

    async def publish(
        self,
        event_type: EventType,
        order_id: str,
        data: WireModel,
        event_id: str | None = None,
        time: datetime | None = None,
    ) -> str:
        """Publish one event; returns its id. An event the worker would refuse (an empty order
        id, say) raises pydantic's ValidationError, a ValueError, before anything is sent; so
        does one too large (`EventTooLarge`). A send not acknowledged raises `SendFailed`,
        which carries the event id to send it again with (give your own `event_id` if you
        may cancel the call: a cancelled send may still arrive)."""
        if not isinstance(data, INPUT_DATA[event_type]):
            raise TypeError(f"{event_type.value} takes {INPUT_DATA[event_type].__name__}")
        if event_id == "":
            raise ValueError("event_id is empty: give one, or None for a new one")
        event = cloud_event(event_type, order_id, data, self.source, event_id, time)
        # The envelope as the worker validates it: the data alone says nothing of the order
        # id, the source or the event id.
        envelope_model(event_type).model_validate(event)
        # Non-ASCII as UTF-8, not \u escapes: what is measured is what is sent, no larger.
        value = json.dumps(event, ensure_ascii=False).encode()
        # The whole record (key and header too): above Kafka's default limit the client refuses
        # it before sending, and resending could never help.
        size = record_bytes(order_id.encode(), value, STRUCTURED_HEADERS)
        if len(value) > MAX_INPUT_BYTES or size > MAX_RECORD_BYTES:
            raise EventTooLarge(
                f"the event would be a record of {size:,} bytes, above the {MAX_RECORD_BYTES:,}"
                " a Kafka record may carry: split it (fewer lines per fulfillment, say)"
            )
        sent_id = str(event["id"])
        try:
            await self.send_raw(
                self.settings.topic(TYPE_TOPIC[event_type]), order_id.encode(), value
            )
        except PublisherClosed:
            raise
        except Exception as problem:
            raise SendFailed(sent_id, problem) from problem
        return sent_id

    async def send_many(self, records: Sequence[tuple[str, bytes | None, bytes | None]]) -> None:
        """Send many records, then wait for every ack (faster than one round trip each)."""
        headers = STRUCTURED_HEADERS
        async with self._sending() as producer:
            pending = [
                await producer.send(topic, value, key=key, headers=headers)
                for topic, key, value in records
            ]
            await asyncio.gather(*pending)

    async def send_raw(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        """Send bytes as they are (for replays and tests); waits for the broker's ack."""
        async with self._sending() as producer:
            await producer.send_and_wait(
                topic,
                value,
                key=key,
                headers=headers if headers is not None else STRUCTURED_HEADERS,
            )


async def _stop_quietly(producer: AIOKafkaProducer) -> None:
    with contextlib.suppress(Exception):
        await producer.stop()
