"""The least time to fix any agent could reach when each system serves N requests a second.

bench_time_to_fix's floor counts requests as nothing. Under a burst that is far from true:
every refused person needs some requests of a system that serves at most ``rate`` a second,
so some wait for others'. This module gives the least a percentile of the times to fix can
be, whatever order the requests are sent in, given for each refusal and system:

- when its requests can start (its poll), and when the person was refused;
- the least requests of its own it needs there before its fix can be seen, and the reads it
  shares with the refusals of the same poll (a center's inventories, a feed's page), each
  made once per poll;
- what must follow its last request before the fix is seen (a toggle: ACA's push to CLP).

One system at a time: a refusal's time to fix is at least the completion there of its last
own or shared request, plus its tail, minus its refusal time. Give each request the deadline
of the most urgent refusal it serves (the refusal time minus the tail): the worst time to fix
over a set of refusals is then exactly the greatest lateness of those requests, so the order
that makes it least is earliest deadline first among the requests released (Jackson's rule
with release times; requests are one ``1/rate`` each, so serving them one by one loses
nothing to preemption). The nearest-rank percentile ``q`` of ``n`` times is the
``ceil(q n)``-th smallest, so it is at least the least worst time over the best ``ceil(q n)``
refusals: the least over every way to leave the rest out. Leaving out a request, the order
of a refusal's own requests, or another system only lowers the figure, so it stays a bound.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

#: the most sets of refusals :func:`least_percentile` tries (50 refusals at p95: 1,225)
MAX_SUBSETS = 20_000


@dataclass(frozen=True, slots=True)
class Need:
    """What one refusal needs of one system before its fix can be seen."""

    #: when its requests can start (its poll), seconds from the first poll
    released: float
    #: when the person was refused, on the same scale
    refused: float
    #: the least requests of its own it needs of the system
    requests: int
    #: what must follow its last request before the fix is seen (seconds)
    tail: float
    #: the reads it shares with the refusals of its poll (one request each, made once)
    shares: frozenset[str] = frozenset()


def least_worst(needs: Sequence[Need], rate: float) -> float:
    """The least, over every order of the requests, of the worst time to fix among ``needs``."""
    if not needs:
        return 0.0
    step = 1.0 / rate if 0 < rate < math.inf else 0.0
    # the requests: (released, deadline, count); a refusal's own, then each shared read once
    jobs: list[tuple[float, float, int]] = []
    shared: dict[tuple[float, str], float] = {}
    worst = -math.inf
    for need in needs:
        deadline = need.refused - need.tail
        # a refusal needing no request of this system: its fix is seen at its poll plus tail
        worst = max(worst, need.released - deadline)
        if need.requests:
            jobs.append((need.released, deadline, need.requests))
        for share in need.shares:
            key = (need.released, share)
            shared[key] = min(shared.get(key, math.inf), deadline)
    jobs.extend((released, deadline, 1) for (released, _), deadline in shared.items())
    jobs.sort()
    ready: list[tuple[float, int]] = []  # (deadline, index)
    left = [count for _, _, count in jobs]
    now = 0.0
    nxt = 0
    while nxt < len(jobs) or ready:
        if not ready:
            now = max(now, jobs[nxt][0])
        while nxt < len(jobs) and jobs[nxt][0] <= now:
            heapq.heappush(ready, (jobs[nxt][1], nxt))
            nxt += 1
        deadline, i = ready[0]
        now += step
        left[i] -= 1
        if left[i] == 0:
            heapq.heappop(ready)
            worst = max(worst, now - deadline)
    return worst


def least_percentile(needs: Sequence[Need], rate: float, q: float) -> float:
    """The least the nearest-rank ``q`` percentile of the times to fix can be (module doc)."""
    if not needs:
        return math.nan
    keep = min(len(needs), max(1, math.ceil(q * len(needs))))
    if math.comb(len(needs), keep) > MAX_SUBSETS:
        # too many ways to leave refusals out: the same percentile with no request at all,
        # still a bound (a weaker one)
        alone = sorted(least_worst([need], math.inf) for need in needs)
        return alone[keep - 1]
    return min(least_worst(chosen, rate) for chosen in itertools.combinations(needs, keep))
