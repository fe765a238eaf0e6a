"""Structured JSON logs, one object a line; order and event ids ride along as `extra` fields."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime

from config import environment

_CONTEXT_FIELDS = (
    "order_id",
    "event_id",
    "topic",
    "partition",
    "offset",
    "reason",
    "worker",
    "suppressed",
)
# Libraries that log every refused connection: ~140 lines a second during a broker outage.
NOISY_LOGGERS = ("aiokafka", "faststream")
NOISY_INTERVAL = 10.0


class RateLimitFilter(logging.Filter):
    """At most one record per (logger, message template) per `interval` seconds from the
    given loggers; the next one let through carries `suppressed`, the count dropped meanwhile."""

    # Some libraries format their messages before logging; this bounds the memory they take.
    MAX_KEYS = 1024

    def __init__(
        self,
        prefixes: tuple[str, ...] = NOISY_LOGGERS,
        interval: float = NOISY_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.prefixes = prefixes
        self.interval = interval
        self.clock = clock
        self._last: dict[tuple[str, str], float] = {}
        self._dropped: dict[tuple[str, str], int] = {}

    def _forget_before(self, moment: float) -> None:
        for key in [k for k, at in self._last.items() if at < moment]:
            del self._last[key]
            self._dropped.pop(key, None)

    def _limited(self, name: str) -> bool:
        return any(name == p or name.startswith(f"{p}.") for p in self.prefixes)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._limited(record.name):
            return True
        # The template, not the formatted text: "Unable connect to %s" is one kind of line.
        key = (record.name, str(record.msg))
        now = self.clock()
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            self._dropped[key] = self._dropped.get(key, 0) + 1
            return False
        if last is None and len(self._last) >= self.MAX_KEYS:
            self._forget_before(now - self.interval)
        self._last[key] = now
        dropped = self._dropped.pop(key, 0)
        if dropped:
            record.suppressed = dropped
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            # Which process: `worker --processes N` writes N workers' lines to one stream.
            "pid": record.process,
            "msg": record.getMessage(),
        }
        entry |= {name: getattr(record, name) for name in _CONTEXT_FIELDS if hasattr(record, name)}
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure(level: str | None = None) -> None:
    """JSON lines on stderr at FULFILLMENT_LOG_LEVEL (default INFO)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RateLimitFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level or environment().fulfillment_log_level)
    # FastStream's access log reports each batch; it reuses a stdout handler it finds, so this
    # one keeps its lines in JSON and its per-batch INFO lines out of production logs.
    access = logging.StreamHandler(sys.stdout)
    access.setFormatter(JsonFormatter())
    access.setLevel(logging.WARNING)
    # Its own instance: a record reaching both handlers must not count as its own repeat.
    access.addFilter(RateLimitFilter())
    logging.getLogger("faststream.access.kafka").handlers[:] = [access]
    # aiokafka logs every refused connection during an outage; our retry log says it once per try.
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    # The drivers' own DEBUG output (every command, every heartbeat) drowns the worker's.
    logging.getLogger("pymongo").setLevel(logging.WARNING)
