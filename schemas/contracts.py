"""Typed CloudEvent models for every event, and the JSON Schemas published to integrators."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from schemas.cloudevents import envelope_model
from schemas.names import EventType


def event_model(event_type: EventType) -> type[BaseModel]:
    """The whole CloudEvent of one type, with its typed `data` (one model, shared with the worker)."""
    return envelope_model(event_type)


def json_schema(event_type: EventType) -> dict[str, Any]:
    schema = event_model(event_type).model_json_schema(mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{event_type.value}.json",
        **schema,
    }
