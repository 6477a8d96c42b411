"""The fleet: journal write latency, the run lock's take-over, and full cycles with 1-3 replicas.

Figures the fleet (issue 15) depends on, measured on this machine:

1. **journal write latency**: an action's intent and its result, each one committed
   transaction (what the engine writes around every API call), ``--writes`` times on the
   SQLite file (WAL, fsync at every commit) and on PostgreSQL; median and p95 per write.
2. **run lock take-over**: a replica holding the run lock stops (killed: no heartbeat, no
   release); another replica polling for the lock (as a queued run does, every 0.2 s) gets it
   once the heartbeat is older than the stale limit (``--stale`` seconds). The figure is the
   time from the last heartbeat to the take-over, beside that limit.
3. **full cycles with 1, 2 and 3 replicas** (``--centers N --replicas 1,2,3``; ``--centers 0``
   skips it): the ``scale`` world (N centers, ``--rows`` door logs, default 1,000 per center)
   served in a subprocess, and for each replica count a fresh PostgreSQL journal and that many
   replica processes (this file's ``replica`` mode: ``FleetDaemon``, the procrastinate
   worker ``doorfix daemon`` runs on a PostgreSQL journal, its agent on a clock that runs in
   real time from the world's "now", shared by the replicas). A cycle is a tick of each
   playbook deferred at once: one job per shard of the centers (``--shards``, by default
   ``[fleet] shards``'s 8), as the fleet's periodic tasks defer them (no periodic tick fires
   during the bench); the replicas take them from the queue, one job at a time each, and
   the job lock of each scope at each shard lets runs of different shards and scopes go at
   once on several replicas (one replica runs them in turn), while every request takes its
   turn from the fleet's one pace per system. Two cycles: **cold**
   (no cursors, door-logs looks back 24 h) and **steady** (cursors stored; the figure), each
   at ``--rps`` requests/s per system, beside two rate-limit floors, of the requests made and,
   for the steady cycle, of the least the world needs (``bench_daemon_cycle.py``'s counts):
   with two replicas or more the busiest system's requests over the cycle / rps, with one
   each run's busiest system's / rps, summed (the least the world needs: each playbook's,
   once; a shard's run reads the centers list and ACA's feed itself, which the requests
   made show). The sandbox's own request
   log gives each system's busiest second during the cycles (the fleet-wide rate limit).
4. **take-over of a dead replica's work**: with the largest replica count, a steady cycle
   in which the replica that took the first run is SIGKILLed ``--kill-after`` seconds in; the
   dead job is failed by a live replica's sweep, the killed job's next one (its playbook at
   its shard) is deferred at once (as its next tick would be) and the figure is the time
   from the kill to that run completed on a live replica (the daemon's limit: the longest
   API timeout, 10 s by default, plus two heartbeats of 2 s, before the dead run's lock is
   taken over).

PostgreSQL: ``$DOORFIX_TEST_PG_DSN``, else a throwaway cluster started with ``.ci/postgres``.

    python bench/bench_fleet.py [--writes 500] [--stale 3] [--centers 100] [--replicas 1,2,3]
        [--rows N] [--rps 20] [--kill-after 1] [--shards 8]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import psycopg
from _harness import START, scale_sandbox, served_agent
from bench_daemon_cycle import SYSTEMS, least_floor, steady_least
from procrastinate import App, PsycopgConnector

from doorfix.agent.config import EngineSection, FleetSection, Settings
from doorfix.agent.daemon import scheduler
from doorfix.agent.daemon.fleet import QUEUE, FleetDaemon, job_lock, job_shards
from doorfix.agent.engine.run import PLAYBOOKS, run_once
from doorfix.agent.engine.shards import Shard
from doorfix.agent.journal.lock import DbRunLock
from doorfix.agent.journal.store import Journal
from doorfix.clock import AcceleratedClock, StoppableClock, SystemClock
from doorfix.log import configure_logging

SCRIPT = Path(__file__).resolve().parents[1] / ".ci" / "postgres"


@contextmanager
def server() -> Iterator[str]:
    """The DSN of CI's server, or of a throwaway cluster stopped afterwards."""
    dsn = os.environ.get("DOORFIX_TEST_PG_DSN")
    if dsn:
        yield dsn
        return
    folder = tempfile.mkdtemp(prefix="doorfix-bench-pg.")
    dsn = subprocess.run(  # noqa: S603
        [str(SCRIPT), "start", folder], capture_output=True, text=True, check=True
    ).stdout.strip()
    try:
        yield dsn
    finally:
        subprocess.run([str(SCRIPT), "stop", folder], check=False)  # noqa: S603


