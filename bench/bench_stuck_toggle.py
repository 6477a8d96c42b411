"""An ``aca-rejections`` run in which one Access Matrix toggle never reaches CLP, timed.

A toggle is verified by re-reading Larry access until CLP grants or ``verify_timeout_seconds``
passes. Before incidents were worked concurrently, one toggle whose push never lands held
every other incident of the run for its whole timeout, so the run took about the sum of the
timeouts of the stuck toggles plus everything else after them. Now a verification holds
nothing (its incident gives its slot back and its lane goes on once the writes are sent): the
run takes about one ``verify_timeout_seconds``, however many other incidents it fixes
meanwhile.

The world is the ``scale`` scenario cut to 10 centers, on the wall clock, in this process
(ASGI, so the run's waits are real). ``--refusals`` people are each refused at their own lock
with ``aca.clp_out_of_sync`` (ACA and CLP disagree; the 5 s push fixes it after a toggle);
one of them is ``sticky`` (the push never lands). One ``aca-rejections`` run is timed with
``verify_timeout_seconds`` set to ``--verify-timeout``; the target is that timeout + 10 s.

    python bench/bench_stuck_toggle.py [--refusals 10] [--verify-timeout 120] [--seed 0]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from collections import Counter
from pathlib import Path

from doorfix.agent.config import Settings
from doorfix.agent.engine.run import run_once
from doorfix.agent.journal.store import Journal
from doorfix.agent.runtime import Urls, build_agent, sandbox_secrets
from doorfix.clock import SystemClock
from doorfix.log import configure_logging
from doorfix.sandbox.api.app import create_app
from doorfix.sandbox.api.transport import IN_PROCESS_ROOT, SandboxTransport
from doorfix.sandbox.faults.api import ApiFaults
from doorfix.sandbox.scenarios.registry import build_scenario

#: the world: 10 centers of the scale scenario, no door-log history
WORLD = {"centers": 10, "door_logs": 0}
#: what the run may take beyond one verification timeout (the issue's target)
MARGIN_SECONDS = 10.0


async def measure(refusals: int, verify_timeout: float, seed: int, tmp: Path) -> None:
    clock = SystemClock()
    world = build_scenario("scale", seed=0, clock=clock, **WORLD)
    app = create_app(world, api_faults=ApiFaults(0))
    pairs = sorted(
        {
            (user.id, lock_id)
            for user in world.users.values()
            for booking in world.bookings.values()
            if booking.company_id == user.company_id
            for lock_id in world.inventories[booking.inventory_id].lock_ids[:1]
        }
    )
    # each person at a lock of their own, so no two incidents share a lane by chance
    rng = random.Random(seed)
    chosen: list[tuple[str, str]] = []
    users: set[str] = set()
    locks: set[str] = set()
    for user_id, lock_id in rng.sample(pairs, len(pairs)):
        if user_id in users or lock_id in locks:
            continue
        chosen.append((user_id, lock_id))
        users.add(user_id)
        locks.add(lock_id)
        if len(chosen) == refusals:
            break
    for index, (user_id, lock_id) in enumerate(chosen):
        world.inject("aca.clp_out_of_sync", user_id=user_id, lock_id=lock_id, sticky=index == 0)
        world.present_at_lock(user_id, lock_id, "tag")
    settings = Settings.model_validate(
        {
            "guards": {"verify_timeout_seconds": verify_timeout},
            "journal": {"path": str(tmp / "unused.sqlite3")},
        }
    )
    journal = Journal(tmp / "journal.sqlite3", clock=clock)
    agent = build_agent(
        settings,
        sandbox_secrets(),
        clock=clock,
        journal=journal,
        urls=Urls.under(IN_PROCESS_ROOT),
        transport=SandboxTransport(app),
    )
    try:
        began = time.perf_counter()
        report = await run_once(agent, "aca-rejections")
        took = time.perf_counter() - began
    finally:
        await agent.clients.aclose()
        journal.close()
    outcomes = Counter(i.outcome for i in report.incidents)
    print(
        f"world: 10 centers; {len(chosen)} people refused at their own lock "
        f"(aca.clp_out_of_sync), 1 of them sticky (the push never lands)"
    )
    print(f"outcomes: {', '.join(f'{k} {v}' for k, v in sorted(outcomes.items()))}")
    target = verify_timeout + MARGIN_SECONDS
    verdict = "met" if took <= target else "MISSED"
    print(
        f"aca-rejections run with one toggle that never lands: {took:.1f} s "
        f"(verify_timeout_seconds {verify_timeout:g}; target <= {target:g} s: {verdict})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--refusals", type=int, default=10)
    parser.add_argument("--verify-timeout", type=float, default=120.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    configure_logging(level="warning", json=False)
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(measure(args.refusals, args.verify_timeout, args.seed, Path(tmp)))


if __name__ == "__main__":
    main()
