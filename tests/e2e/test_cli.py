"""Every operator and integrator command, run as a person would, against the real stack."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaTimeoutError

from cli.messages import read_replayable, replay_letters, replayed_positions
from config import Settings
from consumers.topics import ensure_topics
from producers.publisher import FulfillmentPublisher
from schemas.names import DeadLetterHeader, EventType, OrderStatus, Topic
from tests.conftest import Infra, Names
from tests.e2e.harness import Harness
from tests.factories import envelope, placed_data

pytestmark = pytest.mark.e2e
FULFILLMENT = str(Path(sys.executable).parent / "fulfillment")


def cli(
    harness: Harness, *args: str, stdin: str | None = None, timeout: float = 120, columns: int = 200
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FULFILLMENT, *args],
        env=harness.worker_env() | {"COLUMNS": str(columns)},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


async def test_publish_validates_then_publishes_and_order_show_displays_the_timeline(
    harness: Harness, tmp_path: Path
) -> None:
    event = envelope(EventType.ORDER_PLACED, "ord-cli-1", placed_data())
    path = tmp_path / "placed.json"
    path.write_text(json.dumps(event))
    published = cli(harness, "publish", "order.placed", "--file", str(path))
    assert published.returncode == 0, published.stderr
    assert "published order.placed" in published.stdout

    payment = {"payment_id": "p1", "amount": "20.00", "currency": "USD"}
    from_stdin = cli(
        harness,
        "publish",
        "payment.captured",
        "--file",
        "-",
        "--order",
        "ord-cli-1",
        stdin=json.dumps(payment),
    )
    assert from_stdin.returncode == 0, from_stdin.stderr

    await harness.settled("ord-cli-1", lambda o: o.status is OrderStatus.UNFULFILLED)
    shown = cli(harness, "order", "show", "ord-cli-1")
    assert shown.returncode == 0, shown.stderr
    assert (
        "unfulfilled" in shown.stdout
        and "order.placed" in shown.stdout
        and "payment.captured" in shown.stdout
    )
    as_json = json.loads(cli(harness, "order", "show", "ord-cli-1", "--json").stdout)
    assert as_json["_id"] == "ord-cli-1" and as_json["timeline"]

    found = cli(harness, "orders", "search", "ada@example", "--status", "unfulfilled", "--json")
    assert [json.loads(line)["_id"] for line in found.stdout.splitlines()] == ["ord-cli-1"]


def test_publish_shows_every_validation_error_on_its_own_line_without_a_traceback(
    harness: Harness,
) -> None:
    data = placed_data() | {"currency": "usd", "lines": [{"line_id": "L1", "quantity": 0}]}
    result = cli(
        harness,
        "publish",
        "order.placed",
        "--file",
        "-",
        "--order",
        "ord-x",
        stdin=json.dumps(data),
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "data.currency" in result.stderr and "data.lines.0.quantity" in result.stderr


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["order", "show", "no-such-order"], 1, "not found"),
        # Values are text, never markup: rich would fail on "[/]" and drop "[bold red]".
        (["order", "show", "[/]"], 1, "order '[/]' not found"),
        (["order", "show", "[bold red]x"], 1, "order '[bold red]x' not found"),
        (["publish", "order.placed", "--file", "/no/[x].json"], 1, "/no/[x].json"),
        (["publish", "order.placed", "--file", "/no/such/file"], 1, "cannot read"),
        (["dlq", "list", "not-a-topic"], 2, "not an input topic"),
        (["publish", "fulfillment.completed", "--file", "-"], 1, "output event"),
        (
            ["publish", "order.placed", "--file", "-", "--order", "ord-other"],
            1,
            "not the CloudEvent's subject",
        ),
    ],
)
def test_errors_are_one_line_with_conventional_exit_codes(
    harness: Harness, args: list[str], code: int, message: str
) -> None:
    result = cli(harness, *args, stdin='{"specversion": "1.0", "subject": "ord-1"}')
    assert result.returncode == code
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_unreachable_store_is_a_one_line_error_with_exit_69(harness: Harness) -> None:
    result = subprocess.run(
        [FULFILLMENT, "order", "show", "x"],
        env=harness.worker_env()
        | {"MONGODB_URI": "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=500"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 69
    assert "cannot reach the store" in result.stderr and "Traceback" not in result.stderr


async def test_dead_letters_are_listed_and_replayed_once_after_a_fix(harness: Harness) -> None:
    # An older worker wrongly rejected a valid event; after the fix, the replay applies it once.
    good = envelope(EventType.ORDER_PLACED, "ord-replay", placed_data())
    original = harness.settings.topic(Topic.ORDERS_PLACED)
    headers = [
        (DeadLetterHeader.REASON.value, b"invalid_data"),
        (DeadLetterHeader.ERROR.value, b"bug"),
        (DeadLetterHeader.ORIGINAL_TOPIC.value, original.encode()),
        (DeadLetterHeader.ORIGINAL_PARTITION.value, b"0"),
        (DeadLetterHeader.ORIGINAL_OFFSET.value, b"0"),
    ]
    await harness.producer.send_and_wait(
        f"{original}.dlq", json.dumps(good).encode(), key=b"ord-replay", headers=headers
    )
    # And a letter that is still broken: replayed once, dead-lettered again, then left alone.
    await harness.send(Topic.ORDERS_PLACED, good | {"id": "evt-wrong-key"}, key="wrong-key")
    await harness.until(lambda: len(harness.seen("orders.placed.dlq")) >= 2)

    listed = cli(harness, "dlq", "list", "orders.placed")
    assert (
        listed.returncode == 0
        and "key_mismatch" in listed.stdout
        and "2 dead letters" in listed.stdout
    )
    preview = cli(harness, "dlq", "replay", "orders.placed", "--dry-run").stdout
    # What would go back, letter by letter, before anything does.
    assert "would replay 2" in preview and "ord-replay" in preview and "wrong-key" in preview
    first = cli(harness, "dlq", "replay", "orders.placed")
    assert first.returncode == 0 and "replayed 2" in first.stdout

    order = await harness.settled("ord-replay", lambda o: o.status is OrderStatus.AWAITING_PAYMENT)
    assert order.order_number == "#1001"
    await harness.until(lambda: len(harness.seen("orders.placed.dlq")) >= 3)
    again = harness.seen("orders.placed.dlq")[2]
    assert (
        again["headers"][DeadLetterHeader.REASON] == b"key_mismatch"
        and again["headers"][DeadLetterHeader.REPLAYS] == b"1"
    )

    last = cli(harness, "dlq", "list", "orders.placed", "--limit", "1").stdout
    assert "3 dead letters, the last 1 shown" in last
    assert last.index("wrong-key") < last.index("3 dead letters")  # the replayed copy
    second = cli(harness, "dlq", "replay", "orders.placed")
    assert "replayed 0" in second.stdout and "skipped 1" in second.stdout
    assert "replayed 0" in cli(harness, "dlq", "replay", "orders.placed").stdout


class DeadLetters:
    """A dead-letter topic of one test and its original topic, on the real broker, no worker."""

    def __init__(self, infra: Infra, names: Names) -> None:
        self.settings = Settings(
            kafka_bootstrap=infra.kafka_bootstrap,
            mongodb_uri=infra.mongodb_uri,
            database=names.database,
            topic_prefix=names.prefix,
            group_id=names.group_id,
            partitions=2,
        )
        self.original = self.settings.topic(Topic.ORDERS_PLACED)
        self.dlq = f"{self.original}.dlq"
        self.producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap, acks="all")

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": self.settings.kafka_bootstrap,
            "MONGODB_URI": self.settings.mongodb_uri,
            "FULFILLMENT_TOPIC_PREFIX": self.settings.topic_prefix,
            "FULFILLMENT_GROUP_ID": self.settings.group_id,
        }

    async def letter(
        self,
        key: str,
        *extra: tuple[str, bytes],
        value: bytes | None = b"{}",
        partition: int | None = None,
    ) -> None:
        headers = [
            (DeadLetterHeader.REASON.value, b"invalid_data"),
            (DeadLetterHeader.ERROR.value, b"a bug since fixed"),
            (DeadLetterHeader.ORIGINAL_TOPIC.value, self.original.encode()),
            (DeadLetterHeader.ORIGINAL_PARTITION.value, b"0"),
            (DeadLetterHeader.ORIGINAL_OFFSET.value, b"0"),
            ("trace-id", key.encode()),
            *extra,
        ]
        await self.producer.send_and_wait(
            self.dlq, value, key=key.encode(), headers=headers, partition=partition
        )

    def replay(self, *options: str) -> str:
        result = subprocess.run(
            [FULFILLMENT, "dlq", "replay", "orders.placed", *options],
            env=self.env() | {"COLUMNS": "200"},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    async def replayed(self) -> list[tuple[str, dict[str, bytes]]]:
        """(key, headers) of every record on the original topic, from the beginning."""
        consumer = AIOKafkaConsumer(bootstrap_servers=self.settings.kafka_bootstrap)
        await consumer.start()
        try:
            partitions = [TopicPartition(self.original, p) for p in range(2)]
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            ends = await consumer.end_offsets(partitions)
            records = []
            while [p for p in partitions if await consumer.position(p) < ends[p]]:
                for batch in (await consumer.getmany(timeout_ms=500)).values():
                    records += [(r.key.decode(), dict(r.headers)) for r in batch]
            return records
        finally:
            await consumer.stop()


@pytest.fixture
async def dead_letters(infra: Infra, names: Names) -> AsyncIterator[DeadLetters]:
    topics = DeadLetters(infra, names)
    await ensure_topics(topics.settings)
    await topics.producer.start()
    try:
        yield topics
    finally:
        await topics.producer.stop()


async def test_letters_arriving_after_a_replay_read_its_snapshot_are_replayed_by_the_next_run(
    dead_letters: DeadLetters,
) -> None:
    early = [f"ord-early-{i}" for i in range(6)]
    late = [f"ord-late-{i}" for i in range(4)]
    for key in early:
        await dead_letters.letter(key)

    async def arrive_meanwhile() -> None:
        for key in late:
            await dead_letters.letter(key)

    # The late letters land after the end offsets were read and before anything is fetched:
    # this run replays only the early ones, and must not commit past the late ones.
    first = await replay_letters(
        dead_letters.settings, dead_letters.dlq, after_snapshot=arrive_meanwhile
    )
    assert first.replayed == len(early)
    assert "replayed 4 dead letters" in dead_letters.replay()
    assert "replayed 0 dead letters" in dead_letters.replay()

    replayed = await dead_letters.replayed()
    assert sorted(key for key, _ in replayed) == sorted(early + late)  # each exactly once
    for key, headers in replayed:
        assert headers[DeadLetterHeader.REPLAYS] == b"1" and headers["trace-id"] == key.encode()
        assert not {DeadLetterHeader.REASON, DeadLetterHeader.ORIGINAL_TOPIC} & set(headers)


async def test_a_replay_given_a_previews_end_offsets_replays_only_what_that_preview_read(
    dead_letters: DeadLetters,
) -> None:
    # The console's confirm button: letters that arrived after the preview were not reviewed.
    reviewed = [f"ord-reviewed-{i}" for i in range(4)]
    for key in reviewed:
        await dead_letters.letter(key)
    preview = await read_replayable(dead_letters.settings, dead_letters.dlq, again=False)
    await preview.close()
    assert len(preview.chosen) == len(reviewed)
    for key in ("ord-unreviewed-0", "ord-unreviewed-1"):
        await dead_letters.letter(key)
    confirmed = await replay_letters(dead_letters.settings, dead_letters.dlq, until=preview.ends)
    assert confirmed.replayed == len(reviewed)
    assert sorted(key for key, _ in await dead_letters.replayed()) == sorted(reviewed)
    assert "replayed 2 dead letters" in dead_letters.replay()


async def test_a_letter_that_failed_again_stays_within_reach_of_again_once_others_are_replayed(
    dead_letters: DeadLetters,
) -> None:
    # On one partition: a letter that failed after a replay, then a first-time one. The
    # replay moves past both; `--again` must still reach the first, and only once.
    again = (DeadLetterHeader.REPLAYS.value, b"1")
    await dead_letters.letter("ord-failed-again", again, partition=0)
    await dead_letters.letter("ord-first", partition=0)
    output = dead_letters.replay()
    assert "replayed 1 dead letters" in output
    assert "skipped 1 that failed again after a replay (--again replays them)" in output
    assert "replayed 1 dead letters" in dead_letters.replay("--again")
    assert "replayed 0 dead letters" in dead_letters.replay("--again")
    assert "replayed 0 dead letters" in dead_letters.replay()
    await dead_letters.letter("ord-later", partition=0)
    assert "replayed 1 dead letters" in dead_letters.replay("--again")
    assert "replayed 0 dead letters" in dead_letters.replay()
    records = await dead_letters.replayed()
    assert sorted(key for key, _ in records) == ["ord-failed-again", "ord-first", "ord-later"]
    replayed = dict(records)
    assert replayed["ord-failed-again"][DeadLetterHeader.REPLAYS] == b"2"
    assert replayed["ord-first"][DeadLetterHeader.REPLAYS] == b"1"


async def test_a_letter_whose_value_was_dropped_is_counted_but_not_replayed(
    dead_letters: DeadLetters,
) -> None:
    await dead_letters.letter("ord-kept")
    omitted = (DeadLetterHeader.VALUE_OMITTED.value, b"2000000")
    await dead_letters.letter("ord-huge", omitted, value=None)
    # The record's own header, with its value: nothing was dropped, it is replayed.
    await dead_letters.letter("ord-claims", omitted)
    output = dead_letters.replay()
    assert "replayed 2 dead letters" in output
    assert "skipped 1 whose value was too large to keep" in output
    assert sorted(key for key, _ in await dead_letters.replayed()) == ["ord-claims", "ord-kept"]


def test_the_replay_group_commits_the_offset_after_the_last_letter_replayed_per_partition() -> None:
    def letter(partition: int, offset: int) -> SimpleNamespace:
        return SimpleNamespace(topic="t.dlq", partition=partition, offset=offset)

    replayed = [letter(0, 3), letter(1, 7), letter(0, 5), letter(0, 4)]
    assert replayed_positions(replayed) == {
        TopicPartition("t.dlq", 0): 6,
        TopicPartition("t.dlq", 1): 8,
    }
    assert replayed_positions([]) == {}


def test_topics_create_is_idempotent(harness: Harness) -> None:
    result = cli(harness, "topics", "create")
    assert result.returncode == 0
    assert "already exists" in result.stdout


def test_demo_stops_only_the_local_services_it_started(monkeypatch: pytest.MonkeyPatch) -> None:
    from tools import demo

    before = [
        ("kafka", "ready", "127.0.0.1:9092", "pid 10"),  # already running: someone else's
        ("store", "stopped", "mongodb://127.0.0.1:27017", ""),  # the demo starts it
    ]
    assert demo.stopped_services(before) == ["store"]
    external = [
        ("kafka", "ready", "k:9092", "external"),
        ("store", "not answering", "", "external"),
    ]
    assert demo.stopped_services(external) == []

    stopped: list[str] = []

    class Service:
        def __init__(self, name: str) -> None:
            self.name = name

        def stop(self) -> bool:
            stopped.append(self.name)
            return True

    monkeypatch.setattr("stack.kafka.service", lambda: Service("kafka"))
    monkeypatch.setattr("stack.ferretdb.service", lambda: Service("store"))
    said: list[str] = []
    demo.stop_services(demo.stopped_services(before), said.append)
    assert stopped == ["store"] and said == ["FerretDB: stopped"]


def test_demo_runs_every_workflow_end_to_end_and_summarises(harness: Harness) -> None:
    result = cli(harness, "demo", "--workers", "1", timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    for expected in (
        "Summary",
        "90/90",
        "15/15",
        "4/4",
        "54/54",  # every tracking update and status report applied
        "cancel_requested",
        "order_cancelled",
        "key_mismatch",
        "orders/s",
        "Shipment ful-",
        "Status history",
    ):
        assert expected in result.stdout
    # Digital orders are delivered on completion; the web store's parcels once reported so.
    assert summary_count(result.stdout, "none") == 58
    assert summary_count(result.stdout, "partially_delivered") == 3
    assert summary_count(result.stdout, "delivered") == 21
    # Bank transfers and never-paid orders are held for payment whatever the arrival order.
    assert summary_count(result.stdout, "awaiting_payment") >= 7
    # The example of a late payment shows its request held until the money came.
    example = result.stdout.split("payment after the request: ", 1)[1].split("\n\n", 1)[0]
    assert "pending: waiting for payment" in " ".join(example.split())


def summary_count(output: str, label: str) -> int:
    """The first number after `label` in the row of a summary table that starts with it."""
    row = re.search(rf"^│ {label} +│ +(\d+) ", output, re.MULTILINE)
    assert row, f"no summary row {label!r}"
    return int(row.group(1))


async def test_worker_command_runs_several_processes_in_one_group_and_stops_on_sigterm(
    harness: Harness, tmp_path: Path
) -> None:
    import signal

    from store.orders import OrderStore, connect

    database = harness.settings.database + "_cli"
    env = harness.worker_env() | {
        "FULFILLMENT_GROUP_ID": harness.settings.group_id + "-cli",
        "MONGODB_DATABASE": database,
    }
    log = tmp_path / "workers.log"
    with log.open("wb") as output:
        supervisor = subprocess.Popen(
            [FULFILLMENT, "worker", "--processes", "2"],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    store = OrderStore(connect(harness.settings.mongodb_uri), database)
    try:
        await harness.send(
            Topic.ORDERS_PLACED, envelope(EventType.ORDER_PLACED, "ord-procs", placed_data())
        )
        try:
            async with asyncio.timeout(60):
                while await store.load("ord-procs") is None:
                    await asyncio.sleep(0.2)
        except TimeoutError as late:
            # What the workers said is the only clue to why they did not apply it.
            late.add_note(log.read_text(errors="replace")[-4000:])
            raise
        children = subprocess.run(
            ["pgrep", "-P", str(supervisor.pid)], capture_output=True, text=True
        ).stdout.split()
        assert len(children) == 2
    finally:
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(timeout=60) == 0
        await store.client.drop_database(database)
        await store.client.close()
    assert all(not Path(f"/proc/{pid}").exists() for pid in children)


async def test_the_readmes_integrator_snippet_publishes_a_request_the_worker_applies(
    harness: Harness,
) -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme[readme.index("## For integrators") :]
    start = section.index("```python") + len("```python")
    snippet = section[start : section.index("```", start)]
    ran = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", snippet],
        env=harness.worker_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stderr
    # Not placed yet: the request waits for its order, and says so.
    held = await harness.outputs_of(Topic.FULFILLMENTS_HELD, 1)
    assert held[0]["subject"] == "ord-1001" and held[0]["data"]["reason"] == "awaiting_order"


async def test_an_order_not_placed_yet_shows_its_captures_waiting_not_a_made_up_total(
    harness: Harness,
) -> None:
    payment = {"payment_id": "p1", "amount": "20.00", "currency": "USD"}
    await harness.send(
        Topic.PAYMENTS_CAPTURED, envelope(EventType.PAYMENT_CAPTURED, "ord-early", payment)
    )
    await harness.settled("ord-early", lambda o: len(o.captures) == 1)
    shown = cli(harness, "order", "show", "ord-early")
    assert shown.returncode == 0, shown.stderr
    assert "(not placed yet)" in shown.stdout
    assert "1 captures recorded, counted once the order is placed" in shown.stdout
    assert "?" not in shown.stdout.splitlines()[2]


async def test_dlq_list_on_an_80_column_terminal_wraps_keys_and_positions_whole(
    harness: Harness,
) -> None:
    key = "ord-with-a-rather-long-key-0001"
    await harness.send_raw(Topic.ORDERS_PLACED, key.encode(), b"not json")
    await harness.until(lambda: len(harness.seen("orders.placed.dlq")) >= 1)
    listed = cli(harness, "dlq", "list", "orders.placed", columns=80).stdout
    assert "…" not in listed
    # The key column's pieces, row line by row line, make the whole key again.
    keys = [line.split("│")[2].strip() for line in listed.splitlines() if line.startswith("│")]
    assert key in "".join(keys)


async def test_values_are_shown_as_text_their_markup_and_control_characters_inert(
    harness: Harness,
) -> None:
    order_id = "ord-[/]m"
    data = placed_data()
    data["customer"]["name"] = "Eve\x1b]0;pwned\x07\x1b[31mRED"
    published = cli(
        harness,
        "publish",
        "order.placed",
        "--file",
        "-",
        "--order",
        order_id,
        stdin=json.dumps(data),
    )
    # Published once, and said so: it used to fail after sending, inviting a second send.
    assert published.returncode == 0, published.stderr
    assert order_id in published.stdout
    await harness.settled(order_id, lambda o: o.placed)
    for shown in (cli(harness, "order", "show", order_id), cli(harness, "orders", "search", "Eve")):
        assert shown.returncode == 0, shown.stderr
        assert "\x1b" not in shown.stdout and "\x07" not in shown.stdout
        assert "Eve\ufffd]0;pwned" in shown.stdout and "[31mRED" in shown.stdout
    assert order_id in cli(harness, "order", "show", order_id).stdout


async def test_a_replay_stopped_part_way_keeps_what_went_out_and_the_next_run_sends_the_rest(
    dead_letters: DeadLetters, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = [f"ord-part-{i}" for i in range(5)]
    for key in keys:
        await dead_letters.letter(key)
    send_raw = FulfillmentPublisher.send_raw
    calls = 0

    async def broker_fails_on_the_third(self: FulfillmentPublisher, *args: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise KafkaTimeoutError()
        await send_raw(self, *args)

    monkeypatch.setattr(FulfillmentPublisher, "send_raw", broker_fails_on_the_third)
    with pytest.raises(KafkaTimeoutError):
        await replay_letters(dead_letters.settings, dead_letters.dlq)
    monkeypatch.undo()
    rest = await replay_letters(dead_letters.settings, dead_letters.dlq)
    assert rest.replayed == len(keys) - 2
    replayed = await dead_letters.replayed()
    assert sorted(key for key, _ in replayed) == sorted(keys)  # each exactly once


def test_a_demo_whose_outputs_do_not_arrive_in_time_fails_as_a_run_not_an_outage(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tools import demo

    async def waits_too_long(*_: object) -> None:
        raise TimeoutError  # as one of the demo's own bounded waits ends

    async def reachable(*_: object) -> None:
        return None

    monkeypatch.setattr("stack.up", lambda say: None)
    monkeypatch.setattr("stack.status", lambda: [])
    monkeypatch.setattr(demo, "check_reachable", reachable)
    monkeypatch.setattr(demo, "start_workers", lambda count: [])
    monkeypatch.setattr(demo, "run_demo", waits_too_long)
    with pytest.raises(demo.Stalled, match="did not all arrive in time"):
        demo.demo(workers=1)
