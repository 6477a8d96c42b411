"""The sandbox world's entities: one model behind the cloud, ACA and CLP views.

Attribute names follow ``shared/contract/*.md`` field for field, so a view serialises an
entity by reading its attributes; the few extra attributes (marked *internal*) hold the
relations the contract leaves implicit (which project a door belongs to, what an IQ holds).
Times are aware UTC ``datetime``; the cloud view turns them into epoch seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

# --------------------------------------------------------------------------- ACA

TagState = Literal["assigned", "lost"]
InventoryKind = Literal["office", "coworking", "meeting_room", "common"]
BookingStatus = Literal["active", "cancelled", "ended"]
MobileKeyState = Literal["active", "revoked", "corrupted"]
AcaEventType = Literal["tag_rejected", "mkey_rejected", "tag_granted", "mkey_granted"]
VisitStatus = Literal["scheduled", "active", "ended", "cancelled"]


@dataclass(slots=True)
class Center:
    """An ACA center; its CLP site and cloud project hang off it."""

    id: str
    name: str
    released_at: datetime
    clp_site_id: str
    cloud_project_id: str | None
    time_zone: str


@dataclass(slots=True)
class Inventory:
    """A bookable space (office, co-working, meeting room, common area) and its locks/doors."""

    id: str
    center_id: str
    name: str
    kind: InventoryKind
    lock_ids: list[str] = field(default_factory=list)
    door_ids: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Company:
    """A tenant company (internal: ACA exposes only ``company_id``)."""

    id: str
    name: str
    center_id: str


@dataclass(slots=True)
class Booking:
    """A company's booking of one inventory."""

    id: str
    company_id: str
    center_id: str
    inventory_id: str
    starts_at: datetime
    ends_at: datetime
    status: BookingStatus


@dataclass(slots=True)
class Tag:
    """A physical tag (card) number registered to a user in ACA."""

    number: str
    state: TagState


@dataclass(slots=True)
class User:
    """An ACA user; ``clp_user_id`` is the CLP platform user id."""

    id: str
    name: str
    email: str
    company_id: str
    center_id: str
    clp_user_id: str
    cloud_personnel_id: str | None
    tags: list[Tag] = field(default_factory=list)


@dataclass(slots=True)
class MatrixCell:
    """One Access Matrix cell (internal): the user's switch for one lock."""

    enabled: bool
    changed_at: datetime


@dataclass(slots=True)
class Access:
    """An ACA access row as ``GET /users/{id}/accesses`` answers it (derived, not stored)."""

    lock_id: str
    inventory_id: str
    state: Literal["active", "disabled"]
    disabled_by: Literal["access_matrix", "booking_ended"] | None
    changed_at: datetime


@dataclass(slots=True)
class MobileKey:
    """A user's mobile key in ACA."""

    id: str
    user_id: str  # internal
    state: MobileKeyState
    issued_at: datetime
    last_error: Literal["generation_failed"] | None = None


@dataclass(slots=True)
class AcaEvent:
    """An event of ACA's feed; ``recorded_at`` is when ACA learned of it."""

    id: str
    type: AcaEventType
    occurred_at: datetime
    recorded_at: datetime
    user_id: str
    lock_id: str
    center_id: str
    credential: str


@dataclass(slots=True)
class Visit:
    """A visit booked in ACA; the cloud visitor points back through ``aca_visit_id``."""

    id: str
    center_id: str
    visitor_name: str
    visitor_email: str
    host_user_id: str
    starts_at: datetime
    ends_at: datetime
    status: VisitStatus
    cloud_visitor_id: str | None


# --------------------------------------------------------------------------- CLP

LockType = Literal["escutcheon", "cylinder", "wall_reader", "locker"]
IqLinkState = Literal["attached", "attached_pending", "detached", "detached_pending"]
Battery = Literal["normal", "low", "critical"]
EntryCategory = Literal["lock_opened", "lock_rejected"]
EntryDetail = Literal["offline", "no_access", "blocked", "suspended", "low_batteries"]
SyncState = Literal["queued", "running", "succeeded", "failed"]


@dataclass(slots=True)
class Site:
    """A CLP site (``id`` is a UUID; ``site_uid`` is the short number people quote)."""

    id: str
    site_uid: str
    customer_reference: str
    time_zone: str


