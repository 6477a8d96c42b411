"""door-logs over the scale scenario: events per second, API calls per incident, peak RSS.

Builds the ``scale`` scenario (default 1,000 centers and 1,000,000 door-log rows with 1 %
failures, spread over the 7 days before the benchmark's "now"), serves it on 127.0.0.1 in a
subprocess, and runs ``doorfix run door-logs`` once over the whole history in this process
(the same ``run_once`` the CLI and the daemon use), with a journal file in a temp dir.

    python bench/bench_door_logs_playbook.py [--centers 1000] [--rows 1000000] [--rps 0]

Printed: rows read and failure events per second, incidents, API calls per incident (by
system), peak RSS of the agent process. ``--rps`` sets the client rate limit per system
(0: none, to measure doorfix rather than the limiter).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from _harness import MIB, START, PeakRss, scale_sandbox, served_agent

from doorfix.agent.config import Settings
from doorfix.agent.engine.run import run_once
from doorfix.agent.journal.store import Journal
from doorfix.clock import ManualClock
from doorfix.log import configure_logging


async def run(ready: dict[str, Any], rps: float, journal_path: Path) -> None:
    """One door-logs run over the whole history; print the figures."""
    clock = ManualClock(START)
    limits = {"requests_per_second": rps if rps > 0 else 1e9, "concurrency": 16}
    settings = Settings.model_validate(
        {"cloud": limits, "aca": limits, "clp": limits, "journal": {"path": str(journal_path)}}
    )
    agent = served_agent(settings, ready, Journal(journal_path, clock=clock), clock)
    try:
        with PeakRss() as rss:
            started = time.perf_counter()
            report = await run_once(agent, "door-logs", since=START - timedelta(days=8))
            seconds = time.perf_counter() - started
        stats = agent.clients.stats()
    finally:
        await agent.clients.aclose()
        agent.journal.close()
    failures = sum(len(i.event_ids) for i in report.incidents)
    incidents = len(report.incidents)
    calls = {system: s.calls for system, s in stats.items()}
    total = sum(calls.values())
    page_calls = stats["cloud"].by_endpoint.get("get_door_log", 0)
    rows = ready["rows"]
    print(f"rows read                    {rows:>12,}")
    print(f"failure events diagnosed     {failures:>12,}")
    print(f"incidents                    {incidents:>12,}   {report.counts}")
    print(f"run time                     {seconds:>12.1f} s")
    print(f"rows per second              {rows / seconds:>12,.0f}")
    print(f"failure events per second    {failures / seconds:>12,.0f}")
    print(f"API calls                    {total:>12,}   {calls}")
    print(f"  of which door-log pages    {page_calls:>12,}")
    print(f"API calls per incident       {total / max(incidents, 1):>12.2f}")
    print(f"  excluding door-log pages   {(total - page_calls) / max(incidents, 1):>12.2f}")
    print(f"peak RSS of the agent        {rss.peak / MIB:>12.1f} MiB")
    for system, s in stats.items():
        top = sorted(s.by_endpoint.items(), key=lambda kv: -kv[1])[:6]
        print(f"  {system:<5} calls by endpoint: {dict(top)}")


def main() -> None:
    """Parse arguments, serve the world, run, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--centers", type=int, default=1000)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rps", type=float, default=0.0)
    args = parser.parse_args()
    configure_logging(level="error", json=True)
    with (
        scale_sandbox(args.centers, args.rows, seed=args.seed) as ready,
        tempfile.TemporaryDirectory() as tmp,
    ):
        asyncio.run(run(ready, args.rps, Path(tmp) / "journal.sqlite3"))


if __name__ == "__main__":
    main()
