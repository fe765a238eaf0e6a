"""Our code alone runs the real pipeline over the bench workload: every order completes, and the
store hands back what it saved, as the real one does, so no figure is taken from a short cut."""

from __future__ import annotations

import asyncio
import cProfile

from cryptography.fernet import Fernet

from bench.own import MemoryOutputs, MemoryStore, batches, run_once, shares
from config import Settings
from consumers.pipeline import Pipeline
from consumers.sealing import Sealer
from schemas.names import Topic


def test_each_batch_holds_one_topics_records_and_every_event_is_in_one() -> None:
    settings = Settings(topic_prefix="own.")
    made = batches(settings, orders=7, size=3)
    assert sum(len(batch) for batch in made) == 21
    assert all(len({record.topic for record in batch}) == 1 for batch in made)
    assert made[0][0].topic == settings.topic(Topic.ORDERS_PLACED)


def test_every_order_completes_and_a_saved_document_is_handed_back_at_its_version() -> None:
    settings = Settings(topic_prefix="own.")
    store, outputs = MemoryStore(), MemoryOutputs()
    pipeline = Pipeline(settings, store, outputs, Sealer(Fernet.generate_key().decode()))

    async def run() -> None:
        for batch in batches(settings, orders=10, size=4):
            report = await pipeline.handle(batch)
            assert report.applied == len(batch)

    asyncio.run(run())
    assert len(store.versions) == 10
    assert {version for version, _ in store.versions.values()} == {3}
    assert store.markers == {}  # every outbox was acknowledged
    assert outputs.sent >= 10  # at least each order's fulfillment.completed


def test_a_run_gives_a_positive_figure_and_a_profile_splits_it_into_steps() -> None:
    profile = cProfile.Profile()
    assert asyncio.run(run_once(orders=20, size=10, profile=profile)) > 0
    split = dict(shares(profile))
    assert 0 < split["the lifecycle (apply)"] < 1
    assert sum(split.values()) <= 1.0001
