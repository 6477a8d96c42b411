"""What the rule and fault modules know of the world: its state and a few of its verbs.

:class:`~doorfix.sandbox.world.world.World` imports the rule modules (:mod:`rules`,
:mod:`access`, :mod:`doors`, ...) and the fault registry and hands itself to their functions.
They take a :class:`WorldState` instead of a ``World``, so none of them imports
:mod:`~doorfix.sandbox.world.world` and the arrows point one way: ``world`` → the rules →
``state``. ``World`` satisfies the protocol structurally (mypy checks it wherever a ``World``
is passed); nothing subclasses it.

The event pipe is left out: it is built on this state (:mod:`events`), and the modules that
emit events take :class:`~doorfix.sandbox.world.events.WorldWithEvents`.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from doorfix.clock import Clock
from doorfix.sandbox.world.doorlogs import DoorLogStore
from doorfix.sandbox.world.model import (
    IQ,
    AcaEvent,
    Booking,
    Center,
    CloudAccessGroup,
    ClpAccessGroup,
    Company,
    Door,
    Entry,
    Holiday,
    Incident,
    Inventory,
    Key,
    Lock,
    MatrixCell,
    MobileKey,
    Personnel,
    Project,
    Site,
    SiteUser,
    SyncJob,
    User,
    UserGroup,
    Visit,
    Visitor,
)
from doorfix.sandbox.world.tables import Table

__all__ = ["Effect", "WorldSettings", "WorldState"]

#: a scheduled change of the world, called with the time it was due
Effect = Callable[[datetime], None]


@dataclass(slots=True)
class WorldSettings:
    """The world's timings; every delay is in clock seconds (or hours where named ``_h``)."""

    push_delay_s: float = 5
    propagation_delay_s: float = 30
    sync_start_delay_s: float = 1
    sync_duration_s: float = 20
    clp_change_block_seconds: float = 60
    release_grace_h: float = 24
    #: when a new center's IQs receive their first access (always inside the grace period)
    initial_propagation_h: float = 20
    #: days one month of door license adds
    license_month_days: int = 30


class WorldState(Protocol):
    """The world's entity tables, feeds, settings, rng and clock, and the verbs the rules use."""

    clock: Clock
    settings: WorldSettings
    rng: random.Random
    # ACA
    centers: Table[Center]
    inventories: Table[Inventory]
    companies: dict[str, Company]
    bookings: Table[Booking]
    users: Table[User]
    mobile_keys: Table[MobileKey]
    visits: Table[Visit]
    matrix: dict[tuple[str, str], MatrixCell]
    aca_feed: list[AcaEvent]
    # CLP
    sites: dict[str, Site]
    locks: Table[Lock]
    iqs: Table[IQ]
    site_users: Table[SiteUser]
    keys: Table[Key]
    clp_access_groups: Table[ClpAccessGroup]
    sync_jobs: Table[SyncJob]
    entries: dict[str, list[Entry]]
    incidents: dict[str, list[Incident]]
    # cloud
    projects: dict[str, Project]
    doors: Table[Door]
    personnel: Table[Personnel]
    cloud_access_groups: Table[CloudAccessGroup]
    user_groups: Table[UserGroup]
    holidays: Table[Holiday]
    visitors: Table[Visitor]
    door_logs: DoorLogStore
    renewals: dict[str, int]
    # the state world faults bend
    push_broken: set[str]
    #: (platform user, lock) pairs no Sync Access ever loads into the IQ (a sticky IQ fault)
    sync_broken: set[tuple[str, str]]
    collection_changed_at: dict[str, datetime]
    feed_duplicate_every: int
    feed_delay_h: dict[str, float]
    notes: dict[str, dict[str, str]]

    def new_id(self, prefix: str) -> str:
        """The next id with this prefix (``u-1``, ``u-2``, ...): deterministic, never reused."""
        ...

    def schedule(self, due: datetime, name: str, effect: Effect) -> None:
        """Run ``effect(due)`` once the clock reaches ``due``."""
        ...

    def pending_effects(self) -> list[tuple[datetime, str]]:
        """What is scheduled, soonest first."""
        ...

    def sync_iq(self, iq: IQ) -> None:
        """Load an IQ with exactly CLP's grants for its locks, by fiat."""
        ...

    def align_clp(self, user: User) -> None:
        """Make CLP and the IQs agree with ACA for one user, by fiat."""
        ...

    def watch_license(self, door: Door) -> None:
        """Turn the door's license to expired when its ``expires_at`` passes."""
        ...

    def set_iq_online(self, iq_id: str, online: bool) -> IQ:
        """An IQ loses or regains its connection; regaining delivers its held-back events."""
        ...
