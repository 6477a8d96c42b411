"""Every SQL statement of the journal, as constants and small composers.

Standard SQL that PostgreSQL accepts unchanged (``ON CONFLICT``, ``COALESCE``, ``LIMIT``,
``EXISTS``) with named ``:name`` parameters; values are always bound, never formatted in.
"""

from __future__ import annotations

from collections.abc import Sequence

#: bound parameters per IN list; far below SQLite's and PostgreSQL's limits
IN_CHUNK = 500


def in_list(prefix: str, values: Sequence[str]) -> tuple[str, dict[str, str]]:
    """Named placeholders ``:p0, :p1, ...`` for an IN list, and their bound values."""
    names = [f"{prefix}{i}" for i in range(len(values))]
    return ", ".join(f":{name}" for name in names), dict(zip(names, values, strict=True))


def _compose(head: str, where: Sequence[str], tail: str) -> str:
    """Join constant fragments of this module; every value stays a bound parameter."""
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    return f"{head}{clause} {tail}".rstrip()


# runs ------------------------------------------------------------------------------------

INSERT_RUN = (
    "INSERT INTO runs (run_id, playbook, dry_run, status, started_at, counts, shard) "
    "VALUES (:run_id, :playbook, :dry_run, 'running', :started_at, '{}', :shard)"
)
FINISH_RUN = (
    "UPDATE runs SET status = :status, finished_at = :finished_at, counts = :counts, "
    "error = :error, report = :report WHERE run_id = :run_id AND status = 'running'"
)
# the dry-runs' reports, newest first: what they would have done (report and history only)
DRY_RUN_REPORTS = (
    "SELECT run_id, started_at, report FROM runs "
    "WHERE dry_run = 1 AND report IS NOT NULL AND started_at >= :since "
    "ORDER BY started_at DESC, seq DESC LIMIT :limit"
)
RUN_STATUS = "SELECT status FROM runs WHERE run_id = :run_id"
RUN_BY_ID = (
    "SELECT run_id, playbook, dry_run, status, started_at, finished_at, counts, error, shard "
    "FROM runs WHERE run_id = :run_id"
)
_SELECT_RUNS = (
    "SELECT run_id, playbook, dry_run, status, started_at, finished_at, counts, error, shard "
    "FROM runs"
)
LAST_SUCCESSFUL_RUN = (
    "SELECT run_id, playbook, dry_run, status, started_at, finished_at, counts, error, shard "
    "FROM runs WHERE playbook = :playbook AND status = 'completed' "
    "ORDER BY started_at DESC, seq DESC LIMIT 1"
)


#: the newest time the journal holds: of a run, an action, an incident or its history
NEWEST_AT = (
    "SELECT MAX(t) FROM ("
    "SELECT MAX(COALESCE(finished_at, started_at)) AS t FROM runs "
    "UNION ALL SELECT MAX(COALESCE(finished_at, started_at)) FROM actions "
    "UNION ALL SELECT MAX(last_seen_at) FROM incidents "
    "UNION ALL SELECT MAX(recorded_at) FROM incident_history"
    ") AS newest"
)


def select_runs(*, playbook: bool, since: bool, status: bool = False) -> str:
    """Runs newest first, filtered by whichever of ``:playbook``, ``:since`` and ``:status``
    are bound."""
    where = []
    if playbook:
        where.append("playbook = :playbook")
    if since:
        where.append("started_at >= :since")
    if status:
        where.append("status = :status")
    return _compose(_SELECT_RUNS, where, "ORDER BY started_at DESC, seq DESC LIMIT :limit")


# feeds -----------------------------------------------------------------------------------

FEED_CURSOR = "SELECT feed_cursor FROM feeds WHERE feed = :feed"
MARK_SEEN = (
    "INSERT INTO seen_events (feed, event_id, run_id, seen_at) "
    "VALUES (:feed, :event_id, :run_id, :seen_at) "
    "ON CONFLICT (feed, event_id) DO NOTHING"
)
# a None cursor marks events seen without moving the stored position
STORE_CURSOR = (
    "INSERT INTO feeds (feed, feed_cursor, run_id, updated_at) "
    "VALUES (:feed, :cursor, :run_id, :updated_at) "
    "ON CONFLICT (feed) DO UPDATE SET "
    "feed_cursor = COALESCE(excluded.feed_cursor, feeds.feed_cursor), "
    "run_id = excluded.run_id, updated_at = excluded.updated_at"
)


