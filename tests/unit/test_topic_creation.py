"""Creating the contract's topics asks for nothing that needs permission once they all exist."""

from __future__ import annotations

from typing import Any

from config import Settings
from consumers.topics import _create_missing, contract_topics


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
