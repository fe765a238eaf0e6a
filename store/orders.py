"""The `orders` collection: batched load, compare-and-set save with the outbox, queries.

Each order's outputs are saved in its document's `outbox`, in the same write as the state
that caused them. A small `outbox_pending` collection says which outboxes may be unsent:
a marker `<order id>@<version>` is inserted before the save and deleted once the broker has
acknowledged the outputs. So a sent outbox needs no second write to the order, and the relay
reads only the markers, never the whole orders collection.
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import bson
import pymongo
from bson.raw_bson import RawBSONDocument
from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, InsertOne, ReplaceOne, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError
from pymongo.read_concern import ReadConcern

from schemas.document import (
    APPENDED_FIELDS,
    POSITIONAL_FIELDS,
    OrderDocument,
    PendingOutbox,
    Stored,
    lacks_fields,
)
from schemas.limits import MAX_DOCUMENT_BYTES
from schemas.names import DeliveryStatus
from store.server import FERRETDB_WRITE_CHUNK

log = logging.getLogger("fulfillment.store")

DUPLICATE_KEY = 11000
Raw = dict[str, Any]


# Below this size a whole document encodes faster than an update (one pydantic dump and one
# BSON encode in C, against a few of each for the parts): measured 31-44 us whole against
# 35-53 us as an update for the bench's orders (2-5 KB). Above it, an update costs the same
# whatever the order's history, and the whole document grows with it.
WHOLE_BELOW = 8 * 1024
# Bytes a pushed item's array index may add over its index in `$each` (up to 7 more digits).
INDEX_DIGITS = 7


# The longest one store command may take, its cursor's reads included: a server that takes
# connections and answers pings but no command would otherwise hold a batch for ever. Past
# it pymongo raises a timeout, an outage waited out like any other; writes go in chunks of
# `write_chunk`, far below it.
COMMAND_DEADLINE_S = 30.0
# Building an index over a large collection takes long, once.
INDEX_DEADLINE_S = 600.0


def _deadline() -> AbstractContextManager[None]:
    return pymongo.timeout(COMMAND_DEADLINE_S)


# How long a marker whose save has not landed (the stored version is below it) is kept after
# that save's last try, in case the write is still in flight; after that the save is taken as
# failed. Far above any single write: each try of a save dates its markers again.
ABANDONED_AFTER = timedelta(minutes=15)


class UnreadableOrder(ValueError):
    """A stored order this version cannot read: written by a newer version, or by hand."""

    @classmethod
    def of(cls, problem: ValueError) -> UnreadableOrder:
        unreadable = cls(str(problem))
        unreadable.__cause__ = problem
        # What a dead letter of its events says (never the message, which may hold values).
        unreadable.add_note("reading its stored order (written by a newer version?)")
        return unreadable


class WriteNotConfirmed(TimeoutError):
    """The store applied a write but did not confirm it as the write concern asks: an outage."""


@dataclass
class Change:
    """A new state of an order, to be saved only if nobody saved another since it was loaded."""

    order: OrderDocument
    loaded_version: int
    # The whole document (EncodedOrder), or an update of the stored one: `$set` of what changed,
    # `$push` of the appended lists' new items. Encoded by `encode`, so its size is known
    # before the store is asked.
    write: EncodedOrder | EncodedUpdate
    # The document's size once written: exact when written whole, else an upper bound.
    size: int
    # What the store holds once this is written.
    stored: Stored

    @property
    def appends(self) -> bool:
        return not isinstance(self.write, EncodedOrder)


class EncodedOrder(RawBSONDocument):
    """An order already encoded to BSON, which the driver sends as it is.

    pymongo tests a replacement with `if replacement:`, which on a RawBSONDocument decodes
    the whole document to count its keys; an encoded order is never empty, so it says so.
    """

    def __bool__(self) -> bool:
        return True


class EncodedUpdate(RawBSONDocument):
    """An update (`$set`, `$push`) already encoded, which the driver sends as it is.

    pymongo checks that an update is not empty and that its first key is an operator, by
    iterating it, which on a RawBSONDocument decodes it whole; its operators are known.
    """

    __slots__ = ("operators",)

    def __init__(self, raw: bytes, operators: tuple[str, ...]) -> None:
        super().__init__(raw)
        self.operators = operators

    def __bool__(self) -> bool:
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(self.operators)

    def __len__(self) -> int:
        return len(self.operators)


def encode(
    order: OrderDocument,
    loaded_version: int,
    token: str,
    limit: int = MAX_DOCUMENT_BYTES,
    whole_below: int = WHOLE_BELOW,
) -> Change:
    """The write that saves `order`, tagged with the write's token; raises if a value has no
    BSON form. When the stored copy is known, it sets only the fields assigned and the items
    changed, and pushes only the new items of the appended lists; when the size that counts
    (then an upper bound) is above `limit`, the whole document is written and measured; so it
    is when the stored copy is below `whole_below` bytes."""
    stored = order.stored
    known = loaded_version > 0 and stored.version == loaded_version
    if known and stored.size >= whole_below and order.grew_from(stored):
        change = _update(order, loaded_version, token, stored)
        if change.size <= limit:
            return change
    document = EncodedOrder(bson.encode(order.to_mongo() | {"write_token": token}))
    size = len(document.raw)
    return Change(order, loaded_version, document, size, order.stored_as(size))


def _update(order: OrderDocument, loaded_version: int, token: str, stored: Stored) -> Change:
    """An update of the stored copy: `$set` of what changed, `$push` of the new items."""
    sets = order.changed_since(stored)
    sets["write_token"] = token
    tails = order.appended_since(stored.lengths)
    update: dict[str, Any] = {"$set": sets}
    if tails:
        update["$push"] = {name: {"$each": items} for name, items in tails.items()}
    write = EncodedUpdate(bson.encode(update), tuple(update))
    # At most what is stored plus what is written: replaced values are not subtracted, and
    # an item pushed may take a longer array index than in `$each`.
    count = sum(len(items) for items in tails.values())
    size = stored.size + len(write.raw) + INDEX_DIGITS * count
    return Change(order, loaded_version, write, size, order.stored_as(size))


def measured(raw: Mapping[str, Any], size: int) -> Stored:
    """What the store holds of an order it returned (`raw`, `size` bytes of BSON), for
    updating it later; its version is left unknown when it lacks a field of this version, so
    that its next save writes it whole."""
    lengths = tuple(len(raw.get(name) or []) for name in APPENDED_FIELDS)
    lists = [raw.get(name) for name in POSITIONAL_FIELDS]
    positions = tuple(len(items) if isinstance(items, list) else 0 for items in lists)
    # An update would set "name.0" of a stored value that is not a list, or never add a
    # field the stored copy lacks.
    whole = lacks_fields(raw) or not all(isinstance(items, list) for items in lists)
    return Stored(None if whole else raw.get("version", 0), lengths, positions, size)


def _readable_markers(raws: Sequence[Raw]) -> tuple[list[PendingOutbox], list[Any]]:
    """The markers among `raws` this version can read, and the ids of the others."""
    markers, unreadable = [], []
    for raw in raws:
        try:
            markers.append(PendingOutbox.model_validate(raw))
        except ValueError:
            unreadable.append(raw["_id"])
    return markers, unreadable


def sort_markers(
    markers: Sequence[PendingOutbox], orders: Mapping[str, OrderDocument], saved_before: datetime
) -> tuple[list[OrderDocument], list[str]]:
    """The stored orders whose marker names their version (their outbox may be unsent), and
    the ids of the markers that are stale; any other marker's save may still be in flight."""
    unsent, stale = [], []
    for marker in markers:
        order = orders.get(marker.order_id)
        stored = order.version if order is not None else 0
        if order is not None and stored == marker.version:
            unsent.append(order)
        elif stored > marker.version or marker.at < saved_before - ABANDONED_AFTER:
            # A newer save carried these outputs forward (its own marker stands for them), or
            # the save behind the marker never landed: it lost its race or failed.
            stale.append(marker.id)
    return unsent, stale


