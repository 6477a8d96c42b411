"""The fault tests' harness: the demo world in process on a manual clock, with knobs.

Built by ``support.demo.make_demo`` with the seed, the credentials, the scenario's parameters
and the journal chosen per test, respx routes in front of the sandbox for bad answers, and the
readings the fault tests assert on: runs that may fail, and the sandbox's mutation log (what
landed, what was done twice). Also the command line as subprocesses run all at once.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import respx
from support.demo import DEMO_SETTINGS, make_demo
from support.processes import secret_env, spawn_doorfix

from doorfix.agent.config import Secrets
from doorfix.agent.engine.report import RunReport
from doorfix.agent.engine.run import PLAYBOOKS, RunFailed, run_once
from doorfix.agent.engine.state import Agent
from doorfix.clock import ManualClock
from doorfix.errors import System
from doorfix.sandbox.api.auth import SandboxCredentials
from doorfix.sandbox.api.runtime import Mutation, SandboxState
from doorfix.sandbox.api.transport import IN_PROCESS_ROOT, SandboxTransport
from doorfix.sandbox.faults.api import ApiFaults

SYSTEMS: tuple[System, ...] = ("cloud", "aca", "clp")
#: the cloud's one command path (the command is in the JSON body)
COMMANDS = "/api/v1.0/invoke/open-ability/method/manager-commands"

#: writes that change the world each time they land (a repeat bills or adds twice)
UNSAFE_WRITES: dict[str, tuple[str, ...]] = {
    "renew_door_license": ("door_id",),
    "add_personnel_credential": ("personnel_id", "value"),
    "create_visitor_temp_key": ("visitor_id",),
    "sync_access": ("collection_id",),
}
#: writes the contract calls safe to repeat: only a repeat after a delivered answer is one
IDEMPOTENT_WRITES: dict[str, tuple[str, ...]] = {
    "add_access_group_member": ("personnel_id", "access_group_id"),
    "set_holiday_working_hours": ("holiday_id",),
}


@dataclass
class Outcome:
    """One attempted run: its report, or the RunFailed it raised."""

    playbook: str
    at: datetime
    report: RunReport | None = None
    failed: RunFailed | None = None

    @property
    def result(self) -> RunReport:
        """The report, the partial one of a failed run included."""
        if self.report is not None:
            return self.report
        assert self.failed is not None
        return self.failed.report


@dataclass
class World:
    """The demo world, its sandbox state, and an agent pointed at it."""

    clock: ManualClock
    state: SandboxState
    agent: Agent
    manifest: dict[str, dict[str, Any]]
    history: list[Outcome] = field(default_factory=list)

    @property
    def faults(self) -> ApiFaults:
        """The sandbox's API faults (rates, rules, token expiry)."""
        return self.state.faults

    async def run(self, playbook: str, *, dry_run: bool = False) -> RunReport:
        """One run that must complete."""
        report = await run_once(self.agent, playbook, dry_run=dry_run)
        self.history.append(Outcome(playbook, self.clock.now(), report=report))
        return report

    async def attempt(self, playbook: str) -> Outcome:
        """One run that may fail (RunFailed is the exit-code-1 path)."""
        at = self.clock.now()
        try:
            outcome = Outcome(playbook, at, report=await run_once(self.agent, playbook))
        except RunFailed as exc:
            outcome = Outcome(playbook, at, failed=exc)
        self.history.append(outcome)
        return outcome

    async def attempt_all(self) -> list[Outcome]:
        """One attempt of each playbook."""
        return [await self.attempt(p) for p in PLAYBOOKS]

    def storm(self, **rates: float) -> None:
        """The same random API faults on every system."""
        for system in SYSTEMS:
            self.faults.set_rates(system, **rates)

    def calm(self) -> None:
        """No API faults any more (rates zero, rules gone)."""
        self.faults.clear()

    def mutations(self) -> list[Mutation]:
        """Every write the three APIs received, oldest first."""
        return list(self.state.mutations.since(0))

    def landed(self) -> list[Mutation]:
        """The writes that took effect (``ok``), dropped answers included."""
        return [m for m in self.mutations() if m.outcome == "ok"]

    def present(self) -> dict[str, bool]:
        """World fault kind -> still present (several faults of a kind: any present)."""
        self.state.world.advance()
        out: dict[str, bool] = {}
        for f in self.state.world.faults():
            out[f.kind] = out.get(f.kind, False) or f.present
        return out

    async def aclose(self) -> None:
        """Close the agent's clients and journal."""
        await self.agent.clients.aclose()
        self.agent.journal.close()


