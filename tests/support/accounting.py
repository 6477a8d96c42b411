"""What a journal says about its events, read with plain SQL, and the checks of "nothing lost".

Shared by the SIGKILL crash loop (``tests/crash``) and the safety properties on generated
worlds (``tests/e2e/test_safety_properties.py``): every event the journal marks seen is
accounted for (see :func:`unaccounted_events`), no event is in two incidents, and a closed
incident whose write held says so in its history.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from doorfix.sandbox.world.model import AcaEvent

REJECTIONS = frozenset({"tag_rejected", "mkey_rejected"})
GRANTS = frozenset({"tag_granted", "mkey_granted"})


@dataclass
class Snapshot:
    """What a copy of the journal file says, read with plain SQL."""

    integrity: list[str]
    started: set[str]
    running_runs: set[str]
    incidents: list[dict[str, Any]]
    history: dict[str, list[str]]
    notes: dict[str, list[str]]
    seen: dict[str, set[str]]
    #: Sync Access sent again by a reconciliation (a crash left the first one's outcome unknown),
    #: by collection: the one repeat the rules allow (README, "a Sync Access whose outcome...")
    resent_syncs: Counter[str] = field(default_factory=Counter)


def read_journal(conn: sqlite3.Connection) -> Snapshot:
    """What a journal says, read with plain SQL; closes ``conn``."""
    try:
        integrity = [row[0] for row in conn.execute("PRAGMA integrity_check")]
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        if "actions" not in tables:
            return Snapshot(integrity, set(), set(), [], {}, {}, {})  # killed before the schema
        started = {
            row[0] for row in conn.execute("SELECT action_id FROM actions WHERE status='started'")
        }
        running = {row[0] for row in conn.execute("SELECT run_id FROM runs WHERE status='running'")}
        incidents = [
            {
                "id": row[0],
                "subject": json.loads(row[1]),
                "event_ids": json.loads(row[2]),
                "cause": row[3],
                "outcome": row[4],
                "open": bool(row[5]),
                "writes": [
                    (remedy, status)
                    for remedy, status in conn.execute(
                        "SELECT remedy, status FROM actions WHERE incident_id = ? "
                        "AND remedy != 'escalate' ORDER BY seq",
                        (row[0],),
                    )
                ],
            }
            for row in conn.execute(
                "SELECT incident_id, subject, event_ids, cause, outcome, is_open FROM incidents"
            ).fetchall()
        ]
        history: dict[str, list[str]] = defaultdict(list)
        notes: dict[str, list[str]] = defaultdict(list)
        for incident_id, outcome, note in conn.execute(
            "SELECT incident_id, outcome, note FROM incident_history ORDER BY seq"
        ):
            history[incident_id].append(outcome)
            notes[incident_id].append(note or "")
        seen: dict[str, set[str]] = defaultdict(set)
        for feed, event_id in conn.execute("SELECT feed, event_id FROM seen_events"):
            seen[feed].add(event_id)
        resent: Counter[str] = Counter()
        for params, detail in conn.execute(
            "SELECT params, detail FROM actions WHERE remedy = 'sync_access'"
        ):
            if detail and json.loads(detail).get("sent_again"):
                resent[json.loads(params)["call"]["collection_id"]] += 1
    finally:
        conn.close()
    return Snapshot(
        integrity, started, running, incidents, dict(history), dict(notes), dict(seen), resent
    )


def rediagnosed(snap: Snapshot) -> dict[str, list[str]]:
    """Events in several incidents: event id -> the incidents holding it."""
    holder: dict[str, list[str]] = defaultdict(list)
    for incident in snap.incidents:
        for event_id in incident["event_ids"]:
            holder[event_id].append(incident["id"])
    return {e: ids for e, ids in holder.items() if len(ids) > 1}


def fix_unrecorded(snap: Snapshot) -> list[str]:
    """Closed incidents whose write held but whose history never says so."""
    problems: list[str] = []
    for incident in snap.incidents:
        held = any(status == "succeeded" for _, status in incident["writes"])
        said = {"fixed", "pending_verification", "needs_human"} & set(
            snap.history.get(incident["id"], [])
        )
        if not (incident["open"] or not held or said):
            problems.append(
                f"incident {incident['id']} ({incident['cause']}) made a write that held "
                f"and ended {incident['outcome']}"
            )
    return problems


def unaccounted_events(snap: Snapshot, aca_events: list[AcaEvent]) -> list[str]:
    """Seen events that no incident holds and nothing explains (see the module docstring)."""
    holder: dict[str, list[str]] = defaultdict(list)
    for incident in snap.incidents:
        for event_id in incident["event_ids"]:
            holder[event_id].append(incident["id"])
    problems = [f"{e} is in {len(ids)} incidents" for e, ids in rediagnosed(snap).items()]
    for feed, ids in snap.seen.items():
        if feed.startswith("door-logs:"):
            # only failures are marked seen on a door-log feed, each after its incident
            problems += [f"door log {e} seen, in no incident" for e in sorted(ids - set(holder))]
    seen_aca = snap.seen.get("aca-events", set())
    by_id = {e.id: e for e in aca_events}
    unknown = seen_aca - set(by_id)
    problems += [f"ACA event {e} seen, not in the sandbox's feed" for e in sorted(unknown)]
    fixed_pairs = {
        (i["subject"].get("user_id"), i["subject"].get("lock_id"))
        for i in snap.incidents
        if {"fixed", "pending_verification"} & set(snap.history.get(i["id"], []))
    }
    grants: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    for event_id in seen_aca & set(by_id):
        event = by_id[event_id]
        if event.type in GRANTS:
            grants[(event.user_id, event.lock_id)].append(event.occurred_at)
    for event_id in sorted(seen_aca & set(by_id)):
        event = by_id[event_id]
        pair = (event.user_id, event.lock_id)
        if event.type not in REJECTIONS or event_id in holder or pair in fixed_pairs:
            continue
        if any(at > event.occurred_at for at in grants[pair]):
            continue  # the person got in afterwards: the group resolved itself
        problems.append(f"ACA rejection {event_id} of {pair} seen, in no incident")
    return problems
