"""Creating the contract's topics, with enough partitions and replicas, before anything consumes them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection
from dataclasses import dataclass
from typing import NoReturn

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, UnknownTopicOrPartitionError, for_code

from config import Settings
from schemas.names import DLQ_SUFFIX, INPUT_TOPICS, OUTPUT_TOPICS

TOPIC_ALREADY_EXISTS = 36
# Three copies survive one broker down with writes still acknowledged by two (acks=all).
CLUSTER_REPLICAS = 3
# Topics named in one delete request: small enough for the broker's request size limit.
DELETE_CHUNK = 500


def contract_topics(settings: Settings) -> list[str]:
    """Every topic the worker reads or writes: inputs, their dead-letter topics, outputs."""
    inputs = [settings.topic(topic) for topic in INPUT_TOPICS]
    return [
        *inputs,
        *(f"{name}{DLQ_SUFFIX}" for name in inputs),
        *(settings.topic(t) for t in OUTPUT_TOPICS),
    ]


def replication_for(configured: int | None, brokers: int) -> int:
    """The configured replication factor, else 3 on a cluster of three or more, else `brokers`."""
    if configured is not None:
        return configured
    return max(1, min(CLUSTER_REPLICAS, brokers))


def topic_configs(replicas: int) -> dict[str, str]:
    """min.insync.replicas: 2 of 3 replicas (one broker may be down, an ack still means two
    copies); 1 when there are fewer than 3, where 2 would stop every write while one is down."""
    return {"min.insync.replicas": "2" if replicas >= CLUSTER_REPLICAS else "1"}


@dataclass(frozen=True)
class Created:
    """The contract topics one call created, and with how many partitions (0: none created)."""

    names: list[str]
    partitions: int = 0


async def ensure_topics(settings: Settings, patience: float = 30.0) -> list[str]:
    """Create the missing contract topics; return the names created (see `create_missing`)."""
    return (await create_missing(settings, patience)).names


async def create_missing(settings: Settings, patience: float = 30.0) -> Created:
    """Create the missing contract topics: as many partitions as the input topics in use
    have, else `settings.partitions`.

    Once a broker answered, requests that hit a node being restarted or not yet elected are
    tried again for up to `patience` seconds: a worker starting during a broker fault waits
    instead of crashing.
    """
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap, **settings.kafka_options()
    )
    await admin.start()
    try:
        deadline = time.monotonic() + patience
        while True:
            try:
                return await _create_missing(admin, settings)
            except KafkaError as problem:
                if not problem.retriable or time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.5)
    finally:
        await admin.close()


async def _create_missing(admin: AIOKafkaAdminClient, settings: Settings) -> Created:
    # Every topic listed: nothing to create, and nothing asked that needs permission to create
    # (a worker may run where the topics are provisioned for it).
    listed = set(await admin.list_topics())
    unlisted = [name for name in contract_topics(settings) if name not in listed]
    if not unlisted:
        return Created([])
    brokers = len((await admin.describe_cluster())["brokers"])
    replicas = replication_for(settings.replication_factor, brokers)
    missing = await _not_yet_created(admin, unlisted, settings.partitions, replicas)
    if not missing:
        return Created([])
    inputs = [settings.topic(topic) for topic in INPUT_TOPICS]
    layout = await _layout_of(admin, [name for name in inputs if name not in missing])
    count = layout[0] if layout else settings.partitions
    if layout and settings.replication_factor is None:
        # As the topics in use are replicated, not as many brokers as answer now: one down
        # during an upgrade would leave the new topics with fewer copies for good.
        replicas = layout[1]
    await _create(
        admin,
        [
            NewTopic(name, count, replicas, topic_configs=topic_configs(replicas))
            for name in missing
        ],
    )
    return Created(missing, count)


async def _not_yet_created(
    admin: AIOKafkaAdminClient, names: list[str], partitions: int, replicas: int
) -> list[str]:
    """The topics the controller does not have yet.

    Asked of the controller (a create that only validates), not of a broker's metadata: a
    broker lists a topic created a moment ago only some time later, and a topic missed there
    would leave the topics created now with another partition count.
    """
    topics = [NewTopic(name, partitions, replicas) for name in names]
    return await _create(admin, topics, validate_only=True)


async def _create(
    admin: AIOKafkaAdminClient, topics: list[NewTopic], validate_only: bool = False
) -> list[str]:
    """Create `topics` (or only validate their creation); return the names the controller
    did not have. A topic it has already is no error; any other refusal is raised."""
    response = await admin.create_topics(topics, validate_only=validate_only)
    new = []
    for name, code, *message in response.topic_errors:
        if code == 0:
            new.append(name)
        elif code != TOPIC_ALREADY_EXISTS:
            _refused(name, code, message)
    return new


def _refused(name: str, code: int, message: list[object], action: str = "create") -> NoReturn:
    """Raise the broker's error: retriable ones are tried again, others end with its words."""
    error = for_code(code)
    if error.retriable:
        raise error(f"topic {name}")
    reason = message[0] if message and message[0] else f"{error.__name__} (error code {code})"
    raise RuntimeError(f"could not {action} topic {name}: {reason}")


async def _layout_of(admin: AIOKafkaAdminClient, inputs: list[str]) -> tuple[int, int] | None:
    """How many partitions, and replicas of each, the existing input topics have (the most,
    should they differ); None when there are none.

    A topic added later (contract 1.1's, say) gets as many partitions, whatever
    FULFILLMENT_PARTITIONS says now: the contract promises producers the same count on every
    input topic, and range assignment keeps one order's events on one worker only then.
    """
    if not inputs:
        return None
    described = await admin.describe_topics(inputs)
    for topic in described:
        if topic["error_code"]:
            # Retriable (created, not yet in this broker's metadata): asked again after a pause.
            _refused(topic["topic"], topic["error_code"], [], "describe")
    if len(described) < len(inputs) or not all(topic["partitions"] for topic in described):
        raise UnknownTopicOrPartitionError("input topics not yet described by the broker")
    partitions = max(len(topic["partitions"]) for topic in described)
    replicas = max(len(p["replicas"]) for topic in described for p in topic["partitions"])
    return partitions, replicas


async def delete_prefixed_topics(settings: Settings, prefixes: Collection[str]) -> int:
    """Delete every topic whose name starts with one of `prefixes`; return how many.

    For the private topics of finished test and bench runs: a broker left holding thousands
    of them takes minutes to restart. An empty prefix would match every topic and is refused.
    """
    if not prefixes or not all(prefixes):
        raise ValueError("topics are deleted by non-empty prefixes only")
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap, **settings.kafka_options()
    )
    await admin.start()
    try:
        doomed = [name for name in await admin.list_topics() if name.startswith(tuple(prefixes))]
        for start in range(0, len(doomed), DELETE_CHUNK):
            await admin.delete_topics(doomed[start : start + DELETE_CHUNK], timeout_ms=30_000)
        return len(doomed)
    finally:
        await admin.close()
