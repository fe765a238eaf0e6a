"""The FastStream worker: one batch subscriber over every input topic, committed by hand."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from itertools import chain
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import ConsumerStoppedError, KafkaError
from faststream import AckPolicy, FastStream
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.kafka.subscriber.usecase import BatchSubscriber

from config import Settings
from consumers import kafka_records, metrics
from consumers.health import HealthServer
from consumers.offsets import seek_to_committed
from consumers.outputs import KafkaOutputs
from consumers.pipeline import Pipeline
from consumers.relay import relay_forever
from consumers.retry import Backoff, retrying
from consumers.sealing import Sealer
from consumers.topics import ensure_topics
from consumers.tracing import tracing_middlewares
from schemas.names import INPUT_TOPICS
from store.orders import OrderStore, connect
from store.server import probe

log = logging.getLogger("fulfillment.worker")
# How long one poll for a batch waits when no record is there. It returns as soon as records
# arrive, so this only says how often an idle worker wakes (`wait_for_records`).
IDLE_POLL_MS = 1000
# /readyz turns 503 when one batch has waited this long (an outage being waited out).
STALL_SECONDS = 60.0
# How long the rewind after a failed poll may wait for the committed offsets.
REWIND_TIMEOUT_S = 30.0
# The exit status of a worker that stopped itself on a fault it cannot mend in-process
# (EX_SOFTWARE): its supervisor (`worker --processes`, or a deployment's) starts it again.
FAULT_EXIT = 70


@dataclass
class Fault:
    """Why the worker stopped itself, if it did."""

    reason: str | None = None


def build_app(
    settings: Settings,
    sealer: Sealer | None = None,
    metrics_port: int | None = None,
    fault: Fault | None = None,
) -> FastStream:
    """Wire the pipeline to Kafka and MongoDB; nothing connects until the app starts. If the
    app stops itself, `fault` says why."""
    sealer = sealer or Sealer.from_env()
    fault = fault or Fault()
    kafka_records.install()
    broker = KafkaBroker(
        # A list: FastStream would take "a:9092,b:9092" as one address.
        settings.kafka_bootstrap.split(","),
        graceful_timeout=30.0,
        request_timeout_ms=consumer_request_timeout_ms(settings),
        security=settings.broker_security(),
        middlewares=tracing_middlewares(),
    )
    store = OrderStore(connect(settings.mongodb_uri), settings.database)
    outputs = KafkaOutputs(settings)
    pipeline = Pipeline(settings, store, outputs, sealer)
    background: list[asyncio.Task[None]] = []
    started = asyncio.Event()

    async def not_ready() -> str | None:
        if not started.is_set():
            return "starting"
        try:
            await asyncio.wait_for(store.client.admin.command("ping"), 3)
        except Exception as problem:
            return f"store: {type(problem).__name__}"
        try:
            await outputs.ping()
        except Exception as problem:
            return f"kafka: {type(problem).__name__}"
        return None

    polls = PollHealth()

    async def not_ready_or_stalled() -> str | None:
        return await not_ready() or pipeline.stall(STALL_SECONDS) or polls.problem(STALL_SECONDS)

    metrics.STALLED_SECONDS.set_function(pipeline.stalled_seconds)

    health = HealthServer(metrics_port, not_ready_or_stalled) if metrics_port else None
    failures = Backoff(first=0.5, cap=30.0)
    lag = LagGauge({settings.topic(topic): topic.value for topic in INPUT_TOPICS})

    # NACK_ON_ERROR: an offset is committed only after the whole batch is saved and published;
    # on an error the batch's partitions are rewound and the records are read again.
    subscriber = broker.subscriber(
        *(settings.topic(topic) for topic in INPUT_TOPICS),
        group_id=settings.group_id,
        batch=True,
        max_records=settings.batch_size,
        batch_timeout_ms=IDLE_POLL_MS,  # FastStream's poll, replaced by `wait_for_records`
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        max_poll_interval_ms=600_000,
        group_instance_id=settings.group_instance_id,
        session_timeout_ms=settings.session_timeout_ms,
        heartbeat_interval_ms=settings.heartbeat_interval_ms,
        # Range keeps partition N of every input topic (one order's events) on one worker for
        # any number of workers; round-robin splits them from 4 workers on (6 partitions).
        # Range alone: aiokafka 0.14 sends a JoinGroup per listed strategy, each one a new
        # rebalance, and two members doing so can rebalance each other for ever
        # (aio-libs/aiokafka#1168).
        partition_assignment_strategy=(RangePartitionAssignor,),
        include_in_schema=False,
        parser=untouched_batch,
        decoder=no_body,
    )

    @subscriber
    async def handle_batch(message: KafkaMessage) -> None:
        raw = message.raw_message
        records = raw if isinstance(raw, tuple) else (raw,)
        try:
            with metrics.BATCH_SECONDS.time():
                await pipeline.handle(records)
        except Exception as problem:
            # Only a defect of ours gets here (outages wait inside, bad records are isolated).
            # The batch is rewound and read again, after a pause, so it is never a hot loop.
            await pause(failures, "a batch", problem)
            rewind(message.consumer, records)
            raise
        failures.reset()
        metrics.BATCH_RECORDS.observe(len(records))
        lag.record(message.consumer, records)

    def stop_for_restart(reason: str) -> None:
        if fault.reason is None:
            fault.reason = reason
            log.error("%s: stopping, to be started again", reason)
            app.exit()

    wait_for_records(subscriber, stop_for_restart, polls)
    app = FastStream(broker, logger=log)

    @app.on_startup
    async def prepare() -> None:
        if health is not None:
            await health.start()
        # The start-up wait saw both answer; an outage starting since is waited out too.
        created = await retrying("creating topics", ensure_topics, settings)
        if created:
            # Partitions: as many as the input topics in use, else FULFILLMENT_PARTITIONS.
            log.info("created %d topics: %s", len(created), ", ".join(created))
        server = await retrying("probing the store", probe, store.client)
        store.write_chunk = server.write_chunk
        await retrying("creating indexes", store.ensure_indexes)
        await retrying("starting the producer", outputs.start)
        log.info(
            "store: %s, database %s; kafka: %s",
            server.name,
            settings.database,
            settings.kafka_bootstrap,
        )

    @app.after_startup
    async def start_relay() -> None:
        background.append(asyncio.create_task(relay_forever(pipeline)))
        started.set()

    @app.after_shutdown
    async def stop() -> None:
        for task in background:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await outputs.stop()
        await store.client.close()
        if health is not None:
            await health.stop()

    return app


def consumer_request_timeout_ms(settings: Settings) -> int:
    """How long the consumer waits for one answer. aiokafka checks the group session only
    after a heartbeat's answer came, so with its 40 s default a coordinator that hangs (not
    refuses) would leave the worker on partitions the group gave away. Above the longest
    JoinGroup wait: the rebalance timeout, which is the session timeout here."""
    return settings.session_timeout_ms + 6_000


async def pause(failures: Backoff, what: str, problem: Exception) -> None:
    """Say that `what` failed and wait the backoff's next delay before it is tried again."""
    log.error("%s failed (%s); trying again in %.1fs", what, type(problem).__name__, failures.delay)
    await failures.wait()


