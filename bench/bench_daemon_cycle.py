"""One full daemon cycle over the ``scale`` world at 20 requests/s per system, against its floor.

Builds the ``scale`` scenario (default 1,000 centers, 1,000,000 door-log rows over 7 days),
serves it on 127.0.0.1 in a subprocess (``bench/_harness.py``) and, in this process, runs what
the daemon runs in one cycle: ``run_once`` of door-logs, aca-rejections and license-renewal in
sequence (the daemon runs aca-rejections beside the two cloud playbooks, so its cycle takes at
most this; in sequence each run's requests are counted and floored on their own), with a
journal file, on a clock that runs in real time from the world's "now" (so the client rate
limiter really waits).

Three cycles:

1. **cold** (the daemon's first cycle: no cursors, door-logs looks back 24 h), with no client
   rate limit, to count the requests a cold cycle needs and time the work itself;
2. **steady** (every later cycle: cursors stored, nothing new happened), at the client rate
   limit (``--rps``, default 20 requests/s per system, the config's default) — the measured
   figure;
3. **steady, as the daemon runs it**: door-logs then license-renewal beside aca-rejections
   (the daemon runs the playbooks that write different systems side by side), at the same rate
   limit; its floor is the busiest system's least requests over the whole cycle / ``rps``.

For each run the request counts per system come from ``Clients.stats()``. The floor of the
steady cycle is counted on the least requests the world needs (``steady_least``: from the
world's shape, not from what doorfix did), so a playbook that reads more than it needs misses
its floor. The floor the rate limit allows: within a run the three systems' clients are
independent (each has its own limiter), so a run needs at least ``max over systems (requests
/ rps)``; the runs of a cycle are sequential, so the cycle needs at least the sum of its runs'
floors. The printout also
gives the looser floor if all three systems were spread over the whole cycle
(``max over systems of the cycle's requests / rps``).

The aca-rejections runs scan the hardware of ``--scan-centers`` centers each (the config's
default, 100; the next ones in turn), and the floor counts that many sites' requests.

    python bench/bench_daemon_cycle.py [--centers 1000] [--rows 1000000] [--rps 20]
        [--scan-centers 100]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _harness import MIB, START, PeakRss, scale_sandbox, served_agent

from doorfix.agent.config import EngineSection, Settings
from doorfix.agent.engine.run import PLAYBOOKS, run_once
from doorfix.agent.engine.shards import shard_of
from doorfix.agent.engine.state import Agent
from doorfix.agent.journal.store import Journal
from doorfix.clock import AcceleratedClock
from doorfix.log import configure_logging

SYSTEMS = ("cloud", "aca", "clp")


@dataclass(frozen=True)
class RunFigures:
    """One run of a cycle: wall time, requests per system, incidents."""

    playbook: str
    seconds: float
    calls: dict[str, int]
    incidents: int

    def floor(self, rps: float) -> float:
        """The least time the rate limit allows the requests this run made (systems in parallel)."""
        return max(self.calls.values()) / rps


def steady_least(
    shape: dict[str, Any], scan: int = 0, shards: int = 1
) -> dict[str, dict[str, int]]:
    """The requests each playbook's steady run needs at the least, by system, from the world.

    Counted from the world's shape, not from what doorfix did: ACA's centers listing (500 a
    page) in every run; door-logs one door-log page per project past its cursor and the cloud
    token; aca-rejections the events feed's one page past its cursor, and per CLP site it
    scans its locks listing (1,000 a page) and each of its IQs (the contract lists no IQs),
    plus the CLP token; license-renewal each project's info and its doors (the cloud token is
    reused). An aca-rejections run scans ``scan`` sites (0: every site), the cheapest ones of
    its shard's (``shards`` runs a tick, each over its own centers' sites).
    """
    centers = -(-shape["centers"] // 500)
    projects = shape["projects"]
    owners = shape.get("site_centers") or [None] * len(shape["sites"])
    by_shard: dict[int, list[int]] = {}
    for (locks, iqs), center in zip(shape["sites"], owners, strict=True):
        shard = shard_of(center, shards) if shards > 1 else 0
        by_shard.setdefault(shard, []).append(-(-locks // 1000) + iqs)
    clp = 1 + sum(sum(sorted(costs)[:scan] if scan > 0 else costs) for costs in by_shard.values())
    return {
        "door-logs": {"cloud": projects + 1, "aca": centers, "clp": 0},
        "aca-rejections": {"cloud": 0, "aca": centers + 1, "clp": clp},
        "license-renewal": {"cloud": 2 * projects, "aca": centers, "clp": 0},
    }


def least_floor(least: dict[str, int], rps: float) -> float:
    """The least time the rate limit allows a run that makes only the ``least`` requests."""
    return max(least.values()) / rps


def make_agent(ready: dict[str, Any], journal_path: Path, rps: float, scan: int) -> Agent:
    """An agent on the served world; ``rps`` 0 means no client rate limit; ``scan``: its
    ``[engine] hardware_scan_centers``."""
    clock = AcceleratedClock(START, 1.0)  # real time, from the world's "now"
    limits: dict[str, Any] = {"requests_per_second": rps if rps > 0 else 1e9}
    settings = Settings.model_validate(
        {
            "cloud": limits,
            "aca": limits,
            "clp": limits,
            "journal": {"path": str(journal_path)},
            "engine": {"hardware_scan_centers": scan},
        }
    )
    return served_agent(settings, ready, Journal(journal_path, clock=clock), clock)


async def cycle(
    ready: dict[str, Any], journal_path: Path, rps: float, scan: int
) -> list[RunFigures]:
    """One run of every playbook, in the daemon's order; the figures of each."""
    agent = make_agent(ready, journal_path, rps, scan)
    out = []
    try:
        for playbook in PLAYBOOKS:
            before = {s: c.calls for s, c in agent.clients.stats().items()}
            started = time.perf_counter()
            report = await run_once(agent, playbook)
            seconds = time.perf_counter() - started
            after = {s: c.calls for s, c in agent.clients.stats().items()}
            calls = {s: after[s] - before[s] for s in SYSTEMS}
            out.append(RunFigures(playbook, seconds, calls, len(report.incidents)))
    finally:
        await agent.clients.aclose()
        agent.journal.close()
    return out


