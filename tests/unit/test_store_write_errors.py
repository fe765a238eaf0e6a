"""How the order store reads a bulk write the server answered with errors (no server needed)."""

from __future__ import annotations

from typing import Any

import pytest
from pymongo import InsertOne, ReplaceOne, UpdateOne
from pymongo.errors import BulkWriteError

from consumers.retry import is_outage
from schemas.document import OrderDocument, OutboxMessage
from store.orders import DUPLICATE_KEY, OrderStore, WriteNotConfirmed, connect


class Answers:
    """A collection whose bulk writes fail with `details`, as pymongo reports them."""

    def __init__(self, details: dict[str, Any]) -> None:
        self.details = details

    async def bulk_write(self, operations: list[Any], ordered: bool) -> None:
        raise BulkWriteError(self.details)


def store_answering(details: dict[str, Any]) -> OrderStore:
    # The client never connects: the collection it would use is replaced.
    store = OrderStore(connect("mongodb://127.0.0.1:1"), "unused")
    store.orders = Answers(details)  # type: ignore[assignment]
    return store


def details(**counts: Any) -> dict[str, Any]:
    return {
        "writeErrors": [],
        "writeConcernErrors": [],
        "nInserted": 0,
        "nUpserted": 0,
        "nMatched": 0,
        "nModified": 0,
        "nRemoved": 0,
        "upserted": [],
    } | counts


OPERATIONS: list[InsertOne[dict[str, Any]] | ReplaceOne[dict[str, Any]] | UpdateOne] = [
    InsertOne({"_id": "a"}),
    UpdateOne({"_id": "b", "version": 1}, {"$set": {"version": 2}}),
    UpdateOne({"_id": "c", "version": 1}, {"$set": {"version": 2}}),
]


async def test_an_update_that_matched_nothing_beside_a_duplicate_insert_counts_as_lost() -> None:
    duplicate = {"index": 0, "code": DUPLICATE_KEY, "errmsg": "E11000"}
    store = store_answering(details(writeErrors=[duplicate], nMatched=1))
    # b was written; a met an existing id and c another version: 1 written, not 3 - 1.
    assert await store._write_counting_conflicts(OPERATIONS) == 1


async def test_a_write_concern_error_is_an_outage_not_a_save_that_went_through() -> None:
    unconfirmed = {"code": 64, "errmsg": "waiting for replication timed out"}
    store = store_answering(details(writeConcernErrors=[unconfirmed], nInserted=1, nMatched=1))
    with pytest.raises(WriteNotConfirmed) as raised:
        await store._write_counting_conflicts(OPERATIONS)
    assert is_outage(raised.value)


async def test_a_pending_marker_the_store_did_not_confirm_is_an_outage() -> None:
    # Taken as written, a failover could roll it back after the save lands: an outbox never relayed.
    unconfirmed = {"code": 64, "errmsg": "waiting for replication timed out"}
    store = store_answering(details(writeConcernErrors=[unconfirmed], nUpserted=1))
    store.pending = store.orders
    order = OrderDocument(_id="order-1", version=1)
    order.outbox = [OutboxMessage(id="evt-1", topic="orders.status", key="order-1", value="{}")]
    with pytest.raises(WriteNotConfirmed) as raised:
        await store._mark_pending([order])
    assert is_outage(raised.value)


async def test_any_other_write_error_belongs_to_its_document() -> None:
    refused = {"index": 1, "code": 17419, "errmsg": "document too large"}
    store = store_answering(details(writeErrors=[refused], nInserted=1))
    with pytest.raises(BulkWriteError) as raised:
        await store._write_counting_conflicts(OPERATIONS)
    assert not is_outage(raised.value)


async def test_write_errors_that_all_say_the_server_cannot_write_now_are_an_outage() -> None:
    stepping_down = [
        {"index": i, "code": 10107, "errmsg": "not writable primary"} for i in range(3)
    ]
    store = store_answering(details(writeErrors=stepping_down))
    with pytest.raises(BulkWriteError) as raised:
        await store._write_counting_conflicts(OPERATIONS)
    assert is_outage(raised.value)
