"""The bench's report: ratios stay defined when a tiny run's floor is below the CPU clock."""

from __future__ import annotations

from bench.run import ratio


def test_a_cpu_ratio_over_a_floor_too_small_to_count_is_none_not_a_crash() -> None:
    assert ratio(300.0, 0.0) is None


def test_a_cpu_ratio_divides_what_was_measured() -> None:
    assert ratio(300.0, 15.0) == 20.0
