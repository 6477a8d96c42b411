"""The cause table: one frozen row per cause code, from the runbooks to doorfix's plans.

A row names the runbook row it automates, the remedy doorfix may apply (or none), the
disposition a plan takes when nothing in the facts overrides it, who acts on a
``needs_human``, and the checklist in doorfix's own words. Branches with their own checklist
(a lost tag is a security finding, an IQ1 has one more check, ...) are named variants of the
row. A new cause is a new row in the table, not an ``if`` elsewhere.

Checklist texts are ``str.format`` templates over the plan's context (ids, names, times);
a value a plan did not supply renders as ``?`` rather than failing the plan.

The table is split by what it holds: :mod:`~doorfix.playbooks.checklists` (the row and its
templates), :mod:`~doorfix.playbooks.door_logs.causes` and :mod:`~doorfix.playbooks.aca.causes`
(the rows of each runbook), :mod:`~doorfix.playbooks.cause_table` (the assembled table) and
:mod:`~doorfix.playbooks.plans` (the plan constructors). This module is their entry point.
"""

from __future__ import annotations

from doorfix.playbooks.cause_table import CAUSES, spec
from doorfix.playbooks.checklists import CauseSpec, StepText
from doorfix.playbooks.door_logs.causes import FIRMWARE_STEP
from doorfix.playbooks.plans import deferred, needs_human, no_fault, remedy

__all__ = [
    "CAUSES",
    "FIRMWARE_STEP",
    "CauseSpec",
    "StepText",
    "deferred",
    "needs_human",
    "no_fault",
    "remedy",
    "spec",
]
