"""`fulfillment publish`, `dlq list|replay` and `topics create`: messages for integrators and operators."""

from __future__ import annotations

import contextlib
import json
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from aiokafka import AIOKafkaConsumer, TopicPartition
from rich.table import Table

from cli.common import (
    EXIT_FAILURE,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    UNACKNOWLEDGED,
    cli_settings,
    console,
    error_line,
    errors,
    fail,
    open_publisher,
    run,
)
from config import Settings
from consumers.decode import Rejection, decode
from consumers.offsets import seek_to_committed
from consumers.topics import create_missing
from schemas.cloudevents import envelope
from schemas.events import INPUT_DATA
from schemas.limits import MAX_INPUT_BYTES, MiB
from schemas.names import (
    DLQ_SUFFIX,
    INPUT_TOPICS,
    TYPE_TOPIC,
    DeadLetterHeader,
    EventType,
    Topic,
)

dlq_app = typer.Typer(no_args_is_help=True, help="Inspect and replay dead letters.")
topics_app = typer.Typer(no_args_is_help=True, help="Kafka topics of the contract.")
REPLAY_GROUP = "fulfillment-dlq-replay"
# The group `--again` reads with: `<replay group>-again`.
AGAIN_SUFFIX = "again"
CLI_SOURCE = "urn:fulfillment-cli"
# The headers a dead letter gained; a replay sends the record back without them.
# REPLAYS counts replays: a replayed letter that fails again is not replayed again unless asked.
DLQ_HEADERS = tuple(DeadLetterHeader)
# A file to publish may be pretty-printed, so larger than its event: read up to this much.
MAX_SOURCE_BYTES = 16 * MiB
# Awaited between reading the end offsets and reading the letters (a seam for tests).
Hook = Callable[[], Awaitable[None]]


def _read_source(path: str) -> str:
    """The text of `path` (- for stdin); one-line failures for unreadable or non-UTF-8 input."""
    name = "stdin" if path == "-" else path
    if not path:
        fail("--file is empty: give a file's path, or - for stdin")
    try:
        if path == "-":
            raw = sys.stdin.buffer.read(MAX_SOURCE_BYTES + 1)
        else:
            with Path(path).open("rb") as source:
                raw = source.read(MAX_SOURCE_BYTES + 1)
    except OSError as problem:
        fail(f"cannot read {path}: {problem.strerror}")
    if len(raw) > MAX_SOURCE_BYTES:
        # Read no further: /dev/zero, or a log file given by mistake, would fill the memory.
        fail(
            f"{name} is larger than {MAX_SOURCE_BYTES // MiB} MiB;"
            f" an event may be at most {MAX_INPUT_BYTES // MiB} MiB"
        )
    try:
        # A byte-order mark, which some editors write, is not an error.
        return raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as problem:
        # The offset of the first bad byte, counted from 0 as hex viewers do.
        fail(f"{name} is not UTF-8 text (byte {problem.start})")


def _as_event(event_type: EventType, document: Any, order_id: str | None) -> dict[str, Any]:
    """A full CloudEvent from the file: as given, or `data` wrapped in a new envelope."""
    if not isinstance(document, dict):
        fail("the file must hold one JSON object: a CloudEvent, or its `data` with --order")
    if "specversion" in document:
        subject = document.get("subject")
        if order_id and order_id != subject:
            fail(f"--order {order_id} is not the CloudEvent's subject {subject!r}: drop one")
        return document
    if not order_id:
        fail("the file holds only `data`: give the order id with --order")
    return envelope(
        event_type,
        order_id,
        document,
        event_id=f"evt-{uuid.uuid4()}",
        source=CLI_SOURCE,
        time=datetime.now(UTC),
    )


