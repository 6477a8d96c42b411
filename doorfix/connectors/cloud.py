"""CloudClient: the intercom/door cloud's command API (``contract/cloud.md``), typed.

Every call is ``POST …/manager-commands`` with ``{"command", "id", "param"}``; the command
name is the endpoint named in errors and logs. An HTTP-200 ``success: false`` answer is a
business refusal and becomes :class:`~doorfix.errors.PermanentError` with the vendor code;
the layer below handles every other status.

Write rules (the contract: writes are not idempotent on the server unless it says so):

- ``renew_door_license`` bills each time it runs, so it is sent with ``CallRule.UNSAFE`` and,
  when the outcome is unknown, the door is re-read before anything else; it is re-sent at
  most once, and never without a re-read in between.
- ``add_personnel_credential`` and ``create_visitor_temp_key`` are ``UNSAFE`` and never
  re-sent; an unknown outcome is settled by re-reading the person or visitor.
- ``add_access_group_member`` is ``IDEMPOTENT``: the contract says adding a member twice is a
  no-op, so a repeat after an unknown outcome cannot change anything twice.
- ``set_holiday_working_hours`` is ``IDEMPOTENT``: it sets absolute values, so a repeat
  leaves the holiday as one call would.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any, Generic, TypeVar
from uuid import uuid4

import httpx
import structlog
from pydantic import BaseModel, ConfigDict, Json, TypeAdapter, ValidationError

from doorfix.connectors._client import ClientBase
from doorfix.connectors._decode import decode
from doorfix.connectors._http import CallRule
from doorfix.connectors._paging import SkipHandler, decode_page, iter_page_index
from doorfix.connectors.models import epoch_seconds
from doorfix.connectors.models.cloud import (
    AccessGroup,
    BusinessError,
    CredentialType,
    Door,
    DoorLog,
    Envelope,
    Holiday,
    Page,
    Personnel,
    ProjectInfo,
    TempKey,
    UserGroup,
    Visitor,
)
from doorfix.errors import (
    ConnectorError,
    ContractError,
    PermanentError,
    System,
    TransientError,
    WriteOutcomeUnknown,
)

log = structlog.get_logger("doorfix.connectors.cloud")

SYSTEM: System = "cloud"
COMMANDS_PATH = "/api/v1.0/invoke/open-ability/method/manager-commands"
#: the contract's largest page: fewest round trips on the door-log feed
PAGE_SIZE = 500
#: a renewal is sent at most this many times per call, each after a re-read
RENEWAL_SENDS = 2

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class _PagedAdapters(Generic[T]):
    strict: TypeAdapter[Envelope[Page[T]]]
    item_json: TypeAdapter[T]


_LENIENT_PAGE: TypeAdapter[Envelope[Page[Any]]] = TypeAdapter(Envelope[Page[Any]])
_PROJECT = TypeAdapter(Envelope[ProjectInfo])
_DOOR = TypeAdapter(Envelope[Door])
_PERSONNEL = TypeAdapter(Envelope[Personnel])
_ACCESS_GROUP = TypeAdapter(Envelope[AccessGroup])
_HOLIDAY = TypeAdapter(Envelope[Holiday])
_VISITOR = TypeAdapter(Envelope[Visitor])
_TEMP_KEY = TypeAdapter(Envelope[TempKey])
_DOOR_LOGS = _PagedAdapters(TypeAdapter(Envelope[Page[DoorLog]]), TypeAdapter(Json[DoorLog]))
_DOORS = _PagedAdapters(TypeAdapter(Envelope[Page[Door]]), TypeAdapter(Json[Door]))
_PEOPLE = _PagedAdapters(TypeAdapter(Envelope[Page[Personnel]]), TypeAdapter(Json[Personnel]))
_ACCESS_GROUPS = _PagedAdapters(
    TypeAdapter(Envelope[Page[AccessGroup]]), TypeAdapter(Json[AccessGroup])
)
_USER_GROUPS = _PagedAdapters(TypeAdapter(Envelope[Page[UserGroup]]), TypeAdapter(Json[UserGroup]))
_HOLIDAYS = _PagedAdapters(TypeAdapter(Envelope[Page[Holiday]]), TypeAdapter(Json[Holiday]))


class _ErrorBody(BaseModel):
    """A non-200 error body (``401 {"success": false, "error": {…}}``), read leniently."""

    model_config = ConfigDict(extra="ignore")

    error: BusinessError | None = None


_ERROR_BODY = TypeAdapter(_ErrorBody)


def vendor_error(response: httpx.Response) -> tuple[str | None, str]:
    """The cloud's ``(error.code, error.message)`` of an error response; never raises."""
    fallback = f"HTTP {response.status_code} {response.reason_phrase}".strip()
    try:
        body = _ERROR_BODY.validate_json(response.content)
    except ValidationError:
        return None, fallback
    if body.error is None:
        return None, fallback
    return body.error.code, body.error.message or fallback


