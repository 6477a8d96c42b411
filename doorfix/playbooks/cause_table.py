"""The cause table: one frozen row per cause code, from the runbooks to doorfix's plans.

The rows live beside the runbook they come from (:mod:`~doorfix.playbooks.door_logs.causes`,
:mod:`~doorfix.playbooks.aca.causes`); ``unknown``, whose variants serve both runbooks, is
here. A new cause is a new row, not an ``if`` elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from doorfix.playbooks.aca.causes import ACA_ROWS
from doorfix.playbooks.checklists import SUPPORT, CauseSpec, step_texts
from doorfix.playbooks.door_logs.causes import CLOUD_ROWS
from doorfix.playbooks.types import Cause

#: ``unknown``: nothing in the runbooks explains the refusal; the evidence is reported.
UNKNOWN_ROW = CauseSpec(
    Cause.UNKNOWN,
    "none",
    None,
    "needs_human",
    SUPPORT,
    step_texts(
        (
            SUPPORT,
            "Nothing in the runbooks explains this refusal ({summary}); check the evidence "
            "by hand.",
        ),
    ),
    MappingProxyType(
        {
            "unknown_detail": step_texts(
                (
                    SUPPORT,
                    "Door {door_name} ({door_id}, {device_model} firmware {firmware}) wrote "
                    "a failure reason doorfix does not know: {detail!r}. Check the door log "
                    "and verify credential, access group, schedule, license and visitor "
                    "validity by hand.",
                ),
            ),
            "door_checks": step_texts(
                (
                    SUPPORT,
                    "Door {door_name} ({door_id}) wrote no failure reason and the checks "
                    "(credential, access group, schedule, license, visitor validity) all "
                    "pass now; verify them by hand at the time of the refusal.",
                ),
            ),
        }
    ),
)

_ROWS: tuple[CauseSpec, ...] = (*CLOUD_ROWS, *ACA_ROWS, UNKNOWN_ROW)

#: cause -> its row; every Cause has exactly one (a test holds the table to that).
CAUSES: Mapping[Cause, CauseSpec] = MappingProxyType({row.cause: row for row in _ROWS})


def spec(cause: Cause) -> CauseSpec:
    """The row of a cause."""
    return CAUSES[cause]