# compare-and-set: the cursor moves only if it is still the one the run read
CAS_CURSOR = (
    "UPDATE feeds SET feed_cursor = COALESCE(:cursor, feed_cursor), run_id = :run_id, "
    "updated_at = :updated_at WHERE feed = :feed AND feed_cursor IS NOT DISTINCT FROM :expected"
)
FIRST_CURSOR = (
    "INSERT INTO feeds (feed, feed_cursor, run_id, updated_at) "
    "VALUES (:feed, :cursor, :run_id, :updated_at) ON CONFLICT (feed) DO NOTHING"
)


def select_seen(placeholders: str) -> str:
    """Which ids of an IN list (``placeholders`` from :func:`in_list`) a feed has seen."""
    return _compose(
        "SELECT event_id FROM seen_events",
        ["feed = :feed", f"event_id IN ({placeholders})"],
        "",
    )


# incidents -------------------------------------------------------------------------------

_SELECT_INCIDENTS = (
    "SELECT i.incident_id, i.incident_key, i.cause, i.subject, i.outcome, i.is_open, "
    "i.event_ids, i.evidence, i.steps, i.first_seen_at, i.last_seen_at, i.occurrences, "
    "i.run_id, i.reason_code FROM incidents i"
)
OPEN_INCIDENT_BY_KEY = _SELECT_INCIDENTS + " WHERE i.incident_key = :key AND i.is_open = 1"
INCIDENT_BY_ID = _SELECT_INCIDENTS + " WHERE i.incident_id = :incident_id"
LATEST_INCIDENT_BY_KEY = (
    _SELECT_INCIDENTS + " WHERE i.incident_key = :key ORDER BY i.seq DESC LIMIT 1"
)
INSERT_INCIDENT = (
    "INSERT INTO incidents (incident_id, incident_key, cause, subject, outcome, is_open, "
    "event_ids, evidence, steps, first_seen_at, last_seen_at, occurrences, run_id) "
    "VALUES (:incident_id, :key, :cause, :subject, NULL, 1, :event_ids, :evidence, '[]', "
    ":now, :now, :occurrences, :run_id)"
)
INSERT_SUBJECT = (
    "INSERT INTO incident_subjects (incident_id, subject_key, subject_value) "
    "VALUES (:incident_id, :subject_key, :subject_value)"
)
REGROUP_INCIDENT = (
    "UPDATE incidents SET event_ids = :event_ids, evidence = :evidence, "
    "last_seen_at = :now, occurrences = occurrences + :added WHERE incident_id = :incident_id"
)
SET_OUTCOME = (
    "UPDATE incidents SET outcome = :outcome, is_open = :is_open, closed_at = :closed_at, "
    "steps = :steps, evidence = :evidence, reason_code = :reason_code "
    "WHERE incident_id = :incident_id AND is_open = 1"
)
INCIDENT_OUTCOME = "SELECT outcome FROM incidents WHERE incident_id = :incident_id"
# open and never decided: what a crash between opening an incident and its outcome leaves
UNDECIDED_INCIDENTS = (
    _SELECT_INCIDENTS + " WHERE i.is_open = 1 AND i.outcome IS NULL ORDER BY i.seq"
)
INSERT_INCIDENT_EVENT = (
    "INSERT INTO incident_events (incident_id, event_id, feed) "
    "VALUES (:incident_id, :event_id, :feed) ON CONFLICT (incident_id, event_id) DO NOTHING"
)
# a decision marks the incident's events seen, whatever the run's feed commit later does
MARK_INCIDENT_SEEN = (
    "INSERT INTO seen_events (feed, event_id, run_id, seen_at) "
    "SELECT e.feed, e.event_id, :run_id, :seen_at FROM incident_events e "
    "WHERE e.incident_id = :incident_id ON CONFLICT (feed, event_id) DO NOTHING"
)
INSERT_HISTORY = (
    "INSERT INTO incident_history (incident_id, recorded_at, outcome, run_id, note) "
    "VALUES (:incident_id, :at, :outcome, :run_id, :note)"
)
HISTORY = (
    "SELECT incident_id, recorded_at, outcome, run_id, note FROM incident_history "
    "WHERE incident_id = :incident_id ORDER BY seq"
)
_SUBJECT_MATCH = (
    "EXISTS (SELECT 1 FROM incident_subjects s WHERE s.incident_id = i.incident_id "
    "AND s.subject_key = :sk{n} AND s.subject_value = :sv{n})"
)


