"""Size budgets (contract 1.1, "Dead letters"), enforced before the store or broker is asked.

They hold on MongoDB and FerretDB alike: MongoDB refuses documents over 16 MiB and Kafka records
over its `max.message.bytes` (1 MiB by default); FerretDB over SQLite refuses neither, so the
pipeline checks these itself.
"""

from __future__ import annotations

from collections.abc import Iterable

MiB = 1024 * 1024

# The largest input record value the worker reads; a larger one is dead-lettered `too_large`.
MAX_INPUT_BYTES = 1 * MiB
# The largest output event (its CloudEvent JSON); Kafka's default record limit less room for
# the key and headers.
MAX_OUTPUT_BYTES = 900 * 1024
# The largest order document (BSON); half of MongoDB's limit, so one batch of events on a
# nearly full order can never push a write over 16 MiB.
MAX_DOCUMENT_BYTES = 8 * MiB
# The largest record the producer sends (key, value and headers): under Kafka's default
# `max.message.bytes` (1 MiB and 12 bytes) with room for the record batch's own framing.
MAX_RECORD_BYTES = 1_000_000


def record_bytes(
    key: bytes | None, value: bytes | None, headers: Iterable[tuple[str, bytes | None]]
) -> int:
    """Bytes of a record's key, value and headers: what counts against `MAX_RECORD_BYTES`."""
    named = sum(len(name.encode()) + len(header or b"") for name, header in headers)
    return len(key or b"") + len(value or b"") + named


# Timeline summaries are for people: longer ones are cut with an ellipsis.
MAX_SUMMARY_CHARS = 500
# The most lines an order or a request may name, and distributions a request may carry.
MAX_ITEMS = 1000
