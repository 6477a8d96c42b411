"""A hash of a whole world, independent of the hash seed: two builds compare equal or not.

It covers every entity table, the feeds, the door logs, the schedule and the id counters;
indexes (derived state) are left out, so a world hashes the same however it was indexed.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Protocol

from doorfix.sandbox.world.state import WorldState


class Fingerprinted(WorldState, Protocol):
    """A world as the hash reads it: its state and its id counters."""

    _ids: dict[str, int]


def of(world: Fingerprinted) -> str:
    """The world's fingerprint (``World.fingerprint``)."""
    h = hashlib.sha256()
    for name in _STATE:
        h.update(name.encode())
        h.update(repr(_canonical(getattr(world, name))).encode())
    h.update(world.door_logs.digest().encode())
    h.update(repr([(due.isoformat(), name) for due, name in world.pending_effects()]).encode())
    h.update(repr(sorted(world._ids.items())).encode())
    return h.hexdigest()


_STATE = (
    "centers",
    "inventories",
    "companies",
    "bookings",
    "users",
    "mobile_keys",
    "visits",
    "matrix",
    "aca_feed",
    "sites",
    "locks",
    "iqs",
    "site_users",
    "keys",
    "clp_access_groups",
    "sync_jobs",
    "entries",
    "incidents",
    "projects",
    "doors",
    "personnel",
    "cloud_access_groups",
    "user_groups",
    "holidays",
    "visitors",
    "renewals",
    "push_broken",
    "sync_broken",
    "collection_changed_at",
    "feed_delay_h",
    "notes",
    "_fault_records",
)


def _canonical(value: object) -> object:
    """A hash-seed-independent form of world state: sets sorted, dataclasses as tuples."""
    if isinstance(value, dict):
        return sorted((repr(_canonical(k)), _canonical(v)) for k, v in value.items())
    if isinstance(value, set | frozenset):
        return sorted(repr(_canonical(v)) for v in value)
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    slots = getattr(type(value), "__slots__", None)
    if slots and hasattr(value, "__dataclass_fields__"):
        return (type(value).__name__, [_canonical(getattr(value, s)) for s in slots])
    return value