@dataclass(slots=True)
class Lock:
    """A CLP lock; ``iq_id`` is the IQ it is attached to (the view nests the IQ summary)."""

    id: str
    site_id: str  # internal
    customer_reference: str
    lock_type: LockType
    online: bool
    iq_link_state: IqLinkState
    privacy_mode: bool
    battery_level: Battery
    collection_id: str
    iq_id: str
    last_event_utc: datetime | None = None


@dataclass(slots=True)
class IQ:
    """A CLP IQ hub; ``held`` is the access it holds and its locks enforce (internal)."""

    id: str
    site_id: str  # internal
    mac: str
    revision: Literal[1, 2]
    online: bool
    collection_id: str
    last_heartbeat_utc: datetime
    lock_ids: list[str] = field(default_factory=list)
    #: (platform user id, lock id) pairs pushed to this IQ: what its locks enforce
    held: set[tuple[str, str]] = field(default_factory=set)


@dataclass(slots=True)
class SiteUser:
    """A platform user's membership of a site."""

    id: str
    site_id: str  # internal
    platform_user_id: str  # serialised as {"user": {"id": ...}}
    alias: str
    subscription_state: Literal["subscribed", "suspended"] = "subscribed"
    blocked: bool = False


@dataclass(slots=True)
class Key:
    """A credential of a site user (tag, mobile key or PIN) as CLP knows it."""

    id: str
    site_user_id: str  # internal
    key_type: Literal["tag", "mkey", "pin"]
    key_identifier: str
    blocked: bool = False
    expiry_date: datetime | None = None


@dataclass(slots=True)
class TimeSchedule:
    """A CLP access-group time schedule; times are site-local ``HH:MM:SS``."""

    monday: bool = True
    tuesday: bool = True
    wednesday: bool = True
    thursday: bool = True
    friday: bool = True
    saturday: bool = True
    sunday: bool = True
    start_time: str = "00:00:00"
    end_time: str = "23:59:59"


@dataclass(slots=True)
class ClpAccessGroup:
    """A CLP access group; ``user_ids`` are platform user ids (ACA writes them, never doorfix)."""

    id: str
    site_id: str  # internal
    customer_reference: str
    lock_ids: list[str] = field(default_factory=list)
    time_schedules: list[TimeSchedule] = field(default_factory=list)
    user_ids: set[str] = field(default_factory=set)


@dataclass(slots=True)
class Entry:
    """A CLP entry (a lock opened or rejected), as the IQ reported it."""

    id: str
    event_category: EntryCategory
    event_detail: EntryDetail | None
    utc_date_time: datetime
    lock_id: str
    iq_id: str
    collection_id: str
    user_id: str | None
    user_alias: str | None
    access_by: Literal["tag", "mkey", "pin", "inside_handle"]
    key_id: str | None


@dataclass(slots=True)
class Incident:
    """A CLP incident (connection lost/restored, lock time set, ...)."""

    id: str
    type: str
    utc_date_time: datetime
    lock_id: str | None
    iq_id: str | None


@dataclass(slots=True)
class SyncJob:
    """A Sync Access job on one collection."""

    job_id: str
    site_id: str  # internal
    collection_id: str
    state: SyncState
    error: Literal["iq_offline", "internal"] | None
    created_utc: datetime
    finished_utc: datetime | None = None


@dataclass(slots=True)
class LarryAccess:
    """ "Larry access": does CLP grant this platform user this lock right now (derived)."""

    user_id: str
    lock_id: str
    status: Literal["granted", "denied"]
    reason: Literal["no_access_group", "no_time_schedule", "suspended", "blocked"] | None
    access_group_ids: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- cloud

CredentialType = Literal["card", "pin", "face", "temp_key", "ble", "nfc", "qr"]
LicenseStatus = Literal["active", "expired", "inactivated"]


@dataclass(slots=True)
class Project:
    """A cloud project (one per center); ``funds`` is internal (payment_required when False)."""

    project_id: str
    name: str
    time_zone: str
    permissions: list[str] = field(
        default_factory=lambda: ["payment", "personnel", "access_control"]
    )
    funds: bool = True


@dataclass(slots=True)
class Device:
    """The intercom/reader behind a door."""

    model: str
    firmware: str
    mac: str


@dataclass(slots=True)
class License:
    """A door's subscription; ``expires_at`` is aware UTC (epoch seconds on the wire)."""

    status: LicenseStatus
    expires_at: datetime | None
    auto_renew: bool = False


@dataclass(slots=True)
class Door:
    """A cloud door with its device and license."""

    door_id: str
    project_id: str  # internal
    name: str
    device: Device
    license: License


