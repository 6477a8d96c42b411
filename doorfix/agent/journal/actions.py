"""The journal's actions: intent before the call, result after, reconciling, and retention.

An action's intent is committed before its API call and its result after, so a crash in
between leaves it ``started`` for :meth:`JournalActions.in_flight` to find and
:meth:`JournalActions.reconcile` to close from a re-read of its target.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from doorfix.agent.journal import rows, sql
from doorfix.agent.journal.base import JournalBase
from doorfix.agent.journal.connection import Conn
from doorfix.agent.journal.rows import ActionRow
from doorfix.errors import JournalError

__all__ = ["ActionResult", "JournalActions", "ReconciledStatus"]

ActionResult = Literal["succeeded", "failed", "skipped", "planned"]
ReconciledStatus = Literal["succeeded", "failed", "skipped"]


class JournalActions(JournalBase):
    """The journal's actions, and the pruning of what is old and finished."""

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

    def note_in_flight(self, action_id: str, detail: Mapping[str, Any]) -> None:
        """Record, before a call, what an in-flight action is about to do again.

        A reconciliation that completes a cut-off action calls again: its intent is written
        first, like any call's, so a crash during it leaves the journal saying so.
        """
        with self._write("note_in_flight") as conn:
            done = conn.execute(
                sql.NOTE_IN_FLIGHT,
                {"action_id": action_id, "detail": rows.to_json(dict(detail))},
            )
            if done.rowcount != 1:
                raise JournalError(
                    f"note_in_flight: action {action_id} is not in flight in {self._path}"
                )

    def in_flight(self) -> list[ActionRow]:
        """Actions left started by a crash between intent and result, oldest first."""
        with self._read("in_flight") as conn:
            return [rows.action_row(row) for row in conn.execute(sql.IN_FLIGHT)]

    def reconcile(
        self, action_id: str, *, status: ReconciledStatus, detail: Mapping[str, Any]
    ) -> None:
        """Close an in-flight action from a re-read of its target, noting it in history.

        ``skipped``: the re-read finds no effect of the call; like any skipped action it
        starts no cool-down, so the remedy may run again.
        """
        if status not in ("succeeded", "failed", "skipped"):
            raise ValueError(
                f"a reconciled action succeeded, failed or was skipped, not {status!r}"
            )
        note = f"{status} (no effect found; it may run again)"
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

    def attempts_not_held(self, *, target: str, remedy: str, since: datetime) -> list[str]:
        """This remedy's attempts on this target since ``since`` that did not hold, described.

        An attempt did not hold when its call went through and its own re-read (the result's
        recorded outcome) or its incident's end (escalated after the next presentations)
        says ``needs_human``: the problem it was for is still there.
        """
        out: list[str] = []
        for action in self.actions(target=target, remedy=remedy, since=since):
            if action.status != "succeeded":
                continue
            recorded = (action.detail or {}).get("outcome")
            with self._read("attempts_not_held") as conn:
                row = conn.execute(
                    sql.INCIDENT_OUTCOME, {"incident_id": action.incident_id}
                ).fetchone()
            ended = None if row is None else row[0]
            if "needs_human" in (recorded, ended):
                when = rows.to_text(action.finished_at or action.started_at)
                out.append(f"{when} {remedy} on {target} (incident {action.incident_id})")
        return out

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

    def _finish_action(
        self,
        conn: Conn,
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
