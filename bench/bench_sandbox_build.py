"""Build the ``scale`` sandbox world and time it, its memory, and door-log pages.

    python bench/bench_sandbox_build.py [--centers 1000] [--rows 1000000] [--pages 300]

Prints the build time, the process's peak RSS, and the median and p95 time of
``World.door_log_page`` for 500-row pages: over random projects of the scale world, then over
one project holding every row (where finding ``start_time`` bisects a million-row column).
Targets: build < 30 s, RSS < 1 GiB, a 500-row page well under 20 ms.
"""

from __future__ import annotations

import argparse
import random
import resource
import statistics
import time
from datetime import UTC, datetime

from doorfix.clock import ManualClock
from doorfix.sandbox.scenarios.registry import build_scenario
from doorfix.sandbox.world.world import World

START = datetime(2026, 11, 16, 8, 0, tzinfo=UTC)


def peak_rss_mib() -> float:
    """The process's peak resident set size so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def page_times(world: World, pages: int, rng: random.Random) -> list[float]:
    """Seconds per 500-row ``door_log_page`` call, on random projects and start times."""
    projects = sorted(world.projects)
    end = int(START.timestamp())
    begin = end - 7 * 86400
    out = []
    for _ in range(pages):
        project = rng.choice(projects)
        since = rng.randrange(begin, end - 3600)
        total = world.door_logs.count(project, since)
        index = rng.randrange(max(1, (total + 499) // 500)) + 1
        tic = time.perf_counter()
        world.door_log_page(project, since, index, 500)
        out.append(time.perf_counter() - tic)
    return out


def report(label: str, times: list[float]) -> None:
    """Print the median and p95 of a list of seconds, in milliseconds."""
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    print(f"{label}: median {statistics.median(ordered) * 1000:.2f} ms, p95 {p95 * 1000:.2f} ms")


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--centers", type=int, default=1000)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--pages", type=int, default=300)
    args = parser.parse_args()
    rng = random.Random(0)
    baseline = peak_rss_mib()

    tic = time.perf_counter()
    world = build_scenario(
        "scale", seed=0, clock=ManualClock(START), centers=args.centers, door_logs=args.rows
    )
    built = time.perf_counter() - tic
    print(
        f"scale build: {args.centers} centers, {len(world.door_logs):,} door-log rows, "
        f"{len(world.users):,} users, {len(world.locks):,} locks, {len(world.doors):,} doors"
    )
    print(f"build time: {built:.2f} s")
    print(f"peak RSS: {peak_rss_mib():.0f} MiB (interpreter and imports: {baseline:.0f} MiB)")
    report("door_log_page 500 rows, random projects", page_times(world, args.pages, rng))
    del world

    tic = time.perf_counter()
    single = build_scenario(
        "scale", seed=0, clock=ManualClock(START), centers=1, door_logs=args.rows
    )
    print(f"one-project build: {len(single.door_logs):,} rows in {time.perf_counter() - tic:.2f} s")
    report("door_log_page 500 rows, one project", page_times(single, args.pages, rng))
    print(f"peak RSS overall: {peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
