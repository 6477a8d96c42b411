"""The operator's access-control app's HTTP API (contract/aca.md), mounted at ``/aca``.

A static API key as a bearer token, cursor-paged lists, ``application/problem+json`` errors
and an event feed whose answer always carries a cursor to resume from.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from types import MappingProxyType
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from doorfix.sandbox.api.auth import bearer
from doorfix.sandbox.api.runtime import (
    Answer,
    SandboxState,
    after_write,
    dropped,
    gate,
    json_body,
    state_of,
)
from doorfix.sandbox.faults.api import FaultKind
from doorfix.sandbox.world import model, rules, wire

JSON = dict[str, Any]

MAX_LIMIT = 500
DEFAULT_LIMIT = 100
#: problem titles by status (RFC 9457 asks for a short, stable summary)
_TITLES: Mapping[int, str] = MappingProxyType(
    {
        400: "Bad Request",
        401: "Unauthorized",
        404: "Not Found",
        409: "Conflict",
        429: "Too Many Requests",
        500: "Internal Server Error",
    }
)
#: HTTP status of each world error code
_STATUS: Mapping[str, int] = MappingProxyType({"not_found": 404, "no_booking": 409, "invalid": 400})


def envelope(status: int, code: str, detail: str) -> Response:
    """An ``application/problem+json`` error."""
    body = {
        "type": f"https://aca.sandbox.invalid/problems/{code}",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "code": code,
    }
    return JSONResponse(body, status_code=status, media_type="application/problem+json")


def _problem(status: int, code: str, detail: str) -> Answer:
    return Answer(envelope(status, code, detail))


async def _begin(request: Request, endpoint: str) -> SandboxState:
    """Apply API faults, then check the API key (reads)."""
    st = state_of(request)
    await gate(st, "aca", endpoint, envelope)
    _auth(request, st)
    return st


def _auth(request: Request, st: SandboxState) -> None:
    key = bearer(request.headers.get("authorization"))
    if key is None or not st.credentials.aca_ok(key):
        raise _problem(401, "unauthorized", "missing or invalid API key")


# --------------------------------------------------------------------------- cursors


def _encode(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode().rstrip("=")


def _decode(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, number = text.partition(":")
        offset = int(number)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise _problem(400, "invalid", "cursor is not one this API issued") from None
    if prefix != "o" or offset < 0:
        raise _problem(400, "invalid", "cursor is not one this API issued")
    return offset


def _limit(request: Request) -> int:
    raw = request.query_params.get("limit")
    if raw is None:
        return DEFAULT_LIMIT
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_LIMIT:
        raise _problem(400, "invalid", f"limit must be an integer from 1 to {MAX_LIMIT}")
    return value


def _list(request: Request, items: Sequence[Any], to_json: Callable[[Any], JSON]) -> Response:
    limit = _limit(request)
    cursor = request.query_params.get("cursor")
    offset = _decode(cursor) if cursor else 0
    chunk = items[offset : offset + limit]
    end = offset + len(chunk)
    next_cursor = _encode(end) if end < len(items) else None
    return JSONResponse({"data": [to_json(x) for x in chunk], "next_cursor": next_cursor})


def _time(request: Request, name: str) -> datetime | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        return wire.parse_iso(raw)
    except ValueError:
        raise _problem(400, "invalid", f"{name} must be an ISO 8601 time") from None


def _visit_spans(visit: model.Visit, at: datetime) -> bool:
    # a visit is on at ``at`` inside its span unless cancelled (an ended one was on back then)
    return visit.status != "cancelled" and visit.starts_at <= at < visit.ends_at


def _user(st: SandboxState, user_id: str) -> model.User:
    user = st.world.users.get(user_id)
    if user is None:
        raise _problem(404, "not_found", f"user {user_id} not found")
    return user


# --------------------------------------------------------------------------- endpoints


def _center_json(st: SandboxState, endpoint: str) -> Callable[[Any], JSON]:
    """How this answer shows a center (``null_release_date``: without its release date)."""
    if st.faults.on_page("aca", endpoint, FaultKind.NULL_RELEASE_DATE) is None:
        return wire.aca_center

    def without_release(center: Any) -> JSON:
        return {**wire.aca_center(center), "released_at": None}

    return without_release


async def centers(request: Request) -> Response:
    """``GET /api/v1/centers``."""
    st = await _begin(request, "centers")
    return _list(request, list(st.world.centers.values()), _center_json(st, "centers"))


async def center(request: Request) -> Response:
    """``GET /api/v1/centers/{id}``."""
    st = await _begin(request, "center")
    found = st.world.centers.get(request.path_params["center_id"])
    if found is None:
        raise _problem(404, "not_found", "center not found")
    return JSONResponse(_center_json(st, "center")(found))


async def inventories(request: Request) -> Response:
    """``GET /api/v1/inventories?center_id=``."""
    st = await _begin(request, "inventories")
    center_id = request.query_params.get("center_id")
    table = st.world.inventories
    rows = list(table.values()) if center_id is None else table.where("center_id", center_id)
    return _list(request, rows, wire.aca_inventory)


def _bookings_of(
    st: SandboxState, company_id: str | None, center_id: str | None
) -> list[model.Booking]:
    """The bookings a filter can match, in table order: those of the company or center given."""
    table = st.world.bookings
    if company_id is not None:
        return table.where("company_id", company_id)
    if center_id is not None:
        return table.where("center_id", center_id)
    return list(table.values())


async def bookings(request: Request) -> Response:
    """``GET /api/v1/bookings?company_id=&center_id=&active_at=``."""
    st = await _begin(request, "bookings")
    q = request.query_params
    company_id, center_id = q.get("company_id"), q.get("center_id")
    active_at = _time(request, "active_at")
    rows = [
        b
        for b in _bookings_of(st, company_id, center_id)
        if company_id in (None, b.company_id)
        and center_id in (None, b.center_id)
        and (active_at is None or rules.booking_active(b, active_at))
    ]
    return _list(request, rows, wire.aca_booking)


async def user(request: Request) -> Response:
    """``GET /api/v1/users/{id}``."""
    st = await _begin(request, "user")
    return JSONResponse(wire.aca_user(_user(st, request.path_params["user_id"])))


#: the user searches, each answered by the users table's index of the same name
_USER_KEYS = ("email", "tag", "clp_user_id", "cloud_personnel_id")


async def users(request: Request) -> Response:
    """``GET /api/v1/users?email=|tag=|clp_user_id=|cloud_personnel_id=``."""
    st = await _begin(request, "users")
    given = [k for k in _USER_KEYS if request.query_params.get(k)]
    if len(given) != 1:
        raise _problem(400, "invalid", f"exactly one of {', '.join(_USER_KEYS)} is required")
    key = given[0]
    value = request.query_params[key]
    # e-mail addresses match without regard to case (the index holds them casefolded)
    rows = st.world.users.where(key, value.casefold() if key == "email" else value)
    return _list(request, rows, wire.aca_user)


async def accesses(request: Request) -> Response:
    """``GET /api/v1/users/{id}/accesses``."""
    st = await _begin(request, "accesses")
    found = _user(st, request.path_params["user_id"])
    return _list(request, st.world.aca_accesses(found.id), wire.aca_access)


async def mobile_keys(request: Request) -> Response:
    """``GET /api/v1/users/{id}/mobile_keys``."""
    st = await _begin(request, "mobile_keys")
    found = _user(st, request.path_params["user_id"])
    rows = st.world.mobile_keys.where("user_id", found.id)
    return _list(request, rows, wire.aca_mobile_key)


async def access_matrix(request: Request) -> Response:
    """``PUT /api/v1/access_matrix/{user_id}/{lock_id}`` with ``{"enabled": bool}``."""
    st = state_of(request)
    drop_after = await gate(st, "aca", "access_matrix", envelope, write=True)
    _auth(request, st)
    user_id, lock_id = request.path_params["user_id"], request.path_params["lock_id"]
    body = await json_body(request)
    enabled = body.get("enabled") if isinstance(body, dict) else None
    status, outcome = 200, "ok"
    response: Response
    if not isinstance(enabled, bool):
        status, outcome = 400, "invalid"
        response = envelope(400, "invalid", 'the body must be {"enabled": true|false}')
    else:
        try:
            cell = st.world.set_access_matrix(user_id, lock_id, enabled)
            answer = {"user_id": user_id, "lock_id": lock_id, "enabled": cell.enabled}
            response = JSONResponse({**answer, "clp_sync": "queued"})
        except model.WorldError as exc:
            status, outcome = _STATUS.get(exc.code, 400), exc.code
            response = envelope(status, exc.code, str(exc))
    targets = {"user_id": user_id, "lock_id": lock_id}
    was_dropped = dropped(drop_after)
    params = {"enabled": enabled}
    st.record(
        "aca", "access_matrix", targets, params, status=status, outcome=outcome, dropped=was_dropped
    )
    await after_write(drop_after, "aca access_matrix")
    return response


async def events(request: Request) -> Response:
    """``GET /api/v1/events?after=&limit=``: always answers a cursor to resume from."""
    st = await _begin(request, "events")
    limit = _limit(request)
    after = request.query_params.get("after")
    feed = st.world.aca_feed
    offset = min(_decode(after), len(feed)) if after else 0
    if st.faults.on_page("aca", "events", FaultKind.EMPTY_PAGE) is not None:
        return JSONResponse({"data": [], "next_cursor": _encode(offset)})
    chunk = feed[offset : offset + limit]
    data = [wire.aca_event(e) for e in chunk]
    if data and st.faults.on_page("aca", "events", FaultKind.DUPLICATE_EVENTS) is not None:
        # a feed re-delivers: the previous page's last event comes again first
        data.insert(0, wire.aca_event(feed[offset - 1]) if offset else data[-1])
    return JSONResponse({"data": data, "next_cursor": _encode(offset + len(chunk))})


async def visits(request: Request) -> Response:
    """``GET /api/v1/visits?center_id=&active_at=&cloud_visitor_id=``."""
    st = await _begin(request, "visits")
    q = request.query_params
    center_id, visitor_id = q.get("center_id"), q.get("cloud_visitor_id")
    active_at = _time(request, "active_at")
    table = st.world.visits
    rows = [
        v
        for v in (table.values() if center_id is None else table.where("center_id", center_id))
        if center_id in (None, v.center_id)
        and visitor_id in (None, v.cloud_visitor_id)
        and (active_at is None or _visit_spans(v, active_at))
    ]
    return _list(request, rows, wire.aca_visit)


def routes() -> list[Route]:
    """ACA's routes, relative to its mount point."""
    return [
        Route("/api/v1/centers", centers, methods=["GET"]),
        Route("/api/v1/centers/{center_id}", center, methods=["GET"]),
        Route("/api/v1/inventories", inventories, methods=["GET"]),
        Route("/api/v1/bookings", bookings, methods=["GET"]),
        Route("/api/v1/users", users, methods=["GET"]),
        Route("/api/v1/users/{user_id}", user, methods=["GET"]),
        Route("/api/v1/users/{user_id}/accesses", accesses, methods=["GET"]),
        Route("/api/v1/users/{user_id}/mobile_keys", mobile_keys, methods=["GET"]),
        Route("/api/v1/access_matrix/{user_id}/{lock_id}", access_matrix, methods=["PUT"]),
        Route("/api/v1/events", events, methods=["GET"]),
        Route("/api/v1/visits", visits, methods=["GET"]),
    ]
