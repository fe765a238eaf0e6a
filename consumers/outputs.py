"""Publishing to Kafka with broker acknowledgement: output events and dead letters."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from aiokafka import AIOKafkaProducer

from config import Settings

CLOUDEVENTS_JSON = b"application/cloudevents+json; charset=UTF-8"


@dataclass(frozen=True)
class Message:
    """One Kafka record to publish, exactly as it will travel."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] = field(default_factory=list)


def event_message(topic: str, key: str, value: str) -> Message:
    """A CloudEvent (JSON text) in structured mode; the key is the order id."""
    return Message(topic, key.encode(), value.encode(), [("content-type", CLOUDEVENTS_JSON)])


class KafkaOutputs:
    """An idempotent producer whose `send` returns only once the broker has every record."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        """Connect; aiokafka needs a running event loop to create its producer."""
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self._settings.kafka_bootstrap,
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
            max_batch_size=1024 * 1024,
            request_timeout_ms=15000,
            **self._settings.kafka_options(),
        )
        await self._producer.start()

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()

    async def ping(self) -> None:
        """Raise unless the broker answers a metadata request."""
        assert self._producer is not None, "KafkaOutputs.start() was not awaited"
        if not await asyncio.wait_for(self._producer.client.fetch_all_metadata(), 3):
            raise ConnectionError("no metadata from Kafka")

    async def send(self, messages: Sequence[Message]) -> None:
        if not messages:
            return
        assert self._producer is not None, "KafkaOutputs.start() was not awaited"
        pending = [
            await self._producer.send(m.topic, m.value, key=m.key, headers=m.headers)
            for m in messages
        ]
        await asyncio.gather(*pending)
