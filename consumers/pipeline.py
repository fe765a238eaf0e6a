"""One batch of input records: decode, dead-letter, apply the lifecycle, save, publish."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from config import Settings
from consumers import metrics
from consumers.decode import Rejection, decode
from consumers.outputs import Message, event_message
from consumers.retry import retrying
from consumers.sealing import Sealer
from lifecycle import apply
from schemas.document import OrderDocument, PendingOutbox
from schemas.events import FulfillmentRequested, Inbound
from schemas.names import DLQ_SUFFIX, INPUT_TOPICS
from store.orders import Change, OrderStore

log = logging.getLogger("fulfillment.pipeline")


class Record(Protocol):
    """What the pipeline needs of a consumed Kafka record (aiokafka's ConsumerRecord fits)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]]


class Outputs(Protocol):
    async def send(self, messages: Sequence[Message]) -> None: ...


@dataclass
class BatchReport:
    """What one batch did, for metrics and the demo."""

    records: int = 0
    applied: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    published: int = 0
    conflicts: int = 0


def utc_now() -> datetime:
    """Now, at the millisecond precision that BSON keeps."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


class Pipeline:
    """The imperative shell around `lifecycle`: everything between Kafka and MongoDB."""

    def __init__(
        self,
        settings: Settings,
        store: OrderStore,
        outputs: Outputs,
        sealer: Sealer,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.settings = settings
        self.store = store
        self.outputs = outputs
        self.sealer = sealer
        self.clock = clock
        self._topics = {settings.topic(topic): topic for topic in INPUT_TOPICS}

    async def handle(self, records: Sequence[Record]) -> BatchReport:
        """Process a batch; when this returns, every effect is saved and acknowledged."""
        started = time.perf_counter()
        report = BatchReport(records=len(records))
        events, dead = self._decode_all(records)
        await retrying("publishing dead letters", self.outputs.send, dead)
        report.dead_letters = len(dead)
        await self._apply(events, report)
        log.debug(
            "batch in %.1f ms: %d records, %d orders, %d applied, %d duplicates, %d published, %d conflicts",
            (time.perf_counter() - started) * 1000,
            report.records,
            len({event.order_id for event in events}),
            report.applied,
            report.duplicates,
            report.published,
            report.conflicts,
        )
        return report

    def _decode_all(self, records: Sequence[Record]) -> tuple[list[Inbound], list[Message]]:
        """The batch's usable events (credentials sealed) and the dead letters of the rest."""
        events: list[Inbound] = []
        dead: list[Message] = []
        for record in records:
            topic = self._topics[record.topic]
            result = decode(topic, record.key, record.value)
            if isinstance(result, Rejection):
                dead.append(dead_letter(record, result))
                metrics.MESSAGES.labels(topic.value, "dead_letter").inc()
                metrics.DEAD_LETTERS.labels(topic.value, result.reason.value).inc()
                position = {
                    "topic": record.topic,
                    "partition": record.partition,
                    "offset": record.offset,
                }
                log.warning(
                    "dead letter: %s",
                    result.reason.value,
                    extra=position | {"reason": result.reason.value},
                )
            else:
                metrics.MESSAGES.labels(topic.value, "accepted").inc()
                events.append(self._sealed(result))
        return events, dead

    def _sealed(self, event: Inbound) -> Inbound:
        data = event.data
        if not isinstance(data, FulfillmentRequested) or not data.distributions:
            return event
        sealed = [self.sealer.seal_distribution(d) for d in data.distributions]
        return Inbound(
            event.id,
            event.type,
            event.order_id,
            event.time,
            data.model_copy(update={"distributions": sealed}),
        )

    async def _apply(self, events: Sequence[Inbound], report: BatchReport) -> None:
        """Decide every order's events, save with compare-and-set, publish; retry the losers."""
        by_order: dict[str, list[Inbound]] = {}
        for event in events:
            by_order.setdefault(event.order_id, []).append(event)
        while by_order:
            stored = await retrying("loading orders", self.store.load_many, list(by_order))
            unsent_ids = await retrying(
                "checking outboxes", self.store.unsent_among, list(stored.values())
            )
            round_ = _decide(by_order, stored, unsent_ids, self.clock())
            lost = await retrying("saving orders", self.store.save_many, round_.changes)
            for order_id, flags in round_.applied.items():
                if order_id not in lost:
                    self._count(by_order[order_id], flags, report)
            report.conflicts += len(lost)
            metrics.CONFLICTS.inc(len(lost))
            saved = [change.order for change in round_.changes if change.order.id not in lost]
            stale = [key for key in round_.carried if key.rsplit("@", 1)[0] not in lost]
            report.published += await self.publish(saved + round_.unsent, stale)
            by_order = {order_id: by_order[order_id] for order_id in lost}

    @staticmethod
    def _count(events: Sequence[Inbound], flags: Sequence[bool], report: BatchReport) -> None:
        for event, was_applied in zip(events, flags, strict=True):
            outcome = "applied" if was_applied else "duplicate"
            metrics.EVENTS.labels(event.type.value, outcome).inc()
            if log.isEnabledFor(logging.DEBUG):
                log.debug(
                    "event %s", outcome, extra={"order_id": event.order_id, "event_id": event.id}
                )
        report.applied += sum(flags)
        report.duplicates += len(flags) - sum(flags)

    async def publish(self, orders: Sequence[OrderDocument], also_sent: Sequence[str] = ()) -> int:
        """Send the orders' outboxes, wait for the broker, then drop their pending markers."""
        with_outbox = [order for order in orders if order.outbox]
        messages = [
            event_message(
                self.settings.topic(entry.topic), entry.key, self.sealer.open_output(entry.value)
            )
            for order in with_outbox
            for entry in order.outbox
        ]
        await retrying("publishing outputs", self.outputs.send, messages)
        for order in with_outbox:
            for entry in order.outbox:
                metrics.OUTPUTS.labels(entry.topic).inc()
        keys = [PendingOutbox.key(order.id, order.version) for order in with_outbox] + list(
            also_sent
        )
        await retrying("marking outboxes sent", self.store.mark_sent, keys)
        return len(messages)


@dataclass
class Round:
    """One pass over a batch's orders: what to save, what to (re)send, what was applied."""

    changes: list[Change] = field(default_factory=list)
    unsent: list[OrderDocument] = field(default_factory=list)
    carried: list[str] = field(default_factory=list)
    applied: dict[str, list[bool]] = field(default_factory=dict)


def _decide(
    by_order: dict[str, list[Inbound]],
    stored: dict[str, OrderDocument],
    unsent_ids: set[str],
    now: datetime,
) -> Round:
    """Apply each order's events in arrival order to its loaded (or new) document."""
    round_ = Round()
    for order_id, order_events in by_order.items():
        order = stored.get(order_id) or OrderDocument(_id=order_id)
        if order_id in unsent_ids:
            # A crash left these outputs unsent: they go out with this batch.
            round_.carried.append(PendingOutbox.key(order_id, order.version))
        else:
            order.outbox = []
        loaded_version = order.version
        round_.applied[order_id] = [apply(order, event, now) is not None for event in order_events]
        if any(round_.applied[order_id]):
            round_.changes.append(Change(order, loaded_version))
        elif order.outbox:
            round_.unsent.append(order)
    return round_


def dead_letter(record: Record, rejection: Rejection) -> Message:
    """The original record, to `<topic>.dlq`, with the contract's `x-` headers added."""
    headers = [
        *record.headers,
        ("x-dlq-reason", rejection.reason.value.encode()),
        ("x-dlq-error", rejection.error.encode()),
        ("x-original-topic", record.topic.encode()),
        ("x-original-partition", str(record.partition).encode()),
        ("x-original-offset", str(record.offset).encode()),
    ]
    return Message(f"{record.topic}{DLQ_SUFFIX}", record.key, record.value, headers)
