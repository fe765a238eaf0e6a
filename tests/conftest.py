"""Session fixtures: a real Kafka broker and MongoDB-wire store, and per-test names on them."""

from __future__ import annotations

import os
import uuid
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
        yield Infra(endpoints.kafka_bootstrap, endpoints.mongodb_uri, "local stack")


@dataclass(frozen=True)
class Names:
    """Names private to one test: topic prefix, database and consumer group."""

    prefix: str
    database: str
    group_id: str

    def topic(self, name: str) -> str:
        return f"{self.prefix}{name}"


@pytest.fixture
def names() -> Names:
    token = uuid.uuid4().hex[:10]
    return Names(prefix=f"t{token}.", database=f"test_{token}", group_id=f"group-{token}")
