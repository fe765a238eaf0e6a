"""The outbox relay: publishes outputs that a crash left saved but unsent."""

from __future__ import annotations

import asyncio
import logging
import traceback
from datetime import timedelta

from consumers.metrics import OUTBOX_BACKLOG
from consumers.pipeline import Pipeline, utc_now
from consumers.retry import retrying

log = logging.getLogger("fulfillment.relay")


async def relay_forever(pipeline: Pipeline, interval: float = 5.0, grace: float = 30.0) -> None:
    """Every `interval`, publish outboxes older than `grace` (younger ones are still in flight)."""
    while True:
        await asyncio.sleep(interval)
        try:
            await relay_once(pipeline, grace)
        except Exception as problem:
            # Type and frames only: a message may quote stored values (pydantic's do).
            log.error(
                "outbox relay pass failed (%s, message withheld); will try again\n%s",
                type(problem).__name__,
                "".join(traceback.format_tb(problem.__traceback__)),
            )


async def relay_once(pipeline: Pipeline, grace: float = 30.0) -> int:
    saved_before = utc_now() - timedelta(seconds=grace)
    orders = await retrying("finding unsent outboxes", pipeline.store.unsent, saved_before)
    OUTBOX_BACKLOG.set(len(orders))
    if not orders:
        return 0
    sent = await pipeline.publish(orders)
    log.info("relay re-published %d outputs of %d orders", sent, len(orders))
    return sent
