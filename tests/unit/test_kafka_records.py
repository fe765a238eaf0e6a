"""Record batches whose header names are not UTF-8 are read whole, plain or compressed."""

from __future__ import annotations

import gzip
import struct
from typing import Any

import pytest
from aiokafka.record import memory_records
from aiokafka.record.default_records import _DefaultRecordBatchPy
from aiokafka.record.memory_records import MemoryRecords, _MemoryRecordsPy
from aiokafka.record.util import calc_crc32c

from consumers import kafka_records
from consumers.kafka_records import TolerantRecords, printable_name
from schemas.names import Topic
from tests.e2e.harness import Raw, batch_with_header_name

NAME = b"\xff\xfe-trace"
RECORDS = [Raw(Topic.ORDERS_PLACED, f"k{i}".encode(), f"v{i}".encode()) for i in range(3)]
# The fixed part of a v2 record batch, before its records.
HEADER = 61


def gzipped(batch: bytes) -> bytes:
    """The same batch with its records compressed with gzip (attributes bit 1)."""
    head = bytearray(batch[:HEADER])
    body = gzip.compress(batch[HEADER:])
    struct.pack_into(">h", head, 21, struct.unpack_from(">h", head, 21)[0] | 1)
    whole = head + body
    struct.pack_into(">i", whole, 8, len(whole) - 12)
    struct.pack_into(">I", whole, 17, calc_crc32c(bytes(whole[21:])))
    return bytes(whole)


def read(records: Any) -> list[Any]:
    found = []
    while records.has_next():
        batch = records.next_batch()
        assert batch.validate_crc()
        found.extend(batch)
    return found


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_a_batch_with_a_header_name_that_is_not_utf8_is_read_whole(compress: bool) -> None:
    batch = batch_with_header_name(RECORDS, NAME)
    data = gzipped(batch) if compress else batch
    with pytest.raises(ValueError):
        read(MemoryRecords(data))  # what aiokafka alone does
    records = read(TolerantRecords(data))
    assert [(r.offset, r.key, r.value) for r in records] == [
        (i, f"k{i}".encode(), f"v{i}".encode()) for i in range(3)
    ]
    assert all(r.headers == [(NAME.decode("utf-8", "surrogateescape"), b"v")] for r in records)


def test_a_valid_batch_is_read_by_aiokafka_as_before() -> None:
    batch = batch_with_header_name(RECORDS, b"trace")
    assert [(r.offset, r.headers) for r in read(TolerantRecords(batch))] == [
        (i, [("trace", b"v")]) for i in range(3)
    ]


def test_a_name_that_is_not_utf8_is_printed_with_its_odd_bytes_escaped() -> None:
    assert printable_name(NAME.decode("utf-8", "surrogateescape")) == "\\xff\\xfe-trace"
    assert printable_name("é-ok") == "é-ok"


def test_with_aiokafkas_pure_python_reader_too_the_batch_is_read_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # AIOKAFKA_NO_EXTENSIONS=1: that reader wraps the name's decode error in its own exception.
    monkeypatch.setattr(kafka_records, "MemoryRecords", _MemoryRecordsPy)
    monkeypatch.setattr(memory_records, "DefaultRecordBatch", _DefaultRecordBatchPy)
    records = read(TolerantRecords(batch_with_header_name(RECORDS, NAME)))
    assert [r.offset for r in records] == [0, 1, 2]
    assert all(r.headers == [(NAME.decode("utf-8", "surrogateescape"), b"v")] for r in records)
