"""`fulfillment demo`: the main job end to end on the local stack, with live progress and a summary."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, TopicPartition
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

import stack
from cli.tables import history_table, shipment_heading, timeline_table
from config import Settings, stack_dir
from config.kafka_security import KafkaRefused
from consumers.processes import spawn_worker, stop_processes
from consumers.sealing import Sealer
from consumers.startup import kafka_unreachable, store_unreachable
from consumers.topics import ensure_topics
from producers.publisher import FulfillmentPublisher, cloud_event
from schemas.document import OrderDocument
from schemas.names import (
    DLQ_SUFFIX,
    INPUT_TOPICS,
    TYPE_TOPIC,
    DeadLetterHeader,
    DeliveryStatus,
    EventType,
    FulfillmentStatus,
    HoldReason,
    Topic,
)
from stack import ferretdb, kafka
from store.orders import OrderStore, connect
from tools.scenarios import Phase, Plan, build

# Seconds each of the demo's waits for the workers may take: a phase's orders held for
# payment, then its fulfillments completed or cancelled, then its news applied.
PHASE_TIMEOUT_S = 120


@dataclass
class Seen:
    """Outputs of this run, by id (duplicates of one id count once)."""

    completed: set[str] = field(default_factory=set)
    cancelled: set[str] = field(default_factory=set)
    shipment_updated: set[str] = field(default_factory=set)
    held: set[str] = field(default_factory=set)
    dead_letters: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0

    def of(self, event_type: str) -> set[str]:
        """The ids seen of one output type."""
        return {
            EventType.FULFILLMENT_COMPLETED: self.completed,
            EventType.FULFILLMENT_CANCELLED: self.cancelled,
            EventType.FULFILLMENT_SHIPMENT_UPDATED: self.shipment_updated,
            EventType.FULFILLMENT_HELD: self.held,
        }[EventType(event_type)]


class Watcher:
    """Reads the output and dead-letter topics from where they stood when the demo began."""

    def __init__(self, settings: Settings, run: str) -> None:
        self.settings = settings
        self.run = run
        self.seen = Seen()
        self._ids: set[str] = set()
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        topics = [
            self.settings.topic(Topic.FULFILLMENTS_COMPLETED),
            self.settings.topic(Topic.FULFILLMENTS_CANCELLED),
            self.settings.topic(Topic.FULFILLMENTS_SHIPMENT_UPDATED),
            self.settings.topic(Topic.FULFILLMENTS_HELD),
        ]
        topics += [f"{self.settings.topic(t)}{DLQ_SUFFIX}" for t in INPUT_TOPICS]
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap,
            enable_auto_commit=False,
            **self.settings.kafka_options(),
        )
        await self._consumer.start()
        partitions = [
            TopicPartition(t, p)
            for t in topics
            for p in (self._consumer.partitions_for_topic(t) or await self._partitions(t))
        ]
        self._consumer.assign(partitions)
        for partition, offset in (await self._consumer.end_offsets(partitions)).items():
            self._consumer.seek(partition, offset)

    async def _partitions(self, topic: str) -> set[int]:
        assert self._consumer is not None
        await self._consumer._client.force_metadata_update()
        return self._consumer.partitions_for_topic(topic) or {0}

    async def poll(self) -> None:
        assert self._consumer is not None
        import json

        for records in (await self._consumer.getmany(timeout_ms=100)).values():
            for record in records:
                if record.topic.endswith(DLQ_SUFFIX):
                    headers = dict(record.headers)
                    reason = headers.get(DeadLetterHeader.REASON, b"?")
                    self.seen.dead_letters[reason.decode()] += 1
                    continue
                event = json.loads(record.value)
                if not event["subject"].startswith(f"ord-{self.run}-"):
                    continue
                if event["id"] in self._ids:
                    self.seen.duplicates += 1
                    continue
                self._ids.add(event["id"])
                self.seen.of(event["type"]).add(event["id"])

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()


def start_workers(count: int) -> list[subprocess.Popen[bytes]]:
    logs = stack_dir() / "demo"
    logs.mkdir(parents=True, exist_ok=True)
    return [spawn_worker(log=logs / f"worker-{index}.log") for index in range(count)]


async def _send(publisher: FulfillmentPublisher, phase: Phase, settings: Settings) -> int:
    """Publish a phase without waiting for each ack; per-partition order is kept by the producer."""
    records = []
    for send in phase.sends:
        if send.raw is not None:
            topic, key, value = send.raw
            records.append((settings.topic(topic), key, value))
        else:
            assert send.data is not None
            event = cloud_event(
                send.event_type, send.order_id, send.data, publisher.source, send.event_id
            )
            records.append(
                (
                    settings.topic(TYPE_TOPIC[send.event_type]),
                    send.order_id.encode(),
                    json.dumps(event).encode(),
                )
            )
    await publisher.send_many(records)
    return len(records)


async def _wait_held(store: OrderStore, order_ids: list[str], watcher: Watcher) -> None:
    """Until each order has a request held for payment: the order arrived, the money not."""
    while order_ids:
        found = await store.load_many(order_ids)
        order_ids = [i for i in order_ids if i not in found or not _held_for_payment(found[i])]
        await watcher.poll()


def _held_for_payment(order: OrderDocument) -> bool:
    return any(HoldReason.AWAITING_PAYMENT in f.holds for f in order.fulfillments)


async def _wait_applied(
    store: OrderStore, news: dict[str, set[str]], watcher: Watcher, applied: Callable[[int], None]
) -> None:
    """Until every tracking update and status report in `news` (ids by order) is applied:
    they complete nothing, so only the orders tell. `applied` hears how many are."""
    waiting = {order_id: set(ids) for order_id, ids in news.items()}
    total = sum(len(ids) for ids in waiting.values())
    while waiting:
        for order_id, order in (await store.load_many(list(waiting))).items():
            waiting[order_id] -= set(order.applied_event_ids)
            if not waiting[order_id]:
                del waiting[order_id]
        applied(total - sum(len(ids) for ids in waiting.values()))
        await watcher.poll()
        await asyncio.sleep(0.1)


class Stalled(Exception):
    """The workers did not produce what the demo waits for in time: a failed run, not an
    outage (which would be exit 69)."""


class Unreachable(Exception):
    """Kafka or the store does not answer; the message is one line for the operator."""


async def check_reachable(settings: Settings) -> None:
    """Raise Unreachable unless Kafka and the store answer: traffic the demo cannot follow
    would only be left behind."""
    try:
        kafka = await kafka_unreachable(settings)
    except KafkaRefused as refused:  # answered, but refused our credentials or TLS
        raise Unreachable(str(refused)) from None
    if kafka:
        raise Unreachable(f"cannot reach Kafka at {settings.kafka_bootstrap}: {kafka}")
    store = await store_unreachable(settings)
    if store:
        raise Unreachable(f"cannot reach the store: {store}")


async def run_demo(settings: Settings, workers: int, console: Console) -> Plan:
    """Publish the demo traffic and follow it to the last output; return what was planned."""
    run = uuid.uuid4().hex[:6]
    plan = build(run)
    await ensure_topics(settings)
    store = OrderStore(connect(settings.mongodb_uri), settings.database)
    watcher = Watcher(settings, run)
    await watcher.start()
    started = time.monotonic()
    sent = 0
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        completed = progress.add_task("fulfillments completed", total=plan.expected_completed)
        cancelled = progress.add_task("fulfillments cancelled", total=plan.expected_cancelled)
        dead = progress.add_task("dead letters", total=plan.expected_dead_letters)
        news = progress.add_task("tracking updates, status reports", total=plan.expected_news)
        async with FulfillmentPublisher(settings, source=f"urn:demo:{run}") as publisher:
            targets = _phase_targets(plan)
            earlier_news = 0
            for phase, (want_completed, want_cancelled) in zip(plan.phases, targets, strict=True):
                sent += await _send(publisher, phase, settings)
                async with asyncio.timeout(PHASE_TIMEOUT_S):
                    await _wait_held(store, phase.wait_held, watcher)
                async with asyncio.timeout(PHASE_TIMEOUT_S):
                    while (
                        len(watcher.seen.completed) < want_completed
                        or len(watcher.seen.cancelled) < want_cancelled
                    ):
                        await watcher.poll()
                        progress.update(completed, completed=len(watcher.seen.completed))
                        progress.update(cancelled, completed=len(watcher.seen.cancelled))
                        progress.update(dead, completed=sum(watcher.seen.dead_letters.values()))

                def applied(count: int, before: int = earlier_news) -> None:
                    progress.update(news, completed=before + count)

                async with asyncio.timeout(PHASE_TIMEOUT_S):
                    await _wait_applied(store, phase.news_ids(), watcher, applied)
                earlier_news += sum(len(ids) for ids in phase.news_ids().values())
        async with asyncio.timeout(60):
            while sum(watcher.seen.dead_letters.values()) < plan.expected_dead_letters:
                await watcher.poll()
        progress.update(dead, completed=sum(watcher.seen.dead_letters.values()))
    elapsed = time.monotonic() - started
    orders = await store.load_many(plan.orders)
    await watcher.stop()
    await store.client.close()
    _summary(console, plan, orders, watcher.seen, sent, elapsed)
    return plan


def _phase_targets(plan: Plan) -> list[tuple[int, int]]:
    """Outputs expected once each phase is done, cumulative: (completed, cancelled)."""
    targets, completed, cancelled = [], 0, 0
    for phase in plan.phases:
        completed, cancelled = completed + phase.completes, cancelled + phase.cancels
        targets.append((completed, cancelled))
    return targets


def _summary(
    console: Console,
    plan: Plan,
    orders: dict[str, OrderDocument],
    seen: Seen,
    sent: int,
    elapsed: float,
) -> None:
    by_status = Counter(str(o.status.value if o.status else "unknown") for o in orders.values())
    outcomes = Counter(
        (f.status.value, f.reason.value if f.reason else "")
        for o in orders.values()
        for f in o.fulfillments
    )
    table = Table("orders by status", "count", title="Summary")
    for status, count in sorted(by_status.items()):
        table.add_row(status, str(count))
    console.print(table)
    table = Table("fulfillment outcome", "reason", "count")
    for (status, reason), count in sorted(outcomes.items()):
        table.add_row(status, reason or "-", str(count))
    console.print(table)
    console.print(_delivery_table(orders.values()))
    console.print(_holds_table(orders.values()))
    table = Table("dead-letter reason", "count")
    for reason, count in sorted(seen.dead_letters.items()):
        table.add_row(reason, str(count))
    console.print(table)
    console.print(
        f"{len(plan.orders)} orders, {sent} input messages (duplicates and malformed included) in {elapsed:.1f}s: "
        f"{sent / elapsed:.0f} messages/s, {len(plan.orders) / elapsed:.0f} orders/s; "
        f"{len(seen.shipment_updated)} shipment updates and {len(seen.held)} holds published; "
        f"{seen.duplicates} duplicate output deliveries dropped by id"
    )
    for title, order_id in plan.examples.items():
        if order_id in orders:
            _example(console, title, orders[order_id])


def _delivery_table(orders: Iterable[OrderDocument]) -> Table:
    """Orders by delivery status, every status listed, none first."""
    counts = Counter(order.delivery_status for order in orders)
    table = Table("orders by delivery status", "count")
    for status in DeliveryStatus:
        table.add_row(status.value, str(counts[status]))
    return table


def _holds_table(orders: Iterable[OrderDocument]) -> Table:
    """Fulfillment requests held, by reason, and what became of them."""
    held: Counter[tuple[HoldReason, FulfillmentStatus]] = Counter(
        (reason, fulfillment.status)
        for order in orders
        for fulfillment in order.fulfillments
        for reason in fulfillment.holds
    )
    table = Table("requests held for", "held", "then completed", "then cancelled", "still held")
    for reason in HoldReason:
        completed, cancelled, pending = (
            held[reason, status]
            for status in (
                FulfillmentStatus.COMPLETED,
                FulfillmentStatus.CANCELLED,
                FulfillmentStatus.PENDING,
            )
        )
        total = completed + cancelled + pending
        table.add_row(reason.value, *map(str, (total, completed, cancelled, pending)))
    return table


def _example(console: Console, title: str, order: OrderDocument) -> None:
    """One order's timeline, and the status history of each of its shipments."""
    console.print(timeline_table(order, title=f"{title}: {order.id}"))
    for fulfillment in order.fulfillments:
        if fulfillment.shipment_events:
            console.print(shipment_heading(fulfillment), highlight=False)
            console.print(history_table(fulfillment))