def select_incidents(
    *, open_only: bool, outcome: bool, since: bool, cause: bool, subject_keys: int
) -> str:
    """Incidents matching the bound filters; every ``:skN``/``:svN`` pair must match."""
    where = []
    if open_only:
        where.append("i.is_open = 1")
    if outcome:
        where.append("i.outcome = :outcome")
    if since:
        where.append("i.last_seen_at >= :since")
    if cause:
        where.append("i.cause = :cause")
    where.extend(_SUBJECT_MATCH.replace("{n}", str(n)) for n in range(subject_keys))
    # open incidents are worked oldest first; reports read the newest first
    if open_only:
        return _compose(_SELECT_INCIDENTS, where, "ORDER BY i.first_seen_at, i.seq")
    return _compose(
        _SELECT_INCIDENTS, where, "ORDER BY i.last_seen_at DESC, i.seq DESC LIMIT :limit"
    )


# actions ---------------------------------------------------------------------------------

_SELECT_ACTIONS = (
    "SELECT action_id, run_id, incident_id, remedy, target, system, params, status, detail, "
    "idempotency_key, started_at, finished_at FROM actions"
)
ACTION_BY_ID = _SELECT_ACTIONS + " WHERE action_id = :action_id"
IN_FLIGHT = _SELECT_ACTIONS + " WHERE status = 'started' ORDER BY started_at, seq"
ACTION_BY_KEY = (
    "SELECT action_id, status FROM actions WHERE idempotency_key = :key "
    "AND status IN ('started', 'succeeded', 'failed')"
)
INSERT_ACTION = (
    "INSERT INTO actions (action_id, run_id, incident_id, remedy, target, system, params, "
    "status, idempotency_key, started_at) VALUES (:action_id, :run_id, :incident_id, "
    ":remedy, :target, :system, :params, 'started', :key, :started_at)"
)
FINISH_ACTION = (
    "UPDATE actions SET status = :status, detail = :detail, finished_at = :finished_at "
    "WHERE action_id = :action_id AND status = 'started'"
)
NOTE_IN_FLIGHT = (
    "UPDATE actions SET detail = :detail WHERE action_id = :action_id AND status = 'started'"
)
# planned actions never ran, so they do not start a cool-down
LAST_ACTION_AT = (
    "SELECT MAX(started_at) FROM actions WHERE target = :target AND remedy = :remedy "
    "AND status IN ('started', 'succeeded', 'failed')"
)


def select_actions(*, incident: bool, target: bool, remedy: bool, since: bool) -> str:
    """Actions oldest first, filtered by whichever parameters are bound."""
    where = []
    if incident:
        where.append("incident_id = :incident_id")
    if target:
        where.append("target = :target")
    if remedy:
        where.append("remedy = :remedy")
    if since:
        where.append("started_at >= :since")
    return _compose(_SELECT_ACTIONS, where, "ORDER BY started_at, seq")


def count_actions(placeholders: str) -> str:
    """Count one remedy's actions since ``:since`` whose status is in the IN list."""
    return _compose(
        "SELECT COUNT(*) FROM actions",
        ["remedy = :remedy", "started_at >= :since", f"status IN ({placeholders})"],
        "",
    )


