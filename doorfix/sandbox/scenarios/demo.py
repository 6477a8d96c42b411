"""The ``demo`` scenario: three centers, one instance of every world fault, people retrying.

Amsterdam Zuid holds every fault but two, each on its own company, person, inventory, lock and
door; Rotterdam Haven was released two hours ago (``aca.too_early``); Utrecht Annex's cloud
account may not pay (``cloud.no_payment``). The faulted people try every ``every_minutes``
from ``history_minutes`` before the build until ``hours`` after, healthy people every half
hour, so the feeds have a history at once and a fix shows in the next tries.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from types import MappingProxyType

from doorfix.sandbox.world.builder import Builder, Person
from doorfix.sandbox.world.model import (
    Center,
    Door,
    Holiday,
    Inventory,
    InventoryKind,
    Lock,
    LockType,
    TempKey,
    Visit,
    Visitor,
    VisitStatus,
    WorkingHours,
)
from doorfix.sandbox.world.rules import Via, zone
from doorfix.sandbox.world.world import DoorPresentation, LockPresentation, World

#: Lock-side actors: a company, its one user and inventory, and the lock (IQ, type).
_LOCK_ACTORS: Mapping[str, tuple[str, str, str, str, LockType]] = MappingProxyType(
    {
        "clp": ("Nordlicht BV", "Ada Visser", "701", "f7", "cylinder"),
        "iqs": ("Kestrel Labs", "Bram de Wit", "702", "f7", "cylinder"),
        "offline": ("Westpoint", "Chen Li", "501", "west", "wall_reader"),
        "privacy": ("Lumen Legal", "Eva Jansen", "704", "f7", "escutcheon"),
        "mismatch": ("Orbit Works", "Farid Haddad", "714", "f7", "cylinder"),
        "disabled": ("Pioneer Ventures", "Greta Bos", "706", "f7", "cylinder"),
        "nobooking": ("Quanta", "Hugo Smit", "707", "f7", "cylinder"),
        "revoked": ("Sable Systems", "Ivy Mulder", "309", "f3", "cylinder"),
        "corrupted": ("Tidewater", "Jan Peters", "310", "f3", "cylinder"),
        "genfail": ("Umbra Design", "Kira Bakker", "311", "f3", "cylinder"),
        "early": ("Zephyr", "Omar Yilmaz", "G01", "new", "cylinder"),
        "ok_tag": ("Vireo", "Lars Meijer", "712", "f7", "cylinder"),
        "ok_mkey": ("Wren & Co", "Mila de Vries", "312", "f3", "cylinder"),
        "ok_late": ("Yarrow", "Noor Hendriks", "715", "f7", "wall_reader"),
        "lostag": ("Halcyon", "Pim Vos", "716", "f7", "cylinder"),
    }
)
#: Door-side actors: center, company, user, inventory (kind), and its door (name, model).
_DOOR_ACTORS: Mapping[str, tuple[str, str, str, str, InventoryKind, str, str]] = MappingProxyType(
    {
        "unassigned": ("main", "Atlas Group", "Pia Claes", "720", "office", "Floor 7 lobby", "A08"),
        "lost": ("main", "Beacon", "Quinn Ros", "721", "office", "Reception", "EC33"),
        "nogroup": ("main", "Cobalt", "Rosa Smit", "730", "office", "Suite 730", "R29"),
        "inherited": ("main", "Delta Cleaning", "Sam Visser", "Gym", "common", "Gym", "A08"),
        "holiday": (
            "main",
            "Equinox",
            "Uma Dekker",
            "Roof terrace",
            "common",
            "Roof terrace",
            "EC33",
        ),
        "license": (
            "main",
            "Fjord",
            "Victor Kuipers",
            "Bike storage",
            "common",
            "Bike storage",
            "A08",
        ),
        "payment": ("annex", "Glacier", "Wendy Vos", "A1", "office", "Annex entrance", "A08"),
    }
)
#: Which center each IQ of the demo belongs to (and its revision).
_HUBS: Mapping[str, tuple[str, int]] = MappingProxyType(
    {
        "f7": ("main", 2),
        "f3": ("main", 1),
        "west": ("main", 2),
        "new": ("new", 2),
        "annex": ("annex", 2),
    }
)


class _Demo:
    """The demo's builder state: who is who, and their presentation schedules."""

    def __init__(self, w: World, history_minutes: int, hours: float, every_minutes: int) -> None:
        self.w = w
        self.b = Builder(w)
        self.first = -history_minutes
        self.until = self.b.at(hours * 60)
        self.every = every_minutes
        self.people: dict[str, Person] = {}
        self.locks: dict[str, Lock] = {}
        self.doors: dict[str, Door] = {}
        self.visitor_id = ""
        self.crew = ""

    def build(self) -> None:
        """Lay out the three centers, inject one fault of each kind, schedule the people."""
        self._layout()
        self._inject()
        self._schedule()

    def _layout(self) -> None:
        w, b = self.w, self.b
        centers = {
            "main": b.center("Amsterdam Zuid", "Europe/Amsterdam", released_days=400),
            "new": b.center("Rotterdam Haven", "Europe/Amsterdam", released_days=60, project=False),
            "annex": b.center("Utrecht Annex", "Europe/Amsterdam", released_days=200),
        }
        main = centers["main"]
        hubs = {k: b.iq(centers[c], revision=rev) for k, (c, rev) in _HUBS.items()}
        d = self.doors
        d["main"] = b.door(main, "Main entrance", "A08")
        d["side"] = b.door(main, "Side door", "EC33", "33.30.1.100")
        d["parking"] = b.door(main, "Parking", "R29", license_days=10)
        d["gate"] = b.door(main, "Visitor gate", "EC33")
        common = b.inventory(
            main, "Common areas", "common", [], [d["main"], d["side"], d["parking"], d["gate"]]
        )
        for key, (company, user, inventory, hub, lock_type) in _LOCK_ACTORS.items():
            center = centers[_HUBS[hub][0]]
            lock = self.locks[key] = b.lock(hubs[hub], inventory, lock_type)
            self.people[key] = self._actor(
                center,
                company,
                user,
                b.inventory(center, inventory, "office", [lock]),
                common if center is main else None,
            )
        for key, (c, company, user, inventory, kind, door, model) in _DOOR_ACTORS.items():
            center = centers[c]
            d[key] = b.door(center, door, model)
            inv = b.inventory(center, inventory, kind, [], [d[key]])
            # the one who loses a card keeps a second one
            self.people[key] = self._actor(
                center,
                company,
                user,
                inv,
                common if center is main else None,
                tags=2 if key == "lost" else 1,
            )
        # the co-working space whose name shares room 714's label (runbook A a3)
        b.inventory(
            main, "714ResCo-work01", "coworking", [b.lock(hubs["f7"], "714 co-work", "wall_reader")]
        )
        # the meeting room Quanta booked until the fault ends that booking
        self.locks["board"] = b.lock(hubs["f7"], "Boardroom", "cylinder")
        board = b.inventory(main, "Boardroom", "meeting_room", [self.locks["board"]])
        b.booking(w.companies[self.people["nobooking"].user.company_id], board)
        # a colleague at the lock whose IQ goes offline: granted, events arrive late
        self.people["ok_offline"] = b.person(
            w.companies[self.people["offline"].user.company_id], "Dana Kok"
        )
        self.crew = b.user_group(main, "Cleaning crew", [b.door_group(d["main"])])
        self.visitor_id = self._visitor(self.people["ok_tag"], d["gate"])
        self._calendar(main)
        b.finish()

    def _actor(
        self,
        center: Center,
        company: str,
        user: str,
        inventory: Inventory,
        common: Inventory | None,
        *,
        tags: int = 1,
    ) -> Person:
        """A company with one user, booking one inventory (and the common areas)."""
        co = self.b.company(center, company)
        self.b.booking(co, inventory)
        if common is not None:
            self.b.booking(co, common)
        return self.b.person(co, user, tags=tags)

    def _calendar(self, main: Center) -> None:
        """Holidays and visits that block nothing now: the ordinary background of a center."""
        w, b = self.w, self.b
        day = b.now.astimezone(zone(main.time_zone)).date()
        project = main.cloud_project_id or ""
        lobby = [self.doors["main"].door_id, self.doors["side"].door_id]
        for name, ahead, hours in (("Christmas", 40, None), ("King's Day", 70, ("10:00", "16:00"))):
            holiday = Holiday(
                w.new_id("hol"),
                project,
                name,
                [(day + timedelta(days=ahead)).isoformat()],
                hours is not None,
                WorkingHours(*hours) if hours else WorkingHours(),
                lobby,
            )
            w.holidays[holiday.holiday_id] = holiday
        host = self.people["ok_mkey"].user
        visits: tuple[tuple[str, int, VisitStatus], ...] = (
            ("Ruben Aalders", 24 * 60, "scheduled"),
            ("Sara Peeters", -26 * 60, "ended"),
        )
        for name, starts, status in visits:
            email = f"{name.lower().replace(' ', '.')}@example.com"
            visit = Visit(
                w.new_id("vis"),
                host.center_id,
                name,
                email,
                host.id,
                b.at(starts),
                b.at(starts + 120),
                status,
                None,
            )
            w.visits[visit.id] = visit

    def _visitor(self, host: Person, door: Door) -> str:
        """A visit in ACA, hosted by ``host``, and its cloud visitor with a temp key."""
        w, b = self.w, self.b
        visit = Visit(
            w.new_id("vis"),
            host.user.center_id,
            "Tess Wouters",
            "tess.wouters@example.com",
            host.user.id,
            b.at(-60),
            b.at(6 * 60),
            "active",
            None,
        )
        w.visits[visit.id] = visit
        visitor = Visitor(
            w.new_id("vtr"),
            door.project_id,
            visit.visitor_name,
            visit.visitor_email,
            _pid(host),
            visit.id,
            [
                TempKey(
                    w.new_id("tk"),
                    f"{b.rng.randrange(10**7, 10**8)}",
                    [door.door_id],
                    b.at(-60),
                    b.at(6 * 60),
                )
            ],
        )
        w.visitors[visitor.visitor_id] = visitor
        visit.cloud_visitor_id = visitor.visitor_id
        return visitor.visitor_id

    def _inject(self) -> None:
        p, lk, d, inject = self.people, self.locks, self.doors, self.w.inject
        uid = {k: v.user.id for k, v in p.items()}
        inject("aca.clp_out_of_sync", user_id=uid["clp"], lock_id=lk["clp"].id)
        inject("aca.iq_out_of_sync", user_id=uid["iqs"], lock_id=lk["iqs"].id)
        inject("aca.lock_offline", lock_id=lk["offline"].id, user_id=uid["offline"])
        inject("aca.privacy_mode", lock_id=lk["privacy"].id, user_id=uid["privacy"])
        inject("aca.booking_mismatch", user_id=uid["mismatch"], lock_id=lk["mismatch"].id)
        inject("aca.access_disabled", user_id=uid["disabled"], lock_id=lk["disabled"].id)
        inject("aca.no_booking", user_id=uid["nobooking"], lock_id=lk["board"].id)
        inject(
            "aca.too_early",
            center_id=p["early"].user.center_id,
            hours=2.0,
            user_id=uid["early"],
            lock_id=lk["early"].id,
        )
        # a lost tag still presented where CLP also denies: a security finding, never a toggle
        inject(
            "aca.tag_not_assigned",
            user_id=uid["lostag"],
            lock_id=lk["lostag"].id,
            larry_denied=True,
        )
        inject("aca.mkey_revoked", user_id=uid["revoked"], lock_id=lk["revoked"].id)
        inject("aca.mkey_corrupted", user_id=uid["corrupted"], lock_id=lk["corrupted"].id)
        inject("aca.mkey_generation_failed", user_id=uid["genfail"], lock_id=lk["genfail"].id)
        inject(
            "cloud.credential_unassigned",
            user_id=uid["unassigned"],
            door_id=d["unassigned"].door_id,
        )
        inject("cloud.unknown_credential", door_id=d["lost"].door_id, lost_user_id=uid["lost"])
        inject(
            "cloud.no_access_group", personnel_id=_pid(p["nogroup"]), door_id=d["nogroup"].door_id
        )
        inject(
            "cloud.inherited_group",
            personnel_id=_pid(p["inherited"]),
            door_id=d["inherited"].door_id,
            user_group_id=self.crew,
        )
        inject("cloud.visitor_expired", visitor_id=self.visitor_id)
        inject(
            "cloud.holiday_restriction",
            door_id=d["holiday"].door_id,
            personnel_id=_pid(p["holiday"]),
        )
        inject(
            "cloud.license_inactive",
            door_id=d["license"].door_id,
            status="expired",
            personnel_id=_pid(p["license"]),
        )
        inject(
            "cloud.no_payment",
            door_id=d["payment"].door_id,
            status="inactivated",
            personnel_id=_pid(p["payment"]),
        )
        # a healthy mobile-key user whose previous key was revoked and replaced long ago
        inject("aca.mkey_replaced_long_ago", user_id=uid["ok_mkey"], days_ago=400)
        inject("feed.late_events", lock_id=lk["ok_late"].id, hours=3.0)
        inject("feed.duplicate_events", every=7, count=2)

    def _schedule(self) -> None:
        p, lk, d = self.people, self.locks, self.doors
        for key in ("clp", "iqs", "offline", "privacy", "mismatch", "disabled", "early", "lostag"):
            self._present_lock(p[key], lk[key], "tag")
        self._present_lock(p["nobooking"], lk["board"], "tag")
        for key in ("revoked", "corrupted", "genfail"):
            self._present_lock(p[key], lk[key], "mkey")
        for key in ("unassigned", "nogroup", "inherited", "holiday", "license", "payment"):
            self._present_door(d[key], card=_card(p[key]))
        # whoever found Quinn's lost card keeps trying it
        self._present_door(d["lost"], card=_card(p["lost"]))
        self._present_door(d["gate"], visitor=self.visitor_id)
        # healthy people, every half hour
        self._present_lock(p["ok_tag"], lk["ok_tag"], "tag", every=30)
        self._present_lock(p["ok_mkey"], lk["ok_mkey"], "mkey", every=30)
        self._present_lock(p["ok_late"], lk["ok_late"], "tag", every=30)
        self._present_lock(p["ok_offline"], lk["offline"], "tag", every=30)
        self._present_door(d["main"], card=_card(p["ok_tag"]), every=30)
        self._present_door(d["side"], card=_card(p["ok_mkey"]), every=30)
        self._present_door(d["parking"], card=_card(p["ok_late"]), every=30)
        self.w.notes.update(
            {
                "normal.tag": _at_lock(p["ok_tag"], lk["ok_tag"], "tag"),
                "normal.mkey": _at_lock(p["ok_mkey"], lk["ok_mkey"], "mkey"),
                "normal.late_iq": _at_lock(p["ok_offline"], lk["offline"], "tag"),
                "normal.late_feed": _at_lock(p["ok_late"], lk["ok_late"], "tag"),
                "normal.door": _at_door(p["ok_tag"], d["main"]),
                "normal.old_firmware_door": _at_door(p["ok_mkey"], d["side"]),
                "license.expiring_soon": {
                    "door_id": d["parking"].door_id,
                    "project_id": d["parking"].project_id,
                },
            }
        )

    def _present_lock(self, p: Person, lock: Lock, via: Via, every: int | None = None) -> None:
        """``p`` presents at ``lock`` on the schedule (an offset so people do not queue)."""
        offset = self.b.rng.randrange(self.every)
        self.w.schedule_presentations(
            LockPresentation(p.user.id, lock.id, via),
            self.b.at(self.first + offset),
            60 * (every or self.every),
            self.until,
        )

    def _present_door(
        self,
        door: Door,
        *,
        card: str | None = None,
        visitor: str | None = None,
        every: int | None = None,
    ) -> None:
        """A card, or a visitor's newest temp key, presented at ``door`` on the schedule."""
        offset = self.b.rng.randrange(self.every)
        presentation = (
            DoorPresentation(door.door_id, "card", card)
            if card
            else DoorPresentation(door.door_id, "temp_key", visitor_id=visitor)
        )
        self.w.schedule_presentations(
            presentation, self.b.at(self.first + offset), 60 * (every or self.every), self.until
        )


def _card(p: Person) -> str:
    return p.user.tags[0].number


def _at_lock(p: Person, lock: Lock, via: str) -> dict[str, str]:
    return {"user_id": p.user.id, "lock_id": lock.id, "via": via}


def _at_door(p: Person, door: Door) -> dict[str, str]:
    return {
        "door_id": door.door_id,
        "personnel_id": _pid(p),
        "credential_type": "card",
        "credential_value": _card(p),
    }


def _pid(p: Person) -> str:
    if p.personnel is None:
        raise AssertionError("the actor's center has a cloud project")
    return p.personnel.personnel_id


def build_demo(
    w: World, *, history_minutes: int = 60, hours: float = 4.0, every_minutes: int = 10
) -> None:
    """One center with every fault once, a new center (too early), an annex without payment."""
    _Demo(w, history_minutes, hours, every_minutes).build()


def demo_manifest(world: World) -> dict[str, dict[str, str]]:
    """Fault kind (and the scenario's named extras) -> subject ids, plus ``fault_id``."""
    manifest = {f.kind: {**f.subject, "fault_id": f.fault_id} for f in world.faults()}
    manifest.update({k: dict(v) for k, v in world.notes.items()})
    return manifest
