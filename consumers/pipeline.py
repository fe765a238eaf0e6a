"""One batch of input records: decode, dead-letter, apply the lifecycle, save, publish.

No record may hold up the others (contract 1.1, "Dead letters"). Outages of the broker or
the store are waited out inside each step (`retrying`); any other failure belongs to a
record. The batch then runs again order by order, and a failing order event by event, so
the record at fault is dead-lettered and everything else is applied. Re-running is safe:
applied event ids are skipped and output ids are deterministic.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Protocol

from config import Settings
from consumers import metrics
from consumers.decode import Rejection, decode
from consumers.kafka_records import printable_name
from consumers.outputs import Message, event_message, is_too_large
from consumers.retry import Backoff, QuietLog, is_outage, retrying
from consumers.sealing import Sealer, UnknownKey
from lifecycle import Outcome, apply, size_problem
from schemas.cloudevents import numbered
from schemas.document import OrderDocument, OutboxMessage, PendingOutbox
from schemas.events import Inbound
from schemas.limits import MAX_DOCUMENT_BYTES, MAX_RECORD_BYTES
from schemas.names import DLQ_SUFFIX, INPUT_TOPICS, DeadLetterHeader, DeadLetterReason
from store.orders import Change, encode

log = logging.getLogger("fulfillment.pipeline")


class Record(Protocol):
    """What the pipeline needs of a consumed Kafka record (aiokafka's ConsumerRecord fits)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Sequence[tuple[str, bytes | None]]: ...


@dataclass(frozen=True)
class PlainRecord:
    """A record handed to the pipeline directly, not fetched (the in-process bench, tests)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes | None]] = ()


class Orders(Protocol):
    """The order store as the pipeline uses it (store.orders.OrderStore; an in-memory fake in tests)."""

    async def load_many(self, order_ids: Iterable[str]) -> dict[str, OrderDocument]: ...

    async def unsent_among(self, orders: Sequence[OrderDocument]) -> set[str]: ...

    async def save_many(self, changes: Sequence[Change], token: str) -> set[str]: ...

    async def mark_sent(self, keys: Sequence[str]) -> None: ...

    async def postpone(self, keys: Sequence[str]) -> None: ...

    async def unsent(self, saved_before: datetime, limit: int = 500) -> list[OrderDocument]: ...


class Outputs(Protocol):
    async def send(self, messages: Sequence[Message]) -> list[BaseException | None]:
        """Send and await the broker; outages raise, a record's own refusal is in its slot."""
        ...


@dataclass(frozen=True)
class Received:
    """A decoded event and the record it came in, to dead-letter it should it fail on its own."""

    event: Inbound
    record: Record


class OverBudget(Exception):
    """Applying the events would make an order's document, or one of its outputs, larger
    than its limit (contract 1.1): the event at fault is then refused, alone."""

    def __init__(self, order_id: str, reason: str) -> None:
        super().__init__(reason)
        self.order_id = order_id
        self.reason = reason


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


class stage:
    """Name the step an exception escaped from, for a dead letter's `x-dlq-error`.

    A class, not @contextmanager: it runs several times per event and a generator costs more.
    """

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, problem: BaseException | None, _trace: object) -> None:
        if isinstance(problem, Exception) and not getattr(problem, "__notes__", None):
            problem.add_note(self.name)


def failure(problem: BaseException, reason: DeadLetterReason | None = None) -> Rejection:
    """A record's own failure, named by type and step; never its message, which may hold values."""
    where = (getattr(problem, "__notes__", None) or ["processing"])[0]
    return Rejection(
        reason or DeadLetterReason.PROCESSING_FAILED, f"{type(problem).__name__} while {where}"
    )