@contextmanager
def schema_url(dsn: str) -> Iterator[str]:
    """A URL of an empty schema on the server, dropped afterwards."""
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{dsn}&options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def write_latency(target: str, writes: int) -> list[float]:
    """Seconds per committed write: an intent and its result, ``writes`` times."""
    times: list[float] = []
    with Journal(target, clock=SystemClock()) as journal:
        run_id = journal.start_run("aca-rejections", dry_run=False)
        incident = journal.open_incident(
            key="bench|c-1|u-1|l-1",
            cause="aca.clp_out_of_sync",
            subject={"center_id": "c-1"},
            run_id=run_id,
            event_ids=["e-1"],
            evidence={},
        )
        for n in range(writes):
            start = time.perf_counter()
            action = journal.intent(
                run_id=run_id,
                incident_id=incident.incident_id,
                remedy="toggle_access_matrix",
                target=f"u-{n}/l-1",
                system="aca",
                params={"n": n},
                idempotency_key=f"bench-{n}",
            )
            middle = time.perf_counter()
            journal.result(action, status="succeeded", detail={})
            end = time.perf_counter()
            times += [middle - start, end - middle]
    return times


def takeover(url: str, stale: float) -> float:
    """Seconds from the holder's last heartbeat to another replica holding the lock."""
    with Journal(url, clock=SystemClock()) as dead, Journal(url, clock=SystemClock()) as live:
        assert isinstance(dead.run_lock, DbRunLock)
        assert isinstance(live.run_lock, DbRunLock)
        dead.run_lock.stale_after = live.run_lock.stale_after = stale
        row = DbRunLock.row("cloud")
        assert dead.run_lock.try_acquire("door-logs", name=row) is not None
        last_beat = time.monotonic()  # then it is killed: no more heartbeats
        while live.run_lock.try_acquire("door-logs", name=row) is None:
            time.sleep(0.2)
        return time.monotonic() - last_beat


def describe(name: str, times: list[float]) -> str:
    ordered = sorted(times)
    p95 = ordered[int(len(ordered) * 0.95) - 1]
    return (
        f"{name}: {len(times)} writes, median {statistics.median(times) * 1000:.2f} ms, "
        f"p95 {p95 * 1000:.2f} ms"
    )


# ---------------------------------------------------------------------------- replicas


class SharedClock(AcceleratedClock):
    """Real time from the world's "now", counted from one monotonic instant for every replica.

    The replicas' run-lock heartbeats are compared across processes: their clocks must agree
    (``time.monotonic()`` is the machine's, the same in every process).
    """

    def __init__(self, start: datetime, t0: float) -> None:
        super().__init__(start, 1.0)
        self._t0 = t0


def emit(event: str, **fields: Any) -> None:
    """One JSON line on stdout for the parent, stamped with the machine's monotonic time."""
    print(json.dumps({"event": event, "t": time.monotonic(), **fields}), flush=True)


