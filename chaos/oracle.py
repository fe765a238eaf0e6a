"""The pure lifecycle as oracle: what every order must end as, and which outputs must exist."""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from consumers.decode import Rejection, decode
from lifecycle import apply
from schemas.document import OrderDocument
from schemas.limits import MAX_RECORD_BYTES
from schemas.names import DeadLetterHeader, EventType, Topic

Headers = tuple[tuple[str, bytes | None], ...]


@dataclass(frozen=True)
class Input:
    """One input record as the chaos run sends it: its headers, and the compression of the
    producer batch that carries it (None: uncompressed)."""

    topic: Topic
    key: bytes
    value: bytes
    headers: Headers = ()
    codec: str | None = None


@dataclass
class Expected:
    """One order as the oracle sees it."""

    final: dict[str, Any]
    output_ids: set[str]


def outcome(document: dict[str, Any]) -> dict[str, Any]:
    """The parts of an order that every interleaving must agree on (CONTRACT.md): since 1.1
    also each fulfillment's shipment, its status and reports, and the delivery status.

    `document` is as stored (times are datetimes) or dumped as JSON (times are text)."""
    return {
        "status": document.get("status"),
        "payment_status": document.get("payment_status"),
        # A document written before 1.1 has no delivery status: "none" (CONTRACT.md).
        "delivery_status": document.get("delivery_status", "none"),
        "lines": sorted(
            (line["line_id"], line["fulfilled_quantity"]) for line in document.get("lines", [])
        ),
        "fulfillments": sorted(
            (
                (
                    f["fulfillment_id"],
                    f["status"],
                    _shipment(f.get("shipment")),
                    f.get("shipment_status"),
                    [_report(report) for report in f.get("shipment_events", [])],
                )
                for f in document.get("fulfillments", [])
            ),
            key=lambda fulfillment: fulfillment[0],
        ),
    }


def _shipment(shipment: dict[str, Any] | None) -> dict[str, Any] | None:
    """The fields a shipment has; an absent link and a null one are the same."""
    if shipment is None:
        return None
    return {name: value for name, value in shipment.items() if value is not None}


def _report(report: dict[str, Any]) -> tuple[Any, ...]:
    return (
        report["status"],
        _instant(report["happened_at"]),
        report.get("location"),
        report.get("note"),
        report["event_id"],
    )


def _instant(moment: datetime | str) -> str:
    """RFC 3339 in UTC to the millisecond, whatever offset or form the time came in."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


FULFILLMENT_OUTCOMES = (EventType.FULFILLMENT_COMPLETED, EventType.FULFILLMENT_CANCELLED)


def expect(order_id: str, events: list[Input]) -> Expected:
    """Apply the order's valid events, in the order given, to an empty order.

    Headers and compression change nothing: a valid record with binary or null header values,
    or in a compressed batch, is applied like any other."""
    order = OrderDocument(_id=order_id)
    ids: set[str] = set()
    now = datetime.now(UTC)
    for item in events:
        event = decode(item.topic, item.key, item.value, item.headers)
        if isinstance(event, Rejection):
            continue
        for output in apply(order, event, now).outputs:
            # Holds depend on arrival order, and shipment updates are checked through the
            # state they leave: the fulfillment outcomes are the outputs every order must see.
            if output.type in FULFILLMENT_OUTCOMES:
                ids.add(output.id)
    return Expected(outcome(order.model_dump(mode="json", by_alias=True)), ids)


# The counts of a clean run: every one 0 (`duplicate_outputs` is allowed).
MUST_BE_ZERO = (
    "orders_lost",
    "final_states_differing",
    "events_applied_twice",
    "malformed_not_in_dlq",
    "letters_stripped",
    "expected_outputs_missing",
    "secrets_found",
)


@dataclass
class Verdict:
    """The chaos run's counts; all in `MUST_BE_ZERO` must be 0."""

    orders_expected: int = 0
    orders_lost: int = 0
    final_states_differing: int = 0
    events_applied_twice: int = 0
    # Malformed inputs without a dead letter carrying the reason expected of them.
    malformed_not_in_dlq: int = 0
    # Dead letters without their key, or their value though it fit: a chaos input never needs it.
    letters_stripped: int = 0
    expected_outputs_missing: int = 0
    duplicate_outputs: int = 0
    secrets_found: int = 0
    examples: list[str] = field(default_factory=list)


def judge(
    expected: dict[str, Expected],
    documents: dict[str, dict[str, Any]],
    published: list[str],
    malformed: Mapping[bytes, str],
    dead_lettered: Mapping[bytes, set[str]],
    secrets: list[str],
    haystacks: list[str],
) -> Verdict:
    """Count every way the pipeline could have gone wrong."""
    verdict = Verdict(orders_expected=len(expected))
    seen = Counter(published)
    for order_id, wanted in expected.items():
        document = documents.get(order_id)
        if document is None:
            verdict.orders_lost += 1
            verdict.examples.append(f"lost {order_id}")
            continue
        if outcome(document) != wanted.final:
            verdict.final_states_differing += 1
            verdict.examples.append(f"differs {order_id}: {outcome(document)} != {wanted.final}")
        applied = Counter(document.get("applied_event_ids", []))
        entries = Counter(
            (e["event_id"], e["type"])
            for e in document.get("timeline", [])
            if e["type"] in _INPUT_TYPES
        )
        twice = sum(1 for count in applied.values() if count > 1) + sum(
            1 for count in entries.values() if count > 1
        )
        verdict.events_applied_twice += twice
        missing = wanted.output_ids - set(seen)
        verdict.expected_outputs_missing += len(missing)
        if missing:
            verdict.examples.append(f"outputs missing for {order_id}: {sorted(missing)[:3]}")
    verdict.duplicate_outputs = sum(count - 1 for count in seen.values() if count > 1)
    unmatched = without_their_letter(malformed, dead_lettered)
    verdict.malformed_not_in_dlq = len(unmatched)
    verdict.examples += [
        f"no {malformed[key]} dead letter for {key!r}: {sorted(dead_lettered.get(key, set()))}"
        for key in unmatched[:5]
    ]
    verdict.secrets_found = count_secrets(secrets, haystacks)
    return verdict