#: answers a request from the sandbox itself (for a route that alters the real answer)
Forward = Callable[[httpx.Request], Awaitable[httpx.Response]]
#: adds a test's routes to the router in front of the sandbox (matched before the sandbox)
Routes = Callable[[respx.Router, Forward], None]


def _in_front(app: Any, routes: Routes) -> httpx.AsyncBaseTransport:
    """A respx router in front of the sandbox: the test's routes first, then the sandbox."""
    sandbox = SandboxTransport(app)

    async def forward(request: httpx.Request) -> httpx.Response:
        response = await sandbox.handle_async_request(request)
        await response.aread()
        return httpx.Response(
            response.status_code, headers=response.headers, content=response.content
        )

    router = respx.Router(assert_all_called=False, base_url=IN_PROCESS_ROOT)
    routes(router, forward)
    router.route().mock(side_effect=forward)
    return httpx.MockTransport(router.async_handler)


def make_world(
    *,
    seed: int = 0,
    journal: Path | str = ":memory:",
    credentials: SandboxCredentials | None = None,
    secrets: Secrets | None = None,
    scenario_params: dict[str, Any] | None = None,
    routes: Routes | None = None,
    **overrides: Any,
) -> World:
    """A fresh demo world (``seed`` picks the API faults' draws) and an agent on it.

    ``routes`` puts respx routes in front of the sandbox (bad answers for some requests).
    """
    demo = make_demo(
        {**DEMO_SETTINGS, **overrides},
        journal=journal,
        seed=seed,
        credentials=credentials,
        secrets=secrets,
        scenario_params=scenario_params,
        transport=SandboxTransport if routes is None else partial(_in_front, routes=routes),
    )
    return World(demo.clock, demo.state, demo.agent, demo.manifest)


