"""How fast the sandbox serves a 500-row ``get_door_log`` page out of a million door logs.

Builds the ``scale`` scenario, then times whole requests through the ASGI app in process
(token check, command dispatch, page lookup, serialisation, JSON) at random page indexes,
and prints the median and 95th percentile.

    python bench/bench_sandbox_pages.py [--requests 300] [--seed 0] [--centers N] [--rows N]
        [--no-freeze]

``--centers`` spreads the rows over fewer projects (the scale default is 1000), so the pages
served sit deep in a long project history; ``--rows`` sets how many door logs the world holds
(the scale default, 1,000,000; ``bench/run_all.py --quick`` builds a smaller world).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import statistics
import time
from datetime import UTC, datetime

from doorfix.clock import ManualClock
from doorfix.sandbox.api.transport import InProcessSandbox
from doorfix.sandbox.scenarios.registry import build_scenario

PAGE_SIZE = 500
COMMANDS_PATH = "/api/v1.0/invoke/open-ability/method/manager-commands"
START = datetime(2026, 11, 16, 8, 0, 0, tzinfo=UTC)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


async def _run(
    requests: int, seed: int, centers: int | None, door_logs: int | None, freeze: bool
) -> None:
    """Build the scale world (``centers``, ``door_logs`` or its defaults), time pages, print."""
    clock = ManualClock(START)
    params = {
        key: value
        for key, value in (("centers", centers), ("door_logs", door_logs))
        if value is not None
    }
    t0 = time.perf_counter()
    world = build_scenario("scale", seed=seed, clock=clock, **params)
    built = time.perf_counter() - t0
    if freeze:
        # what ``doorfix sandbox`` does: the built world is long-lived, so the collector
        # should not walk it again on every page's allocations
        gc.collect()
        gc.freeze()
    rows = len(world.door_logs)
    print(f"built scale (seed {seed}, {len(world.projects)} projects): {rows:,} door logs")
    print(f"  in {built:.1f} s")

    # the project with the most rows, so deep pages exist
    totals = {pid: world.door_log_page(pid, 0, 1, 1)[0] for pid in world.projects}
    project_id = max(totals, key=lambda pid: totals[pid])
    pages = max(1, totals[project_id] // PAGE_SIZE)
    print(f"project {project_id}: {totals[project_id]:,} rows, {pages:,} full pages of {PAGE_SIZE}")

    rng = random.Random(seed)
    async with InProcessSandbox.create(world) as box:
        token = await box.cloud_token()
        headers = {"Authorization": f"Bearer {token}"}

        async def page(index: int) -> float:
            body = {
                "command": "get_door_log",
                "id": f"bench-{index}",
                "param": {
                    "project_id": project_id,
                    "start_time": 0,
                    "page_size": PAGE_SIZE,
                    "page_index": index,
                },
            }
            started = time.perf_counter()
            response = await box.cloud.post(COMMANDS_PATH, json=body, headers=headers)
            items = response.json()["result"]["items"]
            elapsed = time.perf_counter() - started
            assert response.status_code == 200
            assert len(items) == PAGE_SIZE
            return elapsed

        for _ in range(10):  # warm-up: imports, caches, first allocations
            await page(1)
        timings = [await page(rng.randint(1, pages)) for _ in range(requests)]

    timings.sort()
    p95 = timings[max(0, int(len(timings) * 0.95) - 1)]
    print(f"get_door_log, {PAGE_SIZE} rows/page, {requests} requests in process:")
    print(f"  median {_ms(statistics.median(timings))}  p95 {_ms(p95)}  max {_ms(timings[-1])}")


def main() -> None:
    """Parse arguments and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--centers", type=int, default=None)
    parser.add_argument("--rows", type=int, default=None, help="door logs (default: 1,000,000)")
    parser.add_argument("--no-freeze", action="store_true", help="leave the world to the GC")
    args = parser.parse_args()
    asyncio.run(_run(args.requests, args.seed, args.centers, args.rows, not args.no_freeze))


if __name__ == "__main__":
    main()
