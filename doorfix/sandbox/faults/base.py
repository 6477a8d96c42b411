"""The vocabulary of fault injectors: what one returns, a row of the table, shared helpers."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from doorfix.sandbox.world import rules
from doorfix.sandbox.world.model import Lock, User, WorldError
from doorfix.sandbox.world.state import WorldState

Undo = Callable[[], None]
Subject = dict[str, str]
T = TypeVar("T")


@dataclass(slots=True)
class Injected:
    """What an injector did: the subject, how to undo it, and any per-variant expectation."""

    subject: Subject
    undo: Undo
    outcome: str | None = None
    remedy_applies: bool = True


@dataclass(frozen=True, slots=True)
class FaultSpec:
    """One row of the fault table."""

    kind: str
    cause: str | None
    remedy: str | None
    outcome: str | None
    inject: Callable[..., Injected]
    present: Callable[[WorldState, Subject, datetime], bool]


def get(mapping: Mapping[str, T], key: str, what: str) -> T:
    """``mapping[key]``, or ``not_found`` naming what was missing."""
    found = mapping.get(key)
    if found is None:
        raise WorldError("not_found", f"no {what} {key}")
    return found


def lock_subject(w: WorldState, user: User | None, lock: Lock, via: str = "tag") -> Subject:
    """The ids a lock fault concerns (and the user who complains, if any)."""
    subject = {
        "center_id": rules.center_of_site(w, lock.site_id) or "",
        "site_id": lock.site_id,
        "lock_id": lock.id,
        "iq_id": lock.iq_id,
        "collection_id": lock.collection_id,
    }
    if user is not None:
        subject |= {"user_id": user.id, "clp_user_id": user.clp_user_id, "via": via}
    return subject


def aca_active(w: WorldState, user: User, lock_id: str, now: datetime) -> bool:
    """Whether ACA shows the user an active access to the lock."""
    access = rules.aca_access(w, user, lock_id, now)
    return access is not None and access.state == "active"


def pair(w: WorldState, s: Subject) -> tuple[User, Lock]:
    """The user and lock a subject names."""
    return w.users[s["user_id"]], w.locks[s["lock_id"]]


def larry_granted(w: WorldState, user: User, lock: Lock, now: datetime) -> bool:
    """Whether CLP grants the user the lock."""
    access = rules.larry_access(w, lock.site_id, user.clp_user_id, lock.id, now)
    return access.status == "granted"


def door_subject(w: WorldState, door_id: str) -> Subject:
    """The ids a door fault concerns."""
    door = w.doors[door_id]
    centers = [c.id for c in w.centers.values() if c.cloud_project_id == door.project_id]
    return {
        "door_id": door_id,
        "project_id": door.project_id,
        "center_id": centers[0] if centers else "",
    }


def person_subject(w: WorldState, personnel_id: str, door_id: str) -> Subject:
    """A door fault's ids plus the person, their ACA user and the card they carry."""
    person = w.personnel[personnel_id]
    subject = door_subject(w, door_id) | {"personnel_id": personnel_id}
    user = w.users.get(person.external_id or "")
    if user is not None:
        subject["user_id"] = user.id
        tag = rules.presented_tag(user)
        if tag is not None:
            subject |= {"credential_type": "card", "credential_value": tag.number}
    return subject


def door_or_person(w: WorldState, door_id: str, personnel_id: str | None) -> Subject:
    """The door's subject, naming the person who complains when one is given."""
    if personnel_id is None:
        return door_subject(w, door_id)
    get(w.personnel, personnel_id, "personnel")
    return person_subject(w, personnel_id, door_id)
