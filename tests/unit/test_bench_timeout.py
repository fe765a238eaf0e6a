"""A bench variant slower than its time limit is named as such, not taken for an outage."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bench.run import Arrivals, VariantTooSlow
from config import Settings


class Quiet:
    """A consumer whose topic gets nothing: each poll waits out its time."""

    async def getmany(self, timeout_ms: int, **_: Any) -> dict[Any, list[Any]]:
        await asyncio.sleep(timeout_ms / 1000)
        return {}


async def test_a_variant_that_does_not_finish_in_time_says_which_and_how_far_it_got() -> None:
    arrivals = Arrivals(Settings(), "t.fulfillments.completed", "pipeline x1")
    arrivals._consumer = Quiet()
    arrivals.first_seen = {b"ord-1": 0.0}
    with pytest.raises(VariantTooSlow, match=r"pipeline x1: 1 of 3 orders completed within 0.2 s"):
        await arrivals.until(3, 0.2)
    assert not isinstance(VariantTooSlow("x"), TimeoutError)
