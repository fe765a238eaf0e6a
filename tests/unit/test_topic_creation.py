"""Creating the contract's topics asks for nothing that needs permission once they all exist."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from config import Settings
from consumers.topics import TOPIC_ALREADY_EXISTS, _create_missing, contract_topics
from schemas.names import INPUT_TOPICS, Topic

ADDED_IN_1_1 = (Topic.FULFILLMENTS_TRACKING_UPDATED, Topic.SHIPMENTS_STATUS_REPORTED)


class ProvisionedCluster:
    """A cluster whose topics were made for the worker, which may not create any."""

    def __init__(self, topics: list[str]) -> None:
        self.topics = topics

    async def list_topics(self) -> list[str]:
        return self.topics

    async def create_topics(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("TOPIC_AUTHORIZATION_FAILED: asked to create topics")

    async def describe_cluster(self) -> Any:
        raise AssertionError("not needed when every topic exists")


async def test_a_worker_whose_topics_all_exist_sends_no_create_request() -> None:
    settings = Settings(topic_prefix="prov.")
    cluster = ProvisionedCluster(contract_topics(settings))
    assert (await _create_missing(cluster, settings)).names == []


class ClusterWithABrokerDown:
    """Three brokers, one down during an upgrade: the 1.0 topics exist with 3 replicas."""

    def __init__(self, settings: Settings, existing: list[str]) -> None:
        self.existing = existing
        self.created: list[Any] = []

    async def list_topics(self) -> list[str]:
        return self.existing

    async def describe_cluster(self) -> Any:
        return {"brokers": [{"node_id": 1}, {"node_id": 2}]}

    async def create_topics(self, topics: list[Any], validate_only: bool = False) -> Any:
        if not validate_only:
            self.created += topics
        errors = [(t.name, TOPIC_ALREADY_EXISTS if t.name in self.existing else 0) for t in topics]
        return SimpleNamespace(topic_errors=errors)

    async def describe_topics(self, names: list[str]) -> list[dict[str, Any]]:
        partition = {"replicas": [1, 2, 3]}
        return [{"topic": n, "error_code": 0, "partitions": [partition] * 4} for n in names]


async def test_topics_added_while_a_broker_is_down_are_replicated_as_the_topics_in_use() -> None:
    settings = Settings(topic_prefix="up.")
    first = [settings.topic(t) for t in INPUT_TOPICS if t not in ADDED_IN_1_1]
    cluster = ClusterWithABrokerDown(settings, first)
    created = await _create_missing(cluster, settings)
    assert created.names and created.partitions == 4
    assert {
        (t.replication_factor, t.topic_configs["min.insync.replicas"]) for t in cluster.created
    } == {(3, "2")}
