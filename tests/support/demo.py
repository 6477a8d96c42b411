"""The demo world behind the sandbox app in process, and an agent on it, on a manual clock.

:func:`make_demo` builds a fresh one (the config, the journal, the API faults' seed, the
credentials, the scenario's parameters and the transport chosen per test); :class:`Demo` runs
playbooks on it and reads what happened (the sandbox's mutation log, the faults still present).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette

from doorfix.agent.config import Secrets, Settings
from doorfix.agent.engine.report import RunReport
from doorfix.agent.engine.run import run_once
from doorfix.agent.engine.shards import Shard
from doorfix.agent.engine.state import Agent
from doorfix.agent.journal.store import Journal
from doorfix.agent.runtime import Urls, build_agent, sandbox_secrets
from doorfix.clock import ManualClock
from doorfix.sandbox.api.app import create_app, sandbox_state
from doorfix.sandbox.api.auth import SandboxCredentials
from doorfix.sandbox.api.runtime import SandboxState
from doorfix.sandbox.api.transport import IN_PROCESS_ROOT, SandboxTransport
from doorfix.sandbox.faults.api import ApiFaults
from doorfix.sandbox.scenarios.demo import demo_manifest
from doorfix.sandbox.scenarios.registry import build_scenario
from doorfix.sandbox.world.world import World

#: every in-process demo starts here: a Monday morning, inside office hours
START = datetime(2026, 11, 16, 8, 0, tzinfo=UTC)

#: the playbooks, in the order a round of runs takes them
PLAYBOOKS = ("door-logs", "aca-rejections", "license-renewal")

#: the demo's configuration: renewals allowed, the faulted holiday may be opened 08:00-18:00
DEMO_SETTINGS: dict[str, Any] = {
    "guards": {"renewals_enabled": True},
    "remedies": {"holiday_hours": {"Public holiday": {"start_time": "08:00", "end_time": "18:00"}}},
}

#: a daemon's settings for tests: its endpoint on a free port, every playbook every second
DAEMON_SETTINGS: dict[str, Any] = {
    "daemon": {"port": 0},
    "schedule": {
        name: {"every_seconds": 1} for name in ("door_logs", "aca_rejections", "license_renewal")
    },
}

#: the scale scenario cut small and healthy (``make_demo(scenario="scale",
#: scenario_params=SMALL_WORLD)``): five centers, each its own CLP site with two locks (one
#: collection), two users and one door, and no failure of its own
SMALL_WORLD: dict[str, Any] = {
    "centers": 5,
    "locks_per_center": 2,
    "doors_per_center": 1,
    "users_per_center": 2,
    "days": 1,
    "door_logs": 100,
    "failure_rate": 0.0,
}

#: the demo's faults a remedy clears for good (the ground truth says present=false)
REMEDIABLE = frozenset(
    {
        "cloud.credential_unassigned",
        "cloud.no_access_group",
        "cloud.visitor_expired",
        "cloud.holiday_restriction",
        "cloud.license_inactive",
        "aca.clp_out_of_sync",
        "aca.iq_out_of_sync",
    }
)


@dataclass
class Demo:
    """The demo world, the sandbox app in front of it, and an agent pointed at the app."""

    clock: ManualClock
    world: World
    app: Starlette
    agent: Agent
    #: demo fault kind (and the scenario's named extras) -> subject ids, as the world was built
    manifest: dict[str, dict[str, str]]

    @property
    def state(self) -> SandboxState:
        """The app's state: the world, the API faults, the mutation log."""
        return sandbox_state(self.app)

    async def run(
        self,
        playbook: str,
        *,
        dry_run: bool = False,
        on_writes_sent: Callable[[], None] | None = None,
        shard: Shard | None = None,
    ) -> RunReport:
        """One run of a playbook (``on_writes_sent``, ``shard``: see ``run_once``)."""
        return await run_once(
            self.agent, playbook, dry_run=dry_run, on_writes_sent=on_writes_sent, shard=shard
        )

    async def run_all(self, *, dry_run: bool = False) -> list[RunReport]:
        """One run of each playbook."""
        return [await self.run(p, dry_run=dry_run) for p in PLAYBOOKS]

    def mutations(self) -> list[tuple[str, str, tuple[tuple[str, Any], ...]]]:
        """Every mutating call the three APIs accepted: (system, operation, targets+params)."""
        return [
            (m.system, m.operation, tuple(sorted({**m.targets, **m.params}.items(), key=str)))
            for m in self.state.mutations.since(0)
        ]

    def present(self) -> dict[str, bool]:
        """World fault kind -> still present."""
        self.state.world.advance()
        return {f.kind: f.present for f in self.state.world.faults()}

    async def aclose(self) -> None:
        """Close the agent's clients and journal."""
        await self.agent.clients.aclose()
        self.agent.journal.close()


def make_demo(
    settings: Mapping[str, Any] = DEMO_SETTINGS,
    *,
    journal: Path | str = ":memory:",
    seed: int = 0,
    credentials: SandboxCredentials | None = None,
    secrets: Secrets | None = None,
    scenario_params: Mapping[str, Any] | None = None,
    transport: Callable[[Starlette], httpx.AsyncBaseTransport] = SandboxTransport,
    scenario: str = "demo",
) -> Demo:
    """A fresh demo world at :data:`START` and an agent on it.

    ``settings`` is the agent's config; ``seed`` picks the API faults' draws (the world's own
    seed stays 0); ``credentials`` are what the sandbox accepts, ``secrets`` what the agent
    presents (the sandbox's by default); ``transport`` puts the app behind the agent's clients;
    ``scenario`` builds another of the sandbox's worlds instead (with ``scenario_params``).
    """
    clock = ManualClock(START)
    world = build_scenario(scenario, seed=0, clock=clock, **(scenario_params or {}))
    app = create_app(world, credentials=credentials, api_faults=ApiFaults(seed=seed))
    agent = build_agent(
        Settings.model_validate(settings),
        secrets or sandbox_secrets(),
        clock=clock,
        journal=Journal(journal, clock=clock),
        urls=Urls.under(IN_PROCESS_ROOT),
        transport=transport(app),
    )
    return Demo(clock, world, app, agent, demo_manifest(world))