@dataclass
class PollHealth:
    """Since when every poll for a batch has failed, and with what. A consumer whose group
    refused its join or its heartbeat fails each poll for ever, and no batch is ever in hand
    for the stall check to see: readiness says so instead."""

    failing_since: float | None = None
    error: str = ""

    def failed(self, problem: BaseException) -> None:
        if self.failing_since is None:
            self.failing_since = time.monotonic()
        self.error = type(problem).__name__

    def succeeded(self) -> None:
        self.failing_since = None

    def problem(self, after: float) -> str | None:
        """Why the worker is not ready, once polls have failed for `after` seconds."""
        if self.failing_since is None:
            return None
        lasted = time.monotonic() - self.failing_since
        if lasted < after:
            return None
        return f"every read from Kafka has failed for {lasted:.0f}s ({self.error})"


def wait_for_records(
    subscriber: BatchSubscriber, on_fault: Callable[[str], None], health: PollHealth
) -> None:
    """Poll without FastStream's sleep after an empty poll, which held up the first record after
    a quiet spell by up to one poll (aiokafka's `getmany` already waits for records), with
    a pause after a failure FastStream does not expect, `on_fault` when the consumer can no
    longer fetch, and each poll's outcome in `health` (readiness reads it)."""

    failures = Backoff(first=0.5, cap=30.0)
    # A failed poll may have taken records of some partitions before it failed on another's,
    # moving their positions past records nobody got: the next batch's commit would skip them.
    rewind_due = False

    async def stop_polling(reason: str) -> tuple[ConsumerRecord, ...]:
        """Every poll would fail the same way for ever (nothing restarts the task): the worker
        stops, and until it has, polls come no faster than idle ones."""
        nonlocal rewind_due
        rewind_due = False
        on_fault(reason)
        await asyncio.sleep(IDLE_POLL_MS / 1000)
        return ()

    async def get_msg(consumer: AIOKafkaConsumer) -> tuple[ConsumerRecord, ...]:
        nonlocal rewind_due
        try:
            if rewind_due:
                # Bounded: the committed offsets come from the group coordinator, which aiokafka
                # waits for without end while it is away; a timeout is a failed poll like any.
                async with asyncio.timeout(REWIND_TIMEOUT_S):
                    await rewind_to_committed(consumer)
                rewind_due = False
            batches = await consumer.getmany(
                timeout_ms=IDLE_POLL_MS, max_records=subscriber.max_records
            )
        except (KafkaError, ConsumerStoppedError) as problem:
            rewind_due = True
            health.failed(problem)
            if ended := group_task_ended(consumer):
                return await stop_polling(f"the Kafka consumer's {ended}")
            raise  # FastStream pauses 5 s after a Kafka error, and stops on the other
        except Exception as problem:
            rewind_due = True
            health.failed(problem)
            if ended := group_task_ended(consumer):
                return await stop_polling(f"the Kafka consumer's {ended}")
            # FastStream would restart its consume task at once, again and again: a hot loop.
            await pause(failures, "reading a batch", problem)
            return ()
        failures.reset()
        health.succeeded()
        if not batches and (ended := fetch_ended(consumer)):
            settle_fetch(consumer)
            on_fault(f"the Kafka consumer's fetch task ended ({ended})")
        return tuple(chain.from_iterable(batches.values()))

    # One method of one object; FastStream has no setting for it (faststream 0.7).
    setattr(subscriber, "get_msg", get_msg)  # noqa: B010


