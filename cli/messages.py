"""`fulfillment publish`, `dlq list|replay` and `topics create`: messages for integrators and operators."""

from __future__ import annotations

import json
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import ValidationError
from rich.table import Table

from cli.common import EXIT_FAILURE, console, errors, fail, run
from config import Settings
from consumers.topics import ensure_topics
from producers.publisher import FulfillmentPublisher
from schemas.events import INPUT_DATA, Envelope
from schemas.names import DLQ_SUFFIX, INPUT_TOPICS, TYPE_TOPIC, EventType, Topic

dlq_app = typer.Typer(no_args_is_help=True, help="Inspect and replay dead letters.")
topics_app = typer.Typer(no_args_is_help=True, help="Kafka topics of the contract.")
REPLAY_GROUP = "fulfillment-dlq-replay"
# How often a message was replayed; a replayed letter that fails again is not replayed again unless asked.
REPLAYS_HEADER = "x-dlq-replays"
DLQ_HEADERS = (
    "x-dlq-reason",
    "x-dlq-error",
    "x-original-topic",
    "x-original-partition",
    "x-original-offset",
)


def _read_source(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text()
    except OSError as problem:
        fail(f"cannot read {path}: {problem.strerror}")


def _as_event(event_type: EventType, document: Any, order_id: str | None) -> dict[str, Any]:
    """A full CloudEvent from the file: as given, or `data` wrapped in a new envelope."""
    if not isinstance(document, dict):
        fail("the file must hold one JSON object: a CloudEvent, or its `data` with --order")
    if "specversion" in document:
        return document
    if not order_id:
        fail("the file holds only `data`: give the order id with --order")
    return {
        "specversion": "1.0",
        "id": f"evt-{uuid.uuid4()}",
        "source": "urn:fulfillment-cli",
        "type": event_type.value,
        "subject": order_id,
        "time": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "datacontenttype": "application/json",
        "data": document,
    }


def _validation_errors(problem: ValidationError, prefix: str = "") -> list[str]:
    return [
        f"{'.'.join(str(part) for part in (prefix, *error['loc']) if part != '') or 'event'}: {error['msg']}"
        for error in problem.errors(include_url=False, include_input=False)
    ]


def validate(event_type: EventType, event: dict[str, Any]) -> list[str]:
    """Every problem the worker would dead-letter this event for, readably."""
    try:
        envelope = Envelope.model_validate(event)
    except ValidationError as problem:
        return _validation_errors(problem)
    if envelope.type != event_type:
        return [f"type: is {envelope.type!r}, expected {event_type.value!r}"]
    try:
        INPUT_DATA[event_type].model_validate(envelope.data)
    except ValidationError as problem:
        return _validation_errors(problem, "data")
    return []


def publish(
    event_type: EventType = typer.Argument(
        ..., help="One of the input event types, e.g. order.placed."
    ),
    file: str = typer.Option(
        ..., "--file", "-f", help="JSON file with a CloudEvent or its data; - for stdin."
    ),
    order_id: str | None = typer.Option(
        None, "--order", help="Order id, when the file holds only `data`."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Validate only."),
) -> None:
    """Validate an input event, then publish it to its topic keyed by its subject."""
    if event_type not in INPUT_DATA:
        fail(
            f"{event_type.value} is an output event; publish one of: {', '.join(t.value for t in INPUT_DATA)}"
        )
    try:
        document = json.loads(_read_source(file))
    except json.JSONDecodeError as problem:
        fail(f"{file} is not JSON: {problem.msg} at line {problem.lineno} column {problem.colno}")
    event = _as_event(event_type, document, order_id)
    problems = validate(event_type, event)
    if problems:
        errors.print(f"[red]error:[/red] {event_type.value} is not valid:", highlight=False)
        for line in problems:
            errors.print(f"  - {line}", highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_FAILURE)
    if dry_run:
        console.print(
            f"valid {event_type.value} for order {event['subject']} (id {event['id']})",
            highlight=False,
        )
        return

    async def send() -> None:
        settings = Settings.from_env()
        async with FulfillmentPublisher(settings) as publisher:
            topic = settings.topic(TYPE_TOPIC[event_type])
            await publisher.send_raw(
                topic, str(event["subject"]).encode(), json.dumps(event).encode()
            )

    run(send())
    console.print(
        f"published {event_type.value} {event['id']} for order {event['subject']}", highlight=False
    )


def _dlq_topic(settings: Settings, name: str) -> str:
    base = name.removesuffix(DLQ_SUFFIX)
    if base not in {topic.value for topic in INPUT_TOPICS}:
        fail(
            f"{name} is not an input topic; choose one of: {', '.join(t.value for t in INPUT_TOPICS)}"
        )
    return f"{settings.topic(Topic(base))}{DLQ_SUFFIX}"


async def _letters(
    settings: Settings, topic: str, group: str | None
) -> tuple[AIOKafkaConsumer, list[Any]]:
    """Every dead letter not yet read by `group` (all of them without a group)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **settings.kafka_options(),
    )
    await consumer.start()
    await consumer._client.force_metadata_update()
    partitions = [
        TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])
    ]
    if not partitions:
        await consumer.stop()
        fail(f"topic {topic} does not exist")
    consumer.assign(partitions)
    ends = await consumer.end_offsets(partitions)
    if group is None:
        await consumer.seek_to_beginning(*partitions)
    else:
        for partition in partitions:
            committed = await consumer.committed(partition)
            if committed is None:
                await consumer.seek_to_beginning(partition)
            else:
                consumer.seek(partition, committed)
    letters: list[Any] = []
    while [p for p in partitions if await consumer.position(p) < ends[p]]:
        for records in (await consumer.getmany(timeout_ms=500)).values():
            letters += [r for r in records if r.offset < ends[TopicPartition(r.topic, r.partition)]]
    return consumer, letters


@dlq_app.command("list")
def dlq_list(
    topic: str = typer.Argument(..., help="An input topic (e.g. orders.placed) or its .dlq."),
    limit: int = typer.Option(50, "--limit", min=1),
) -> None:
    """List the dead letters of an input topic with their reasons."""
    settings = Settings.from_env()

    async def read() -> list[Any]:
        consumer, letters = await _letters(settings, _dlq_topic(settings, topic), None)
        await consumer.stop()
        return letters

    letters = run(read())
    table = Table("partition@offset", "key", "reason", "error", "original")
    for letter in letters[-limit:]:
        headers = {k: v.decode(errors="replace") for k, v in letter.headers}
        table.add_row(
            f"{letter.partition}@{letter.offset}",
            (letter.key or b"").decode(errors="replace"),
            headers.get("x-dlq-reason", ""),
            headers.get("x-dlq-error", ""),
            f"{headers.get('x-original-topic', '')}[{headers.get('x-original-partition', '')}]@{headers.get('x-original-offset', '')}",
        )
    console.print(table)
    console.print(f"{len(letters)} dead letters", style="dim")


@dlq_app.command("replay")
def dlq_replay(
    topic: str = typer.Argument(..., help="An input topic (e.g. orders.placed) or its .dlq."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be replayed."),
    again: bool = typer.Option(
        False, "--again", help="Also replay letters that failed after a replay."
    ),
) -> None:
    """Re-publish dead letters to their original topic, once each (safe to run again)."""
    settings = Settings.from_env()
    dlq = _dlq_topic(settings, topic)

    async def replay() -> tuple[int, int]:
        consumer, letters = await _letters(settings, dlq, f"{settings.group_id}-{REPLAY_GROUP}")
        try:
            chosen = [letter for letter in letters if again or _replays(letter) == 0]
            if dry_run:
                return len(chosen), len(letters) - len(chosen)
            async with FulfillmentPublisher(settings) as publisher:
                for letter in chosen:
                    await publisher.send_raw(
                        _original_topic(letter), letter.key, letter.value, _replay_headers(letter)
                    )
            # Committed only after every letter is re-published: a second run replays only newer letters.
            await consumer.commit()
            return len(chosen), len(letters) - len(chosen)
        finally:
            await consumer.stop()

    count, skipped = run(replay())
    verb = "would replay" if dry_run else "replayed"
    note = (
        f"; skipped {skipped} that failed again after a replay (--again replays them)"
        if skipped
        else ""
    )
    console.print(f"{verb} {count} dead letters from {dlq}{note}", highlight=False)


def _replays(letter: Any) -> int:
    value = dict(letter.headers).get(REPLAYS_HEADER, b"0")
    return int(value) if value.isdigit() else 0


def _original_topic(letter: Any) -> str:
    original: bytes = dict(letter.headers).get(
        "x-original-topic", letter.topic.removesuffix(DLQ_SUFFIX).encode()
    )
    return original.decode()


def _replay_headers(letter: Any) -> list[tuple[str, bytes]]:
    kept = [(k, v) for k, v in letter.headers if k not in (*DLQ_HEADERS, REPLAYS_HEADER)]
    return [*kept, (REPLAYS_HEADER, str(_replays(letter) + 1).encode())]


@topics_app.command("create")
def topics_create() -> None:
    """Create the contract's missing topics with FULFILLMENT_PARTITIONS partitions."""
    settings = Settings.from_env()
    created = run(ensure_topics(settings))
    if created:
        console.print(
            f"created {len(created)} topics with {settings.partitions} partitions: {', '.join(created)}",
            highlight=False,
        )
    else:
        console.print("every contract topic already exists")
