"""`fulfillment chaos`: a stream of orders through several workers while processes are bounced hard.

Modelled on Kafka's transactions system test: kill workers with SIGKILL, restart the broker
and the store, duplicate, reorder and break inputs, then check every record against the pure
lifecycle as oracle.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from aiokafka.record.default_records import DefaultRecordBatchBuilder

from bench.data import workload
from bench.run import Lab
from chaos.cluster import (
    BROKER_FAULTS,
    CompletionClock,
    Stall,
    broker_fault,
    cluster_schedule,
    describe,
    is_cluster,
    monitored,
    wait_in_sync,
    worker_env,
)
from chaos.news import mixed_in, shipment_news
from chaos.oracle import (
    Expected,
    Headers,
    Input,
    Verdict,
    dumps,
    expect,
    judge,
    reasons_by_key,
    stripped_letters,
    trace_missing_letters,
    without_their_letter,
)
from config import Settings, project_root
from consumers.outputs import refuses_producer, sender_stopped
from consumers.processes import stop_processes
from consumers.topics import ensure_topics
from schemas.names import DLQ_SUFFIX, INPUT_TOPICS, DeadLetterReason, Topic
from stack import ferretdb, kafka
from store.orders import connect

Say = Callable[[str], None]
Send = Input
LAG_SETTLED = 100  # records: back to normal after a fault
# Header values are bytes, not text: valid records carrying these must still be applied.
ODD_HEADERS: Headers = (("trace", b"\xff\xfe"), ("nothing", None), ("text", "é".encode()))
# Codecs of the second producers; every one must be readable by the workers.
CODECS = ("gzip", "lz4", "zstd")
# Kafka's default message.max.bytes is 1,048,588: an oversized malformed record fits the broker,
# its dead letter (the same record plus the x- headers) does not.
OVERSIZED_RECORD = 1_048_500
MAX_EXAMPLES = 20  # the report keeps this many examples of what went wrong


@dataclass
class Plan:
    orders: int = 20_000
    workers: int = 2
    kills: int = 3
    broker_restarts: int = 1
    store_restarts: int = 1
    duplicate_rate: float = 0.05
    malformed_rate: float = 0.01
    odd_header_rate: float = 0.01  # valid records with binary and null header values
    compressed_rate: float = 0.02  # records sent through a gzip, lz4 or zstd producer
    news_rate: float = 0.5  # orders whose fulfillment gets status reports and tracking updates
    rate: float = 100.0  # orders per second
    seed: int = 20261122
    leader_kills: int = 0  # on a cluster: SIGKILL the busiest partition's leader, restart it
    controller_kills: int = 0  # on a cluster: SIGKILL the active KRaft controller, restart it


@dataclass
class Fault:
    kind: str
    at: float
    # Until the group is stable with every worker and lag is under LAG_SETTLED (for a broker
    # fault this includes the node's own downtime and restart, and draining the backlog).
    recovered_after: float | None = None
    target: str = ""  # the broker node a broker fault hit
    # The recovery: the longest time in which no order completed (anywhere, worst partition).
    stall: Stall | None = None
    broker_back_after: float | None = None  # until the node hit answered again
    # From the node answering again to the next completed order (on one node: the pipeline's
    # own share of the stall, the rest being the broker's restart).
    completion_after_broker_back: float | None = None
    in_sync_after: float | None = None  # on a cluster: until every replica was in sync again
    during_traffic: bool = True  # False: the fault ended after the last input was sent


@dataclass
class ChaosReport:
    plan: dict[str, Any]
    seconds: float
    inputs_sent: int
    duplicates_sent: int
    malformed_sent: int
    faults: list[Fault] = field(default_factory=list)
    unexpected_worker_exits: int = 0
    verdict: dict[str, Any] = field(default_factory=dict)


def _payment(key: bytes, amount: str) -> dict[str, Any]:
    """A payment.captured CloudEvent keyed as its record."""
    return {
        "specversion": "1.0",
        "id": key.decode(),
        "source": "urn:chaos",
        "type": "payment.captured",
        "subject": key.decode(),
        "time": "2026-11-22T00:00:00Z",
        "data": {"payment_id": "p", "amount": amount, "currency": "USD"},
    }


def _oversized(key: bytes, value: dict[str, Any], headers: Headers) -> bytes:
    """`value` padded so that its record is estimated at OVERSIZED_RECORD bytes."""
    value = value | {"padding": ""}
    base = DefaultRecordBatchBuilder.estimate_size_in_bytes(
        key, json.dumps(value).encode(), list(headers)
    )
    value["padding"] = "p" * (OVERSIZED_RECORD - base - 8)  # the length prefix grows too
    return json.dumps(value).encode()


MALFORMED_KINDS = 9


def _malformed(index: int, rng: random.Random, prefix: str) -> tuple[Send, DeadLetterReason]:
    """One broken input of kind `index % MALFORMED_KINDS`, and the reason it must be refused."""
    key = f"chaos-bad-{prefix}-{index}".encode()
    kind = index % MALFORMED_KINDS
    negative = _payment(key, "-1")
    if kind == 0:
        value = bytes(rng.getrandbits(8) for _ in range(40)) + b"\xff"
        return Input(Topic.ORDERS_PLACED, key, value), DeadLetterReason.NOT_UTF8
    if kind == 1:
        value = b'{"specversion": "1.0", "oops"'
        return Input(Topic.PAYMENTS_CAPTURED, key, value), DeadLetterReason.NOT_JSON
    if kind == 2:
        value = json.dumps({"hello": "world"}).encode()
        return Input(Topic.FULFILLMENTS_REQUESTED, key, value), DeadLetterReason.NOT_CLOUDEVENT
    if kind == 3:  # an amount below zero
        value = json.dumps(negative).encode()
        return Input(Topic.PAYMENTS_CAPTURED, key, value), DeadLetterReason.INVALID_DATA
    if kind == 4:  # a payment on the orders topic
        value = json.dumps(negative).encode()
        return Input(Topic.ORDERS_PLACED, key, value), DeadLetterReason.WRONG_TYPE
    if kind == 5:  # a 5,000-digit integer (json.dumps cannot write one), labelled as JSON
        text = json.dumps(negative | {"sequence": 0})
        value = text.replace('"sequence": 0', '"sequence": ' + "9" * 5000).encode()
        headers: Headers = (("content-type", b"application/json"),)
        return Input(Topic.PAYMENTS_CAPTURED, key, value, headers), DeadLetterReason.NOT_JSON
    if kind == 6:  # a time that is in year 10000 once in UTC
        value = json.dumps(_payment(key, "1.00") | {"time": "9999-12-31T23:59:59-23:59"}).encode()
        return Input(Topic.PAYMENTS_CAPTURED, key, value), DeadLetterReason.NOT_CLOUDEVENT
    if kind == 7:  # invalid and near 1 MiB: its dead letter must drop the value
        headers = (("trace", b"\xff\x00"),)
        value = _oversized(key, negative, headers)
        return Input(Topic.PAYMENTS_CAPTURED, key, value, headers), DeadLetterReason.INVALID_DATA
    # A key that is not the subject, with binary and null header values to keep byte for byte.
    value = json.dumps(_payment(key, "1.00") | {"subject": "someone-else"}).encode()
    return Input(Topic.PAYMENTS_CAPTURED, key, value, ODD_HEADERS), DeadLetterReason.KEY_MISMATCH


def build_stream(
    plan: Plan, run: str
) -> tuple[list[Send], dict[str, list[Send]], dict[bytes, str], int, list[str]]:
    """Every order's events reordered across topics, status reports and tracking updates
    among them, plus duplicates and malformed inputs; some records carry binary and null
    header values, some go in compressed batches.
    The malformed inputs are given by key, with the dead-letter reason each must get."""
    rng = random.Random(plan.seed)
    odd = random.Random(plan.seed + 2)  # its own stream: the rest stays as it was for a seed
    news = random.Random(plan.seed + 3)  # and its own too
    work = workload(plan.orders, run)
    per_order: dict[str, list[Send]] = {}
    stream: list[Send] = []
    for index in range(plan.orders):
        events = [
            Input(
                topic,
                *records[index],
                headers=ODD_HEADERS if odd.random() < plan.odd_header_rate else (),
                codec=odd.choice(CODECS) if odd.random() < plan.compressed_rate else None,
            )
            for topic, records in work.by_topic().items()
        ]
        rng.shuffle(events)  # reorder across topics; each topic keeps its own order
        order_id = events[0].key.decode()
        request = work.requested[index][1]
        events = mixed_in(events, shipment_news(order_id, request, news, plan.news_rate), news)
        per_order[order_id] = events
        stream += events
    # Positions as floats: an original at i, its duplicate somewhere after it, garbage anywhere.
    placed: list[tuple[float, Send]] = [(float(i), item) for i, item in enumerate(stream)]
    picks = [rng.randrange(len(stream)) for _ in range(int(len(stream) * plan.duplicate_rate))]
    placed += [(rng.uniform(i + 0.5, len(stream)), stream[i]) for i in picks]
    malformed = [_malformed(i, rng, run) for i in range(int(len(stream) * plan.malformed_rate))]
    malformed = [
        (replace(bad, codec=odd.choice(CODECS)) if odd.random() < 0.2 else bad, reason)
        for bad, reason in malformed
    ]
    placed += [(rng.uniform(0, len(stream)), bad) for bad, _ in malformed]
    placed.sort(key=lambda item: item[0])
    stream = [item for _, item in placed]
    duplicates = picks
    secrets = [
        json.loads(value)["data"]["distributions"][0]["credentials"]["token"]
        for value in (v for _, v in work.requested)
        if b'"credentials"' in value
    ]
    expected_letters = {bad.key: reason.value for bad, reason in malformed}
    return stream, per_order, expected_letters, len(duplicates), secrets


class Workers:
    """Worker processes the run may kill; any that dies unasked is restarted and counted."""

    def __init__(self, lab: Lab, count: int, logs: Path) -> None:
        self.lab = lab
        self.logs = logs
        self.processes = [self._spawn(i) for i in range(count)]
        self.unexpected_exits = 0

    def _spawn(self, slot: int) -> subprocess.Popen[bytes]:
        log = (self.logs / f"worker-{slot}.log").open("ab")
        return subprocess.Popen(
            [sys.executable, "-m", "consumers.worker"],
            env=self.lab.env() | worker_env(self.lab.settings, slot),
            cwd=project_root(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def kill(self, slot: int) -> None:
        self.processes[slot].send_signal(signal.SIGKILL)
        self.processes[slot].wait()
        self.processes[slot] = self._spawn(slot)

    def watch(self) -> None:
        for slot, process in enumerate(self.processes):
            if process.poll() is not None:
                self.unexpected_exits += 1
                self.processes[slot] = self._spawn(slot)

    def stop(self) -> None:
        stop_processes(self.processes)


# Seconds one lag measurement (or closing its clients) may take before the clients are replaced.
MEASURE_TIMEOUT = 10.0
# Seconds the workers get, after the last input, to catch up.
DRAIN_TIMEOUT_S = 600.0


class LagMonitor:
    """Consumer lag of the workers' group over the input topics, polled; None while unreachable."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.lag: int | None = None

    async def run(self) -> None:
        while True:
            admin = AIOKafkaAdminClient(
                bootstrap_servers=self.settings.kafka_bootstrap, request_timeout_ms=3000
            )
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self.settings.kafka_bootstrap, request_timeout_ms=3000
            )
            try:
                await admin.start()
                await consumer.start()
                while True:  # one pair of clients until the broker goes away
                    # Bounded: a client can hang on a node that was killed; new ones are made.
                    async with asyncio.timeout(MEASURE_TIMEOUT):
                        self.lag = await self._measure(admin, consumer)
                    await asyncio.sleep(0.5)
            except Exception:
                self.lag = None
                await asyncio.sleep(0.5)
            finally:
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(MEASURE_TIMEOUT):
                        await consumer.stop()
                        await admin.close()

    async def _measure(self, admin: AIOKafkaAdminClient, consumer: AIOKafkaConsumer) -> int:
        committed = await admin.list_consumer_group_offsets(self.settings.group_id)
        partitions = [
            TopicPartition(self.settings.topic(t), p)
            for t in INPUT_TOPICS
            for p in range(self.settings.partitions)
        ]
        ends = await consumer.end_offsets(partitions)
        return sum(
            end - (committed[tp].offset if tp in committed and committed[tp].offset >= 0 else 0)
            for tp, end in ends.items()
        )

    async def settled_after(
        self, since: float, members: int, before: frozenset[str], timeout: float = 300
    ) -> float:
        """Seconds from `since` until the group is stable with every worker, not the same members
        as `before` when a worker was replaced, and lag is under LAG_SETTLED."""
        async with asyncio.timeout(timeout):
            while True:
                current = await self.member_ids()
                rejoined = (
                    current is not None
                    and len(current) == members
                    and (not before or current != before)
                )
                if rejoined and self.lag is not None and self.lag <= LAG_SETTLED:
                    return time.monotonic() - since
                await asyncio.sleep(0.25)

    async def member_ids(self) -> frozenset[str] | None:
        """Member ids of the group when it is stable; None while it rebalances or cannot be asked."""
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self.settings.kafka_bootstrap, request_timeout_ms=3000
        )
        try:
            await admin.start()
            group = (await admin.describe_consumer_groups([self.settings.group_id]))[0].groups[0]
            return frozenset(member[0] for member in group[5]) if group[2] == "Stable" else None
        except Exception:
            return None
        finally:
            await admin.close()


