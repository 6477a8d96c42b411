"""Checklist templates and the cause row that carries them.

A :class:`CauseSpec` row names the runbook row a cause automates, the remedy doorfix may
apply (or none), the disposition a plan takes when nothing in the facts overrides it, who
acts on a ``needs_human``, and the checklist in doorfix's own words. Branches with their own
checklist are named variants of the row.

Checklist texts are ``str.format`` templates over the plan's context (ids, names, times);
a value a plan did not supply renders as ``?`` rather than failing the plan.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from string import Formatter
from types import MappingProxyType
from typing import Any

from doorfix.playbooks.types import Cause, Disposition, Remedy, Step, Who


class _Context(dict[str, Any]):
    """A format context where a missing key reads ``?`` (a checklist never fails a plan)."""

    def __missing__(self, key: str) -> str:
        return "?"


_FORMATTER = Formatter()


@dataclass(frozen=True)
class StepText:
    """One checklist item as a template: who acts and what they do."""

    who: Who
    text: str

    def render(self, context: Mapping[str, Any]) -> Step:
        """The step with the context's values filled in."""
        # lists (doors, inventories) read as "a, b" in a checklist, not as Python reprs
        values = _Context(
            {
                k: ", ".join(map(str, v)) if isinstance(v, list | tuple) else v
                for k, v in context.items()
            }
        )
        try:
            text = _FORMATTER.vformat(self.text, (), values)
        except (ValueError, IndexError, AttributeError):
            # a template bug must still leave a readable step, never a crashed run
            text = self.text
        return Step(self.who, text)


def step_texts(*items: tuple[Who, str]) -> tuple[StepText, ...]:
    """A checklist of templates from ``(who, text)`` pairs."""
    return tuple(StepText(who, text) for who, text in items)


@dataclass(frozen=True)
class CauseSpec:
    """One cause: its runbook row, remedy, default disposition, actor and checklists."""

    cause: Cause
    #: the runbook row (seed file text) this cause automates
    seed_row: str
    #: what doorfix may do about it; None: nothing (a person acts, or nothing is wrong)
    remedy: Remedy | None
    #: the plan's disposition when the facts do not call for another
    disposition: Disposition
    #: who acts when the plan is ``needs_human`` (None: nobody needs to)
    who: Who | None
    #: the checklist: for needs_human what to do, for a remedy the manual fix if it fails
    steps: tuple[StepText, ...] = ()
    #: other branches' checklists, by name
    variants: Mapping[str, tuple[StepText, ...]] = field(
        default_factory=lambda: MappingProxyType({})
    )

    def checklist(self, context: Mapping[str, Any], variant: str | None = None) -> tuple[Step, ...]:
        """The rendered checklist of the row, or of one of its variants."""
        templates = self.steps if variant is None else self.variants.get(variant, self.steps)
        return tuple(template.render(context) for template in templates)


#: The rows' actors, by short name.
SUPPORT, ON_SITE, USER = Who.SUPPORT, Who.ON_SITE, Who.USER
DISTRIBUTOR, VENDOR = Who.DISTRIBUTOR, Who.VENDOR_SUPPORT
