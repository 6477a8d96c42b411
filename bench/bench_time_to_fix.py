"""Time from a refusal appearing in a feed to its verified fix, at poll intervals of 5 s and 60 s.

The world is the ``scale`` scenario cut down to 10 centers (200 people, 50 locks, 40 doors,
no door-log history). Refusals arrive at random times, each on a person of its own: half are
``aca.clp_out_of_sync`` (the person's tag is refused at their lock: doorfix toggles the Access
Matrix and re-reads Larry access until CLP grants, after ACA's 5 s push), half
``cloud.credential_unassigned`` (their card is refused at their door: doorfix assigns it and
re-reads the person). Each refusal is injected through the sandbox's fault table and the
person presents at once, so the ACA event or the door log is written at that moment.

Time to fix, per refusal: the journal's first ``fixed`` history time of the incident holding
the event, minus the presentation time. Both are whole seconds (the journal stores seconds;
the presentation time is floored the same way), so each figure is within 1 s.

Beside it, each refusal's **floor**: the least time any agent polling on this timetable could
take. It is the wait for the next poll after the presentation (the daemon polls at its start,
then every interval), plus, for a toggle, the wait for the first verification re-read that
can see CLP grant: the world pushes ACA's change to CLP 5 s after the toggle and doorfix
re-reads every second after it (:func:`~doorfix.agent.engine.execute.poll_waits`), so 5 s. A
credential is verified by one immediate re-read (0 s). Reads, calls and rate-limit spacing
count as nothing in the floor.

And beside that, the **least p95 at the rate limit** (``bench/_least.py``): the floor with
each system serving its 20 requests a second, each refusal needing there the least requests
of its own its fix could take (:data:`LEAST_REQUESTS`) and the reads it shares with the
refusals of its poll, each made once (:func:`shared_reads`), in the best order any agent
could send them. One system at a time; the figure on the summary line is the greatest of
the three. It is a bound: no agent that sees a refusal at the first poll after it (the
floor's own assumption), reads what a safe decision needs, and reads it in the run that
acts on it, can do better, so a target under it cannot be met at that rate limit. The
bound is in fractions of a second, the figures beside it in whole seconds (within 1 s), so
a figure may show up to a second under it.

* **5 s, real time.** The sandbox is served by uvicorn on 127.0.0.1 in a subprocess on the
  wall clock; ``run_daemon`` (APScheduler, the daemon itself) runs door-logs and aca-rejections
  every 5 s in this process with the default client rate limit (20 requests/s per system),
  while refusals arrive at random over the window.
* **60 s, simulated idle time.** A 60 s interval in real time would take half an hour for the
  same sample, so the daemon's timetable is replayed on a clock that skips the idle time
  between runs and every wait (rate-limit spacing, the verification's polls, the world's
  push delay; waits of concurrent tasks overlap, as in real time: the clock jumps to the
  earliest wake-up once every task waits) but runs everything else in real time: the runs
  themselves, each playbook on its own timetable as the daemon runs them (door-logs beside
  aca-rejections, every 60 s; a run that overruns its tick is followed at once, its missed
  ticks coalesced into one). The sandbox runs in process (ASGI) on the same clock.

    python bench/bench_time_to_fix.py [--refusals 20] [--window 5:100,60:1200] [--seed 0]
                                      [--centers 10]

With ``--centers``, the world is cut to that many centers instead: each door-logs run then
reads one page of each project's log (a project's refusals are acted on once its page and
their facts are read), and each aca-rejections run scans the hardware of up to
``[engine] hardware_scan_centers`` centers (behind its fixes).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from itertools import accumulate
from pathlib import Path
from typing import Any

import httpx
from _least import Need, least_percentile

from doorfix.agent.config import Settings
from doorfix.agent.daemon.scheduler import MAX_RUNS_PER_PLAYBOOK, run_daemon
from doorfix.agent.engine.execute import poll_waits
from doorfix.agent.engine.report import RunReport
from doorfix.agent.engine.run import run_once
from doorfix.agent.engine.state import Agent
from doorfix.agent.journal.store import IncidentRow, Journal
from doorfix.agent.runtime import Urls, build_agent, sandbox_secrets
from doorfix.clock import SkipClock, SystemClock
from doorfix.log import configure_logging
from doorfix.sandbox.api.app import create_app, sandbox_state
from doorfix.sandbox.api.server import ServedSandbox
from doorfix.sandbox.api.transport import IN_PROCESS_ROOT, SandboxTransport
from doorfix.sandbox.faults.api import ApiFaults
from doorfix.sandbox.scenarios.registry import build_scenario
from doorfix.sandbox.world.doors import firmware_current
from doorfix.sandbox.world.state import WorldSettings
from doorfix.sandbox.world.world import World

#: the world: 10 centers of the scale scenario (``--centers``), no door-log history
WORLD = {"centers": 10, "door_logs": 0}
START = datetime(2026, 11, 16, 8, 0, tzinfo=UTC)


# --------------------------------------------------------------------------- the world


def targets(world: World) -> dict[str, list[dict[str, str]]]:
    """Who can be refused where: (user, lock) pairs, and (user, door, card, project) rows."""
    locks: list[dict[str, str]] = []
    doors: list[dict[str, str]] = []
    for user in world.users.values():
        booked = [
            world.inventories[b.inventory_id]
            for b in world.bookings.values()
            if b.company_id == user.company_id
        ]
        lock_ids = [lock for inv in booked for lock in inv.lock_ids]
        # a door on old firmware writes no Detail: doorfix cannot tell the cause there
        door_ids = [
            d
            for inv in booked
            for d in inv.door_ids
            if firmware_current(world.doors[d].device.model, world.doors[d].device.firmware)
        ]
        if lock_ids:
            locks.append(
                {
                    "user_id": user.id,
                    "lock_id": lock_ids[0],
                    "center_id": user.center_id,
                }
            )
        if door_ids and user.cloud_personnel_id and user.tags:
            door = world.doors[door_ids[0]]
            doors.append(
                {
                    "user_id": user.id,
                    "door_id": door.door_id,
                    "card": user.tags[0].number,
                    "project_id": door.project_id,
                }
            )
    return {"locks": locks, "doors": doors}


def serve_main() -> None:
    """Subprocess entry: the world on the wall clock, served on 127.0.0.1; one ready line."""
    app = create_app(
        build_scenario("scale", seed=0, clock=SystemClock(), **WORLD), api_faults=ApiFaults(0)
    )
    world = sandbox_state(app).world
    with ServedSandbox(app) as served:
        ready = {"base_url": served.base_url, "urls": served.urls, "targets": targets(world)}
        print(json.dumps(ready), flush=True)
        sys.stdin.read()  # the parent closes stdin when it is done


@dataclass(frozen=True)
class Refusal:
    """One injected refusal: when, what, and the feed event it made."""

    kind: str
    at: datetime
    event_id: str
    #: seconds from the daemon's first poll to the presentation
    offset: float
    #: who was refused where (:func:`targets`)
    target: dict[str, str]


#: a toggle's first verification re-read that can see CLP grant: the first on the executor's
#: grid (``poll_waits``) at or after the world's push from ACA to CLP
TOGGLE_SEEN = next(t for t in accumulate(poll_waits(3600.0)) if t >= WorldSettings().push_delay_s)


def floor_of(refusal: Refusal, every: int) -> float:
    """The least time to a verified fix: the next poll, then the first re-read that can see it."""
    to_poll = math.ceil(refusal.offset / every) * every - refusal.offset
    return to_poll + (TOGGLE_SEEN if refusal.kind == "lock" else 0.0)


#: the least requests of its own each kind of refusal needs of each system before its fix
#: can be seen: a toggle reads the user and their accesses and sends the disable and the
#: enable (ACA), and reads Larry access (CLP); a card reads who holds it in ACA (by tag),
#: and sends its assignment and reads the person back (cloud)
LEAST_REQUESTS = {
    "lock": {"aca": 4, "clp": 1, "cloud": 0},
    "door": {"aca": 1, "clp": 0, "cloud": 2},
}


def shared_reads(refusal: Refusal) -> dict[str, frozenset[str]]:
    """The reads a refusal's fix shares with the others of its poll, per system.

    A toggle: ACA's event page and centers' list (the refusal and its CLP site), the center's
    inventories and its bookings active now (what a booking gives: one page of every
    company's, where this agent reads the person's company's). A card: its project's page of
    door logs. Each is one request however many refusals of a poll need it.
    """
    target = refusal.target
    if refusal.kind == "lock":
        return {
            "aca": frozenset(
                {
                    "events",
                    "centers",
                    f"inventories {target['center_id']}",
                    f"bookings {target['center_id']}",
                }
            )
        }
    return {"cloud": frozenset({f"door logs {target['project_id']}"})}


def least_p95(refusals: list[Refusal], every: int, q: float = 0.95) -> dict[str, float]:
    """Per system, the least p95 any agent could reach at its rate limit (``bench/_least.py``)."""
    rates = Settings()
    out: dict[str, float] = {}
    for system in ("aca", "clp", "cloud"):
        needs = [
            Need(
                released=math.ceil(r.offset / every) * every,
                refused=r.offset,
                requests=LEAST_REQUESTS[r.kind][system],
                tail=TOGGLE_SEEN if r.kind == "lock" else 0.0,
                shares=shared_reads(r).get(system, frozenset()),
            )
            for r in refusals
        ]
        out[system] = least_percentile(needs, getattr(rates, system).requests_per_second, q)
    return out


def plan_refusals(
    rng: random.Random, pool: dict[str, list[dict[str, str]]], n: int, window: float
) -> list[tuple[float, str, dict[str, str]]]:
    """``n`` refusals at random offsets in ``window`` seconds, alternating lock and door."""
    locks = rng.sample(pool["locks"], n // 2 + 1)
    used = {t["user_id"] for t in locks}
    doors = rng.sample([d for d in pool["doors"] if d["user_id"] not in used], n // 2 + 1)
    out = []
    for i in range(n):
        kind = "lock" if i % 2 == 0 else "door"
        target = (locks if kind == "lock" else doors)[i // 2]
        out.append((rng.uniform(0, window), kind, target))
    return sorted(out, key=lambda r: r[0])


def fault_request(kind: str, target: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The fault to inject and the presentation that reveals it."""
    if kind == "lock":
        params = {"user_id": target["user_id"], "lock_id": target["lock_id"]}
        return (
            {"kind": "aca.clp_out_of_sync", "params": params},
            {**params, "via": "tag"},
        )
    return (
        {
            "kind": "cloud.credential_unassigned",
            "params": {"user_id": target["user_id"], "door_id": target["door_id"]},
        },
        {
            "door_id": target["door_id"],
            "credential_type": "card",
            "credential_value": target["card"],
        },
    )


def event_id(kind: str, target: dict[str, str], decision: dict[str, Any]) -> str:
    """The journal's id of the event a presentation made."""
    if kind == "lock":
        return str(decision["event_id"])
    return f"{target['project_id']}:{decision['log_id']}"


# --------------------------------------------------------------------------- the agent


def settings(every: int, journal: Path) -> Settings:
    """Defaults, with door-logs and aca-rejections every ``every`` s (no license-renewal)."""
    schedule = {
        "door_logs": {"every_seconds": every},
        "aca_rejections": {"every_seconds": every},
        "license_renewal": {"enabled": False, "every_seconds": every},
    }
    return Settings.model_validate(
        {"schedule": schedule, "daemon": {"port": 0}, "journal": {"path": str(journal)}}
    )


def holders(journal: Journal) -> dict[str, IncidentRow]:
    """Event id -> the incident holding it."""
    found: dict[str, IncidentRow] = {}
    for incident in journal.incidents(limit=100_000):
        for eid in incident.event_ids:
            found.setdefault(eid, incident)
    return found


def fixed_at(journal: Journal, incident: IncidentRow | None) -> datetime | None:
    """When the incident's first ``fixed`` history row was written (None: not yet)."""
    if incident is None:
        return None
    return next((h.at for h in journal.history(incident.incident_id) if h.outcome == "fixed"), None)


def times_to_fix(journal: Journal, refusals: list[Refusal]) -> dict[str, float | None]:
    """Event id -> seconds from the presentation to the ``fixed`` history row (None: not yet)."""
    holder = holders(journal)
    out: dict[str, float | None] = {}
    for r in refusals:
        fixed = fixed_at(journal, holder.get(r.event_id))
        start = r.at.replace(microsecond=0)
        out[r.event_id] = (fixed - start).total_seconds() if fixed else None
    return out


def phases(journal: Journal, refusals: list[Refusal]) -> dict[str, tuple[float, float, float]]:
    """Event id -> where its time to fix went, in seconds (whole, as the journal keeps them).

    * **wait**: from the presentation to the start of the run that decided it (the poll);
    * **read**: from that start to its first action's intent (the run reading the systems,
      its requests queued behind every other request of the tick at the rate limit);
    * **fix**: from that intent to the ``fixed`` row (the writes, ACA's push to CLP for a
      toggle, the verification's re-reads).
    """
    holder = holders(journal)
    starts = {run.run_id: run.started_at for run in journal.runs(limit=100_000)}
    out: dict[str, tuple[float, float, float]] = {}
    for r in refusals:
        found = holder.get(r.event_id)
        if found is None or found.run_id not in starts:
            continue
        acted = [a.started_at for a in journal.actions(incident_id=found.incident_id)]
        fixed = fixed_at(journal, found)
        if not acted or fixed is None:
            continue
        start, run, first = r.at.replace(microsecond=0), starts[found.run_id], min(acted)
        out[r.event_id] = (
            (run - start).total_seconds(),
            (first - run).total_seconds(),
            (fixed - first).total_seconds(),
        )
    return out


async def wait_fixed(
    journal: Journal, refusals: list[Refusal], *, within: float, pause: float
) -> None:
    """Until every refusal is fixed, or ``within`` real seconds; re-read every ``pause`` s."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if all(v is not None for v in times_to_fix(journal, refusals).values()):
            return
        await asyncio.sleep(pause)


# --------------------------------------------------------------------------- 5 s, real time


def start_server() -> tuple[subprocess.Popen[str], dict[str, Any]]:
    """This file with ``--serve`` in a subprocess; its ready line."""
    process = subprocess.Popen(  # noqa: S603 - our own interpreter running this file
        [sys.executable, str(Path(__file__)), "--serve", str(WORLD["centers"])],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    return process, json.loads(process.stdout.readline())


async def real_time(every: int, n: int, window: float, rng: random.Random, tmp: Path) -> Result:
    """The daemon every ``every`` s against the world served in a subprocess, on the wall clock."""
    process, ready = await asyncio.to_thread(start_server)
    urls = ready["urls"]
    clock = SystemClock()
    journal = Journal(tmp / f"every-{every}.sqlite3", clock=clock)
    agent = build_agent(
        settings(every, tmp / "unused.sqlite3"),
        sandbox_secrets(),
        clock=clock,
        journal=journal,
        urls=Urls(urls["cloud"], urls["aca"], urls["clp"], urls["clp_identity"]),
    )
    stop = asyncio.Event()
    refusals: list[Refusal] = []
    runs: list[RunReport] = []
    try:
        daemon = asyncio.create_task(
            run_daemon(agent, stop=stop, handle_signals=False, speed=1.0, on_report=runs.append)
        )
        began = time.monotonic()
        async with httpx.AsyncClient(base_url=ready["base_url"]) as ctl:
            for offset, kind, target in plan_refusals(rng, ready["targets"], n, window):
                await asyncio.sleep(max(0.0, began + offset - time.monotonic()))
                fault, presentation = fault_request(kind, target)
                (await ctl.post("/sandbox/faults", json=fault, timeout=10)).raise_for_status()
                at, arrived = clock.now(), time.monotonic() - began
                answer = await ctl.post("/sandbox/present", json=presentation, timeout=10)
                answer.raise_for_status()
                eid = event_id(kind, target, answer.json())
                refusals.append(Refusal(kind, at, eid, arrived, target))
        await wait_fixed(journal, refusals, within=120, pause=0.5)
        stop.set()
        await asyncio.wait_for(daemon, 120)
        return Result(
            every,
            "real time",
            times_to_fix(journal, refusals),
            refusals,
            runs,
            calls(agent),
            phases(journal, refusals),
        )
    finally:
        stop.set()
        await agent.clients.aclose()
        journal.close()
        assert process.stdin is not None
        process.stdin.close()
        process.wait(30)


# --------------------------------------------------------------------------- 60 s, skipped idle


async def tick_run(agent: Agent, playbook: str, runs: list[RunReport]) -> asyncio.Task[RunReport]:
    """One tick of the daemon's: a run, until its writes are sent or it ends; the run's task.

    As ``Daemon._run``: the verifications go on beside the next tick's run, at most
    ``MAX_RUNS_PER_PLAYBOOK`` runs of a playbook at once. Each report joins ``runs`` at its end.
    """
    sent = asyncio.Event()
    overlap = agent.journal.live.tails(playbook) < MAX_RUNS_PER_PLAYBOOK - 1
    whole = asyncio.create_task(
        run_once(agent, playbook, on_writes_sent=sent.set if overlap else None)
    )
    whole.add_done_callback(lambda done: runs.append(done.result()))
    tail = asyncio.create_task(sent.wait())
    await asyncio.wait({whole, tail}, return_when=asyncio.FIRST_COMPLETED)
    tail.cancel()
    return whole


async def skipped_idle(every: int, n: int, window: float, rng: random.Random, tmp: Path) -> Result:
    """The daemon's timetable replayed on a clock that skips idle time; the world in process."""
    clock = SkipClock(START)
    world = build_scenario("scale", seed=0, clock=clock, **WORLD)
    app = create_app(world, api_faults=ApiFaults(0))
    journal = Journal(tmp / f"every-{every}.sqlite3", clock=clock)
    agent: Agent = build_agent(
        settings(every, tmp / "unused.sqlite3"),
        sandbox_secrets(),
        clock=clock,
        journal=journal,
        urls=Urls.under(IN_PROCESS_ROOT),
        transport=SandboxTransport(app),
    )
    plan = plan_refusals(rng, targets(world), n, window)
    refusals: list[Refusal] = []
    runs: list[RunReport] = []
    origin = clock.now()
    injected = asyncio.Event()

    def finished() -> bool:
        if clock.now() - origin > timedelta(seconds=window + 20 * every):
            return True  # bounded: a refusal that never gets fixed is reported as such
        fixed = times_to_fix(journal, refusals).values()
        return injected.is_set() and all(v is not None for v in fixed)

    async def inject() -> None:
        # each refusal arrives at its own time, while the runs go on
        for offset, kind, target in plan:
            await clock.sleep((origin + timedelta(seconds=offset) - clock.now()).total_seconds())
            fault, presentation = fault_request(kind, target)
            world.inject(fault["kind"], **fault["params"])
            at = clock.now()
            if kind == "lock":
                decision: dict[str, Any] = {
                    "event_id": world.present_at_lock(
                        presentation["user_id"], presentation["lock_id"], "tag"
                    ).event_id
                }
            else:
                decision = {
                    "log_id": world.present_at_door(
                        presentation["door_id"], "card", presentation["credential_value"]
                    ).log_id
                }
            arrived = (at - origin).total_seconds()
            refusals.append(Refusal(kind, at, event_id(kind, target, decision), arrived, target))
        injected.set()

    async def timetable(playbook: str) -> None:
        # what the daemon does for one playbook: a run at each tick (a run that overran its
        # tick is followed at once), the tick over once the run's writes are sent (its
        # verifications go on beside the next run, at most MAX_RUNS_PER_PLAYBOOK at once);
        # door-logs and aca-rejections go side by side, as in the daemon
        tick = origin
        going: set[asyncio.Task[RunReport]] = set()
        while not finished():
            going.add(await tick_run(agent, playbook, runs))
            tick += timedelta(seconds=every)
            # ticks missed during the run coalesce into one, run at once (the daemon's owed
            # tick); then the timetable goes on
            while tick + timedelta(seconds=every) <= clock.now():
                tick += timedelta(seconds=every)
            if tick > clock.now():
                await clock.sleep((tick - clock.now()).total_seconds())
        if going:
            await asyncio.wait(going)

    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(inject())
            for playbook in ("door-logs", "aca-rejections"):
                group.create_task(timetable(playbook))
        return Result(
            every,
            "simulated idle",
            times_to_fix(journal, refusals),
            refusals,
            runs,
            calls(agent),
            phases(journal, refusals),
        )
    finally:
        await agent.clients.aclose()
        journal.close()


# --------------------------------------------------------------------------- figures


def calls(agent: Agent) -> dict[str, int]:
    """Requests each system's client made (token fetches included)."""
    return {system: stats.calls for system, stats in agent.clients.stats().items()}


@dataclass
class Result:
    """Times to fix of one interval."""

    every: int
    how: str
    seconds: dict[str, float | None]
    refusals: list[Refusal]
    runs: list[RunReport]
    #: requests per system over the whole interval
    requests: dict[str, int]
    #: where each fixed refusal's time went (:func:`phases`)
    spent: dict[str, tuple[float, float, float]]

    def figures(self, kind: str | None = None) -> tuple[int, int, list[float]]:
        """(refusals, fixed, sorted seconds) of one kind or all."""
        chosen = [r for r in self.refusals if kind is None or r.kind == kind]
        values = sorted(v for r in chosen if (v := self.seconds.get(r.event_id)) is not None)
        return len(chosen), len(values), values

    def slowest(self, kind: str | None = None) -> list[tuple[float, float, float]]:
        """Where the time went (:func:`phases`) for the refusals at or over the p95."""
        _, _, values = self.figures(kind)
        if not values:
            return []
        p95 = pct(values, 0.95)
        chosen = [r for r in self.refusals if kind is None or r.kind == kind]
        return [
            self.spent[r.event_id]
            for r in chosen
            if (self.seconds.get(r.event_id) or 0) >= p95 and r.event_id in self.spent
        ]

    @cached_property
    def least(self) -> dict[str, float]:
        """Per system, the least p95 any agent could reach at its rate limit (computed once:
        it tries every set of refusals the p95 may leave out)."""
        return least_p95(self.refusals, self.every)

    def floors(self, kind: str | None = None) -> list[float]:
        """Sorted floors (see the module's doc) of the refusals of one kind or all."""
        chosen = [r for r in self.refusals if kind is None or r.kind == kind]
        return sorted(floor_of(r, self.every) for r in chosen)


def pct(values: list[float], q: float) -> float:
    """The ``q`` percentile (nearest rank)."""
    if not values:
        return math.nan
    return values[min(len(values) - 1, max(0, math.ceil(q * len(values)) - 1))]


def show(result: Result) -> None:
    """Print one interval's figures."""
    rate = Settings().aca.requests_per_second
    spent = ", ".join(
        f"{system} {n} ({n / rate:.1f} s)" for system, n in sorted(result.requests.items())
    )
    print(f"  poll {result.every:>2} s  requests, and their time at {rate:g}/s: {spent}")
    least = result.least
    said = ", ".join(f"{system} {v:.1f} s" for system, v in sorted(least.items()))
    print(
        f"  poll {result.every:>2} s  least p95 any agent could reach at the rate limit "
        f"(each system on its own, the best order): {said}"
    )
    for playbook in ("door-logs", "aca-rejections"):
        took = [
            (r.finished_at - r.started_at).total_seconds()
            for r in result.runs
            if r.playbook == playbook and r.finished_at is not None
        ]
        if took:
            print(
                f"  poll {result.every:>2} s  {playbook} runs: {len(took)}, "
                f"mean {statistics.fmean(took):.1f} s, max {max(took):.1f} s"
            )
    for kind, label in (
        (None, "all"),
        ("lock", "aca.clp_out_of_sync"),
        ("door", "cloud.credential_unassigned"),
    ):
        n, fixed, values = result.figures(kind)
        if not values:
            print(f"  poll {result.every:>2} s  {label:<28} {fixed}/{n} fixed")
            continue
        floors = result.floors(kind)
        print(
            f"  poll {result.every:>2} s  {label:<28} {fixed}/{n} fixed  "
            f"p50 {pct(values, 0.5):5.0f} s  p95 {pct(values, 0.95):5.0f} s  "
            f"mean {statistics.fmean(values):5.1f} s  max {values[-1]:5.0f} s  "
            f"floor p50 {pct(floors, 0.5):.0f} s p95 {pct(floors, 0.95):.0f} s"
        )
        tail = result.slowest(kind)
        if tail:
            wait, read, fix = (statistics.fmean(p[i] for p in tail) for i in range(3))
            print(
                f"  poll {result.every:>2} s  {label:<28} slowest {len(tail)} (at or over p95), "
                f"mean: poll wait {wait:.1f} s, reading {read:.1f} s, "
                f"first write to verified {fix:.1f} s"
            )


async def main_async(refusals: int, windows: dict[int, float], seed: int) -> None:
    """Run both intervals; print the figures."""
    configure_logging(level="error", json=True)
    print(f"world: the scale scenario cut to {WORLD['centers']} centers", flush=True)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        results = []
        for every, window in windows.items():
            rng = random.Random(seed + every)
            began = time.perf_counter()
            if every <= 10:
                result = await real_time(every, refusals, window, rng, tmp)
            else:
                result = await skipped_idle(every, refusals, window, rng, tmp)
            results.append(result)
            print(
                f"poll every {every} s ({result.how}): {refusals} refusals over {window:g} s, "
                f"{time.perf_counter() - began:.0f} s of real time",
                flush=True,
            )
            show(result)
    print()
    for result in results:
        _, fixed, values = result.figures()
        floors = result.floors()
        print(
            f"time to fix at {result.every:>2} s ({result.how:<14}) "
            f"p50 {pct(values, 0.5):5.0f} s   p95 {pct(values, 0.95):5.0f} s   "
            f"({fixed}/{len(result.refusals)} fixed)   "
            f"floor p50 {pct(floors, 0.5):.0f} s p95 {pct(floors, 0.95):.0f} s   "
            f"least p95 at the rate limit {max(result.least.values()):.1f} s"
        )


def main() -> None:
    """Parse arguments and run (or serve, in the subprocess)."""
    if sys.argv[1:2] == ["--serve"]:
        WORLD["centers"] = int(sys.argv[2])
        serve_main()
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--refusals", type=int, default=20)
    parser.add_argument(
        "--window",
        default="5:100,60:1200",
        help="interval:window pairs, seconds (the window the refusals arrive in)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--centers", type=int, default=WORLD["centers"], help="centers of the scale world"
    )
    args = parser.parse_args()
    WORLD["centers"] = args.centers
    windows = {int(k): float(v) for k, v in (pair.split(":") for pair in args.window.split(","))}
    asyncio.run(main_async(args.refusals, windows, args.seed))


if __name__ == "__main__":
    main()
