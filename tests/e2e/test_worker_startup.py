"""A worker started before Kafka or the store waits for them; a supervisor restarts with backoff."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from config import project_root
from consumers.worker import RestartBackoff
from store.orders import connect
from tests.conftest import Infra, Names
from tests.proxies import free_port, tcp_proxy

FULFILLMENT = str(Path(sys.executable).parent / "fulfillment")


def worker_env(infra: Infra, names: Names, **overrides: str) -> dict[str, str]:
    return {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": infra.kafka_bootstrap,
        "MONGODB_URI": infra.mongodb_uri,
        "MONGODB_DATABASE": names.database,
        "FULFILLMENT_TOPIC_PREFIX": names.prefix,
        "FULFILLMENT_GROUP_ID": names.group_id,
        "FULFILLMENT_PARTITIONS": "1",
        "FULFILLMENT_SECRET_KEY": Fernet.generate_key().decode(),
        "FULFILLMENT_LOG_LEVEL": "INFO",
        "FULFILLMENT_METRICS_PORT": "off",
        **overrides,
    }


def start(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            argv, env=env, cwd=project_root(), stdout=out, stderr=subprocess.STDOUT
        )


def log_lines(log: Path) -> list[dict[str, Any]]:
    lines = []
    for line in log.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            lines.append(json.loads(line))
    return lines


def waiting_lines(log: Path, what: str) -> list[str]:
    return [
        entry["msg"]
        for entry in log_lines(log)
        if entry.get("logger") == "fulfillment.startup" and f"waiting for {what}" in entry["msg"]
    ]


def stop(process: subprocess.Popen[bytes], timeout: float = 30) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        raise


@pytest.mark.e2e
async def test_a_worker_started_while_kafka_is_down_waits_with_a_line_per_attempt_then_starts(
    infra: Infra, names: Names, tmp_path: Path
) -> None:
    port = free_port()
    log = tmp_path / "worker.log"
    env = worker_env(infra, names, KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{port}")
    worker = start([sys.executable, "-m", "consumers.worker"], env, log)
    try:
        # Three attempts take about 2 s once the worker has started: waited for, not slept.
        deadline = time.monotonic() + 30
        while len(waiting_lines(log, "kafka")) < 3 and time.monotonic() < deadline:
            assert worker.poll() is None, log.read_text()[-3000:]
            await asyncio.sleep(0.5)
        assert worker.poll() is None, log.read_text()[-3000:]
        attempts = waiting_lines(log, "kafka")
        # 0.5, 1, 2 s apart: at least three attempts in the first seconds, each logged once.
        assert len(attempts) >= 3, log.read_text()[-3000:]
        assert "attempt 1, next in 0.5s" in attempts[0] and "next in 1.0s" in attempts[1]
        assert not waiting_lines(log, "store")

        # Kafka now answers on that address: the worker starts as it always did.
        async with tcp_proxy(port, infra.kafka_bootstrap):
            deadline = time.monotonic() + 60
            started = f"database {names.database}; kafka: "
            while not any(started in e["msg"] for e in log_lines(log)):
                assert worker.poll() is None, log.read_text()[-3000:]
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                await asyncio.sleep(0.5)
            assert any("answer after" in e["msg"] for e in log_lines(log))
            # The worker may still need the proxy while it stops: keep the loop serving it.
            assert await asyncio.to_thread(stop, worker) == 0
    finally:
        await asyncio.to_thread(stop, worker)
        client = connect(infra.mongodb_uri)
        await client.drop_database(names.database)
        await client.close()


@pytest.mark.e2e
def test_a_worker_started_while_the_store_is_down_waits_and_stops_cleanly_on_sigterm(
    infra: Infra, names: Names, tmp_path: Path
) -> None:
    log = tmp_path / "worker.log"
    uri = f"mongodb://127.0.0.1:{free_port()}"
    worker = start(
        [sys.executable, "-m", "consumers.worker"],
        worker_env(infra, names, MONGODB_URI=uri),
        log,
    )
    try:
        # Each store probe may take its 3 s server-selection timeout, then the backoff's delay.
        deadline = time.monotonic() + 30
        while len(waiting_lines(log, "store")) < 3 and time.monotonic() < deadline:
            assert worker.poll() is None, log.read_text()[-3000:]
            time.sleep(0.5)
        assert worker.poll() is None, log.read_text()[-3000:]
        assert len(waiting_lines(log, "store")) >= 3, log.read_text()[-3000:]
        assert not waiting_lines(log, "kafka")
    finally:
        assert stop(worker, timeout=10) == 0


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("setting", "message"),
    [
        (
            {"FULFILLMENT_BATCH_SIZE": "0"},
            "FULFILLMENT_BATCH_SIZE must be between 1 and 10000, got 0",
        ),
        (
            {"FULFILLMENT_METRICS_PORT": "70000"},
            "FULFILLMENT_METRICS_PORT must be between 1 and 65535, got 70000",
        ),
    ],
)
@pytest.mark.parametrize(
    "argv",
    [
        [sys.executable, "-m", "consumers.worker"],
        [FULFILLMENT, "worker"],
        [FULFILLMENT, "worker", "--processes", "2"],
    ],
    ids=["module", "command", "supervisor"],
)
def test_a_worker_with_an_out_of_range_setting_exits_2_with_one_line(
    infra: Infra, names: Names, argv: list[str], setting: dict[str, str], message: str
) -> None:
    result = subprocess.run(
        argv,
        env=worker_env(infra, names, **setting),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: {message}"


@pytest.mark.e2e
def test_the_supervisor_restarts_a_dead_worker_after_a_growing_delay(
    infra: Infra, names: Names, tmp_path: Path
) -> None:
    # Kafka is away, so the children only wait: cheap, and nothing else is consumed.
    log = tmp_path / "supervisor.log"
    env = worker_env(infra, names, KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{free_port()}")
    supervisor = start([FULFILLMENT, "worker", "--processes", "2"], env, log)
    try:
        for _ in range(3):
            child = wait_for_child(supervisor)
            os.kill(child, signal.SIGKILL)
            wait_gone(child)
        wait_for_child(supervisor)
        restarts = [e["msg"] for e in log_lines(log) if "restarting in" in e.get("msg", "")]
        assert [line.rsplit(" ", 1)[-1] for line in restarts] == ["0.5s", "1.0s", "2.0s"]
        assert all(line.startswith("worker 0 exited with -9 after") for line in restarts)
    finally:
        assert stop(supervisor) == 0


def slot_of(pid: str) -> str | None:
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    found = [v for v in environ if v.startswith(b"FULFILLMENT_WORKER_SLOT=")]
    return found[0].split(b"=", 1)[1].decode() if found else None


def wait_for_child(parent: subprocess.Popen[bytes], slot: str = "0", timeout: float = 30) -> int:
    """The pid of the supervisor's worker in `slot`, once it runs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = subprocess.run(
            ["pgrep", "-P", str(parent.pid)], capture_output=True, text=True
        ).stdout.split()
        for pid in found:
            if slot_of(pid) == slot:
                return int(pid)
        assert parent.poll() is None
        time.sleep(0.1)
    raise AssertionError("the supervisor started no worker")


