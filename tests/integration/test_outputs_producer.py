"""A producer whose sender stopped for good is replaced: an outage, never records refused."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from functools import partial

import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import OutOfOrderSequenceNumber

from config import Settings
from consumers.outputs import KafkaOutputs, Message, event_message, partition_for
from consumers.retry import is_outage, retrying
from consumers.topics import ensure_topics
from schemas.names import DLQ_SUFFIX, Topic
from tests.conftest import Infra, Names
from tests.proxies import free_port, tcp_proxy
from tests.topic_reading import read_topic

pytestmark = pytest.mark.integration


@pytest.fixture
async def outputs(infra: Infra, names: Names) -> AsyncIterator[KafkaOutputs]:
    settings = Settings(infra.kafka_bootstrap, infra.mongodb_uri, names.database, names.prefix)
    await ensure_topics(settings)
    outputs = KafkaOutputs(settings)
    await outputs.start()
    yield outputs
    await outputs.stop()


async def stop_sender_as_aiokafka_does(outputs: KafkaOutputs) -> None:
    """What aiokafka does when its sender routine ends on a fatal error (aio-libs/aiokafka#1017):
    the task is done and every later send fails with a copy of the error."""
    sender = outputs._producer._sender  # type: ignore[union-attr]
    sender.sender_task.cancel()

    async def fatal() -> None:
        raise OutOfOrderSequenceNumber()

    failed = asyncio.create_task(fatal())
    failed.add_done_callback(sender._fail_all)
    sender._sender_task = failed
    await asyncio.gather(failed, return_exceptions=True)


async def published_ids(infra: Infra, topic: str) -> list[str]:
    return [json.loads(r.value)["id"] for r in await read_topic(infra.kafka_bootstrap, topic)]


async def test_a_send_after_the_sender_stopped_for_good_goes_out_through_a_new_producer(
    outputs: KafkaOutputs, infra: Infra, names: Names
) -> None:
    topic = names.topic(Topic.ORDERS_STATUS_CHANGED.value)
    first = event_message(topic, "ord-1", json.dumps({"id": "evt-1"}))
    assert await outputs.send([first]) == [None]
    await stop_sender_as_aiokafka_does(outputs)

    second = event_message(topic, "ord-1", json.dumps({"id": "evt-2"}))
    assert await retrying("publishing outputs", outputs.send, [second]) == [None]
    assert await published_ids(infra, topic) == ["evt-1", "evt-2"]


async def test_senders_meeting_a_stopped_producer_at_once_start_one_new_producer_between_them(
    outputs: KafkaOutputs, infra: Infra, names: Names, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The batch handler and the relay share the producer: a second one would leak.
    topic = names.topic(Topic.ORDERS_STATUS_CHANGED.value)
    await stop_sender_as_aiokafka_does(outputs)
    start, starts = outputs.start, []

    async def counted() -> None:
        starts.append(1)
        await start()

    monkeypatch.setattr(outputs, "start", counted)
    messages = [event_message(topic, f"ord-{i}", json.dumps({"id": f"evt-{i}"})) for i in range(4)]
    sends = (retrying("publishing outputs", outputs.send, [m]) for m in messages)
    assert await asyncio.gather(*sends) == [[None]] * 4
    assert len(starts) == 1
    assert sorted(await published_ids(infra, topic)) == [f"evt-{i}" for i in range(4)]


async def test_records_failing_because_the_sender_stopped_are_an_outage_not_refusals(
    outputs: KafkaOutputs, names: Names
) -> None:
    topic = names.topic(Topic.ORDERS_STATUS_CHANGED.value)
    message = event_message(topic, "ord-2", json.dumps({"id": "evt-3"}))
    assert await outputs.send([message]) == [None]
    await stop_sender_as_aiokafka_does(outputs)
    # One by one, as after a refused batch: each failure would have been taken as the record's.
    with pytest.raises(Exception) as raised:
        await outputs._send_each(outputs._producer, [message])
    assert is_outage(raised.value)


def put_sequence_out_of_step(outputs: KafkaOutputs, topic: str, partition: int) -> None:
    """What a broker restart can leave behind (seen in chaos runs): the producer numbers its next
    batch past what the broker has, and the broker refuses every later batch as out of order."""
    producer = outputs._producer
    assert producer is not None
    producer._txn_manager.increment_sequence_number(TopicPartition(topic, partition), 3)


async def published_records(infra: Infra, topic: str) -> list[tuple[bytes | None, bytes | None]]:
    return [(r.key, r.value) for r in await read_topic(infra.kafka_bootstrap, topic)]


async def test_a_producer_out_of_step_with_the_broker_is_replaced_and_nothing_is_refused(
    outputs: KafkaOutputs, infra: Infra, names: Names
) -> None:
    # The broker's OutOfOrderSequenceNumber is the producer's fault, not the records': taken
    # as a refusal, dead letters were sent again without value and key, and outputs parked.
    topic = names.topic(Topic.PAYMENTS_CAPTURED.value) + DLQ_SUFFIX
    first = Message(topic, b"ord-1", b"first", [("x-dlq-reason", b"not_json")])
    assert await outputs.send([first]) == [None]
    put_sequence_out_of_step(outputs, topic, partition_for(b"ord-1", list(range(6))))

    letters = [Message(topic, b"ord-1", f"letter-{i}".encode()) for i in range(3)]
    with pytest.raises(Exception) as raised:
        await outputs.send(letters)
    assert is_outage(raised.value)
    assert await retrying("publishing dead letters", outputs.send, letters) == [None] * 3
    assert await published_records(infra, topic) == [
        (b"ord-1", b"first"),
        *((b"ord-1", f"letter-{i}".encode()) for i in range(3)),
    ]


async def test_a_batch_that_expired_without_a_leader_leaves_no_partition_refused_for_good(
    infra: Infra, names: Names, monkeypatch: pytest.MonkeyPatch
) -> None:
    # How a broker restart longer than the request timeout gets the producer out of step:
    # aiokafka numbers a batch, it expires while its partition has no leader, and the broker
    # refuses every later batch there (aio-libs/aiokafka#1017). Here the leader goes missing
    # for the producer alone, for longer than its 1 s request timeout.
    settings = Settings(
        infra.kafka_bootstrap, infra.mongodb_uri, names.database, names.prefix,
        kafka_request_timeout_ms=1000,
    )  # fmt: skip
    # Only the send that expires needs the short timeout: a loaded machine may take longer
    # than 1 s to create topics, start a producer or answer its first send.
    await ensure_topics(replace(settings, kafka_request_timeout_ms=None))
    outputs = KafkaOutputs(settings)
    await retrying("starting the producer", outputs.start)
    topic = names.topic(Topic.PAYMENTS_CAPTURED.value) + DLQ_SUFFIX
    try:
        first = [Message(topic, b"ord-1", b"first")]
        assert await retrying("publishing dead letters", outputs.send, first) == [None]
        producer = outputs._producer
        assert producer is not None
        cluster = producer.client.cluster
        gone = TopicPartition(topic, partition_for(b"ord-1", list(range(6))))
        leader = cluster.leader_for_partition
        monkeypatch.setattr(
            cluster, "leader_for_partition", lambda tp: -1 if tp == gone else leader(tp)
        )
        with pytest.raises(Exception) as raised:
            await outputs.send([Message(topic, b"ord-1", b"expired")])
        assert is_outage(raised.value)
        monkeypatch.undo()

        second = [Message(topic, b"ord-1", b"second")]
        assert await retrying("publishing dead letters", outputs.send, second) == [None]
    finally:
        await outputs.stop()
    assert await published_records(infra, topic) == [(b"ord-1", b"first"), (b"ord-1", b"second")]


async def test_a_producer_started_during_a_broker_outage_starts_once_the_broker_answers(
    infra: Infra, names: Names
) -> None:
    # A port nobody listens on yet: the broker, as the worker sees it, is down.
    free = free_port()
    settings = Settings(f"127.0.0.1:{free}", infra.mongodb_uri, names.database, names.prefix)
    outputs = KafkaOutputs(settings)
    starting = asyncio.create_task(retrying("starting the producer", outputs.start))
    await asyncio.sleep(3)
    assert not starting.done()
    async with tcp_proxy(free, infra.kafka_bootstrap):
        try:
            async with asyncio.timeout(60):
                await starting
            await outputs.ping()
        finally:
            await outputs.stop()


async def test_a_dead_letter_without_key_and_value_sent_on_its_own_goes_out(
    infra: Infra, names: Names
) -> None:
    # What is left of a letter refused for its size three times: only the dead-letter headers.
    # It is sent on its own when its batch was refused, where aiokafka's `send` refuses it.
    settings = Settings(infra.kafka_bootstrap, infra.mongodb_uri, names.database, names.prefix)
    await ensure_topics(settings)
    outputs = KafkaOutputs(settings)
    await retrying("starting the producer", outputs.start)
    topic = names.topic(Topic.PAYMENTS_CAPTURED.value) + DLQ_SUFFIX
    bare = Message(topic, None, None, [("x-dlq-reason", b"too_large")])
    try:
        producer = await outputs._current()
        assert await outputs._send_each(producer, [bare]) == [None]
    finally:
        await outputs.stop()
    assert await published_records(infra, topic) == [(None, None)]


async def small_limit_topic(infra: Infra, names: Names) -> str:
    """A new topic of one partition whose own record limit (200,000 bytes) is below ours."""
    topic = f"{names.prefix}small-limit"
    admin = AIOKafkaAdminClient(bootstrap_servers=infra.kafka_bootstrap)
    await admin.start()
    try:
        configs = {"max.message.bytes": "200000"}
        await admin.create_topics([NewTopic(topic, 1, 1, topic_configs=configs)])
    finally:
        await admin.close()
    return topic


@pytest.mark.parametrize("alone", [False, True], ids=["in one batch", "each on its own"])
async def test_a_record_the_topic_refuses_leaves_the_records_after_it_on_its_partition_going_out(
    outputs: KafkaOutputs, infra: Infra, names: Names, alone: bool
) -> None:
    # The topic's own limit is below ours (the contract names the case). aiokafka keeps the
    # refused batch's sequence numbers, so the producer's next batch to the partition would
    # be refused as out of order, and the same send tried again for ever.
    topic = await small_limit_topic(infra, names)
    big = Message(topic, b"ord-1", b"x" * 300_000, [])
    small = [Message(topic, b"ord-1", f"small-{i}".encode(), []) for i in range(3)]
    if alone:
        producer = await outputs._current()
        send = partial(outputs._send_each, producer, [big, *small])
    else:
        send = partial(outputs.send, [small[0], big, *small[1:]])
    results = await asyncio.wait_for(retrying("sending", send), 60)
    refused = [type(problem).__name__ for problem in results if problem is not None]
    assert refused == ["MessageSizeTooLargeError"]
    values = [value for _, value in await published_records(infra, topic)]
    assert values == [b"small-0", b"small-1", b"small-2"]