async def side_by_side(ready: dict[str, Any], journal_path: Path, rps: float, scan: int) -> float:
    """One cycle as the daemon runs it: door-logs then license-renewal (the cloud) beside
    aca-rejections (ACA and CLP), sharing each system's rate limiter; its wall time."""
    agent = make_agent(ready, journal_path, rps, scan)

    async def cloud() -> None:
        for playbook in ("door-logs", "license-renewal"):
            await run_once(agent, playbook)

    try:
        started = time.perf_counter()
        await asyncio.gather(cloud(), run_once(agent, "aca-rejections"))
        return time.perf_counter() - started
    finally:
        await agent.clients.aclose()
        agent.journal.close()


def show(
    label: str,
    runs: list[RunFigures],
    rps: float,
    measured_at: float,
    least: dict[str, dict[str, int]] | None = None,
) -> None:
    """Print a cycle's runs, its time, and the rate limit's floors (of the least, if given)."""
    print(f"{label}:")
    for r in runs:
        calls = ", ".join(f"{s} {r.calls[s]:,}" for s in SYSTEMS)
        floor_of = r.floor(rps) if least is None else least_floor(least[r.playbook], rps)
        line = (
            f"  {r.playbook:<16} {r.seconds:8.1f} s   requests: {calls}   "
            f"floor at {rps:g}/s {floor_of:7.1f} s   incidents {r.incidents:,}"
        )
        if least is not None:
            need = least[r.playbook]
            line += f"   least: {', '.join(f'{s} {need[s]:,}' for s in SYSTEMS)}"
        print(line)
    total = sum(r.seconds for r in runs)
    floor = sum(
        r.floor(rps) if least is None else least_floor(least[r.playbook], rps) for r in runs
    )
    per_system = {s: sum(r.calls[s] for r in runs) for s in SYSTEMS}
    spread = max(per_system.values()) / rps
    limit = f"{measured_at:g} requests/s per system" if measured_at > 0 else "no rate limit"
    print(f"  cycle ({limit})            {total:8.1f} s")
    print(
        f"  requests: {sum(per_system.values()):,} "
        f"({', '.join(f'{s} {n:,}' for s, n in per_system.items())})"
    )
    print(f"  floor at {rps:g}/s, runs in sequence     {floor:8.1f} s")
    print(f"  floor at {rps:g}/s, systems spread       {spread:8.1f} s")
    if measured_at > 0 and floor > 0:
        print(f"  measured / floor                  {total / floor:8.2f}")


