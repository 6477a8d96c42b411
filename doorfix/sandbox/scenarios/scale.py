"""The ``scale`` scenario: many healthy centers, each fully modelled, and a long door-log history.

The history is written through the door-log store's bulk path (interned columns, rows in time
order) so a million rows build in seconds; its failures are cards nobody holds, which stay
consistent with the world whatever the agent looks up.
"""

from __future__ import annotations

from doorfix.sandbox.world.builder import CURRENT_FIRMWARE, Builder
from doorfix.sandbox.world.doorlogs import CREDENTIAL_TYPES, DoorSnapshot
from doorfix.sandbox.world.doors import INVALID, firmware_current
from doorfix.sandbox.world.model import LockType
from doorfix.sandbox.world.world import World

_LOCK_TYPES: tuple[LockType, ...] = ("cylinder", "escutcheon", "wall_reader", "cylinder", "locker")
_MODELS = ("A08", "EC33", "R20", "R29", "X915V2")


def build_scale(
    w: World,
    *,
    centers: int = 1000,
    locks_per_center: int = 5,
    doors_per_center: int = 4,
    users_per_center: int = 20,
    days: int = 7,
    door_logs: int = 1_000_000,
    failure_rate: float = 0.01,
) -> None:
    """Many healthy centers (full model each) and a long door-log history before now."""
    b = Builder(w)
    rng = b.rng
    projects: list[tuple[str, list[int], list[tuple[int, int, int]]]] = []
    store = w.door_logs
    old: set[int] = set()
    for n in range(centers):
        center = b.center(f"Center {n + 1:04d}", "Europe/Amsterdam", released_days=365)
        hub = b.iq(center)
        locks = [
            b.lock(hub, f"{100 + i}", _LOCK_TYPES[i % len(_LOCK_TYPES)])
            for i in range(locks_per_center)
        ]
        doors = []
        for i in range(doors_per_center):
            model = _MODELS[(n + i) % len(_MODELS)]
            # one door in twenty still runs firmware that writes no Detail
            firmware = "1.0.0.1" if rng.random() < 0.05 else CURRENT_FIRMWARE[model]
            doors.append(b.door(center, f"Door {i + 1}", model, firmware))
        spaces = max(1, locks_per_center)
        invs = [
            b.inventory(
                center,
                f"{100 + i}",
                "office",
                [locks[i]] if i < len(locks) else [],
                [d for j, d in enumerate(doors) if j % spaces == i],
            )
            for i in range(spaces)
        ]
        companies = [b.company(center, f"Company {n + 1}-{i + 1}") for i in range(len(invs))]
        for co, inv in zip(companies, invs, strict=True):
            b.booking(co, inv)
        people = [b.person(companies[i % len(companies)]) for i in range(users_per_center)]
        snaps = [
            store.intern_door(DoorSnapshot(d.door_id, d.name, d.device.model, d.device.firmware))
            for d in doors
        ]
        old.update(
            s
            for s, d in zip(snaps, doors, strict=True)
            if not firmware_current(d.device.model, d.device.firmware)
        )
        who = [
            (
                store.intern(p.personnel.personnel_id if p.personnel else None),
                store.intern(p.user.tags[0].number),
                store.intern(p.user.name),
            )
            for p in people
        ]
        projects.append((center.cloud_project_id or "", snaps, who))
    b.finish()
    _door_log_history(w, projects, old, days=days, rows=door_logs, failure_rate=failure_rate)


def _door_log_history(
    w: World,
    projects: list[tuple[str, list[int], list[tuple[int, int, int]]]],
    old: set[int],
    *,
    days: int,
    rows: int,
    failure_rate: float,
) -> None:
    """``rows`` door-log rows spread evenly over ``days`` before now, in time order."""
    store, rng = w.door_logs, w.rng
    if not projects or rows <= 0:
        return
    end = int(w.clock.now().timestamp())
    start = end - days * 86400
    step = (end - start) / rows
    card = CREDENTIAL_TYPES.index("card")
    empty, invalid = store.intern(""), store.intern(INVALID["card"])
    nobody, unknown = store.intern(None), store.intern("Unknown")
    strangers = [store.intern(f"{rng.randrange(16**7, 16**8):08X}") for _ in range(500)]
    first = store.reserve_log_ids(rows)
    buffers: list[list[tuple[int, ...]]] = [[] for _ in projects]
    # random() scaled by hand: randrange costs five times as much per row
    random, n_projects = rng.random, len(projects)
    for i in range(rows):
        p = int(random() * n_projects)
        _, snaps, who = projects[p]
        door = snaps[int(random() * len(snaps))]
        t = start + int(i * step)
        if random() < failure_rate:
            # a card nobody holds: consistent with the world whatever the agent looks up
            stranger = strangers[int(random() * len(strangers))]
            row: tuple[int, ...] = (
                first + i,
                t,
                door,
                0,
                empty if door in old else invalid,
                card,
                stranger,
                nobody,
                nobody,
                unknown,
            )
        else:
            pid, value, name = who[int(random() * len(who))]
            row = (first + i, t, door, 1, empty, card, value, pid, nobody, name)
        buffer = buffers[p]
        buffer.append(row)
        if len(buffer) >= 256:
            # flushed in chunks so a million rows never sit in memory as tuples
            store.extend_rows(projects[p][0], buffer)
            buffers[p] = []
    for (project_id, _, _), rest in zip(projects, buffers, strict=True):
        store.extend_rows(project_id, rest)
