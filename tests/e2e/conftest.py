"""A fresh harness (topics, database, group, worker process) for each end-to-end test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import Infra, Names
from tests.e2e.harness import Harness


@pytest.fixture
async def harness(infra: Infra, names: Names, tmp_path: Path) -> AsyncIterator[Harness]:
    pipeline = Harness(infra, names, tmp_path)
    await pipeline.start()
    try:
        yield pipeline
    finally:
        await pipeline.stop()