async def replica(ready: dict[str, Any], url: str, rps: float, t0: float, shards: int) -> None:
    """One fleet replica on the served world; no periodic tick fires (the parent defers)."""
    clock = StoppableClock(SharedClock(START, t0))
    limits = {"requests_per_second": rps}
    never = {"cron": "0 0 1 1 *"}  # New Year's midnight: the parent defers every job
    settings = Settings.model_validate(
        {
            "cloud": limits,
            "aca": limits,
            "clp": limits,
            "journal": {"url": url},
            "daemon": {"port": 0},
            "fleet": {"shards": shards},
            "schedule": {p.replace("-", "_"): never for p in PLAYBOOKS},
        }
    )
    agent = served_agent(settings, ready, Journal(url, clock=clock), clock)

    async def timed(agent: Any, playbook: str, **kwargs: Any) -> Any:
        before = {s: c.calls for s, c in agent.clients.stats().items()}
        shard = None if kwargs.get("shard") is None else str(kwargs["shard"])
        emit("start", playbook=playbook, shard=shard, pid=os.getpid())
        try:
            return await run_once(agent, playbook, **kwargs)
        finally:
            after = {s: c.calls for s, c in agent.clients.stats().items()}
            calls = {s: after[s] - before[s] for s in after}
            emit("done", playbook=playbook, shard=shard, pid=os.getpid(), calls=calls)

    # the bench's stopwatch around each run the daemon makes (its module's name for run_once)
    vars(scheduler)["run_once"] = timed
    daemon = FleetDaemon(agent)
    try:
        await daemon.run(asyncio.Event(), on_ready=lambda _: emit("ready", pid=os.getpid()))
    finally:
        await agent.clients.aclose()
        agent.journal.close()


def replica_main(argv: list[str]) -> None:
    """``bench_fleet.py replica READY_FILE URL RPS T0 SHARDS``: one replica until SIGTERM."""
    ready = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    configure_logging(level="error", json=True)
    asyncio.run(replica(ready, argv[1], float(argv[2]), float(argv[3]), int(argv[4])))


class Replica:
    """A replica process and the events it printed, read as they come."""

    def __init__(self, ready_file: Path, url: str, rps: float, t0: float, shards: int) -> None:
        argv = [str(ready_file), url, str(rps), str(t0), str(shards)]
        self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and file
            [sys.executable, __file__, "replica", *argv],
            stdout=subprocess.PIPE,
            text=True,
        )
        self.events: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with contextlib.suppress(json.JSONDecodeError):
                self.events.append(json.loads(line))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``check`` until it holds; fail saying ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)


def all_ready(replicas: list[Replica]) -> bool:
    return all(any(e["event"] == "ready" for e in r.events) for r in replicas)


def events(replicas: list[Replica], kind: str, since: float) -> list[dict[str, Any]]:
    return sorted(
        (e for r in replicas for e in list(r.events) if e["event"] == kind and e["t"] >= since),
        key=lambda e: e["t"],
    )


def defer(url: str, jobs: list[tuple[str, Shard | None]]) -> None:
    """One job per playbook and shard, as a tick of each would defer it (fleet.py's)."""

    async def go() -> None:
        app = App(connector=PsycopgConnector(conninfo=url))
        async with app.open_async():
            timestamp = int(time.time())  # one tick: its shards' runs count caps together
            for playbook, shard in jobs:
                named = playbook if shard is None else f"{playbook}@{shard}"
                kwargs: dict[str, Any] = {"timestamp": timestamp}
                if shard is not None:
                    kwargs["shard"] = str(shard)
                await app.configure_task(
                    name=f"doorfix.run.{playbook}",
                    queue=QUEUE,
                    lock=job_lock(playbook, shard),
                    queueing_lock=f"doorfix.run.{named}",
                ).defer_async(**kwargs)

    asyncio.run(go())


def tick(shards: int, playbooks: tuple[str, ...] = PLAYBOOKS) -> list[tuple[str, Shard | None]]:
    """The jobs of one tick of each playbook: one per shard of centers, in the order the
    fleet's periodic deferrer queues coinciding ticks (shard by shard, see fleet.py)."""
    return [(p, s) for s in job_shards(shards) for p in playbooks]


def sandbox_requests(ready: dict[str, Any], since: float) -> dict[str, dict[str, int]]:
    answer = httpx.get(f"{ready['urls']['control']}/requests", params={"since": since}, timeout=30)
    systems: dict[str, dict[str, int]] = answer.json()["systems"]
    return systems


def cycle(
    replicas: list[Replica], url: str, timeout: float, shards: int
) -> tuple[float, float, list[dict[str, Any]]]:
    """Defer a tick's jobs; (start, seconds until the last run is done, the runs done)."""
    since = time.monotonic()
    jobs = tick(shards)
    defer(url, jobs)
    wanted = {(p, None if s is None else str(s)) for p, s in jobs}
    wait_until(
        lambda: {(e["playbook"], e["shard"]) for e in events(replicas, "done", since)} >= wanted,
        timeout,
        "a run of every playbook on every shard",
    )
    done = events(replicas, "done", since)
    return since, done[-1]["t"] - since, done


