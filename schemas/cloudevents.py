"""The one owner of the CloudEvents JSON form: envelope, time format, content type.

The lifecycle returns typed `CloudEvent`s; the worker, the publisher, the CLI and the tests
turn them into (and back from) the structured-mode JSON the contract specifies here only.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import cache, cached_property
from typing import Any, Literal

import orjson
from pydantic import BaseModel, create_model

from schemas.events import INPUT_DATA, OUTPUT_DATA, Envelope, WireModel
from schemas.names import EventType

SPECVERSION = "1.0"
DATA_CONTENT_TYPE = "application/json"
# The Kafka header that names a record's content type, and its value for a structured-mode
# record.
CONTENT_TYPE_HEADER = "content-type"
CONTENT_TYPE = "application/cloudevents+json; charset=UTF-8"
_DATA = {**INPUT_DATA, **OUTPUT_DATA}


@dataclass(frozen=True)
class CloudEvent:
    """One event of the contract: its attributes and its typed `data`."""

    id: str
    type: EventType
    source: str
    subject: str
    time: datetime
    data: WireModel
    # CloudEvents' `sequence` extension on outputs: their order among one order's outputs.
    sequence: str | None = None

    @cached_property
    def json(self) -> str:
        """The structured-mode JSON: the lifecycle measures it and the outbox keeps it."""
        return _structured(self)


@cache
def envelope_model(event_type: EventType) -> type[BaseModel]:
    """The whole CloudEvent of one type, with its typed `data`: what the worker validates
    valid input against in one step, and what the published JSON Schemas describe."""
    name = "".join(part.capitalize() for part in event_type.value.replace(".", "_").split("_"))
    model: type[BaseModel] = create_model(
        f"{name}Event",
        __base__=Envelope,
        __doc__=f"A `{event_type.value}` CloudEvent.",
        type=(Literal[event_type.value], ...),  # type: ignore[arg-type]
        data=(_DATA[event_type], ...),
    )
    return model


def sequence(version: int, index: int) -> str:
    """An output's place among its order's outputs, as text that sorts in that order: the
    version of the order's document that saved it, then its place in that save."""
    return f"{version:012d}.{index:06d}"


# What the `sequence` attribute adds to an event's JSON (its width is fixed): the lifecycle
# measures outputs before the shell numbers them.
SEQUENCE_BYTES = len(f',"sequence":"{sequence(0, 0)}"')


def numbered(events: Iterable[CloudEvent], version: int) -> list[CloudEvent]:
    """The outputs of one save, at `version`, in order, each with its `sequence`."""
    return [_with_sequence(event, sequence(version, index)) for index, event in enumerate(events)]


def _with_sequence(event: CloudEvent, place: str) -> CloudEvent:
    """`event` with its `sequence`; JSON already written for it is reused, the attribute put
    where `_structured` puts it (before `data`, which no attribute's text can hold unescaped)."""
    result = replace(event, sequence=place)
    written = event.__dict__.get("json")
    if written is not None:
        head, _, data = written.partition(',"data":')
        # The cached_property's own slot: a frozen dataclass keeps its fields, not this.
        result.__dict__["json"] = f'{head},"sequence":"{place}","data":{data}'
    return result


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with a `Z`, as every event this project writes carries it."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        # Python would take it for the machine's local time: a guess, not a fact.
        raise ValueError(f"time {moment.isoformat()} has no time zone: give an aware datetime")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def envelope(
    event_type: EventType,
    subject: str,
    data: dict[str, Any],
    *,
    event_id: str,
    source: str,
    time: datetime,
) -> dict[str, Any]:
    """The structured-mode JSON object of an event whose `data` is already JSON-ready."""
    return {
        "specversion": SPECVERSION,
        "id": event_id,
        "source": source,
        "type": event_type.value,
        "subject": subject,
        "time": format_time(time),
        "datacontenttype": DATA_CONTENT_TYPE,
        "data": data,
    }


def cloud_event(
    event_type: EventType,
    subject: str,
    data: WireModel,
    source: str,
    event_id: str | None = None,
    time: datetime | None = None,
) -> dict[str, Any]:
    """A new input event in structured mode: a fresh id and the current time unless given."""
    return envelope(
        event_type,
        subject,
        # No serializer warnings: they quote the values (a credential, say) of what does not
        # fit its model, and the envelope's validation refuses that anyway.
        data.model_dump(mode="json", exclude_none=True, warnings=False),
        event_id=event_id or f"evt-{uuid.uuid4()}",
        source=source,
        time=time or datetime.now(UTC),
    )


def to_json(event: CloudEvent) -> str:
    """The event in structured mode, compact, non-ASCII kept as it is (computed once per event)."""
    return event.json


def _structured(event: CloudEvent) -> str:
    attributes = {
        "specversion": SPECVERSION,
        "id": event.id,
        "source": event.source,
        "type": event.type.value,
        "subject": event.subject,
        "time": event.time.astimezone(UTC),
        "datacontenttype": DATA_CONTENT_TYPE,
    }
    if event.sequence is not None:
        attributes["sequence"] = event.sequence
    # orjson writes the attributes (and the time as RFC 3339 with a Z) an order of magnitude
    # faster than json; pydantic writes `data` straight to JSON without a dict in between.
    head = orjson.dumps(attributes, option=orjson.OPT_UTC_Z).decode()
    return f'{head[:-1]},"data":{event.data.model_dump_json()}}}'


def from_json(text: str) -> CloudEvent:
    """An event this project wrote (an outbox entry) back as a typed `CloudEvent`."""
    document = json.loads(text)
    event_type = EventType(document["type"])
    return CloudEvent(
        id=document["id"],
        type=event_type,
        source=document["source"],
        subject=document["subject"],
        time=datetime.fromisoformat(document["time"]),
        data=_DATA[event_type].model_validate(document["data"]),
        sequence=document.get("sequence"),
    )
