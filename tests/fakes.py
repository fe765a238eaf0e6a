"""In-memory stand-ins for the store and the broker, for fast tests of the pipeline's shell.

They keep the real contracts that matter to the shell: compare-and-set on `version`, pending
outbox markers, BSON round trips of every saved document, per-record broker refusals.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime

import bson
from aiokafka.errors import KafkaConnectionError
from pymongo.errors import AutoReconnect

from consumers.outputs import Message
from schemas.document import OrderDocument, PendingOutbox
from store.orders import Change, EncodedOrder, EncodedUpdate, measured, sort_markers


class FakeStore:
    """The `orders` and `outbox_pending` collections as dicts; documents kept as BSON bytes."""

    def __init__(self) -> None:
        self.documents: dict[str, bytes] = {}
        self.markers: dict[str, PendingOutbox] = {}
        self.outages = 0  # the next N calls fail as if the server were away
        self.refuse: Callable[[OrderDocument], Exception | None] = lambda order: None
        self.before_save: Callable[[], None] = lambda: None
        self.saves = 0

    def _maybe_away(self) -> None:
        if self.outages > 0:
            self.outages -= 1
            raise AutoReconnect("connection refused")

    def stored(self, order_id: str) -> OrderDocument | None:
        raw = self.documents.get(order_id)
        if not raw:
            return None
        document = bson.decode(raw)
        order = OrderDocument.model_validate(document)
        order.remember_stored(measured(document, len(raw)))
        return order

    async def load_many(self, order_ids: Iterable[str]) -> dict[str, OrderDocument]:
        self._maybe_away()
        return {i: order for i in order_ids if (order := self.stored(i)) is not None}

    async def unsent_among(self, orders: Sequence[OrderDocument]) -> set[str]:
        self._maybe_away()
        keys = {PendingOutbox.key(o.id, o.version): o.id for o in orders if o.outbox}
        return {order_id for key, order_id in keys.items() if key in self.markers}

    async def save_many(self, changes: Sequence[Change], token: str) -> set[str]:
        self._maybe_away()
        self.before_save()
        for change in changes:
            if change.order.outbox:
                marker = PendingOutbox.of(change.order, datetime(2000, 1, 1).astimezone())
                self.markers.setdefault(marker.id, marker)
        lost = set()
        for change in changes:
            problem = self.refuse(change.order)
            if problem is not None:
                raise problem
            current = self.documents.get(change.order.id)
            if (bson.decode(current)["version"] if current else 0) != change.loaded_version:
                lost.add(change.order.id)
                continue
            if isinstance(change.write, EncodedOrder):
                self.documents[change.order.id] = bytes(change.write.raw)
            else:
                assert current is not None, "only a stored document is appended to"
                self.documents[change.order.id] = updated(current, change.write)
            self.saves += 1
        return lost

    async def mark_sent(self, keys: Sequence[str]) -> None:
        self._maybe_away()
        for key in keys:
            self.markers.pop(key, None)

    async def postpone(self, keys: Sequence[str]) -> None:
        self._maybe_away()
        for key in keys:
            if key in self.markers:
                self.markers[key] = self.markers[key].model_copy(update={"at": datetime.now(UTC)})

    async def unsent(self, saved_before: datetime, limit: int = 500) -> list[OrderDocument]:
        self._maybe_away()
        due = sorted((m for m in self.markers.values() if m.at < saved_before), key=lambda m: m.at)
        markers = due[:limit]
        orders = {m.order_id: o for m in markers if (o := self.stored(m.order_id)) is not None}
        unsent, stale = sort_markers(markers, orders, saved_before)
        for key in stale:
            del self.markers[key]
        return unsent


def updated(raw: bytes, update: EncodedUpdate) -> bytes:
    """`raw` with a save's update applied, as MongoDB would: `$set` fields and list items by
    position, `$push` `$each` items."""
    document = bson.decode(raw)
    encoded = bson.decode(update.raw)
    for path, value in encoded.get("$set", {}).items():
        name, _, position = path.partition(".")
        if not position:
            document[name] = value
            continue
        # "list.N": the item at N, which may be one past the end (MongoDB appends it).
        items, index = document.setdefault(name, []), int(position)
        items.extend([None] * (index + 1 - len(items)))
        items[index] = value
    for name, push in encoded.get("$push", {}).items():
        document.setdefault(name, []).extend(push["$each"])
    return bson.encode(document)


class FakeOutputs:
    """A broker that keeps what it acknowledges; `refuse` picks records it rejects on their own."""

    def __init__(self) -> None:
        self.sent: list[Message] = []
        self.outages = 0
        self.refuse: Callable[[Message], Exception | None] = lambda message: None

    async def send(self, messages: Sequence[Message]) -> list[BaseException | None]:
        if messages and self.outages > 0:
            self.outages -= 1
            raise KafkaConnectionError("broker away")
        results: list[BaseException | None] = []
        for message in messages:
            problem = self.refuse(message)
            if problem is None:
                self.sent.append(message)
            results.append(problem)
        return results

    def on(self, topic_suffix: str) -> list[Message]:
        return [message for message in self.sent if message.topic.endswith(topic_suffix)]
