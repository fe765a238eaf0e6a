"""Dead letters: counts by topic and reason, the letters of a topic, and replay with a preview."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from console.app import checked_form, error_page, flash, outcome_of, redirect, render, state
from console.backend import Unavailable
from console.forms import ends_text, parse_ends, text, valid_nonce
from console.paths import path_segment
from console.security import Flash
from schemas.names import DLQ_SUFFIX, INPUT_TOPICS, Topic

router = APIRouter()


def _topic(name: str) -> Topic | None:
    """The input topic named (or its `.dlq`), None if it is not one."""
    base = name.removesuffix(DLQ_SUFFIX)
    return next((topic for topic in INPUT_TOPICS if topic.value == base), None)


def _unknown(request: Request, name: str) -> Response:
    choices = ", ".join(topic.value for topic in INPUT_TOPICS)
    return error_page(
        request,
        404,
        "No such topic",
        f"{name!r} is not an input topic; choose one of: {choices}.",
        "/dead-letters",
    )


@router.get("/dead-letters")
async def overview(request: Request) -> Response:
    try:
        topics = await state(request).backend.dead_letter_counts()
        problem = None
    except Unavailable as unavailable:
        topics, problem = [], f"Dead letters cannot be read: {unavailable}."
    return render(request, "dead_letters.html", section="letters", topics=topics, problem=problem)


@router.get("/dead-letters/{name}")
async def topic_letters(request: Request, name: str) -> Response:
    topic = _topic(name)
    if topic is None:
        return _unknown(request, name)
    try:
        letters, problem = await state(request).backend.dead_letters(topic), None
    except Unavailable as unavailable:
        letters, problem = [], f"Dead letters cannot be read: {unavailable}."
    reasons: dict[str, int] = {}
    for letter in letters:
        reasons[letter.reason] = reasons.get(letter.reason, 0) + 1
    wanted = request.query_params.get("reason", "")
    shown = [letter for letter in letters if letter.reason == wanted] if wanted else letters
    return render(
        request,
        "dead_letter_topic.html",
        section="letters",
        topic=topic.value,
        letters=shown,
        reasons=reasons,
        reason=wanted,
        problem=problem,
    )


@router.get("/dead-letters/{name}/replay")
async def replay_preview(request: Request, name: str) -> Response:
    topic = _topic(name)
    if topic is None:
        return _unknown(request, name)
    again = request.query_params.get("again") == "1"
    try:
        preview = await state(request).backend.replay_preview(topic, again)
    except Unavailable as unavailable:
        return error_page(
            request,
            503,
            "Kafka cannot be reached",
            str(unavailable),
            f"/dead-letters/{path_segment(topic.value)}",
        )
    return render(
        request,
        "replay.html",
        section="letters",
        topic=topic.value,
        preview=preview,
        again=again,
        upto=ends_text(preview.ends),
    )


@router.post("/dead-letters/{name}/replay")
async def replay(request: Request, name: str) -> Response:
    form = await checked_form(request)
    topic = _topic(name)
    if topic is None:
        return _unknown(request, name)
    back = f"/dead-letters/{path_segment(topic.value)}"
    nonce = text(form, "nonce")
    console = state(request)
    until = parse_ends(text(form, "upto"))
    if not valid_nonce(nonce) or until is None:
        return error_page(request, 400, "This form cannot be used", "Reload the page.", back)
    submission, new = console.submissions.start(nonce)
    if not new:
        problem = await outcome_of(submission)
        # This page is the one the browser shows: it says what became of the first replay.
        flash(
            request,
            Flash(
                problem or "This replay was already sent; nothing was replayed again.",
                "error" if problem else "info",
            ),
        )
        return redirect(back)
    problem = "The replay did not finish. Replay again for the rest."
    try:
        # No further than the preview read: letters that arrived since were not reviewed.
        summary = await console.backend.replay(topic, text(form, "again") == "1", until)
        problem = None
    except Unavailable as unavailable:
        problem = (
            f"The replay did not finish: {unavailable}. Replay again for the rest; a letter it"
            " re-published may go out again, and the pipeline applies its event once."
        )
        flash(request, Flash(problem, "error"))
        return redirect(back)
    finally:
        console.submissions.finish(nonce, submission, problem)
    flash(request, Flash(f"{summary[0].upper()}{summary[1:]}.", "success"))
    return redirect(back)
