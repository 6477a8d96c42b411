"""The intercom/door cloud's HTTP API (contract/cloud.md), mounted at ``/cloud``.

One token endpoint and one command endpoint. Business errors answer HTTP 200 with
``success: false``; every command response echoes the request ``id`` in ``X-Request-Id``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, get_args
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from doorfix.sandbox.api.auth import CLOUD_TOKEN_TTL, bearer
from doorfix.sandbox.api.runtime import (
    Answer,
    Envelope,
    SandboxState,
    after_write,
    dropped,
    gate,
    json_body,
    state_of,
)
from doorfix.sandbox.world import model, wire
from doorfix.sandbox.world.tables import Table

JSON = dict[str, Any]
Param = dict[str, Any]

_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
_CREDENTIAL_TYPES = frozenset(get_args(model.CredentialType))
#: a page size past this is refused with invalid_param (contract: 1 to 500)
MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 100


class CloudError(Exception):
    """A business refusal answered as HTTP 200 ``success: false``."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


def envelope_at(st: SandboxState) -> Envelope:
    """Errors in the cloud's envelope, stamped with ``st``'s clock (business errors: 200)."""

    def envelope(status: int, code: str, message: str) -> Response:
        cloud_code = {"internal": "internal_error"}.get(code, code)
        return JSONResponse(_failure(st, cloud_code, message), status_code=status)

    return envelope


def _failure(st: SandboxState, code: str, message: str) -> JSON:
    error = {"code": code, "message": message}
    return {"success": False, "timestamp": wire.epoch(st.now()), "error": error}


# --------------------------------------------------------------------------- params


def _str(param: Param, name: str) -> str:
    value = param.get(name)
    if not isinstance(value, str) or not value:
        raise CloudError("invalid_param", f"param.{name} must be a non-empty string")
    return value


def _int(param: Param, name: str, lo: int, hi: int | None = None) -> int:
    value = param.get(name)
    # bool is an int subclass in Python; the wire has no such confusion
    if not isinstance(value, int) or isinstance(value, bool) or value < lo:
        raise CloudError("invalid_param", f"param.{name} must be an integer >= {lo}")
    if hi is not None and value > hi:
        raise CloudError("invalid_param", f"param.{name} must be an integer <= {hi}")
    return value


def _page(param: Param) -> tuple[int, int]:
    index = _int(param, "page_index", 1) if "page_index" in param else 1
    size = _int(param, "page_size", 1, MAX_PAGE_SIZE) if "page_size" in param else DEFAULT_PAGE_SIZE
    return index, size


def _paged(param: Param, items: Sequence[Any], to_json: Callable[[Any], JSON]) -> JSON:
    index, size = _page(param)
    chunk = items[(index - 1) * size : index * size]
    return {"total": len(items), "page_index": index, "items": [to_json(x) for x in chunk]}


# --------------------------------------------------------------------------- lookups


def _project(st: SandboxState, param: Param) -> model.Project:
    project_id = _str(param, "project_id")
    project = st.world.projects.get(project_id)
    if project is None:
        raise CloudError("not_found", f"project {project_id} not found")
    return project


def _owned(table: dict[str, Any], key: str, project: model.Project, what: str) -> Any:
    item = table.get(key)
    if item is None or item.project_id != project.project_id:
        raise CloudError("not_found", f"{what} {key} not found")
    return item


def _in_project(table: Table[Any], project: model.Project) -> list[Any]:
    return table.where("project_id", project.project_id)


# --------------------------------------------------------------------------- reads


def _get_project_info(st: SandboxState, p: Param) -> Any:
    return wire.cloud_project(_project(st, p))


def _get_door_log(st: SandboxState, p: Param) -> Any:
    project = _project(st, p)
    start_time = _int(p, "start_time", 0)
    index, size = _page(p)
    # the rows come as JSON text straight from the store's columns (see doorlogs.page_json)
    total, items = st.world.door_log_page_json(project.project_id, start_time, index, size)
    return {"total": total, "page_index": index, "items": wire.RawJSON(items)}


def _get_door_list(st: SandboxState, p: Param) -> Any:
    return _paged(p, _in_project(st.world.doors, _project(st, p)), wire.cloud_door)


def _get_door_detail(st: SandboxState, p: Param) -> Any:
    door = _owned(st.world.doors, _str(p, "door_id"), _project(st, p), "door")
    return wire.cloud_door(door)


def _get_personnel_detail(st: SandboxState, p: Param) -> Any:
    person = _owned(st.world.personnel, _str(p, "personnel_id"), _project(st, p), "personnel")
    return wire.cloud_personnel(person)