def _summed(calls: list[dict[str, int]]) -> dict[str, int]:
    """Requests per system over several runs."""
    total: dict[str, int] = {}
    for each in calls:
        for system, n in each.items():
            total[system] = total.get(system, 0) + n
    return total


def cycle_floor(calls: list[dict[str, int]], rps: float, replicas: int) -> float:
    """The least time the fleet-wide rate limit allows runs making these requests: side by
    side on two replicas or more (a replica works one run at a time), in turn on one."""
    if replicas >= 2:
        return least_floor(_summed(calls), rps)
    return sum(least_floor(each, rps) for each in calls)


def show_cycle(
    label: str,
    seconds: float,
    done: list[dict[str, Any]],
    *,
    rps: float,
    busiest: dict[str, dict[str, int]],
    least: dict[str, dict[str, int]] | None,
    pids: list[int],
) -> None:
    """A cycle's time beside its floors; each run's replica (its place in ``pids``) and
    requests; the busiest second at the sandbox.

    With two replicas or more, runs of different scopes go at once and every request takes
    its turn from the fleet's one pace per system, so a floor is the busiest system's
    requests over the whole cycle / the rate limit; one replica runs the scopes in turn.
    """
    floor = cycle_floor([e["calls"] for e in done], rps, len(pids))
    line = f"  {label:<7} {seconds:7.1f} s   floor of the requests made {floor:7.1f} s"
    if least is not None:
        playbooks = sorted({e["playbook"] for e in done})
        needed = cycle_floor([least[p] for p in playbooks], rps, len(pids))
        line += f"   floor of the least the world needs {needed:7.1f} s"
    print(line)
    for playbook in sorted({e["playbook"] for e in done}):
        runs = [e for e in done if e["playbook"] == playbook]
        calls = ", ".join(f"{s} {sum(e['calls'].get(s, 0) for e in runs):,}" for s in SYSTEMS)
        on = sorted(Counter(pids.index(e["pid"]) + 1 for e in runs).items())
        spread = ", ".join(f"{n} on replica {r}" for r, n in on)
        print(f"      {playbook:<16} {len(runs)} run(s) ({spread})   requests: {calls}")
    seen = ", ".join(
        f"{s} {v['busiest_second']}" for s, v in sorted(busiest.items()) if s in SYSTEMS
    )
    print(f"      busiest second at the sandbox (limit {rps:g}): {seen}")


def fleet_cycles(args: argparse.Namespace, dsn: str) -> None:
    """Cold and steady cycles with each replica count; then a dead replica's take-over."""
    counts = [int(n) for n in args.replicas.split(",")]
    shards = args.shards
    rows = args.rows if args.rows is not None else args.centers * 1000
    with (
        scale_sandbox(args.centers, rows) as ready,
        tempfile.TemporaryDirectory() as tmp,
    ):
        ready_file = Path(tmp) / "ready.json"
        ready_file.write_text(json.dumps(ready), encoding="utf-8")
        # each shard's aca-rejections run scans up to the config's default of its centers
        least = steady_least(ready["shape"], EngineSection().hardware_scan_centers, shards)
        figures: dict[int, float] = {}
        for count in counts:
            with schema_url(dsn) as url:
                t0 = time.monotonic()
                replicas = [Replica(ready_file, url, args.rps, t0, shards) for _ in range(count)]
                try:
                    wait_until(partial(all_ready, replicas), 60, "the replicas to start")
                    print(
                        f"{count} replica(s) at {args.rps:g} requests/s per system, "
                        f"the centers in {shards} shard(s):"
                    )
                    for label, floors in (("cold", None), ("steady", least)):
                        since, seconds, done = cycle(replicas, url, args.timeout, shards)
                        busiest = sandbox_requests(ready, since)
                        show_cycle(
                            label,
                            seconds,
                            done,
                            rps=args.rps,
                            busiest=busiest,
                            least=floors,
                            pids=[r.proc.pid for r in replicas],
                        )
                    figures[count] = seconds
                    if count == counts[-1]:
                        takeover_of_dead(replicas, url, args)
                finally:
                    for r in replicas:
                        r.stop()
        print()
        for count, seconds in figures.items():
            floor = cycle_floor(list(least.values()), args.rps, count)
            print(
                f"steady cycle over {args.centers} centers, {count} replica(s): {seconds:.1f} s "
                f"(floor {floor:.1f} s at {args.rps:g} requests/s per system)"
            )


