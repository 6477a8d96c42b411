"""The scale world cut small, with an agent on it in process: people and what they have booked."""

from __future__ import annotations

from itertools import combinations
from typing import Any

from starlette.applications import Starlette

from doorfix.agent.config import Settings
from doorfix.agent.engine.state import Agent
from doorfix.agent.journal.store import Journal
from doorfix.agent.runtime import Urls, build_agent, sandbox_secrets
from doorfix.clock import Clock
from doorfix.sandbox.api.transport import IN_PROCESS_ROOT, SandboxTransport
from doorfix.sandbox.world.doors import firmware_current
from doorfix.sandbox.world.world import World


def agent_on(app: Starlette, clock: Clock, settings: dict[str, Any]) -> Agent:
    """An agent with ``settings`` on the sandbox ``app`` (in process), its journal in memory."""
    return build_agent(
        Settings.model_validate(settings),
        sandbox_secrets(),
        clock=clock,
        journal=Journal(":memory:", clock=clock),
        urls=Urls.under(IN_PROCESS_ROOT),
        transport=SandboxTransport(app),
    )


def booked(world: World, user_id: str) -> tuple[list[str], list[str]]:
    """The locks and (current-firmware) doors the user's company has booked."""
    user = world.users[user_id]
    inventories = [
        world.inventories[b.inventory_id]
        for b in world.bookings.values()
        if b.company_id == user.company_id and b.status == "active"
    ]
    locks = [lock for inv in inventories for lock in inv.lock_ids]
    doors = [
        d
        for inv in inventories
        for d in inv.door_ids
        if firmware_current(world.doors[d].device.model, world.doors[d].device.firmware)
    ]
    return locks, doors


def pick(world: World) -> dict[str, list[tuple[str, str]]]:
    """(user, lock or door) pairs: two on one collection, two at their own lock, two at one door."""
    used: set[str] = set()
    by_user = {u: booked(world, u) for u in sorted(world.users)}
    # two people at two locks of one collection
    collection: list[tuple[str, str]] = []
    for (u1, (locks1, _)), (u2, (locks2, _)) in combinations(by_user.items(), 2):
        pairs = [
            (l1, l2)
            for l1 in locks1
            for l2 in locks2
            if l1 != l2 and world.locks[l1].collection_id == world.locks[l2].collection_id
        ]
        if pairs:
            collection = [(u1, pairs[0][0]), (u2, pairs[0][1])]
            used |= {u1, u2, *pairs[0]}
            break
    # two others, each at a lock of their own
    person = [
        (u, locks[0])
        for u, (locks, _) in by_user.items()
        if u not in used and locks and locks[0] not in used
    ][:2]
    used |= {u for u, _ in person} | {lock for _, lock in person}
    # two people with cards at one door
    holders: dict[str, list[str]] = {}
    for u, (_, doors) in by_user.items():
        user = world.users[u]
        if u in used or not user.tags or not user.cloud_personnel_id:
            continue
        for d in doors:
            holders.setdefault(d, []).append(u)
    door_id, people = next((d, us) for d, us in holders.items() if len(us) >= 2)
    return {
        "collection": collection,
        "person": person,
        "door": [(people[0], door_id), (people[1], door_id)],
    }
