"""What every door-log diagnosis reports, and the context its checklists are rendered over.

A failure group is the log being diagnosed plus the same credential's other presentations;
the evidence says how often and where it was refused, on which device and firmware.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from doorfix.connectors.models.cloud import DoorLog
from doorfix.playbooks.door_logs.details import MIN_FIRMWARE, firmware_outdated
from doorfix.playbooks.facts import DoorLogFacts
from doorfix.playbooks.schedules import epoch_iso, sorted_unique


def _presentations(facts: DoorLogFacts) -> list[DoorLog]:
    rows = {row.log_id: row for row in (*facts.logs, *facts.presentations)}
    return sorted(rows.values(), key=lambda row: (row.capture_time, row.log_id))


def base_evidence(facts: DoorLogFacts) -> dict[str, Any]:
    """What every door-log diagnosis reports: the log, the device, how often and where."""
    log = facts.log
    rows = _presentations(facts)
    return {
        "detail": log.detail,
        "door_id": log.door_id,
        "door_name": log.door_name,
        "device_model": log.device_model,
        "firmware": log.firmware,
        "firmware_outdated": firmware_outdated(log.device_model, log.firmware),
        "credential_type": log.credential_type,
        "credential_value": log.credential_value,
        "count": len(rows),
        "doors": sorted_unique(row.door_id for row in rows),
        "first_seen": epoch_iso(rows[0].capture_time),
        "last_seen": epoch_iso(rows[-1].capture_time),
        "log_ids": [row.log_id for row in facts.logs],
    }


def context(facts: DoorLogFacts) -> dict[str, Any]:
    """The checklist context of a group: evidence plus the names a person looks for."""
    log = facts.log
    person = facts.personnel
    values = base_evidence(facts)
    values.update(
        project_id=facts.project.project_id,
        personnel_id=log.personnel_id or "-",
        personnel_name=person.name if person else "-",
        visitor_id=log.visitor_id or "-",
        min_firmware=MIN_FIRMWARE.get(log.device_model.strip().upper(), "?"),
        summary=f"Detail {log.detail!r} at door {log.door_id}",
    )
    return values


def refusal_at(facts: DoorLogFacts) -> datetime:
    """The refusal's instant (the group's latest presentation)."""
    return facts.log.capture_time_utc
