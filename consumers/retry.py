"""Telling outages from bad records, and waiting out outages with capped backoff.

Contract 1.1: only an outage of the broker or the store is waited out; every other failure
belongs to the record that caused it, which is isolated and dead-lettered by the pipeline.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

from aiokafka import errors as kafka
from pymongo import errors as mongo

from consumers.metrics import RETRIES

T = TypeVar("T")
log = logging.getLogger("fulfillment.retry")

# Kafka errors that say the cluster is unreachable, moving or busy, not that a record is bad.
# Authorisation failures are here too: a wrong ACL is an operator's outage to fix, and
# dead-lettering the whole stream meanwhile would only make work.
_KAFKA_OUTAGES: tuple[type[BaseException], ...] = (
    kafka.KafkaConnectionError,
    kafka.KafkaTimeoutError,
    kafka.KafkaUnavailableError,
    kafka.NodeNotReadyError,
    kafka.NoBrokersAvailable,
    kafka.BrokerNotAvailableError,
    kafka.ReplicaNotAvailableError,
    kafka.RequestTimedOutError,
    kafka.ProducerClosed,
    kafka.TopicAuthorizationFailedError,
    kafka.ClusterAuthorizationFailedError,
    kafka.AuthenticationFailedError,
    kafka.SaslAuthenticationFailed,
)
# Store failures of the same kind: the server is away, electing, or not answering in time.
_MONGO_OUTAGES: tuple[type[BaseException], ...] = (
    mongo.ConnectionFailure,  # AutoReconnect, NotPrimaryError, ServerSelectionTimeoutError, ...
    mongo.ExecutionTimeout,
    mongo.WriteConcernError,
)
# Server codes that mean "try again later": shutdown, step-down, not writable primary,
# time limits, unauthorised (a configuration outage).
_MONGO_OUTAGE_CODES = frozenset(
    {6, 7, 13, 18, 50, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436}
)


def is_outage(problem: BaseException) -> bool:
    """True when `problem` is the broker or store being unavailable, to be waited out."""
    if isinstance(problem, kafka.KafkaError):
        return isinstance(problem, _KAFKA_OUTAGES) or bool(getattr(problem, "retriable", False))
    if isinstance(problem, _MONGO_OUTAGES):
        return True
    if isinstance(problem, mongo.BulkWriteError):
        # Per-document write errors belong to those documents, unless every one says the
        # server cannot write now (a primary stepping down fails each write in the batch).
        errors = problem.details.get("writeErrors", [])
        return bool(errors) and all(e.get("code") in _MONGO_OUTAGE_CODES for e in errors)
    if isinstance(problem, mongo.OperationFailure):
        labelled = problem.has_error_label("RetryableWriteError")
        return labelled or problem.code in _MONGO_OUTAGE_CODES
    return isinstance(problem, ConnectionError | TimeoutError)


def delays(first: float, cap: float) -> Iterator[float]:
    """Seconds to wait after each failed attempt: `first`, doubling up to `cap`, forever."""
    delay = first
    while True:
        yield delay
        delay = min(delay * 2, cap)


class Backoff:
    """Capped exponential delays (`delays`) for a loop that awaits them; `reset` starts over."""

    def __init__(self, first: float = 0.1, cap: float = 5.0) -> None:
        self.first = first
        self.cap = cap
        self._delays = delays(first, cap)
        self.delay: float = next(self._delays)
        self.attempt = 0

    async def wait(self) -> None:
        self.attempt += 1
        await asyncio.sleep(self.delay)
        self.delay = next(self._delays)

    def reset(self) -> None:
        self._delays = delays(self.first, self.cap)
        self.delay = next(self._delays)
        self.attempt = 0


class QuietLog:
    """At most one line per `every` seconds for a repeating condition; the rest are counted."""

    def __init__(self, every: float = 5.0) -> None:
        self.every = every
        self._last = float("-inf")
        self.suppressed = 0

    def should_log(self) -> bool:
        now = time.monotonic()
        if now - self._last >= self.every:
            self._last = now
            return True
        self.suppressed += 1
        return False

    def take_suppressed(self) -> int:
        count, self.suppressed = self.suppressed, 0
        return count


async def retrying(
    what: str, operation: Callable[..., Awaitable[T]], *args: Any, max_delay: float = 5.0
) -> T:
    """Run `operation(*args)`, waiting out outages; any other failure is raised at once."""
    backoff = Backoff(cap=max_delay)
    quiet = QuietLog()
    while True:
        try:
            return await operation(*args)
        except Exception as problem:
            if not is_outage(problem):
                raise
            RETRIES.labels(what).inc()
            if quiet.should_log():
                log.warning(
                    "%s failed (%s: %s); waiting, retry %d in %.1fs (%d similar lines suppressed)",
                    what,
                    type(problem).__name__,
                    str(problem)[:200],
                    backoff.attempt + 1,
                    backoff.delay,
                    quiet.take_suppressed(),
                )
            await backoff.wait()
