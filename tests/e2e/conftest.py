"""The agent against the in-process demo sandbox, on a manual clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from doorfix.agent.config import Settings
from doorfix.agent.engine import Agent, run_once
from doorfix.agent.journal import Journal
from doorfix.agent.report import RunReport
from doorfix.agent.runtime import Urls, build_agent, sandbox_secrets
from doorfix.clock import ManualClock
from doorfix.sandbox.apifaults import ApiFaults
from doorfix.sandbox.app import create_app, sandbox_state
from doorfix.sandbox.runtime import SandboxState
from doorfix.sandbox.scenario_demo import demo_manifest
from doorfix.sandbox.scenarios import build_scenario
from doorfix.sandbox.transport import IN_PROCESS_ROOT, SandboxTransport

START = datetime(2026, 11, 16, 8, 0, tzinfo=UTC)

#: the demo's configuration: renewals allowed, the faulted holiday may be opened 08:00-18:00
DEMO_SETTINGS: dict[str, Any] = {
    "guards": {"renewals_enabled": True},
    "remedies": {"holiday_hours": {"Public holiday": {"start_time": "08:00", "end_time": "18:00"}}},
}


@dataclass
class Demo:
    """The demo world, its app state, and an agent pointed at it."""

    clock: ManualClock
    state: SandboxState
    agent: Agent
    manifest: dict[str, dict[str, Any]]

    async def run(self, playbook: str, *, dry_run: bool = False) -> RunReport:
        """One run of a playbook."""
        return await run_once(self.agent, playbook, dry_run=dry_run)

    async def run_all(self, *, dry_run: bool = False) -> list[RunReport]:
        """One run of each playbook."""
        return [
            await self.run(p, dry_run=dry_run)
            for p in ("door-logs", "aca-rejections", "license-renewal")
        ]

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


def make_demo(journal: Journal | None = None, **overrides: Any) -> Demo:
    """A demo harness (a fresh world and agent)."""
    clock = ManualClock(START)
    world = build_scenario("demo", seed=0, clock=clock)
    app = create_app(world, api_faults=ApiFaults(seed=0))
    settings = Settings.model_validate({**DEMO_SETTINGS, **overrides})
    agent = build_agent(
        settings,
        sandbox_secrets(),
        clock=clock,
        journal=journal or Journal(":memory:", clock=clock),
        urls=Urls.under(IN_PROCESS_ROOT),
        transport=SandboxTransport(app),
    )
    return Demo(clock, sandbox_state(app), agent, demo_manifest(world))


@pytest.fixture
async def demo() -> AsyncIterator[Demo]:
    """The demo harness; closes the agent's clients and journal afterwards."""
    harness = make_demo()
    try:
        yield harness
    finally:
        await harness.agent.clients.aclose()
        harness.agent.journal.close()