async def run(ready: dict[str, Any], rps: float, scan: int, tmp: Path) -> None:
    """The cold cycle unlimited, then the steady cycle at ``rps``; print both."""
    journal = tmp / "journal.sqlite3"
    sites = len(ready["shape"]["sites"])
    turns = 1 if scan <= 0 else -(-sites // scan)
    print(
        f"hardware scan: {scan if 0 < scan < sites else sites:,} of {sites:,} centers a run "
        f"(hardware_scan_centers {scan}; every center once in {turns} runs)"
    )
    with PeakRss() as rss:
        cold = await cycle(ready, journal, 0, scan)
    show("cold cycle (first of the daemon: no cursors, 24 h look-back)", cold, rps, 0)
    print(f"  peak RSS of the agent           {rss.peak / MIB:8.1f} MiB")
    steady = await cycle(ready, journal, rps, scan)
    least = steady_least(ready["shape"], scan)
    show("steady cycle (cursors stored, nothing new)", steady, rps, rps, least)
    total = sum(r.seconds for r in steady)
    floor = sum(least_floor(least[r.playbook], rps) for r in steady)
    made = sum(sum(r.calls.values()) for r in steady)
    needed = sum(sum(n.values()) for n in least.values())
    print()
    measured = f"{total:.1f} s (rate-limit floor {floor:.1f} s)"
    print(f"full cycle at {rps:g} requests/s per system: {measured}")
    print(f"steady cycle requests: {made:,} made, {needed:,} the least the world needs")
    # the daemon's own arrangement: the runs overlap, so the floor is the busiest system's
    # least requests over the whole cycle
    beside = await side_by_side(ready, journal, rps, scan)
    per_system = {s: sum(need[s] for need in least.values()) for s in SYSTEMS}
    beside_floor = max(per_system.values()) / rps
    print(
        f"full cycle as the daemon runs it (aca-rejections beside the cloud playbooks) at "
        f"{rps:g} requests/s per system: {beside:.1f} s (rate-limit floor {beside_floor:.1f} s)"
    )
    cold_floor = sum(r.floor(rps) for r in cold)
    print(
        f"cold first cycle: rate-limit floor at {rps:g}/s {cold_floor:.1f} s (run unlimited: "
        f"{sum(r.seconds for r in cold):.1f} s)"
    )


def main() -> None:
    """Parse arguments, serve the world, run, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--centers", type=int, default=1000)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rps", type=float, default=20.0)
    parser.add_argument(
        "--scan-centers",
        type=int,
        default=EngineSection().hardware_scan_centers,
        help="[engine] hardware_scan_centers (0: every center each run)",
    )
    args = parser.parse_args()
    configure_logging(level="error", json=True)
    with (
        scale_sandbox(args.centers, args.rows, seed=args.seed) as ready,
        tempfile.TemporaryDirectory() as tmp,
    ):
        asyncio.run(run(ready, args.rps, args.scan_centers, Path(tmp)))


if __name__ == "__main__":
    main()
