"""The order document: one per order in MongoDB, `_id` = order id."""

from __future__ import annotations

from collections.abc import Callable, Collection, Hashable, Iterable, Mapping
from datetime import datetime
from typing import Any, Generic, TypeVar, get_args

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, TypeAdapter

from schemas.cloudevents import CloudEvent, to_json
from schemas.events import (
    Address,
    Customer,
    Distribution,
    FulfilledLine,
    FulfillmentCompleted,
    RequestedLine,
    Shipment,
)
from schemas.names import (
    TYPE_TOPIC,
    CancelReason,
    Delivery,
    DeliveryStatus,
    FulfillmentStatus,
    HoldReason,
    OrderStatus,
    PaymentStatus,
    ShipmentStatus,
)


class DocumentModel(BaseModel):
    """Stored state: mutable in the lifecycle, validated on load."""

    model_config = ConfigDict(extra="ignore", validate_assignment=False, populate_by_name=True)

    def __eq__(self, other: object) -> bool:
        # Equal when the fields are: private attributes are bookkeeping (lookups, what the
        # store holds), which pydantic would compare too.
        return type(other) is type(self) and self.__dict__ == other.__dict__

    __hash__ = None  # type: ignore[assignment]  # mutable, like pydantic's own non-frozen models


class ChangedItem(DocumentModel):
    """An item of a list whose items the lifecycle changes (`POSITIONAL_FIELDS`). Once its order
    has placed it, its first assignment after a save enters it in the order's list of changed
    items, and the next save writes it alone, at its path. Its own lists are replaced, never
    changed in place, so that every change is an assignment."""

    # Slots rather than pydantic private attributes, which cost twice the model to set up.
    # Unset until its order places it (and on a copy): such an item enters no list of changes.
    __slots__ = ("_changes", "_path")

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        try:
            changes = object.__getattribute__(self, "_changes")
        except AttributeError:
            return
        if changes is not None:
            changes.append(self)
            # Entered once: placing it again after the save makes it listen again.
            object.__setattr__(self, "_changes", None)

    @property
    def path(self) -> str:
        path: str = object.__getattribute__(self, "_path")
        return path

    def place(self, path: str, changes: list[ChangedItem]) -> None:
        """Where the item is, as its order stored it; unchanged since."""
        object.__setattr__(self, "_path", path)
        object.__setattr__(self, "_changes", changes)


class AppendedItem(DocumentModel):
    """Never changed once made: an item of a list that only grows (`APPENDED_FIELDS`), whose old
    items a save never writes again, or of a list inside a `ChangedItem`, replaced whole."""

    model_config = ConfigDict(frozen=True)


class Line(ChangedItem):
    line_id: str
    sku: str
    title: str
    quantity: int
    unit_price: str
    delivery: Delivery
    fulfilled_quantity: int = 0

    @property
    def unfulfilled(self) -> int:
        return self.quantity - self.fulfilled_quantity


class Capture(AppendedItem):
    payment_id: str
    amount: str
    currency: str
    method: str | None = None
    event_id: str


class ShipmentEvent(AppendedItem):
    """One status report of a shipment, as its fulfillment keeps it (contract 1.1)."""

    status: ShipmentStatus
    happened_at: datetime
    location: str | None = None
    note: str | None = None
    event_id: str

    @property
    def precedence(self) -> tuple[datetime, int]:
        """Which report is current: the latest `happened_at`, on a tie the later status."""
        return self.happened_at, self.status.rank

    @property
    def place(self) -> tuple[datetime, int, str]:
        """Where it goes in `shipment_events`: by precedence, then by event id, so that the
        list is the same whatever order the reports came in."""
        return self.happened_at, self.status.rank, self.event_id


class TrackingChange(AppendedItem):
    """A tracking update kept until its fulfillment completes: the fields it gives."""

    event_id: str
    carrier: str | None = None
    tracking_number: str | None = None
    tracking_url: str | None = None


class ShipmentNews(ChangedItem):
    """Tracking updates and status reports for a fulfillment that has not completed yet."""

    fulfillment_id: str
    tracking_updates: list[TrackingChange] = Field(default_factory=list)
    reports: list[ShipmentEvent] = Field(default_factory=list)


