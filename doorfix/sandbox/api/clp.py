"""The lock platform's HTTP API (contract/clp.md): Connect API shapes plus the Larry endpoints.

Mounted at ``/clp``; its identity server (``POST /connect/token``) at ``/clp-identity``.
Errors are ``{"ErrorCode", "Message"}``; Sync Access's 409 also carries ``job_id``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from doorfix.sandbox.api.auth import CLP_SCOPE, CLP_TOKEN_TTL, basic, bearer
from doorfix.sandbox.api.clp_paging import (
    ClpRequestError,
    Timed,
    feed_page,
    feed_request,
    paged_list,
)
from doorfix.sandbox.api.runtime import Answer, SandboxState, after_write, dropped, gate, state_of
from doorfix.sandbox.faults.api import FaultKind
from doorfix.sandbox.world import model, wire

JSON = dict[str, Any]

#: (HTTP status, ErrorCode) of each semantic code
_CODES: Mapping[str, tuple[int, str]] = MappingProxyType(
    {
        "invalid_request": (400, "1100"),
        "invalid": (400, "1101"),
        "invalid_odata": (400, "1102"),
        "unauthorized": (401, "1500"),
        "operation_blocked": (403, "2203"),
        "no_subscription": (403, "2212"),
        "not_found": (404, "2202"),
        "sync_running": (409, "2301"),
        "internal": (500, "2201"),
    }
)


def envelope(status: int, code: str, message: str) -> Response:
    """An error as ``{"ErrorCode", "Message"}`` (429 has no documented code: its status is used)."""
    error_code = _CODES[code][1] if code in _CODES else str(status)
    return JSONResponse({"ErrorCode": error_code, "Message": message}, status_code=status)


def _error(code: str, message: str, **extra: Any) -> Answer:
    status, error_code = _CODES[code]
    body = {"ErrorCode": error_code, "Message": message, **extra}
    return Answer(JSONResponse(body, status_code=status))


async def _begin(request: Request, endpoint: str) -> SandboxState:
    st = state_of(request)
    await gate(st, "clp", endpoint, envelope)
    _auth(request, st)
    return st


def _auth(request: Request, st: SandboxState) -> None:
    token = bearer(request.headers.get("authorization"))
    if not st.tokens.valid("clp", token, st.faults.token_generation("clp")):
        raise _error("unauthorized", "missing, unknown or expired access token")


def _site(st: SandboxState, request: Request) -> model.Site:
    site = st.world.sites.get(request.path_params["site_id"])
    if site is None:
        raise _error("not_found", "site not found")
    return site


def _in_site(table: dict[str, Any], key: str, site: model.Site, what: str) -> Any:
    item = table.get(key)
    if item is None or item.site_id != site.id:
        raise _error("not_found", f"{what} not found")
    return item


def _paged(request: Request, items: Sequence[Any], to_json: Callable[[Any], JSON]) -> Response:
    try:
        return paged_list(request, items, to_json)
    except ClpRequestError as exc:
        raise _error("invalid_odata", str(exc)) from None


# --------------------------------------------------------------------------- identity


async def token(request: Request) -> Response:
    """``POST /connect/token`` (identity server): Basic client auth, client credentials."""
    st = state_of(request)
    await gate(st, "clp", "token", envelope, token=True)
    form = {k: v[0] for k, v in parse_qs((await request.body()).decode("latin-1")).items()}
    client = basic(request.headers.get("authorization"))
    if client is None or not st.credentials.clp_ok(*client):
        return JSONResponse({"error": "invalid_client"}, status_code=400)
    if form.get("grant_type") != "client_credentials":
        return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
    if form.get("scope") != CLP_SCOPE:
        return JSONResponse({"error": "invalid_scope"}, status_code=400)
    access = st.tokens.issue("clp", CLP_TOKEN_TTL, st.faults.token_generation("clp"))
    body = {"access_token": access, "token_type": "Bearer", "expires_in": CLP_TOKEN_TTL}
    return JSONResponse(body)


# --------------------------------------------------------------------------- v1.2


async def sites(request: Request) -> Response:
    """``GET /v1.2/sites``: a bare array."""
    st = await _begin(request, "sites")
    return JSONResponse([wire.clp_site(s) for s in st.world.sites.values()])


def _lock_json(st: SandboxState, lock: model.Lock) -> JSON:
    return wire.clp_lock(lock, st.world.iqs[lock.iq_id])


async def locks(request: Request) -> Response:
    """``GET /v1.2/sites/{site}/locks``."""
    st = await _begin(request, "locks")
    site = _site(st, request)
    rows = st.world.locks.where("site_id", site.id)
    return _paged(request, rows, lambda x: _lock_json(st, x))


async def lock(request: Request) -> Response:
    """``GET /v1.2/sites/{site}/locks/{lock}``."""
    st = await _begin(request, "lock")
    found = _in_site(st.world.locks, request.path_params["lock_id"], _site(st, request), "lock")
    return JSONResponse(_lock_json(st, found))


async def iq(request: Request) -> Response:
    """``GET /v1.2/sites/{site}/iqs/{iq}``."""
    st = await _begin(request, "iq")
    found = _in_site(st.world.iqs, request.path_params["iq_id"], _site(st, request), "IQ")
    return JSONResponse(wire.clp_iq(found))


async def users(request: Request) -> Response:
    """``GET /v1.2/sites/{site}/users``: a bare array."""
    st = await _begin(request, "users")
    site = _site(st, request)
    rows = st.world.site_users.where("site_id", site.id)
    return JSONResponse([wire.clp_site_user(u) for u in rows])


async def keys(request: Request) -> Response:
    """``GET /v1.2/sites/{site}/users/{site_user_id}/keys``."""
    st = await _begin(request, "keys")
    site = _site(st, request)
    site_user = _in_site(st.world.site_users, request.path_params["site_user_id"], site, "user")
    rows = st.world.keys.where("site_user_id", site_user.id)
    return _paged(request, rows, wire.clp_key)


async def access_groups(request: Request) -> Response:
    """``GET /v1.2/sites/{site}/access_groups``."""
    st = await _begin(request, "access_groups")
    site = _site(st, request)
    rows = st.world.clp_access_groups.where("site_id", site.id)
    return _paged(request, rows, wire.clp_access_group)


async def access_group_users(request: Request) -> Response:
    """``GET /v1.2/sites/{site}/access_groups/{ag}/users``: ``{user_id}`` rows."""
    st = await _begin(request, "access_group_users")
    site = _site(st, request)
    group = _in_site(st.world.clp_access_groups, request.path_params["ag_id"], site, "group")
    rows = sorted(group.user_ids)
    return _paged(request, rows, lambda user_id: {"user_id": user_id})


# --------------------------------------------------------------------------- v1.1 feeds


async def _feed(
    request: Request, endpoint: str, pick: Callable[[SandboxState, str], Sequence[Timed]]
) -> Response:
    st = await _begin(request, endpoint)
    site = _site(st, request)
    try:
        start, top = feed_request(request)
    except ClpRequestError as exc:
        code = "invalid_odata" if exc.code == "1102" else "invalid_request"
        raise _error(code, str(exc)) from None
    if st.faults.on_page("clp", endpoint, FaultKind.EMPTY_PAGE) is not None:
        return JSONResponse({"items": [], "continuation_token": start.token(top)})
    page, after = feed_page(pick(st, site.id), start, top)
    to_json: Callable[[Any], JSON] = wire.clp_entry if endpoint == "entries" else wire.clp_incident
    body = {
        "items": [to_json(row) for row in page],
        "continuation_token": None if after is None else after.token(top),
    }
    return JSONResponse(body)


async def entries(request: Request) -> Response:
    """``GET /v1.1/sites/{site}/entries``: continuation-token paged."""
    return await _feed(request, "entries", lambda st, site_id: st.world.entries.get(site_id, []))


async def incidents(request: Request) -> Response:
    """``GET /v1.1/sites/{site}/incidents``: continuation-token paged."""
    return await _feed(
        request, "incidents", lambda st, site_id: st.world.incidents.get(site_id, [])
    )


# --------------------------------------------------------------------------- Larry


async def larry_access(request: Request) -> Response:
    """``GET /larry/v1/sites/{site}/access?user_id=&lock_id=``."""
    st = await _begin(request, "access")
    site = _site(st, request)
    user_id = request.query_params.get("user_id")
    lock_id = request.query_params.get("lock_id")
    if not user_id or not lock_id:
        raise _error("invalid_request", "user_id and lock_id are required")
    try:
        result = st.world.larry_access(site.id, user_id, lock_id)
    except model.WorldError as exc:
        raise _world_error(exc) from None
    return JSONResponse(wire.clp_larry_access(result))


async def sync_access(request: Request) -> Response:
    """``POST /larry/v1/sites/{site}/collections/{collection}/sync_access``: 202 with a job."""
    st = state_of(request)
    drop_after = await gate(st, "clp", "sync_access", envelope, write=True)
    _auth(request, st)
    site_id = request.path_params["site_id"]
    collection_id = request.path_params["collection_id"]
    targets = {"site_id": site_id, "collection_id": collection_id}
    try:
        job = _start_sync(st, site_id, collection_id)
        response: Response = JSONResponse(
            {"job_id": job.job_id, "state": job.state}, status_code=202
        )
        outcome = "ok"
    except model.WorldError as exc:
        response = _world_error(exc).response
        outcome = exc.code
    st.record(
        "clp",
        "sync_access",
        targets,
        {},
        status=response.status_code,
        outcome=outcome,
        dropped=dropped(drop_after),
    )
    await after_write(drop_after, "clp sync_access")
    return response


async def sync_job(request: Request) -> Response:
    """``GET /larry/v1/sites/{site}/sync_jobs/{job}``."""
    st = await _begin(request, "sync_job")
    job = _in_site(st.world.sync_jobs, request.path_params["job_id"], _site(st, request), "job")
    return JSONResponse(wire.clp_sync_job(job))


def _start_sync(st: SandboxState, site_id: str, collection_id: str) -> model.SyncJob:
    if site_id not in st.world.sites:
        raise model.WorldError("not_found", f"site {site_id} not found")
    return st.world.start_sync_access(site_id, collection_id)


def _world_error(exc: model.WorldError) -> Answer:
    code = exc.code if exc.code in _CODES else "invalid"
    extra = {"job_id": exc.job_id} if exc.job_id is not None else {}
    return _error(code, str(exc), **extra)


def identity_routes() -> list[Route]:
    """The identity server's routes, relative to its mount point."""
    return [Route("/connect/token", token, methods=["POST"])]


