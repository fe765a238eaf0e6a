"""Publishing to Kafka with broker acknowledgement: output events and dead letters."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from config import Settings
from consumers.retry import is_outage
from schemas.cloudevents import CONTENT_TYPE
from schemas.limits import MAX_RECORD_BYTES

CLOUDEVENTS_JSON = CONTENT_TYPE.encode()


@dataclass(frozen=True)
class Message:
    """One Kafka record to publish, exactly as it will travel."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]] = field(default_factory=list)

    @property
    def size(self) -> int:
        """Bytes of key, value and headers: what counts against the broker's record limit."""
        headers = sum(len(name) + len(value or b"") for name, value in self.headers)
        return len(self.key or b"") + len(self.value or b"") + headers


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
            # Our own budget (MAX_RECORD_BYTES) is checked first; this is the client's backstop.
            max_request_size=MAX_RECORD_BYTES + 48_576,
            # The settings may shorten the request timeout; they win over our default.
            **({"request_timeout_ms": 15000} | self._settings.kafka_options()),
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

    async def send(self, messages: Sequence[Message]) -> list[BaseException | None]:
        """Send all and await the broker: outages raise; a record's own refusal is in its slot."""
        results: list[BaseException | None] = [None] * len(messages)
        if not messages:
            return results
        assert self._producer is not None, "KafkaOutputs.start() was not awaited"
        pending: list[tuple[int, asyncio.Future[Any]]] = []
        for index, m in enumerate(messages):
            try:
                future = await self._producer.send(m.topic, m.value, key=m.key, headers=m.headers)
            except KafkaError as problem:
                if is_outage(problem):
                    raise
                results[index] = problem
            else:
                pending.append((index, future))
        outcomes = await asyncio.gather(*(f for _, f in pending), return_exceptions=True)
        for (index, _), outcome in zip(pending, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                if not isinstance(outcome, Exception) or is_outage(outcome):
                    raise outcome
                results[index] = outcome
        return results
