"""The order store on the real MongoDB-wire store: a save appends to the lists that only grow."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from pymongo import ReplaceOne, UpdateOne

from consumers.pipeline import failure
from lifecycle import apply
from schemas.document import OrderDocument
from schemas.events import Inbound
from store.orders import OrderStore, UnreadableOrder, connect, encode
from tests.conftest import Infra, Names
from tests.factories import (
    captured,
    placed,
    requested,
    status_reported,
    stored_before_1_1,
    tracking_updated,
)

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.fixture
async def store(infra: Infra, names: Names) -> AsyncIterator[OrderStore]:
    client = connect(infra.mongodb_uri)
    yield OrderStore(client, names.database)
    await client.drop_database(names.database)
    await client.close()


async def saved(store: OrderStore, order: OrderDocument, event: Inbound) -> bool:
    """Apply `event`, save with compare-and-set; True when the save appended to the stored copy."""
    loaded = order.version
    order.outbox = []
    apply(order, event, NOW)
    order.version = loaded + 1
    token = uuid.uuid4().hex
    change = encode(order, loaded, token, whole_below=0)
    assert await store.save_many([change], token) == set()
    return change.appends


async def read_whole(infra: Infra, store: OrderStore, order_id: str) -> OrderDocument:
    """The document as the store holds it, read by a client that has seen none of our saves."""
    client = connect(infra.mongodb_uri)
    try:
        order = await OrderStore(client, store.orders.database.name).load(order_id)
    finally:
        await client.close()
    assert order is not None
    return order


async def test_saves_after_the_first_append_and_the_store_holds_the_same_document(
    infra: Infra, store: OrderStore
) -> None:
    order = OrderDocument(_id="ord-s")
    events = [
        placed("ord-s"),
        captured("ord-s"),
        requested("ord-s", shipment={"carrier": "DHL", "tracking_number": "AWB-1"}),
        status_reported("ord-s", status="in_transit"),
    ]
    appended = []
    for event in events:
        appended.append(await saved(store, order, event))
        assert (await read_whole(infra, store, "ord-s")).model_dump() == order.model_dump()
    assert appended == [False, True, True, True]


async def test_an_order_loaded_from_the_store_is_appended_to_and_its_size_never_undercounted(
    infra: Infra, store: OrderStore
) -> None:
    order = OrderDocument(_id="ord-l")
    await saved(store, order, placed("ord-l"))
    for number in range(30):
        await saved(store, order, captured("ord-l", amount="0.01", payment_id=f"p{number}"))
    fresh_client = connect(infra.mongodb_uri)
    try:
        fresh = OrderStore(fresh_client, store.orders.database.name)
        loaded = (await fresh.load_many(["ord-l"]))["ord-l"]
        assert await saved(fresh, loaded, captured("ord-l", amount="0.01", payment_id="last"))
        raw = await fresh.orders.find_one({"_id": "ord-l"}, {"write_token": 0})
    finally:
        await fresh_client.close()
    assert raw is not None
    whole = encode(OrderDocument.model_validate(raw), 0, "t")
    # What the store holds, as the next save counts it without reading it: never less.
    assert encode(loaded, loaded.version, "t", whole_below=0).size >= whole.size


async def test_a_document_written_before_a_list_existed_is_written_whole_with_the_list(
    infra: Infra, store: OrderStore
) -> None:
    order = OrderDocument(_id="ord-o")
    apply(order, placed("ord-o"), NOW)
    order.version = 1
    older = order.to_mongo()
    del older["early_shipment_news"]  # as written before contract 1.1
    await store.orders.insert_one(older)
    loaded = (await store.load_many(["ord-o"]))["ord-o"]
    update = tracking_updated("ord-o", "ful-later", tracking_number="AWB-9")
    assert not await saved(store, loaded, update)
    assert (await read_whole(infra, store, "ord-o")).model_dump() == loaded.model_dump()


@pytest.mark.parametrize("write", ["update", "replace"])
async def test_concurrent_compare_and_set_writes_at_one_version_let_exactly_one_win(
    infra: Infra, store: OrderStore, write: str
) -> None:
    """Two workers that loaded the same version (a rebalance overlap) may both save: the store
    must let one write match and refuse the other, or the loser's events are lost unseen."""
    await store.orders.insert_one({"_id": "ord-race", "version": 0, "by": None})
    clients = [connect(infra.mongodb_uri) for _ in range(4)]
    orders = [client[store.orders.database.name]["orders"] for client in clients]

    async def save(writer: int, version: int) -> int:
        selector = {"_id": "ord-race", "version": version}
        operation: UpdateOne | ReplaceOne[Any] = (
            UpdateOne(selector, {"$set": {"version": version + 1, "by": writer}})
            if write == "update"
            else ReplaceOne(selector, {"_id": "ord-race", "version": version + 1, "by": writer})
        )
        result = await orders[writer].bulk_write([operation], ordered=False)
        return result.matched_count

    try:
        for version in range(40):
            wins = await asyncio.gather(*(save(writer, version) for writer in range(len(orders))))
            assert sum(wins) == 1, f"version {version}: {sum(wins)} writers matched"
            stored = await store.orders.find_one({"_id": "ord-race"})
            assert stored is not None
            assert stored["version"] == version + 1
            assert stored["by"] == wins.index(1)
    finally:
        for client in clients:
            await client.close()


