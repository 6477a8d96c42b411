"""CLP's view of a lock and its IQ: the connection problems of row A a1, and the evidence.

The IQ's own record is preferred to the copy on the lock when both are at hand.
"""

from __future__ import annotations

from typing import Any

from doorfix.connectors.models.clp import Iq, Lock
from doorfix.playbooks.schedules import datetime_iso


def _iq_online(lock: Lock, iq: Iq | None) -> bool:
    return iq.online if iq is not None and iq.id == lock.iq.id else lock.iq.online


def _iq_revision(lock: Lock, iq: Iq | None) -> int:
    return iq.revision if iq is not None and iq.id == lock.iq.id else lock.iq.revision


def connection_problems(lock: Lock, iq: Iq | None) -> list[str]:
    """Why a lock's events cannot reach CLP (A a1), from CLP's lock and IQ state."""
    problems = []
    if not _iq_online(lock, iq):
        problems.append("iq_offline")
    if not lock.online:
        problems.append("lock_offline")
    if lock.iq_link_state == "attached_pending" and lock.online and _iq_revision(lock, iq) == 1:
        # the IQ1 half-connected lock: online, never fully attached, its events never arrive
        problems.append("half_connected")
    elif lock.iq_link_state != "attached":
        problems.append(f"link_{lock.iq_link_state}")
    return problems


def hardware_evidence(lock: Lock, iq: Iq | None) -> dict[str, Any]:
    """CLP's view of a lock and its IQ, for the report."""
    return {
        "lock_id": lock.id,
        "lock_name": lock.customer_reference,
        "lock_type": lock.lock_type,
        "lock_online": lock.online,
        "iq_id": lock.iq.id,
        "iq_online": _iq_online(lock, iq),
        "iq_revision": _iq_revision(lock, iq),
        "iq_link_state": lock.iq_link_state,
        "privacy_mode": lock.privacy_mode,
        "collection_id": lock.collection_id,
        "last_event_utc": datetime_iso(lock.last_event_utc),
    }
