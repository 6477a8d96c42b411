"""The runs of this process that are still working, and what each of them holds.

On a journal only this process acts on (a SQLite file, see :mod:`~doorfix.agent.journal.lock`),
a run gives its scopes' turns back once every incident's writes are sent: what is left are
its verifications, re-reads that can take a push delay or a whole ``verify_timeout_seconds``.
The next run of the scope may then start beside it (a refusal that comes during a toggle's
verification is fixed at the next tick, not after it). The two runs overlap only in the first
one's *tail*, and these rules keep them out of each other's way:

* **a live run's work is its own**: reconciliation settles no action, incident or run row of
  a run of this process that is still working (a crash's leftovers are a gone run's);
* **an event a live run is deciding is not new**: :meth:`LiveRuns.held` takes the events of
  another live run's incidents out of a feed's fresh events, so no event is diagnosed twice
  or ends in two incidents;
* **a refusal whose incident a live run is deciding joins it**: the events are kept with that
  incident (its decision marks them seen), nothing is planned for them a second time; so does
  a refusal of a person at a lock that a live run is fixing, whatever it would be diagnosed
  as (the fix is on its way to CLP or to the lock's IQ, as within the propagation grace after
  a recorded fix);
* **a run never moves a feed past an event it did not decide itself**: a run that left an
  event to another live run (either rule above) leaves that feed's cursor where it was; the
  next run reads those events again and finds them seen (or decides them, if the run that
  held them failed).

A PostgreSQL journal's run lock is a row per scope that a run keeps to its end (another
replica taking it would settle a live verification as a crash's leftover), so there runs of
one scope never overlap and this registry stays a formality.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field

__all__ = ["LiveRuns", "current_run"]

#: the run whose task this is (its incidents' tasks inherit it); None outside a run
_CURRENT: ContextVar[str | None] = ContextVar("doorfix_current_run", default=None)


def current_run() -> str | None:
    """The id of the run this task works for, if any."""
    return _CURRENT.get()


@dataclass
class _Live:
    """One live run: its candidates' events, the incidents it is deciding, the feeds it holds."""

    playbook: str
    scopes: frozenset[str]
    events: set[str] = field(default_factory=set)
    #: incident key -> (id, subject), for each incident opened and not decided yet
    deciding: dict[str, tuple[str, dict[str, str]]] = field(default_factory=dict)
    #: feeds this run left an event of to another live run: it must not move them
    held_back: set[str] = field(default_factory=set)
    ended: asyncio.Event = field(default_factory=asyncio.Event)


class LiveRuns:
    """The registry of this process's live runs on one journal (see the module's rules)."""

    def __init__(self) -> None:
        self._runs: dict[str, _Live] = {}

    @contextlib.contextmanager
    def running(self, run_id: str, playbook: str, *, scopes: Iterable[str]) -> Iterator[None]:
        """The block is the run's life: it is live (and this task's run) until it ends."""
        self._runs[run_id] = _Live(playbook, frozenset(scopes))
        token = _CURRENT.set(run_id)
        try:
            yield
        finally:
            _CURRENT.reset(token)
            live = self._runs.pop(run_id, None)
            if live is not None:
                live.ended.set()

    def ids(self, *, besides: str) -> frozenset[str]:
        """The live runs other than ``besides``."""
        return frozenset(r for r in self._runs if r != besides)

    def tails(self, playbook: str) -> int:
        """How many runs of ``playbook`` are live."""
        return sum(1 for live in self._runs.values() if live.playbook == playbook)

    def candidates(self, run_id: str, event_ids: Iterable[str]) -> None:
        """The run is about to decide these events."""
        live = self._runs.get(run_id)
        if live is not None:
            live.events.update(event_ids)

    def held(self, run_id: str | None, feed: str, event_ids: Iterable[str]) -> set[str]:
        """Which of ``event_ids`` another live run is deciding; the feed is held back if any."""
        others = [live for r, live in self._runs.items() if r != run_id]
        if not others:
            return set()
        held = {e for e in event_ids if any(e in live.events for live in others)}
        if held:
            self.hold_back(run_id, [feed])
        return held

    def hold_back(self, run_id: str | None, feeds: Iterable[str]) -> None:
        """The run left events of ``feeds`` to another run: it must not move those feeds."""
        live = self._runs.get(run_id) if run_id is not None else None
        if live is not None:
            live.held_back.update(feeds)

    def held_back(self, run_id: str) -> frozenset[str]:
        """The feeds this run must leave where they are."""
        live = self._runs.get(run_id)
        return frozenset() if live is None else frozenset(live.held_back)

    def deciding(
        self, key: str, incident_id: str, *, run_id: str, subject: Mapping[str, str]
    ) -> None:
        """The run opened this incident; it is undecided until :meth:`decided`."""
        live = self._runs.get(run_id)
        if live is not None:
            live.deciding[key] = (incident_id, dict(subject))

    def decided(self, key: str, *, run_id: str) -> None:
        """The run recorded the incident's outcome."""
        live = self._runs.get(run_id)
        if live is not None:
            live.deciding.pop(key, None)

    def deciding_elsewhere(self, key: str, *, run_id: str) -> str | None:
        """The incident with this key another live run is deciding, if any."""
        for other, live in self._runs.items():
            if other != run_id and key in live.deciding:
                return live.deciding[key][0]
        return None

    def fixing(self, *, user_id: str, lock_id: str, run_id: str | None) -> str | None:
        """An undecided incident of another live run about this person at this lock, if any.

        Its fix is on its way (to CLP, or from CLP to the lock's IQ): a refusal there now is
        that fix's to prove, as a refusal within the propagation grace after a recorded fix is.
        """
        for other, live in self._runs.items():
            if other == run_id:
                continue
            for incident_id, subject in live.deciding.values():
                if subject.get("user_id") == user_id and subject.get("lock_id") == lock_id:
                    return incident_id
        return None

    async def wait_for_earlier(self, run_id: str) -> None:
        """Wait until every run that started before ``run_id`` in one of its scopes has ended."""
        mine = self._runs.get(run_id)
        if mine is None:
            return
        for other, live in list(self._runs.items()):
            if other == run_id:
                return
            if not live.scopes.isdisjoint(mine.scopes):
                await live.ended.wait()
