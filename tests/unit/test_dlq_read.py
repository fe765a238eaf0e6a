"""Reading dead letters ends with an error when the broker stops sending them, never hangs."""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka import TopicPartition

from cli import messages

PARTITION = TopicPartition("p.orders.placed.dlq", 0)


class Silent:
    """A consumer whose broker went away after saying 3 letters are due: nothing ever comes."""

    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {PARTITION: 3}

    def assign(self, partitions: list[TopicPartition]) -> None:
        pass

    async def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        pass

    async def position(self, partition: TopicPartition) -> int:
        return 0

    async def getmany(self, timeout_ms: int) -> dict[TopicPartition, list[Any]]:
        return {}


async def test_reading_letters_that_stop_arriving_raises_a_timeout_instead_of_waiting_forever(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(messages, "READ_STALL_S", 0.05)

    async def partitions(consumer: Any, topic: str) -> list[TopicPartition]:
        return [PARTITION]

    monkeypatch.setattr(messages, "_partitions", partitions)
    with pytest.raises(TimeoutError, match="no dead letters arrived"):
        await messages._letters(Silent(), "p.orders.placed.dlq", from_committed=False)
