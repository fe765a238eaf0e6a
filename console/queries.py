"""Read-only queries of the `orders` collection for the console: search with paging, one order.

The console never writes the store: every change is an input event the worker applies.
`ReadOnlyOrders` exposes only reads, so a write cannot slip in by accident.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.collection import AsyncCollection

from schemas.document import OrderDocument

Raw = dict[str, Any]
PAGE_SIZE = 25
# Fields the orders list shows; the timeline and outbox can be large and are left out.
LIST_FIELDS = {
    "_id": 1,
    "order_number": 1,
    "customer": 1,
    "status": 1,
    "payment_status": 1,
    "delivery_status": 1,
    "total": 1,
    "currency": 1,
    "placed_at": 1,
    "placed": 1,
    "version": 1,
}


@dataclass(frozen=True)
class Search:
    """What the orders list asks for: text, filters, order and page (1-based)."""

    text: str = ""
    status: str = ""
    delivery_status: str = ""
    oldest_first: bool = False
    page: int = 1
    page_size: int = PAGE_SIZE


@dataclass(frozen=True)
class Page:
    """One page of orders and the count of all that match."""

    orders: list[Raw]
    total: int
    search: Search

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.search.page_size))


@dataclass(frozen=True)
class EventState:
    """What the pipeline made of one input event so far: applied or not, and its timeline."""

    version: int
    applied: bool
    entries: list[Raw]


class OrderReader(Protocol):
    """What the console reads; the live store and the tests' fake both provide it."""

    async def search(self, search: Search) -> Page: ...

    async def load(self, order_id: str) -> Raw | None: ...

    async def version(self, order_id: str) -> int | None: ...

    async def event_state(self, order_id: str, event_id: str) -> EventState | None: ...


def search_filter(search: Search) -> Raw:
    """The MongoDB filter of a search: placed orders by customer, order number or id."""
    query: Raw = {"placed": True}
    if search.text.strip():
        # MongoDB refuses a pattern holding a NUL character; the escape matches one the same.
        literal = re.escape(search.text.strip()).replace("\x00", "\\x00")
        pattern = {"$regex": literal, "$options": "i"}
        query["$or"] = [
            {"customer.name": pattern},
            {"customer.email": pattern},
            {"order_number": pattern},
            {"_id": pattern},
        ]
    if search.status:
        query["status"] = search.status
    if search.delivery_status == "none":
        # Orders saved before contract 1.1 have no delivery status: nothing delivered yet.
        query["delivery_status"] = {"$in": ["none", None]}
    elif search.delivery_status:
        query["delivery_status"] = search.delivery_status
    return query


class ReadOnlyOrders:
    """The `orders` collection through `find` and `count_documents` only."""

    def __init__(self, collection: AsyncCollection[Raw]) -> None:
        self._orders = collection

    async def search(self, search: Search) -> Page:
        query = search_filter(search)
        total = await self._orders.count_documents(query)
        cursor = (
            self._orders.find(query, LIST_FIELDS)
            .sort([("placed_at", ASCENDING if search.oldest_first else DESCENDING), ("_id", 1)])
            .skip((search.page - 1) * search.page_size)
            .limit(search.page_size)
        )
        return Page([raw async for raw in cursor], total, search)

    async def load(self, order_id: str) -> Raw | None:
        return await self._orders.find_one({"_id": order_id}, {"outbox": 0})

    async def version(self, order_id: str) -> int | None:
        raw = await self._orders.find_one({"_id": order_id}, {"version": 1})
        return int(raw.get("version", 0)) if raw else None

    async def event_state(self, order_id: str, event_id: str) -> EventState | None:
        raw = await self._orders.find_one(
            {"_id": order_id}, {"version": 1, "applied_event_ids": 1, "timeline": 1}
        )
        if raw is None:
            return None
        return EventState(
            version=int(raw.get("version", 0)),
            applied=event_id in raw.get("applied_event_ids", []),
            entries=[e for e in raw.get("timeline", []) if e.get("event_id") == event_id],
        )


def typed(raw: Raw) -> OrderDocument:
    """The stored order as the worker's model (fields of newer contract versions kept in `raw`)."""
    return OrderDocument.model_validate(raw)