def takeover_of_dead(replicas: list[Replica], url: str, args: argparse.Namespace) -> None:
    """Kill the replica working the cycle's first run; time until its work is done elsewhere."""
    since = time.monotonic()
    defer(url, tick(args.shards))
    wait_until(lambda: bool(events(replicas, "start", since)), args.timeout, "a run to start")
    first = events(replicas, "start", since)[0]
    (victim,) = [r for r in replicas if r.proc.pid == first["pid"]]
    wait_until(lambda: time.monotonic() >= first["t"] + args.kill_after, 30, "the kill point")
    victim.proc.kill()
    killed = time.monotonic()
    victim.proc.wait(10)
    job = (first["playbook"], first["shard"])
    playbook = job[0] if job[1] is None else f"{job[0]} on shard {job[1]}"
    # its next tick
    defer(url, [(job[0], None if job[1] is None else Shard.parse(job[1]))])
    live = [r for r in replicas if r is not victim]

    def ran(e: dict[str, Any]) -> bool:
        return (e["playbook"], e["shard"]) == job

    wait_until(
        lambda: any(ran(e) for e in events(live, "done", killed)),
        args.timeout,
        f"{playbook} to be run by a live replica",
    )
    done = next(e for e in events(live, "done", killed) if ran(e))
    mid_run = not any(ran(e) for e in events([victim], "done", first["t"]) if e["t"] < killed)
    print(
        f"  take-over: {playbook} killed {args.kill_after:g} s into its run "
        f"({'mid-run' if mid_run else 'after its run had ended'}); its next run, deferred at "
        f"the kill as its next tick would be, finished on a live replica "
        f"{done['t'] - killed:.1f} s after the kill (the dead job is failed once its worker "
        f"is silent 10 s; the dead run's row of its scope is stale after the 10 s API timeout "
        f"+ 2 heartbeats of 2 s; runs of the other scope, and of other shards, never wait "
        f"for it)"
    )


def main() -> None:
    if sys.argv[1:2] == ["replica"]:
        replica_main(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=500)
    parser.add_argument("--stale", type=float, default=3.0)
    parser.add_argument("--centers", type=int, default=100, help="0: no fleet cycles")
    parser.add_argument("--replicas", default="1,2,3")
    parser.add_argument("--rows", type=int, default=None, help="default: 1,000 per center")
    parser.add_argument("--rps", type=float, default=20.0)
    parser.add_argument("--kill-after", type=float, default=1.0)
    parser.add_argument("--timeout", type=float, default=1800.0, help="per cycle, seconds")
    parser.add_argument(
        "--shards",
        type=int,
        default=FleetSection().shards,
        help="[fleet] shards: each tick one run per shard of centers (default: the config's)",
    )
    args = parser.parse_args()
    configure_logging(level="error", json=True)
    # procrastinate warns that this script's App is made in __main__: it only defers jobs
    logging.getLogger("procrastinate").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = write_latency(str(Path(tmp) / "journal.sqlite3"), args.writes)
    print(describe("journal write latency, SQLite (WAL, synchronous=FULL)", sqlite))
    with server() as dsn:
        with schema_url(dsn) as url:
            pg = write_latency(url, args.writes)
            print(describe("journal write latency, PostgreSQL", pg))
            seconds = takeover(url, args.stale)
            with psycopg.connect(url) as conn:
                row = conn.execute("SHOW fsync").fetchone()
            fsync = row[0] if row else "?"
            print(f"(PostgreSQL fsync = {fsync}: the throwaway test cluster runs without fsync)")
        print(
            f"run lock take-over after a killed holder: {seconds:.2f} s "
            f"(stale limit {args.stale:g} s + polling every 0.2 s)"
        )
        if args.centers > 0:
            fleet_cycles(args, dsn)


if __name__ == "__main__":
    main()
