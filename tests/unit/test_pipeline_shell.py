"""The pipeline's shell against in-memory fakes: isolation, outages, races, carried outboxes, parking."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Sequence
from typing import Any

import bson
import pytest
from aiokafka.errors import InvalidRequiredAcksError, MessageSizeTooLargeError
from cryptography.fernet import Fernet
from prometheus_client import REGISTRY
from pymongo.errors import WriteError

import lifecycle
from config import Settings
from consumers import pipeline as pipeline_module
from consumers.decode import Rejection
from consumers.outputs import Message
from consumers.pipeline import Pipeline, dead_letter, utc_now
from consumers.relay import relay_once
from consumers.sealing import Sealer
from schemas.document import OrderDocument
from schemas.limits import MAX_RECORD_BYTES
from schemas.names import DeadLetterHeader, DeadLetterReason, EventType, Topic
from store.orders import Change
from tests.factories import Record, envelope, line, placed_data
from tests.fakes import FakeOutputs, FakeStore

KEY_A = Fernet.generate_key().decode()
KEY_B = Fernet.generate_key().decode()
_offsets = iter(range(1_000_000))


def record(event_type: EventType, order_id: str, data: dict[str, Any], **kw: Any) -> Record:
    value = json.dumps(envelope(event_type, order_id, data, **kw)).encode()
    topic = {
        EventType.ORDER_PLACED: Topic.ORDERS_PLACED,
        EventType.PAYMENT_CAPTURED: Topic.PAYMENTS_CAPTURED,
        EventType.FULFILLMENT_REQUESTED: Topic.FULFILLMENTS_REQUESTED,
    }[event_type]
    return Record(topic.value, 0, next(_offsets), order_id.encode(), value)


def order_records(order_id: str, digital: bool = False, **request: Any) -> list[Record]:
    """placed + captured + requested: the records that fulfill one order."""
    lines = [line("L1", 1, "digital" if digital else "shipment", "5.00")]
    return [
        record(EventType.ORDER_PLACED, order_id, placed_data(lines)),
        record(
            EventType.PAYMENT_CAPTURED,
            order_id,
            {"payment_id": f"pay-{order_id}", "amount": "5.00", "currency": "USD"},
        ),
        record(EventType.FULFILLMENT_REQUESTED, order_id, {"fulfillment_id": "f1", **request}),
    ]


def fail_on(monkeypatch: pytest.MonkeyPatch, event_id: str) -> None:
    """The lifecycle raises on `event_id` alone, as a defect of ours would."""
    real_apply = lifecycle.apply

    def apply(order: OrderDocument, event: Any, now: Any, too_large: str | None = None) -> Any:
        if event.id == event_id:
            raise RuntimeError("a bug")
        return real_apply(order, event, now, too_large)

    monkeypatch.setattr(pipeline_module, "apply", apply)


def make(store: FakeStore, outputs: FakeOutputs, key: str = KEY_A) -> Pipeline:
    return Pipeline(Settings(), store, outputs, Sealer(key))


def completed_orders(outputs: FakeOutputs) -> list[str]:
    return [m.key.decode() for m in outputs.on(Topic.FULFILLMENTS_COMPLETED) if m.key]


def reasons(outputs: FakeOutputs) -> list[bytes | None]:
    return [dict(m.headers)[DeadLetterHeader.REASON] for m in outputs.on(".dlq")]


async def test_a_record_the_store_refuses_is_dead_lettered_and_the_rest_of_its_batch_applies() -> (
    None
):
    store, outputs = FakeStore(), FakeOutputs()
    refused_once: list[str] = []

    def refuse(order: OrderDocument) -> Exception | None:
        if order.id == "poison" and order.payment_status == "captured":
            refused_once.append(order.id)
            return WriteError("cannot store it", code=2)
        return None

    store.refuse = refuse
    batch = order_records("a") + order_records("poison") + order_records("b")
    await make(store, outputs).handle(batch)
    assert sorted(completed_orders(outputs)) == ["a", "b"]
    letters = outputs.on(".dlq")
    assert reasons(outputs) == [b"processing_failed"]
    assert dict(letters[0].headers)[DeadLetterHeader.ERROR] == (
        b"WriteError while saving the order"
    )
    assert letters[0].value == batch[4].value  # the capture, the record at fault
    poison = store.stored("poison")
    assert poison is not None and poison.placed and not poison.captures


async def test_outages_of_store_and_broker_are_waited_out_and_dead_letter_nothing() -> None:
    store, outputs = FakeStore(), FakeOutputs()
    store.outages, outputs.outages = 3, 2
    await make(store, outputs).handle(order_records("a"))
    assert completed_orders(outputs) == ["a"]
    assert outputs.on(".dlq") == []


async def test_a_defect_applying_one_event_dead_letters_that_event_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    batch = order_records("a") + order_records("b")
    fail_on(monkeypatch, json.loads(batch[3].value or b"")["id"])  # b's order.placed
    store, outputs = FakeStore(), FakeOutputs()
    await make(store, outputs).handle(batch)
    assert completed_orders(outputs) == ["a"]
    letter = outputs.on(".dlq")[0]
    assert dict(letter.headers)[DeadLetterHeader.ERROR] == (
        b"RuntimeError while applying the lifecycle"
    )
    b = store.stored("b")
    assert b is not None and not b.placed and len(b.captures) == 1 and b.fulfillments


async def test_an_event_that_would_overgrow_its_order_is_dead_lettered_too_large(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store, outputs = FakeStore(), FakeOutputs()
    await make(store, outputs).handle(order_records("a")[:1])
    stored = store.documents["a"]
    monkeypatch.setattr(pipeline_module, "MAX_DOCUMENT_BYTES", len(stored) + 600)
    big = record(
        EventType.PAYMENT_CAPTURED,
        "a",
        {"payment_id": "p-big", "amount": "1.00", "currency": "USD", "method": "x" * 1000},
    )
    small = record(
        EventType.PAYMENT_CAPTURED,
        "a",
        {"payment_id": "p-small", "amount": "1.00", "currency": "USD"},
    )
    await make(store, outputs).handle([big, small])
    assert reasons(outputs) == [b"too_large"]
    assert b"above the limit" in (
        dict(outputs.on(".dlq")[0].headers)[DeadLetterHeader.ERROR] or b""
    )
    order = store.stored("a")
    assert order is not None and [c.payment_id for c in order.captures] == ["p-small"]


async def test_an_event_whose_output_would_be_too_large_is_dead_lettered_and_its_order_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store, outputs = FakeStore(), FakeOutputs()
    worker = make(store, outputs)
    await worker.handle(order_records("a")[:1])

    def too_large(event: Any) -> str | None:
        paid = (
            event.type is EventType.ORDER_STATUS_CHANGED and event.data.to_status == "unfulfilled"
        )
        return (
            "the order.status_changed event would be too large"
            if paid and event.subject == "a"
            else None
        )

    monkeypatch.setattr(pipeline_module, "size_problem", too_large)
    capture, request = order_records("a")[1:]
    await worker.handle([capture, *order_records("b")])
    assert reasons(outputs) == [b"too_large"]
    letter = outputs.on(".dlq")[0]
    assert letter.value == capture.value
    assert dict(letter.headers)[DeadLetterHeader.ERROR] == (
        b"the order.status_changed event would be too large"
    )
    assert completed_orders(outputs) == ["b"]
    a = store.stored("a")
    assert a is not None and a.placed and not a.captures
    # Nothing of it waits in the order's outbox: the order's next outputs go out.
    await worker.handle([request])
    assert [m.key for m in outputs.on(Topic.FULFILLMENTS_HELD)] == [b"a"]
    assert worker.parked == {}


async def test_a_lost_race_is_decided_again_on_the_winners_state() -> None:
    store, outputs = FakeStore(), FakeOutputs()
    first = make(store, outputs)
    await first.handle(order_records("a")[:1])
    rival = order_records("a")[1]
    raced = False

    def rival_saves_first() -> None:
        nonlocal raced
        if not raced:
            raced = True
            winner = store.stored("a")
            assert winner is not None
            # Another worker applies the capture and saves before us.
            from consumers.pipeline import utc_now
            from lifecycle import apply as lifecycle_apply
            from store.orders import EncodedOrder, encode

            event = first._decode_one(rival)
            assert not isinstance(event, Rejection)
            lifecycle_apply(winner, event, utc_now())
            winner.version += 1
            whole = encode(winner, 0, "rival").write
            assert isinstance(whole, EncodedOrder)
            store.documents["a"] = bytes(whole.raw)

    store.before_save = rival_saves_first
    report = await first.handle([order_records("a")[2]])
    assert report.conflicts == 1
    assert completed_orders(outputs) == ["a"]
    order = store.stored("a")
    assert order is not None and order.version == 3 and order.status == "fulfilled"


async def test_outputs_a_crash_left_unsent_go_out_with_the_orders_next_batch() -> None:
    class Crash(BaseException):
        """The process dies between save and publish."""

    store, outputs = FakeStore(), FakeOutputs()
    crashing = FakeOutputs()

    def die(message: Any) -> Exception | None:
        raise Crash

    crashing.refuse = die
    records = order_records("a")
    with pytest.raises(Crash):
        await make(store, crashing).handle(records[:2])
    assert store.markers  # saved, not sent
    await make(store, outputs).handle(records[2:])
    statuses = [
        json.loads(m.value or b"")["data"]["to_status"]
        for m in outputs.on(Topic.ORDERS_STATUS_CHANGED)
    ]
    assert statuses == ["awaiting_payment", "unfulfilled", "fulfilled"]
    assert store.markers == {}


async def test_credentials_sealed_with_an_unknown_key_park_the_order_not_the_batch() -> None:
    store, outputs = FakeStore(), FakeOutputs()
    secret = {"line_id": "L1", "credentials": {"password": "hunter2"}}
    digital = order_records("d", digital=True, distributions=[secret])
    # Worker A seals the request while the order is unpaid.
    await make(store, outputs, KEY_A).handle([digital[0], digital[2]])
    # Worker B, without A's key, sees the payment: the fulfillment completes but cannot go out.
    worker_b = make(store, outputs, KEY_B)
    await worker_b.handle([digital[1], *order_records("canary")])
    assert completed_orders(outputs) == ["canary"]
    assert set(worker_b.parked) == {"d"}
    # A worker given both keys (the first seals, any opens) publishes it, on a later pass
    # (parking dated the marker now, so the pass looks a second ahead).
    rotated = make(store, outputs, f"{KEY_B},{KEY_A}")
    assert await relay_once(rotated, grace=-1) > 0
    completed = [m for m in outputs.on(Topic.FULFILLMENTS_COMPLETED) if m.key == b"d"]
    data = json.loads(completed[0].value or b"")["data"]
    assert data["distributions"][0]["credentials"] == {"password": "hunter2"}
    assert rotated.parked == {} and store.markers == {}


async def test_an_unreadable_stored_output_parks_its_order_and_the_relay_sends_the_others() -> None:
    class Crash(BaseException):
        """The process dies between save and publish."""

    def die(message: Any) -> Exception | None:
        raise Crash

    store, crashing = FakeStore(), FakeOutputs()
    crashing.refuse = die
    for order_id in ("bad", "canary"):
        with pytest.raises(Crash):
            await make(store, crashing).handle(order_records(order_id))
    # The stored completed event of "bad" is damaged (edited by hand, say).
    damaged = bson.decode(store.documents["bad"])
    for entry in damaged["outbox"]:
        if entry["topic"] == Topic.FULFILLMENTS_COMPLETED.value:
            entry["value"], entry["sealed"] = "{not json", None
    store.documents["bad"] = bson.encode(damaged)
    outputs = FakeOutputs()
    relay = make(store, outputs)
    assert await relay_once(relay, grace=0) > 0
    assert completed_orders(outputs) == ["canary"]
    assert relay.parked == {"bad": "an output could not be read (JSONDecodeError)"}
    assert [key.split("@")[0] for key in store.markers] == ["bad"]


async def test_parked_orders_go_to_the_back_of_the_relays_queue_and_never_crowd_out_the_others() -> (
    None
):
    class Crash(BaseException):
        """The process dies between save and publish."""

    def die(message: Any) -> Exception | None:
        raise Crash

    store, crashing = FakeStore(), FakeOutputs()
    crashing.refuse = die
    # Two orders the broker refuses, saved first (their markers are the oldest), then one it takes.
    for order_id in ("big-1", "big-2", "ok"):
        with pytest.raises(Crash):
            await make(store, crashing).handle(order_records(order_id))
    outputs = FakeOutputs()
    outputs.refuse = lambda m: (
        MessageSizeTooLargeError() if (m.key or b"").startswith(b"big") else None
    )
    relay = make(store, outputs)
    # Passes of two: the first parks both refused orders and dates their markers again.
    await relay_once_of(relay, 2)
    assert set(relay.parked) == {"big-1", "big-2"} and completed_orders(outputs) == []
    await relay_once_of(relay, 2)
    assert completed_orders(outputs) == ["ok"]


async def relay_once_of(pipeline: Pipeline, limit: int) -> None:
    """One relay pass that reads at most `limit` markers."""
    orders = await pipeline.store.unsent(utc_now(), limit)
    await pipeline.publish(orders)


async def test_an_output_the_broker_refuses_parks_its_order_and_the_others_go_out() -> None:
    store, outputs = FakeStore(), FakeOutputs()
    outputs.refuse = lambda m: MessageSizeTooLargeError() if m.key == b"big" else None
    worker = make(store, outputs)
    await worker.handle(order_records("big") + order_records("ok"))
    assert completed_orders(outputs) == ["ok"]
    assert set(worker.parked) == {"big"}
    assert any(key.startswith("big@") for key in store.markers)


def test_a_dead_letter_too_large_for_the_broker_keeps_key_and_headers_without_its_value() -> None:
    value = b"x" * (MAX_RECORD_BYTES - 10)
    original = Record("orders.placed", 2, 7, b"ord-1", value, [("trace", b"\xff\x00"), ("n", None)])
    letter = dead_letter(original, Rejection(DeadLetterReason.NOT_JSON, "value is not JSON"))
    headers = dict(letter.headers)
    assert letter.key == b"ord-1" and letter.value is None
    assert headers["trace"] == b"\xff\x00" and headers["n"] is None
    assert headers[DeadLetterHeader.VALUE_OMITTED] == str(len(value)).encode()
    assert headers[DeadLetterHeader.REASON] == b"not_json"
    assert headers[DeadLetterHeader.ORIGINAL_OFFSET] == b"7"


def test_a_dead_letter_error_quoting_a_lone_surrogate_is_written_escaped() -> None:
    # A JSON escape or a header name read with surrogate escapes puts one in a quoted text.
    original = Record("orders.placed", 0, 3, b"ord-1", b"{}", [])
    error = "data.lines.0.\udcff: not a field"
    letter = dead_letter(original, Rejection(DeadLetterReason.INVALID_DATA, error))
    assert dict(letter.headers)[DeadLetterHeader.ERROR] == b"data.lines.0.\\udcff: not a field"


def small_broker(limit: int) -> Any:
    """A broker whose record limit is below ours, counting as aiokafka does (framing aside)."""

    def refuse(message: Message) -> Exception | None:
        headers = sum(len(n.encode()) + len(v or b"") for n, v in message.headers)
        size = len(message.key or b"") + len(message.value or b"") + headers
        return MessageSizeTooLargeError() if size > limit else None

    return refuse


async def test_a_record_whose_key_alone_is_too_large_for_the_broker_is_dead_lettered_without_it() -> (
    None
):
    store, outputs = FakeStore(), FakeOutputs()
    outputs.refuse = small_broker(900_000)
    huge_key = b"k" * 950_000
    odd = Record(Topic.ORDERS_PLACED.value, 0, next(_offsets), huge_key, b"{}")
    await make(store, outputs).handle([odd, *order_records("canary")])
    assert completed_orders(outputs) == ["canary"]
    [letter] = outputs.on(".dlq")
    headers = dict(letter.headers)
    assert letter.key is None and letter.value is None
    assert headers[DeadLetterHeader.KEY_OMITTED] == b"950000"
    assert headers[DeadLetterHeader.REASON] == b"not_cloudevent"
    assert headers[DeadLetterHeader.ORIGINAL_OFFSET] == str(odd.offset).encode()


async def test_a_record_whose_own_headers_are_too_large_keeps_only_the_dead_letter_headers() -> (
    None
):
    store, outputs = FakeStore(), FakeOutputs()
    outputs.refuse = small_broker(900_000)
    value = json.dumps(envelope(EventType.ORDER_PLACED, "odd", {"order_number": 1})).encode()
    own = [("x-trace", b"t" * 950_000), ("trace", b"\xff")]
    odd = Record(Topic.ORDERS_PLACED.value, 0, next(_offsets), b"odd", value, own)
    await make(store, outputs).handle([odd, *order_records("canary")])
    assert completed_orders(outputs) == ["canary"]
    [letter] = outputs.on(".dlq")
    names = [name for name, _ in letter.headers]
    assert letter.key == b"odd" and letter.value is None
    assert "x-trace" not in names and "trace" not in names
    assert dict(letter.headers)[DeadLetterHeader.VALUE_OMITTED] == str(len(value)).encode()


async def test_a_dead_letter_refused_for_anything_but_its_size_is_sent_again_whole() -> None:
    # A refusal a smaller letter would not pass (here the broker's InvalidRequiredAcks, twice):
    # only that letter is sent again, after a pause, never stripped of its value and key.
    store, outputs = FakeStore(), FakeOutputs()
    refusals = iter([InvalidRequiredAcksError(), InvalidRequiredAcksError()])
    outputs.refuse = lambda m: next(refusals, None) if m.key == b"odd" else None
    odd = Record(Topic.ORDERS_PLACED.value, 0, next(_offsets), b"odd", b"not json")
    other = Record(Topic.ORDERS_PLACED.value, 1, next(_offsets), b"other", b"not json either")
    await make(store, outputs).handle([odd, other, *order_records("canary")])
    assert completed_orders(outputs) == ["canary"]
    letters = sorted((m.key, m.value) for m in outputs.on(".dlq"))
    assert letters == [(b"odd", b"not json"), (b"other", b"not json either")]


async def test_a_request_that_would_overgrow_its_order_is_cancelled_without_its_payload(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store, outputs = FakeStore(), FakeOutputs()
    digital = order_records("d", digital=True)
    await make(store, outputs).handle(digital[:1])
    monkeypatch.setattr(pipeline_module, "MAX_DOCUMENT_BYTES", len(store.documents["d"]) + 3000)
    huge = [{"line_id": "L1", "instructions": "i" * 1000}] * 5
    request = record(
        EventType.FULFILLMENT_REQUESTED, "d", {"fulfillment_id": "f-huge", "distributions": huge}
    )
    await make(store, outputs).handle([request])
    cancelled = [
        json.loads(m.value or b"")["data"] for m in outputs.on(Topic.FULFILLMENTS_CANCELLED)
    ]
    assert [(c["fulfillment_id"], c["reason"]) for c in cancelled] == [
        ("f-huge", "invalid_request")
    ]
    assert "the order's document would be" in cancelled[0]["detail"]
    order = store.stored("d")
    assert order is not None
    refused = order.fulfillment("f-huge")
    assert refused is not None and refused.status == "cancelled" and refused.distributions is None
    assert outputs.on(".dlq") == []


async def test_when_the_failing_order_is_known_only_it_is_taken_apart(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    batch = order_records("a") + order_records("b") + order_records("c")
    fail_on(monkeypatch, json.loads(batch[4].value or b"")["id"])  # b's payment
    store, outputs = FakeStore(), FakeOutputs()
    await make(store, outputs).handle(batch)
    assert sorted(completed_orders(outputs)) == ["a", "c"]
    assert reasons(outputs) == [b"processing_failed"]
    b = store.stored("b")
    assert b is not None and b.placed and not b.captures and b.fulfillments


async def test_a_batch_waiting_out_an_outage_shows_as_no_progress_until_it_ends() -> None:
    store, outputs = FakeStore(), FakeOutputs()
    store.outages = 1_000_000  # the store stays away until the test brings it back
    worker = make(store, outputs)
    handling = asyncio.create_task(worker.handle(order_records("a")))
    await asyncio.sleep(0.4)
    stalled = worker.stall(0.2)
    assert stalled is not None and stalled.startswith("no progress for")
    assert worker.stall(60) is None
    store.outages = 0
    await asyncio.wait_for(handling, 10)
    assert worker.stalled_seconds() == 0.0 and worker.stall(0.0) is None
    assert completed_orders(outputs) == ["a"]


def test_parked_orders_are_counted_in_a_metric() -> None:
    worker = make(FakeStore(), FakeOutputs())
    worker._park("ord-1", "a reason")
    worker._park("ord-2", "a reason")
    assert REGISTRY.get_sample_value("fulfillment_parked_orders") == 2
    worker._unpark("ord-1")
    assert REGISTRY.get_sample_value("fulfillment_parked_orders") == 1


@pytest.mark.parametrize(
    "own",
    [
        [(DeadLetterHeader.ERROR.value, b"e" * 950_000)],
        [(DeadLetterHeader.REPLAYS.value, b"7" * 950_000)],
        [(DeadLetterHeader.VALUE_OMITTED.value, b"x" * 950_000)],
    ],
    ids=["error", "replays", "value omitted"],
)
async def test_a_record_carrying_its_own_huge_dead_letter_header_is_still_dead_lettered(
    own: list[tuple[str, bytes]],
) -> None:
    # Kept by name, the record's own header would stay in every cut-down letter: refused for
    # ever, its batch never committed.
    store, outputs = FakeStore(), FakeOutputs()
    outputs.refuse = small_broker(900_000)
    odd = Record(Topic.ORDERS_PLACED.value, 0, next(_offsets), b"odd", b"not json", own)
    await asyncio.wait_for(make(store, outputs).handle([odd, *order_records("canary")]), 30)
    assert completed_orders(outputs) == ["canary"]
    [letter] = outputs.on(".dlq")
    assert letter.size < 1024
    assert dict(letter.headers)[DeadLetterHeader.REASON] == b"not_json"


async def test_an_order_the_store_refuses_again_and_again_is_tried_after_growing_pauses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A store that refuses an order's compare-and-set though nobody else wrote it: tried
    # again, never in a hot loop.
    class Refusing(FakeStore):
        async def save_many(self, changes: Sequence[Change], token: str) -> set[str]:
            self.saves += 1
            if self.saves == 6:
                raise asyncio.CancelledError  # enough seen: end the handling here
            return {change.order.id for change in changes}

    pauses: list[float] = []

    async def sleep(seconds: float) -> None:
        pauses.append(seconds)

    monkeypatch.setattr("consumers.retry.asyncio.sleep", sleep)
    store, outputs = Refusing(), FakeOutputs()
    with contextlib.suppress(asyncio.CancelledError):
        await make(store, outputs).handle(order_records("stuck")[:1])
    # The first two tries at once (a race another worker won goes again at once), then
    # growing pauses.
    assert pauses == [0.05, 0.1, 0.2, 0.4]


def _sequences(outputs: FakeOutputs) -> list[tuple[str, str]]:
    """(sequence, type) of every output sent, in the order sent."""
    return [
        (event["sequence"], event["type"])
        for event in (json.loads(m.value or b"{}") for m in outputs.sent)
    ]


async def test_an_orders_outputs_carry_a_sequence_that_sorts_them_across_topics_and_batches() -> (
    None
):
    store, outputs = FakeStore(), FakeOutputs()
    pipeline = make(store, outputs)
    for one in order_records("ord-seq"):  # a batch each: versions 1, 2 and 3
        await pipeline.handle([one])
    sent = _sequences(outputs)
    assert [seq for seq, _ in sent] == sorted(seq for seq, _ in sent)
    assert len({seq for seq, _ in sent}) == len(sent)
    assert sent[0] == ("000000000001.000000", "order.status_changed")
    assert {seq.split(".")[0] for seq, _ in sent} == {
        "000000000001",
        "000000000002",
        "000000000003",
    }


async def test_outputs_resent_by_the_relay_keep_the_sequence_they_were_saved_with() -> None:
    class Crash(Exception):
        pass

    def die(message: Any) -> Exception | None:
        raise Crash

    store, crashing = FakeStore(), FakeOutputs()
    crashing.refuse = die
    with pytest.raises(Crash):
        await make(store, crashing).handle(order_records("ord-seq"))  # saved, never sent
    first, again = FakeOutputs(), FakeOutputs()
    assert await relay_once(make(store, first), grace=0) > 0
    await make(store, again).handle(order_records("ord-seq"))  # redelivered: duplicates
    assert _sequences(first) and [seq for seq, _ in _sequences(first)] == sorted(
        seq for seq, _ in _sequences(first)
    )
    assert all(seq.startswith("000000000001.") for seq, _ in _sequences(first))
    assert _sequences(again) == []  # nothing new: the events were applied once