class Fulfillment(ChangedItem):
    """One fulfillment request and what became of it."""

    fulfillment_id: str
    status: FulfillmentStatus
    event_id: str
    requested_at: datetime
    # As requested (None = every quantity still unfulfilled), kept while pending.
    requested_lines: list[RequestedLine] | None = None
    # As carried out, or as they were when cancelled.
    lines: list[FulfilledLine] = Field(default_factory=list)
    shipment: Shipment | None = None
    distributions: list[Distribution] | None = None
    shipping_address: Address | None = None
    requested_by: str | None = None
    completed_at: datetime | None = None
    cancelled_at: datetime | None = None
    reason: CancelReason | None = None
    detail: str | None = None
    previously_completed: bool = False
    # Contract 1.1: the current status and every report, ordered as `ShipmentEvent.place`.
    shipment_status: ShipmentStatus | None = None
    shipment_events: list[ShipmentEvent] = Field(default_factory=list)
    # The hold reasons already published for this request: each goes out once.
    holds: list[HoldReason] = Field(default_factory=list)


class EarlyCancel(AppendedItem):
    """A cancel request that arrived before its fulfillment request."""

    fulfillment_id: str
    event_id: str
    reason: str | None = None


class ReusedEventId(AppendedItem):
    """An applied event id that arrived again from another source; noted once per source."""

    event_id: str
    source: str


class TimelineEntry(AppendedItem):
    at: datetime
    type: str
    event_id: str
    summary: str
    event_time: datetime | None = None
    fulfillment_id: str | None = None


class OutboxMessage(DocumentModel):
    """An output event saved with the state change that caused it, until the broker acks it."""

    id: str
    topic: str
    key: str
    # The CloudEvent as JSON text: cheap for the store to keep, and sent as it is.
    value: str
    # Whether `value` holds sealed credentials the worker opens before sending it, so that
    # other entries go out without being parsed; None (entries saved before it) means unknown.
    sealed: bool | None = None

    @classmethod
    def of(cls, event: CloudEvent) -> OutboxMessage:
        """An output event of the lifecycle, in the form the outbox keeps and the broker gets."""
        topic = TYPE_TOPIC[event.type].value
        data = event.data
        sealed = isinstance(data, FulfillmentCompleted) and any(
            d.sealed_credentials for d in data.distributions or ()
        )
        return cls(id=event.id, topic=topic, key=event.subject, value=to_json(event), sealed=sealed)


class PendingOutbox(DocumentModel):
    """A marker in the `outbox_pending` collection: this saved version's outbox may be unsent."""

    id: str = Field(alias="_id")
    order_id: str
    version: int
    at: datetime

    @staticmethod
    def key(order_id: str, version: int) -> str:
        return f"{order_id}@{version}"

    @classmethod
    def of(cls, order: OrderDocument, now: datetime) -> PendingOutbox:
        return cls(
            _id=cls.key(order.id, order.version), order_id=order.id, version=order.version, at=now
        )

    def to_mongo(self) -> dict[str, Any]:
        return self.model_dump(mode="python", by_alias=True)


T = TypeVar("T")


class _Positions(Generic[T]):
    """Where each key first occurs in one of the document's lists, so a lookup costs O(1).

    Built on first use and kept up to date by `append`. A list that was replaced, or grown
    another way (loading, a direct append), is indexed again; items are never edited in place.
    """

    def __init__(self, key: Callable[[T], Hashable]) -> None:
        self._key = key
        self._items: list[T] | None = None
        self._length = 0
        self._positions: dict[Hashable, int] = {}

    def find(self, items: list[T], key: Hashable) -> T | None:
        position = self.position(items, key)
        return None if position is None else items[position]

    def position(self, items: list[T], key: Hashable) -> int | None:
        return self._current(items).get(key)

    def append(self, items: list[T], item: T) -> None:
        self._current(items).setdefault(self._key(item), len(items))
        items.append(item)
        self._length += 1

    def _current(self, items: list[T]) -> dict[Hashable, int]:
        if items is not self._items or len(items) != self._length:
            self._positions = {}
            for position, item in enumerate(items):
                self._positions.setdefault(self._key(item), position)
            self._items, self._length = items, len(items)
        return self._positions


