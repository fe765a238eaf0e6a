"""CI-sized chaos: a worker killed with SIGKILL and the broker restarted mid-stream lose nothing."""

from __future__ import annotations

import json
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
    failed = [count for count in MUST_BE_ZERO if verdict[count] != 0]
    if failed:
        print(*verdict["examples"], sep="\n")
        print(*worker_trouble(tmp_path / "logs"), sep="\n")
    assert not failed, {count: verdict[count] for count in failed}
    assert report.unexpected_worker_exits == 0
    assert [fault.kind for fault in report.faults].count("worker SIGKILL") == 1
    assert not local or [fault.kind for fault in report.faults].count("broker restart") == 1


def worker_trouble(logs: Path, limit: int = 80) -> list[str]:
    """The workers' own warnings and errors (not the Kafka client's, nor dead letters): what a
    failed run's report needs beside the verdict, since CI keeps no log files."""
    lines = []
    for path in sorted(logs.glob("*.log")):
        for line in path.read_text(errors="replace").splitlines():
            entry = json.loads(line) if line.startswith("{") else {"msg": line}
            if (
                entry.get("level") in ("warning", "error", "critical")
                and not str(entry.get("logger", "")).startswith("aiokafka")
                and not str(entry.get("msg", "")).startswith("dead letter")
            ):
                lines.append(f"{path.stem}: {line[:400]}")
    return lines[-limit:]
