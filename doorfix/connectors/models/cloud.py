"""The cloud's shapes (``contract/cloud.md``): the command envelope, pages and entities.

Times stay epoch seconds as on the wire (see the package docstring); the ``*_utc``
properties give the same instants as aware UTC datetimes.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Annotated, Generic, Literal, TypeVar

from pydantic import Field

from doorfix.connectors.models import WireModel, from_epoch

ResultT = TypeVar("ResultT")
ItemT = TypeVar("ItemT")

CredentialType = Literal["card", "pin", "face", "temp_key", "ble", "nfc", "qr"]
LicenseStatus = Literal["active", "expired", "inactivated"]
LogResult = Literal["success", "failure"]
#: 1 = Monday ... 7 = Sunday
Weekday = Annotated[int, Field(ge=1, le=7)]

#: ``get_project_info`` lists this permission only when the account may pay.
PAYMENT = "payment"


class BusinessError(WireModel):
    """The ``error`` of an HTTP-200 ``success: false`` answer."""

    code: str
    message: str = ""


class Envelope(WireModel, Generic[ResultT]):
    """Every command's answer: ``result`` when ``success``, ``error`` otherwise."""

    success: bool
    timestamp: int
    # both optional here so one validation covers both outcomes; the client checks the pair
    result: ResultT | None = None
    error: BusinessError | None = None


class Page(WireModel, Generic[ItemT]):
    """A paged result: ``page_index`` is 1-based, ``total`` counts every page's items."""

    total: int
    page_index: int
    items: tuple[ItemT, ...]


class ProjectInfo(WireModel):
    """``get_project_info``: the project and the account's permissions in it."""

    project_id: str
    name: str
    time_zone: str
    permissions: tuple[str, ...]

    @property
    def can_pay(self) -> bool:
        """Whether the account may pay (renew licenses)."""
        return PAYMENT in self.permissions


class DoorLog(WireModel):
    """One row of Logs > Door Logs; ``detail`` is free firmware text (may be empty)."""

    log_id: int
    capture_time: int
    door_id: str
    door_name: str
    device_model: str
    firmware: str
    result: LogResult
    detail: str
    credential_type: CredentialType
    credential_value: str
    personnel_id: str | None = None
    visitor_id: str | None = None
    initiator: str

    @property
    def capture_time_utc(self) -> datetime:
        """``capture_time`` as an aware UTC datetime."""
        return from_epoch(self.capture_time)


class Device(WireModel):
    """The intercom or reader behind a door."""

    model: str
    firmware: str
    mac: str


class License(WireModel):
    """A door's subscription."""

    status: LicenseStatus
    expires_at: int | None = None
    auto_renew: bool

    @property
    def expires_at_utc(self) -> datetime | None:
        """``expires_at`` as an aware UTC datetime."""
        return None if self.expires_at is None else from_epoch(self.expires_at)


class Door(WireModel):
    """A door with its device and license."""

    door_id: str
    name: str
    device: Device
    license: License


class Credential(WireModel):
    """A credential assigned to a person."""

    type: CredentialType
    value: str


class Personnel(WireModel):
    """A person; ``external_id`` is the ACA user id; group ids are direct memberships."""

    personnel_id: str
    name: str
    email: str
    external_id: str | None = None
    credentials: tuple[Credential, ...]
    access_group_ids: tuple[str, ...]
    user_group_ids: tuple[str, ...]

    def has_credential(self, credential_type: CredentialType, value: str) -> bool:
        """Whether this person holds the credential ``(credential_type, value)``."""
        return any(c.type == credential_type and c.value == value for c in self.credentials)


class Schedule(WireModel):
    """An access group's weekly schedule, in the project's time zone."""

    weekdays: tuple[Weekday, ...]
    start_time: time
    end_time: time


class AccessGroup(WireModel):
    """An access group: which doors, on which schedule."""

    access_group_id: str
    name: str
    door_ids: tuple[str, ...]
    schedule: Schedule


class UserGroup(WireModel):
    """A user group; its members inherit its access groups."""

    user_group_id: str
    name: str
    access_group_ids: tuple[str, ...]
    member_ids: tuple[str, ...]


class WorkingHours(WireModel):
    """A holiday's working hours, in the project's time zone."""

    start_time: time
    end_time: time


class Holiday(WireModel):
    """A holiday schedule that blocks its doors on its dates outside working hours."""

    holiday_id: str
    name: str
    dates: tuple[date, ...]
    working_hours_enabled: bool
    working_hours: WorkingHours
    door_ids: tuple[str, ...]


class TempKey(WireModel):
    """A visitor's temporary key and its validity (epoch seconds)."""

    temp_key_id: str
    code: str
    door_ids: tuple[str, ...]
    start_time: int
    finish_time: int
    expired: bool

    @property
    def start_time_utc(self) -> datetime:
        """``start_time`` as an aware UTC datetime."""
        return from_epoch(self.start_time)

    @property
    def finish_time_utc(self) -> datetime:
        """``finish_time`` as an aware UTC datetime."""
        return from_epoch(self.finish_time)


class Visitor(WireModel):
    """A visitor; ``aca_visit_id`` links to ACA's visit."""

    visitor_id: str
    name: str
    email: str
    host_personnel_id: str
    aca_visit_id: str | None = None
    temp_keys: tuple[TempKey, ...]