def _find_personnel(st: SandboxState, p: Param) -> Any:
    project = _project(st, p)
    given = [k for k in ("external_id", "email", "credential_value") if p.get(k) is not None]
    if len(given) != 1:
        raise CloudError(
            "invalid_param", "exactly one of external_id, email, credential_value is required"
        )
    key = given[0]
    value = _str(p, key)
    people: list[model.Personnel] = _in_project(st.world.personnel, project)
    if key == "external_id":
        found = [x for x in people if x.external_id == value]
    elif key == "email":
        found = [x for x in people if x.email.casefold() == value.casefold()]
    else:
        found = [x for x in people if any(c.value == value for c in x.credentials)]
    return _paged(p, found, wire.cloud_personnel)


def _get_access_group_list(st: SandboxState, p: Param) -> Any:
    groups = _in_project(st.world.cloud_access_groups, _project(st, p))
    return _paged(p, groups, wire.cloud_access_group)


def _get_user_group_list(st: SandboxState, p: Param) -> Any:
    return _paged(p, _in_project(st.world.user_groups, _project(st, p)), wire.cloud_user_group)


def _get_holiday_list(st: SandboxState, p: Param) -> Any:
    return _paged(p, _in_project(st.world.holidays, _project(st, p)), wire.cloud_holiday)


def _get_visitor_detail(st: SandboxState, p: Param) -> Any:
    visitor = _owned(st.world.visitors, _str(p, "visitor_id"), _project(st, p), "visitor")
    return wire.cloud_visitor(visitor, st.now())


# --------------------------------------------------------------------------- writes


def _renew_door_license(st: SandboxState, p: Param) -> Any:
    project = _project(st, p)
    door_id = _str(p, "door_id")
    months = _int(p, "months", 1, 12)
    return wire.cloud_door(st.world.renew_door_license(project.project_id, door_id, months))


def _add_personnel_credential(st: SandboxState, p: Param) -> Any:
    project = _project(st, p)
    personnel_id = _str(p, "personnel_id")
    kind = _str(p, "type")
    if kind not in _CREDENTIAL_TYPES:
        raise CloudError("invalid_param", f"param.type must be one of {sorted(_CREDENTIAL_TYPES)}")
    value = _str(p, "value")
    person = st.world.add_personnel_credential(project.project_id, personnel_id, kind, value)
    return wire.cloud_personnel(person)


def _add_access_group_member(st: SandboxState, p: Param) -> Any:
    project = _project(st, p)
    group_id = _str(p, "access_group_id")
    personnel_id = _str(p, "personnel_id")
    group = st.world.add_access_group_member(project.project_id, group_id, personnel_id)
    return wire.cloud_access_group(group)


def _set_holiday_working_hours(st: SandboxState, p: Param) -> Any:
    project = _project(st, p)
    holiday_id = _str(p, "holiday_id")
    enabled = p.get("enabled")
    if not isinstance(enabled, bool):
        raise CloudError("invalid_param", "param.enabled must be a boolean")
    start, end = _str(p, "start_time"), _str(p, "end_time")
    if not (_HHMM.match(start) and _HHMM.match(end)):
        raise CloudError("invalid_param", "param.start_time and end_time must be HH:MM")
    holiday = st.world.set_holiday_working_hours(
        project.project_id, holiday_id, enabled, start, end
    )
    return wire.cloud_holiday(holiday)


def _create_visitor_temp_key(st: SandboxState, p: Param) -> Any:
    project = _project(st, p)
    visitor_id = _str(p, "visitor_id")
    door_ids = p.get("door_ids")
    if (
        not isinstance(door_ids, list)
        or not door_ids
        or not all(isinstance(d, str) and d for d in door_ids)
    ):
        raise CloudError("invalid_param", "param.door_ids must be a non-empty list of door ids")
    start = datetime.fromtimestamp(_int(p, "start_time", 0), UTC)
    finish = datetime.fromtimestamp(_int(p, "finish_time", 0), UTC)
    if finish <= start:
        raise CloudError("invalid_param", "param.finish_time must be after start_time")
    key = st.world.create_visitor_temp_key(project.project_id, visitor_id, door_ids, start, finish)
    return wire.cloud_temp_key(key, st.now())


@dataclass(frozen=True, slots=True)
class Command:
    """One command of the manager-commands endpoint."""

    run: Callable[[SandboxState, Param], Any]
    write: bool = False


