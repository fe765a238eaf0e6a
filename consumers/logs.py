"""Structured JSON logs, one object a line; order and event ids ride along as `extra` fields."""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime

_CONTEXT_FIELDS = ("order_id", "event_id", "topic", "partition", "offset", "reason", "worker")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
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
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level or os.environ.get("FULFILLMENT_LOG_LEVEL", "INFO"))
    # FastStream's access log reports each batch; it reuses a stdout handler it finds, so this
    # one keeps its lines in JSON and its per-batch INFO lines out of production logs.
    access = logging.StreamHandler(sys.stdout)
    access.setFormatter(JsonFormatter())
    access.setLevel(logging.WARNING)
    logging.getLogger("faststream.access.kafka").handlers[:] = [access]
    # aiokafka logs every refused connection during an outage; our retry log says it once per try.
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    # The drivers' own DEBUG output (every command, every heartbeat) drowns the worker's.
    logging.getLogger("pymongo").setLevel(logging.WARNING)
