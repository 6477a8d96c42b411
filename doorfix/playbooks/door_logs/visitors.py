"""Door-log visitors: ``cloud.visitor_expired``, a temp key outside its validity.

A visitor is matched to ACA through ``aca_visit_id``; a new temp key is made only while ACA's
visit is still valid, never outlives it, and never opens more doors than the last key did.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from doorfix.connectors.models import epoch_seconds
from doorfix.connectors.models.cloud import DoorLog, TempKey, Visitor
from doorfix.playbooks import causes
from doorfix.playbooks.door_logs.evidence import context, refusal_at
from doorfix.playbooks.facts import DoorLogFacts
from doorfix.playbooks.policy import PlanPolicy
from doorfix.playbooks.schedules import epoch_iso, sorted_unique
from doorfix.playbooks.types import Cause, Plan, PlannedAction, Remedy


def presented_keys(visitor: Visitor, log: DoorLog) -> tuple[TempKey, ...]:
    """The temp key the log shows (by code), else every key of the visitor."""
    shown = tuple(key for key in visitor.temp_keys if key.code == log.credential_value)
    return shown or visitor.temp_keys


def key_valid(key: TempKey, at: datetime) -> bool:
    """Whether a temp key is within its validity at ``at``."""
    return key.start_time <= epoch_seconds(at) < key.finish_time


def visitor_expired(facts: DoorLogFacts) -> bool:
    """Whether the log's visitor presented no key valid at the refusal."""
    visitor = facts.visitor
    if facts.log.visitor_id is None or visitor is None:
        return False
    return not any(key_valid(key, refusal_at(facts)) for key in presented_keys(visitor, facts.log))


def visitor_evidence(facts: DoorLogFacts, now: datetime) -> dict[str, Any]:
    """The facts behind ``cloud.visitor_expired``: ACA's visit and its end."""
    visit = facts.visit
    return {
        "aca_visit_id": facts.visitor.aca_visit_id if facts.visitor else None,
        "visit_status": visit.status if visit else None,
        "visit_ends_at": visit.ends_at.isoformat() if visit else None,
    }


def _visitor_doors(visitor: Visitor, log: DoorLog) -> list[str]:
    """The doors of the visitor's last key for this door (never more than they had)."""
    keys = presented_keys(visitor, log)
    pool = [key for key in keys if log.door_id in key.door_ids] or list(keys)
    if not pool:
        return [log.door_id]
    latest = max(pool, key=lambda key: (key.finish_time, key.temp_key_id))
    return sorted_unique(latest.door_ids) or [log.door_id]


def plan_visitor(facts: DoorLogFacts, policy: PlanPolicy, now: datetime) -> Plan:
    """A new temp key from now to the visit's end, only while ACA's visit is valid."""
    visitor, visit = facts.visitor, facts.visit
    if visitor is None or visit is None or visit.id != visitor.aca_visit_id:
        return causes.no_fault("refused as designed: no ACA visit is known for this visitor")
    if visit.status not in ("scheduled", "active") or not visit.starts_at <= now < visit.ends_at:
        return causes.no_fault(f"refused as designed: the visit is {visit.status} or not current")
    start, finish = epoch_seconds(now), epoch_seconds(visit.ends_at)
    if finish <= start:
        return causes.no_fault("refused as designed: the visit ends now")
    door_ids = _visitor_doors(visitor, facts.log)
    if any(
        key_valid(key, now) and not key.expired and facts.log.door_id in key.door_ids
        for key in visitor.temp_keys
    ):
        return causes.no_fault("already resolved: the visitor holds a valid temp key")
    project_id = facts.project.project_id
    values = context(facts) | {
        "visitor_name": visitor.name,
        "door_ids": ", ".join(door_ids),
        "visit_ends_at": epoch_iso(finish),
    }
    action = PlannedAction(
        Remedy.CREATE_TEMP_KEY,
        "cloud",
        f"{project_id}/{visitor.visitor_id}",
        {
            "project_id": project_id,
            "visitor_id": visitor.visitor_id,
            "door_ids": door_ids,
            "start_time": start,
            "finish_time": finish,
        },
    )
    return causes.remedy(
        Cause.CLOUD_VISITOR_EXPIRED, (action,), values, reason="the ACA visit is still valid"
    )