class NotDrained(RuntimeError):
    """The workers did not catch up with the inputs in time: the run failed, nothing is away."""


async def drained(monitor: LagMonitor, timeout: float) -> None:
    """Until the workers' lag is 0; NotDrained after `timeout` seconds."""
    try:
        async with asyncio.timeout(timeout):
            while monitor.lag != 0:
                await asyncio.sleep(0.5)
    except TimeoutError:
        # Not a TimeoutError: the CLI would report that as Kafka or the store out of reach.
        raise NotDrained(
            f"the workers' lag was still {monitor.lag} records {timeout:.0f}s after the last"
            " input; see the worker logs"
        ) from None


async def _send(settings: Settings, stream: list[Send], rate: float, plan: Plan) -> None:
    """Send the stream at `rate` orders/s; a send the broker refused (it may be restarting) is
    sent again. Records with a codec go through a second producer compressing with it."""

    async def new_producer(codec: str | None) -> AIOKafkaProducer:
        """A started producer, once the broker answers (it may be restarting)."""
        while True:
            producer = AIOKafkaProducer(
                bootstrap_servers=settings.kafka_bootstrap,
                acks="all",
                enable_idempotence=True,
                linger_ms=5,
                request_timeout_ms=60000,
                max_request_size=2 * 1024 * 1024,  # oversized malformed records are ~1 MiB
                compression_type=codec,
            )
            try:
                await producer.start()
                return producer
            except KafkaError:
                await producer.stop()
                await asyncio.sleep(1)

    codecs = (None, *sorted({item.codec for item in stream if item.codec}))
    producers = {codec: await new_producer(codec) for codec in codecs}

    async def send(item: Send) -> asyncio.Future[Any]:
        """The record's delivery; a send that failed at once (its producer's sender stopped,
        or the topic's metadata timed out) is a failed delivery, sent again like the others."""
        try:
            future: asyncio.Future[Any] = await producers[item.codec].send(
                settings.topic(item.topic),
                item.value,
                key=item.key,
                headers=list(item.headers) or None,
            )
        except KafkaError as problem:
            future = asyncio.get_running_loop().create_future()
            future.set_exception(problem)
        return future

    try:
        per_second = rate * len(stream) / plan.orders
        started = time.monotonic()
        pending: list[tuple[asyncio.Future[Any], Send]] = []
        for index, item in enumerate(stream):
            delay = started + index / per_second - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            pending.append((await send(item), item))
        for producer in producers.values():
            await producer.flush()
        while pending:
            # The oracle needs every input in Kafka; a late re-send only reorders it, which
            # changes no outcome here (no cancel requests in the chaos stream, and the tracking
            # updates of one fulfillment each give another field: see chaos/news.py).
            await asyncio.gather(*(future for future, _ in pending), return_exceptions=True)
            failed = [item for future, item in pending if future.exception() is not None]
            # A producer the broker refuses for good (see consumers/outputs.py) is replaced,
            # else its records would be sent again and refused for ever.
            refused = {
                item.codec
                for f, item in pending
                if refuses_producer(f.exception()) or sender_stopped(producers[item.codec])
            }
            for codec in refused:
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(10):
                        await producers[codec].stop()
                producers[codec] = await new_producer(codec)
            pending = []
            for item in failed:
                await asyncio.sleep(0.1)
                pending.append((await send(item), item))
    finally:
        for producer in producers.values():
            await producer.stop()