def stopped_services(rows: list[tuple[str, str, str, str]]) -> list[str]:
    """The local services `stack.up` will start, from `stack.status()` rows taken before it:
    ours and not running. One already running, or external, is someone else's to stop."""
    return [name for name, state, _address, _detail in rows if state == "stopped"]


def stop_services(names: list[str], say: Callable[[str], None]) -> None:
    """Stop the named local services (store first, as `stack down` does), by their pids."""
    services = {"store": ("FerretDB", ferretdb.service()), "kafka": ("Kafka", kafka.service())}
    for name in ("store", "kafka"):
        if name in names:
            label, service = services[name]
            say(f"{label}: {'stopped' if service.stop() else 'was not running'}")


def serve_console(console: Console, port: int = 8000) -> None:
    """Serve the operator console on the demo's orders until Ctrl-C (`demo --console`)."""
    from console.server import serve

    console.print(
        "the demo's orders are in the console; Ctrl-C stops the console and the workers"
        " (the stack stays up: `fulfillment stack down` stops it)",
        highlight=False,
    )
    serve(port=port, say=lambda line: console.print(line, highlight=False))


def demo(
    workers: int = 2,
    keep_stack: bool = False,
    console: Console | None = None,
    with_console: bool = False,
    console_port: int = 8000,
) -> None:
    """Start (or reuse) the stack, run workers, send the traffic, summarise, stop what was started.

    With `with_console`, the workers keep running afterwards and the console serves the orders
    on 127.0.0.1:`console_port`.
    """
    console = console or Console()

    def say(message: str) -> None:
        console.print(Text.assemble(("stack:", "dim"), " ", message), highlight=False)

    if with_console:
        from console.server import check_port

        check_port("127.0.0.1", console_port)  # before the demo runs, not after
        keep_stack = True
    os.environ.setdefault("FULFILLMENT_SECRET_KEY", stack.ensure_secret_key())
    # Checked first: workers refusing it would leave the demo waiting for their outputs.
    Sealer.from_env()
    started = stopped_services(stack.status())
    stack.up(say=say)
    settings = Settings.from_env()
    processes: list[subprocess.Popen[bytes]] = []
    try:
        asyncio.run(check_reachable(settings))
        console.print(f"starting {workers} workers (logs in {stack_dir() / 'demo'}) ...")
        processes = start_workers(workers)
        try:
            asyncio.run(run_demo(settings, workers, console))
        except TimeoutError:
            # One of the demo's own waits: the run failed; Kafka and the store answered.
            raise Stalled(
                "the demo's outputs did not all arrive in time; see the worker logs in"
                f" {stack_dir() / 'demo'}"
            ) from None
        if with_console:
            serve_console(console, console_port)
    finally:
        if processes:
            stop_processes(processes)
            console.print(f"stopped {workers} workers")
        if started and not keep_stack:
            stop_services(started, say)
        elif started:
            console.print("stack left running (--keep-stack); `fulfillment stack down` stops it")
