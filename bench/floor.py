"""The libraries' floor: what aiokafka and pymongo cost per event for this contract's work.

`python -m bench.floor PLAN`: consume the input topics and, per batch, send the store the
same commands our worker sends (read the orders' versions, look for their pending markers,
write a marker per changed order, one compare-and-set write per order of the document our
pipeline saves at that point, delete the markers once the outputs are acknowledged), produce
the outputs our pipeline publishes then, and commit. The documents (as dicts, which pymongo
encodes, credentials sealed) and the outputs (as JSON text, credentials opened) are made
beforehand by `plan`, so none of the pipeline's decoding, lifecycle, encoding or bookkeeping
runs; records go out through the worker's producer (`KafkaOutputs`), its one shared part.
Our worker's CPU per event minus this one is what our own code costs.
"""

from __future__ import annotations

import asyncio
import pickle
import signal
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer
from cryptography.fernet import Fernet
from pymongo import InsertOne, ReplaceOne

from bench.data import Workload
from config import Settings
from consumers.decode import Rejection, decode
from consumers.outputs import KafkaOutputs, Message, event_message
from consumers.sealing import Sealer
from lifecycle import apply
from schemas.cloudevents import numbered
from schemas.document import OrderDocument, OutboxMessage, PendingOutbox
from schemas.names import INPUT_TOPICS
from store.orders import connect
from store.server import probe


@dataclass(frozen=True)
class Step:
    """One save of one order: the document as the pipeline writes it, and the outputs it sends."""

    document: dict[str, Any]
    # (topic without the prefix, key, CloudEvent JSON) of each output.
    outputs: list[tuple[str, str, str]]


# Each order's steps, in the order its events are applied.
Plan = dict[str, list[Step]]


def plan(work: Workload) -> Plan:
    """Every order's documents and outputs after each of its events, as the pipeline makes them
    when the events come in the workload's order."""
    now = datetime.now(UTC)
    sealer = Sealer(Fernet.generate_key().decode())
    steps: Plan = {}
    for index in range(work.orders):
        order_id = work.placed[index][0].decode()
        order = OrderDocument(_id=order_id)
        for topic, records in work.by_topic().items():
            event = decode(topic, *records[index])
            assert not isinstance(event, Rejection)
            outputs = apply(order, sealer.seal(event), now).outputs
            order.version += 1
            order.outbox = [OutboxMessage.of(output) for output in numbered(outputs, order.version)]
            sent = [(e.topic, e.key, sealer.open_output(e)) for e in order.outbox]
            steps.setdefault(order_id, []).append(Step(order.to_mongo(), sent))
    return steps


def save_plan(steps: Plan, path: Path) -> None:
    path.write_bytes(pickle.dumps(steps))


class Floor:
    """Applies the plan's next step of each record's order: written, published, committed."""

    def __init__(self, settings: Settings, steps: Plan, write_chunk: int) -> None:
        self.settings = settings
        self.steps = steps
        self.write_chunk = write_chunk
        self.applied: dict[str, int] = {}

    def writes(self, keys: list[str]) -> tuple[list[InsertOne[Any] | ReplaceOne[Any]], list[Step]]:
        """One write per order, of its last step in the batch (as the worker saves once per
        order and batch), and every step taken, for their outputs; `applied` then holds the
        version each order is written at."""
        before: dict[str, int] = {}
        taken = []
        for key in keys:
            done = self.applied.get(key, 0)
            if done == len(self.steps[key]):
                continue  # read again after a rebalance: every step was taken
            before.setdefault(key, done)
            taken.append(self.steps[key][done])
            self.applied[key] = done + 1
        operations: list[InsertOne[Any] | ReplaceOne[Any]] = []
        for key, done in before.items():
            document = self.steps[key][self.applied[key] - 1].document
            if done == 0:
                operations.append(InsertOne(document))
            else:
                operations.append(ReplaceOne({"_id": key, "version": done}, document))
        return operations, taken

    def markers(self, ids: list[str], now: datetime) -> list[dict[str, Any]]:
        """The worker's `outbox_pending` marker of each order written, dated `now`."""
        return [
            {
                "_id": PendingOutbox.key(order_id, version),
                "order_id": order_id,
                "version": version,
                "at": now,
            }
            for order_id in ids
            if (version := self.applied.get(order_id, 0))
        ]

    def messages(self, taken: list[Step]) -> list[Message]:
        return [
            event_message(self.settings.topic(topic), key, value)
            for step in taken
            for topic, key, value in step.outputs
        ]


async def run(settings: Settings, steps: Plan) -> None:
    """Until SIGTERM."""
    stopping = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
    client = connect(settings.mongodb_uri)
    orders = client[settings.database]["orders"]
    pending = client[settings.database]["outbox_pending"]
    floor = Floor(settings, steps, (await probe(client)).write_chunk)
    consumer = AIOKafkaConsumer(
        *(settings.topic(topic) for topic in INPUT_TOPICS),
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=settings.group_id,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    outputs = KafkaOutputs(settings)
    await outputs.start()
    await consumer.start()
    try:
        while not stopping.is_set():
            batch = await consumer.getmany(timeout_ms=100, max_records=settings.batch_size)
            keys = [(r.key or b"").decode() for records in batch.values() for r in records]
            if not keys:
                continue
            ids = list(dict.fromkeys(keys))
            stored = orders.find({"_id": {"$in": ids}}, {"version": 1})
            looked_up = [PendingOutbox.key(raw["_id"], raw["version"]) async for raw in stored]
            if looked_up:
                [_ async for _ in pending.find({"_id": {"$in": looked_up}})]
            operations, taken = floor.writes(keys)
            markers = floor.markers(ids, datetime.now(UTC))
            upserts = [ReplaceOne({"_id": m["_id"]}, m, upsert=True) for m in markers]
            if upserts:
                await pending.bulk_write(upserts, ordered=False)
            for start in range(0, len(operations), floor.write_chunk):
                await orders.bulk_write(
                    operations[start : start + floor.write_chunk], ordered=False
                )
            await outputs.send(floor.messages(taken))
            if markers:
                await pending.delete_many({"_id": {"$in": [m["_id"] for m in markers]}})
            await consumer.commit()
    finally:
        await consumer.stop()
        await outputs.stop()
        await client.close()


if __name__ == "__main__":
    asyncio.run(run(Settings.from_env(), pickle.loads(Path(sys.argv[1]).read_bytes())))
