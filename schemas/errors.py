"""Validation errors in words: where and what is wrong, never the value given (it may be a
credential)."""

from __future__ import annotations

from pydantic import ValidationError

from schemas.events import PATTERN_MEANINGS

Location = tuple[str | int, ...]


def problems(error: ValidationError) -> list[tuple[Location, str]]:
    """Each problem's location and message; a pattern mismatch says what the pattern means."""
    found = []
    for problem in error.errors(include_url=False, include_input=False):
        # The context is read for the pattern only: other entries may quote limits, never
        # values, but the message already says those.
        pattern = (problem.get("ctx") or {}).get("pattern")
        message = PATTERN_MEANINGS.get(pattern, problem["msg"]) if pattern else problem["msg"]
        found.append((tuple(problem["loc"]), str(message).removeprefix("Value error, ")))
    return found
