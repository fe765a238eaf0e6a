"""Typed CloudEvent models for every event, and the JSON Schemas published to integrators."""

from __future__ import annotations

from functools import cache
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, create_model

from schemas.events import INPUT_DATA, OUTPUT_DATA, Identifier, Text
from schemas.names import EventType

ALL_DATA = {**INPUT_DATA, **OUTPUT_DATA}


class CloudEventBase(BaseModel):
    """CloudEvents 1.0, structured mode; the subject (and Kafka key) is the order id."""

    model_config = ConfigDict(extra="allow")

    specversion: Literal["1.0"]
    id: Identifier
    source: Text
    subject: Identifier
    time: AwareDatetime
    datacontenttype: Literal["application/json"] | None = None


def _model_name(event_type: EventType) -> str:
    return (
        "".join(part.capitalize() for part in event_type.value.replace(".", "_").split("_"))
        + "Event"
    )


@cache
def event_model(event_type: EventType) -> type[BaseModel]:
    """The whole CloudEvent of one type, with its typed `data`."""
    model: type[BaseModel] = create_model(
        _model_name(event_type),
        __base__=CloudEventBase,
        __doc__=f"A `{event_type.value}` CloudEvent.",
        type=(Literal[event_type.value], ...),  # type: ignore[arg-type]
        data=(ALL_DATA[event_type], ...),
    )
    return model


def json_schema(event_type: EventType) -> dict[str, Any]:
    schema = event_model(event_type).model_json_schema(mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{event_type.value}.json",
        **schema,
    }
