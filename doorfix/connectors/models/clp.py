"""CLP's shapes (``contract/clp.md``): link and continuation pages and the entities."""

from __future__ import annotations

from datetime import time
from typing import Generic, Literal, TypeVar

from doorfix.connectors.models import UtcDatetime, WireModel

ItemT = TypeVar("ItemT")

LockType = Literal["escutcheon", "cylinder", "wall_reader", "locker"]
IqLinkState = Literal["attached", "attached_pending", "detached", "detached_pending"]
BatteryLevel = Literal["normal", "low", "critical"]
IqRevision = Literal[1, 2]
SubscriptionState = Literal["subscribed", "suspended"]
KeyType = Literal["tag", "mkey", "pin"]
EntryCategory = Literal["lock_opened", "lock_rejected"]
EntryDetail = Literal["offline", "no_access", "blocked", "suspended", "low_batteries"]
AccessBy = Literal["tag", "mkey", "pin", "inside_handle"]
LarryStatus = Literal["granted", "denied"]
LarryReason = Literal["no_access_group", "no_time_schedule", "suspended", "blocked"]
SyncState = Literal["queued", "running", "succeeded", "failed"]
SyncError = Literal["iq_offline", "internal"]

#: Incident types the contract names; the list is open (``…``), so ``Incident.type`` is a str.
KNOWN_INCIDENT_TYPES = frozenset(
    {
        "iq_connection_lost",
        "iq_connection_restored",
        "lock_connection_lost",
        "lock_connection_restored",
        "lock_time_set",
        "low_battery_warning",
        "tamper_alarm",
    }
)


class LinkPage(WireModel, Generic[ItemT]):
    """A ``$top`` list page; follow ``next_page_link`` (absolute) until it is null."""

    items: tuple[ItemT, ...]
    next_page_link: str | None = None
    count: int


class TokenPage(WireModel, Generic[ItemT]):
    """A continuation page; may be empty and still carry a token: stop only without one."""

    items: tuple[ItemT, ...]
    continuation_token: str | None = None


class Site(WireModel):
    """A site: ``id`` is the UUID every path takes, never the ``site_uid``."""

    id: str
    site_uid: str
    customer_reference: str
    time_zone: str


class IqSummary(WireModel):
    """The IQ a lock is attached to, as the lock reports it."""

    id: str
    revision: IqRevision
    online: bool


class Lock(WireModel):
    """A lock and its link to its IQ."""

    id: str
    customer_reference: str
    lock_type: LockType
    online: bool
    iq_link_state: IqLinkState
    privacy_mode: bool
    battery_level: BatteryLevel
    collection_id: str
    iq: IqSummary
    last_event_utc: UtcDatetime | None = None


class Iq(WireModel):
    """An IQ hub: it holds the access its locks enforce."""

    id: str
    mac: str
    revision: IqRevision
    online: bool
    collection_id: str
    last_heartbeat_utc: UtcDatetime
    lock_ids: tuple[str, ...]


class PlatformUser(WireModel):
    """The platform user behind a site user (ACA's ``clp_user_id``)."""

    id: str


class SiteUser(WireModel):
    """A platform user's membership of a site; ``id`` is the site-user id."""

    id: str
    user: PlatformUser
    alias: str
    subscription_state: SubscriptionState
    blocked: bool


class Key(WireModel):
    """A credential of a site user."""

    id: str
    key_type: KeyType
    key_identifier: str
    blocked: bool
    expiry_date: UtcDatetime | None = None


class TimeSchedule(WireModel):
    """An access group's schedule: the weekdays it covers, site-local ``HH:MM:SS``."""

    monday: bool
    tuesday: bool
    wednesday: bool
    thursday: bool
    friday: bool
    saturday: bool
    sunday: bool
    start_time: time
    end_time: time


class AccessGroup(WireModel):
    """An access group: locks and time schedules (ACA writes its members, never doorfix)."""

    id: str
    customer_reference: str
    lock_ids: tuple[str, ...]
    time_schedules: tuple[TimeSchedule, ...]


class AccessGroupUser(WireModel):
    """A member of an access group (a platform user id)."""

    user_id: str


class Entry(WireModel):
    """A lock opened or rejected, as its IQ reported it."""

    id: str
    event_category: EntryCategory
    event_detail: EntryDetail | None = None
    utc_date_time: UtcDatetime
    lock_id: str
    iq_id: str
    collection_id: str
    user_id: str | None = None
    user_alias: str | None = None
    access_by: AccessBy
    key_id: str | None = None


class Ref(WireModel):
    """A reference to a lock or an IQ inside an incident."""

    id: str


class Incident(WireModel):
    """A connection lost/restored, lock time set (maintenance card), alarm, ..."""

    id: str
    type: str
    utc_date_time: UtcDatetime
    lock: Ref | None = None
    iq: Ref | None = None


class LarryAccess(WireModel):
    """ "Larry access": does CLP grant this platform user this lock, and if not, why."""

    user_id: str
    lock_id: str
    status: LarryStatus
    reason: LarryReason | None = None
    access_group_ids: tuple[str, ...]


class SyncAccepted(WireModel):
    """The ``202`` answer of Sync Access."""

    job_id: str
    state: SyncState


class SyncJob(WireModel):
    """A Sync Access job on one collection."""

    job_id: str
    collection_id: str
    state: SyncState
    error: SyncError | None = None
    created_utc: UtcDatetime
    finished_utc: UtcDatetime | None = None


class SyncJobRef(WireModel):
    """The job a Sync Access call leads to: a new one, or the running one it adopted (409)."""

    job_id: str
    collection_id: str
    #: True when a job was already running for the collection and this call adopted it
    adopted: bool
