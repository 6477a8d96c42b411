"""One Sync Access serves every user of its collection: later refusals join it.

A Sync Access pushes CLP's access for *every* user of a collection down to its IQs. So a
refusal that ``aca.iq_out_of_sync`` explains, at a lock of a collection that doorfix synced
within the cool-down, is not a reason to sync again (nor to wait out the cool-down): its
incident joins that Sync Access's verification (``pending_verification``, the shared action
referenced, no second call) and is closed by its own user's next granted presentation, or
escalated like any pending incident. This holds within a run and across runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from doorfix.agent.journal.store import ActionRow, Journal
from doorfix.connectors.models import iso_z
from doorfix.playbooks.types import Outcome, PlannedAction, Remedy


@dataclass(frozen=True)
class SharedSync:
    """A Sync Access already sent on a collection, which a refusal joins."""

    action_id: str
    incident_id: str
    sent_at: datetime

    def note(self) -> str:
        """The report's detail of the joining action."""
        return (
            f"joined the Sync Access sent at {iso_z(self.sent_at, whole_seconds=True)} "
            f"for incident {self.incident_id} (action {self.action_id}): not sent again"
        )


def _serving(row: ActionRow) -> bool:
    """Whether a Sync Access may still be landing: it is being verified (sent, its job not yet
    read back), it ran, or its outcome is unknown."""
    if row.status == "started":
        return True
    detail = row.detail or {}
    if row.status == "succeeded":
        recorded = str(detail.get("outcome", Outcome.PENDING_VERIFICATION.value))
        return recorded == Outcome.PENDING_VERIFICATION.value
    return row.status == "failed" and bool(detail.get("outcome_unknown"))


def shared_sync(
    journal: Journal,
    action: PlannedAction,
    *,
    incident_id: str,
    now: datetime,
    cooldown: timedelta,
) -> SharedSync | None:
    """The Sync Access on ``action``'s collection, sent within ``cooldown``, that an incident
    joins instead of syncing again (None: none, or ``action`` is no Sync Access)."""
    if action.remedy is not Remedy.SYNC_ACCESS:
        return None
    rows = journal.actions(
        target=action.target, remedy=Remedy.SYNC_ACCESS.value, since=now - cooldown
    )
    for row in reversed(rows):
        if row.incident_id != incident_id and _serving(row):
            return SharedSync(row.action_id, row.incident_id, row.finished_at or row.started_at)
    return None
