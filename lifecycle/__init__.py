"""The order lifecycle as pure functions: apply(order, event, now) -> typed output events; no I/O."""

from lifecycle.decide import Applied, Outcome, apply
from lifecycle.record import size_problem

__all__ = ["Applied", "Outcome", "apply", "size_problem"]
