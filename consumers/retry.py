"""Waiting out broker and database outages: retry forever with capped backoff, never skip."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiokafka.errors import KafkaError
from pymongo.errors import ConnectionFailure

from consumers.metrics import RETRIES

T = TypeVar("T")
log = logging.getLogger("fulfillment.retry")

# Outages, not bad data: the operation is repeated until it succeeds.
TRANSIENT: tuple[type[BaseException], ...] = (ConnectionFailure, KafkaError, OSError, TimeoutError)


async def retrying(
    what: str, operation: Callable[..., Awaitable[T]], *args: Any, max_delay: float = 5.0
) -> T:
    """Run `operation(*args)` until it succeeds; cancellation (shutdown) is the only way out."""
    delay = 0.1
    attempt = 1
    while True:
        try:
            return await operation(*args)
        except TRANSIENT as problem:
            RETRIES.labels(what).inc()
            log.warning(
                "%s failed (%s: %s); retry %d in %.1fs",
                what,
                type(problem).__name__,
                str(problem)[:200],
                attempt,
                delay,
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay)
            attempt += 1
