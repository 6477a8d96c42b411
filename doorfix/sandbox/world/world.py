"""The sandbox's one simulated world behind the cloud, ACA and CLP views.

The views read the entity dictionaries and call the methods; every method first advances
the world to the clock (:meth:`World.advance`), so effects that were due (ACA's push to CLP,
CLP's propagation to IQs, Sync Access jobs, late event delivery, people presenting
credentials on a schedule) have happened before anything is read or written. Effects sit in
one heap of ``(due_at, seq, name, effect)``; ``seq`` keeps equal times in scheduling order.

The rules live beside it, one module per concern: :mod:`rules` (ACA, CLP, the locks),
:mod:`doors` (cloud doors), :mod:`access` (ACA → CLP → IQ), :mod:`events` (event delivery),
:mod:`people` (presentations), :mod:`hardware` (the control API's on-site verbs),
:mod:`cloud` (the cloud's writes), :mod:`truth` (every layer's view) and :mod:`faults`.
They import nothing of this module: their functions take a
:class:`~doorfix.sandbox.world.state.WorldState` (the tables, settings, rng, clock and the few
methods they call), which ``World`` satisfies structurally, so the imports point one way.

The entity tables the views search (users, personnel, keys, locks, ...) are
:class:`~doorfix.sandbox.world.tables.Table` dicts that index themselves, so a search costs its
matches, not the table. Storing or deleting an entity keeps the indexes right by itself; an
entity edited in place in an indexed attribute (a user's tags, a person's project, ...) is
edited inside ``with w.users.editing(user_id) as user:`` (see :mod:`tables`).
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from datetime import datetime
from typing import Literal, cast

from doorfix.clock import Clock
from doorfix.sandbox.faults import registry as faults
from doorfix.sandbox.faults.registry import FaultRecord, FaultStatus
from doorfix.sandbox.world import (
    access,
    cloud,
    doors,
    fingerprint,
    hardware,
    people,
    rules,
    tables,
    truth,
)
from doorfix.sandbox.world.doorlogs import DoorLogStore
from doorfix.sandbox.world.events import EventPipe
from doorfix.sandbox.world.model import (
    IQ,
    AcaEvent,
    Access,
    Booking,
    Center,
    CloudAccessGroup,
    ClpAccessGroup,
    Company,
    CredentialType,
    Door,
    DoorDecision,
    DoorLog,
    Entry,
    EventRecorded,
    Holiday,
    Incident,
    Inventory,
    Key,
    LarryAccess,
    Lock,
    LockDecision,
    MatrixCell,
    MobileKey,
    Personnel,
    Project,
    Site,
    SiteUser,
    SyncJob,
    TempKey,
    User,
    UserGroup,
    Visit,
    Visitor,
    WorldError,
)
from doorfix.sandbox.world.people import DoorPresentation, LockPresentation
from doorfix.sandbox.world.state import Effect, WorldSettings
from doorfix.sandbox.world.tables import Table

__all__ = [
    "DoorPresentation",
    "LockPresentation",
    "World",
    "WorldSettings",
]


class World:
    """One simulated world: ACA, CLP and the cloud over the same centers, people and doors."""

    def __init__(
        self,
        clock: Clock,
        *,
        seed: int = 0,
        scenario: str = "empty",
        settings: WorldSettings | None = None,
    ) -> None:
        self.clock = clock
        self.seed = seed
        self.scenario = scenario
        self.settings = settings or WorldSettings()
        self.rng = random.Random(seed)
        # ACA
        self.centers: Table[Center] = tables.centers()
        self.inventories: Table[Inventory] = tables.inventories()
        self.companies: dict[str, Company] = {}
        self.bookings: Table[Booking] = tables.bookings()
        self.users: Table[User] = tables.users()
        self.mobile_keys: Table[MobileKey] = tables.by_user()
        self.visits: Table[Visit] = tables.by_center()
        self.matrix: dict[tuple[str, str], MatrixCell] = {}
        self.aca_feed: list[AcaEvent] = []
        # CLP
        self.sites: dict[str, Site] = {}
        self.locks: Table[Lock] = tables.by_site()
        self.iqs: Table[IQ] = tables.iqs()
        self.site_users: Table[SiteUser] = tables.site_users()
        self.keys: Table[Key] = tables.keys()
        self.clp_access_groups: Table[ClpAccessGroup] = tables.by_site()
        self.sync_jobs: Table[SyncJob] = tables.sync_jobs()
        self.entries: dict[str, list[Entry]] = {}
        self.incidents: dict[str, list[Incident]] = {}
        # cloud
        self.projects: dict[str, Project] = {}
        self.doors: Table[Door] = tables.by_project()
        self.personnel: Table[Personnel] = tables.by_project()
        self.cloud_access_groups: Table[CloudAccessGroup] = tables.by_project()
        self.user_groups: Table[UserGroup] = tables.by_project()
        self.holidays: Table[Holiday] = tables.by_project()
        self.visitors: Table[Visitor] = tables.by_project()
        self.door_logs = DoorLogStore()
        self.renewals: dict[str, int] = {}
        # the state world faults bend (each fault kind's ``present`` reads it)
        #: ACA users whose pushes to CLP never land (a broken ACA->CLP link)
        self.push_broken: set[str] = set()
        self.sync_broken: set[tuple[str, str]] = set()
        #: when CLP access last changed per collection (Sync Access waits a minute after)
        self.collection_changed_at: dict[str, datetime] = {}
        #: deliver every n-th ACA event twice (0 = never)
        self.feed_duplicate_every = 0
        #: hours by which a lock's events reach ACA and CLP late
        self.feed_delay_h: dict[str, float] = {}
        #: named subjects a scenario points out (beyond its faults), e.g. a working door
        self.notes: dict[str, dict[str, str]] = {}
        self._fault_records: dict[str, FaultRecord] = {}
        self._undos: dict[str, Callable[[], None]] = {}
        self._heap: list[tuple[datetime, int, str, Effect]] = []
        self._seq = 0
        self._ids: dict[str, int] = {}
        self._advancing = False
        self.events = EventPipe(self)
        hardware.start_heartbeats(self, clock.now())

    # ------------------------------------------------------------------ plumbing

    def new_id(self, prefix: str) -> str:
        """The next id with this prefix (``u-1``, ``u-2``, ...): deterministic, never reused."""
        n = self._ids.get(prefix, 0) + 1
        self._ids[prefix] = n
        return f"{prefix}-{n}"

    def schedule(self, due: datetime, name: str, effect: Effect) -> None:
        """Run ``effect(due)`` once the clock reaches ``due``."""
        self._seq += 1
        heapq.heappush(self._heap, (due, self._seq, name, effect))

    def advance(self) -> None:
        """Apply every effect due up to ``clock.now()``, in time order; cheap when none is due."""
        now = self.clock.now()
        heap = self._heap
        if self._advancing or not heap or heap[0][0] > now:
            return
        self._advancing = True
        try:
            while heap and heap[0][0] <= now:
                due, _, _, effect = heapq.heappop(heap)
                effect(due)
        finally:
            self._advancing = False

    def pending_effects(self) -> list[tuple[datetime, str]]:
        """What is scheduled, soonest first (for tests and the control API)."""
        return [(due, name) for due, _, name, _ in sorted(self._heap, key=lambda e: e[:2])]

    def now(self) -> datetime:
        """Advance, then answer the clock's time."""
        self.advance()
        return self.clock.now()

    def _user(self, user_id: str) -> User:
        user = self.users.get(user_id)
        if user is None:
            raise WorldError("not_found", f"no user {user_id}")
        return user

    def _lock(self, lock_id: str) -> Lock:
        lock = self.locks.get(lock_id)
        if lock is None:
            raise WorldError("not_found", f"no lock {lock_id}")
        return lock

    def _iq(self, iq_id: str) -> IQ:
        iq = self.iqs.get(iq_id)
        if iq is None:
            raise WorldError("not_found", f"no IQ {iq_id}")
        return iq

    def _door(self, door_id: str) -> Door:
        door = self.doors.get(door_id)
        if door is None:
            raise WorldError("not_found", f"no door {door_id}")
        return door

    # ------------------------------------------------------------------ derived reads

    def aca_accesses(self, user_id: str) -> list[Access]:
        """ACA's access rows for a user (``GET /users/{id}/accesses``)."""
        now = self.now()
        return rules.aca_accesses(self, self._user(user_id), now)

    def larry_access(self, site_id: str, platform_user_id: str, lock_id: str) -> LarryAccess:
        """CLP's "Larry access" for a platform user and a lock."""
        now = self.now()
        return rules.larry_access(self, site_id, platform_user_id, lock_id, now)

    def door_log_page(
        self, project_id: str, start_time: int, page_index: int, page_size: int
    ) -> tuple[int, list[DoorLog]]:
        """Rows with ``capture_time >= start_time``: their total and one 1-based page."""
        self._door_log_query(project_id, page_index, page_size)
        return self.door_logs.page(project_id, start_time, page_index, page_size)

    def door_log_page_json(
        self, project_id: str, start_time: int, page_index: int, page_size: int
    ) -> tuple[int, str]:
        """:meth:`door_log_page` with the rows as the JSON array text the cloud serves."""
        self._door_log_query(project_id, page_index, page_size)
        return self.door_logs.page_json(project_id, start_time, page_index, page_size)

    def _door_log_query(self, project_id: str, page_index: int, page_size: int) -> None:
        self.advance()
        cloud.project(self, project_id)
        if page_index < 1 or not 1 <= page_size <= 500:
            raise WorldError("invalid_param", "page_index >= 1 and page_size 1..500")

    def collection_locks(self, site_id: str, collection_id: str) -> list[str]:
        """The ids of the locks of a collection."""
        self.advance()
        hubs = access.collection_iqs(self, site_id, collection_id)
        if not hubs:
            raise WorldError("not_found", f"no collection {collection_id} on site {site_id}")
        return [lock_id for iq in hubs for lock_id in iq.lock_ids]

    # ------------------------------------------------------------------ ACA and CLP writes

    def set_access_matrix(self, user_id: str, lock_id: str, enabled: bool) -> MatrixCell:
        """Switch a user's access to a lock; a change reaches CLP ``push_delay_s`` later."""
        now = self.now()
        return access.set_access_matrix(
            self, self._user(user_id), self._lock(lock_id), enabled, now
        )

    def start_sync_access(self, site_id: str, collection_id: str) -> SyncJob:
        """Queue a Sync Access job that loads the collection's IQs with CLP's access."""
        now = self.now()
        return access.start_sync_access(self, site_id, collection_id, now)

    def sync_iq(self, iq: IQ) -> None:
        """Load an IQ with exactly CLP's grants for its locks, by fiat."""
        access.sync_iq(self, iq)

    def align_clp(self, user: User) -> None:
        """Make CLP and the IQs agree with ACA for one user, by fiat (building, faults)."""
        access.align_clp(self, user, self.clock.now())

    # ------------------------------------------------------------------ cloud writes

    def renew_door_license(self, project_id: str, door_id: str, months: int) -> Door:
        """Renew (bill) a door license by ``months``; every call bills again."""
        now = self.now()
        return cloud.renew_door_license(self, project_id, door_id, months, now)

    def watch_license(self, door: Door) -> None:
        """Turn the door's license to expired when its ``expires_at`` passes."""
        cloud.watch_license(self, door)

    def add_personnel_credential(
        self, project_id: str, personnel_id: str, type: str, value: str
    ) -> Personnel:
        """Give a person a credential; ``conflict`` if someone else holds that value."""
        self.advance()
        return cloud.add_personnel_credential(self, project_id, personnel_id, type, value)

    def add_access_group_member(
        self, project_id: str, access_group_id: str, personnel_id: str
    ) -> CloudAccessGroup:
        """Add a person to an access group; twice is a no-op; refused for user-group members."""
        self.advance()
        return cloud.add_access_group_member(self, project_id, access_group_id, personnel_id)

    def set_holiday_working_hours(
        self, project_id: str, holiday_id: str, enabled: bool, start_time: str, end_time: str
    ) -> Holiday:
        """Switch a holiday's working hours on or off."""
        self.advance()
        return cloud.set_holiday_working_hours(
            self, project_id, holiday_id, enabled=enabled, start_time=start_time, end_time=end_time
        )

    def create_visitor_temp_key(
        self,
        project_id: str,
        visitor_id: str,
        door_ids: list[str],
        start: datetime,
        finish: datetime,
    ) -> TempKey:
        """Issue a visitor a new temp key for some doors."""
        self.advance()
        return cloud.create_visitor_temp_key(
            self, project_id, visitor_id, door_ids=door_ids, start=start, finish=finish
        )

    # ------------------------------------------------------------------ people

    def present_at_lock(
        self, user_id: str, lock_id: str, via: Literal["tag", "mkey"]
    ) -> LockDecision:
        """A user holds a tag or phone to a lock now."""
        now = self.now()
        if via not in ("tag", "mkey"):
            raise WorldError("invalid", f"via is tag or mkey, not {via!r}")
        return people.at_lock(self, self._user(user_id), self._lock(lock_id), via, now)

    def present_at_door(
        self, door_id: str, credential_type: str, credential_value: str
    ) -> DoorDecision:
        """Someone presents a credential to a cloud door now; the device writes a log row."""
        now = self.now()
        door = self._door(door_id)
        if credential_type not in doors.INVALID:
            raise WorldError("invalid", f"bad credential type {credential_type!r}")
        ctype = cast(CredentialType, credential_type)
        return people.at_door(self, door, ctype, credential_value, now)

    def schedule_presentations(
        self,
        presentation: LockPresentation | DoorPresentation,
        first: datetime,
        every_s: float,
        until: datetime,
    ) -> None:
        """Have someone present at ``first`` and every ``every_s`` seconds up to ``until``."""
        people.schedule(self, presentation, first, every_s, until)

    # ------------------------------------------------------------------ on site (control API)

    def present_maintenance_card(self, lock_id: str) -> EventRecorded:
        """The maintenance card at a lock: a ``lock_time_set`` incident if events get out."""
        now = self.now()
        return hardware.present_maintenance_card(self, self._lock(lock_id), now)

    def set_iq_online(self, iq_id: str, online: bool) -> IQ:
        """An IQ loses or regains its connection; regaining delivers its held-back events."""
        now = self.now()
        return hardware.set_iq_online(self, self._iq(iq_id), online, now)

    def power_cycle_iq(self, iq_id: str) -> IQ:
        """Power cycle an IQ (runbook A a1.1): it reconnects, half-connected locks re-attach."""
        now = self.now()
        return hardware.power_cycle_iq(self, self._iq(iq_id), now)

    def set_lock_online(self, lock_id: str, online: bool) -> Lock:
        """A lock loses or regains its link to the IQ."""
        now = self.now()
        return hardware.set_lock_online(self, self._lock(lock_id), online, now)

    def set_privacy_mode(self, lock_id: str, on: bool) -> Lock:
        """Set a lock's privacy mode (a repaired privacy connector turns it off)."""
        self.advance()
        lock = self._lock(lock_id)
        lock.privacy_mode = on
        return lock

    def reinstall_app(self, user_id: str) -> MobileKey:
        """The user reinstalls the app: a new mobile key (failing again if generation is broken)."""
        now = self.now()
        return hardware.reinstall_app(self, self._user(user_id), now)

    def buffered_events(self, lock_id: str) -> int:
        """How many events a disconnected lock or IQ holds back."""
        return self.events.held_back(lock_id)

    # ------------------------------------------------------------------ faults

    def inject(self, kind: str, **params: object) -> FaultRecord:
        """Inject a world fault of ``kind`` (see :mod:`faults`) and return its record."""
        now = self.now()
        record, undo = faults.inject(self, kind, params, now)
        self._fault_records[record.fault_id] = record
        self._undos[record.fault_id] = undo
        return record

    def clear(self, fault_id: str) -> None:
        """Undo a fault by fiat (not the same as a remedy); unknown ids are ``not_found``."""
        self.advance()
        record = self._fault_records.get(fault_id)
        if record is None:
            raise WorldError("not_found", f"no fault {fault_id}")
        undo = self._undos.pop(fault_id, None)
        if undo is not None:
            undo()
            record.cleared = True

    def faults(self) -> list[FaultStatus]:
        """Every fault injected so far, ``present`` computed from the world as it is now."""
        now = self.now()
        return [faults.status(self, record, now) for record in self._fault_records.values()]

    # ------------------------------------------------------------------ truth

    def truth_lock(self, user_id: str, lock_id: str) -> dict[str, object]:
        """What every layer decides for a user at a lock now, and the cause of a refusal."""
        now = self.now()
        return truth.truth_lock(self, self._user(user_id), self._lock(lock_id), now)

    def truth_door(
        self,
        door_id: str,
        *,
        personnel_id: str | None = None,
        visitor_id: str | None = None,
        credential_value: str | None = None,
        credential_type: CredentialType | None = None,
    ) -> dict[str, object]:
        """What every check of a door decides now for a person, a visitor or a credential."""
        now = self.now()
        door = self._door(door_id)
        ctype, value = truth.resolve_credential(
            self,
            personnel_id=personnel_id,
            visitor_id=visitor_id,
            credential_value=credential_value,
            credential_type=credential_type,
        )
        return truth.truth_door(self, door, ctype, value, now)

    # ------------------------------------------------------------------ determinism

    def fingerprint(self) -> str:
        """A hash of the whole world (entities, feeds, logs, schedule) to compare two builds."""
        return fingerprint.of(self)