def fetch_ended(consumer: AIOKafkaConsumer) -> str | None:
    """What ended the consumer's background fetch task, if it ended: `getmany` then returns
    nothing for ever, without an error (aiokafka 0.14), and its partitions would stall unseen."""
    return _ended_by(getattr(getattr(consumer, "_fetcher", None), "error_future", None))


def group_task_ended(consumer: AIOKafkaConsumer) -> str | None:
    """Which of the consumer's group tasks an error ended, and what error: aiokafka 0.14 starts
    neither again, and an ended heartbeat leaves the member to be dropped from its group."""
    coordinator = getattr(consumer, "_coordinator", None)
    tasks = (("_coordination_task", "group coordination"), ("_heartbeat_task", "heartbeat"))
    for attribute, name in tasks:
        if ended := _ended_by(getattr(coordinator, attribute, None)):
            return f"{name} task ended ({ended})"
    return None


def _ended_by(task: object) -> str | None:
    # Stopping the consumer cancels the task, which then returns (or shows as cancelled): only
    # an error is a fault.
    if not isinstance(task, asyncio.Future) or not task.done() or task.cancelled():
        return None
    problem = task.exception()
    if problem is None:
        return None
    # Types only: a message may quote a record.
    cause = problem.__cause__
    return type(problem).__name__ + (f" from {type(cause).__name__}" if cause else "")