class _Matching:
    """Ids of the fulfillments that pass a test, in the order they started to, kept up to date
    by the document's helpers whenever something the test reads changes."""

    def __init__(self) -> None:
        self._items: list[Fulfillment] | None = None
        self._length = 0
        self._ids: dict[str, None] = {}

    def of(
        self, fulfillments: list[Fulfillment], test: Callable[[Fulfillment], bool]
    ) -> dict[str, None]:
        if fulfillments is not self._items or len(fulfillments) != self._length:
            self._ids = {f.fulfillment_id: None for f in fulfillments if test(f)}
            self._items, self._length = fulfillments, len(fulfillments)
        return self._ids

    def appended(
        self,
        fulfillments: list[Fulfillment],
        fulfillment: Fulfillment,
        test: Callable[[Fulfillment], bool],
    ) -> None:
        """Take in `fulfillment`, just appended to `fulfillments`."""
        if fulfillments is not self._items or len(fulfillments) != self._length + 1:
            self.of(fulfillments, test)
            return
        self._length += 1
        if test(fulfillment):
            self._ids[fulfillment.fulfillment_id] = None

    def changed(
        self,
        fulfillments: list[Fulfillment],
        fulfillment: Fulfillment,
        test: Callable[[Fulfillment], bool],
    ) -> None:
        """Test `fulfillment` again, after a change to it."""
        ids = self.of(fulfillments, test)
        if test(fulfillment):
            ids.setdefault(fulfillment.fulfillment_id, None)
        else:
            ids.pop(fulfillment.fulfillment_id, None)


def _is_completed(fulfillment: Fulfillment) -> bool:
    return fulfillment.status is FulfillmentStatus.COMPLETED


def _identity(event_id: str) -> str:
    return event_id


def _payment_id(capture: Capture) -> str:
    return capture.payment_id


def _fulfillment_id(item: Fulfillment | EarlyCancel) -> str:
    return item.fulfillment_id


def _news_of(news: ShipmentNews) -> str:
    return news.fulfillment_id


def _line_id(line: Line) -> str:
    return line.line_id


def _reuse(reused: ReusedEventId) -> tuple[str, str]:
    return reused.event_id, reused.source


class _Index:
    """Lookups by id over the document's growing lists: an event's cost must not grow with them.

    Each lookup indexes its list on first use: most documents are created to be filled, not
    searched.
    """

    __slots__ = (
        "applied",
        "captures",
        "completed",
        "delivered",
        "early_cancels",
        "fulfillments",
        "lines",
        "reused",
        "shipment_news",
    )

    def __init__(self) -> None:
        self.applied: _Positions[str] = _Positions(_identity)
        self.captures: _Positions[Capture] = _Positions(_payment_id)
        self.fulfillments: _Positions[Fulfillment] = _Positions(_fulfillment_id)
        self.early_cancels: _Positions[EarlyCancel] = _Positions(_fulfillment_id)
        self.lines: _Positions[Line] = _Positions(_line_id)
        self.reused: _Positions[ReusedEventId] = _Positions(_reuse)
        self.shipment_news: _Positions[ShipmentNews] = _Positions(_news_of)
        self.completed = _Matching()
        # Completed fulfillments that count as delivered (contract 1.1, `delivery_status`).
        self.delivered = _Matching()


# The lists that only ever grow at their end (their items are frozen). A save appends their new
# items (`$push`) instead of writing them again, so an order's history does not make it dearer.
APPENDED_FIELDS = (
    "applied_event_ids",
    "applied_event_sources",
    "reused_event_ids",
    "captures",
    "early_cancels",
    "timeline",
)
# The lists whose items the lifecycle changes (`ChangedItem`) and which grow only at their end:
# a save sets their changed and new items at their positions, unless the list was assigned.
POSITIONAL_FIELDS = ("lines", "fulfillments", "early_shipment_news")
# Never in a save's `$set`: `_id` does not change, the appended lists get `$push`.
_WRITTEN_APART = {"id", *APPENDED_FIELDS}
# Changed in place on every save (outputs carried forward are extended): always set.
CHANGED_IN_PLACE = frozenset({"outbox"})


class Stored:
    """What the store holds of an order, as the store measured it when it loaded or saved it:
    its version, how long its appended and positional lists are there, its size in bytes at
    most (each save adds what it writes; the store measures again when that is high), and the
    field values it holds, to tell the fields assigned since (their value is another object).

    `version` None: unknown (a document made here, or loaded another way); it is written whole.
    """

    __slots__ = ("lengths", "positions", "size", "values", "version")

    def __init__(
        self,
        version: int | None = None,
        lengths: tuple[int, ...] = (),
        positions: tuple[int, ...] = (),
        size: int = 0,
    ) -> None:
        self.version = version
        self.lengths = lengths
        self.positions = positions
        self.size = size
        self.values: dict[str, Any] = {}

    def __deepcopy__(self, memo: dict[int, Any]) -> Stored:
        # A copy of a document does not know the store's copy: it is written whole first.
        return Stored()

    def __copy__(self) -> Stored:
        return Stored()

    @property
    def held(self) -> bool:
        """Whether the store holds a copy (it measured one): a save replaces it, never inserts."""
        return self.size > 0


