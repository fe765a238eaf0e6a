"""The worker's garbage collector settings: start-up objects frozen, a batch's objects spared."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from consumers.worker import (
    MIDDLE_COLLECTION_THRESHOLD,
    YOUNG_COLLECTION_THRESHOLD,
    tune_garbage_collection,
)


@pytest.fixture
def restored_collector() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restored_collector")
def test_start_up_objects_are_frozen_and_young_collections_wait_for_a_batchs_worth() -> None:
    old = gc.get_threshold()[2]
    tune_garbage_collection()
    assert gc.get_freeze_count() > 10_000  # modules, classes, functions of the worker
    assert gc.get_threshold() == (YOUNG_COLLECTION_THRESHOLD, MIDDLE_COLLECTION_THRESHOLD, old)


@pytest.mark.usefixtures("restored_collector")
def test_cyclic_garbage_made_after_start_up_is_still_collected() -> None:
    tune_garbage_collection()

    class Node:
        partner: object = None

    first, second = Node(), Node()
    first.partner, second.partner = second, first
    del first, second
    assert gc.collect() >= 2
