"""Session fixtures: a real Kafka broker and MongoDB-wire store, and per-test names on them."""

from __future__ import annotations

import asyncio
import os
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

import stack


@dataclass(frozen=True)
class Infra:
    """Addresses of the broker and store every integration test runs against."""

    kafka_bootstrap: str
    mongodb_uri: str
    origin: str


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
        return True
    except Exception:
        return False


def _from_containers() -> Iterator[Infra]:
    from testcontainers.kafka import KafkaContainer
    from testcontainers.mongodb import MongoDbContainer

    with KafkaContainer().with_kraft() as kafka, MongoDbContainer("mongo:7") as mongo:
        yield Infra(kafka.get_bootstrap_server(), mongo.get_connection_url(), "testcontainers")


@pytest.fixture(scope="session")
def infra() -> Iterator[Infra]:
    """The environment's servers, else testcontainers, else the local stack (started if needed)."""
    kafka_env = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    mongo_env = os.environ.get("MONGODB_URI")
    if kafka_env and mongo_env:
        yield Infra(kafka_env, mongo_env, "environment")
    elif _docker_answers():
        yield from _from_containers()
    else:
        endpoints = stack.up(say=lambda _: None)
        infra = Infra(endpoints.kafka_bootstrap, endpoints.mongodb_uri, "local stack")
        yield infra
        # A developer's stack lives on: leave it without this session's topics.
        _delete_topics(infra, [names.prefix for names in _handed_out])


@dataclass(frozen=True)
class Names:
    """Names private to one test: topic prefix, database and consumer group."""

    prefix: str
    database: str
    group_id: str

    def topic(self, name: str) -> str:
        return f"{self.prefix}{name}"


# Every test's names, so the session can delete what the tests created on a lasting stack.
_handed_out: list[Names] = []


@pytest.fixture
def names() -> Names:
    token = uuid.uuid4().hex[:10]
    made = Names(prefix=f"t{token}.", database=f"test_{token}", group_id=f"group-{token}")
    _handed_out.append(made)
    return made


def _delete_topics(infra: Infra, prefixes: list[str]) -> None:
    """Best effort: a broker that cannot be reached now should not fail the finished session."""
    from config import Settings
    from consumers.topics import delete_prefixed_topics

    if not prefixes:
        return
    settings = Settings(kafka_bootstrap=infra.kafka_bootstrap, mongodb_uri=infra.mongodb_uri)
    try:
        asyncio.run(asyncio.wait_for(delete_prefixed_topics(settings, prefixes), timeout=120))
    except Exception as problem:
        warnings.warn(f"the session's topics were left on the broker: {problem!r}", stacklevel=1)
