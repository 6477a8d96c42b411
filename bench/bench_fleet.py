"""The fleet's journal: write latency on PostgreSQL beside SQLite, and the run lock's take-over.

Two figures the fleet (issue 15) depends on, measured on this machine:

1. **journal write latency**: an action's intent and its result, each one committed
   transaction (what the engine writes around every API call), ``--writes`` times on the
   SQLite file (WAL, fsync at every commit) and on PostgreSQL; median and p95 per write.
2. **take-over time**: a replica holding the run lock stops (killed: no heartbeat, no release);
   another replica polling for the lock (as a queued run does, every 0.2 s) gets it once the
   heartbeat is older than the stale limit (``--stale`` seconds; the daemon uses the longest
   API ``timeout_seconds`` plus two heartbeats). The figure is the time from the last heartbeat
   to the take-over, beside that limit.

PostgreSQL: ``$DOORFIX_TEST_PG_DSN``, else a throwaway cluster started with ``.ci/postgres``.

    python bench/bench_fleet.py [--writes 500] [--stale 3]

Not measured here (left for a later issue, see the branch report): the full cycle over
1,000 centers with 1, 2 and 3 replicas at the fleet-wide rate limit.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from doorfix.agent.journal.lock import DbRunLock
from doorfix.agent.journal.store import Journal
from doorfix.clock import SystemClock

SCRIPT = Path(__file__).resolve().parents[1] / ".ci" / "postgres"


@contextmanager
def postgres() -> Iterator[str]:
    """A URL of an empty schema on CI's server or on a throwaway cluster."""
    dsn = os.environ.get("DOORFIX_TEST_PG_DSN")
    folder = None
    if not dsn:
        folder = tempfile.mkdtemp(prefix="doorfix-bench-pg.")
        dsn = subprocess.run(  # noqa: S603
            [str(SCRIPT), "start", folder], capture_output=True, text=True, check=True
        ).stdout.strip()
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{dsn}&options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        if folder is not None:
            subprocess.run([str(SCRIPT), "stop", folder], check=False)  # noqa: S603


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
        assert dead.run_lock.try_acquire("door-logs") is not None
        last_beat = time.monotonic()  # then it is killed: no more heartbeats
        while live.run_lock.try_acquire("door-logs") is None:
            time.sleep(0.2)
        return time.monotonic() - last_beat


def describe(name: str, times: list[float]) -> str:
    ordered = sorted(times)
    p95 = ordered[int(len(ordered) * 0.95) - 1]
    return (
        f"{name}: {len(times)} writes, median {statistics.median(times) * 1000:.2f} ms, "
        f"p95 {p95 * 1000:.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=500)
    parser.add_argument("--stale", type=float, default=3.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = write_latency(str(Path(tmp) / "journal.sqlite3"), args.writes)
    print(describe("journal write latency, SQLite (WAL, synchronous=FULL)", sqlite))
    with postgres() as url:
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


if __name__ == "__main__":
    main()
