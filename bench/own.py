"""`python -m bench.own`: what our own code costs per event, without Kafka or the store.

Runs the worker's `Pipeline.handle` over the bench workload, a topic at a time in batches of
`--batch` records (as a worker meets a preloaded workload), against an in-memory store and
broker that take what the pipeline hands them: the store keeps saved documents as the real
one does (handed back while their version is the stored one, so never decoded again), and
neither encodes anything further. The garbage collector is tuned as in a worker. The figure
is the process CPU per input event, the best of a few runs; a worker's CPU per event is
about this plus the libraries floor (`bench.floor`), which measures the rest.
With `--profile`, the share of each step under cProfile (which slows everything down).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import pstats
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from cryptography.fernet import Fernet

from bench.data import workload
from config import Settings
from consumers.outputs import Message
from consumers.pipeline import Pipeline, PlainRecord
from consumers.sealing import Sealer
from consumers.worker import tune_garbage_collection
from schemas.document import OrderDocument, PendingOutbox
from store.orders import Change, SavedOrders

# Other work on the machine only ever slows a run down: the best of a few is the figure.
REPEATS = 3
# The steps a profile is split into: what the README calls it, the function's file and name.
STEPS = (
    ("decoding and validating input, sealing", "consumers/pipeline.py", "_decode_all"),
    ("the lifecycle (apply)", "lifecycle/decide.py", "apply"),
    ("encoding the save (dump + BSON)", "store/orders.py", "encode"),
    ("publishing (records, marker bookkeeping)", "consumers/pipeline.py", "publish"),
    ("metrics and logs per event", "consumers/pipeline.py", "_count"),
)


class MemoryStore:
    """Saved documents kept as objects, as `OrderStore` keeps those it saved; markers as the
    dicts it would write."""

    def __init__(self) -> None:
        self.versions: dict[str, tuple[int, str | None]] = {}
        self.saved = SavedOrders()
        self.markers: dict[str, object] = {}

    async def load_many(self, order_ids: Iterable[str]) -> dict[str, OrderDocument]:
        stored = {i: self.versions[i] for i in order_ids if i in self.versions}
        return self.saved.take(stored)

    async def unsent_among(self, orders: Sequence[OrderDocument]) -> set[str]:
        return set()

    async def save_many(self, changes: Sequence[Change], token: str) -> set[str]:
        now = datetime.now(UTC)
        for change in changes:
            if change.order.outbox:
                marker = PendingOutbox.of(change.order, now).to_mongo()
                self.markers[marker["_id"]] = marker
            self.versions[change.order.id] = (change.order.version, token)
            change.order.remember_stored(change.stored)
        self.saved.keep((change.order for change in changes), token)
        return set()

    async def mark_sent(self, keys: Sequence[str]) -> None:
        for key in keys:
            self.markers.pop(key, None)

    async def postpone(self, keys: Sequence[str]) -> None:
        return None

    async def unsent(self, saved_before: datetime, limit: int = 500) -> list[OrderDocument]:
        return []


class MemoryOutputs:
    """A broker that acknowledges every record."""

    def __init__(self) -> None:
        self.sent = 0

    async def send(self, messages: Sequence[Message]) -> list[BaseException | None]:
        self.sent += len(messages)
        return [None] * len(messages)


def batches(settings: Settings, orders: int, size: int) -> list[list[PlainRecord]]:
    """The workload's records, a topic at a time, in batches of `size`."""
    work = workload(orders, "own")
    out: list[list[PlainRecord]] = []
    for topic, records in work.by_topic().items():
        name = settings.topic(topic)
        made = [
            PlainRecord(name, 0, offset, key, value) for offset, (key, value) in enumerate(records)
        ]
        out += [made[start : start + size] for start in range(0, len(made), size)]
    return out


async def run_once(orders: int, size: int, profile: cProfile.Profile | None) -> float:
    """CPU seconds per input event of one pass over a fresh workload."""
    settings = Settings(topic_prefix="own.")
    outputs = MemoryOutputs()
    pipeline = Pipeline(settings, MemoryStore(), outputs, Sealer(Fernet.generate_key().decode()))
    work = batches(settings, orders, size)
    events = sum(len(batch) for batch in work)
    threshold = gc.get_threshold()
    tune_garbage_collection()
    try:
        started = time.process_time()
        if profile is not None:
            profile.enable()
        for batch in work:
            await pipeline.handle(batch)
        if profile is not None:
            profile.disable()
        spent = time.process_time() - started
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
    if outputs.sent < orders:
        raise SystemExit(f"only {outputs.sent} outputs for {orders} orders: the run is not valid")
    return spent / events


def shares(profile: cProfile.Profile) -> list[tuple[str, float]]:
    """Each step's inclusive share of the profiled time."""
    stats = pstats.Stats(profile)
    table = stats.stats  # type: ignore[attr-defined]  # typeshed leaves the table out
    total = max(cumulative for _, _, _, cumulative, _ in table.values())
    found = []
    for label, path, name in STEPS:
        times = [
            cumulative
            for (file, _, function), (_, _, _, cumulative, _) in table.items()
            if function == name and file.endswith(path)
        ]
        found.append((label, sum(times) / total))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--orders", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=100, help="records per batch")
    parser.add_argument("--profile", action="store_true", help="also where the time goes")
    args = parser.parse_args()
    best = min(asyncio.run(run_once(args.orders, args.batch, None)) for _ in range(REPEATS))
    print(
        f"our code alone: {best * 1e6:.0f} µs CPU per input event"
        f" ({args.orders:,} orders, {3 * args.orders:,} events, batches of {args.batch},"
        f" best of {REPEATS})"
    )
    if args.profile:
        profile = cProfile.Profile()
        asyncio.run(run_once(args.orders, args.batch, profile))
        split = shares(profile)
        for label, share in split:
            print(f"  {share:6.1%}  {label}")
        rest = 1 - sum(share for _, share in split)
        print(f"  {rest:6.1%}  the rest of the shell (grouping, outbox entries, size checks)")


if __name__ == "__main__":
    main()
