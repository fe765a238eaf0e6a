"""CI-sized chaos: a worker killed with SIGKILL and the broker restarted mid-stream lose nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaos.oracle import MUST_BE_ZERO
from chaos.run import Plan, chaos
from config import Settings
from tests.conftest import Infra

pytestmark = pytest.mark.e2e


async def test_kill_and_broker_restart_lose_nothing_and_apply_nothing_twice(
    infra: Infra, tmp_path: Path
) -> None:
    # Restarting the broker needs the local stack; elsewhere the run bounces workers only.
    local = infra.origin == "local stack"
    plan = Plan(orders=1500, workers=2, kills=1, broker_restarts=1, store_restarts=0, rate=150)
    base = Settings(kafka_bootstrap=infra.kafka_bootstrap, mongodb_uri=infra.mongodb_uri)
    report = await chaos(base, plan, tmp_path / "logs", print, local_stack=local)
    verdict = report.verdict
    assert verdict["orders_expected"] == 1500
    for count in MUST_BE_ZERO:
        assert verdict[count] == 0, (count, verdict["examples"])
    assert report.unexpected_worker_exits == 0
    assert [fault.kind for fault in report.faults].count("worker SIGKILL") == 1
    assert not local or [fault.kind for fault in report.faults].count("broker restart") == 1
