"""The journal: what the engine records survives, groups, closes, dedupes and is pruned."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from doorfix.agent.journal import sql as journal_sql
from doorfix.agent.journal.schema import MIGRATIONS, Migration, migrate
from doorfix.agent.journal.store import FINAL_OUTCOMES, OPEN_OUTCOMES, IncidentRow, Journal
from doorfix.clock import ManualClock
from doorfix.errors import JournalError, StateConflict, UnknownRecord

START = datetime(2026, 11, 16, 8, 0, tzinfo=UTC)
SUBJECT = {"center_id": "c-1", "user_id": "u-7", "lock_id": "l-3"}
KEY = "aca.clp_out_of_sync|c-1|u-7|l-3"
AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "journal.sqlite3"


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    """Every test of the journal's behaviour runs on both backends."""
    return str(request.param)


#: for the tests of SQLite's own file (WAL, corruption, locks): SQLite only
SQLITE_ONLY = pytest.mark.parametrize("backend", ["sqlite"])


@pytest.fixture
def target(backend: str, path: Path, request: pytest.FixtureRequest) -> str:
    """The journal's file, or a fresh PostgreSQL database's URL."""
    if backend == "sqlite":
        return str(path)
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def journal(target: str, clock: ManualClock) -> Iterator[Journal]:
    with Journal(target, clock=clock) as journal:
        yield journal


@pytest.fixture
def run_id(journal: Journal) -> str:
    return journal.start_run("aca-rejections", dry_run=False)


def raw(path: Path) -> contextlib.closing[sqlite3.Connection]:
    """A plain connection to the file, as another process (or a tamperer) would open it."""
    return contextlib.closing(sqlite3.connect(path, isolation_level=None))


def open_one(
    journal: Journal,
    run_id: str,
    *,
    key: str = KEY,
    events: tuple[str, ...] = ("ev-1",),
    subject: dict[str, str] | None = None,
    cause: str = "aca.clp_out_of_sync",
    feeds: dict[str, str] | None = None,
) -> IncidentRow:
    return journal.open_incident(
        key=key,
        cause=cause,
        subject=SUBJECT if subject is None else subject,
        run_id=run_id,
        event_ids=events,
        evidence={"aca_access": "active", "larry_access": "denied"},
        feeds=feeds,
    )


def intend(journal: Journal, run_id: str, incident_id: str, *, key: str = "k-1", **kw: str) -> str:
    fields = {"remedy": "toggle_access_matrix", "target": "u-7/l-3", "system": "aca"} | kw
    return journal.intent(
        run_id=run_id,
        incident_id=incident_id,
        params={"user_id": "u-7", "lock_id": "l-3"},
        idempotency_key=key,
        **fields,
    )


# opening, schema, health ---------------------------------------------------------------


def test_file_journal_is_in_wal_mode_and_survives_reopen(path: Path, clock: ManualClock) -> None:
    with Journal(path, clock=clock) as journal:
        run_id = journal.start_run("door-logs", dry_run=True)
    with raw(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with Journal(path, clock=clock) as journal:
        assert [run.run_id for run in journal.runs()] == [run_id]


def test_reopening_applies_no_migration_twice(path: Path, clock: ManualClock) -> None:
    for _ in range(3):
        Journal(path, clock=clock).close()
    with raw(path) as conn:
        versions = [row[0] for row in conn.execute("SELECT version FROM schema_version")]
    assert versions == [step.version for step in MIGRATIONS]
    # versions may have gaps (each branch takes its own number), never repeats or disorder
    assert versions == sorted(set(versions))


def test_a_journal_from_a_newer_doorfix_is_refused(path: Path, clock: ManualClock) -> None:
    Journal(path, clock=clock).close()
    with raw(path) as conn:
        conn.execute(
            "INSERT INTO schema_version (version, description, applied_at) "
            "VALUES (999, 'from the future', '2027-01-01T00:00:00Z')"
        )
    with pytest.raises(JournalError, match="schema version 999 is newer") as caught:
        Journal(path, clock=clock)
    assert str(path) in str(caught.value)


def test_migrations_apply_only_the_missing_steps_in_order(path: Path) -> None:
    first = Migration(1, "a", ("CREATE TABLE a (x INTEGER)",))
    second = Migration(2, "b", ("CREATE TABLE b (x INTEGER)", "INSERT INTO b (x) VALUES (1)"))
    with raw(path) as conn:
        assert migrate(conn, where=str(path), applied_at="t", migrations=[first]) == 1
        assert migrate(conn, where=str(path), applied_at="t", migrations=[first, second]) == 2
        assert migrate(conn, where=str(path), applied_at="t", migrations=[first, second]) == 2
        assert conn.execute("SELECT COUNT(*) FROM b").fetchone()[0] == 1
        versions = [row[0] for row in conn.execute("SELECT version FROM schema_version")]
    assert versions == [1, 2]


def test_a_missing_version_below_the_highest_is_applied(path: Path) -> None:
    # branches number their migrations apart: a journal at 1, 2, 8 meets a doorfix that also
    # knows 5 (merged later); 5 is applied, and a 4 added later still, each once, in order
    one = Migration(1, "a", ("CREATE TABLE a (x INTEGER)",))
    two = Migration(2, "b", ("CREATE TABLE b (x INTEGER)",))
    four = Migration(4, "d", ("CREATE TABLE d (x INTEGER)",))
    five = Migration(5, "e", ("CREATE TABLE e (x INTEGER)", "INSERT INTO e (x) VALUES (5)"))
    eight = Migration(8, "h", ("CREATE TABLE h (x INTEGER)",))
    with raw(path) as conn:
        assert migrate(conn, where=str(path), applied_at="t", migrations=[one, two, eight]) == 8
        every = [one, two, five, eight]
        assert migrate(conn, where=str(path), applied_at="t", migrations=every) == 8
        assert migrate(conn, where=str(path), applied_at="t", migrations=every) == 8
        assert conn.execute("SELECT COUNT(*) FROM e").fetchone()[0] == 1
        every = [one, two, four, five, eight]
        assert migrate(conn, where=str(path), applied_at="t", migrations=every) == 8
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        versions = [row[0] for row in conn.execute("SELECT version FROM schema_version")]
    assert {"a", "b", "d", "e", "h"} <= tables
    assert sorted(versions) == [1, 2, 4, 5, 8]


def test_a_real_journal_missing_a_middle_version_is_completed(
    path: Path, clock: ManualClock
) -> None:
    # a journal written by a doorfix that knew every version but 5 (integ2: 1-4 and 8)
    with raw(path) as conn:
        without = [m for m in MIGRATIONS if m.version != 5]
        migrate(conn, where=str(path), applied_at="t", migrations=without)
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert "approvals" not in tables
    with pytest.raises(JournalError, match="lacks version 5"):
        Journal(path, clock=clock, read_only=True)
    Journal(path, clock=clock).close()
    with raw(path) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        versions = [row[0] for row in conn.execute("SELECT version FROM schema_version")]
    assert {"approvals", "incident_marks"} <= tables
    assert sorted(versions) == [step.version for step in MIGRATIONS]
    Journal(path, clock=clock, read_only=True).close()


def test_an_unknown_version_below_the_highest_is_refused(path: Path, clock: ManualClock) -> None:
    Journal(path, clock=clock).close()
    known = {step.version for step in MIGRATIONS}
    stranger = next(v for v in range(1, max(known)) if v not in known)
    with raw(path) as conn:
        conn.execute(
            "INSERT INTO schema_version (version, description, applied_at) "
            "VALUES (:v, 'another branch', '2027-01-01T00:00:00Z')",
            {"v": stranger},
        )
    for read_only in (False, True):
        with pytest.raises(JournalError, match=f"schema version\\(s\\) {stranger} this"):
            Journal(path, clock=clock, read_only=read_only)


def test_a_failing_migration_leaves_the_schema_as_it_was(path: Path) -> None:
    first = Migration(1, "a", ("CREATE TABLE a (x INTEGER)",))
    broken = Migration(2, "b", ("CREATE TABLE b (x INTEGER)", "CREATE TABLE a (y INTEGER)"))
    with raw(path) as conn:
        migrate(conn, where=str(path), applied_at="t", migrations=[first])
        with pytest.raises(sqlite3.OperationalError):
            migrate(conn, where=str(path), applied_at="t", migrations=[first, broken])
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        assert "b" not in tables
        assert conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] == 1