class Pipeline:
    """The imperative shell around `lifecycle`: everything between Kafka and MongoDB."""

    def __init__(
        self,
        settings: Settings,
        store: Orders,
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
        # Orders whose outputs this worker cannot publish now, and why; the relay retries them.
        self.parked: dict[str, str] = {}
        self.batch_started: float | None = None
        self._isolation_log = QuietLog()

    def stalled_seconds(self) -> float:
        """How long the batch in hand has been going (waiting out an outage, say); 0 when idle."""
        started = self.batch_started
        return 0.0 if started is None else time.monotonic() - started

    def stall(self, limit: float) -> str | None:
        """Why this worker makes no progress, once one batch has taken longer than `limit` s."""
        waiting = self.stalled_seconds()
        if waiting <= limit:
            return None
        return f"no progress for {waiting:.0f}s (a batch is waiting out an outage)"

    async def handle(self, records: Sequence[Record]) -> BatchReport:
        """Process a batch; when this returns, every effect is saved and acknowledged."""
        started = time.perf_counter()
        self.batch_started = time.monotonic()
        report = BatchReport(records=len(records))
        try:
            received, rejected = self._decode_all(records)
            await self.dead_letter(rejected)
            report.dead_letters = len(rejected)
            await self._apply(received, report)
        finally:
            self.batch_started = None
        metrics.LAST_PROGRESS.set_to_current_time()
        log.debug(
            "batch in %.1f ms: %d records, %d applied, %d duplicates, %d dead letters, %d published, %d conflicts",
            (time.perf_counter() - started) * 1000,
            report.records,
            report.applied,
            report.duplicates,
            report.dead_letters,
            report.published,
            report.conflicts,
        )
        return report

    # ---- decoding and dead letters --------------------------------------------------------

    def _decode_all(
        self, records: Sequence[Record]
    ) -> tuple[list[Received], list[tuple[Record, Rejection]]]:
        """The batch's usable events (credentials sealed) and the rejections of the rest."""
        received: list[Received] = []
        rejected: list[tuple[Record, Rejection]] = []
        for record in records:
            result = self._decode_one(record)
            if isinstance(result, Rejection):
                rejected.append((record, result))
            else:
                received.append(Received(result, record))
        accepted = ((self._topics[one.record.topic].value, "accepted") for one in received)
        metrics.count(metrics.MESSAGES, accepted)
        return received, rejected

    def _decode_one(self, record: Record) -> Inbound | Rejection:
        try:
            with stage("decoding"):
                result = decode(
                    self._topics[record.topic], record.key, record.value, record.headers
                )
            if isinstance(result, Rejection):
                return result
            with stage("sealing credentials"):
                return self.sealer.seal(result)
        except Exception as problem:
            return failure(problem)

    async def dead_letter(self, rejected: Sequence[tuple[Record, Rejection]]) -> None:
        """Send each record to `<topic>.dlq`; one too large for the broker goes without its value."""
        if not rejected:
            return
        for record, rejection in rejected:
            topic = self._topics[record.topic].value
            metrics.MESSAGES.labels(topic, "dead_letter").inc()
            metrics.DEAD_LETTERS.labels(topic, rejection.reason.value).inc()
            position = {"topic": record.topic, "partition": record.partition}
            log.warning(
                "dead letter: %s (%s)",
                rejection.reason.value,
                rejection.error,
                extra=position | {"offset": record.offset, "reason": rejection.reason.value},
            )
        letters = [dead_letter(record, rejection) for record, rejection in rejected]
        refused = await self._send_refusals(letters)
        # The broker's own limit is below ours: drop what we may (contract 1.1), step by step.
        for smaller in (partial(without_value, omit_headers=True), without_key):
            if not refused:
                return
            refused = await self._send_refusals([smaller(letter) for letter in refused])
        if refused:
            raise RuntimeError("the broker refused dead letters without their values and keys")

    async def _send_refusals(self, messages: Sequence[Message]) -> list[Message]:
        """Send; return the letters refused as too large. Any other refusal is waited out like
        an outage, sending only those letters again: a smaller letter would not pass it, and
        dropping value and key is for size alone (contract 1.1)."""
        too_large: list[Message] = []
        pending = list(messages)
        backoff, quiet = Backoff(cap=30.0), QuietLog()
        while True:
            results = await retrying("publishing dead letters", self.outputs.send, pending)
            refused = [(m, problem) for m, problem in zip(pending, results, strict=True) if problem]
            too_large += [message for message, problem in refused if is_too_large(problem)]
            pending = [message for message, problem in refused if not is_too_large(problem)]
            if not pending:
                return too_large
            if quiet.should_log():
                problem = next(problem for _, problem in refused if not is_too_large(problem))
                log.warning(
                    "the broker refused %d dead letters (%s); trying them again in %.1fs",
                    len(pending),
                    type(problem).__name__,
                    backoff.delay,
                )
            await backoff.wait()

    # ---- applying events ------------------------------------------------------------------

    async def _apply(self, received: Sequence[Received], report: BatchReport) -> None:
        """Apply the whole batch at once; if one record fails on its own, isolate it.

        When the failing order is known (it failed while being decided or encoded), only that
        order is taken apart and the rest of the batch goes on together; otherwise every order
        is re-run on its own.
        """
        pending = list(received)
        while pending:
            problem = await _own_failure(self._apply_together(pending, report))
            if problem is None:
                return
            culprit = getattr(problem, "order_id", None)
            self._log_isolation(problem, culprit)
            if culprit is None:
                for order_events in _by_order(pending).values():
                    await self._apply_isolated(order_events, report)
                return
            # Known to fail together: straight to one event at a time.
            culprits = [r for r in pending if r.event.order_id == culprit]
            await self._apply_isolated(culprits, report, together_first=False)
            pending = [r for r in pending if r.event.order_id != culprit]

    def _log_isolation(self, problem: Exception, culprit: str | None) -> None:
        metrics.ISOLATED.inc()
        if self._isolation_log.should_log():
            log.warning(
                "a record failed on its own (%s); re-running %s event by event "
                "(%d similar lines suppressed)",
                failure(problem).error,
                "its order" if culprit else "the batch order by order",
                self._isolation_log.take_suppressed(),
                extra={"order_id": culprit} if culprit else None,
            )

    async def _apply_isolated(
        self, received: Sequence[Received], report: BatchReport, together_first: bool = True
    ) -> None:
        """One order's events together, else one by one; the one at fault is dead-lettered."""
        if together_first and await _own_failure(self._apply_together(received, report)) is None:
            return
        for one in received:
            problem = await _own_failure(self._apply_one(one, report))
            if problem is not None:
                await self.dead_letter([(one.record, failure(problem))])
                report.dead_letters += 1

    async def _apply_one(self, one: Received, report: BatchReport) -> None:
        """One event on its own; one that would overgrow its order is refused (contract 1.1)."""
        try:
            await self._apply_together([one], report)
        except OverBudget as over:
            try:
                await self._apply_together([one], report, {one.event.id: over.reason})
            except OverBudget as still:
                # Even the refusal does not fit: the order is full.
                rejection = Rejection(DeadLetterReason.TOO_LARGE, still.reason)
                await self.dead_letter([(one.record, rejection)])
                report.dead_letters += 1

    async def _apply_together(
        self,
        received: Sequence[Received],
        report: BatchReport,
        too_large: Mapping[str, str] | None = None,
    ) -> None:
        """Decide every order's events, save with compare-and-set, publish; retry the losers.

        `too_large` maps event ids to why they would overgrow their order: they are refused.
        """
        by_order = _by_order(received)
        # Losers of a race go again at once; an order that keeps losing (a store that refuses
        # its compare-and-set) is tried after a growing pause, never in a hot loop.
        again, rounds = Backoff(first=0.05, cap=5.0), 0
        while by_order:
            rounds += 1
            if rounds > 2:
                await again.wait()
            stored = await retrying("loading orders", self.store.load_many, list(by_order))
            unsent_ids = await retrying(
                "checking outboxes", self.store.unsent_among, list(stored.values())
            )
            token = uuid.uuid4().hex
            round_ = _decide(by_order, stored, unsent_ids, self.clock(), token, too_large or {})
            with stage("saving the order"):
                lost = await retrying("saving orders", self.store.save_many, round_.changes, token)
            for order_id, outcomes in round_.outcomes.items():
                if order_id not in lost:
                    await self._count(by_order[order_id], outcomes, too_large or {}, report)
            report.conflicts += len(lost)
            metrics.CONFLICTS.inc(len(lost))
            saved = [change.order for change in round_.changes if change.order.id not in lost]
            carried = {
                order_id: keys for order_id, keys in round_.carried.items() if order_id not in lost
            }
            report.published += await self.publish(saved + round_.unsent, carried)
            by_order = {order_id: by_order[order_id] for order_id in lost}

    async def _count(
        self,
        events: Sequence[Received],
        outcomes: Sequence[Outcome],
        too_large: Mapping[str, str],
        report: BatchReport,
    ) -> None:
        """Metrics and logs per saved event; an event refused as too large is dead-lettered."""
        kinds = zip((one.event.type.value for one in events), outcomes, strict=True)
        metrics.count(metrics.EVENTS, ((kind, outcome.value) for kind, outcome in kinds))
        for one, outcome in zip(events, outcomes, strict=True):
            ids = {"order_id": one.event.order_id, "event_id": one.event.id}
            if outcome is Outcome.ID_REUSED:
                metrics.ID_REUSED.inc()
                log.warning("event id already applied from another source; not applied", extra=ids)
            elif outcome is Outcome.REFUSED:
                rejection = Rejection(DeadLetterReason.TOO_LARGE, too_large[one.event.id])
                await self.dead_letter([(one.record, rejection)])
                report.dead_letters += 1
            elif log.isEnabledFor(logging.DEBUG):
                log.debug("event %s", outcome.value, extra=ids)
        report.applied += sum(outcome is Outcome.APPLIED for outcome in outcomes)
        report.duplicates += sum(outcome is Outcome.DUPLICATE for outcome in outcomes)

    # ---- publishing -----------------------------------------------------------------------

    async def publish(
        self, orders: Sequence[OrderDocument], carried: Mapping[str, Sequence[str]] | None = None
    ) -> int:
        """Send the orders' outboxes, wait for the broker, then drop their pending markers.

        An order whose outputs cannot go out now is parked: its marker stays, dated now, so
        the relay tries again later after the others, and the other orders go on.
        """
        ready: list[tuple[OrderDocument, list[Message]]] = []
        postponed: list[str] = []
        for order in orders:
            if not order.outbox:
                continue
            messages = self._messages_of(order)
            if messages is None:
                postponed.append(PendingOutbox.key(order.id, order.version))
            else:
                ready.append((order, messages))
        flat = [message for _, messages in ready for message in messages]
        results = iter(await retrying("publishing outputs", self.outputs.send, flat))
        sent_keys: list[str] = []
        sent_topics: list[tuple[str]] = []
        for order, messages in ready:
            problems = [problem for _ in messages if (problem := next(results)) is not None]
            if problems:
                self._park(order.id, f"the broker refused an output ({type(problems[0]).__name__})")
                postponed.append(PendingOutbox.key(order.id, order.version))
                continue
            self._unpark(order.id)
            sent_topics.extend((entry.topic,) for entry in order.outbox)
            sent_keys.append(PendingOutbox.key(order.id, order.version))
            sent_keys.extend((carried or {}).get(order.id, ()))
        await retrying("marking outboxes sent", self.store.mark_sent, sent_keys)
        if postponed:
            # To the back of the relay's queue: parked orders never crowd out the others.
            await retrying("postponing parked outboxes", self.store.postpone, postponed)
        metrics.count(metrics.OUTPUTS, sent_topics)
        return sum(len(messages) for _, messages in ready)

    def _messages_of(self, order: OrderDocument) -> list[Message] | None:
        """The order's outbox as Kafka records, or None (parked) when they cannot be sent."""
        try:
            messages = [
                event_message(
                    self.settings.topic(entry.topic),
                    entry.key,
                    self.sealer.open_output(entry),
                )
                for entry in order.outbox
            ]
        except UnknownKey:
            self._park(order.id, "credentials sealed with a key this worker does not have")
            return None
        except Exception as problem:
            # A stored entry this worker cannot read must not stop every other order's outputs
            # (the relay publishes many orders at once): parked, kept for a person to look at.
            self._park(order.id, f"an output could not be read ({type(problem).__name__})")
            return None
        if any(message.size > MAX_RECORD_BYTES for message in messages):
            self._park(order.id, "an output is above the broker's record limit")
            return None
        return messages

    def _park(self, order_id: str, why: str) -> None:
        if self.parked.get(order_id) != why:
            log.warning(
                "order parked, outputs kept for a retry: %s", why, extra={"order_id": order_id}
            )
        self.parked[order_id] = why
        metrics.PARKED.set(len(self.parked))

    def _unpark(self, order_id: str) -> None:
        if self.parked.pop(order_id, None) is not None:
            log.info("parked order published", extra={"order_id": order_id})
            metrics.PARKED.set(len(self.parked))


@dataclass
class Round:
    """One pass over a batch's orders: what to save, what to (re)send, what was applied."""

    changes: list[Change] = field(default_factory=list)
    unsent: list[OrderDocument] = field(default_factory=list)
    carried: dict[str, list[str]] = field(default_factory=dict)
    outcomes: dict[str, list[Outcome]] = field(default_factory=dict)


async def _own_failure(attempt: Awaitable[None]) -> Exception | None:
    """Await `attempt`: an outage propagates (it is waited out above), a record's own
    failure is returned for isolating it, None when it went through."""
    try:
        await attempt
    except Exception as problem:
        if is_outage(problem):
            raise
        return problem
    return None


def _by_order(received: Sequence[Received]) -> dict[str, list[Received]]:
    by_order: dict[str, list[Received]] = {}
    for one in received:
        by_order.setdefault(one.event.order_id, []).append(one)
    return by_order


def _decide(
    by_order: Mapping[str, Sequence[Received]],
    stored: Mapping[str, OrderDocument],
    unsent_ids: set[str],
    now: datetime,
    token: str,
    too_large: Mapping[str, str],
) -> Round:
    """Apply each order's events in arrival order to its loaded (or new) document."""
    round_ = Round()
    for order_id, order_events in by_order.items():
        try:
            _decide_order(round_, order_id, order_events, stored, unsent_ids, now, token, too_large)
        except Exception as problem:
            # Which order failed, so that the rest of the batch need not be taken apart.
            setattr(problem, "order_id", order_id)  # noqa: B010 - any exception type may arrive
            raise
    return round_


def _decide_order(
    round_: Round,
    order_id: str,
    order_events: Sequence[Received],
    stored: Mapping[str, OrderDocument],
    unsent_ids: set[str],
    now: datetime,
    token: str,
    too_large: Mapping[str, str],
) -> None:
    """One order's part of a round: its events applied, its outputs and document encoded."""
    order = stored.get(order_id) or OrderDocument(_id=order_id)
    if order_id in unsent_ids:
        # A crash or a parked publish left these outputs unsent: they go out with this batch.
        round_.carried[order_id] = [PendingOutbox.key(order_id, order.version)]
    else:
        order.outbox = []
    loaded_version = order.version
    with stage("applying the lifecycle"):
        results = [
            apply(order, one.event, now, too_large.get(one.event.id)) for one in order_events
        ]
    round_.outcomes[order_id] = [result.outcome for result in results]
    # Numbered after the version this save writes: consumers order one order's outputs,
    # across topics, by their `sequence`; a save re-decided after a crash numbers them alike.
    outputs = numbered(
        (output for result in results for output in result.outputs), loaded_version + 1
    )
    with stage("encoding the outputs"):
        problem = next(filter(None, map(size_problem, outputs)), None)
        if problem is not None:
            # Kept, it would park every later output of the order behind it for good.
            raise OverBudget(order_id, problem)
        order.outbox.extend(OutboxMessage.of(output) for output in outputs)
    if any(result.changed for result in results):
        order.version = loaded_version + 1
        with stage("encoding the order"):
            change = encode(order, loaded_version, token, MAX_DOCUMENT_BYTES)
        if change.size > MAX_DOCUMENT_BYTES:
            raise OverBudget(
                order_id,
                f"the order's document would be {change.size} bytes,"
                f" above the limit of {MAX_DOCUMENT_BYTES}",
            )
        round_.changes.append(change)
    elif order.outbox:
        round_.unsent.append(order)


def dead_letter(record: Record, rejection: Rejection) -> Message:
    """The original record, to `<topic>.dlq`, with the contract's `x-` headers added."""
    headers: list[tuple[str, bytes | None]] = [
        # Values byte for byte; a name that is not UTF-8 (read with surrogate escapes) as
        # \xNN text, since a producer sends names as UTF-8.
        *((printable_name(name), value) for name, value in record.headers),
        (DeadLetterHeader.REASON.value, rejection.reason.value.encode()),
        # A text that quotes what a record holds may carry a lone surrogate (an escape in its
        # JSON, a name read with surrogate escapes): written as \uXXXX, never a stalled batch.
        (DeadLetterHeader.ERROR.value, rejection.error.encode("utf-8", "backslashreplace")),
        (DeadLetterHeader.ORIGINAL_TOPIC.value, record.topic.encode()),
        (DeadLetterHeader.ORIGINAL_PARTITION.value, str(record.partition).encode()),
        (DeadLetterHeader.ORIGINAL_OFFSET.value, str(record.offset).encode()),
    ]
    letter = Message(f"{record.topic}{DLQ_SUFFIX}", record.key, record.value, headers)
    return without_value(letter) if letter.size > MAX_RECORD_BYTES else letter


def without_value(letter: Message, omit_headers: bool = False) -> Message:
    """A dead letter too large for the broker: key and headers kept, value dropped (contract 1.1).

    If that is still too large (or was refused), only the dead-letter headers are kept, and if
    even the key makes it too large, the key goes too (`without_key`).
    """
    headers = letter.headers
    if letter.value is not None:
        omitted = (DeadLetterHeader.VALUE_OMITTED.value, str(len(letter.value)).encode())
        headers = [*headers, omitted]
    smaller = Message(letter.topic, letter.key, None, headers)
    if omit_headers or smaller.size > MAX_RECORD_BYTES:
        smaller = Message(letter.topic, letter.key, None, _ours(headers))
    return without_key(smaller) if smaller.size > MAX_RECORD_BYTES else smaller


def without_key(letter: Message) -> Message:
    """The last resort for a dead letter: no value, no key (`x-dlq-key-omitted` says how long
    it was), only the dead-letter headers; it still says what happened and where the record was."""
    ours = _ours(letter.headers)
    if letter.key is not None:
        ours.append((DeadLetterHeader.KEY_OMITTED.value, str(len(letter.key)).encode()))
    return Message(letter.topic, None, None, ours)


def _ours(headers: Sequence[tuple[str, bytes | None]]) -> list[tuple[str, bytes | None]]:
    """The dead-letter headers among `headers`, without the record's own: of each name the
    last (the pipeline adds its own after the record's), and a count only if it is one."""
    last: dict[str, bytes | None] = {}
    for name, value in headers:
        if name in _DEAD_LETTER_HEADERS:
            last[name] = value
    return [
        (name, value)
        for name, value in last.items()
        if name not in _COUNT_HEADERS or _is_count(value)
    ]


def _is_count(value: bytes | None) -> bool:
    return value is not None and value.isdigit() and len(value) <= MAX_COUNT_DIGITS


_DEAD_LETTER_HEADERS = frozenset(header.value for header in DeadLetterHeader)
# Dead-letter headers whose value is a number: a record may carry its own (a replayed letter
# its replay count), any bytes at all, which a letter cut down for its size must not keep.
_COUNT_HEADERS = frozenset(
    {DeadLetterHeader.REPLAYS, DeadLetterHeader.VALUE_OMITTED, DeadLetterHeader.KEY_OMITTED}
)
# Digits of the largest count a header holds (a length in bytes fits in 19).
MAX_COUNT_DIGITS = 19
