"""A console backend in memory: orders built by the real lifecycle, events recorded, and the
worker simulated on demand (`apply_published`), so HTTP tests need no broker or store."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import bson

from console.backend import Letter, ReplayPreview, TopicLetters, Unavailable
from console.queries import EventState, Page, Raw, Search
from lifecycle import apply
from schemas.document import OrderDocument
from schemas.events import Inbound, WireModel
from schemas.names import INPUT_TOPICS, EventType, Topic


class FakeOrders:
    """Documents by id, stored as BSON like the real collection; reads only."""

    def __init__(self) -> None:
        self.documents: dict[str, bytes] = {}

    def put(self, order: OrderDocument) -> None:
        self.documents[order.id] = bson.encode(order.to_mongo())

    def get(self, order_id: str) -> OrderDocument:
        return OrderDocument.model_validate(bson.decode(self.documents[order_id]))

    async def search(self, search: Search) -> Page:
        found = [bson.decode(raw) for raw in self.documents.values()]
        found = [raw for raw in found if raw.get("placed")]
        if search.text:
            needle = search.text.lower()
            found = [
                raw
                for raw in found
                if needle in str(raw.get("order_number", "")).lower()
                or needle in str((raw.get("customer") or {}).get("name", "")).lower()
                or needle in str((raw.get("customer") or {}).get("email", "")).lower()
                or needle in str(raw["_id"]).lower()
            ]
        if search.status:
            found = [raw for raw in found if raw.get("status") == search.status]
        found.sort(key=lambda raw: str(raw.get("placed_at")), reverse=not search.oldest_first)
        start = (search.page - 1) * search.page_size
        return Page(found[start : start + search.page_size], len(found), search)

    async def load(self, order_id: str) -> Raw | None:
        raw = self.documents.get(order_id)
        return bson.decode(raw) if raw else None

    async def version(self, order_id: str) -> int | None:
        raw = await self.load(order_id)
        return int(raw["version"]) if raw else None

    async def event_state(self, order_id: str, event_id: str) -> EventState | None:
        raw = await self.load(order_id)
        if raw is None:
            return None
        return EventState(
            version=int(raw["version"]),
            applied=event_id in raw.get("applied_event_ids", []),
            entries=[e for e in raw.get("timeline", []) if e.get("event_id") == event_id],
        )


@dataclass
class Published:
    event_type: EventType
    order_id: str
    data: WireModel
    event_id: str


@dataclass
class FakeBackend:
    """Records what the console publishes; `apply_published` plays the worker."""

    orders: FakeOrders = field(default_factory=FakeOrders)
    published: list[Published] = field(default_factory=list)
    letters: dict[Topic, list[Letter]] = field(default_factory=dict)
    replayed: list[Topic] = field(default_factory=list)
    replayed_until: list[dict[int, int]] = field(default_factory=list)
    failure: Exception | None = None
    _applied: int = 0

    async def publish(
        self, event_type: EventType, order_id: str, data: WireModel, event_id: str
    ) -> None:
        if self.failure is not None:
            raise self.failure
        self.published.append(Published(event_type, order_id, data, event_id))

    def apply_published(self) -> None:
        """Apply what was published since the last call, as the worker would."""
        for item in self.published[self._applied :]:
            order = self.orders.get(item.order_id)
            event = Inbound(
                id=item.event_id,
                type=item.event_type,
                order_id=item.order_id,
                time=datetime.now(UTC),
                data=item.data,  # type: ignore[arg-type]
                source="urn:fulfillment-console",
            )
            if apply(order, event, datetime.now(UTC)).changed:
                order.version += 1
                self.orders.put(order)
        self._applied = len(self.published)

    async def dead_letter_counts(self) -> list[TopicLetters]:
        counts = []
        for topic in INPUT_TOPICS:
            letters = self.letters.get(topic, [])
            reasons: dict[str, int] = {}
            for letter in letters:
                reasons[letter.reason] = reasons.get(letter.reason, 0) + 1
            counts.append(TopicLetters(topic.value, len(letters), reasons))
        return counts

    async def dead_letters(self, topic: Topic) -> list[Letter]:
        return self.letters.get(topic, [])

    async def replay_preview(self, topic: Topic, again: bool) -> ReplayPreview:
        if self.failure is not None:
            raise Unavailable("cannot reach Kafka")
        chosen = [] if topic in self.replayed else self.letters.get(topic, [])
        return ReplayPreview(chosen, 0, 0, {0: len(self.letters.get(topic, []))})

    async def replay(self, topic: Topic, again: bool, until: Mapping[int, int]) -> str:
        if self.failure is not None:
            raise self.failure
        self.replayed_until.append(dict(until))
        count = 0 if topic in self.replayed else len(self.letters.get(topic, []))
        self.replayed.append(topic)
        return f"replayed {count} dead letters from {topic.value}.dlq"


def letter(key: str = "ord-x", reason: str = "invalid_data", offset: int = 0) -> Letter:
    return Letter(
        partition=0,
        offset=offset,
        key=key,
        reason=reason,
        error="data.lines: Field required",
        original=f"orders.placed[0]@{offset}",
        replays=0,
        value_size=120,
        value_omitted=False,
    )


def order_with(events: list[Inbound], order_id: str) -> OrderDocument:
    """An order as the worker would store it after `events`."""
    order = OrderDocument.model_validate({"_id": order_id})
    for event in events:
        if apply(order, event, datetime.now(UTC)).changed:
            order.version += 1
    return order
