r"""The guards every remedy runs inside: allowlist, caps, cool-down, breaker, budgets, age.

A :class:`RunGuards` lives for one run. The engine admits each action with
:meth:`RunGuards.admit`: the check and the count in one step, with no await between them, so
incidents worked concurrently can never together pass a cap or a budget. It reports each
action's write errors back, so the circuit breaker counts what really happened. A dry-run
only calls :meth:`RunGuards.check`: what it plans counts against nothing. History that
outlives a run (cool-downs, the month's renewals) comes from the journal through the small
:class:`ActionHistory` protocol.

A fleet's tick of a playbook is one run per shard of centers (:mod:`.shards`); its runs'
caps are the tick's, not each shard's: ``max_actions_per_run``, ``max_renewals_per_run`` and
the circuit breaker's write errors are counted in journal counters of the tick (conditional
increments, as the month's renewals are), so the shards' runs together never pass a cap a
single run would have.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, Protocol

from doorfix.agent.config import GuardsSection
from doorfix.playbooks.types import PlannedAction, Remedy

Verdict = Literal["allow", "deferred", "needs_human"]


class ActionHistory(Protocol):
    """What the guards read from the journal."""

    def last_action_at(self, *, target: str, remedy: str) -> datetime | None:
        """When this remedy last ran on this target."""
        ...

    def count_actions(self, *, remedy: str, since: datetime) -> int:
        """How many times this remedy ran since ``since``."""
        ...

    def attempts_not_held(self, *, target: str, remedy: str, since: datetime) -> list[str]:
        """This remedy's attempts on this target since ``since`` that did not hold, described."""
        ...

    def spend_budget(self, counter: str, *, period: str, cap: int, already: int = 0) -> bool:
        """Spend one unit of a fleet-wide budget if any is left (a database counter)."""
        ...

    def budget_used(self, counter: str, *, period: str) -> int:
        """How much of a budget is spent in a period."""
        ...


@dataclass(frozen=True)
class GuardDecision:
    """Whether an action may run now, and if not, why and until when."""

    verdict: Verdict
    reason: str = ""
    not_before: datetime | None = None
    #: the attempts that did not hold, when that is why the action may not run
    attempts: tuple[str, ...] = ()

    @property
    def allowed(self) -> bool:
        """True when the action may run."""
        return self.verdict == "allow"


ALLOW = GuardDecision("allow")


def month_start(now: datetime) -> datetime:
    """Midnight UTC on the first of ``now``'s month (the renewal budget's window)."""
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