async def _restart(kind: str) -> None:
    service = kafka if kind == "broker restart" else ferretdb
    await asyncio.to_thread(service.service().stop)
    await asyncio.to_thread(service.up, lambda _: None)


@dataclass
class Window:
    """A fault's span in monotonic time, judged once the run is over."""

    fault: Fault
    began: float
    settled: float
    broker_back: float | None = None


async def _faults(
    plan: Plan,
    workers: Workers,
    monitor: LagMonitor,
    duration: float,
    local_stack: bool,
    say: Say,
) -> list[Window]:
    rng = random.Random(plan.seed + 1)
    schedule: list[tuple[float, str]] = [
        (rng.uniform(0.1, 0.9) * duration, "worker SIGKILL") for _ in range(plan.kills)
    ]
    if local_stack:
        schedule += [
            (0.4 * duration + 5 * i, "broker restart") for i in range(plan.broker_restarts)
        ]
        schedule += [(0.65 * duration + 5 * i, "store restart") for i in range(plan.store_restarts)]
        schedule += cluster_schedule(plan.leader_kills, plan.controller_kills, duration)
    schedule.sort()
    started = time.monotonic()
    windows = []
    for at, kind in schedule:
        await asyncio.sleep(max(0.0, started + at - time.monotonic()))
        if kind in BROKER_FAULTS and is_cluster():
            await wait_in_sync(monitor.settings)  # one node down at a time
        # A replaced worker must rejoin under a new member id; restarts keep the processes.
        before = (
            (await monitor.member_ids() or frozenset()) if kind == "worker SIGKILL" else frozenset()
        )
        fault = Fault(kind, round(time.monotonic() - started, 1))
        began = time.monotonic()
        window = Window(fault, began, began)
        if kind == "worker SIGKILL":
            workers.kill(rng.randrange(len(workers.processes)))
        elif kind in BROKER_FAULTS:
            fault.target, window.broker_back = await broker_fault(kind, monitor.settings)
            fault.broker_back_after = round(window.broker_back - began, 1)
        else:
            await _restart(kind)
        try:
            fault.recovered_after = round(
                await monitor.settled_after(began, len(workers.processes), before), 1
            )
            say(
                f"{kind} at {fault.at:.0f}s {fault.target}: group stable and lag under {LAG_SETTLED} after {fault.recovered_after:.1f}s"
                + (
                    f" (node answered again after {fault.broker_back_after:.1f}s)"
                    if fault.broker_back_after is not None
                    else ""
                )
            )
        except TimeoutError:
            say(f"{kind} at {fault.at:.0f}s: lag not back under {LAG_SETTLED} within 300s")
        window.settled = time.monotonic()
        if kind in BROKER_FAULTS and is_cluster():
            fault.in_sync_after = round(
                await wait_in_sync(monitor.settings) + window.settled - began, 1
            )
        windows.append(window)
    return windows