def test_another_applications_database_is_not_taken_over(path: Path, clock: ManualClock) -> None:
    with raw(path) as conn:
        conn.execute("CREATE TABLE customers (name TEXT)")
    with pytest.raises(JournalError, match="not a doorfix journal"):
        Journal(path, clock=clock)


def test_a_directory_is_refused_with_its_path(tmp_path: Path, clock: ManualClock) -> None:
    with pytest.raises(JournalError, match="is a directory") as caught:
        Journal(tmp_path, clock=clock)
    assert str(tmp_path) in str(caught.value)


def test_a_missing_directory_is_refused(tmp_path: Path, clock: ManualClock) -> None:
    path = tmp_path / "nowhere" / "journal.sqlite3"
    with pytest.raises(JournalError, match="does not exist") as caught:
        Journal(path, clock=clock)
    assert str(path) in str(caught.value)


@pytest.mark.skipif(AS_ROOT, reason="root writes through file permissions")
def test_a_read_only_directory_is_refused(tmp_path: Path, clock: ManualClock) -> None:
    locked = tmp_path / "ro"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        with pytest.raises(JournalError, match="not writable") as caught:
            Journal(locked / "journal.sqlite3", clock=clock)
        assert str(locked) in str(caught.value)
    finally:
        locked.chmod(0o755)


@pytest.mark.skipif(AS_ROOT, reason="root reads through file permissions")
def test_an_unreadable_file_is_refused(path: Path, clock: ManualClock) -> None:
    Journal(path, clock=clock).close()
    path.chmod(0o000)
    try:
        with pytest.raises(JournalError, match="not readable and writable") as caught:
            Journal(path, clock=clock)
        assert str(path) in str(caught.value)
    finally:
        path.chmod(0o644)


def test_a_garbage_file_is_refused_at_open(path: Path, clock: ManualClock) -> None:
    path.write_bytes(os.urandom(16384))
    with pytest.raises(JournalError, match="not a database") as caught:
        Journal(path, clock=clock)
    assert str(path) in str(caught.value)


def test_a_torn_journal_is_refused_at_open(path: Path, clock: ManualClock) -> None:
    with Journal(path, clock=clock) as journal:
        run_id = journal.start_run("door-logs", dry_run=False)
        ids = [f"event-{n:08d}" for n in range(20000)]
        journal.advance_feed("door-logs", cursor="c-1", event_ids=ids, run_id=run_id)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(JournalError, match=r"malformed|corrupt") as caught:
        Journal(path, clock=clock)
    assert str(path) in str(caught.value)


def test_memory_journal_for_tests(clock: ManualClock) -> None:
    with Journal(":memory:", clock=clock) as journal:
        run_id = journal.start_run("door-logs", dry_run=False)
        assert journal.runs()[0].run_id == run_id
        assert journal.check() is None


def test_a_closed_journal_refuses_calls(journal: Journal) -> None:
    journal.close()
    journal.close()
    with pytest.raises(JournalError, match="closed"):
        journal.start_run("door-logs", dry_run=False)
    with pytest.raises(JournalError, match="closed"):
        journal.cursor("door-logs")
    assert journal.check() == f"journal {journal.path} is closed"


def test_check_passes_on_a_healthy_journal(journal: Journal, run_id: str) -> None:
    open_one(journal, run_id)
    assert journal.check() is None


