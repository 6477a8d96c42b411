"""What a run holds while it works: the :class:`Agent` (config, clients, journal, clock, policy)
and one run's :class:`RunState` (its report, guards and executor).

Kept apart from :mod:`run` so the engine's parts (reconcile, verification, ...) can name them
without importing the sequencing that uses them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from doorfix.agent.config import Settings
from doorfix.agent.engine.candidates import Ready
from doorfix.agent.engine.execute import Executor
from doorfix.agent.engine.guards import RunGuards
from doorfix.agent.engine.report import RunReport, Target
from doorfix.agent.journal.store import Journal
from doorfix.agent.sinks import Notifier
from doorfix.clock import Clock
from doorfix.connectors.factory import Clients
from doorfix.playbooks.policy import PlanPolicy


@dataclass
class Agent:
    """Everything a run needs: config, clients, journal, clock, and the playbooks' policy."""

    settings: Settings
    clients: Clients
    journal: Journal
    clock: Clock
    policy: PlanPolicy = field(default_factory=PlanPolicy)
    #: ``sandbox`` when the systems are the embedded sandbox: every output says so
    target: Target = "live"
    #: where escalations go (``DOORFIX_ESCALATE_URLS``); None or no sink: nobody is reached
    escalation: Notifier | None = None


@dataclass
class RunState:
    """One run's state: its report, guards and executor."""

    agent: Agent
    report: RunReport
    guards: RunGuards
    executor: Executor
    dry_run: bool
    #: the feed each event of this run came from (empty in a dry-run: it marks nothing seen)
    feeds: dict[str, str] = field(default_factory=dict)
    #: a repeat of an incident just reported joins it instead (off on the ticket path)
    quiet_repeats: bool = True
    #: called once every incident's writes are sent and only verifications are left
    writes_sent: Callable[[], None] = lambda: None
    #: where a collector hands a cohort whose facts are read (and the feed of its events),
    #: to be worked while the run reads the rest (see :mod:`~doorfix.agent.engine.worklist`)
    hand_over: Ready | None = None

    @property
    def journal(self) -> Journal:
        return self.agent.journal

    def feeds_of(self, event_ids: Iterable[str]) -> dict[str, str]:
        """Event id -> feed, for the events of this run that came from a feed."""
        return {e: self.feeds[e] for e in event_ids if e in self.feeds}

    def seen_of(self, event_ids: Iterable[str]) -> dict[str, list[str]]:
        """Feed -> event ids, for marking these events seen with a decision."""
        out: dict[str, list[str]] = {}
        for event_id, feed in self.feeds_of(event_ids).items():
            out.setdefault(feed, []).append(event_id)
        return out
