"""The order store on the real MongoDB-wire store: a save appends to the lists that only grow."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from lifecycle import apply
from schemas.document import OrderDocument
from schemas.events import Inbound
from store.orders import OrderStore, connect, encode
from tests.conftest import Infra, Names
from tests.factories import captured, placed, requested, status_reported, tracking_updated

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


async def test_a_document_written_before_a_list_existed_gets_the_list_whole(
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
    assert await saved(store, loaded, update)
    assert (await read_whole(infra, store, "ord-o")).model_dump() == loaded.model_dump()
