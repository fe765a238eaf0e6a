"""The libraries floor does our pipeline's writes and sends: one compare-and-set write per order
and batch, of the document the pipeline saves there, and every output, none of our code run."""

from __future__ import annotations

from datetime import UTC, datetime

from pymongo import InsertOne, ReplaceOne

from bench.data import workload
from bench.floor import Floor, plan
from config import Settings
from schemas.names import Topic


def test_the_plan_holds_each_orders_document_and_outputs_after_each_of_its_three_events() -> None:
    steps = plan(workload(5, "floor"))
    assert len(steps) == 5
    for order_id, order_steps in steps.items():
        assert [step.document["version"] for step in order_steps] == [1, 2, 3]
        assert all(step.document["_id"] == order_id for step in order_steps)
        topics = [topic for step in order_steps for topic, _, _ in step.outputs]
        assert topics.count(Topic.FULFILLMENTS_COMPLETED.value) == 1


def test_an_order_seen_twice_in_a_batch_is_written_once_at_its_last_step_with_every_output() -> (
    None
):
    steps = plan(workload(2, "floor"))
    first, second = steps
    floor = Floor(Settings(topic_prefix="t."), steps, write_chunk=200)
    operations, taken = floor.writes([first, second, first])
    assert [type(operation) for operation in operations] == [InsertOne, InsertOne]
    assert operations[0]._doc is steps[first][1].document
    assert taken == [steps[first][0], steps[second][0], steps[first][1]]
    assert len(floor.messages(taken)) == sum(len(step.outputs) for step in taken)
    # The next batch replaces the stored version: compare-and-set on what was written.
    operations, _ = floor.writes([first])
    assert isinstance(operations[0], ReplaceOne)
    assert operations[0]._filter == {"_id": first, "version": 2}
    assert operations[0]._doc is steps[first][2].document


def test_a_record_read_again_after_its_orders_last_step_writes_and_sends_nothing() -> None:
    steps = plan(workload(1, "floor"))
    (order_id,) = steps
    floor = Floor(Settings(topic_prefix="t."), steps, write_chunk=200)
    floor.writes([order_id] * 3)
    assert floor.writes([order_id]) == ([], [])


def test_each_order_written_gets_a_marker_for_the_version_it_is_written_at() -> None:
    steps = plan(workload(2, "floor"))
    first, second = steps
    floor = Floor(Settings(topic_prefix="t."), steps, write_chunk=200)
    floor.writes([first, second, first])
    now = datetime.now(UTC)
    assert floor.markers([first, second], now) == [
        {"_id": f"{first}@2", "order_id": first, "version": 2, "at": now},
        {"_id": f"{second}@1", "order_id": second, "version": 1, "at": now},
    ]


def test_the_plan_stores_credentials_sealed_and_sends_them_opened() -> None:
    steps = plan(workload(5, "floor"))  # the first order of the workload is digital
    stored = [str(step.document) for order_steps in steps.values() for step in order_steps]
    sent = [
        value for order_steps in steps.values() for s in order_steps for _, _, value in s.outputs
    ]
    assert any("sealed_credentials" in document for document in stored)
    assert not any("tok-" in document for document in stored)
    assert any('"token":"tok-' in value for value in sent)