def routes() -> list[Route]:
    """CLP's routes, relative to its mount point."""
    site = "/v1.2/sites/{site_id}"
    larry = "/larry/v1/sites/{site_id}"
    return [
        Route("/v1.2/sites", sites, methods=["GET"]),
        Route(f"{site}/locks", locks, methods=["GET"]),
        Route(f"{site}/locks/{{lock_id}}", lock, methods=["GET"]),
        Route(f"{site}/iqs/{{iq_id}}", iq, methods=["GET"]),
        Route(f"{site}/users", users, methods=["GET"]),
        Route(f"{site}/users/{{site_user_id}}/keys", keys, methods=["GET"]),
        Route(f"{site}/access_groups", access_groups, methods=["GET"]),
        Route(f"{site}/access_groups/{{ag_id}}/users", access_group_users, methods=["GET"]),
        Route("/v1.1/sites/{site_id}/entries", entries, methods=["GET"]),
        Route("/v1.1/sites/{site_id}/incidents", incidents, methods=["GET"]),
        Route(f"{larry}/access", larry_access, methods=["GET"]),
        Route(f"{larry}/collections/{{collection_id}}/sync_access", sync_access, methods=["POST"]),
        Route(f"{larry}/sync_jobs/{{job_id}}", sync_job, methods=["GET"]),
    ]