def judge_faults(
    windows: list[Window], clock: CompletionClock, sent_until: float, say: Say
) -> list[Fault]:
    """Each fault's stall, once every completion is known (a fault's stall ends with the first
    completion after it, which may come after the fault's own measurement ended)."""
    for window in windows:
        fault = window.fault
        fault.stall = clock.stall(window.began, window.settled)
        fault.during_traffic = window.settled <= sent_until
        if window.broker_back is not None:
            fault.completion_after_broker_back = clock.first_after(window.broker_back)
        say(
            f"{fault.kind} at {fault.at:.0f}s {fault.target}: {describe(fault.stall)}"
            + ("" if fault.during_traffic else " (ended after the last input was sent)")
        )
    return [window.fault for window in windows]


async def _read_all(settings: Settings, topics: list[str]) -> list[Any]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(t, p) for t in topics for p in range(settings.partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[Any] = []
        while [p for p in partitions if await consumer.position(p) < ends[p]]:
            for batch in (await consumer.getmany(timeout_ms=500, max_records=10000)).values():
                records += batch
        return records
    finally:
        await consumer.stop()


async def chaos(
    base: Settings, plan: Plan, logs: Path, say: Say, local_stack: bool = True
) -> ChaosReport:
    lab = Lab(monitored(base, local_stack), "chaos")
    logs.mkdir(parents=True, exist_ok=True)
    clock = CompletionClock(lab.settings, lab.settings.kafka_bootstrap)
    await clock.prepare()
    await ensure_topics(lab.settings)
    stream, per_order, malformed, duplicates, secrets = build_stream(
        plan, lab.settings.group_id[-6:]
    )
    expected: dict[str, Expected] = {
        order_id: expect(order_id, events) for order_id, events in per_order.items()
    }
    say(
        f"{plan.orders:,} orders, {len(stream):,} inputs ({duplicates:,} duplicates, {len(malformed):,} malformed), {plan.workers} workers"
    )
    workers = Workers(lab, plan.workers, logs)
    monitor = LagMonitor(lab.settings)
    watching = asyncio.create_task(monitor.run())
    timing = asyncio.create_task(clock.run())
    started = time.monotonic()
    duration = plan.orders / plan.rate

    async def supervise() -> None:
        while True:
            workers.watch()
            await asyncio.sleep(0.5)

    supervising = asyncio.create_task(supervise())
    try:
        sending = asyncio.create_task(_send(lab.settings, stream, plan.rate, plan))
        windows = await _faults(plan, workers, monitor, duration, local_stack, say)
        await sending
        sent_until = time.monotonic()
        await drained(monitor, DRAIN_TIMEOUT_S)
        await asyncio.sleep(35)  # past the relay's grace, so outboxes a kill left behind are out
        seconds = time.monotonic() - started
    finally:
        for task in (supervising, watching, timing):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        workers.stop()
    faults = judge_faults(windows, clock, sent_until, say)
    sent = {item.key: item for item in stream if item.key in malformed}
    verdict = await _verdict(lab, expected, malformed, sent, secrets, logs)
    await lab.cleanup()
    report = ChaosReport(
        asdict(plan),
        round(seconds, 1),
        len(stream),
        duplicates,
        len(malformed),
        faults,
        workers.unexpected_exits,
        asdict(verdict) | {"examples": verdict.examples[:MAX_EXAMPLES]},
    )
    return report


async def _verdict(
    lab: Lab,
    expected: dict[str, Expected],
    malformed: dict[bytes, str],
    sent: dict[bytes, Send],
    secrets: list[str],
    logs: Path,
) -> Verdict:
    settings = lab.settings
    client = connect(settings.mongodb_uri)
    documents = {raw["_id"]: raw async for raw in client[settings.database]["orders"].find({})}
    await client.close()
    outputs = await _read_all(
        settings,
        [
            settings.topic(Topic.FULFILLMENTS_COMPLETED),
            settings.topic(Topic.FULFILLMENTS_CANCELLED),
        ],
    )
    statuses = await _read_all(settings, [settings.topic(Topic.ORDERS_STATUS_CHANGED)])
    letters = await _read_all(settings, [f"{settings.topic(t)}{DLQ_SUFFIX}" for t in INPUT_TOPICS])
    published = [json.loads(record.value)["id"] for record in outputs]
    haystacks = [
        "\n".join(path.read_text(errors="replace") for path in logs.glob("*.log")),
        "\n".join(dumps(document) for document in documents.values()),
        "\n".join(repr(record.headers) for record in letters),
        "\n".join(record.value.decode(errors="replace") for record in statuses),
    ]
    found = reasons_by_key(letters)
    verdict = judge(expected, documents, published, malformed, found, secrets, haystacks)
    stripped = stripped_letters(letters, sent)
    verdict.letters_stripped = len(stripped)
    # First: the report keeps only the first MAX_EXAMPLES examples.
    verdict.examples[:0] = stripped[:5]
    if verdict.malformed_not_in_dlq:
        # Enough to tell a lost input from a lost letter or a keyless one, from the report alone.
        inputs = await _read_all(settings, [settings.topic(t) for t in INPUT_TOPICS])
        unmatched = without_their_letter(malformed, found)[:8]
        verdict.examples[:0] = trace_missing_letters(unmatched, inputs, letters, documents)
    return verdict