async def test_a_document_another_writer_stored_at_our_version_is_read_from_the_store(
    infra: Infra, store: OrderStore
) -> None:
    """Our copy of a save is reused only while the store holds that very write: another
    writer's document at the same version (our write rolled back, say) is read whole."""
    order = OrderDocument(_id="ord-t")
    for event in (placed("ord-t"), captured("ord-t")):
        await saved(store, order, event)
    theirs = await read_whole(infra, store, "ord-t")
    theirs.timeline = theirs.timeline[:1]
    await store.orders.replace_one(
        {"_id": "ord-t"}, theirs.to_mongo() | {"write_token": "another writer"}
    )
    loaded = (await store.load_many(["ord-t"]))["ord-t"]
    assert loaded.model_dump() == theirs.model_dump()
    assert loaded.model_dump() != order.model_dump()


async def test_a_document_written_before_1_1_is_written_whole_once_so_it_gets_every_field(
    infra: Infra, store: OrderStore
) -> None:
    """An update sets only what changed: a field the stored copy lacks (written before it
    existed, `delivery_status` say) would never be added, so that first save writes it whole."""
    order = OrderDocument(_id="ord-w")
    ship = {"carrier": "DHL", "tracking_number": "AWB-1"}
    for event in (placed("ord-w"), captured("ord-w"), requested("ord-w", shipment=ship)):
        apply(order, event, NOW)
    order.version = 1
    await store.orders.insert_one(stored_before_1_1(order))
    loaded = (await store.load_many(["ord-w"]))["ord-w"]
    refund = captured("ord-w", amount="0.00", payment_id="pay-2")  # changes no 1.1 field
    assert not await saved(store, loaded, refund)
    raw = await store.orders.find_one({"_id": "ord-w"})
    assert raw is not None
    assert raw["delivery_status"] == "none"
    assert all("shipment_status" in kept for kept in raw["fulfillments"])
    assert await saved(store, loaded, captured("ord-w", amount="0.00", payment_id="pay-3"))


@pytest.mark.parametrize("stored", [{}, {"version": 0}], ids=["no version", "version 0"])
async def test_a_stored_document_without_a_version_is_replaced_not_raced_for_ever(
    infra: Infra, store: OrderStore, stored: dict[str, Any]
) -> None:
    """Written by hand or restored: an insert would meet its id and lose a race that nobody
    won, again on every try."""
    await store.orders.insert_one({"_id": "ord-v", **stored})
    loaded = (await store.load_many(["ord-v"]))["ord-v"]
    assert loaded.version == 0
    apply(loaded, placed("ord-v"), NOW)
    loaded.version = 1
    token = uuid.uuid4().hex
    assert await store.save_many([encode(loaded, 0, token)], token) == set()
    raw = await store.orders.find_one({"_id": "ord-v"})
    assert raw is not None and raw["version"] == 1 and raw["placed"] is True


async def test_a_stored_order_this_version_cannot_read_is_named_as_such(
    store: OrderStore,
) -> None:
    """Its events' dead letters say why: the stored order, not the event, is what failed."""
    order = OrderDocument(_id="ord-newer")
    apply(order, placed("ord-newer"), NOW)
    order.version = 1
    await store.orders.insert_one(order.to_mongo() | {"status": "status_of_a_newer_version"})
    with pytest.raises(UnreadableOrder) as unreadable:
        await store.load_many(["ord-newer"])
    assert failure(unreadable.value).error == (
        "UnreadableOrder while reading its stored order (written by a newer version?)"
    )