def _only_duplicates(failure: BulkWriteError) -> None:
    """Return when the bulk write's only errors are inserts of ids that exist; re-raise any
    other write error, and a write the store applied without confirming it as an outage."""
    details = failure.details
    if any(error.get("code") != DUPLICATE_KEY for error in details.get("writeErrors", [])):
        raise failure
    if details.get("writeConcernErrors"):
        raise WriteNotConfirmed(str(details["writeConcernErrors"][0])) from None


class SavedOrders:
    """The documents this store saved last, by id, each handed out once and then forgotten.

    Handing a document out removes it, so the caller may change it freely; it comes back only
    when saved again. A document is handed out only while the store holds its version written
    with the same token: a save at that version that was not ours (a rolled-back write, say)
    makes the store's copy another document.
    """

    def __init__(self, capacity: int = 20_000) -> None:
        self.capacity = capacity
        self._orders: OrderedDict[str, tuple[OrderDocument, str]] = OrderedDict()

    def take(self, stored: Mapping[str, tuple[int, str | None]]) -> dict[str, OrderDocument]:
        """The remembered documents whose version and write token are the stored ones."""
        taken = {}
        for order_id, (version, token) in stored.items():
            kept = self._orders.pop(order_id, None)
            if kept is not None and kept[0].version == version and kept[1] == token:
                taken[order_id] = kept[0]
        return taken

    def keep(self, orders: Iterable[OrderDocument], token: str) -> None:
        """Remember `orders`, just saved with the write token `token`."""
        for order in orders:
            self._orders[order.id] = (order, token)
            self._orders.move_to_end(order.id)
        while len(self._orders) > self.capacity:
            self._orders.popitem(last=False)


