"""`fulfillment stack up` explains in one line what is missing or in the way."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

FULFILLMENT = str(Path(sys.executable).parent / "fulfillment")


def stack_up(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return starting(tmp_path, ("stack", "up"), env)


def starting(
    tmp_path: Path, command: tuple[str, ...], env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """`command`, which starts the local stack first, with its own stack folder."""
    clean = {
        k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP_SERVERS", "MONGODB_URI")
    }
    return subprocess.run(
        [FULFILLMENT, *command],
        env=clean | {"FULFILLMENT_STACK_DIR": str(tmp_path / "stack"), "COLUMNS": "300"} | env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    "command",
    [("stack", "up"), ("bench", "--orders", "10"), ("chaos", "--orders", "10"), ("demo",)],
)
def test_missing_java_is_a_one_line_error(tmp_path: Path, command: tuple[str, ...]) -> None:
    without_java = {"PATH": str(Path(sys.executable).parent), "FULFILLMENT_KAFKA_PORT": "19392"}
    result = starting(tmp_path, command, without_java)
    assert result.returncode == 1
    assert result.stderr.startswith("error: Java is not installed")
    assert "StackError" not in result.stderr and "FULFILLMENT_DEBUG" not in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_taken_port_is_a_one_line_error_saying_how_to_go_on(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        result = stack_up(tmp_path, FULFILLMENT_KAFKA_PORT=str(port))
    assert result.returncode == 1
    assert f"port 127.0.0.1:{port} for Kafka is taken" in result.stderr
    assert "FULFILLMENT_KAFKA_PORT" in result.stderr and "KAFKA_BOOTSTRAP_SERVERS" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_external_servers_are_used_and_nothing_is_started(tmp_path: Path) -> None:
    other = {
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092",
        "MONGODB_URI": "mongodb://127.0.0.1:27017",
    }
    result = stack_up(tmp_path, **other)
    assert result.returncode == 0, result.stderr
    assert "nothing started" in result.stdout
    assert (
        not (tmp_path / "stack" / "kafka.pid").exists()
        and not (tmp_path / "stack" / "ferretdb.pid").exists()
    )
