"""What a collector hands the engine: candidate incidents and the feed positions to commit."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from doorfix.playbooks.types import Diagnosis, Plan

#: A record dated further ahead of doorfix's clock than this is skipped: a device or feed with
#: a wrong clock (believed, it would move a feed's position past every record until then).
FUTURE_TOLERANCE = timedelta(minutes=5)


@dataclass(frozen=True)
class Candidate:
    """A would-be incident: diagnosis and plan, the events behind it, what verifies it."""

    diagnosis: Diagnosis
    plan: Plan
    event_ids: tuple[str, ...] = ()
    #: when the newest event behind it happened (None: no event, e.g. a proactive check)
    occurred_at: datetime | None = None
    #: since when its person has waited: the earliest event behind it, or a deferred
    #: incident's first sighting (None: nobody refused, e.g. a proactive check)
    waiting_since: datetime | None = None
    #: context a remedy's verification needs beyond its call (CLP site, platform user id)
    verify: Mapping[str, Any] = field(default_factory=dict)
    #: a deferred incident diagnosed again when it fell due (no new refusal, no occurrence)
    retry: bool = False


@dataclass(frozen=True)
class FeedCommit:
    """A feed position to store, with the event ids read up to it, once the run is done."""

    feed: str
    cursor: str | None
    event_ids: tuple[str, ...]
    #: the stored cursor the run read: the new one is stored only if it is still that one
    #: (compare-and-set; another replica that moved the feed meanwhile keeps its position)
    read: str | None = None
    #: the feed row whose cursor moves, when not ``feed`` (a shard's own position); the
    #: events are marked seen under ``feed``
    position: str | None = None


@dataclass
class Batch:
    """Everything one collector found in one run."""

    candidates: list[Candidate] = field(default_factory=list)
    commits: list[FeedCommit] = field(default_factory=list)
    #: candidates handed to the engine while the run still read (its worklist works them),
    #: in the order found; not in ``candidates``
    streamed: list[Candidate] = field(default_factory=list)


#: where a collector hands the candidates whose facts are read while the run still reads
#: others', with the feed of their events (see :mod:`~doorfix.agent.engine.worklist`)
Ready = Callable[[Sequence[Candidate], str], None]


def incident_key(candidate: Candidate) -> str:
    """The grouping key of an incident: its cause and its subject."""
    return f"{candidate.diagnosis.cause.value}|{candidate.diagnosis.subject.key()}"


def merge_by_key(candidates: list[Candidate]) -> list[Candidate]:
    """One candidate per incident key: same cause and subject in one run is one incident.

    The first candidate decides (diagnosis and plan); the others add their events, and their
    evidence under ``also`` (e.g. every unknown card presented at one door).
    """
    merged: dict[str, Candidate] = {}
    for candidate in candidates:
        key = incident_key(candidate)
        first = merged.get(key)
        if first is None:
            merged[key] = candidate
            continue
        evidence = dict(first.diagnosis.evidence)
        also = list(evidence.get("also", []))
        if len(also) < 20:
            also.append(dict(candidate.diagnosis.evidence))
        evidence["also"] = also
        newest = max(
            (t for t in (first.occurred_at, candidate.occurred_at) if t is not None), default=None
        )
        earliest = min(
            (t for t in (first.waiting_since, candidate.waiting_since) if t is not None),
            default=None,
        )
        merged[key] = replace(
            first,
            diagnosis=replace(first.diagnosis, evidence=evidence),
            event_ids=tuple(dict.fromkeys(first.event_ids + candidate.event_ids)),
            occurred_at=newest,
            waiting_since=earliest,
        )
    return list(merged.values())
