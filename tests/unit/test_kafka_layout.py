"""The local cluster's nodes, formatted side by side, agree on one cluster id."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import pytest

from stack import kafka


def test_nodes_formatted_side_by_side_share_one_cluster_id(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for trial in range(50):
        monkeypatch.setenv("FULFILLMENT_STACK_DIR", str(tmp_path / str(trial)))
        layout = kafka.Layout(brokers=3)
        seen: list[str] = []

        def format_one(layout: kafka.Layout = layout, seen: list[str] = seen) -> None:
            seen.append(kafka._cluster_id(layout))

        formatters = [threading.Thread(target=format_one) for _ in range(3)]
        for formatter in formatters:
            formatter.start()
        for formatter in formatters:
            formatter.join()
        assert len(set(seen)) == 1 and seen[0], seen
        assert [p.name for p in layout.folder.iterdir()] == ["cluster.id"]


def test_a_cluster_id_never_starts_with_a_dash_which_the_storage_tool_reads_as_an_option(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The first two of these random ids encode to "-..." (0xf8... and 0xfb...).
    ids = iter([uuid.UUID(bytes=b"\xf8" * 16), uuid.UUID(bytes=b"\xfb" * 16), uuid.UUID(int=1)])
    monkeypatch.setattr(uuid, "uuid4", lambda: next(ids))
    made = kafka._random_cluster_id()
    assert not made.startswith("-") and made == "AAAAAAAAAAAAAAAAAAAAAQ"