def license_renewed(before: Door, after: Door) -> bool:
    """Whether ``after`` shows a renewal since ``before``: a later expiry, or newly active."""
    old, new = before.license, after.license
    if new.status == "active" and old.status != "active":
        return True
    return new.expires_at is not None and (
        old.expires_at is None or new.expires_at > old.expires_at
    )


def _unwrap(envelope: Envelope[R], *, command: str, status: int) -> R:
    if not envelope.success:
        if envelope.error is None:
            raise ContractError(
                "success is false without an error", system=SYSTEM, endpoint=command, field="error"
            )
        raise PermanentError(
            envelope.error.message or envelope.error.code,
            system=SYSTEM,
            endpoint=command,
            status=status,
            code=envelope.error.code,
        )
    if envelope.result is None:
        raise ContractError(
            "success is true without a result", system=SYSTEM, endpoint=command, field="result"
        )
    return envelope.result


def _exactly_one(candidates: Mapping[str, str | None]) -> tuple[str, str]:
    given = [(name, value) for name, value in candidates.items() if value is not None]
    if len(given) != 1:
        raise ValueError(f"give exactly one of {', '.join(candidates)}")
    return given[0]


class CloudClient(ClientBase):
    """Typed async client of the cloud's command API, over one :class:`HttpLayer`."""

    MAX_PAGE_SIZE = PAGE_SIZE

    # ------------------------------------------------------------------ plumbing

    async def _send(
        self, command: str, param: Mapping[str, object], rule: CallRule
    ) -> httpx.Response:
        # a fresh request id per logical call; the layer's retries repeat the same body
        body = {"command": command, "id": uuid4().hex, "param": dict(param)}
        return await self._layer.request(
            "POST", COMMANDS_PATH, endpoint=command, json=body, rule=rule
        )

    async def _call(
        self,
        command: str,
        param: Mapping[str, object],
        adapter: TypeAdapter[Envelope[R]],
        *,
        rule: CallRule = CallRule.READ,
    ) -> R:
        response = await self._send(command, param, rule)
        envelope = decode(
            adapter,
            response.content,
            system=SYSTEM,
            endpoint=command,
            write=rule is not CallRule.READ,
        )
        return _unwrap(envelope, command=command, status=response.status_code)

    def _iter(
        self,
        command: str,
        param: Mapping[str, object],
        adapters: _PagedAdapters[T],
        on_skip: SkipHandler | None,
    ) -> AsyncIterator[T]:
        skip = on_skip or self._on_skip

        async def send(page_index: int) -> httpx.Response:
            paged = {**param, "page_size": self._page_size, "page_index": page_index}
            return await self._send(command, paged, CallRule.READ)

        def decode_one(page_index: int, response: httpx.Response) -> tuple[Sequence[T], int, int]:
            decoded = decode_page(
                response.content,
                strict=adapters.strict,
                lenient=_LENIENT_PAGE,
                item_json=adapters.item_json,
                items_at=("result", "items"),
                system=SYSTEM,
                endpoint=command,
                on_skip=skip,
            )
            page = _unwrap(decoded.page, command=command, status=response.status_code)
            if page.page_index != page_index:
                raise ContractError(
                    f"asked for page {page_index}, got page {page.page_index}",
                    system=SYSTEM,
                    endpoint=command,
                    field="result.page_index",
                )
            return page.items, decoded.wire_items, page.total

        return iter_page_index(send, decode_one, page_size=self._page_size)

    # ------------------------------------------------------------------ project, logs, doors

    async def get_project_info(self, project_id: str) -> ProjectInfo:
        """The project, its time zone and the account's permissions (``can_pay``)."""
        return await self._call("get_project_info", {"project_id": project_id}, _PROJECT)

    def iter_door_logs(
        self, project_id: str, start_time: datetime, *, on_skip: SkipHandler | None = None
    ) -> AsyncIterator[DoorLog]:
        """Door logs captured at or after ``start_time`` (whole seconds), ascending ``log_id``."""
        param = {"project_id": project_id, "start_time": epoch_seconds(start_time)}
        return self._iter("get_door_log", param, _DOOR_LOGS, on_skip)

    def iter_doors(
        self, project_id: str, *, on_skip: SkipHandler | None = None
    ) -> AsyncIterator[Door]:
        """Every door of the project, with its device and license."""
        return self._iter("get_door_list", {"project_id": project_id}, _DOORS, on_skip)

    async def get_door_detail(self, project_id: str, door_id: str) -> Door:
        """One door, with its device and license."""
        param = {"project_id": project_id, "door_id": door_id}
        return await self._call("get_door_detail", param, _DOOR)

    async def renew_door_license(
        self, project_id: str, door_id: str, months: int, *, before: Door | None = None
    ) -> Door:
        """Renew a door's license for ``months`` (1-12); bills once, never twice blindly.

        ``before`` is the door as last read (read here when not given). When a send fails
        with an unknown outcome the door is re-read: a renewal it shows is returned, else the
        renewal is sent once more; the last TransientError is raised if neither shows one.
        """
        if not 1 <= months <= 12:
            raise ValueError("months must be 1..12")
        baseline = before or await self.get_door_detail(project_id, door_id)
        param = {"project_id": project_id, "door_id": door_id, "months": months}
        for send in range(1, RENEWAL_SENDS + 1):
            try:
                return await self._call("renew_door_license", param, _DOOR, rule=CallRule.UNSAFE)
            except TransientError as exc:
                log.warning(
                    "cloud_write_outcome_unknown",
                    command="renew_door_license",
                    project_id=project_id,
                    door_id=door_id,
                    send=send,
                    status=exc.status,
                )
                door = await self._reread(exc, self.get_door_detail(project_id, door_id))
                if license_renewed(baseline, door):
                    log.info(
                        "cloud_write_confirmed_by_reread",
                        command="renew_door_license",
                        project_id=project_id,
                        door_id=door_id,
                        send=send,
                    )
                    return door
                if send == RENEWAL_SENDS:
                    raise
        raise AssertionError("unreachable: the last send returns or raises")  # pragma: no cover

    async def _reread(self, unknown: TransientError, reread: Awaitable[R]) -> R:
        """Await ``reread`` to settle an unknown write; if it fails, the outcome stays unknown."""
        try:
            return await reread
        except ConnectorError as exc:
            log.warning(
                "cloud_write_reread_failed",
                command=unknown.endpoint,
                error=type(exc).__name__,
                status=exc.status,
                code=exc.code,
            )
            raise WriteOutcomeUnknown(
                f"{unknown.message}; re-reading to settle it failed too ({type(exc).__name__})",
                system=unknown.system,
                endpoint=unknown.endpoint,
                status=unknown.status,
                code=unknown.code,
            ) from exc

    # ------------------------------------------------------------------ personnel

    async def get_personnel_detail(self, project_id: str, personnel_id: str) -> Personnel:
        """One person, with credentials and direct/user-group memberships."""
        param = {"project_id": project_id, "personnel_id": personnel_id}
        return await self._call("get_personnel_detail", param, _PERSONNEL)

    def find_personnel(
        self,
        project_id: str,
        *,
        external_id: str | None = None,
        email: str | None = None,
        credential_value: str | None = None,
        on_skip: SkipHandler | None = None,
    ) -> AsyncIterator[Personnel]:
        """People matching exactly one of ``external_id``, ``email``, ``credential_value``."""
        key, value = _exactly_one(
            {"external_id": external_id, "email": email, "credential_value": credential_value}
        )
        return self._iter(
            "find_personnel", {"project_id": project_id, key: value}, _PEOPLE, on_skip
        )

    async def add_personnel_credential(
        self, project_id: str, personnel_id: str, credential_type: CredentialType, value: str
    ) -> Personnel:
        """Assign a credential to a person (``conflict`` if it is someone else's).

        Sent once (``UNSAFE``); an unknown outcome is settled by re-reading the person.
        """
        param = {
            "project_id": project_id,
            "personnel_id": personnel_id,
            "type": credential_type,
            "value": value,
        }
        try:
            return await self._call(
                "add_personnel_credential", param, _PERSONNEL, rule=CallRule.UNSAFE
            )
        except TransientError as exc:
            person = await self._reread(exc, self.get_personnel_detail(project_id, personnel_id))
            if person.has_credential(credential_type, value):
                return person
            raise

    # ------------------------------------------------------------------ groups and holidays

    def iter_access_groups(
        self, project_id: str, *, on_skip: SkipHandler | None = None
    ) -> AsyncIterator[AccessGroup]:
        """Every access group of the project."""
        param = {"project_id": project_id}
        return self._iter("get_access_group_list", param, _ACCESS_GROUPS, on_skip)

    async def add_access_group_member(
        self, project_id: str, access_group_id: str, personnel_id: str
    ) -> AccessGroup:
        """Add a person to an access group (``conflict`` if they are in a user group)."""
        param = {
            "project_id": project_id,
            "access_group_id": access_group_id,
            "personnel_id": personnel_id,
        }
        # the contract: adding a member twice is a no-op, so a repeat is safe
        return await self._call(
            "add_access_group_member", param, _ACCESS_GROUP, rule=CallRule.IDEMPOTENT
        )

    def iter_user_groups(
        self, project_id: str, *, on_skip: SkipHandler | None = None
    ) -> AsyncIterator[UserGroup]:
        """Every user group of the project."""
        param = {"project_id": project_id}
        return self._iter("get_user_group_list", param, _USER_GROUPS, on_skip)

    def iter_holidays(
        self, project_id: str, *, on_skip: SkipHandler | None = None
    ) -> AsyncIterator[Holiday]:
        """Every holiday schedule of the project."""
        return self._iter("get_holiday_list", {"project_id": project_id}, _HOLIDAYS, on_skip)

    async def set_holiday_working_hours(
        self,
        project_id: str,
        holiday_id: str,
        *,
        enabled: bool,
        start_time: time,
        end_time: time,
    ) -> Holiday:
        """Set a holiday's working hours (project-local ``HH:MM``)."""
        param = {
            "project_id": project_id,
            "holiday_id": holiday_id,
            "enabled": enabled,
            "start_time": start_time.strftime("%H:%M"),
            "end_time": end_time.strftime("%H:%M"),
        }
        # absolute values: a repeat leaves the holiday exactly as one call would
        return await self._call(
            "set_holiday_working_hours", param, _HOLIDAY, rule=CallRule.IDEMPOTENT
        )

    # ------------------------------------------------------------------ visitors

    async def get_visitor_detail(self, project_id: str, visitor_id: str) -> Visitor:
        """One visitor, with their temp keys."""
        param = {"project_id": project_id, "visitor_id": visitor_id}
        return await self._call("get_visitor_detail", param, _VISITOR)

    async def create_visitor_temp_key(
        self,
        project_id: str,
        visitor_id: str,
        door_ids: Sequence[str],
        start_time: datetime,
        finish_time: datetime,
    ) -> TempKey:
        """Create a temp key valid from ``start_time`` to ``finish_time`` (whole seconds).

        Sent once (``UNSAFE``); an unknown outcome is settled by re-reading the visitor for
        a key with these doors and this validity.
        """
        start, finish = epoch_seconds(start_time), epoch_seconds(finish_time)
        if finish <= start:
            raise ValueError("finish_time must be after start_time")
        param = {
            "project_id": project_id,
            "visitor_id": visitor_id,
            "door_ids": list(door_ids),
            "start_time": start,
            "finish_time": finish,
        }
        try:
            return await self._call(
                "create_visitor_temp_key", param, _TEMP_KEY, rule=CallRule.UNSAFE
            )
        except TransientError as exc:
            visitor = await self._reread(exc, self.get_visitor_detail(project_id, visitor_id))
            for key in visitor.temp_keys:
                if (
                    set(key.door_ids) == set(door_ids)
                    and key.start_time == start
                    and key.finish_time == finish
                ):
                    return key
            raise
