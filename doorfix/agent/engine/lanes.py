"""Which incidents of a run may be worked at the same time, and in what order.

Incidents that share anything (a person, a lock, a door, a collection, an action's target)
go into one *lane* and are worked one after another, in the order the run found them: two
incidents never send writes to one target at the same time, and the second sees what the
first did (a Sync Access it can join, a cool-down it must respect). The next incident of a
lane starts once the previous one has sent its writes; its verification goes on meanwhile
(see :mod:`~doorfix.agent.engine.worklist`, which plans each cohort of a run's incidents
this way). Lanes run concurrently, and take their turns (a slot, the
caps, their place among the writes queued for a system) longest-waiting first: by the
earliest refusal among their incidents (a deferred incident's first sighting), lanes
nobody waits for (a scan's, a renewal's) last, ties in the order found. Each incident's
writes carry its time into the systems' queues (``connectors._http.waiting_since``).

Sync Access comes first, in a phase of its own, read back before the next phase starts: a
toggle changes CLP access, CLP then refuses a Sync Access on that collection for a minute, and
a change while a Sync Access job runs could race its push to the IQs. (A cohort holds every
refusal at a CLP site, so its phases order every Sync Access and toggle there.)

    phases = plan_lanes(candidates)      # [[lane, ...], [lane, ...]]; a lane is [index, ...]
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TypeVar

from doorfix.agent.engine.candidates import Candidate
from doorfix.playbooks.types import Remedy

Lane = list[int]
K = TypeVar("K", bound=Hashable)


#: subject fields that name a container, not something an incident acts on or reads as its own
_CONTAINERS = frozenset({"center_id", "project_id", "site_id"})


def resources(candidate: Candidate) -> set[str]:
    """What a candidate touches: its subject's ids (not its center) and its plan's targets."""
    subject = candidate.diagnosis.subject.as_dict()
    touched = {f"{kind}={value}" for kind, value in subject.items() if kind not in _CONTAINERS}
    touched.update(f"target={action.target}" for action in candidate.plan.actions)
    return touched


def is_sync(candidate: Candidate) -> bool:
    """True when the candidate's plan starts with a Sync Access."""
    actions = candidate.plan.actions
    return bool(actions) and actions[0].remedy is Remedy.SYNC_ACCESS


def connected(touched: Mapping[K, Iterable[str]]) -> list[list[K]]:
    """The keys of ``touched`` grouped by anything they share (transitively), each group in
    the mapping's order, the groups by their first key's place."""
    parent: dict[K, K] = {}

    def find(k: K) -> K:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    owner: dict[str, K] = {}
    for k, things in touched.items():
        parent[k] = k
        for thing in things:
            j = owner.setdefault(thing, k)
            if j != k:
                parent[find(k)] = find(j)
    groups: dict[K, list[K]] = {}
    for k in touched:
        groups.setdefault(find(k), []).append(k)
    return list(groups.values())


def lanes_of(candidates: Sequence[Candidate], indexes: Iterable[int]) -> list[Lane]:
    """The given candidates in lanes: connected by any shared resource, each in run order."""
    lanes = connected({i: resources(candidates[i]) for i in indexes})
    return sorted(lanes, key=lambda lane: _waiting_since(candidates, lane))


def _waiting_since(candidates: Sequence[Candidate], lane: Lane) -> tuple[bool, datetime]:
    """A lane's place in the queue: its earliest refusal first; a lane without one last."""
    times = [t for i in lane if (t := candidates[i].waiting_since) is not None]
    return (not times, min(times, default=datetime.max.replace(tzinfo=UTC)))


def plan_lanes(candidates: Sequence[Candidate]) -> list[list[Lane]]:
    """Two phases (Sync Access first, then the rest), each a list of lanes."""
    syncs = [i for i, c in enumerate(candidates) if is_sync(c)]
    rest = [i for i, c in enumerate(candidates) if not is_sync(c)]
    return [phase for phase in (lanes_of(candidates, syncs), lanes_of(candidates, rest)) if phase]