def wait_gone(pid: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)


def test_restart_delays_double_to_a_cap_and_start_over_after_a_healthy_run() -> None:
    backoff = RestartBackoff(first=0.5, cap=30, stable_after=60)
    quick = [backoff.delay(lived=1) for _ in range(8)]
    assert quick == [0.5, 1, 2, 4, 8, 16, 30, 30]
    assert backoff.delay(lived=61) == 0.5
    assert backoff.delay(lived=2) == 1


def test_each_worker_slot_has_its_own_backoff() -> None:
    first, second = RestartBackoff(), RestartBackoff()
    assert [first.delay(1), first.delay(1), first.delay(1)] == [0.5, 1, 2]
    assert second.delay(1) == 0.5


@pytest.mark.e2e
@pytest.mark.parametrize(
    "argv",
    [[sys.executable, "-m", "consumers.worker"], [FULFILLMENT, "worker"]],
    ids=["module", "command"],
)
def test_a_worker_whose_store_login_is_refused_exits_2_with_one_line_instead_of_waiting(
    infra: Infra, names: Names, argv: list[str]
) -> None:
    scheme, _, rest = infra.mongodb_uri.partition("://")
    wrong = f"{scheme}://nobody:wrong-password@{rest.rpartition('@')[2]}"
    result = subprocess.run(
        argv,
        env=worker_env(infra, names, MONGODB_URI=wrong),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: the store refused the credentials in MONGODB_URI: ")
    assert "wrong-password" not in result.stderr
