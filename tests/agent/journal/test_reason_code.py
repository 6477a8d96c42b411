"""The journal keeps why a no_fault incident needs nothing: ``incidents.reason_code``."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from doorfix.agent.journal import schema
from doorfix.agent.journal.store import Journal
from doorfix.clock import ManualClock

NOTES = {
    "refused as designed: access disabled in the Access Matrix": "refused_as_designed",
    "already resolved: the door's license is active again": "already_resolved",
    "resolved by itself: the person was granted access afterwards": "already_resolved",
    "superseded by incident abc (aca.iq_out_of_sync, pending_verification)": "superseded",
}


def _record(journal: Journal, key: str, outcome: str, note: str) -> str:
    run = journal.start_run("aca-rejections", dry_run=False)
    row = journal.open_incident(
        key=key,
        cause="aca.no_booking",
        subject={"user_id": key},
        run_id=run,
        event_ids=[key],
        evidence={},
    )
    journal.set_outcome(row.incident_id, outcome=outcome, run_id=run, note=note)
    return row.incident_id


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 11, 16, 8, 0, tzinfo=UTC))


def test_each_no_fault_outcome_records_its_reason_code(tmp_path: Path, clock: ManualClock) -> None:
    path = tmp_path / "journal.sqlite3"
    with Journal(path, clock=clock) as journal:
        ids = {
            _record(journal, f"k{n}", "no_fault", note): code
            for n, (note, code) in enumerate(NOTES.items())
        }
        other = _record(journal, "kx", "needs_human", "refused as designed: not really")
        for incident_id, code in ids.items():
            row = journal.incident(incident_id)
            assert row is not None
            assert row.reason_code == code
        assert journal.incident(other).reason_code is None  # type: ignore[union-attr]
    with sqlite3.connect(path) as conn:
        stored = dict(conn.execute("SELECT incident_id, reason_code FROM incidents"))
    assert {k: stored[k] for k in ids} == ids


def test_migration_8_gives_older_incidents_their_code(tmp_path: Path, clock: ManualClock) -> None:
    path = tmp_path / "journal.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    schema.configure(conn, memory=False, where=str(path))
    before = tuple(m for m in schema.MIGRATIONS if m.version < 8)
    schema.migrate(conn, where=str(path), applied_at="2026-11-16T08:00:00Z", migrations=before)
    conn.close()
    with Journal(path, clock=clock) as journal:  # applies 8 on an empty table: fine
        pass
    # an incident written as a pre-8 doorfix would (no code), then the column re-derived
    with Journal(path, clock=clock) as journal:
        incident_id = _record(
            journal, "old", "no_fault", "already resolved: the credential is assigned"
        )
    with sqlite3.connect(path) as raw:
        raw.execute("UPDATE incidents SET reason_code = NULL")
        (eight,) = (m for m in schema.MIGRATIONS if m.version == 8)
        raw.execute(eight.statements[1])
        (code,) = raw.execute(
            "SELECT reason_code FROM incidents WHERE incident_id = ?", (incident_id,)
        ).fetchone()
    assert code == "already_resolved"
