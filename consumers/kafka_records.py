"""Kafka records whose header names are not UTF-8 are read, not left to stall their partition.

aiokafka decodes header names as UTF-8, strictly, while it unpacks a fetched record batch.
Kafka stores names as any bytes, and some clients (librdkafka's, say) send them so: one such
record would make every fetch of its partition fail at the same offset, and hold up every
record behind it. `install()` makes the fetcher read a batch that fails so again with
aiokafka's own pure-Python reader, names decoded with `surrogateescape`: the record comes
through, its odd names kept as surrogate escapes (`printable_name` shows them), and valid
batches are read by aiokafka's fast reader as before.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any

from aiokafka.consumer import fetcher
from aiokafka.record.default_records import _DefaultRecordBatchPy
from aiokafka.record.memory_records import MemoryRecords

# A record batch on the wire: base offset (int64), then the length (int32) of what follows.
_BATCH_FRAME = struct.Struct(">qi")


def install() -> None:
    """Give the consumer's fetcher the tolerant reader (once per process; idempotent)."""
    fetcher.MemoryRecords = TolerantRecords


def printable_name(name: str) -> str:
    """A header name as text a producer can send: odd bytes written as \\xNN."""
    try:
        name.encode()
        return name
    except UnicodeEncodeError:
        return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


class TolerantRecords:
    """The record batches of one fetch response, as aiokafka's `MemoryRecords` gives them."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._records = MemoryRecords(data)

    def has_next(self) -> bool:
        return bool(self._records.has_next())

    def next_batch(self) -> Any:
        batch = self._records.next_batch()
        return None if batch is None else _TolerantBatch(batch, self._data)

    def size_in_bytes(self) -> int:
        return int(self._records.size_in_bytes())


class _TolerantBatch:
    """One batch: read by aiokafka; if a header name is not UTF-8, the rest read again."""

    def __init__(self, batch: Any, data: bytes) -> None:
        self._batch = batch
        self._data = data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._batch, name)

    def __iter__(self) -> Iterator[Any]:
        read_up_to = -1
        try:
            for record in self._batch:
                read_up_to = record.offset
                yield record
        except Exception as problem:
            if not _is_name_problem(problem):
                raise
            for record in _reread(self._data, self._batch.base_offset):
                if record.offset > read_up_to:
                    yield record


def _is_name_problem(problem: BaseException) -> bool:
    # aiokafka's pure-Python reader wraps the decode error in CorruptRecordException.
    return isinstance(problem, UnicodeDecodeError) or isinstance(
        problem.__cause__, UnicodeDecodeError
    )


def _reread(data: bytes, base_offset: int) -> Iterator[Any]:
    """The records of the batch at `base_offset` in `data`, names decoded tolerantly."""
    position = 0
    while position + _BATCH_FRAME.size <= len(data):
        offset, length = _BATCH_FRAME.unpack_from(data, position)
        end = position + _BATCH_FRAME.size + length
        if offset == base_offset:
            yield from _TolerantBatchPy(memoryview(data)[position:end])
            return
        position = end


class _TolerantBuffer(bytearray):
    """A batch's bytes whose slices decode with `surrogateescape`: only header names are
    decoded from a record batch, so nothing else changes."""

    def __getitem__(self, index: Any) -> Any:
        item = super().__getitem__(index)
        return _TolerantBytes(item) if isinstance(index, slice) else item


class _TolerantBytes(bytes):
    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        return super().decode(encoding, "surrogateescape")


class _TolerantBatchPy(_DefaultRecordBatchPy):  # type: ignore[misc]  # aiokafka is untyped here
    _buffer: bytearray

    def __init__(self, buffer: memoryview) -> None:
        super().__init__(buffer)
        self._buffer = _TolerantBuffer(self._buffer)

    def _maybe_uncompress(self) -> None:
        super()._maybe_uncompress()
        if not isinstance(self._buffer, _TolerantBuffer):
            self._buffer = _TolerantBuffer(self._buffer)
