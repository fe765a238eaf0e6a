"""A local service that runs but never becomes ready says how to go on."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from stack import StackError
from stack.processes import wait_until


def test_a_service_running_but_never_ready_says_to_stop_the_stack_before_trying_again() -> None:
    service = SimpleNamespace(
        started_process_alive=lambda: True, log_file=Path("/tmp/kafka.log"), log_tail=lambda: ""
    )
    with pytest.raises(StackError) as refused:
        wait_until(lambda: False, service, "Kafka", timeout=0.1)  # type: ignore[arg-type]
    assert "did not become ready within 0s; see /tmp/kafka.log" in str(refused.value)
    assert "fulfillment stack down" in str(refused.value)
