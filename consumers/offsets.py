"""A consumer's positions: back to where its group stands."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


async def seek_to_committed(consumer: Any, partitions: Iterable[Any]) -> None:
    """Each partition to its group's committed offset, or to its beginning if there is none
    (as `auto_offset_reset="earliest"` would)."""
    from_start = []
    for partition in partitions:
        committed = await consumer.committed(partition)
        if committed is None:
            from_start.append(partition)
        else:
            consumer.seek(partition, committed)
    if from_start:
        # One call for all: each call waits for its reset, half a second on an empty partition.
        await consumer.seek_to_beginning(*from_start)
