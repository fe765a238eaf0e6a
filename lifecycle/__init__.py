"""The order lifecycle as pure functions: (order, event, now) -> (order, outputs); no I/O."""

from lifecycle.decide import Applied, Decision, Outcome, apply, apply_event, decide

__all__ = ["Applied", "Decision", "Outcome", "apply", "apply_event", "decide"]