def without_their_letter(
    malformed: Mapping[bytes, str], dead_lettered: Mapping[bytes, set[str]]
) -> list[bytes]:
    """The malformed inputs with no dead letter giving the reason expected of them."""
    return [key for key, reason in malformed.items() if reason not in dead_lettered.get(key, set())]


def reasons_by_key(letters: Iterable[Any]) -> dict[bytes, set[str]]:
    """The `x-dlq-reason` of each dead letter (aiokafka records), by the letter's key."""
    found: dict[bytes, set[str]] = {}
    for letter in letters:
        reason = dict(letter.headers).get(DeadLetterHeader.REASON.value)
        if letter.key is not None and reason:
            found.setdefault(letter.key, set()).add(reason.decode(errors="replace"))
    return found


# Room for the dead-letter headers: a record this much under the limit fits as a dead letter.
_FITS = MAX_RECORD_BYTES - 100_000


def stripped_letters(letters: Iterable[Any], inputs: Mapping[bytes, Input]) -> list[str]:
    """Dead letters that lost what contract 1.1 lets them lose only for size: the key, the
    value of a record that fit, or the record's own headers. `inputs` are the malformed
    records sent, by key."""
    found = []
    for letter in letters:
        headers = dict(letter.headers)
        sent = inputs.get(letter.key) if letter.key is not None else None
        lost_value = DeadLetterHeader.VALUE_OMITTED.value in headers and (
            sent is None or len(sent.value) < _FITS
        )
        lost_headers = sent is not None and any(
            headers.get(name, b"missing") != value for name, value in sent.headers
        )
        if DeadLetterHeader.KEY_OMITTED.value in headers or lost_value or lost_headers:
            where = (headers.get(DeadLetterHeader.ORIGINAL_TOPIC.value) or b"?").decode()
            offset = (headers.get(DeadLetterHeader.ORIGINAL_OFFSET.value) or b"?").decode()
            found.append(f"dead letter of {where}@{offset} without its key, value or headers")
    return found


def trace_missing_letters(
    unmatched: Iterable[bytes],
    inputs: Iterable[Any],
    letters: Iterable[Any],
    documents: Mapping[str, Any],
) -> list[str]:
    """Where each malformed input without its dead letter went: whether Kafka holds the input
    (topic, partition, offset), whether an order document was made of it, and how many dead
    letters carry no key (those the oracle cannot match)."""
    where: dict[bytes, list[str]] = {}
    for record in inputs:
        if record.key is not None:
            where.setdefault(record.key, []).append(
                f"{record.topic}[{record.partition}]@{record.offset}"
            )
    keyless = [dict(letter.headers) for letter in letters if letter.key is None]
    lines = [
        f"{key!r}: "
        + (f"input at {', '.join(where[key])}" if key in where else "no input in Kafka")
        + (", applied as an order" if key.decode(errors="replace") in documents else "")
        for key in unmatched
    ]
    if keyless:
        reasons = Counter(h.get(DeadLetterHeader.REASON.value, b"?").decode() for h in keyless)
        lines.append(f"{len(keyless)} dead letters without a key: {dict(reasons)}")
    return lines


def count_secrets(secrets: list[str], haystacks: list[str]) -> int:
    """Occurrences of any secret in any text, in one pass per text."""
    if not secrets:
        return 0
    prefix = os.path.commonprefix(secrets)  # noqa: RUF071 - a string prefix is what is wanted
    if len(prefix) < 3:
        return sum(text.count(secret) for secret in secrets for text in haystacks)
    wanted = set(secrets)
    candidates = re.compile(re.escape(prefix) + r"[\w.~+/=-]*")
    return sum(
        1
        for text in haystacks
        for match in candidates.finditer(text)
        if _contains_secret(match.group(), wanted)
    )


def _contains_secret(candidate: str, wanted: set[str]) -> bool:
    return any(candidate[:end] in wanted for end in range(len(candidate), 0, -1))


_INPUT_TYPES = {
    t.value
    for t in (
        EventType.ORDER_PLACED,
        EventType.PAYMENT_CAPTURED,
        EventType.FULFILLMENT_REQUESTED,
        # Noted once when applied (a remembered one is noted under another type before).
        EventType.FULFILLMENT_TRACKING_UPDATED,
        EventType.SHIPMENT_STATUS_REPORTED,
    )
}


def dumps(document: dict[str, Any]) -> str:
    return json.dumps(document, default=str)
