"""A chaos run whose workers do not catch up fails as a run, never as an unreachable service."""

from __future__ import annotations

import asyncio

import pytest

from chaos.run import LagMonitor, NotDrained, drained
from config import Settings


def test_a_lag_that_does_not_drain_in_time_is_not_drained_naming_the_lag() -> None:
    monitor = LagMonitor(Settings())
    monitor.lag = 42
    with pytest.raises(NotDrained, match="lag was still 42 records 0s after the last input"):
        asyncio.run(drained(monitor, 0.2))


def test_a_drained_lag_returns_at_once() -> None:
    monitor = LagMonitor(Settings())
    monitor.lag = 0
    asyncio.run(drained(monitor, 0.2))
