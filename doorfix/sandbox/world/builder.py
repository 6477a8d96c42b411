"""A small vocabulary for building worlds: centers, IQs, locks, doors, companies, people.

Scenarios describe a world in these terms; :meth:`Builder.finish` then makes CLP, the IQs
and the cloud's access groups agree with ACA's bookings (by fiat, as a long-running
installation would), so a scenario starts healthy and faults are injected on top.
Every random choice draws from the world's seeded ``rng``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import MappingProxyType

from doorfix.sandbox.world.model import (
    IQ,
    Booking,
    Center,
    CloudAccessGroup,
    ClpAccessGroup,
    Company,
    Credential,
    Device,
    Door,
    Inventory,
    InventoryKind,
    Key,
    License,
    Lock,
    LockType,
    MobileKey,
    Personnel,
    Project,
    Schedule,
    Site,
    SiteUser,
    Tag,
    TimeSchedule,
    User,
    UserGroup,
)
from doorfix.sandbox.world.rules import booking_active
from doorfix.sandbox.world.world import World

#: The runbook's minimum firmware per model: scenarios use these as "current".
CURRENT_FIRMWARE: Mapping[str, str] = MappingProxyType(
    {
        "A08": "108.30.11.210",
        "EC33": "33.30.1.107",
        "R20": "320.30.12.16",
        "R29": "29.30.10.712",
        "X915V2": "2915.30.10.707",
    }
)

_FIRST = (
    "Ada",
    "Bram",
    "Chen",
    "Dana",
    "Eva",
    "Farid",
    "Greta",
    "Hugo",
    "Ivy",
    "Jan",
    "Kira",
    "Lars",
    "Mila",
    "Noor",
    "Omar",
    "Pia",
    "Quinn",
    "Rosa",
    "Sam",
    "Tess",
    "Uma",
    "Victor",
)
_LAST = (
    "Visser",
    "de Wit",
    "Li",
    "Kok",
    "Jansen",
    "Haddad",
    "Bos",
    "Smit",
    "Mulder",
    "Peters",
    "Bakker",
    "Meijer",
    "de Vries",
    "Hendriks",
    "Yilmaz",
    "Claes",
    "Ros",
    "Dekker",
)


@dataclass(frozen=True, slots=True)
class Person:
    """A user as the builder made them: ACA user, CLP site user, cloud personnel (if any)."""

    user: User
    site_user: SiteUser
    personnel: Personnel | None


class Builder:
    """Adds consistent entities to a world; call :meth:`finish` once at the end."""

    def __init__(self, world: World) -> None:
        self.w = world
        self.rng = world.rng
        self.now = world.clock.now()
        self._lock_group: dict[str, ClpAccessGroup] = {}
        self._door_group: dict[str, CloudAccessGroup] = {}
        self._company_users: dict[str, list[Person]] = {}
        self._tags: set[str] = set()

    # ------------------------------------------------------------------ identifiers

    def uuid(self) -> str:
        """A random-looking (seeded) UUID, as CLP uses for sites and platform users."""
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def mac(self) -> str:
        """A seeded MAC address."""
        return ":".join(f"{self.rng.randrange(256):02X}" for _ in range(6))

    def tag_number(self) -> str:
        """A new, unique 8-hex-digit card number."""
        while True:
            number = f"{self.rng.randrange(16**7, 16**8):08X}"
            if number not in self._tags:
                self._tags.add(number)
                return number

    def name(self) -> str:
        """A seeded person's name."""
        return f"{self.rng.choice(_FIRST)} {self.rng.choice(_LAST)}"

    # ------------------------------------------------------------------ places and hardware

    def center(
        self, name: str, time_zone: str, *, released_days: float = 400, project: bool = True
    ) -> Center:
        """A center with its CLP site and (optionally) its cloud project."""
        w = self.w
        site = Site(self.uuid(), f"{self.rng.randrange(10000, 99999)}", name, time_zone)
        w.sites[site.id] = site
        project_id = None
        if project:
            p = Project(w.new_id("p"), name, time_zone)
            w.projects[p.project_id] = p
            project_id = p.project_id
        center = Center(
            w.new_id("c"),
            name,
            self.now - timedelta(days=released_days),
            site.id,
            project_id,
            time_zone,
        )
        w.centers[center.id] = center
        return center

    def iq(self, center: Center, *, revision: int = 2) -> IQ:
        """An online IQ in a collection of its own."""
        hub = IQ(
            self.w.new_id("iq"),
            center.clp_site_id,
            self.mac(),
            1 if revision == 1 else 2,
            True,
            self.w.new_id("col"),
            self.now,
        )
        self.w.iqs[hub.id] = hub
        return hub

    def lock(self, hub: IQ, name: str, lock_type: LockType = "cylinder") -> Lock:
        """A lock attached to an IQ, with its own all-week CLP access group."""
        w = self.w
        lock = Lock(
            w.new_id("l"),
            hub.site_id,
            name,
            lock_type,
            True,
            "attached",
            False,
            "normal",
            hub.collection_id,
            hub.id,
        )
        w.locks[lock.id] = lock
        hub.lock_ids.append(lock.id)
        group = ClpAccessGroup(
            w.new_id("ag"), hub.site_id, f"{name} 24/7", [lock.id], [TimeSchedule()]
        )
        w.clp_access_groups[group.id] = group
        self._lock_group[lock.id] = group
        return lock

    def door(
        self,
        center: Center,
        name: str,
        model: str,
        firmware: str | None = None,
        *,
        license_days: float = 365,
    ) -> Door:
        """A cloud door with an active license and its own 24/7 access group."""
        w = self.w
        project_id = center.cloud_project_id
        if project_id is None:
            raise ValueError(f"center {center.id} has no cloud project")
        device = Device(model, firmware or CURRENT_FIRMWARE[model], self.mac())
        lic = License("active", self.now + timedelta(days=license_days))
        door = Door(w.new_id("d"), project_id, name, device, lic)
        w.doors[door.door_id] = door
        group = CloudAccessGroup(
            w.new_id("cag"), project_id, f"{name} 24/7", [door.door_id], Schedule()
        )
        w.cloud_access_groups[group.access_group_id] = group
        self._door_group[door.door_id] = group
        return door

    def user_group(self, center: Center, name: str, groups: list[CloudAccessGroup]) -> str:
        """A cloud user group whose members inherit ``groups``; answers its id."""
        group = UserGroup(
            self.w.new_id("ug"),
            center.cloud_project_id or "",
            name,
            [g.access_group_id for g in groups],
        )
        self.w.user_groups[group.user_group_id] = group
        return group.user_group_id

    def door_group(self, door: Door) -> CloudAccessGroup:
        """The door's own access group."""
        return self._door_group[door.door_id]

    # ------------------------------------------------------------------ tenants and people

    def inventory(
        self,
        center: Center,
        name: str,
        kind: InventoryKind = "office",
        locks: list[Lock] | None = None,
        doors: list[Door] | None = None,
    ) -> Inventory:
        """An inventory holding some locks and doors."""
        inv = Inventory(
            self.w.new_id("inv"),
            center.id,
            name,
            kind,
            [lk.id for lk in locks or []],
            [d.door_id for d in doors or []],
        )
        self.w.inventories[inv.id] = inv
        return inv

    def company(self, center: Center, name: str) -> Company:
        """A tenant company."""
        company = Company(self.w.new_id("co"), name, center.id)
        self.w.companies[company.id] = company
        self._company_users[company.id] = []
        return company

    def booking(
        self,
        company: Company,
        inventory: Inventory,
        *,
        days_before: float = 90,
        days_after: float = 275,
    ) -> Booking:
        """An active booking around now."""
        booking = Booking(
            self.w.new_id("b"),
            company.id,
            company.center_id,
            inventory.id,
            self.now - timedelta(days=days_before),
            self.now + timedelta(days=days_after),
            "active",
        )
        self.w.bookings[booking.id] = booking
        return booking

    def person(self, company: Company, name: str | None = None, *, tags: int = 1) -> Person:
        """A user with tags and a mobile key, their CLP site user and keys, and cloud personnel."""
        w = self.w
        center = w.centers[company.center_id]
        name = name or self.name()
        email = f"{name.lower().replace(' ', '.')}.{len(w.users) + 1}@example.com"
        user = User(
            w.new_id("u"),
            name,
            email,
            company.id,
            center.id,
            self.uuid(),
            None,
            [Tag(self.tag_number(), "assigned") for _ in range(tags)],
        )
        member = SiteUser(w.new_id("su"), center.clp_site_id, user.clp_user_id, name)
        w.site_users[member.id] = member
        for tag in user.tags:
            key = Key(w.new_id("k"), member.id, "tag", tag.number)
            w.keys[key.id] = key
        mkey = MobileKey(w.new_id("mk"), user.id, "active", self.now - timedelta(days=30))
        w.mobile_keys[mkey.id] = mkey
        key = Key(w.new_id("k"), member.id, "mkey", mkey.id)
        w.keys[key.id] = key
        personnel = None
        if center.cloud_project_id is not None:
            personnel = Personnel(
                w.new_id("per"),
                center.cloud_project_id,
                name,
                email,
                user.id,
                [Credential("card", t.number) for t in user.tags],
            )
            w.personnel[personnel.personnel_id] = personnel
            user.cloud_personnel_id = personnel.personnel_id
        # stored once complete, so the users table indexes its personnel id from the start
        w.users[user.id] = user
        made = Person(user, member, personnel)
        self._company_users[company.id].append(made)
        return made

    # ------------------------------------------------------------------ the end

    def finish(self) -> None:
        """Align CLP, the IQs and cloud access groups with ACA's active bookings; watch licenses."""
        w = self.w
        for booking in w.bookings.values():
            if not booking_active(booking, self.now):
                continue
            inv = w.inventories[booking.inventory_id]
            people = self._company_users.get(booking.company_id, [])
            for lock_id in inv.lock_ids:
                group = self._lock_group[lock_id]
                held = w.iqs[w.locks[lock_id].iq_id].held
                for p in people:
                    if w.matrix.get((p.user.id, lock_id), None) is None:
                        group.user_ids.add(p.user.clp_user_id)
                        held.add((p.user.clp_user_id, lock_id))
            for door_id in inv.door_ids:
                cag = self._door_group[door_id].access_group_id
                for p in people:
                    if p.personnel is not None and cag not in p.personnel.access_group_ids:
                        p.personnel.access_group_ids.append(cag)
        for door in w.doors.values():
            w.watch_license(door)

    def at(self, minutes: float) -> datetime:
        """The build's now plus ``minutes``."""
        return self.now + timedelta(minutes=minutes)
