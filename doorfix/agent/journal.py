"""The journal: doorfix's memory of runs, feed positions, incidents and actions.

One SQLite file in WAL mode with ``synchronous=FULL``. The engine writes an action's intent
(committed and fsynced) before the API call and its result after, so a crash leaves the
action ``started``: on start-up the engine re-reads the target of each ``in_flight()`` action
and calls ``reconcile()`` instead of firing it again. A feed's cursor and the ids of the
events it delivered are committed together, so a crash never loses or doubles an event.

Every SQL statement lives in :mod:`doorfix.agent.journal_schema`; every ``sqlite3`` error
leaves this module as :class:`~doorfix.errors.JournalError` naming the operation and file.
One connection per journal, guarded by a lock, so the scheduler thread and the health
endpoint may share it; each call is short enough to make from the event loop.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from doorfix.agent import journal_rows as rows
from doorfix.agent import journal_schema as schema
from doorfix.agent import journal_sql as sql
from doorfix.agent.journal_lock import RunLock
from doorfix.agent.journal_rows import ActionRow, HistoryRow, IncidentRow, RunRow
from doorfix.clock import Clock
from doorfix.errors import JournalError

__all__ = [
    "FINAL_OUTCOMES",
    "OPEN_OUTCOMES",
    "OUTCOMES",
    "ActionRow",
    "HistoryRow",
    "IncidentRow",
    "Journal",
    "RunRow",
]

#: outcomes that close an incident; a later event with the same key opens a new one
FINAL_OUTCOMES = frozenset({"fixed", "needs_human", "no_fault", "failed"})
#: outcomes that keep an incident open for a later run to pick up
OPEN_OUTCOMES = frozenset({"pending_verification", "deferred", "would_fix"})
OUTCOMES = FINAL_OUTCOMES | OPEN_OUTCOMES

RunStatus = Literal["completed", "failed", "interrupted"]
ActionResult = Literal["succeeded", "failed", "skipped", "planned"]
ReconciledStatus = Literal["succeeded", "failed", "skipped"]


class Journal:
    """The SQLite journal; one connection, safe to share between threads."""

    def __init__(self, path: Path | str, *, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.RLock()
        self._path = str(path)
        memory = self._path == ":memory:"
        if not memory:
            _check_path(Path(path))
        try:
            conn = sqlite3.connect(
                self._path,
                timeout=schema.BUSY_TIMEOUT_S,
                isolation_level=None,
                check_same_thread=False,
            )
        except sqlite3.Error as exc:
            raise JournalError(f"cannot open journal {self._path}: {exc}") from exc
        try:
            schema.configure(conn, memory=memory, where=self._path)
            schema.migrate(conn, where=self._path, applied_at=self._now())
        except sqlite3.Error as exc:
            conn.close()
            raise JournalError(f"cannot open journal {self._path}: {exc}") from exc
        except BaseException:
            conn.close()
            raise
        self._conn: sqlite3.Connection | None = conn
        #: held by every acting run, so one process at a time reconciles and acts
        self.run_lock = RunLock(None if memory else self._path)

    @property
    def path(self) -> str:
        """The journal's file, or ``:memory:``."""
        return self._path

    def close(self) -> None:
        """Close the connection; later calls raise JournalError."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Journal:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def check(self) -> str | None:
        """Run an integrity check and a write probe; None if healthy, else the reason."""
        with self._lock:
            if self._conn is None:
                return f"journal {self._path} is closed"
            conn = self._conn
            try:
                problems = [row[0] for row in conn.execute(schema.INTEGRITY_CHECK)]
            except sqlite3.Error as exc:
                return f"journal {self._path} cannot be read: {exc}"
            if problems != ["ok"]:
                return f"journal {self._path} is corrupt: {'; '.join(problems[:5])}"
            try:
                conn.execute(schema.PROBE_TIMEOUT)
                try:
                    conn.execute(schema.BEGIN)
                    conn.execute(sql.WRITE_PROBE, {"at": self._now()})
                    conn.execute(schema.COMMIT)
                finally:
                    _rollback(conn)
                    conn.execute(schema.RESTORE_TIMEOUT)
            except sqlite3.Error as exc:
                return f"journal {self._path} cannot be written: {exc}"
        return None

    # runs --------------------------------------------------------------------------------

    def start_run(self, playbook: str, *, dry_run: bool) -> str:
        """Record a run as running and return its id."""
        run_id = uuid.uuid4().hex
        with self._write("start_run") as conn:
            conn.execute(
                sql.INSERT_RUN,
                {
                    "run_id": run_id,
                    "playbook": playbook,
                    "dry_run": int(dry_run),
                    "started_at": self._now(),
                },
            )
        return run_id

    def finish_run(
        self,
        run_id: str,
        *,
        status: RunStatus,
        counts: Mapping[str, int],
        error: str | None = None,
    ) -> None:
        """Record how a running run ended."""
        with self._write("finish_run") as conn:
            updated = conn.execute(
                sql.FINISH_RUN,
                {
                    "run_id": run_id,
                    "status": status,
                    "finished_at": self._now(),
                    "counts": rows.to_json(dict(counts)),
                    "error": error,
                },
            ).rowcount
            if updated != 1:
                row = conn.execute(sql.RUN_STATUS, {"run_id": run_id}).fetchone()
                state = "unknown" if row is None else f"already {row[0]}"
                raise JournalError(f"finish_run: run {run_id} is {state} in {self._path}")

    def runs(
        self, *, playbook: str | None = None, since: datetime | None = None, limit: int = 100
    ) -> list[RunRow]:
        """Runs newest first, optionally of one playbook and started since a time."""
        query = sql.select_runs(playbook=playbook is not None, since=since is not None)
        params: dict[str, Any] = {"limit": limit, "playbook": playbook}
        if since is not None:
            params["since"] = rows.to_text(since)
        with self._read("runs") as conn:
            return [rows.run_row(row) for row in conn.execute(query, params)]

    def last_successful_run(self, playbook: str) -> RunRow | None:
        """The newest completed run of a playbook."""
        with self._read("last_successful_run") as conn:
            row = conn.execute(sql.LAST_SUCCESSFUL_RUN, {"playbook": playbook}).fetchone()
        return None if row is None else rows.run_row(row)

    # feeds -------------------------------------------------------------------------------

    def cursor(self, feed: str) -> str | None:
        """The stored cursor of a feed, or None before its first advance."""
        with self._read("cursor") as conn:
            row = conn.execute(sql.FEED_CURSOR, {"feed": feed}).fetchone()
        return None if row is None else row[0]

    def advance_feed(
        self, feed: str, *, cursor: str | None, event_ids: Iterable[str], run_id: str
    ) -> None:
        """Mark events seen and store the cursor in one transaction (None keeps the cursor)."""
        now = self._now()
        marks = [
            {"feed": feed, "event_id": event_id, "run_id": run_id, "seen_at": now}
            for event_id in event_ids
        ]
        with self._write("advance_feed") as conn:
            conn.executemany(sql.MARK_SEEN, marks)
            conn.execute(
                sql.STORE_CURSOR,
                {"feed": feed, "cursor": cursor, "run_id": run_id, "updated_at": now},
            )

    def unseen(self, feed: str, event_ids: Iterable[str]) -> set[str]:
        """The ids among ``event_ids`` that this feed never delivered before."""
        wanted = list(dict.fromkeys(event_ids))
        seen: set[str] = set()
        with self._read("unseen") as conn:
            for start in range(0, len(wanted), sql.IN_CHUNK):
                names, values = sql.in_list("e", wanted[start : start + sql.IN_CHUNK])
                cur = conn.execute(sql.select_seen(names), {"feed": feed, **values})
                seen.update(row[0] for row in cur)
        return set(wanted) - seen

    # incidents ---------------------------------------------------------------------------

    def open_incident(
        self,
        *,
        key: str,
        cause: str,
        subject: Mapping[str, str],
        run_id: str,
        event_ids: Sequence[str],
        evidence: Mapping[str, Any],
        feeds: Mapping[str, str] | None = None,
    ) -> IncidentRow:
        """Open an incident for ``key``, or add these events to the one already open.

        ``feeds`` names the feed of each event (event id -> feed); the incident's outcome,
        once set, marks those events seen in their feeds (see :meth:`set_outcome`).
        """
        now = self._now()
        new_ids = list(dict.fromkeys(event_ids))
        with self._write("open_incident") as conn:
            row = conn.execute(sql.OPEN_INCIDENT_BY_KEY, {"key": key}).fetchone()
            if row is None:
                incident_id = uuid.uuid4().hex
                conn.execute(
                    sql.INSERT_INCIDENT,
                    {
                        "incident_id": incident_id,
                        "key": key,
                        "cause": cause,
                        "subject": rows.to_json(dict(subject)),
                        "event_ids": rows.to_json(new_ids),
                        "evidence": rows.to_json(dict(evidence)),
                        "now": now,
                        # a ticket with no event is still one occurrence
                        "occurrences": len(new_ids) or 1,
                        "run_id": run_id,
                    },
                )
                conn.executemany(
                    sql.INSERT_SUBJECT,
                    [
                        {"incident_id": incident_id, "subject_key": k, "subject_value": v}
                        for k, v in subject.items()
                    ],
                )
            else:
                incident_id = row["incident_id"]
                _regroup(conn, row, new_ids, evidence, now)
            _link_events(conn, incident_id, new_ids, feeds or {})
            current = conn.execute(sql.INCIDENT_BY_ID, {"incident_id": incident_id}).fetchone()
        return rows.incident_row(current)

    def latest_incident(self, key: str) -> IncidentRow | None:
        """The newest incident with this key, open or closed."""
        with self._read("latest_incident") as conn:
            row = conn.execute(sql.LATEST_INCIDENT_BY_KEY, {"key": key}).fetchone()
        return None if row is None else rows.incident_row(row)

    def add_events(
        self,
        incident_id: str,
        *,
        event_ids: Sequence[str],
        evidence: Mapping[str, Any],
        feeds: Mapping[str, str] | None = None,
        run_id: str | None = None,
    ) -> IncidentRow:
        """Add events to an incident, open or closed, without touching its outcome.

        For a repeat of an incident just reported (the same lock still offline, the same
        disabled user trying again): the events are kept with the incident they belong to.
        With ``run_id``, that is the decision: the events (of ``feeds``) are marked seen.
        """
        now = self._now()
        new_ids = list(dict.fromkeys(event_ids))
        with self._write("add_events") as conn:
            row = conn.execute(sql.INCIDENT_BY_ID, {"incident_id": incident_id}).fetchone()
            if row is None:
                raise JournalError(f"add_events: no incident {incident_id} in {self.path}")
            _regroup(conn, row, new_ids, evidence, now)
            _link_events(conn, incident_id, new_ids, feeds or {})
            if run_id is not None:
                conn.execute(
                    sql.MARK_INCIDENT_SEEN,
                    {"incident_id": incident_id, "run_id": run_id, "seen_at": now},
                )
            current = conn.execute(sql.INCIDENT_BY_ID, {"incident_id": incident_id}).fetchone()
        return rows.incident_row(current)

    def set_outcome(
        self,
        incident_id: str,
        *,
        outcome: str,
        run_id: str,
        steps: Sequence[Mapping[str, str]] = (),
        evidence: Mapping[str, Any] | None = None,
        note: str | None = None,
        seen: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        """Record an open incident's outcome; a final outcome closes it.

        In the same transaction the incident's events are marked seen in their feeds, and
        ``seen`` (feed -> event ids) too: a decided event is never diagnosed again, even if
        the run dies before it commits its feeds.
        """
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r}; expected one of {sorted(OUTCOMES)}")
        now = self._now()
        final = outcome in FINAL_OUTCOMES
        with self._write("set_outcome") as conn:
            row = conn.execute(sql.INCIDENT_BY_ID, {"incident_id": incident_id}).fetchone()
            if row is None or not row["is_open"]:
                state = "unknown" if row is None else f"closed as {row['outcome']}"
                raise JournalError(f"set_outcome: incident {incident_id} is {state}")
            merged = {**json.loads(row["evidence"]), **(evidence or {})}
            conn.execute(
                sql.SET_OUTCOME,
                {
                    "incident_id": incident_id,
                    "outcome": outcome,
                    "is_open": 0 if final else 1,
                    "closed_at": now if final else None,
                    "steps": rows.to_json([dict(step) for step in steps]),
                    "evidence": rows.to_json(merged),
                },
            )
            conn.execute(
                sql.INSERT_HISTORY,
                {
                    "incident_id": incident_id,
                    "at": now,
                    "outcome": outcome,
                    "run_id": run_id,
                    "note": note,
                },
            )
            conn.execute(
                sql.MARK_INCIDENT_SEEN,
                {"incident_id": incident_id, "run_id": run_id, "seen_at": now},
            )
            conn.executemany(
                sql.MARK_SEEN,
                [
                    {"feed": feed, "event_id": event_id, "run_id": run_id, "seen_at": now}
                    for feed, event_ids in (seen or {}).items()
                    for event_id in event_ids
                ],
            )

    def undecided(self) -> list[IncidentRow]:
        """Open incidents that never got an outcome: a crash came before their decision."""
        with self._read("undecided") as conn:
            return [rows.incident_row(row) for row in conn.execute(sql.UNDECIDED_INCIDENTS)]

    def incident(self, incident_id: str) -> IncidentRow | None:
        """One incident by id."""
        with self._read("incident") as conn:
            row = conn.execute(sql.INCIDENT_BY_ID, {"incident_id": incident_id}).fetchone()
        return None if row is None else rows.incident_row(row)

    def open_incidents(self, *, outcome: str | None = None) -> list[IncidentRow]:
        """Open incidents oldest first, optionally only those with this outcome."""
        query = sql.select_incidents(
            open_only=True, outcome=outcome is not None, since=False, cause=False, subject_keys=0
        )
        with self._read("open_incidents") as conn:
            return [rows.incident_row(row) for row in conn.execute(query, {"outcome": outcome})]

    def incidents(
        self,
        *,
        since: datetime | None = None,
        subject: Mapping[str, str] | None = None,
        cause: str | None = None,
        limit: int = 1000,
    ) -> list[IncidentRow]:
        """Incidents seen since a time, newest first; every given subject key must match."""
        pairs = list((subject or {}).items())
        query = sql.select_incidents(
            open_only=False,
            outcome=False,
            since=since is not None,
            cause=cause is not None,
            subject_keys=len(pairs),
        )
        params: dict[str, Any] = {"cause": cause, "limit": limit}
        if since is not None:
            params["since"] = rows.to_text(since)
        for n, (name, value) in enumerate(pairs):
            params[f"sk{n}"] = name
            params[f"sv{n}"] = value
        with self._read("incidents") as conn:
            return [rows.incident_row(row) for row in conn.execute(query, params)]

    def history(self, incident_id: str) -> list[HistoryRow]:
        """An incident's history in the order it was written."""
        with self._read("history") as conn:
            found = conn.execute(sql.HISTORY, {"incident_id": incident_id}).fetchall()
        return [rows.history_row(row) for row in found]

    # actions -----------------------------------------------------------------------------

    def intent(
        self,
        *,
        run_id: str,
        incident_id: str,
        remedy: str,
        target: str,
        system: str,
        params: Mapping[str, Any],
        idempotency_key: str,
    ) -> str:
        """Record, durably, that an action is about to run; return its id."""
        action_id = uuid.uuid4().hex
        with self._write("intent") as conn:
            prior = conn.execute(sql.ACTION_BY_KEY, {"key": idempotency_key}).fetchone()
            if prior is not None:
                raise JournalError(
                    f"intent: idempotency key {idempotency_key!r} is already recorded "
                    f"(action {prior['action_id']}, {prior['status']}) in {self._path}"
                )
            conn.execute(
                sql.INSERT_ACTION,
                {
                    "action_id": action_id,
                    "run_id": run_id,
                    "incident_id": incident_id,
                    "remedy": remedy,
                    "target": target,
                    "system": system,
                    "params": rows.to_json(dict(params)),
                    "key": idempotency_key,
                    "started_at": self._now(),
                },
            )
        return action_id

    def result(
        self,
        action_id: str,
        *,
        status: ActionResult,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        """Record how a started action ended."""
        if status not in ("succeeded", "failed", "skipped", "planned"):
            raise ValueError(f"unknown action status {status!r}")
        with self._write("result") as conn:
            self._finish_action(conn, "result", action_id, status, detail)

    def in_flight(self) -> list[ActionRow]:
        """Actions left started by a crash between intent and result, oldest first."""
        with self._read("in_flight") as conn:
            return [rows.action_row(row) for row in conn.execute(sql.IN_FLIGHT)]

    def reconcile(
        self, action_id: str, *, status: ReconciledStatus, detail: Mapping[str, Any]
    ) -> None:
        """Close an in-flight action from a re-read of its target, noting it in history.

        ``skipped``: the re-read shows the call never took effect; like any skipped action it
        starts no cool-down, so the remedy may run again.
        """
        if status not in ("succeeded", "failed", "skipped"):
            raise ValueError(
                f"a reconciled action succeeded, failed or was skipped, not {status!r}"
            )
        note = f"{status} (the call never took effect; it may run again)"
        with self._write("reconcile") as conn:
            action = self._finish_action(conn, "reconcile", action_id, status, detail)
            outcome = conn.execute(
                sql.INCIDENT_OUTCOME, {"incident_id": action.incident_id}
            ).fetchone()[0]
            conn.execute(
                sql.INSERT_HISTORY,
                {
                    "incident_id": action.incident_id,
                    "at": self._now(),
                    "outcome": outcome,
                    "run_id": action.run_id,
                    "note": f"reconciled {action.remedy} on {action.target}: "
                    + (note if status == "skipped" else status),
                },
            )

    def actions(
        self,
        *,
        incident_id: str | None = None,
        target: str | None = None,
        remedy: str | None = None,
        since: datetime | None = None,
    ) -> list[ActionRow]:
        """Actions oldest first, filtered by whichever arguments are given."""
        query = sql.select_actions(
            incident=incident_id is not None,
            target=target is not None,
            remedy=remedy is not None,
            since=since is not None,
        )
        params: dict[str, Any] = {"incident_id": incident_id, "target": target, "remedy": remedy}
        if since is not None:
            params["since"] = rows.to_text(since)
        with self._read("actions") as conn:
            return [rows.action_row(row) for row in conn.execute(query, params)]

    def last_action_at(self, *, target: str, remedy: str) -> datetime | None:
        """When this remedy last ran (or started) on this target; planned ones do not count."""
        with self._read("last_action_at") as conn:
            row = conn.execute(sql.LAST_ACTION_AT, {"target": target, "remedy": remedy}).fetchone()
        return None if row[0] is None else rows.from_text(row[0])

    def count_actions(
        self,
        *,
        remedy: str,
        since: datetime,
        statuses: Sequence[str] = ("started", "succeeded"),
    ) -> int:
        """How many actions of a remedy started since a time with one of these statuses."""
        if not statuses:
            return 0
        names, values = sql.in_list("st", list(dict.fromkeys(statuses)))
        with self._read("count_actions") as conn:
            row = conn.execute(
                sql.count_actions(names), {"remedy": remedy, "since": rows.to_text(since), **values}
            ).fetchone()
        return int(row[0])

    # retention ---------------------------------------------------------------------------

    def prune(self, *, before: datetime) -> dict[str, int]:
        """Delete what is older than ``before`` and finished; return rows deleted per table."""
        # seen ids are forgotten too, so ``before`` must lie beyond the oldest event acted on
        params = {"before": rows.to_text(before)}
        deleted: dict[str, int] = {}
        with self._write("prune") as conn:
            for table, statement in sql.PRUNE:
                deleted[table] = conn.execute(statement, params).rowcount
        return deleted

    # internals ---------------------------------------------------------------------------

    def _now(self) -> str:
        return rows.to_text(self._clock.now())

    def _live(self, op: str) -> sqlite3.Connection:
        if self._conn is None:
            raise JournalError(f"{op}: journal {self._path} is closed")
        return self._conn

    @contextlib.contextmanager
    def _write(self, op: str) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self._live(op)
            try:
                conn.execute(schema.BEGIN)
                yield conn
                conn.execute(schema.COMMIT)
            except sqlite3.Error as exc:
                _rollback(conn)
                raise JournalError(f"{op} failed on journal {self._path}: {exc}") from exc
            except BaseException:
                _rollback(conn)
                raise

    @contextlib.contextmanager
    def _read(self, op: str) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self._live(op)
            try:
                yield conn
            except sqlite3.Error as exc:
                raise JournalError(f"{op} failed on journal {self._path}: {exc}") from exc

    def _finish_action(
        self,
        conn: sqlite3.Connection,
        op: str,
        action_id: str,
        status: str,
        detail: Mapping[str, Any] | None,
    ) -> ActionRow:
        row = conn.execute(sql.ACTION_BY_ID, {"action_id": action_id}).fetchone()
        if row is None or row["status"] != "started":
            state = "unknown" if row is None else f"already {row['status']}"
            raise JournalError(f"{op}: action {action_id} is {state} in {self._path}")
        conn.execute(
            sql.FINISH_ACTION,
            {
                "action_id": action_id,
                "status": status,
                "detail": None if detail is None else rows.to_json(dict(detail)),
                "finished_at": self._now(),
            },
        )
        return rows.action_row(row)


def _check_path(path: Path) -> None:
    """Refuse, with a message an operator can act on, a path SQLite could not use."""
    where = f"cannot open journal {path}"
    if path.is_dir():
        raise JournalError(f"{where}: it is a directory")
    parent = path.parent
    if not parent.is_dir():
        raise JournalError(f"{where}: directory {parent} does not exist")
    # WAL mode creates the -wal and -shm files beside the journal, so the directory must be
    # writable even when the file already exists
    if not os.access(parent, os.W_OK | os.X_OK):
        raise JournalError(f"{where}: directory {parent} is not writable")
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        raise JournalError(f"{where}: the file is not readable and writable")


def _rollback(conn: sqlite3.Connection) -> None:
    # the error that made us roll back is the one to report, not a failed rollback
    with contextlib.suppress(sqlite3.Error):
        if conn.in_transaction:
            conn.rollback()


def _link_events(
    conn: sqlite3.Connection,
    incident_id: str,
    event_ids: Sequence[str],
    feeds: Mapping[str, str],
) -> None:
    """Record the feed of each of an incident's events that came from one."""
    conn.executemany(
        sql.INSERT_INCIDENT_EVENT,
        [
            {"incident_id": incident_id, "event_id": event_id, "feed": feeds[event_id]}
            for event_id in event_ids
            if event_id in feeds
        ],
    )


def _regroup(
    conn: sqlite3.Connection,
    row: sqlite3.Row,
    event_ids: list[str],
    evidence: Mapping[str, Any],
    now: str,
) -> None:
    """Add new event ids and evidence to an incident row; bump its occurrences."""
    known: list[str] = json.loads(row["event_ids"])
    already = set(known)
    added = [e for e in event_ids if e not in already]
    conn.execute(
        sql.REGROUP_INCIDENT,
        {
            "incident_id": row["incident_id"],
            "event_ids": rows.to_json(known + added),
            "evidence": rows.to_json({**json.loads(row["evidence"]), **evidence}),
            "now": now,
            # a repeat of events already grouped is no new occurrence
            "added": len(added) if event_ids else 1,
        },
    )
