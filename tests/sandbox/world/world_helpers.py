"""Small readers of world state shared by the world tests.

Each advances the world first, as every view does before it reads: the clock may have moved.
"""

from __future__ import annotations

from doorfix.sandbox.faults.registry import FaultStatus
from doorfix.sandbox.world.model import AcaEvent, DoorLog, Entry
from doorfix.sandbox.world.world import World


def fault(world: World, kind: str) -> FaultStatus:
    """The one fault of ``kind`` (the demo holds exactly one of each)."""
    (found,) = [f for f in world.faults() if f.kind == kind]
    return found


def events_of(world: World, user_id: str, lock_id: str) -> list[AcaEvent]:
    """ACA feed rows of one user at one lock, in feed order."""
    world.advance()
    return [e for e in world.aca_feed if e.user_id == user_id and e.lock_id == lock_id]


def entries_of(world: World, site_id: str, lock_id: str) -> list[Entry]:
    """CLP entries of one lock, in time order."""
    world.advance()
    return [e for e in world.entries.get(site_id, []) if e.lock_id == lock_id]


def last_log(world: World, project_id: str) -> DoorLog:
    """The newest door-log row of a project."""
    world.advance()
    (row,) = world.door_logs.last(project_id)
    return row


def feed(world: World) -> list[AcaEvent]:
    """ACA's whole feed, as of the clock's now."""
    world.advance()
    return world.aca_feed