class OrderStore:
    """One document per order; every write is a single-document compare-and-set."""

    def __init__(
        self, client: AsyncMongoClient[Raw], database: str, write_chunk: int = FERRETDB_WRITE_CHUNK
    ) -> None:
        """`write_chunk`: writes per bulk command; the smallest safe one unless `probe` said more."""
        self.client = client
        self.orders: AsyncCollection[Raw] = client[database]["orders"]
        self.pending: AsyncCollection[Raw] = client[database]["outbox_pending"]
        self.write_chunk = write_chunk
        self._saved = SavedOrders()
        # Where the relay's last pass over the markers stopped (`unsent`): (at, _id).
        self._relay_after: tuple[datetime, Any] | None = None
        self._undecoded = self.orders.codec_options.with_options(document_class=RawBSONDocument)

    async def ensure_indexes(self) -> None:
        with pymongo.timeout(INDEX_DEADLINE_S):
            await self.pending.create_index([("at", ASCENDING)])
            await self.orders.create_index([("order_number", ASCENDING)])
            await self.orders.create_index([("customer.email", ASCENDING)])
            await self.orders.create_index([("status", ASCENDING), ("placed_at", DESCENDING)])
            await self.orders.create_index(
                [("delivery_status", ASCENDING), ("placed_at", DESCENDING)]
            )

    async def load(self, order_id: str) -> OrderDocument | None:
        raw = await self.orders.find_one({"_id": order_id})
        return OrderDocument.model_validate(raw) if raw else None

    async def load_many(self, order_ids: Iterable[str]) -> dict[str, OrderDocument]:
        """The stored orders among `order_ids`; one this version cannot read raises."""
        loaded, unreadable = await self._load(order_ids)
        for problem in unreadable.values():
            raise problem
        return loaded

    async def _load(
        self, order_ids: Iterable[str]
    ) -> tuple[dict[str, OrderDocument], dict[str, Exception]]:
        """The stored orders among `order_ids`, and why each unreadable one could not be read.

        Those this store saved last come from memory: one query reads the stored versions and
        write tokens, and only orders someone else wrote since (or never seen here) are
        fetched whole and validated, which is most of a load's CPU.
        """
        ids = list(order_ids)
        with _deadline():
            versions = self.orders.find({"_id": {"$in": ids}}, {"version": 1, "write_token": 1})
            stored = {
                raw["_id"]: (raw.get("version", 0), raw.get("write_token"))
                async for raw in versions
            }
        loaded = self._saved.take(stored)
        unreadable: dict[str, Exception] = {}
        missing = [order_id for order_id in stored if order_id not in loaded]
        if missing:
            # As the server sent them, so that their size is known without encoding them again.
            undecoded = self.orders.with_options(codec_options=self._undecoded)
            with _deadline():  # the reads only: validating takes what it takes
                fetched = [found async for found in undecoded.find({"_id": {"$in": missing}})]
            for found in fetched:
                raw = bson.decode(found.raw, codec_options=self.orders.codec_options)
                try:
                    order = OrderDocument.model_validate(raw)
                except ValueError as problem:  # pydantic's ValidationError among them
                    unreadable[raw["_id"]] = UnreadableOrder.of(problem)
                    continue
                order.remember_stored(measured(raw, len(found.raw)))
                loaded[raw["_id"]] = order
        return loaded, unreadable

    async def save_many(self, changes: Sequence[Change], token: str) -> set[str]:
        """Save all changes (encoded with `token`) in one unordered bulk write; return the ids that lost a race."""
        if not changes:
            return set()
        operations: list[InsertOne[Any] | ReplaceOne[Any] | UpdateOne] = []
        for change in changes:
            # A stored document without a version (written by hand, say) is at version 0.
            version = change.loaded_version or {"$in": [0, None]}
            selector = {"_id": change.order.id, "version": version}
            if change.loaded_version == 0 and not change.order.stored.held:
                operations.append(InsertOne(change.write))
            elif change.appends:
                operations.append(UpdateOne(selector, change.write))
            else:
                operations.append(ReplaceOne(selector, change.write))
        await self._mark_pending([change.order for change in changes if change.order.outbox])
        written = 0
        for chunk in self._chunks(operations):
            written += await self._write_counting_conflicts(chunk)
        # A loser's marker is left alone: the winner may share its key, and a stray marker
        # only makes the relay re-send an outbox, which is a harmless duplicate.
        lost = set() if written == len(changes) else await self._lost_races(changes, token)
        saved = [change for change in changes if change.order.id not in lost]
        for change in saved:
            change.order.remember_stored(change.stored)
        self._saved.keep((change.order for change in saved), token)
        return lost

    def _chunks(self, operations: Sequence[Any]) -> list[Sequence[Any]]:
        size = self.write_chunk
        return [operations[start : start + size] for start in range(0, len(operations), size)]

    async def _write_counting_conflicts(
        self, operations: Sequence[InsertOne[Raw] | ReplaceOne[Raw] | UpdateOne]
    ) -> int:
        """Documents written; an insert that meets an existing `_id` lost a race."""
        try:
            with _deadline():
                result = await self.orders.bulk_write(list(operations), ordered=False)
            return result.inserted_count + result.matched_count
        except BulkWriteError as failure:
            # A write not confirmed is written again; the write token then tells which landed.
            _only_duplicates(failure)
            # What the server counted: an update that matched nothing lost a race too.
            details = failure.details
            return int(details.get("nInserted", 0)) + int(details.get("nMatched", 0))

    async def _lost_races(self, changes: Sequence[Change], token: str) -> set[str]:
        ids = [change.order.id for change in changes]
        # Only a write a majority holds counts as ours: one a failover may still roll back
        # would be taken as saved and its events' offsets committed. A write not there yet
        # counts as lost: the order is read again and its events applied again, or skipped.
        confirmed = self.orders.with_options(read_concern=ReadConcern("majority"))
        with _deadline():
            cursor = confirmed.find({"_id": {"$in": ids}}, {"write_token": 1})
            ours = {raw["_id"] async for raw in cursor if raw.get("write_token") == token}
        return set(ids) - ours

    async def _mark_pending(self, orders: Sequence[OrderDocument]) -> None:
        """A marker per order, dated now: written again by each try of the same save, so that
        its date is that of the last try and the relay knows the save may still be in flight."""
        if not orders:
            return
        now = datetime.now(UTC)
        markers = [PendingOutbox.of(order, now).to_mongo() for order in orders]
        writes = [ReplaceOne({"_id": marker["_id"]}, marker, upsert=True) for marker in markers]
        for chunk in self._chunks(writes):
            try:
                with _deadline():
                    await self.pending.bulk_write(list(chunk), ordered=False)
            except BulkWriteError as failure:  # two tries inserting the same marker at once
                # A marker not confirmed could be rolled back after the save lands: written again.
                _only_duplicates(failure)

    async def mark_sent(self, keys: Sequence[str]) -> None:
        """The broker has these outboxes (`order@version` keys): forget their markers, one
        statement per `write_chunk` keys."""
        for chunk in self._chunks(keys):
            with _deadline():
                await self.pending.delete_many({"_id": {"$in": list(chunk)}})

    async def postpone(self, keys: Sequence[str]) -> None:
        """These outboxes cannot go out now: their markers, dated now, go to the back of the
        relay's queue."""
        now = datetime.now(UTC)
        for chunk in self._chunks(keys):
            with _deadline():
                await self.pending.update_many({"_id": {"$in": list(chunk)}}, {"$set": {"at": now}})

    async def unsent_among(self, orders: Sequence[OrderDocument]) -> set[str]:
        """Ids of the orders whose saved outbox may not have been sent yet."""
        keys = [PendingOutbox.key(order.id, order.version) for order in orders if order.outbox]
        if not keys:
            return set()
        with _deadline():
            return {raw["order_id"] async for raw in self.pending.find({"_id": {"$in": keys}})}

    async def unsent(self, saved_before: datetime, limit: int = 500) -> list[OrderDocument]:
        """Orders whose outbox a crash left behind: their marker is older than `saved_before`
        and names the stored version.

        A pass reads `limit` markers, oldest first, from where the last pass stopped: markers
        of saves still in flight, kept for a while, never hold up the ones behind them. A
        marker or order this version cannot read goes to the back of the queue (`postpone`).
        """
        due: dict[str, Any] = {"at": {"$lt": saved_before}}
        if self._relay_after is not None:
            at, last = self._relay_after
            due = {"$and": [due, {"$or": [{"at": {"$gt": at}}, {"at": at, "_id": {"$gt": last}}]}]}
        cursor = self.pending.find(due, limit=limit).sort([("at", ASCENDING), ("_id", ASCENDING)])
        with _deadline():
            raws = [raw async for raw in cursor]
        # A page not full reached the end: the next pass starts from the oldest again.
        self._relay_after = (raws[-1]["at"], raws[-1]["_id"]) if len(raws) == limit else None
        markers, unreadable = _readable_markers(raws)
        orders, unreadable_orders = await self._load({marker.order_id for marker in markers})
        unreadable += [m.id for m in markers if m.order_id in unreadable_orders]
        # Never taken for stale: an order not read is not an order missing.
        markers = [m for m in markers if m.order_id not in unreadable_orders]
        if unreadable:
            log.warning(
                "%d pending outboxes could not be read (%s); tried again later",
                len(unreadable),
                ", ".join(str(marker_id) for marker_id in unreadable[:5]),
            )
            await self.postpone(unreadable)
        unsent, stale = sort_markers(markers, orders, saved_before)
        await self.mark_sent(stale)  # their outputs went out, or never will: forgotten alike
        return unsent

    async def is_settled(self, order: OrderDocument) -> bool:
        """True when the order's saved outputs have been acknowledged by the broker."""
        return not order.outbox or not await self.unsent_among([order])

    async def search(
        self,
        text: str | None = None,
        status: str | None = None,
        newest_first: bool = True,
        limit: int = 50,
        delivery_status: str | None = None,
    ) -> list[OrderDocument]:
        """Orders by customer name or email or order number, optionally of one status and one
        delivery status."""
        query: Raw = {"placed": True}
        if text:
            pattern = {"$regex": re.escape(text), "$options": "i"}
            query["$or"] = [
                {"customer.name": pattern},
                {"customer.email": pattern},
                {"order_number": pattern},
            ]
        if status:
            query["status"] = status
        if delivery_status == DeliveryStatus.NONE:
            # A document written before contract 1.1 has no field yet: it counts as "none".
            query["delivery_status"] = {"$in": [DeliveryStatus.NONE.value, None]}
        elif delivery_status:
            query["delivery_status"] = delivery_status
        cursor = self.orders.find(query, limit=limit).sort(
            "placed_at", DESCENDING if newest_first else ASCENDING
        )
        return [OrderDocument.model_validate(raw) async for raw in cursor]


def connect(uri: str, **options: Any) -> AsyncMongoClient[Raw]:
    """A client that waits out short outages instead of failing the first call."""
    settings: dict[str, Any] = {
        "serverSelectionTimeoutMS": 5000,
        "connectTimeoutMS": 5000,
        "tz_aware": True,
    }
    return AsyncMongoClient(uri, **(settings | options))