class OrderDocument(DocumentModel):
    id: str = Field(alias="_id")
    version: int = 0
    placed: bool = False
    status: OrderStatus | None = None
    payment_status: PaymentStatus = PaymentStatus.PENDING
    order_number: str | None = None
    customer: Customer | None = None
    currency: str | None = None
    total: str | None = None
    captured_amount: str = "0"
    lines: list[Line] = Field(default_factory=list)
    shipping_address: Address | None = None
    billing_address: Address | None = None
    placed_at: datetime | None = None
    captures: list[Capture] = Field(default_factory=list)
    fulfillments: list[Fulfillment] = Field(default_factory=list)
    early_cancels: list[EarlyCancel] = Field(default_factory=list)
    # Contract 1.1: derived from the fulfillments by the lifecycle; "none" on older documents.
    delivery_status: DeliveryStatus = DeliveryStatus.NONE
    # Tracking updates and status reports waiting for their fulfillment to complete.
    early_shipment_news: list[ShipmentNews] = Field(default_factory=list)
    applied_event_ids: list[str] = Field(default_factory=list)
    # The CloudEvents `source` of each applied id, position by position. Documents written
    # before sources were kept have fewer entries (or none): a missing or "" source is unknown.
    applied_event_sources: list[str] = Field(default_factory=list)
    reused_event_ids: list[ReusedEventId] = Field(default_factory=list)
    timeline: list[TimelineEntry] = Field(default_factory=list)
    # The outputs of the last save; whether they were sent is kept in `outbox_pending`.
    outbox: list[OutboxMessage] = Field(default_factory=list)
    updated_at: datetime | None = None
    _index: _Index = PrivateAttr(default_factory=_Index)
    # Output events the lifecycle recorded and the shell has not taken yet (never stored).
    _events: list[CloudEvent] = PrivateAttr(default_factory=list)
    _stored: Stored = PrivateAttr(default_factory=Stored)
    # Items of the positional lists changed since the store's copy (`ChangedItem`).
    _changes: list[ChangedItem] = PrivateAttr(default_factory=list)

    # Private attributes reached through pydantic's __getattr__ cost more than the lookups
    # they serve; these read the slot that holds them directly (see the CPU notes in README).
    @property
    def _private(self) -> dict[str, Any]:
        private = self.__pydantic_private__
        assert private is not None  # pydantic sets it on every model with private attributes
        return private

    @property
    def _lookups(self) -> _Index:
        index: _Index = self._private["_index"]
        return index

    def record(self, event: CloudEvent) -> None:
        self._private["_events"].append(event)

    def take_events(self) -> list[CloudEvent]:
        """The output events recorded since the last call, in the order they happened."""
        private = self._private
        taken: list[CloudEvent] = private["_events"]
        private["_events"] = []
        return taken

    def applied_source(self, event_id: str) -> str | None:
        """The source `event_id` was applied from ("" when unknown), None when never applied."""
        position = self._lookups.applied.position(self.applied_event_ids, event_id)
        if position is None:
            return None
        return (
            self.applied_event_sources[position]
            if position < len(self.applied_event_sources)
            else ""
        )

    def mark_applied(self, event_id: str, source: str) -> None:
        if len(self.applied_event_sources) < len(self.applied_event_ids):
            # Once per document written before sources were kept: its sources are unknown.
            missing = len(self.applied_event_ids) - len(self.applied_event_sources)
            self.applied_event_sources.extend([""] * missing)
        self._lookups.applied.append(self.applied_event_ids, event_id)
        self.applied_event_sources.append(source)

    def reuse_noted(self, event_id: str, source: str) -> bool:
        return self._lookups.reused.position(self.reused_event_ids, (event_id, source)) is not None

    def note_reuse(self, event_id: str, source: str) -> None:
        reused = ReusedEventId(event_id=event_id, source=source)
        self._lookups.reused.append(self.reused_event_ids, reused)

    def capture(self, payment_id: str) -> Capture | None:
        return self._lookups.captures.find(self.captures, payment_id)

    def add_capture(self, capture: Capture) -> None:
        self._lookups.captures.append(self.captures, capture)

    def fulfillment(self, fulfillment_id: str) -> Fulfillment | None:
        return self._lookups.fulfillments.find(self.fulfillments, fulfillment_id)

    def add_fulfillment(self, fulfillment: Fulfillment) -> None:
        self._lookups.fulfillments.append(self.fulfillments, fulfillment)
        self._lookups.completed.appended(self.fulfillments, fulfillment, _is_completed)
        self._lookups.delivered.appended(self.fulfillments, fulfillment, self.counts_as_delivered)

    def set_fulfillment_status(self, fulfillment: Fulfillment, status: FulfillmentStatus) -> None:
        """Every status change of a fulfillment goes through here, to keep the ids it derives.

        A fulfillment's `lines` must be set before it is completed: they say whether it ships.
        """
        self._lookups.completed.of(self.fulfillments, _is_completed)
        self._lookups.delivered.of(self.fulfillments, self.counts_as_delivered)
        fulfillment.status = status
        self._lookups.completed.changed(self.fulfillments, fulfillment, _is_completed)
        self._lookups.delivered.changed(self.fulfillments, fulfillment, self.counts_as_delivered)

    def set_shipment_status(self, fulfillment: Fulfillment, status: ShipmentStatus) -> None:
        """Every change of a shipment's current status goes through here, for `delivered_count`."""
        self._lookups.delivered.of(self.fulfillments, self.counts_as_delivered)
        fulfillment.shipment_status = status
        self._lookups.delivered.changed(self.fulfillments, fulfillment, self.counts_as_delivered)

    def completed_fulfillment_ids(self) -> Collection[str]:
        """Ids of the completed (not undone) fulfillments, in the order they completed."""
        return self._lookups.completed.of(self.fulfillments, _is_completed).keys()

    def delivered_count(self) -> int:
        """How many completed fulfillments count as delivered."""
        return len(self._lookups.delivered.of(self.fulfillments, self.counts_as_delivered))

    def ships(self, lines: Iterable[FulfilledLine]) -> bool:
        """Whether any of these lines is shipped (else a fulfillment of them is digital-only)."""
        for fulfilled in lines:
            line = self.line(fulfilled.line_id)
            if line is not None and line.delivery is Delivery.SHIPMENT:
                return True
        return False

    def counts_as_delivered(self, fulfillment: Fulfillment) -> bool:
        """Completed and delivered: a digital-only one when completed, a shipment once reported so."""
        if fulfillment.status is not FulfillmentStatus.COMPLETED:
            return False
        if fulfillment.shipment_status is ShipmentStatus.DELIVERED:
            return True
        return not self.ships(fulfillment.lines)

    def shipment_news(self, fulfillment_id: str) -> ShipmentNews | None:
        """What is remembered for a fulfillment that has not completed yet."""
        return self._lookups.shipment_news.find(self.early_shipment_news, fulfillment_id)

    def add_shipment_news(self, news: ShipmentNews) -> None:
        self._lookups.shipment_news.append(self.early_shipment_news, news)

    def early_cancel(self, fulfillment_id: str) -> EarlyCancel | None:
        return self._lookups.early_cancels.find(self.early_cancels, fulfillment_id)

    def add_early_cancel(self, early: EarlyCancel) -> None:
        self._lookups.early_cancels.append(self.early_cancels, early)

    def line(self, line_id: str) -> Line | None:
        return self._lookups.lines.find(self.lines, line_id)

    def to_mongo(self) -> dict[str, Any]:
        """The BSON-ready document; credentials in it are already sealed."""
        return self.model_dump(mode="python", by_alias=True)

    @property
    def stored(self) -> Stored:
        stored: Stored = self._private["_stored"]
        return stored

    def remember_stored(self, stored: Stored) -> None:
        """The store saved or loaded this document as `stored`: nothing assigned or changed
        since. Items new to the store (or in a list assigned whole) are placed."""
        private = self._private
        before: Stored = private["_stored"]
        changes: list[ChangedItem] = private["_changes"]
        for item in changes:
            item.place(item.path, changes)
        changes.clear()
        known = before.version is not None and len(before.positions) == len(POSITIONAL_FIELDS)
        for index, name in enumerate(POSITIONAL_FIELDS):
            items = getattr(self, name)
            kept = known and items is before.values.get(name)
            for position in range(max(0, before.positions[index]) if kept else 0, len(items)):
                items[position].place(f"{name}.{position}", changes)
        stored.values = dict(self.__dict__)
        private["_stored"] = stored

    def assigned(self) -> set[str]:
        """The fields assigned since `remember_stored`: their value is another object (an
        assignment of the same immutable value changes nothing)."""
        values = self.stored.values
        return {name for name, value in self.__dict__.items() if value is not values.get(name)}

    def stored_as(self, size: int) -> Stored:
        """What the store holds once this document is written, `size` bytes at most."""
        return Stored(self.version, self.appended_lengths(), self.positional_lengths(), size)

    def grew_from(self, stored: Stored) -> bool:
        """Whether the appended and positional lists only grew from the store's copy."""
        now = (*self.appended_lengths(), *self.positional_lengths())
        then = (*stored.lengths, *stored.positions)
        return len(now) == len(then) and all(a >= b for a, b in zip(now, then, strict=True))

    def appended_lengths(self) -> tuple[int, ...]:
        """How long each of `APPENDED_FIELDS` is now."""
        return (
            len(self.applied_event_ids),
            len(self.applied_event_sources),
            len(self.reused_event_ids),
            len(self.captures),
            len(self.early_cancels),
            len(self.timeline),
        )

    def positional_lengths(self) -> tuple[int, ...]:
        """How long each of `POSITIONAL_FIELDS` is now."""
        return len(self.lines), len(self.fulfillments), len(self.early_shipment_news)

    def changed_since(self, stored: Stored) -> dict[str, Any]:
        """What a save sets on the `stored` copy, BSON-ready: the fields assigned since and
        the outbox, and by path ("fulfillments.3") the changed and new items of each positional
        list; a positional list assigned since is set whole."""
        assigned = self.assigned()
        changed = self.model_dump(
            mode="python", by_alias=True, include=(assigned | CHANGED_IN_PLACE) - _WRITTEN_APART
        )
        stored_lengths = dict(zip(POSITIONAL_FIELDS, stored.positions, strict=True))
        for item in self._private["_changes"]:
            path = item.path
            name, _, position = path.partition(".")
            if name not in assigned and int(position) < stored_lengths[name]:
                changed[path] = item.model_dump(mode="python", by_alias=True)
        for name, stored_length in stored_lengths.items():
            if name in assigned:
                continue
            items = getattr(self, name)
            for position in range(stored_length, len(items)):
                item = items[position]
                changed[f"{name}.{position}"] = item.model_dump(mode="python", by_alias=True)
        return changed

    def appended_since(self, lengths: tuple[int, ...]) -> dict[str, list[Any]]:
        """The items of each appended list from position `lengths[i]` on, BSON-ready; lists
        with nothing new are left out."""
        tails: dict[str, list[Any]] = {}
        for name, start, now in zip(APPENDED_FIELDS, lengths, self.appended_lengths(), strict=True):
            if now > start:
                tails[name] = _APPENDED_LISTS[name].dump_python(getattr(self, name)[start:])
        return tails


