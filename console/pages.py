"""Login and the order pages: list, details, live state, and every action on an order."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from console.app import (
    MAX_LOGIN_FORM_BYTES,
    STORE_OUTAGES,
    checked_form,
    error_page,
    flash,
    local_path,
    outcome_of,
    redirect,
    render,
    secure_request,
    session,
    slow_down,
    state,
    store_away_page,
)
from console.backend import Unavailable
from console.forms import (
    ADDRESS_LABELS,
    REQUIRED_ADDRESS,
    can_capture,
    cancel_fulfillment,
    cancel_order,
    capture,
    draft_of,
    event_id,
    from_draft,
    fulfillment_id,
    fulfillment_request,
    prefilled,
    reason_of,
    status_prefilled,
    status_report,
    text,
    tracking_prefilled,
    tracking_update,
    valid_nonce,
)
from console.paths import path_segment
from console.queries import Search, typed
from console.security import COOKIE, Flash, cookie_options, password_matches, transient
from console.views import FulfillmentView, OrderView, label, outcome
from producers.publisher import EventTooLarge
from schemas.events import WireModel
from schemas.names import DeliveryStatus, EventType, OrderStatus, ShipmentStatus

DELIVERY_STATUSES = tuple(status.value for status in DeliveryStatus)
# ASCII digits only ("²".isdigit() is true), and few enough to be a page number.
PAGE_NUMBER = re.compile(r"[0-9]{1,6}")

auth = APIRouter()
router = APIRouter()


# ---- login ---------------------------------------------------------------------------------


@auth.get("/login")
async def login_page(request: Request) -> Response:
    wanted = local_path(request.query_params.get("next", "/orders"))
    if session(request).authenticated:
        return redirect(wanted)
    if not session(request).token:
        # The login form's CSRF token needs a session to belong to: the first one kept.
        request.state.session = state(request).sessions.new()
    return render(request, "login.html", next=wanted)


@auth.post("/login")
async def login(request: Request) -> Response:
    form = await checked_form(request, MAX_LOGIN_FORM_BYTES)
    wanted = local_path(text(form, "next"))
    given = form.get("password")
    async with state(request).login_turn:
        if not isinstance(given, str) or not password_matches(given, state(request).password):
            await slow_down()
            return render(request, "login.html", 401, next=wanted, error="Wrong password.")
    # A new session on login: a token someone planted before cannot become a logged-in one.
    console = state(request)
    console.sessions.end(session(request))
    request.state.session = console.sessions.new(authenticated=True)
    return redirect(wanted)


@auth.post("/logout")
async def logout(request: Request) -> Response:
    await checked_form(request)
    state(request).sessions.end(session(request))
    request.state.session = transient()
    response = redirect("/login")
    # Here only: a poll still under way with an old cookie must not drop a newer login's.
    response.delete_cookie(COOKIE, **cookie_options(secure_request(request)))
    return response


@auth.get("/favicon.ico")
async def favicon() -> Response:
    """No icon: an empty answer keeps browsers from logging a missing one on every page."""
    return Response(status_code=204)


@auth.get("/")
async def home() -> Response:
    return RedirectResponse("/orders", status_code=302)


# ---- orders list ---------------------------------------------------------------------------


def _search(request: Request) -> Search:
    params = request.query_params
    status = params.get("status", "")
    delivery = params.get("delivery", "")
    page = params.get("page", "1")
    return Search(
        text=params.get("q", "")[:200],
        status=status if status in {s.value for s in OrderStatus} else "",
        delivery_status=delivery if delivery in DELIVERY_STATUSES else "",
        oldest_first=params.get("sort") == "oldest",
        page=max(1, min(int(page), 100_000)) if PAGE_NUMBER.fullmatch(page) else 1,
    )


@router.get("/orders")
async def orders_page(request: Request) -> Response:
    search = _search(request)
    page = await state(request).backend.orders.search(search)

    def page_url(number: int) -> str:
        query = {
            "q": search.text,
            "status": search.status,
            "delivery": search.delivery_status,
            "sort": "oldest" if search.oldest_first else "",
            "page": str(number),
        }
        return "/orders?" + urlencode({k: v for k, v in query.items() if v})

    return render(
        request,
        "orders.html",
        section="orders",
        page=page,
        search=search,
        statuses=[s.value for s in OrderStatus],
        delivery_statuses=DELIVERY_STATUSES,
        page_url=page_url,
    )


# ---- one order -----------------------------------------------------------------------------


async def _view(request: Request, order_id: str) -> OrderView | None:
    raw = await state(request).backend.orders.load(order_id)
    return OrderView(typed(raw)) if raw is not None else None


def _order_path(order_id: str) -> str:
    return f"/orders/{path_segment(order_id)}"


# Fulfillment forms kept per session while the store is away; the oldest goes first.
MAX_DRAFTS = 10


def _not_found(request: Request, order_id: str) -> HTMLResponse:
    return error_page(
        request,
        404,
        "Order not found",
        f"No order with id {order_id!r} is stored. Its events may not have been applied yet.",
    )


def _nonce(form: FormData) -> str | None:
    nonce = text(form, "nonce")
    return nonce if valid_nonce(nonce) else None


async def send(
    request: Request,
    order_id: str,
    nonce: str,
    action: str,
    what: str,
    event_type: EventType,
    data: WireModel,
) -> str | None:
    """Publish the event of one form submission, once; None when sent (now or before), else
    a sentence saying why it was not."""
    console = state(request)
    event = event_id(nonce, action, order_id)
    submission, new = console.submissions.start(nonce)
    if not new:
        problem = await outcome_of(submission)
        if problem is not None:
            # This page is the one the browser shows: it says what became of the first send.
            return problem
        flash(
            request,
            Flash(
                f"{what}: this form was already sent; it was not sent again.",
                "info",
                order_id,
                event,
            ),
        )
        return None
    problem = f"{what} was not sent. Try again."
    try:
        await console.backend.publish(event_type, order_id, data, event)
        problem = None
    except EventTooLarge as too_large:
        problem = f"{what} was not sent: {too_large}."
        return problem
    except Unavailable as unavailable:
        problem = (
            f"{what} may not have been sent: {unavailable}. It may still arrive; sending this"
            " form again unchanged is safe (the pipeline applies it once), but check the"
            " order's timeline before you change it."
            if unavailable.maybe_sent
            else f"{what} was not sent: {unavailable}. Try again."
        )
        return problem
    finally:
        # Whatever went wrong, the same form may be sent again.
        console.submissions.finish(nonce, submission, problem)
    flash(
        request, Flash(f"{what}: sent {event_type.value} (event {event}).", "info", order_id, event)
    )
    return None


def _bad_form(request: Request, order_id: str) -> HTMLResponse:
    return error_page(
        request,
        400,
        "This form cannot be used",
        "It is missing its one-time number; reload the page and try again.",
        _order_path(order_id),
    )


@router.get("/orders/{order_id:id}/state.json")
async def order_state(request: Request, order_id: str) -> Response:
    """The order's version and, for each `event` asked about, the pipeline's answer so far."""
    orders = state(request).backend.orders
    events: dict[str, Any] = {}
    version = await orders.version(order_id)
    if version is None:
        return JSONResponse({"error": "not found"}, status_code=404)
    for event in request.query_params.getlist("event")[:10]:
        found = await orders.event_state(order_id, event)
        if found is not None:
            version = found.version
            result = outcome(found.applied, found.entries)
            events[event] = {"state": result.state, "summary": result.summary}
    return JSONResponse({"version": version, "events": events})


@router.get("/orders/{order_id:id}/live")
async def order_live(request: Request, order_id: str) -> Response:
    """The refreshable part of the order page."""
    view = await _view(request, order_id)
    if view is None:
        return _not_found(request, order_id)
    return render(request, "_order_live.html", order_id=order_id, notices=False, view=view)


@router.post("/orders/{order_id:id}/capture")
async def capture_payment(request: Request, order_id: str) -> Response:
    form = await checked_form(request)
    nonce = _nonce(form)
    if nonce is None:
        return _bad_form(request, order_id)
    view = await _view(request, order_id)
    if view is None:
        return _not_found(request, order_id)
    if not can_capture(view.order):
        flash(
            request,
            Flash(
                "Nothing to capture: the payment is complete or the order is cancelled.",
                "warning",
                order_id,
            ),
        )
        return redirect(_order_path(order_id))
    data = capture(view.order)
    what = f"Approve and capture payment of {data.amount} {data.currency}"
    problem = await send(
        request, order_id, nonce, "capture", what, EventType.PAYMENT_CAPTURED, data
    )
    if problem:
        flash(request, Flash(problem, "error", order_id))
    return redirect(_order_path(order_id))


@router.get("/orders/{order_id:id}/fulfill")
async def fulfill_page(request: Request, order_id: str) -> Response:
    view = await _view(request, order_id)
    if view is None:
        return _not_found(request, order_id)
    if not view.can_fulfill:
        flash(
            request,
            Flash(
                "Nothing to fulfill: every line is fulfilled, or the order is "
                "cancelled or not placed yet.",
                "warning",
                order_id,
            ),
        )
        return redirect(_order_path(order_id))
    draft = session(request).drafts.pop(order_id, None)
    if draft is None:
        return _fulfill_form(request, view, prefilled(view.order))
    return _fulfill_form(request, view, from_draft(view.order, draft))


def _fulfill_form(
    request: Request, view: OrderView, form: Any, status_code: int = 200, nonce: str | None = None
) -> HTMLResponse:
    context: dict[str, Any] = {"view": view, "form": form}
    if nonce is not None:
        context["nonce"] = nonce  # the same form, so the same event once it is valid
    return render(
        request,
        "fulfill.html",
        status_code,
        order_id=view.order.id,
        section="orders",
        address_fields=list(ADDRESS_LABELS.items()),
        required_address=REQUIRED_ADDRESS,
        **context,
    )


@router.post("/orders/{order_id:id}/fulfill")
async def fulfill(request: Request, order_id: str) -> Response:
    raw = await checked_form(request)
    nonce = _nonce(raw)
    if nonce is None:
        return _bad_form(request, order_id)
    try:
        view = await _view(request, order_id)
    except STORE_OUTAGES as outage:
        # Kept for the next opening of the form: what was typed is not lost with this page.
        drafts = session(request).drafts
        drafts[order_id] = draft_of(raw)
        while len(drafts) > MAX_DRAFTS:
            drafts.pop(next(iter(drafts)))
        return store_away_page(
            request,
            outage,
            "What you typed is kept, except credentials: open the form again once the store"
            " answers.",
            f"{_order_path(order_id)}/fulfill",
            "Open the form again",
        )
    if view is None:
        return _not_found(request, order_id)
    form, request_data = fulfillment_request(view.order, raw, fulfillment_id(nonce, order_id))
    if request_data is None:
        return _fulfill_form(request, view, form, 422, nonce)
    lines = sum(line.quantity for line in request_data.lines or [])
    what = f"Fulfill {lines} item{'s' if lines != 1 else ''} as {request_data.fulfillment_id}"
    problem = await send(
        request, order_id, nonce, "fulfill", what, EventType.FULFILLMENT_REQUESTED, request_data
    )
    if problem:
        form.errors["send"] = problem
        form.credentials_dropped = form.credentials_dropped or bool(request_data.distributions)
        return _fulfill_form(request, view, form, 503, nonce)
    return redirect(_order_path(order_id))


def _completed(view: OrderView, fulfillment: str) -> FulfillmentView | None:
    found = view.fulfillment(fulfillment)
    return found if found is not None and found.completed else None


@router.get("/orders/{order_id:id}/fulfillments/{fulfillment:id}/cancel")
async def cancel_fulfillment_page(request: Request, order_id: str, fulfillment: str) -> Response:
    view = await _view(request, order_id)
    if view is None:
        return _not_found(request, order_id)
    if _completed(view, fulfillment) is None:
        flash(
            request,
            Flash(
                f"Fulfillment {fulfillment} is not completed: only a completed "
                "fulfillment can be cancelled.",
                "warning",
                order_id,
            ),
        )
        return redirect(_order_path(order_id))
    return _cancel_fulfillment_form(request, view, fulfillment)


def _cancel_fulfillment_form(
    request: Request, view: OrderView, fulfillment: str, **context: Any
) -> HTMLResponse:
    return render(
        request,
        "confirm.html",
        context.pop("status_code", 200),
        order_id=view.order.id,
        view=view,
        heading=f"Cancel fulfillment {fulfillment}",
        explanation=[
            f"The pipeline undoes fulfillment {fulfillment}: its quantities become unfulfilled "
            "again, and fulfillment.cancelled tells the platform (with the access to revoke, "
            "for digital lines).",
        ],
        action=f"{_order_path(view.order.id)}/fulfillments/{path_segment(fulfillment)}/cancel",
        button="Cancel fulfillment",
        **context,
    )


@router.post("/orders/{order_id:id}/fulfillments/{fulfillment:id}/cancel")
async def cancel_fulfillment_action(request: Request, order_id: str, fulfillment: str) -> Response:
    form = await checked_form(request)
    nonce = _nonce(form)
    if nonce is None:
        return _bad_form(request, order_id)
    view = await _view(request, order_id)
    if view is None:
        return _not_found(request, order_id)
    if _completed(view, fulfillment) is None:
        flash(
            request,
            Flash(
                f"Fulfillment {fulfillment} is not completed any more; nothing was sent.",
                "warning",
                order_id,
            ),
        )
        return redirect(_order_path(order_id))
    reason, messages = reason_of(form)
    if messages:
        return _cancel_fulfillment_form(
            request, view, fulfillment, status_code=422, messages=messages, nonce=nonce
        )
    problem = await send(
        request,
        order_id,
        nonce,
        "cancel-fulfillment",
        f"Cancel fulfillment {fulfillment}",
        EventType.FULFILLMENT_CANCEL_REQUESTED,
        cancel_fulfillment(fulfillment, form),
    )
    if problem:
        return _cancel_fulfillment_form(
            request,
            view,
            fulfillment,
            status_code=503,
            messages=[problem],
            nonce=nonce,
            reason=reason,
        )
    return redirect(_order_path(order_id))


def _shipped(view: OrderView, fulfillment: str) -> FulfillmentView | None:
    """The fulfillment if tracking updates and status reports apply to it."""
    found = view.fulfillment(fulfillment)
    return found if found is not None and found.can_follow_shipment else None


def _not_shipped(request: Request, order_id: str, fulfillment: str) -> Response:
    flash(
        request,
        Flash(
            f"Fulfillment {fulfillment} is not a completed shipment: its tracking "
            "and status cannot change.",
            "warning",
            order_id,
        ),
    )
    return redirect(_order_path(order_id))


def _shipment_page(
    request: Request,
    template: str,
    view: OrderView,
    fulfillment: FulfillmentView,
    values: Any,
    status_code: int = 200,
    nonce: str | None = None,
) -> HTMLResponse:
    context: dict[str, Any] = {} if nonce is None else {"nonce": nonce}
    return render(
        request,
        template,
        status_code,
        order_id=view.order.id,
        section="orders",
        view=view,
        fulfillment=fulfillment,
        values=values,
        errors=values.errors,
        shipment_statuses=[status.value for status in ShipmentStatus],
        **context,
    )


@router.get("/orders/{order_id:id}/fulfillments/{fulfillment:id}/tracking")
async def tracking_page(request: Request, order_id: str, fulfillment: str) -> Response:
    view = await _view(request, order_id)
    if view is None:
        return _not_found(request, order_id)
    shipped = _shipped(view, fulfillment)
    if shipped is None or shipped.fulfillment.shipment is None:
        return _not_shipped(request, order_id, fulfillment)
    values = tracking_prefilled(shipped.fulfillment.shipment)
    return _shipment_page(request, "tracking.html", view, shipped, values)


@router.post("/orders/{order_id:id}/fulfillments/{fulfillment:id}/tracking")
async def update_tracking(request: Request, order_id: str, fulfillment: str) -> Response:
    form = await checked_form(request)
    nonce = _nonce(form)
    if nonce is None:
        return _bad_form(request, order_id)
    view = await _view(request, order_id)
    if view is None:
        return _not_found(request, order_id)
    shipped = _shipped(view, fulfillment)
    if shipped is None or shipped.fulfillment.shipment is None:
        return _not_shipped(request, order_id, fulfillment)
    values, data = tracking_update(fulfillment, shipped.fulfillment.shipment, form)
    if data is not None:
        problem = await send(
            request,
            order_id,
            nonce,
            "update-tracking",
            f"Update tracking of {fulfillment}",
            EventType.FULFILLMENT_TRACKING_UPDATED,
            data,
        )
        if problem is None:
            return redirect(_order_path(order_id))
        values.errors["send"] = problem
    return _shipment_page(request, "tracking.html", view, shipped, values, 422, nonce)


@router.get("/orders/{order_id:id}/fulfillments/{fulfillment:id}/status")
async def status_page(request: Request, order_id: str, fulfillment: str) -> Response:
    view = await _view(request, order_id)
    if view is None:
        return _not_found(request, order_id)
    shipped = _shipped(view, fulfillment)
    if shipped is None:
        return _not_shipped(request, order_id, fulfillment)
    values = status_prefilled(shipped.fulfillment.shipment_status, datetime.now(UTC))
    return _shipment_page(request, "shipment_status.html", view, shipped, values)


@router.post("/orders/{order_id:id}/fulfillments/{fulfillment:id}/status")
async def report_status(request: Request, order_id: str, fulfillment: str) -> Response:
    form = await checked_form(request)
    nonce = _nonce(form)
    if nonce is None:
        return _bad_form(request, order_id)
    view = await _view(request, order_id)
    if view is None:
        return _not_found(request, order_id)
    shipped = _shipped(view, fulfillment)
    if shipped is None:
        return _not_shipped(request, order_id, fulfillment)
    values, data = status_report(fulfillment, form, datetime.now(UTC))
    if data is not None:
        problem = await send(
            request,
            order_id,
            nonce,
            "report-status",
            f"Report {label(data.status.value)} for {fulfillment}",
            EventType.SHIPMENT_STATUS_REPORTED,
            data,
        )
        if problem is None:
            return redirect(_order_path(order_id))
        values.errors["send"] = problem
    return _shipment_page(request, "shipment_status.html", view, shipped, values, 422, nonce)


def _cancel_order_form(request: Request, view: OrderView, **context: Any) -> HTMLResponse:
    completed = view.completed_fulfillments
    warning = (
        f"Fulfillments {', '.join(completed)} are completed: the pipeline refuses to cancel "
        "an order while a completed fulfillment is not undone. Cancel those fulfillments first."
        if completed
        else None
    )
    return render(
        request,
        "confirm.html",
        context.pop("status_code", 200),
        order_id=view.order.id,
        view=view,
        heading=f"Cancel order {view.title}",
        explanation=[
            "The pipeline cancels the order, and every fulfillment request still waiting, "
            "or refuses if the contract does not allow it. The answer appears on the order's "
            "page and timeline."
        ],
        warning=warning,
        action=f"{_order_path(view.order.id)}/cancel",
        button="Cancel order",
        **context,
    )


@router.get("/orders/{order_id:id}/cancel")
async def cancel_order_page(request: Request, order_id: str) -> Response:
    view = await _view(request, order_id)
    if view is None:
        return _not_found(request, order_id)
    if not view.can_cancel:
        flash(
            request,
            Flash("This order is already cancelled, or not placed yet.", "warning", order_id),
        )
        return redirect(_order_path(order_id))
    return _cancel_order_form(request, view)


@router.post("/orders/{order_id:id}/cancel")
async def cancel_order_action(request: Request, order_id: str) -> Response:
    form = await checked_form(request)
    nonce = _nonce(form)
    if nonce is None:
        return _bad_form(request, order_id)
    view = await _view(request, order_id)
    if view is None:
        return _not_found(request, order_id)
    reason, messages = reason_of(form)
    if messages:
        return _cancel_order_form(request, view, status_code=422, messages=messages, nonce=nonce)
    problem = await send(
        request,
        order_id,
        nonce,
        "cancel-order",
        f"Cancel order {view.title}",
        EventType.ORDER_CANCEL_REQUESTED,
        cancel_order(form),
    )
    if problem:
        return _cancel_order_form(
            request, view, status_code=503, messages=[problem], nonce=nonce, reason=reason
        )
    return redirect(_order_path(order_id))


@router.get("/orders/{order_id:id}")
async def order_page(request: Request, order_id: str) -> Response:
    view = await _view(request, order_id)
    if view is None:
        return _not_found(request, order_id)
    return render(request, "order.html", order_id=order_id, section="orders", view=view)