@dataclass(slots=True)
class Credential:
    """A personnel credential."""

    type: CredentialType
    value: str


@dataclass(slots=True)
class Personnel:
    """A person in a cloud project; ``external_id`` is the ACA user id."""

    personnel_id: str
    project_id: str  # internal
    name: str
    email: str
    external_id: str | None
    credentials: list[Credential] = field(default_factory=list)
    access_group_ids: list[str] = field(default_factory=list)
    user_group_ids: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Schedule:
    """A cloud access-group schedule, in the project's time zone (1 = Monday)."""

    weekdays: list[int] = field(default_factory=lambda: [1, 2, 3, 4, 5, 6, 7])
    start_time: str = "00:00"
    end_time: str = "23:59"


@dataclass(slots=True)
class CloudAccessGroup:
    """A cloud access group: doors and a schedule."""

    access_group_id: str
    project_id: str  # internal
    name: str
    door_ids: list[str] = field(default_factory=list)
    schedule: Schedule = field(default_factory=Schedule)


@dataclass(slots=True)
class UserGroup:
    """A cloud user group; members inherit its access groups."""

    user_group_id: str
    project_id: str  # internal
    name: str
    access_group_ids: list[str] = field(default_factory=list)
    member_ids: list[str] = field(default_factory=list)


@dataclass(slots=True)
class WorkingHours:
    """Holiday working hours, project-local ``HH:MM``."""

    start_time: str = "08:00"
    end_time: str = "18:00"


@dataclass(slots=True)
class Holiday:
    """A holiday schedule blocking some doors on some dates outside working hours."""

    holiday_id: str
    project_id: str  # internal
    name: str
    dates: list[str]
    working_hours_enabled: bool
    working_hours: WorkingHours
    door_ids: list[str] = field(default_factory=list)


@dataclass(slots=True)
class TempKey:
    """A visitor's temporary key; ``expired`` is derived from the clock by the view."""

    temp_key_id: str
    code: str
    door_ids: list[str]
    start_time: datetime
    finish_time: datetime


@dataclass(slots=True)
class Visitor:
    """A cloud visitor; ``aca_visit_id`` links to ACA's visit."""

    visitor_id: str
    project_id: str  # internal
    name: str
    email: str
    host_personnel_id: str
    aca_visit_id: str | None
    temp_keys: list[TempKey] = field(default_factory=list)


@dataclass(slots=True, frozen=True)
class DoorLog:
    """One door-log row (materialised from the compact store when a page is served)."""

    log_id: int
    capture_time: int
    door_id: str
    door_name: str
    device_model: str
    firmware: str
    result: Literal["success", "failure"]
    detail: str
    credential_type: CredentialType
    credential_value: str
    personnel_id: str | None
    visitor_id: str | None
    initiator: str


class WorldError(Exception):
    """A business refusal of the world; views map ``code`` to their system's error envelope.

    Codes: cloud ``not_found``, ``permission_denied``, ``invalid_param``, ``conflict``,
    ``payment_required``; ACA ``not_found``, ``no_booking``, ``invalid``; CLP ``not_found``,
    ``sync_running`` (``job_id`` set), ``operation_blocked``, ``invalid``.
    """

    def __init__(self, code: str, message: str, *, job_id: str | None = None) -> None:
        self.code = code
        self.job_id = job_id
        super().__init__(message)


# --------------------------------------------------------------------------- people (derived)

EventRecorded = Literal["now", "late", "never"]


@dataclass(slots=True)
class LockDecision:
    """What a lock did when a user presented a tag or mobile key, and where the event went.

    ``reason`` is ``"granted"`` or why the lock refused (``privacy_mode``, ``no_credential``,
    ``tag_unknown``, ``tag_lost``, ``key_blocked``, ``mkey_revoked``, ``mkey_corrupted``,
    ``mkey_generation_failed``, ``blocked``, ``suspended``, ``no_access``); ``layers`` is the
    world's truth for the pair at that moment (see ``World.truth_lock``).
    """

    granted: bool
    reason: str
    event_recorded: EventRecorded
    layers: dict[str, object] = field(default_factory=dict)
    event_id: str | None = None
    entry_id: str | None = None


@dataclass(slots=True)
class DoorDecision:
    """What a cloud door did with a presented credential; ``detail`` is the log's Detail text."""

    granted: bool
    detail: str
    log_id: int
    cause: str | None = None