COMMANDS: Mapping[str, Command] = MappingProxyType(
    {
        "get_project_info": Command(_get_project_info),
        "get_door_log": Command(_get_door_log),
        "get_door_list": Command(_get_door_list),
        "get_door_detail": Command(_get_door_detail),
        "renew_door_license": Command(_renew_door_license, write=True),
        "get_personnel_detail": Command(_get_personnel_detail),
        "find_personnel": Command(_find_personnel),
        "add_personnel_credential": Command(_add_personnel_credential, write=True),
        "get_access_group_list": Command(_get_access_group_list),
        "add_access_group_member": Command(_add_access_group_member, write=True),
        "get_user_group_list": Command(_get_user_group_list),
        "get_holiday_list": Command(_get_holiday_list),
        "set_holiday_working_hours": Command(_set_holiday_working_hours, write=True),
        "get_visitor_detail": Command(_get_visitor_detail),
        "create_visitor_temp_key": Command(_create_visitor_temp_key, write=True),
    }
)


# --------------------------------------------------------------------------- endpoints


async def token(request: Request) -> Response:
    """``POST /oauth/token``: client credentials in a form body."""
    st = state_of(request)
    await gate(st, "cloud", "token", envelope_at(st), token=True)
    form = {k: v[0] for k, v in parse_qs((await request.body()).decode("latin-1")).items()}
    if form.get("grant_type") != "client_credentials":
        return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
    if not st.credentials.cloud_ok(form.get("client_id", ""), form.get("client_secret", "")):
        return JSONResponse({"error": "invalid_client"}, status_code=401)
    access = st.tokens.issue("cloud", CLOUD_TOKEN_TTL, st.faults.token_generation("cloud"))
    body = {"access_token": access, "token_type": "Bearer", "expires_in": CLOUD_TOKEN_TTL}
    return JSONResponse(body)


async def manager_commands(request: Request) -> Response:
    """``POST /api/v1.0/invoke/open-ability/method/manager-commands``: run one command."""
    st = state_of(request)
    body = await json_body(request)
    body = body if isinstance(body, dict) else {}
    request_id = body.get("id")
    headers = {"X-Request-Id": str(request_id)} if request_id is not None else {}
    name = body.get("command")
    command = COMMANDS.get(name) if isinstance(name, str) else None
    endpoint = name if command is not None and isinstance(name, str) else "unknown"
    write = command is not None and command.write
    try:
        drop_after = await gate(st, "cloud", endpoint, envelope_at(st), write=write)
    except Answer as fault:
        fault.response.headers.update(headers)
        raise
    if not st.tokens.valid(
        "cloud", bearer(request.headers.get("authorization")), st.faults.token_generation("cloud")
    ):
        unauthorized = _failure(st, "unauthorized", "missing, unknown or expired access token")
        return JSONResponse(unauthorized, status_code=401, headers=headers)
    param = body.get("param")
    try:
        result = _run(st, name, command, param)
        outcome = "ok"
        answer = {"success": True, "timestamp": wire.epoch(st.now()), "result": result}
    except (CloudError, model.WorldError) as exc:
        outcome, answer = exc.code, _failure(st, exc.code, str(exc))
    if write and isinstance(param, dict):
        _record(st, str(name), param, outcome, dropped=dropped(drop_after))
    await after_write(drop_after, f"cloud {name}")
    return _answer(answer, headers)


def _answer(answer: JSON, headers: dict[str, str]) -> Response:
    """A command's answer as ``JSONResponse`` would send it, door-log rows inlined as they are."""
    return Response(wire.dumps(answer), headers=headers, media_type=JSONResponse.media_type)


def _run(st: SandboxState, name: object, command: Command | None, param: object) -> Any:
    if command is None:
        raise CloudError("invalid_param", f"unknown command {name!r}")
    if not isinstance(param, dict):
        raise CloudError("invalid_param", "param must be an object")
    return command.run(st, param)


def _record(st: SandboxState, name: str, param: Param, outcome: str, *, dropped: bool) -> None:
    targets = {k: v for k, v in param.items() if k.endswith("_id")}
    rest = {k: v for k, v in param.items() if not k.endswith("_id")}
    st.record("cloud", name, targets, rest, status=200, outcome=outcome, dropped=dropped)


def routes() -> list[Route]:
    """The cloud's routes, relative to its mount point."""
    return [
        Route("/oauth/token", token, methods=["POST"]),
        Route(
            "/api/v1.0/invoke/open-ability/method/manager-commands",
            manager_commands,
            methods=["POST"],
        ),
    ]