def validate(event_type: EventType, event: dict[str, Any]) -> list[str]:
    """Every problem the worker would dead-letter this event for: the worker's own decoding."""
    subject = event.get("subject")
    # Keyed as a producer would send it; a lone surrogate (JSON allows "\udc80") is sent as
    # its bytes, which the worker's decoding then refuses with a reason.
    key = subject.encode(errors="surrogatepass") if isinstance(subject, str) else None
    result = decode(TYPE_TOPIC[event_type], key, json.dumps(event).encode())
    # `x-dlq-error` joins the problems with "; ": one per line here.
    return result.error.split("; ") if isinstance(result, Rejection) else []


_INPUT_TYPES = ", ".join(event_type.value for event_type in INPUT_DATA)


def publish(
    event_type: EventType = typer.Argument(
        ...,
        metavar="TYPE",
        show_choices=False,  # the choices would list the output types too
        help=f"An input event type: {_INPUT_TYPES}.",
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
        fail(f"{event_type.value} is an output event; publish one of: {_INPUT_TYPES}")
    try:
        document = json.loads(_read_source(file))
    except json.JSONDecodeError as problem:
        fail(f"{file} is not JSON: {problem.msg} at line {problem.lineno} column {problem.colno}")
    except RecursionError:
        fail(f"{file} is nested too deeply to read")
    except ValueError as problem:  # a number too long to convert, say
        fail(f"{file} cannot be read as JSON: {problem}".split(";")[0])
    event = _as_event(event_type, document, order_id)
    problems = validate(event_type, event)
    if problems:
        errors.print(error_line(f"{event_type.value} is not valid:"))
        for line in problems:
            errors.print(f"  - {line}", highlight=False)
        raise typer.Exit(EXIT_FAILURE)
    if dry_run:
        console.print(
            f"valid {event_type.value} for order {event['subject']} (id {event['id']})",
            highlight=False,
            soft_wrap=True,
        )
        return

    async def send() -> None:
        settings = cli_settings()
        async with open_publisher(settings) as publisher:
            topic = settings.topic(TYPE_TOPIC[event_type])
            try:
                await publisher.send_raw(
                    topic, str(event["subject"]).encode(), json.dumps(event).encode()
                )
            except UNACKNOWLEDGED:
                # The broker may have written it: not "unreachable", and a retry should reuse
                # the id (a new one would be a second event), which --order never printed.
                fail(
                    f"Kafka did not acknowledge {event_type.value} {event['id']} for order"
                    f" {event['subject']} in time: it may still arrive; to send it again"
                    " safely, publish it as a whole CloudEvent with that id",
                    EXIT_UNAVAILABLE,
                )

    run(send())
    console.print(
        f"published {event_type.value} {event['id']} for order {event['subject']}",
        highlight=False,
        soft_wrap=True,
    )


def _dlq_topic(settings: Settings, name: str) -> str:
    base = name.removesuffix(DLQ_SUFFIX)
    if base not in {topic.value for topic in INPUT_TOPICS}:
        fail(
            f"{name} is not an input topic; choose one of: {', '.join(t.value for t in INPUT_TOPICS)}",
            EXIT_USAGE,
        )
    return f"{settings.topic(Topic(base))}{DLQ_SUFFIX}"


async def _start_consumer(settings: Settings, group: str | None) -> AIOKafkaConsumer:
    """A started consumer that commits only when told; closed again if starting fails."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **settings.kafka_options(),
    )
    try:
        await consumer.start()
    except BaseException:
        await consumer.stop()
        raise
    return consumer


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    """Every partition of `topic`, from fresh metadata; a one-line failure if it does not exist."""
    await consumer._client.force_metadata_update()
    found = sorted(consumer.partitions_for_topic(topic) or [])
    if not found:
        fail(f"topic {topic} does not exist")
    return [TopicPartition(topic, p) for p in found]


# How long reading dead letters may go without receiving any, while some are still due.
READ_STALL_S = 30.0


async def _letters(
    consumer: AIOKafkaConsumer,
    topic: str,
    from_committed: bool,
    after_snapshot: Hook | None = None,
) -> list[Any]:
    """Every dead letter below the end offsets as they stood when called, from the group's
    committed offsets (or from the beginning)."""
    letters, _ = await _letters_below(consumer, topic, from_committed, after_snapshot)
    return letters


async def _letters_below(
    consumer: AIOKafkaConsumer,
    topic: str,
    from_committed: bool,
    after_snapshot: Hook | None = None,
    until: Mapping[int, int] | None = None,
) -> tuple[list[Any], dict[int, int]]:
    """`_letters`, and the end offset of each partition it read up to; with `until`, no
    further than those (a snapshot taken before, by partition)."""
    partitions = await _partitions(consumer, topic)
    # The snapshot is taken before anything is assigned or fetched: letters arriving later
    # are left for the next run, whatever the fetcher happens to read ahead.
    ends = await consumer.end_offsets(partitions)
    if until is not None:
        ends = {p: min(end, until.get(p.partition, 0)) for p, end in ends.items()}
    if after_snapshot is not None:
        await after_snapshot()
    consumer.assign(partitions)
    if from_committed:
        await seek_to_committed(consumer, partitions)
    else:
        await consumer.seek_to_beginning(*partitions)
    letters: list[Any] = []
    progress = time.monotonic()
    while [p for p in partitions if await consumer.position(p) < ends[p]]:
        batches = await consumer.getmany(timeout_ms=500)
        for records in batches.values():
            letters += [r for r in records if r.offset < ends[TopicPartition(r.topic, r.partition)]]
        if batches:
            progress = time.monotonic()
        elif time.monotonic() - progress > READ_STALL_S:
            # Letters known to be there and none coming: the broker went away mid-read.
            raise TimeoutError(f"no dead letters arrived for {READ_STALL_S:.0f} s")
    return letters, {p.partition: end for p, end in ends.items()}


def _header(letter: Any, name: DeadLetterHeader, default: str = "") -> str:
    value: bytes | None = dict(letter.headers).get(name)
    return value.decode(errors="replace") if value is not None else default


@dlq_app.command("list")
def dlq_list(
    topic: str = typer.Argument(..., help="An input topic (e.g. orders.placed) or its .dlq."),
    limit: int = typer.Option(50, "--limit", min=1),
) -> None:
    """List the dead letters of an input topic with their reasons."""
    settings = cli_settings()
    dlq = _dlq_topic(settings, topic)

    async def read() -> list[Any]:
        consumer = await _start_consumer(settings, None)
        try:
            return await _letters(consumer, dlq, from_committed=False)
        finally:
            await consumer.stop()

    # In the order they were dead-lettered, whatever order the partitions were read in.
    letters = sorted(run(read()), key=lambda r: (r.timestamp, r.partition, r.offset))
    shown = letters[-limit:]
    console.print(_table(shown))
    more = f", the last {len(shown)} shown (--limit)" if len(shown) < len(letters) else ""
    console.print(f"{len(letters)} dead letters{more}", style="dim")


def _table(letters: list[Any]) -> Table:
    """Dead letters, one row each: where, key, why, where from, and how often replayed."""
    table = Table("partition@offset", "key", "reason", "error", "original", "replays")
    # Ids, reasons and positions are what an operator copies or greps for: wrapped whole on
    # a narrow terminal, never cut to "ord-7328…".
    for column in table.columns:
        column.overflow = "fold"
    for letter in letters:
        table.add_row(
            f"{letter.partition}@{letter.offset}",
            (letter.key or b"").decode(errors="replace"),
            _header(letter, DeadLetterHeader.REASON),
            _header(letter, DeadLetterHeader.ERROR),
            f"{_header(letter, DeadLetterHeader.ORIGINAL_TOPIC)}[{_header(letter, DeadLetterHeader.ORIGINAL_PARTITION)}]"
            f"@{_header(letter, DeadLetterHeader.ORIGINAL_OFFSET)}",
            str(_replays(letter)),
        )
    return table


def replayed_positions(letters: list[Any]) -> dict[TopicPartition, int]:
    """What the replay group commits: per partition, the offset after the last letter replayed.

    Never the consumer's position, which may be past letters it read ahead and did not replay.
    """
    positions: dict[TopicPartition, int] = {}
    for letter in letters:
        partition = _partition(letter)
        positions[partition] = max(positions.get(partition, 0), letter.offset + 1)
    return positions


@dataclass(frozen=True)
class Replay:
    """What one replay did with the letters it read."""

    replayed: int
    # Failed again after a replay: left alone unless --again.
    failed_again: int
    # Dead-lettered without their value (too large for the broker): nothing to send back.
    value_omitted: int
    # The letters replayed (or, on a dry run, that would be).
    chosen: tuple[Any, ...] = ()

    def summary(self, verb: str, dlq: str) -> str:
        """One line for the operator: what was (or would be) replayed, and what was skipped why."""
        notes = []
        if self.failed_again:
            notes.append(
                f"skipped {self.failed_again} that failed again after a replay (--again replays them)"
            )
        if self.value_omitted:
            notes.append(f"skipped {self.value_omitted} whose value was too large to keep")
        return "; ".join([f"{verb} {self.replayed} dead letters from {dlq}", *notes])


def _choose(
    letters: list[Any], again: bool, replayed_below: Mapping[TopicPartition, int] | None = None
) -> tuple[list[Any], Replay]:
    """The letters to replay, and the counts of what is left out and why. `replayed_below`
    (with `again`): per partition, where the replay group stands; a first-time letter below
    it was replayed by an earlier run and is left out without being counted."""
    chosen, failed_again, omitted = [], 0, 0
    for letter in letters:
        if value_omitted(letter):
            omitted += 1
        elif _replays(letter) > 0:
            if again:
                chosen.append(letter)
            else:
                failed_again += 1
        elif replayed_below is None or letter.offset >= replayed_below.get(_partition(letter), 0):
            chosen.append(letter)
    return chosen, Replay(len(chosen), failed_again, omitted, tuple(chosen))


def _partition(letter: Any) -> TopicPartition:
    return TopicPartition(letter.topic, letter.partition)


@dataclass
class ReplayReading:
    """What one replay run would send, and the consumers whose groups it commits to.

    The replay group reads from where it stands and skips letters that failed again after a
    replay. `--again` reads with a group of its own, from where the last `--again` run
    stood, so those skipped letters stay within its reach; both groups then commit what
    it replayed.
    """

    chosen: list[Any]
    outcome: Replay
    consumers: list[AIOKafkaConsumer]
    # The end offset each partition was read up to: a later run given these (`until`)
    # replays what this one chose, never letters that arrived since.
    ends: dict[int, int]

    async def commit(self, sent: Sequence[Any]) -> None:
        """Both groups past the letters sent, never back."""
        positions = replayed_positions(list(sent))
        for consumer in self.consumers:
            ahead = {}
            for partition, position in positions.items():
                if position > (await consumer.committed(partition) or 0):
                    ahead[partition] = position
            if ahead:
                await consumer.commit(ahead)

    async def close(self) -> None:
        for consumer in self.consumers:
            await consumer.stop()


async def read_replayable(
    settings: Settings,
    dlq: str,
    again: bool,
    after_snapshot: Hook | None = None,
    until: Mapping[int, int] | None = None,
) -> ReplayReading:
    """What a replay of `dlq` reads and would send now, no further than `until` if given (see
    `ReplayReading`)."""
    group = f"{settings.group_id}-{REPLAY_GROUP}"
    consumers = [await _start_consumer(settings, group)]
    try:
        if not again:
            letters, ends = await _letters_below(consumers[0], dlq, True, after_snapshot, until)
            chosen, outcome = _choose(letters, again)
            return ReplayReading(chosen, outcome, consumers, ends)
        consumers.append(await _start_consumer(settings, f"{group}-{AGAIN_SUFFIX}"))
        letters, ends = await _letters_below(consumers[1], dlq, True, after_snapshot, until)
        # The replay group commits too: its partitions assigned, never fetched.
        partitions = await _partitions(consumers[0], dlq)
        consumers[0].assign(partitions)
        consumers[0].pause(*partitions)
        stands = {p: await consumers[0].committed(p) or 0 for p in partitions}
        chosen, outcome = _choose(letters, again, stands)
        return ReplayReading(chosen, outcome, consumers, ends)
    except BaseException:
        for consumer in consumers:
            await consumer.stop()
        raise


async def replay_letters(
    settings: Settings,
    dlq: str,
    again: bool = False,
    dry_run: bool = False,
    after_snapshot: Hook | None = None,
    until: Mapping[int, int] | None = None,
) -> Replay:
    """Re-publish the unread letters of `dlq` to their original topics, no further than
    `until` if given (see `ReplayReading`)."""
    reading = await read_replayable(settings, dlq, again, after_snapshot, until)
    try:
        if dry_run or not reading.chosen:
            return reading.outcome
        sent: list[Any] = []
        try:
            async with open_publisher(settings) as publisher:
                for letter in reading.chosen:
                    await publisher.send_raw(
                        _original_topic(letter), letter.key, letter.value, _replay_headers(letter)
                    )
                    sent.append(letter)
        except BaseException:
            # Stopped part-way: what went out counts as replayed, the rest waits for the next run.
            if sent:
                with contextlib.suppress(Exception):
                    await reading.commit(sent)
            raise
        # Committed only after every letter is re-published, and only up to what was.
        await reading.commit(reading.chosen)
        return reading.outcome
    finally:
        await reading.close()


@dlq_app.command("replay")
def dlq_replay(
    topic: str = typer.Argument(..., help="An input topic (e.g. orders.placed) or its .dlq."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be replayed."),
    again: bool = typer.Option(
        False, "--again", help="Also replay letters that failed after a replay."
    ),
) -> None:
    """Re-publish dead letters to their original topic, once each (safe to run again)."""
    settings = cli_settings()
    dlq = _dlq_topic(settings, topic)
    outcome = run(replay_letters(settings, dlq, again, dry_run))
    verb = "would replay" if dry_run else "replayed"
    if dry_run and outcome.chosen:
        console.print(_table(list(outcome.chosen)))
    console.print(outcome.summary(verb, dlq), highlight=False)


# Digits of a replay count: more is not a count this project wrote (and int() refuses
# thousands of them).
MAX_REPLAY_DIGITS = 9


def _replays(letter: Any) -> int:
    # A header may have no value at all, or any bytes (the record's own, say): what is not a
    # count this project could have written counts as no replay.
    value = dict(letter.headers).get(DeadLetterHeader.REPLAYS) or b"0"
    return int(value) if value.isdigit() and len(value) <= MAX_REPLAY_DIGITS else 0


def value_omitted(letter: Any) -> bool:
    """Whether the worker dead-lettered the record without its value (too large to keep): a
    letter with a value is replayable, whatever headers the record itself carried."""
    return letter.value is None and DeadLetterHeader.VALUE_OMITTED in dict(letter.headers)


def _original_topic(letter: Any) -> str:
    """Where the letter came from: its header, else its topic without `.dlq` (the header may
    have no value, or not be text, when the record carried its own)."""
    original: bytes | None = dict(letter.headers).get(DeadLetterHeader.ORIGINAL_TOPIC)
    with contextlib.suppress(UnicodeDecodeError):
        if original:
            return original.decode()
    topic: str = letter.topic
    return topic.removesuffix(DLQ_SUFFIX)


def _replay_headers(letter: Any) -> list[tuple[str, bytes]]:
    kept = [(k, v) for k, v in letter.headers if k not in DLQ_HEADERS]
    return [*kept, (DeadLetterHeader.REPLAYS.value, str(_replays(letter) + 1).encode())]


@topics_app.command("create")
def topics_create() -> None:
    """Create the contract's missing topics: as many partitions as the input topics have,
    else FULFILLMENT_PARTITIONS."""
    settings = cli_settings()
    created = run(create_missing(settings))
    if created.names:
        console.print(
            f"created {len(created.names)} topics with {created.partitions} partitions:"
            f" {', '.join(created.names)}",
            highlight=False,
        )
    else:
        console.print("every contract topic already exists")
