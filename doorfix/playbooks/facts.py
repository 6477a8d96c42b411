"""The facts a playbook decides on: frozen snapshots the engine fills from connector models.

The engine fetches each fact once per run (HA's coordinator) and shares it between the
snapshots that need it; a playbook never fetches. Every field is a typed wire model (or a
tuple/mapping of them) exactly as the connectors return it, so the tests build the same
snapshots the engine does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from doorfix.connectors.models.aca import (
    Access,
    Booking,
    Center,
    Event,
    Inventory,
    MobileKey,
    TagState,
    User,
    Visit,
)
from doorfix.connectors.models.cloud import (
    AccessGroup,
    Door,
    DoorLog,
    Holiday,
    Personnel,
    ProjectInfo,
    UserGroup,
    Visitor,
)
from doorfix.connectors.models.clp import Entry, Incident, Iq, LarryAccess, Lock


@dataclass(frozen=True)
class ProjectFacts:
    """One cloud project per run: permissions, doors, groups, holidays and its ACA center."""

    project: ProjectInfo
    #: door_id -> Door (with its device and license)
    doors: Mapping[str, Door] = field(default_factory=dict)
    #: access_group_id -> AccessGroup
    access_groups: Mapping[str, AccessGroup] = field(default_factory=dict)
    #: user_group_id -> UserGroup
    user_groups: Mapping[str, UserGroup] = field(default_factory=dict)
    holidays: tuple[Holiday, ...] = ()
    #: the ACA center whose ``cloud_project_id`` is this project, if any
    center: Center | None = None
    #: that center's inventories (their ``door_ids`` tie bookings to doors)
    inventories: tuple[Inventory, ...] = ()

    @property
    def project_id(self) -> str:
        """The cloud project id."""
        return self.project.project_id

    @property
    def time_zone(self) -> str:
        """The project's time zone (schedules and holidays are local to it)."""
        return self.project.time_zone


def latest_log(logs: Iterable[DoorLog]) -> DoorLog:
    """The latest of a failure group's rows, by capture time then log id: the one that decides."""
    return max(logs, key=lambda row: (row.capture_time, row.log_id))


@dataclass(frozen=True)
class DoorLogFacts:
    """One group of failure logs (same door, person/visitor/credential and Detail) and context."""

    #: the group's rows, ascending ``log_id``; never empty
    logs: tuple[DoorLog, ...]
    project: ProjectFacts
    #: the person the log names (``log.personnel_id``), if any
    personnel: Personnel | None = None
    #: ``find_personnel(credential_value=...)``: who in the cloud holds the presented value
    credential_owners: tuple[Personnel, ...] = ()
    #: the ACA user holding the credential as a tag, else the person's (``external_id``)
    aca_user: User | None = None
    #: the cloud person named by ``aca_user.cloud_personnel_id`` in this project, if found
    aca_personnel: Personnel | None = None
    #: the active bookings of ``aca_user``'s company at the center
    bookings: tuple[Booking, ...] = ()
    #: the cloud visitor the log names (``log.visitor_id``), with its temp keys
    visitor: Visitor | None = None
    #: ACA's visit behind that visitor (``visitor.aca_visit_id``)
    visit: Visit | None = None
    #: every failure of this credential in the run's window, any door (the security evidence)
    presentations: tuple[DoorLog, ...] = ()

    def __post_init__(self) -> None:
        """A group without a row is the caller's bug: refuse it where it is made."""
        if not self.logs:
            raise ValueError("a door-log group needs at least one log")

    @property
    def log(self) -> DoorLog:
        """The latest row of the group (it decides; the others are evidence)."""
        return latest_log(self.logs)

    @property
    def door(self) -> Door | None:
        """The door of the group, as the project's door list has it now."""
        return self.project.doors.get(self.log.door_id)

    @property
    def tag_state(self) -> TagState | None:
        """ACA's state of the presented value as a tag of ``aca_user`` (None: not their tag)."""
        if self.aca_user is None:
            return None
        for tag in self.aca_user.tags:
            if tag.number == self.log.credential_value:
                return tag.state
        return None


@dataclass(frozen=True)
class LockFacts:
    """One user x lock: ACA's view (events, access, bookings, keys) and CLP's (lock, IQ, Larry)."""

    center: Center
    user: User
    lock_id: str
    #: ACA events of this user at this lock in the window; empty on the ticket path
    events: tuple[Event, ...] = ()
    #: the user's ACA accesses (every lock)
    accesses: tuple[Access, ...] = ()
    #: the company's active bookings at the center
    bookings: tuple[Booking, ...] = ()
    #: the center's inventories
    inventories: tuple[Inventory, ...] = ()
    mobile_keys: tuple[MobileKey, ...] = ()
    #: the CLP lock (None: CLP does not know it)
    lock: Lock | None = None
    #: the lock's IQ as CLP reports it
    iq: Iq | None = None
    #: "Larry access" of ``user.clp_user_id`` at this lock
    larry: LarryAccess | None = None
    #: recent CLP entries of this lock
    entries: tuple[Entry, ...] = ()
    #: recent CLP incidents of this lock or its IQ
    incidents: tuple[Incident, ...] = ()

    @property
    def last_event_at(self) -> datetime | None:
        """The newest sign of life of the lock: its ``last_event_utc`` or its newest entry."""
        times = [entry.utc_date_time for entry in self.entries if entry.lock_id == self.lock_id]
        if self.lock is not None and self.lock.last_event_utc is not None:
            times.append(self.lock.last_event_utc)
        return max(times, default=None)


@dataclass(frozen=True)
class DoorLicenseFacts:
    """One door's license, for the proactive license-renewal pass."""

    door: Door
    project: ProjectInfo
    #: the ACA center of the project, for the report's subject
    center_id: str | None = None