# Dump the new items of each appended list in one call (faster than one model_dump per item).
_APPENDED_LISTS: dict[str, TypeAdapter[Any]] = {
    name: TypeAdapter(list[Any] if field.annotation is None else field.annotation)
    for name, field in OrderDocument.model_fields.items()
    if name in APPENDED_FIELDS
}


def _stored_names(model: type[BaseModel]) -> frozenset[str]:
    return frozenset(field.alias or name for name, field in model.model_fields.items())


# Every field a document of this version holds, at the top level and in each item of the
# positional lists, whose unchanged items a save never writes again.
_DOCUMENT_NAMES = _stored_names(OrderDocument)
_ITEM_NAMES = {
    name: _stored_names(get_args(OrderDocument.model_fields[name].annotation)[0])
    for name in POSITIONAL_FIELDS
}


def lacks_fields(raw: Mapping[str, Any]) -> bool:
    """Whether a stored document lacks a field of this version (it was written before the
    field existed) at its top level or in an item of a positional list: a save that only
    sets what changed would never add it, so such a document is written whole once."""
    if not raw.keys() >= _DOCUMENT_NAMES:
        return True
    for name, names in _ITEM_NAMES.items():
        items = raw.get(name)
        if isinstance(items, list) and any(_lacks(item, names) for item in items):
            return True
    return False


def _lacks(item: object, names: frozenset[str]) -> bool:
    return isinstance(item, Mapping) and not item.keys() >= names
