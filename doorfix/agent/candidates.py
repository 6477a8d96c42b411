"""What a collector hands the engine: candidate incidents and the feed positions to commit."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
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
    #: context a remedy's verification needs beyond its call (CLP site, platform user id)
    verify: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FeedCommit:
    """A feed position to store, with the event ids read up to it, once the run is done."""

    feed: str
    cursor: str | None
    event_ids: tuple[str, ...]


@dataclass
class Batch:
    """Everything one collector found in one run."""

    candidates: list[Candidate] = field(default_factory=list)
    commits: list[FeedCommit] = field(default_factory=list)
