"""docs/contract.md says what the code does: its tables match schemas/ and the AsyncAPI document."""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import TypeAdapter

from config import project_root
from schemas.events import (
    Email,
    FulfillmentRequested,
    Identifier,
    Money,
    OptionalText,
    OrderPlaced,
    Quantity,
    Text,
)
from schemas.limits import MAX_DOCUMENT_BYTES, MAX_INPUT_BYTES, MAX_OUTPUT_BYTES, MAX_RECORD_BYTES
from schemas.names import (
    CONTRACT_VERSION,
    INPUT_TOPICS,
    OUTPUT_TOPICS,
    TOPIC_TYPE,
    DeadLetterHeader,
    DeadLetterReason,
)
from tools.contracts import CONTRACTS_DIR

DOCUMENT = (project_root() / "docs" / "contract.md").read_text()
ROW = re.compile(r"^\| `([^`]+)` \| `([^`]+)` \|", re.MULTILINE)


def section(title: str) -> str:
    """The text under a `### title` heading, up to the next heading of that level or above."""
    start = DOCUMENT.index(f"### {title}")
    following = re.search(r"^#{2,3} ", DOCUMENT[start + 4 :], re.MULTILINE)
    return DOCUMENT[start : start + 4 + following.start()] if following else DOCUMENT[start:]


def test_the_topic_tables_list_exactly_the_topics_and_types_of_the_code() -> None:
    for title, topics in (("Inputs", INPUT_TOPICS), ("Outputs", OUTPUT_TOPICS)):
        rows = ROW.findall(section(title))
        assert rows == [(topic.value, TOPIC_TYPE[topic].value) for topic in topics], title


def test_the_topic_tables_agree_with_the_asyncapi_document() -> None:
    asyncapi = json.loads((CONTRACTS_DIR / "asyncapi.json").read_text())
    addresses = {channel["address"] for channel in asyncapi["channels"].values()}
    documented = {topic for topic, _ in ROW.findall(section("Inputs") + section("Outputs"))}
    dead_letters = {f"{topic}.dlq" for topic, _ in ROW.findall(section("Inputs"))}
    assert addresses == documented | dead_letters


def test_every_dead_letter_reason_and_header_is_documented() -> None:
    reasons = re.findall(
        r"^\| `([a-z0-9_]+)` \| ", DOCUMENT[DOCUMENT.index("## Dead letters") :], re.M
    )
    assert {reason.value for reason in DeadLetterReason} <= set(reasons)
    for header in DeadLetterHeader:
        assert f"`{header.value}" in DOCUMENT, header


def test_the_size_limits_table_states_the_limits_the_code_enforces() -> None:
    assert MAX_INPUT_BYTES == 1024 * 1024 and "| an input record's value | 1 MiB |" in DOCUMENT
    assert MAX_OUTPUT_BYTES == 900 * 1024 and "| 900 KiB |" in DOCUMENT
    assert MAX_DOCUMENT_BYTES == 8 * 1024 * 1024 and "| 8 MiB |" in DOCUMENT
    assert MAX_RECORD_BYTES == 1_000_000 and "| 1,000,000 bytes |" in DOCUMENT


def test_the_document_and_the_asyncapi_document_state_the_contract_version_the_code_implements() -> (
    None
):
    asyncapi = json.loads((CONTRACTS_DIR / "asyncapi.json").read_text())
    assert DOCUMENT.startswith(f"# The event contract (version {CONTRACT_VERSION})")
    assert asyncapi["info"]["version"] == CONTRACT_VERSION
    # Inputs come in either content mode, as the document's "Content modes" says.
    assert "binary content mode" in asyncapi["servers"]["development"]["description"]
    messages = asyncapi["components"]["messages"].values()
    assert not any("correlationId" in message for message in messages)


def test_the_field_limits_table_states_the_bounds_the_models_enforce() -> None:
    def schema(annotation: Any) -> dict[str, Any]:
        return TypeAdapter(annotation).json_schema()

    assert schema(Identifier) == {"type": "string", "minLength": 1, "maxLength": 128}
    assert "| 1 to 128 characters |" in DOCUMENT
    assert schema(Text)["maxLength"] == schema(OptionalText)["maxLength"] == 1000
    assert "at most 1,000 characters (1 to 1,000 when required)" in DOCUMENT
    assert schema(Money)["pattern"] == r"^[0-9]{1,15}(\.[0-9]{1,6})?$"
    assert "up to 15 digits (0-9), and up to 6 after the point" in DOCUMENT
    assert schema(Quantity) == {
        "type": "integer",
        "minimum": 1,
        "maximum": 1_000_000,
        "description": "A whole number written without a fraction: 2, not 2.0.",
    }
    assert "| a JSON integer from 1 to 1,000,000, written without a fraction (2, not 2.0) |" in (
        DOCUMENT
    )
    assert schema(Email)["maxLength"] == 320 and "at most 320 characters" in DOCUMENT
    most = {
        field.metadata[-1].max_length
        for field in (
            OrderPlaced.model_fields["lines"],
            FulfillmentRequested.model_fields["lines"],
            FulfillmentRequested.model_fields["distributions"],
        )
    }
    assert most == {1000} and "| at most 1,000 items |" in DOCUMENT
