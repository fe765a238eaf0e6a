"""The benchmark still runs end to end and cleans up after itself (a smoke check at a tiny size;
timing is never asserted)."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from bench.run import GroupNotStable, bench, wait_for_group, write
from config import Settings
from tests.conftest import Infra

pytestmark = pytest.mark.e2e


async def bench_topics(base: Settings) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=base.kafka_bootstrap)
    await admin.start()
    try:
        return {name for name in await admin.list_topics() if name.startswith("bench-")}
    finally:
        await admin.close()


async def test_bench_runs_every_variant_and_writes_json_and_chart(
    infra: Infra, tmp_path: Path
) -> None:
    base = Settings(kafka_bootstrap=infra.kafka_bootstrap, mongodb_uri=infra.mongodb_uri)
    before = await bench_topics(base)
    report = await bench(base, orders=60, paced_orders=40, say=print, timeout=300)
    # Every variant deletes the topics it made: a broker left holding them restarts slowly.
    # The broker deletes in the background; its metadata says so shortly after.
    async with asyncio.timeout(30):
        while not await bench_topics(base) <= before:
            await asyncio.sleep(0.2)
    variants = [result.variant for result in report.results]
    assert variants == [
        "kafka ceiling",
        "store ceiling",
        "relay floor",
        "libraries floor",
        "naive peer",
        "pipeline x1",
        "pipeline x2",
    ]
    assert all(result.orders == 60 and result.orders_per_second > 0 for result in report.results)
    assert {
        "ours_vs_naive",
        "ours_vs_lower_ceiling",
        "naive_cpu_vs_ours",
        "ours_cpu_vs_floor",
        "ours_cpu_vs_libraries_floor",
    } <= set(report.ratios)
    cpu = {r.variant: r.cpu_us_per_event for r in report.results}
    # Process CPU is counted in 10 ms ticks, which a tiny run's relay may not reach.
    assert cpu["relay floor"] is not None and cpu["relay floor"] >= 0
    assert all(
        (cpu[name] or 0) > 0
        for name in ("libraries floor", "naive peer", "pipeline x1", "pipeline x2")
    )
    assert {"p50_ms", "p95_ms", "p99_ms"} <= set(report.latency)
    data, chart = write(report, tmp_path)
    assert json.loads(data.read_text())["orders"] == 60
    assert chart is not None and chart.read_bytes().startswith(b"\x89PNG")


async def test_a_group_that_never_forms_fails_the_run_not_as_an_outage(infra: Infra) -> None:
    settings = Settings(
        kafka_bootstrap=infra.kafka_bootstrap, group_id=f"bench-no-members-{uuid.uuid4().hex[:6]}"
    )
    with pytest.raises(GroupNotStable, match="not stable with 1 member"):
        await wait_for_group(settings, members=1, timeout=1)