def _ident(m: Mutation, keys: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(str(m.targets.get(k, m.params.get(k))) for k in keys)


def toggles(mutations: Iterable[Mutation]) -> dict[tuple[str, str], list[bool]]:
    """User x lock -> the Access Matrix values that landed, repeats of one value collapsed."""
    out: dict[tuple[str, str], list[bool]] = {}
    for m in mutations:
        if m.operation != "access_matrix" or m.outcome != "ok":
            continue
        values = out.setdefault((m.targets["user_id"], m.targets["lock_id"]), [])
        enabled = bool(m.params["enabled"])
        if not values or values[-1] != enabled:
            values.append(enabled)
    return out


def duplicates(mutations: Iterable[Mutation]) -> list[str]:
    """Every write done twice, as sentences (empty when nothing was done twice).

    A renewal, credential, temp key or Sync Access that landed twice; a group membership or
    holiday set twice with both answers delivered (a repeat after a lost answer is the
    contract's safe retry); a second disable-then-enable of one user at one lock; and any
    user whose access was left disabled.
    """
    rows = list(mutations)
    counts: Counter[tuple[str, tuple[str, ...]]] = Counter()
    for m in rows:
        if m.outcome != "ok":
            continue
        if m.operation in UNSAFE_WRITES:
            counts[(m.operation, _ident(m, UNSAFE_WRITES[m.operation]))] += 1
        elif m.operation in IDEMPOTENT_WRITES and not m.dropped:
            counts[(m.operation, _ident(m, IDEMPOTENT_WRITES[m.operation]))] += 1
    found = [f"{op} {'/'.join(key)} landed {n} times" for (op, key), n in counts.items() if n > 1]
    for (user, lock), values in toggles(rows).items():
        pairs = sum(1 for a, b in pairwise(values) if not a and b)
        if pairs > 1:
            found.append(f"access of {user} at {lock} toggled {pairs} times")
        if not values[-1]:
            found.append(f"access of {user} at {lock} left disabled")
    return found


def every(minutes: float) -> timedelta:
    """A step of the manual clock."""
    return timedelta(minutes=minutes)


# --------------------------------------------------------------------------- the CLI


@dataclass(frozen=True)
class Finished:
    """A finished ``python -m doorfix`` process."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


def cli_env(credentials: SandboxCredentials | None = None, **extra: str) -> dict[str, str]:
    """The environment of a doorfix process: the credentials' secrets, nothing inherited."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOORFIX_") and k != "COLUMNS"}
    env.update(secret_env(credentials))
    env.update(extra)
    return env


def doorfix(*commands: tuple[str, ...], env: dict[str, str], timeout: float = 60) -> list[Finished]:
    """Run ``python -m doorfix`` once per command, all at once; wait for every one."""
    return doorfix_each([(args, env) for args in commands], timeout=timeout)


def doorfix_each(
    runs: list[tuple[tuple[str, ...], dict[str, str]]], *, timeout: float = 60
) -> list[Finished]:
    """Run ``python -m doorfix ARGS`` with its own environment per run, all at once."""
    procs = [spawn_doorfix(*args, env=env, stdin=subprocess.DEVNULL) for args, env in runs]
    done = []
    for (args, _env), proc in zip(runs, procs, strict=True):
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        done.append(Finished(args, proc.returncode, out, err))
    return done


# --------------------------------------------------------------------------- bad answers


def rewrite(
    method: str,
    change: Callable[[Any], bool],
    *,
    times: int | None = 1,
    **pattern: Any,
) -> Routes:
    """Routes that alter the sandbox's JSON answer to the requests matching ``pattern``.

    ``change(body)`` edits the decoded body in place and says whether it changed anything;
    only the first ``times`` changes are made (``None``: every matching answer).
    """
    left = [times]

    def routes(router: respx.Router, forward: Forward) -> None:
        async def side_effect(request: httpx.Request) -> httpx.Response:
            response = await forward(request)
            if left[0] == 0 or response.status_code != 200:
                return response
            body = json.loads(response.content)
            if not change(body):
                return response
            if left[0] is not None:
                left[0] -= 1
            # json.dumps, not httpx's json=: a NaN a test put in must go out as the bad JSON it is
            return httpx.Response(
                200, content=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
            )

        router.route(method=method, **pattern).mock(side_effect=side_effect)

    return routes


def replace_body(method: str, content: bytes, **pattern: Any) -> Routes:
    """Routes that answer the matching requests with ``content`` (HTTP 200) instead."""

    def routes(router: respx.Router, forward: Forward) -> None:
        router.route(method=method, **pattern).respond(
            200, content=content, headers={"Content-Type": "application/json"}
        )

    return routes


#: request patterns of the feeds and lists the bad-answer tests tamper with
EVENTS: dict[str, Any] = {"path": "/aca/api/v1/events"}
CENTERS: dict[str, Any] = {"path": "/aca/api/v1/centers"}
DOOR_LOGS: dict[str, Any] = {"path": "/cloud" + COMMANDS, "json__command": "get_door_log"}
ENTRIES: dict[str, Any] = {"path__regex": r"^/clp/v1\.1/sites/[^/]+/entries$"}
LOCKS: dict[str, Any] = {"path__regex": r"^/clp/v1\.2/sites/[^/]+/locks$"}