def settle_fetch(consumer: AIOKafkaConsumer) -> None:
    """Let the consumer stop cleanly after its fetch task ended: stopping awaits that task
    and its fetch requests, which would raise their errors again, and the worker's own
    shutdown would not run."""
    fetcher = consumer._fetcher
    settled = asyncio.get_running_loop().create_future()
    settled.set_result(None)
    fetcher._fetch_task = settled
    ended = {task for task in fetcher._pending_tasks if task.done()}
    for task in ended:
        if not task.cancelled():
            task.exception()  # seen: asyncio would log it as never retrieved
    fetcher._pending_tasks -= ended


async def untouched_batch(
    records: tuple[ConsumerRecord, ...], default: Callable[..., Awaitable[KafkaMessage]]
) -> KafkaMessage:
    """FastStream's batch message around the records, which stay exactly as Kafka gave them.

    FastStream's own parser decodes every header value as UTF-8 and fails on binary or null
    ones (ag2ai/faststream#2458); it sees only the readable headers here, and our handler
    reads the untouched records from `raw_message`.
    """
    readable = tuple(_with_readable_headers(record) for record in records)
    message = await default(readable)
    message.raw_message = records
    return message


def _with_readable_headers(record: ConsumerRecord) -> ConsumerRecord:
    """The record itself when FastStream can decode every header value (most carry none),
    else a copy with only those it can."""
    kept = _readable(record.headers)
    return record if len(kept) == len(record.headers) else replace(record, headers=kept)


def _readable(headers: Sequence[tuple[str, bytes | None]]) -> list[tuple[str, bytes]]:
    kept = []
    for name, value in headers:
        if value is not None:
            with contextlib.suppress(UnicodeDecodeError):
                value.decode()
                kept.append((name, value))
    return kept


async def no_body(message: KafkaMessage) -> None:
    """FastStream would parse bodies by their content-type; the pipeline decodes them itself."""


async def rewind_to_committed(consumer: Any) -> None:
    """Every partition assigned here back to its committed offset (its beginning if none):
    the worker commits after each batch it saved."""
    await seek_to_committed(consumer, consumer.assignment())


def rewind(consumer: Any, records: Sequence[Any]) -> None:
    """Back to the batch's first record on each of its partitions still assigned here.

    FastStream's nack seeks the same, but stops at the first partition a rebalance took away,
    and the next batch's commit would then take the rest past records never applied.
    """
    first: dict[TopicPartition, int] = {}
    for record in records:
        position = TopicPartition(record.topic, record.partition)
        first[position] = min(first.get(position, record.offset), record.offset)
    assigned = consumer.assignment()
    for position, offset in first.items():
        if position in assigned:
            consumer.seek(position, offset)


class LagGauge:
    """Consumer lag of each partition assigned here that this worker has read from, by topic
    as the other metrics name it (without the prefix); one a rebalance took away is dropped."""

    def __init__(self, names: dict[str, str]) -> None:
        self.names = names  # prefixed topic -> contract name
        self._next: dict[TopicPartition, int] = {}  # the next offset to read, after a batch
        self._reported: set[tuple[str, str]] = set()

    def record(self, consumer: Any, records: Sequence[Any]) -> None:
        """After a batch: the broker's end, as of the last fetch, minus the next offset."""
        for record in records:
            position = TopicPartition(record.topic, record.partition)
            self._next[position] = max(self._next.get(position, 0), record.offset + 1)
        assigned = consumer.assignment()
        self._next = {p: offset for p, offset in self._next.items() if p in assigned}
        reported = set()
        for position, offset in self._next.items():
            end = consumer.highwater(position)
            if end is None or position.topic not in self.names:
                continue
            labels = (self.names[position.topic], str(position.partition))
            metrics.LAG.labels(*labels).set(max(end - offset, 0))
            reported.add(labels)
        for labels in self._reported - reported:
            metrics.LAG.remove(*labels)
        self._reported = reported