@SQLITE_ONLY
def test_check_reports_a_journal_corrupted_under_it(
    journal: Journal, path: Path, run_id: str
) -> None:
    ids = [f"event-{n:08d}" for n in range(20000)]
    journal.advance_feed("door-logs", cursor="c-1", event_ids=ids, run_id=run_id)
    with raw(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        with path.open("r+b") as fh:
            fh.seek(4096 * 20)
            fh.write(b"\xff" * 4096 * 5)
        # a commit by another connection makes the journal drop its cached pages
        conn.execute("INSERT INTO journal_probe (probe_id, probed_at) VALUES (2, 'x')")
    reason = journal.check()
    assert reason is not None
    assert str(path) in reason
    assert "malformed" in reason or "corrupt" in reason


@SQLITE_ONLY
def test_check_reports_a_journal_it_cannot_write(journal: Journal, path: Path) -> None:
    with raw(path) as conn:
        conn.execute("BEGIN IMMEDIATE")
        reason = journal.check()
        conn.execute("ROLLBACK")
    assert reason is not None
    assert "cannot be written" in reason
    assert "locked" in reason
    assert journal.check() is None


# runs ----------------------------------------------------------------------------------


def test_a_run_is_recorded_from_start_to_finish(journal: Journal, clock: ManualClock) -> None:
    run_id = journal.start_run("door-logs", dry_run=True)
    started = journal.runs()[0]
    assert (started.run_id, started.playbook, started.dry_run) == (run_id, "door-logs", True)
    assert (started.status, started.started_at, started.finished_at) == ("running", START, None)
    assert len(run_id) == 32
    clock.advance(90)
    journal.finish_run(run_id, status="failed", counts={"fixed": 2}, error="aca unreachable")
    finished = journal.runs()[0]
    assert finished.status == "failed"
    assert finished.finished_at == START + timedelta(seconds=90)
    assert finished.counts == {"fixed": 2}
    assert finished.error == "aca unreachable"


def test_a_run_finishes_once(journal: Journal, run_id: str) -> None:
    journal.finish_run(run_id, status="completed", counts={})
    with pytest.raises(JournalError, match="already completed"):
        journal.finish_run(run_id, status="interrupted", counts={})
    with pytest.raises(JournalError, match="unknown"):
        journal.finish_run("nope", status="completed", counts={})


def test_runs_are_listed_newest_first_and_filtered(journal: Journal, clock: ManualClock) -> None:
    ids = []
    for n in range(4):
        ids.append(journal.start_run("door-logs" if n % 2 else "aca-rejections", dry_run=False))
        clock.advance(timedelta(hours=1))
    assert [run.run_id for run in journal.runs()] == ids[::-1]
    assert [run.run_id for run in journal.runs(playbook="door-logs")] == [ids[3], ids[1]]
    assert [run.run_id for run in journal.runs(since=START + timedelta(hours=2))] == [
        ids[3],
        ids[2],
    ]
    assert [run.run_id for run in journal.runs(limit=1)] == [ids[3]]


def test_last_successful_run_skips_failures_and_other_playbooks(
    journal: Journal, clock: ManualClock
) -> None:
    assert journal.last_successful_run("door-logs") is None
    good = journal.start_run("door-logs", dry_run=False)
    journal.finish_run(good, status="completed", counts={})
    clock.advance(60)
    bad = journal.start_run("door-logs", dry_run=False)
    journal.finish_run(bad, status="failed", counts={}, error="boom")
    other = journal.start_run("aca-rejections", dry_run=False)
    journal.finish_run(other, status="completed", counts={})
    journal.start_run("door-logs", dry_run=False)
    last = journal.last_successful_run("door-logs")
    assert last is not None
    assert last.run_id == good


def test_the_newest_time_written_is_of_a_run_or_an_incident_whichever_is_later(
    journal: Journal, clock: ManualClock
) -> None:
    # what ``doorfix report`` ends at when a clock ahead of the reader's wrote the journal
    assert journal.newest_at() is None
    run = journal.start_run("door-logs", dry_run=False)
    assert journal.newest_at() == START
    clock.advance(90)
    open_one(journal, run)
    assert journal.newest_at() == START + timedelta(seconds=90)
    clock.advance(30)
    journal.finish_run(run, status="completed", counts={})
    assert journal.newest_at() == START + timedelta(seconds=120)


# feeds ---------------------------------------------------------------------------------


def test_a_feed_has_no_cursor_before_its_first_advance(journal: Journal) -> None:
    assert journal.cursor("door-logs") is None
    assert journal.unseen("door-logs", ["a", "b"]) == {"a", "b"}


def test_advance_feed_stores_the_cursor_and_the_ids_together(journal: Journal, run_id: str) -> None:
    journal.advance_feed("door-logs", cursor="page-2", event_ids=["a", "b"], run_id=run_id)
    assert journal.cursor("door-logs") == "page-2"
    assert journal.unseen("door-logs", ["a", "b", "c"]) == {"c"}
    assert journal.cursor("aca-events") is None
    assert journal.unseen("aca-events", ["a"]) == {"a"}


def test_overlapping_windows_and_repeats_are_deduplicated(journal: Journal, run_id: str) -> None:
    journal.advance_feed(
        "door-logs", cursor="t1", event_ids=["e1", "e2", "e2", "e3"], run_id=run_id
    )
    assert journal.unseen("door-logs", ["e2", "e3", "e4", "e4", "e5"]) == {"e4", "e5"}
    journal.advance_feed(
        "door-logs", cursor="t2", event_ids=["e2", "e3", "e4", "e5"], run_id=run_id
    )
    assert journal.unseen("door-logs", ["e1", "e5", "e6"]) == {"e6"}
    assert journal.cursor("door-logs") == "t2"


def test_a_none_cursor_marks_ids_and_keeps_the_position(journal: Journal, run_id: str) -> None:
    journal.advance_feed("door-logs", cursor="t1", event_ids=["e1"], run_id=run_id)
    journal.advance_feed("door-logs", cursor=None, event_ids=["e2"], run_id=run_id)
    assert journal.cursor("door-logs") == "t1"
    assert journal.unseen("door-logs", ["e1", "e2"]) == set()


def test_a_failed_advance_marks_nothing_seen(journal: Journal, run_id: str) -> None:
    journal.advance_feed("door-logs", cursor="t1", event_ids=["e1"], run_id=run_id)
    unstorable: str = object()  # type: ignore[assignment]
    with pytest.raises(JournalError, match="advance_feed failed on journal") as failed:
        journal.advance_feed("door-logs", cursor=unstorable, event_ids=["e2", "e3"], run_id=run_id)
    assert journal.path in str(failed.value)
    assert journal.cursor("door-logs") == "t1"
    assert journal.unseen("door-logs", ["e2", "e3"]) == {"e2", "e3"}


def test_an_advance_for_an_unknown_run_is_refused(journal: Journal) -> None:
    with pytest.raises(JournalError, match=r"(?i)FOREIGN KEY"):
        journal.advance_feed("door-logs", cursor="t1", event_ids=["e1"], run_id="no-such-run")
    assert journal.cursor("door-logs") is None


def test_unseen_handles_more_ids_than_one_query_binds(journal: Journal, run_id: str) -> None:
    ids = [f"e{n}" for n in range(journal_sql.IN_CHUNK * 2 + 7)]
    journal.advance_feed("door-logs", cursor="t", event_ids=ids[::2], run_id=run_id)
    assert journal.unseen("door-logs", ids) == set(ids[1::2])


# incidents -----------------------------------------------------------------------------


def test_ten_events_group_into_one_open_incident(
    journal: Journal, run_id: str, clock: ManualClock
) -> None:
    rows = []
    for n in range(10):
        rows.append(open_one(journal, run_id, events=(f"ev-{n}",)))
        clock.advance(60)
    incident = rows[-1]
    assert {row.incident_id for row in rows} == {incident.incident_id}
    assert incident.open
    assert incident.outcome is None
    assert incident.occurrences == 10
    assert incident.event_ids == [f"ev-{n}" for n in range(10)]
    assert incident.first_seen_at == START
    assert incident.last_seen_at == START + timedelta(seconds=540)
    assert incident.subject == SUBJECT
    assert incident.key == KEY
    assert incident.run_id == run_id
    assert journal.open_incidents() == [incident]


def test_a_later_run_adds_to_the_open_incident(journal: Journal, run_id: str) -> None:
    first = open_one(journal, run_id, events=("ev-1", "ev-2"))
    journal.set_outcome(first.incident_id, outcome="pending_verification", run_id=run_id)
    later_run = journal.start_run("aca-rejections", dry_run=False)
    again = journal.open_incident(
        key=KEY,
        cause="aca.clp_out_of_sync",
        subject=SUBJECT,
        run_id=later_run,
        event_ids=["ev-2", "ev-3"],
        evidence={"larry_access": "granted", "iq": "online"},
    )
    assert again.incident_id == first.incident_id
    assert again.event_ids == ["ev-1", "ev-2", "ev-3"]
    assert again.occurrences == 3
    assert again.outcome == "pending_verification"
    assert again.evidence == {"aca_access": "active", "larry_access": "granted", "iq": "online"}


def test_a_ticket_without_events_counts_one_occurrence_per_report(
    journal: Journal, run_id: str
) -> None:
    open_one(journal, run_id, events=())
    incident = open_one(journal, run_id, events=())
    assert (incident.occurrences, incident.event_ids) == (2, [])


@pytest.mark.parametrize("outcome", sorted(FINAL_OUTCOMES))
def test_a_final_outcome_closes_the_incident(
    journal: Journal, run_id: str, clock: ManualClock, outcome: str
) -> None:
    incident = open_one(journal, run_id)
    clock.advance(30)
    journal.set_outcome(incident.incident_id, outcome=outcome, run_id=run_id, note="done")
    closed = journal.incident(incident.incident_id)
    assert closed is not None
    assert (closed.open, closed.outcome) == (False, outcome)
    assert journal.open_incidents() == []
    [entry] = journal.history(incident.incident_id)
    assert (entry.outcome, entry.run_id, entry.note) == (outcome, run_id, "done")
    assert entry.at == START + timedelta(seconds=30)


@pytest.mark.parametrize("outcome", sorted(OPEN_OUTCOMES))
def test_a_pending_outcome_keeps_the_incident_open(
    journal: Journal, run_id: str, outcome: str
) -> None:
    incident = open_one(journal, run_id)
    journal.set_outcome(incident.incident_id, outcome=outcome, run_id=run_id)
    [still_open] = journal.open_incidents()
    assert (still_open.incident_id, still_open.outcome) == (incident.incident_id, outcome)


def test_after_close_the_same_key_opens_a_new_incident(journal: Journal, run_id: str) -> None:
    first = open_one(journal, run_id, events=("ev-1",))
    journal.set_outcome(first.incident_id, outcome="fixed", run_id=run_id)
    second = open_one(journal, run_id, events=("ev-2",))
    assert second.incident_id != first.incident_id
    assert (second.open, second.occurrences, second.event_ids) == (True, 1, ["ev-2"])
    old = journal.incident(first.incident_id)
    assert old is not None
    assert (old.open, old.outcome, old.event_ids) == (False, "fixed", ["ev-1"])


def test_needs_human_keeps_the_steps_and_evidence(journal: Journal, run_id: str) -> None:
    incident = open_one(journal, run_id)
    steps = [{"who": "on-site staff", "do": "check the IQ hub's power and network"}]
    journal.set_outcome(
        incident.incident_id,
        outcome="needs_human",
        run_id=run_id,
        steps=steps,
        evidence={"iq": "offline"},
    )
    closed = journal.incident(incident.incident_id)
    assert closed is not None
    assert closed.steps == steps
    assert closed.evidence == {"aca_access": "active", "larry_access": "denied", "iq": "offline"}


def test_history_keeps_every_outcome_in_order(journal: Journal, run_id: str) -> None:
    incident = open_one(journal, run_id)
    for outcome in ("deferred", "pending_verification", "fixed"):
        journal.set_outcome(incident.incident_id, outcome=outcome, run_id=run_id)
    outcomes = [entry.outcome for entry in journal.history(incident.incident_id)]
    assert outcomes == ["deferred", "pending_verification", "fixed"]


def test_a_closed_incident_takes_no_further_outcome(journal: Journal, run_id: str) -> None:
    incident = open_one(journal, run_id)
    journal.set_outcome(incident.incident_id, outcome="no_fault", run_id=run_id)
    with pytest.raises(JournalError, match="closed as no_fault"):
        journal.set_outcome(incident.incident_id, outcome="fixed", run_id=run_id)
    with pytest.raises(JournalError, match="unknown"):
        journal.set_outcome("missing", outcome="fixed", run_id=run_id)
    with pytest.raises(ValueError, match="unknown outcome"):
        journal.set_outcome(incident.incident_id, outcome="sort_of_fixed", run_id=run_id)
    assert len(journal.history(incident.incident_id)) == 1


def test_unknown_incidents_read_as_nothing(journal: Journal) -> None:
    assert journal.incident("missing") is None
    assert journal.history("missing") == []


def test_open_incidents_filter_by_outcome_oldest_first(
    journal: Journal, run_id: str, clock: ManualClock
) -> None:
    ids = []
    for n in range(3):
        incident = open_one(journal, run_id, key=f"k-{n}")
        journal.set_outcome(incident.incident_id, outcome="pending_verification", run_id=run_id)
        ids.append(incident.incident_id)
        clock.advance(60)
    other = open_one(journal, run_id, key="k-deferred")
    journal.set_outcome(other.incident_id, outcome="deferred", run_id=run_id)
    pending = journal.open_incidents(outcome="pending_verification")
    assert [row.incident_id for row in pending] == ids
    assert len(journal.open_incidents()) == 4


def test_incidents_filter_by_time_subject_and_cause(
    journal: Journal, run_id: str, clock: ManualClock
) -> None:
    a = open_one(journal, run_id, key="a", subject={"user_id": "u-7", "lock_id": "l-3"})
    clock.advance(timedelta(hours=1))
    b = open_one(journal, run_id, key="b", subject={"user_id": "u-7", "lock_id": "l-4"})
    clock.advance(timedelta(hours=1))
    c = open_one(
        journal,
        run_id,
        key="c",
        subject={"door_id": "d-1", "personnel_id": "p-9"},
        cause="cloud.license_inactive",
    )

    def ids(rows: list[IncidentRow]) -> list[str]:
        return [row.incident_id for row in rows]

    assert ids(journal.incidents()) == [c.incident_id, b.incident_id, a.incident_id]
    assert ids(journal.incidents(since=START + timedelta(minutes=30))) == [
        c.incident_id,
        b.incident_id,
    ]
    assert ids(journal.incidents(subject={"user_id": "u-7"})) == [b.incident_id, a.incident_id]
    assert ids(journal.incidents(subject={"user_id": "u-7", "lock_id": "l-3"})) == [a.incident_id]
    assert ids(journal.incidents(subject={"door_id": "d-1"})) == [c.incident_id]
    assert ids(journal.incidents(subject={"visitor_id": "u-7"})) == []
    assert ids(journal.incidents(cause="cloud.license_inactive")) == [c.incident_id]
    assert ids(journal.incidents(limit=1)) == [c.incident_id]


# actions -------------------------------------------------------------------------------


def test_an_intent_is_in_flight_until_its_result(
    journal: Journal, run_id: str, clock: ManualClock
) -> None:
    incident = open_one(journal, run_id)
    action_id = intend(journal, run_id, incident.incident_id)
    [flying] = journal.in_flight()
    assert flying.action_id == action_id
    assert flying.status == "started"
    assert flying.params == {"user_id": "u-7", "lock_id": "l-3"}
    assert (flying.remedy, flying.target, flying.system) == (
        "toggle_access_matrix",
        "u-7/l-3",
        "aca",
    )
    assert (flying.started_at, flying.finished_at, flying.detail) == (START, None, None)
    clock.advance(5)
    journal.result(action_id, status="succeeded", detail={"larry_access": "granted"})
    assert journal.in_flight() == []
    [done] = journal.actions(incident_id=incident.incident_id)
    assert done.status == "succeeded"
    assert done.detail == {"larry_access": "granted"}
    assert done.finished_at == START + timedelta(seconds=5)


@pytest.mark.parametrize("first_status", [None, "succeeded", "failed"])
def test_an_idempotency_key_is_recorded_once(
    journal: Journal, run_id: str, first_status: str | None
) -> None:
    incident = open_one(journal, run_id)
    action_id = intend(journal, run_id, incident.incident_id, key="inc/toggle/u-7/l-3")
    if first_status == "succeeded":
        journal.result(action_id, status="succeeded")
    elif first_status == "failed":
        journal.result(action_id, status="failed")
    with pytest.raises(JournalError, match="inc/toggle/u-7/l-3"):
        intend(journal, run_id, incident.incident_id, key="inc/toggle/u-7/l-3")
    assert [row.action_id for row in journal.actions()] == [action_id]


@pytest.mark.parametrize("status", ["planned", "skipped"])
def test_an_action_that_never_ran_does_not_reserve_its_key(
    journal: Journal, run_id: str, status: str
) -> None:
    incident = open_one(journal, run_id)
    planned = intend(journal, run_id, incident.incident_id, key="inc/toggle/u-7/l-3")
    journal.result(planned, status=status)  # type: ignore[arg-type]
    real = intend(journal, run_id, incident.incident_id, key="inc/toggle/u-7/l-3")
    assert [row.action_id for row in journal.in_flight()] == [real]


def test_a_result_is_recorded_once(journal: Journal, run_id: str) -> None:
    incident = open_one(journal, run_id)
    action_id = intend(journal, run_id, incident.incident_id)
    journal.result(action_id, status="failed", detail={"error": "503"})
    with pytest.raises(JournalError, match="already failed"):
        journal.result(action_id, status="succeeded")
    with pytest.raises(JournalError, match="unknown"):
        journal.result("missing", status="succeeded")
    with pytest.raises(ValueError, match="unknown action status"):
        journal.result(action_id, status="started")  # type: ignore[arg-type]


def test_an_intent_for_an_unknown_incident_is_refused(journal: Journal, run_id: str) -> None:
    with pytest.raises(JournalError, match=r"(?i)intent failed on journal .*FOREIGN KEY"):
        intend(journal, run_id, "no-such-incident")
    assert journal.in_flight() == []


def test_reconcile_closes_an_in_flight_action_and_notes_it(journal: Journal, run_id: str) -> None:
    incident = open_one(journal, run_id)
    action_id = intend(journal, run_id, incident.incident_id)
    journal.reconcile(action_id, status="succeeded", detail={"larry_access": "granted"})
    assert journal.in_flight() == []
    [action] = journal.actions()
    assert (action.status, action.detail) == ("succeeded", {"larry_access": "granted"})
    [entry] = journal.history(incident.incident_id)
    assert entry.note is not None
    assert "reconciled" in entry.note
    assert entry.run_id == run_id
    with pytest.raises(JournalError, match="already succeeded"):
        journal.reconcile(action_id, status="failed", detail={})
    with pytest.raises(ValueError, match="succeeded, failed or was skipped"):
        journal.reconcile(action_id, status="planned", detail={})  # type: ignore[arg-type]


def test_a_call_made_again_is_noted_on_its_in_flight_action_first(
    journal: Journal, run_id: str
) -> None:
    incident = open_one(journal, run_id)
    action_id = intend(journal, run_id, incident.incident_id)
    journal.note_in_flight(action_id, {"sent_again": True})
    [flying] = journal.in_flight()  # still in flight, now saying what was sent again
    assert (flying.action_id, flying.detail) == (action_id, {"sent_again": True})
    journal.reconcile(action_id, status="succeeded", detail={"sent_again": True})
    with pytest.raises(JournalError, match="not in flight"):
        journal.note_in_flight(action_id, {"sent_again": True})


def test_a_reconciled_call_that_never_took_effect_is_skipped_and_starts_no_cooldown(
    journal: Journal, run_id: str
) -> None:
    incident = open_one(journal, run_id)
    action_id = intend(journal, run_id, incident.incident_id)
    assert journal.last_action_at(target="u-7/l-3", remedy="toggle_access_matrix") is not None
    journal.reconcile(action_id, status="skipped", detail={"credential_assigned": False})
    assert journal.in_flight() == []
    assert journal.last_action_at(target="u-7/l-3", remedy="toggle_access_matrix") is None
    [entry] = journal.history(incident.incident_id)
    assert entry.note is not None
    assert "no effect found" in entry.note


def test_a_decision_marks_the_incidents_events_seen_in_their_feeds(
    journal: Journal, run_id: str
) -> None:
    feeds = {"ev-1": "door-logs:p-1", "ev-2": "door-logs:p-1"}
    incident = open_one(journal, run_id, events=("ev-1", "ev-2", "ticket"), feeds=feeds)
    # opened, not decided: a crash now re-reads the events and diagnoses them again
    assert journal.unseen("door-logs:p-1", ["ev-1", "ev-2"]) == {"ev-1", "ev-2"}
    assert [row.incident_id for row in journal.undecided()] == [incident.incident_id]
    journal.set_outcome(
        incident.incident_id,
        outcome="deferred",
        run_id=run_id,
        seen={"aca-events": ["grant-9"]},
    )
    assert journal.unseen("door-logs:p-1", ["ev-1", "ev-2", "ev-3"]) == {"ev-3"}
    assert journal.unseen("aca-events", ["grant-9"]) == set()
    assert journal.undecided() == []


def test_events_kept_with_a_repeat_are_marked_seen_only_for_a_real_run(
    journal: Journal, run_id: str
) -> None:
    incident = open_one(journal, run_id)
    journal.set_outcome(incident.incident_id, outcome="needs_human", run_id=run_id)
    # a dry-run passes neither feeds nor run_id: a later real run still sees the event
    journal.add_events(incident.incident_id, event_ids=["ev-5"], evidence={})
    journal.add_events(
        incident.incident_id,
        event_ids=["ev-6"],
        evidence={},
        feeds={"ev-6": "aca-events"},
        run_id=run_id,
    )
    assert journal.unseen("aca-events", ["ev-5", "ev-6"]) == {"ev-5"}
    assert journal.incident(incident.incident_id).event_ids == ["ev-1", "ev-5", "ev-6"]  # type: ignore[union-attr]


def test_in_flight_lists_the_oldest_first(
    journal: Journal, run_id: str, clock: ManualClock
) -> None:
    incident = open_one(journal, run_id)
    first = intend(journal, run_id, incident.incident_id, key="k-1")
    second = intend(journal, run_id, incident.incident_id, key="k-2", target="u-8/l-3")
    clock.advance(1)
    third = intend(journal, run_id, incident.incident_id, key="k-3", target="u-9/l-3")
    assert [row.action_id for row in journal.in_flight()] == [first, second, third]


def test_actions_filter_by_incident_target_remedy_and_time(
    journal: Journal, run_id: str, clock: ManualClock
) -> None:
    one = open_one(journal, run_id, key="one")
    two = open_one(journal, run_id, key="two")
    a = intend(journal, run_id, one.incident_id, key="a")
    clock.advance(timedelta(hours=1))
    b = intend(journal, run_id, two.incident_id, key="b", remedy="sync_access", target="col-1")
    c = intend(journal, run_id, two.incident_id, key="c", system="clp")

    def ids(**filters: str | datetime) -> list[str]:
        return [row.action_id for row in journal.actions(**filters)]  # type: ignore[arg-type]

    assert ids() == [a, b, c]
    assert ids(incident_id=two.incident_id) == [b, c]
    assert ids(target="u-7/l-3") == [a, c]
    assert ids(remedy="sync_access") == [b]
    assert ids(since=START + timedelta(minutes=30)) == [b, c]
    assert ids(target="u-7/l-3", remedy="toggle_access_matrix", incident_id=one.incident_id) == [a]


def test_cool_down_counts_what_ran_not_what_was_planned(
    journal: Journal, run_id: str, clock: ManualClock
) -> None:
    incident = open_one(journal, run_id)
    assert journal.last_action_at(target="u-7/l-3", remedy="toggle_access_matrix") is None
    failed = intend(journal, run_id, incident.incident_id, key="k-1")
    journal.result(failed, status="failed")
    clock.advance(timedelta(minutes=20))
    planned = intend(journal, run_id, incident.incident_id, key="k-2")
    journal.result(planned, status="planned")
    last = journal.last_action_at(target="u-7/l-3", remedy="toggle_access_matrix")
    assert last == START
    clock.advance(timedelta(minutes=20))
    intend(journal, run_id, incident.incident_id, key="k-3")
    last = journal.last_action_at(target="u-7/l-3", remedy="toggle_access_matrix")
    assert last == START + timedelta(minutes=40)
    assert journal.last_action_at(target="u-7/l-3", remedy="sync_access") is None
    assert journal.last_action_at(target="u-8/l-3", remedy="toggle_access_matrix") is None


def test_renewals_this_month_are_counted(journal: Journal, run_id: str, clock: ManualClock) -> None:
    incident = open_one(journal, run_id)

    def renew(key: str, status: str | None) -> None:
        action_id = intend(
            journal, run_id, incident.incident_id, key=key, remedy="renew_license", target=key
        )
        if status is not None:
            journal.result(action_id, status=status)  # type: ignore[arg-type]

    renew("last-month", "succeeded")
    clock.set(datetime(2026, 12, 1, tzinfo=UTC))
    month = clock.now()
    renew("d-1", "succeeded")
    renew("d-2", None)
    renew("d-3", "failed")
    renew("d-4", "planned")
    assert journal.count_actions(remedy="renew_license", since=month) == 2
    assert journal.count_actions(remedy="renew_license", since=START) == 3
    assert journal.count_actions(remedy="renew_license", since=month, statuses=["failed"]) == 1
    assert journal.count_actions(remedy="renew_license", since=month, statuses=()) == 0
    assert journal.count_actions(remedy="sync_access", since=START) == 0


# retention -----------------------------------------------------------------------------


def test_prune_forgets_old_closed_work_and_keeps_what_is_live(
    journal: Journal, clock: ManualClock
) -> None:
    old_run = journal.start_run("aca-rejections", dry_run=False)
    journal.advance_feed("aca-events", cursor="c-old", event_ids=["old-1", "old-2"], run_id=old_run)
    closed = open_one(journal, old_run, key="closed", feeds={"ev-1": "aca-events"})
    done = intend(journal, old_run, closed.incident_id, key="k-done")
    journal.result(done, status="succeeded")
    journal.set_outcome(closed.incident_id, outcome="fixed", run_id=old_run)
    journal.mark_handled(closed.incident_id, by="approver", note="checked on site")
    still_open = open_one(journal, old_run, key="open")
    journal.set_outcome(still_open.incident_id, outcome="pending_verification", run_id=old_run)
    closed_in_flight = open_one(journal, old_run, key="crashed")
    flying = intend(journal, old_run, closed_in_flight.incident_id, key="k-flying")
    journal.set_outcome(closed_in_flight.incident_id, outcome="failed", run_id=old_run)
    journal.finish_run(old_run, status="completed", counts={})
    lonely_run = journal.start_run("door-logs", dry_run=True)
    journal.finish_run(lonely_run, status="completed", counts={})
    # an old fleet tick's cap counter goes; the month's renewal budget stays
    assert journal.spend_budget("tick:actions", period="door-logs@1", cap=100)
    assert journal.spend_budget("renewals", period="2026-11", cap=50)

    clock.advance(timedelta(days=40))
    new_run = journal.start_run("aca-rejections", dry_run=False)
    journal.advance_feed("aca-events", cursor="c-new", event_ids=["new-1"], run_id=new_run)

    deleted = journal.prune(before=START + timedelta(days=30))

    assert deleted == {
        "incident_marks": 1,
        "approvals": 0,
        "incident_history": 1,
        "actions": 1,
        "incident_subjects": 3,
        "incident_events": 1,
        "incidents": 1,
        "seen_events": 3,
        "counters": 1,
        "runs": 1,
    }
    assert journal.budget_used("tick:actions", period="door-logs@1") == 0
    assert journal.budget_used("renewals", period="2026-11") == 1
    assert journal.incident(closed.incident_id) is None
    assert journal.history(closed.incident_id) == []
    assert [row.incident_id for row in journal.open_incidents()] == [still_open.incident_id]
    assert journal.incident(closed_in_flight.incident_id) is not None
    assert [row.action_id for row in journal.in_flight()] == [flying]
    assert journal.cursor("aca-events") == "c-new"
    assert journal.unseen("aca-events", ["old-1", "new-1", "ev-1"]) == {"old-1", "ev-1"}
    assert {run.run_id for run in journal.runs()} == {old_run, new_run}
    assert journal.check() is None


def test_prune_keeps_a_feed_cursor_however_old(journal: Journal, clock: ManualClock) -> None:
    run_id = journal.start_run("door-logs", dry_run=False)
    journal.advance_feed("door-logs", cursor="c-1", event_ids=["e1"], run_id=run_id)
    journal.finish_run(run_id, status="completed", counts={})
    clock.advance(timedelta(days=400))
    deleted = journal.prune(before=clock.now())
    assert (deleted["seen_events"], deleted["runs"]) == (1, 1)
    assert journal.cursor("door-logs") == "c-1"


# sharing -------------------------------------------------------------------------------


def test_threads_share_one_journal(journal: Journal, run_id: str) -> None:
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for n in range(20):
                incident = open_one(journal, run_id, key=f"w{worker}-{n}", events=(f"e{n}",))
                intend(journal, run_id, incident.incident_id, key=f"w{worker}-{n}")
                journal.check() if n == 10 else journal.in_flight()
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread to assert on
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert len(journal.in_flight()) == 120
    assert len(journal.open_incidents()) == 120


def test_two_processes_write_the_same_file(path: Path, clock: ManualClock) -> None:
    with Journal(path, clock=clock) as daemon, Journal(path, clock=clock) as cli:
        run_a = daemon.start_run("door-logs", dry_run=False)
        run_b = cli.start_run("aca-rejections", dry_run=True)
        daemon.advance_feed("door-logs", cursor="c-1", event_ids=["e1"], run_id=run_a)
        assert cli.cursor("door-logs") == "c-1"
        assert {run.run_id for run in daemon.runs()} == {run_a, run_b}


# the fleet: what replicas sharing one journal must agree on ---------------------------------


def test_a_cursor_moves_only_from_the_position_the_run_read(journal: Journal, run_id: str) -> None:
    assert journal.advance_feed("aca", cursor="c1", event_ids=["e1"], run_id=run_id, expected=None)
    # a second replica read None too, but the feed moved meanwhile: its position is not stored
    assert not journal.advance_feed(
        "aca", cursor="c0", event_ids=["e0"], run_id=run_id, expected=None
    )
    assert journal.cursor("aca") == "c1"
    assert journal.unseen("aca", ["e0", "e1"]) == set()  # its events are marked seen anyway
    assert journal.advance_feed("aca", cursor="c2", event_ids=[], run_id=run_id, expected="c1")
    assert not journal.advance_feed("aca", cursor="c3", event_ids=[], run_id=run_id, expected="c1")
    assert journal.cursor("aca") == "c2"


def test_a_budget_is_never_spent_past_its_cap(journal: Journal) -> None:
    spent = [journal.spend_budget("renewals", period="2026-11", cap=3) for _ in range(5)]
    assert spent == [True, True, True, False, False]
    assert journal.budget_used("renewals", period="2026-11") == 3
    # a new month is a new budget; what was spent before the counter existed counts
    assert journal.spend_budget("renewals", period="2026-12", cap=3, already=2)
    assert not journal.spend_budget("renewals", period="2026-12", cap=3, already=2)


def test_two_replicas_together_never_pass_a_budget(target: str, clock: ManualClock) -> None:
    with Journal(target, clock=clock) as one, Journal(target, clock=clock) as two:
        results: list[bool] = []
        barrier = threading.Barrier(8)

        def spend(journal: Journal) -> None:
            barrier.wait()
            for _ in range(5):
                results.append(journal.spend_budget("renewals", period="2026-11", cap=7))

        threads = [threading.Thread(target=spend, args=(j,)) for j in (one, two) * 4]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert results.count(True) == 7
        assert one.budget_used("renewals", period="2026-11") == 7


def test_two_replicas_never_both_start_one_action_key(target: str, clock: ManualClock) -> None:
    with Journal(target, clock=clock) as one, Journal(target, clock=clock) as two:
        run_id = one.start_run("aca-rejections", dry_run=False)
        incident = open_one(one, run_id)
        outcomes: list[str] = []
        barrier = threading.Barrier(6)

        def start(journal: Journal) -> None:
            barrier.wait()
            try:
                journal.intent(
                    run_id=run_id,
                    incident_id=incident.incident_id,
                    remedy="sync_access",
                    target="u-7/l-3",
                    system="aca",
                    params={},
                    idempotency_key="sync_access|u-7|l-3|1",
                )
            except JournalError:
                outcomes.append("refused")
            else:
                outcomes.append("started")

        threads = [threading.Thread(target=start, args=(j,)) for j in (one, two) * 3]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(outcomes) == ["refused"] * 5 + ["started"]
        assert len(one.in_flight()) == 1


#: a fleet dividing its centers in three shards
THREE = ["0/3", "1/3", "2/3"]


def tell(journal: Journal, shard: str, tick: int, message: str | None = "fixed") -> str:
    """A shard's run of ``tick`` ended, with something to tell (``message``) or nothing."""
    run_id = f"run-{shard}-{tick}"
    parts = None if message is None else {"said": message, "shard": shard}
    journal.tell_tick(run_id, playbook="door-logs", shard=shard, tick=tick, message=parts)
    return run_id


def claimed(journal: Journal, shards: list[str] = THREE) -> list[tuple[int, str, bool]]:
    return [
        (m.tick, m.shard, m.message is not None)
        for m in journal.claim_ticks("door-logs", shards=shards)
    ]


def test_a_tick_is_told_once_when_every_shard_has_ended_it(journal: Journal) -> None:
    tell(journal, "2/3", 600)
    assert claimed(journal) == []  # two shards of the tick are still going
    tell(journal, "0/3", 600, message=None)
    assert claimed(journal) == []
    tell(journal, "1/3", 600)
    # the last shard's run claims the whole tick, in shard order, those with nothing too
    assert claimed(journal) == [(600, "0/3", False), (600, "1/3", True), (600, "2/3", True)]
    assert claimed(journal) == []  # told once
    (one,) = [m for m in _tick_rows(journal) if m[0] == "run-1/3-600"]
    assert one[1] is not None  # the newest done tick's rows stay, to say each shard is done


def test_a_shard_that_skipped_a_tick_settles_it_with_a_later_one(journal: Journal) -> None:
    """A shard's job of a tick coalesced into its earlier one (still queued then) never
    runs that tick: its next tick's end says it is done with the tick too."""
    tell(journal, "0/3", 600)
    tell(journal, "1/3", 600)
    assert claimed(journal) == []
    tell(journal, "2/3", 660)  # shard 2 skipped 600
    assert claimed(journal) == [(600, "0/3", True), (600, "1/3", True)]
    tell(journal, "0/3", 660)
    tell(journal, "1/3", 660)
    assert claimed(journal) == [(660, "0/3", True), (660, "1/3", True), (660, "2/3", True)]


def test_a_stopped_shard_holds_the_others_two_ticks_at_most(journal: Journal) -> None:
    for tick in (600, 660):
        tell(journal, "0/3", tick)
        tell(journal, "1/3", tick)
        assert claimed(journal) == []  # shard 2's run of 600 has not ended
    tell(journal, "0/3", 720)
    # a third tick begun: 600 is told without shard 2
    assert claimed(journal) == [(600, "0/3", True), (600, "1/3", True)]
    # shard 2's run of 600 ends at last: told with the next claim, never lost
    tell(journal, "2/3", 600)
    assert claimed(journal) == [(600, "2/3", True)]
    # and the sent rows behind the told tick are forgotten
    assert {r[2] for r in _tick_rows(journal)} == {600, 660, 720}
    tell(journal, "1/3", 720)
    tell(journal, "2/3", 720)
    told = claimed(journal)
    assert told == [(660, "0/3", True), (660, "1/3", True)] + [(720, s, True) for s in THREE]
    assert {r[2] for r in _tick_rows(journal)} == {720}


def test_two_replicas_claiming_at_once_tell_each_run_once(target: str, clock: ManualClock) -> None:
    with Journal(target, clock=clock) as one, Journal(target, clock=clock) as two:
        for tick in range(600, 600 + 60 * 20, 60):
            for shard in THREE:
                tell(one, shard, tick)
        told: list[list[tuple[int, str, bool]]] = []
        barrier = threading.Barrier(6)

        def claim(journal: Journal) -> None:
            barrier.wait()
            told.append(claimed(journal))

        threads = [threading.Thread(target=claim, args=(j,)) for j in (one, two) * 3]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    rows = [row for claim in told for row in claim]
    assert len(rows) == 20 * 3
    assert len(set(rows)) == len(rows)  # no run told twice


#: a shard's run of a tick: (shard, tick) in the order the runs end, each shard's in tick order
_RUNS = st.lists(
    st.tuples(st.integers(0, 2), st.integers(0, 7), st.booleans()), min_size=1, max_size=30
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(runs=_RUNS)
def test_ticks_are_told_as_the_rule_says_on_generated_timetables(
    journal: Journal, runs: list[tuple[int, int, bool]]
) -> None:
    """Runs of three shards end in any order, shards skip ticks (coalesced, or their
    replica died), some runs have nothing to tell; after each, a claim. Each claim takes
    exactly the untold rows of the ticks done by the rule (every shard ended that tick or a
    later one, or the tick is two behind the newest), and once every shard ends a last tick
    every run was told exactly once."""
    playbook = f"p-{uuid.uuid4().hex}"  # a table of its own, on a journal shared by examples
    ended: dict[int, int] = {}
    rows: dict[str, tuple[int, bool]] = {}  # run -> (tick, sent), as the journal holds them
    told: list[str] = []
    made: list[str] = []
    for shard, step, says in [*runs, *((s, 100, False) for s in range(3))]:
        tick = max(step, ended.get(shard, -1) + 1)  # a shard's runs go in tick order
        ended[shard] = tick
        run_id = f"{playbook}:{shard}@{tick}"
        made.append(run_id)
        parts = {"n": run_id} if says else None
        journal.tell_tick(run_id, playbook=playbook, shard=THREE[shard], tick=tick, message=parts)
        rows[run_id] = (tick, False)
        # the rule, on the model
        latest = {
            int(r.split(":")[1].split("@")[0]): t
            for r, (t, _) in sorted(rows.items(), key=lambda x: x[1][0])
        }
        newest = sorted({t for t, _ in rows.values()}, reverse=True)
        done = [min(latest.values())] if len(latest) == 3 else []
        done += newest[2:3]
        expected = sorted(
            r for r, (t, sent) in rows.items() if done and not sent and t <= max(done)
        )
        got = journal.claim_ticks(playbook, shards=THREE)
        assert sorted(m.run_id for m in got) == expected
        told += [m.run_id for m in got]
        for r in expected:
            rows[r] = (rows[r][0], True)
        if done:
            rows = {r: v for r, v in rows.items() if not (v[1] and v[0] < max(done))}
    assert sorted(told) == sorted(set(told))  # none twice
    # the last tick, done by every shard, told every run before it
    assert sorted(told) == sorted(made)


def _tick_rows(journal: Journal) -> list[tuple[str, str | None, int]]:
    """``tick_messages`` as (run, sent_at, tick): what the table holds."""
    with journal._read("test") as conn:
        return [
            (str(r[0]), None if r[1] is None else str(r[1]), int(r[2]))
            for r in conn.execute("SELECT run_id, sent_at, tick FROM tick_messages")
        ]


# integ2's journal features on both backends ------------------------------------------------


def test_migrations_apply_every_missing_version_not_only_the_newest(path: Path) -> None:
    """Branches add their own numbers: a journal holding 1 and 3 still gets 2."""
    one = Migration(1, "a", ("CREATE TABLE a (x INTEGER)",))
    two = Migration(2, "b", ("CREATE TABLE b (x INTEGER)",))
    three = Migration(3, "c", ("CREATE TABLE c (x INTEGER)",))
    with raw(path) as conn:
        assert migrate(conn, where=str(path), applied_at="t", migrations=[one, three]) == 3
        assert migrate(conn, where=str(path), applied_at="t", migrations=[one, two, three]) == 3
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        versions = [row[0] for row in conn.execute("SELECT version FROM schema_version")]
    assert {"a", "b", "c"} <= tables
    assert sorted(versions) == [1, 2, 3]


def test_a_journal_lacking_older_steps_gets_them_with_the_backfill(
    target: str, clock: ManualClock
) -> None:
    """Migrations 4 and 8 applied under a higher version (6), 8's backfill on both backends."""
    with Journal(target, clock=clock) as journal:
        run_id = journal.start_run("aca-rejections", dry_run=False)
        row = open_one(journal, run_id)
        journal.set_outcome(
            row.incident_id,
            outcome="no_fault",
            run_id=run_id,
            note="already resolved: the credential is assigned",
        )
        # as a journal of a branch that had 1, 2, 3 and 6 only
        with journal._write("test") as conn:
            conn.execute("ALTER TABLE incidents DROP COLUMN reason_code")
            conn.execute("ALTER TABLE runs DROP COLUMN report")
            conn.execute("DELETE FROM schema_version WHERE version IN (4, 8)")
    with pytest.raises(JournalError, match="lacks version 4, 8"):
        Journal(target, clock=clock, read_only=True)
    with Journal(target, clock=clock) as journal:
        found = journal.incident(row.incident_id)
        assert found is not None
        assert found.reason_code == "already_resolved"
        dry = journal.start_run("aca-rejections", dry_run=True)
        journal.finish_run(dry, status="completed", counts={}, report={"incidents": []})
        with journal._read("test") as conn:
            versions = sorted(r[0] for r in conn.execute("SELECT version FROM schema_version"))
    assert versions == [step.version for step in MIGRATIONS]


def test_a_reader_reads_and_never_writes(target: str, clock: ManualClock) -> None:
    with Journal(target, clock=clock) as journal:
        run_id = journal.start_run("door-logs", dry_run=False)
        open_one(journal, run_id)
    with Journal(target, clock=clock, read_only=True) as reader:
        assert [run.run_id for run in reader.runs()] == [run_id]
        assert len(reader.incidents()) == 1
        with pytest.raises(JournalError):
            reader.start_run("door-logs", dry_run=False)
    with Journal(target, clock=clock) as journal:
        assert [run.run_id for run in journal.runs()] == [run_id]


def test_a_reader_never_creates_or_migrates_a_journal(backend: str, target: str) -> None:
    clock = ManualClock(START)
    if backend == "sqlite":
        with pytest.raises(JournalError, match="no such file"):
            Journal(target, clock=clock, read_only=True)
        assert not Path(target).exists()
    else:
        with pytest.raises(JournalError, match="not a doorfix journal"):
            Journal(target, clock=clock, read_only=True)


def test_a_scratch_copy_holds_the_journal_and_writes_back_nothing(
    journal: Journal, run_id: str, clock: ManualClock
) -> None:
    incident = open_one(journal, run_id, feeds={"ev-1": "aca"})
    journal.advance_feed("aca", cursor="c1", event_ids=["ev-0"], run_id=run_id)
    journal.spend_budget("renewals", period="2026-11", cap=3)
    journal.finish_run(run_id, status="completed", counts={"events": 1})
    with journal.scratch_copy() as copy:
        assert copy.dialect == "sqlite"
        assert copy.path == ":memory:"
        assert [run.run_id for run in copy.runs()] == [run_id]
        found = copy.incident(incident.incident_id)
        assert found is not None
        assert found.subject == SUBJECT
        assert copy.cursor("aca") == "c1"
        ids = ["ev-0", "ev-1", "ev-2"]
        assert copy.unseen("aca", ids) == journal.unseen("aca", ids) == {"ev-1", "ev-2"}
        assert copy.budget_used("renewals", period="2026-11") == 1
        assert copy.history(incident.incident_id) == journal.history(incident.incident_id)
        # the dry-run's writes stay in the copy
        dry = copy.start_run("aca-rejections", dry_run=True)
        copy.set_outcome(incident.incident_id, outcome="needs_human", run_id=dry, note="x")
        copy.advance_feed("aca", cursor="c9", event_ids=["ev-2"], run_id=dry)
        copy.spend_budget("renewals", period="2026-11", cap=3)
        # and the journal's later writes stay out of it
        journal.advance_feed("aca", cursor="c2", event_ids=["ev-3"], run_id=run_id)
        assert copy.cursor("aca") == "c9"
    assert [run.run_id for run in journal.runs()] == [run_id]
    row = journal.incident(incident.incident_id)
    assert row is not None
    assert row.outcome == incident.outcome
    assert journal.cursor("aca") == "c2"
    assert journal.unseen("aca", ["ev-2"]) == {"ev-2"}
    assert journal.budget_used("renewals", period="2026-11") == 1


def test_a_dry_runs_report_is_read_back(journal: Journal, clock: ManualClock) -> None:
    dry = journal.start_run("aca-rejections", dry_run=True)
    item = {
        "incident_id": "i-1",
        "cause": "aca.clp_out_of_sync",
        "subject": SUBJECT,
        "outcome": "would_fix",
        "event_ids": ["ev-1"],
        "actions": [{"remedy": "toggle_access_matrix", "target": "u-7/l-3"}],
    }
    journal.finish_run(dry, status="completed", counts={}, report={"incidents": [item]})
    found = journal.dry_run_incidents(since=START - timedelta(days=1))
    assert [(i.incident_id, i.outcome, h.note) for i, h in found] == [
        ("i-1", "would_fix", "dry-run: toggle_access_matrix u-7/l-3")
    ]
    assert journal.dry_run_incidents(since=START, subject={"user_id": "u-8"}) == []


def test_an_incident_is_marked_handled_once_with_who_and_note(
    journal: Journal, run_id: str, target: str, clock: ManualClock
) -> None:
    inc = open_one(journal, run_id, key="needs-a-person")
    journal.set_outcome(inc.incident_id, outcome="needs_human", run_id=run_id)

    mark = journal.mark_handled(inc.incident_id, by="approver", note="reset the lock on site")

    assert (mark.by, mark.note, mark.at) == ("approver", "reset the lock on site", clock.now())
    assert journal.handled_ids() == {inc.incident_id}
    with pytest.raises(StateConflict, match="already marked handled by approver"):
        journal.mark_handled(inc.incident_id, by="someone", note="again")
    with pytest.raises(UnknownRecord, match="no incident nope"):
        journal.mark_handled("nope", by="approver", note="x")
    journal.close()
    reopened = Journal(target, clock=clock)
    assert [(m.mark, m.by, m.note) for m in reopened.marks(inc.incident_id)] == [
        ("handled", "approver", "reset the lock on site")
    ]
    reopened.close()
