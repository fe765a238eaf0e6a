"""Secrets stay out of the places nobody asked them to be: the key file, error lines, logs."""

from __future__ import annotations

import asyncio
import logging
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

import stack
from cli.main import _message
from consumers.relay import relay_forever

SECRET = "pw-never-shown"


def test_the_local_stacks_key_file_is_created_readable_by_its_owner_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FULFILLMENT_STACK_DIR", str(tmp_path / "stack"))
    previous = os.umask(0o022)
    try:
        key = stack.ensure_secret_key()
    finally:
        os.umask(previous)
    path = next((tmp_path / "stack").iterdir())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stack.ensure_secret_key() == key  # made once, then read


class Distribution(BaseModel):
    line_id: str
    quantity: int


def test_a_cli_error_from_an_unreadable_document_names_its_fields_never_their_values() -> None:
    with pytest.raises(ValidationError) as raised:
        Distribution.model_validate({"line_id": ["x"], "quantity": SECRET})
    said = _message(raised.value)
    assert SECRET not in said
    assert "line_id" in said and "quantity" in said


class Failing:
    """A pipeline whose store fails every relay pass with a message quoting a value."""

    def __init__(self) -> None:
        self.store = self

    async def unsent(self, saved_before: Any) -> list[Any]:
        raise ValueError(f"input_value='{SECRET}'")


async def test_a_failed_relay_pass_logs_its_type_and_frames_never_its_message(
    caplog: pytest.LogCaptureFixture,
) -> None:
    task = asyncio.create_task(relay_forever(Failing(), interval=0.01))  # type: ignore[arg-type]
    with caplog.at_level(logging.ERROR, logger="fulfillment.relay"):
        async with asyncio.timeout(5):
            while not caplog.records:
                await asyncio.sleep(0.01)
    task.cancel()
    logged = caplog.records[0].getMessage() + str(caplog.records[0].exc_info)
    assert "ValueError" in logged and "relay_once" in logged
    assert SECRET not in logged
