"""The supervisor of several worker processes stops every child it started, whenever the
signal comes."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from typing import Any

import pytest

from consumers import worker


class Child:
    """A worker process that stops when signalled."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.signals: list[int] = []

    def send_signal(self, signum: int) -> None:
        self.signals.append(signum)

    def poll(self) -> int | None:
        return 0 if self.signals else None

    def wait(self, timeout: float | None = None) -> int:
        assert self.signals, "waited for a child that was never told to stop"
        return 0


@pytest.fixture
def handlers() -> Iterator[None]:
    """The test process's own signal handlers, back after the supervisor replaced them."""
    saved = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


@pytest.mark.usefixtures("handlers")
@pytest.mark.parametrize("during", [0, 1, 2])
def test_a_stop_signal_while_a_child_starts_reaches_every_child_started(
    monkeypatch: pytest.MonkeyPatch, during: int
) -> None:
    started: list[Child] = []

    def spawn_worker(env: Any = None, *args: Any, **kwargs: Any) -> Child:
        if len(started) == during:
            # Delivered while this child is being started, before the supervisor holds it.
            os.kill(os.getpid(), signal.SIGTERM)
        child = Child(1000 + len(started))
        started.append(child)
        return child

    monkeypatch.setattr(worker, "spawn_worker", spawn_worker)
    assert worker.run_many(3) == 0
    assert started and all(child.signals == [signal.SIGTERM] for child in started)
    assert len(started) == during + 1  # none started after the signal
