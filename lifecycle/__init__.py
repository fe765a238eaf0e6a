"""The order lifecycle as pure functions: (order, event, now) -> (order, outputs); no I/O."""

from lifecycle.decide import Decision, apply, decide

__all__ = ["Decision", "apply", "decide"]
