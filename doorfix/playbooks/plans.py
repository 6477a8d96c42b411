"""Plan constructors: a plan of each disposition, its checklist taken from the cause table.

Playbooks decide the disposition from the facts; these build the :class:`Plan`, rendering the
cause's row (or one of its variants) over the plan's context.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from doorfix.playbooks.cause_table import spec
from doorfix.playbooks.types import Cause, Plan, PlannedAction, Step


def needs_human(
    cause: Cause,
    context: Mapping[str, Any],
    *,
    reason: str,
    variant: str | None = None,
    extra: tuple[Step, ...] = (),
) -> Plan:
    """A ``needs_human`` plan with the row's checklist (or a variant's)."""
    return Plan("needs_human", steps=spec(cause).checklist(context, variant) + extra, reason=reason)


def remedy(
    cause: Cause,
    actions: tuple[PlannedAction, ...],
    context: Mapping[str, Any],
    *,
    reason: str,
    extra: tuple[Step, ...] = (),
) -> Plan:
    """A ``remedy`` plan; its steps are the row's manual fix, for when the remedy fails."""
    return Plan("remedy", actions, spec(cause).checklist(context) + extra, reason=reason)


def no_fault(reason: str, extra: tuple[Step, ...] = ()) -> Plan:
    """A ``no_fault`` plan: refused as designed, or already resolved."""
    return Plan("no_fault", steps=extra, reason=reason)


def deferred(not_before: datetime, reason: str) -> Plan:
    """A ``deferred`` plan: retry at ``not_before``."""
    return Plan("deferred", not_before=not_before, reason=reason)
