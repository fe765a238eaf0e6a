"""SASL_SSL end to end: the local stack's secured broker, a real worker, the CLI's failures."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from cryptography.fernet import Fernet

from config import Settings, project_root
from consumers.topics import ensure_topics
from schemas.names import Topic
from stack import tls
from stack.processes import free_port_run
from tests.conftest import Infra, Names
from tests.factories import fulfillable_order

pytestmark = pytest.mark.e2e
FULFILLMENT = str(Path(sys.executable).parent / "fulfillment")
# A refused login or certificate is answered within a second; generous for two loaded shared
# cores, and still well below aiokafka's own 40 s.
QUICKLY = 25.0


@dataclass(frozen=True)
class SecureStack:
    """A one-node SASL_SSL Kafka of the local stack, in its own folder and ports."""

    stack_env: dict[str, str]
    client_env: dict[str, str]
    started_in: float

    def settings(self, names: Names, infra: Infra) -> Settings:
        security = {
            "security_protocol": self.client_env["KAFKA_SECURITY_PROTOCOL"],
            "sasl_mechanism": self.client_env["KAFKA_SASL_MECHANISM"],
            "sasl_username": self.client_env["KAFKA_SASL_USERNAME"],
            "sasl_password": self.client_env["KAFKA_SASL_PASSWORD"],
            "ssl_cafile": self.client_env["KAFKA_SSL_CAFILE"],
        }
        return Settings(
            kafka_bootstrap=self.client_env["KAFKA_BOOTSTRAP_SERVERS"],
            mongodb_uri=infra.mongodb_uri,
            database=names.database,
            topic_prefix=names.prefix,
            group_id=names.group_id,
            partitions=3,
            kafka_security=security,
        )


def read_env_file(path: Path) -> dict[str, str]:
    pairs = (line.removeprefix("export ").split("=", 1) for line in path.read_text().splitlines())
    return {name: value for name, value in pairs}


@pytest.fixture(scope="module")
def secure_stack(tmp_path_factory: pytest.TempPathFactory, infra: Infra) -> Iterator[SecureStack]:
    folder = tmp_path_factory.mktemp("secure") / "stack"
    # Its own ports: an inherited controller port would be the shared stack's.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("KAFKA_") and k != "FULFILLMENT_KAFKA_CONTROLLER_PORT"
    }
    env |= {
        "FULFILLMENT_STACK_DIR": str(folder),
        "FULFILLMENT_KAFKA_PORT": str(free_port_run(2, start=31092)),
        "MONGODB_URI": infra.mongodb_uri,  # external: only the broker is started
        "COLUMNS": "300",
    }
    started = time.monotonic()
    up = subprocess.run(
        [FULFILLMENT, "stack", "up", "--secure"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert up.returncode == 0, up.stdout + up.stderr
    client_env = read_env_file(folder / "kafka-secrets" / "client.env")
    try:
        yield SecureStack(env, client_env, time.monotonic() - started)
    finally:
        subprocess.run([FULFILLMENT, "stack", "down"], env=env, capture_output=True, timeout=120)


def worker_env(settings: Settings, client_env: dict[str, str]) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("KAFKA_")},
        **client_env,
        "MONGODB_URI": settings.mongodb_uri,
        "MONGODB_DATABASE": settings.database,
        "FULFILLMENT_TOPIC_PREFIX": settings.topic_prefix,
        "FULFILLMENT_GROUP_ID": settings.group_id,
        "FULFILLMENT_PARTITIONS": str(settings.partitions),
        "FULFILLMENT_SECRET_KEY": Fernet.generate_key().decode(),
        "FULFILLMENT_METRICS_PORT": "off",
    }


@pytest.fixture
async def secured_worker(
    secure_stack: SecureStack, names: Names, infra: Infra, tmp_path: Path
) -> AsyncIterator[tuple[Settings, subprocess.Popen[bytes]]]:
    settings = secure_stack.settings(names, infra)
    await ensure_topics(settings)
    log = (tmp_path / "worker.log").open("ab")
    worker = subprocess.Popen(
        [sys.executable, "-m", "consumers.worker"],
        env=worker_env(settings, secure_stack.client_env),
        cwd=project_root(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield settings, worker
    finally:
        worker.terminate()
        worker.wait(timeout=40)


async def test_the_happy_path_runs_over_sasl_ssl_with_scram_users_and_a_generated_ca(
    secured_worker: tuple[Settings, subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    settings, worker = secured_worker
    order_id = "ord-secure-1"
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, acks="all", **settings.kafka_options()
    )
    await producer.start()
    try:
        for topic, event in fulfillable_order(order_id):
            value = json.dumps(event).encode()
            await producer.send_and_wait(settings.topic(topic), value, key=order_id.encode())
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        settings.topic(Topic.FULFILLMENTS_COMPLETED),
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        **settings.kafka_options(),
    )
    await consumer.start()
    try:
        async with asyncio.timeout(90):
            completed = await consumer.getone()
            while completed.key != order_id.encode():
                assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-2000:]
                completed = await consumer.getone()
    finally:
        await consumer.stop()
    assert json.loads(completed.value)["data"]["order_status"] == "fulfilled"


def run_refused(
    argv: list[str], env: dict[str, str]
) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    return result, time.monotonic() - started


def other_ca(tmp_path: Path) -> Path:
    """A CA that did not sign the broker's certificate."""
    path = tmp_path / "other-ca.pem"
    path.write_bytes(tls._certificates()[0])
    return path


@pytest.mark.parametrize("fault", ["wrong password", "untrusted certificate"])
@pytest.mark.parametrize("program", ["topics create", "worker"])
def test_a_wrong_password_or_untrusted_certificate_is_one_line_and_exit_69_not_a_hang(
    secure_stack: SecureStack, infra: Infra, names: Names, tmp_path: Path, fault: str, program: str
) -> None:
    settings = secure_stack.settings(names, infra)
    env = worker_env(settings, secure_stack.client_env)
    if fault == "wrong password":
        env["KAFKA_SASL_PASSWORD"] = "not-the-password"
        expected = "refused the SCRAM-SHA-512 login of 'fulfillment'"
    else:
        env["KAFKA_SSL_CAFILE"] = str(other_ca(tmp_path))
        expected = "presented a certificate that is not trusted"
    argv = (
        [FULFILLMENT, "topics", "create"]
        if program == "topics create"
        else [sys.executable, "-m", "consumers.worker"]
    )
    result, seconds = run_refused(argv, env)
    assert result.returncode == 69, result.stdout[-2000:] + result.stderr
    # The worker logs JSON lines on stderr (aiokafka's own note of the refusal among them);
    # what an operator reads is the one plain line, which names the cause.
    lines = [line for line in result.stderr.splitlines() if not line.startswith('{"ts": ')]
    assert len(lines) == 1 and expected in lines[0], result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert seconds < QUICKLY


def test_the_secured_stack_keeps_its_secrets_private_and_reuses_them(
    secure_stack: SecureStack,
) -> None:
    folder = Path(secure_stack.stack_env["FULFILLMENT_STACK_DIR"]) / "kafka-secrets"
    for name in ("users.json", "broker-keystore.pem", "client.env"):
        assert (folder / name).stat().st_mode & 0o077 == 0, name
    again = subprocess.run(
        [FULFILLMENT, "stack", "up"], env=secure_stack.stack_env, capture_output=True, text=True
    )
    assert again.returncode == 0, again.stderr
    assert read_env_file(folder / "client.env") == secure_stack.client_env
