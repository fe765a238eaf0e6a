"""Typed CloudEvent models for every event, and the JSON Schemas published to integrators."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, create_model

from schemas.events import INPUT_DATA, OUTPUT_DATA, Identifier, Text
from schemas.names import EventType

CONTRACTS_DIR = Path(__file__).resolve().parent.parent / "contracts"
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
        type=(Literal[event_type.value], ...),  # type: ignore[arg-type,valid-type]
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


def rendered() -> dict[str, str]:
    """Every published contract file, by path relative to `contracts/`."""
    files = {f"json-schema/{t.value}.json": _dump(json_schema(t)) for t in EventType}
    from consumers.app import asyncapi_document

    files["asyncapi.json"] = _dump(asyncapi_document())
    return files


def _dump(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def write(root: Path = CONTRACTS_DIR) -> list[Path]:
    """Regenerate the committed contract files."""
    written = []
    for relative, text in rendered().items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    return written