# fleet-wide budgets ----------------------------------------------------------------------

OPEN_COUNTER = (
    "INSERT INTO counters (counter, period, used, cap, updated_at) "
    "VALUES (:counter, :period, :used, :cap, :now) ON CONFLICT (counter, period) DO NOTHING"
)
# conditional: of two replicas spending the last unit, the second matches no row (and the
# CHECK (used <= cap) refuses it even to a statement that forgot the condition)
SPEND_COUNTER = (
    "UPDATE counters SET used = used + 1, cap = :cap, updated_at = :now "
    "WHERE counter = :counter AND period = :period AND used < :cap"
)
COUNTER_USED = "SELECT used FROM counters WHERE counter = :counter AND period = :period"

# replicas of a fleet ---------------------------------------------------------------------

BEAT_REPLICA = (
    "INSERT INTO replicas (replica_id, host, pid, started_at, heartbeat_at, working, shards) "
    "VALUES (:replica_id, :host, :pid, :now, :now, :working, :shards) "
    "ON CONFLICT (replica_id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at, "
    "working = excluded.working, shards = excluded.shards"
)
DROP_REPLICA = "DELETE FROM replicas WHERE replica_id = :replica_id"
REPLICAS = (
    "SELECT replica_id, host, pid, started_at, heartbeat_at, working, shards FROM replicas "
    "ORDER BY started_at, replica_id"
)
FORGET_REPLICAS = "DELETE FROM replicas WHERE heartbeat_at < :before"

# retention -------------------------------------------------------------------------------

# closed before the cut-off, with nothing in flight: an in-flight action is never forgotten
_PRUNABLE = (
    "SELECT i.incident_id FROM incidents i WHERE i.is_open = 0 AND i.closed_at < :before "
    "AND NOT EXISTS (SELECT 1 FROM actions a "
    "WHERE a.incident_id = i.incident_id AND a.status = 'started')"
)
#: (table, statement) in an order the foreign keys accept; feed cursors are never pruned
_OF_PRUNABLE = "incident_id IN (" + _PRUNABLE + ")"
PRUNE: tuple[tuple[str, str], ...] = (
    ("incident_marks", _compose("DELETE FROM incident_marks", [_OF_PRUNABLE], "")),
    ("approvals", _compose("DELETE FROM approvals", [_OF_PRUNABLE], "")),
    ("incident_history", _compose("DELETE FROM incident_history", [_OF_PRUNABLE], "")),
    ("actions", _compose("DELETE FROM actions", [_OF_PRUNABLE], "")),
    ("incident_subjects", _compose("DELETE FROM incident_subjects", [_OF_PRUNABLE], "")),
    ("incident_events", _compose("DELETE FROM incident_events", [_OF_PRUNABLE], "")),
    ("incidents", _compose("DELETE FROM incidents", [_OF_PRUNABLE], "")),
    ("seen_events", "DELETE FROM seen_events WHERE seen_at < :before"),
    # the caps of a fleet's past ticks (engine/guards.py); the month's budgets are kept
    ("counters", "DELETE FROM counters WHERE counter LIKE 'tick:%' AND updated_at < :before"),
    # a run still named by a kept row stays, so every run_id in the journal resolves
    (
        "runs",
        "DELETE FROM runs WHERE started_at < :before AND status <> 'running' "
        "AND NOT EXISTS (SELECT 1 FROM incidents i WHERE i.run_id = runs.run_id) "
        "AND NOT EXISTS (SELECT 1 FROM incident_history h WHERE h.run_id = runs.run_id) "
        "AND NOT EXISTS (SELECT 1 FROM actions a WHERE a.run_id = runs.run_id) "
        "AND NOT EXISTS (SELECT 1 FROM seen_events e WHERE e.run_id = runs.run_id)",
    ),
)

# health ----------------------------------------------------------------------------------

WRITE_PROBE = (
    "INSERT INTO journal_probe (probe_id, probed_at) VALUES (1, :at) "
    "ON CONFLICT (probe_id) DO UPDATE SET probed_at = excluded.probed_at"
)