class RunGuards:
    """The guard state of one run."""

    def __init__(
        self,
        guards: GuardsSection,
        *,
        enabled: frozenset[str],
        history: ActionHistory,
        now: datetime,
        tick: str | None = None,
    ) -> None:
        """``tick``: the fleet tick this run is one shard of (its caps are the tick's)."""
        self._g = guards
        self._tick = tick
        self._enabled = enabled
        self._history = history
        self._now = now
        self._actions = 0
        self._per_target: Counter[str] = Counter()
        self._write_errors: Counter[str] = Counter()
        self._renewals = 0

    def event_too_old(self, occurred_at: datetime) -> bool:
        """True when an event is past the age doorfix will act on (a replayed backlog)."""
        return self._now - occurred_at > timedelta(days=self._g.max_event_age_days)

    def breaker_open(self, system: str) -> bool:
        """True once a system's write errors in this run (or tick) reached the threshold."""
        return self._count(f"errors:{system}", self._write_errors[system]) >= (
            self._g.breaker_write_errors
        )

    def _count(self, what: str, mine: int) -> int:
        """This run's count of ``what``; its tick's, across the shards, in a fleet."""
        if self._tick is None:
            return mine
        return self._history.budget_used(f"tick:{what}", period=self._tick)

    def _spend(self, what: str, cap: int) -> bool:
        """Count one ``what`` against its cap in the tick's counter (True: within the cap)."""
        if self._tick is None:
            return True
        return self._history.spend_budget(f"tick:{what}", period=self._tick, cap=cap)

    def check(self, action: PlannedAction) -> GuardDecision:
        """Decide whether ``action`` may run now; does not count it (see :meth:`admit`)."""
        remedy = action.remedy.value
        if remedy not in self._enabled:
            return GuardDecision("needs_human", f"remedy {remedy} is not in [remedies] enabled")
        if action.remedy is Remedy.ESCALATE:
            return ALLOW  # a report, not a mutation: no cap applies
        if action.system is not None and self.breaker_open(action.system):
            return GuardDecision(
                "deferred", f"circuit breaker open for {action.system}: too many write errors"
            )
        if self._count("actions", self._actions) >= self._g.max_actions_per_run:
            return GuardDecision("deferred", "max_actions_per_run reached")
        if self._per_target[action.target] >= self._g.max_actions_per_target:
            return GuardDecision("deferred", "max_actions_per_target reached")
        failed = self._history.attempts_not_held(
            target=action.target,
            remedy=remedy,
            since=self._now - timedelta(hours=self._g.attempt_window_hours),
        )
        if len(failed) >= self._g.max_attempts_not_held:
            return GuardDecision(
                "needs_human",
                f"{remedy} did not hold on {action.target} after {len(failed)} attempt(s) "
                f"within {self._g.attempt_window_hours:g} h: not tried again",
                attempts=tuple(failed),
            )
        last = self._history.last_action_at(target=action.target, remedy=remedy)
        cooldown = timedelta(minutes=self._g.cooldown_minutes)
        if last is not None and self._now - last < cooldown:
            return GuardDecision("deferred", "in cool-down", not_before=last + cooldown)
        if action.remedy is Remedy.RENEW_LICENSE:
            return self._check_renewal()
        return ALLOW

    def _check_renewal(self) -> GuardDecision:
        if not self._g.renewals_enabled:
            return GuardDecision("needs_human", "license renewals are disabled in [guards]")
        if self._count("renewals", self._renewals) >= self._g.max_renewals_per_run:
            return GuardDecision("deferred", "max_renewals_per_run reached")
        month = self._history.count_actions(
            remedy=Remedy.RENEW_LICENSE.value, since=month_start(self._now)
        )
        if month >= self._g.max_renewals_per_month:
            return GuardDecision("needs_human", "this month's renewal budget is spent")
        return ALLOW

    def _spend_renewal(self) -> GuardDecision:
        """Spend one of the month's renewals in the journal's counter (shared by a fleet)."""
        start = month_start(self._now)
        already = self._history.count_actions(remedy=Remedy.RENEW_LICENSE.value, since=start)
        if self._history.spend_budget(
            "renewals",
            period=start.strftime("%Y-%m"),
            cap=self._g.max_renewals_per_month,
            already=already,
        ):
            return ALLOW
        return GuardDecision("needs_human", "this month's renewal budget is spent")

    def admit(self, action: PlannedAction) -> GuardDecision:
        """Check ``action`` and, when it may run, count it against the caps at once.

        Synchronous on purpose: between the check and the count no other incident of the run
        can be admitted, so the caps and the renewal budgets are counted exactly however many
        incidents are worked at the same time.
        """
        decision = self.check(action)
        mutation = action.remedy is not Remedy.ESCALATE
        if decision.allowed and mutation:
            decision = self._spend_tick(action)
        if decision.allowed and action.remedy is Remedy.RENEW_LICENSE:
            decision = self._spend_renewal()
        if decision.allowed and action.remedy is not Remedy.ESCALATE:
            self._actions += 1
            self._per_target[action.target] += 1
            if action.remedy is Remedy.RENEW_LICENSE:
                self._renewals += 1
        return decision

    def _spend_tick(self, action: PlannedAction) -> GuardDecision:
        """Count the action against its tick's caps (a fleet's shard); ALLOW outside a fleet."""
        if not self._spend("actions", self._g.max_actions_per_run):
            return GuardDecision("deferred", "max_actions_per_run reached")
        renewal = action.remedy is Remedy.RENEW_LICENSE
        if renewal and not self._spend("renewals", self._g.max_renewals_per_run):
            return GuardDecision("deferred", "max_renewals_per_run reached")
        return ALLOW

    def record(self, action: PlannedAction, *, write_error: bool) -> None:
        """Count an admitted action's write error for the circuit breaker."""
        if write_error and action.system is not None and action.remedy is not Remedy.ESCALATE:
            self._write_errors[action.system] += 1
            self._spend(f"errors:{action.system}", self._g.breaker_write_errors)

    def open_breakers(self) -> list[str]:
        """Systems whose breaker opened in this run."""
        return sorted(s for s in self._write_errors if self.breaker_open(s))
