"""``doorfix demo``: the daemon against the sandbox's ``demo`` world, in about a minute.

The sandbox is served on 127.0.0.1 (a free port) and doorfix reaches it over real HTTP with
the sandbox's published credentials and an in-memory journal, so nothing is needed from the
machine and nothing leaves it. The world and the agent share one accelerated clock (a
weekday morning, ``speed`` times real time); the daemon runs each playbook every
``every_seconds`` of that clock. Each incident is printed as it is found and fixed; the demo
ends after ``seconds`` of real time, or earlier once two cycles of every playbook found
nothing new and no fix waits for its verification, with a summary and the people's checklists.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from rich.console import Console
from rich.markup import escape

from doorfix.agent.config import Settings
from doorfix.agent.daemon.scheduler import DaemonReady, run_daemon
from doorfix.agent.engine.report import OUTCOME_STYLE, IncidentReport, RunReport
from doorfix.agent.engine.run import PLAYBOOKS
from doorfix.agent.journal.store import Journal
from doorfix.agent.runtime import Urls, build_agent, sandbox_secrets
from doorfix.agent.words import sentence, subject_text
from doorfix.clock import AcceleratedClock, Clock
from doorfix.sandbox.api.server import ServedSandbox, build_app
from doorfix.text import printable

#: the demo world's faulted holiday, and the hours doorfix may open it
DEMO_HOLIDAY = "Public holiday"


def demo_settings(every_seconds: int, *, approve: tuple[str, ...] = ()) -> Settings:
    """The demo's config: renewals on, the faulted holiday openable, every playbook often."""
    every = {"every_seconds": every_seconds}
    remedies: dict[str, object] = {
        "holiday_hours": {DEMO_HOLIDAY: {"start_time": "08:00", "end_time": "18:00"}}
    }
    if approve:
        remedies["approve"] = list(approve)
    return Settings.model_validate(
        {
            "guards": {"renewals_enabled": True},
            "remedies": remedies,
            "schedule": {"door_logs": every, "aca_rejections": every, "license_renewal": every},
            "daemon": {"port": 0},
        }
    )


def demo_start(now: datetime) -> datetime:
    """The simulated start: 08:00 UTC of the latest weekday morning (office hours in Europe)."""
    day = now.astimezone(UTC).date()
    if now.astimezone(UTC).hour < 8:
        day -= timedelta(days=1)
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    return datetime(day.year, day.month, day.day, 8, 0, tzinfo=UTC)


def _subject(subject: Mapping[str, str], evidence: Mapping[str, Any] | None = None) -> str:
    return subject_text(subject, evidence)


def _what(incident: IncidentReport) -> str:
    done = [f"{a.remedy} {a.status}" for a in incident.actions]
    return "; ".join(done) if done else sentence(incident.reason)


@dataclass
class Watch:
    """Prints each new incident; decides when the demo has shown everything."""

    console: Console
    clock: Clock
    stop: asyncio.Event
    playbooks: tuple[str, ...] = PLAYBOOKS
    runs: int = 0
    cycles: int = 0
    quiet_cycles: int = 0
    #: the latest incident of each problem (cause and subject)
    latest: dict[tuple[str, str], IncidentReport] = field(default_factory=dict)
    _cycle: set[str] = field(default_factory=set)
    _cycle_new: bool = False

    def __call__(self, report: RunReport) -> None:
        """The daemon's report listener."""
        self.runs += 1
        at = self.clock.now().strftime("%H:%M")
        for incident in report.incidents:
            # a person trying again is the same problem: shown again only if its outcome moves
            key = (incident.cause, _subject(dict(sorted(incident.subject.items()))))
            known = self.latest.get(key)
            if known is not None and known.outcome == incident.outcome:
                continue
            self._cycle_new = True
            self.latest[key] = incident
            style = OUTCOME_STYLE.get(incident.outcome, "")
            self.console.print(
                f"[dim]{at}[/dim] [{style}]{incident.outcome:<20}[/{style}] "
                f"{incident.cause:<28} "
                f"{escape(printable(_subject(incident.subject, incident.evidence)))}  "
                f"[dim]{escape(printable(_what(incident)))}[/dim]",
                highlight=False,
                soft_wrap=True,
            )
        self._cycle.add(report.playbook)
        if self._cycle >= set(self.playbooks):
            self._end_cycle()

    def _end_cycle(self) -> None:
        self.cycles += 1
        self.quiet_cycles = 0 if self._cycle_new else self.quiet_cycles + 1
        self._cycle.clear()
        self._cycle_new = False
        waiting = any(i.outcome == "pending_verification" for i in self.latest.values())
        if self.quiet_cycles >= 2 and not waiting:
            self.stop.set()

    def counts(self) -> dict[str, int]:
        """Problems by their latest outcome."""
        return dict(sorted(Counter(i.outcome for i in self.latest.values()).items()))


@dataclass(frozen=True)
class DemoResult:
    """What the demo showed: incidents by outcome, and the world's faults cleared or not."""

    counts: dict[str, int]
    cleared: list[str]
    remaining: list[str]
    writes: int


async def _truth(base_url: str) -> tuple[list[str], list[str], int]:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        truth = (await client.get("/sandbox/truth")).json()
        writes = (await client.get("/sandbox/mutations")).json()["mutations"]
    faults = [f for f in truth["faults"] if f["kind"].startswith(("cloud.", "aca."))]
    cleared = sorted({f["kind"] for f in faults if not f["present"]})
    remaining = sorted({f["kind"] for f in faults if f["present"]})
    return cleared, remaining, sum(1 for w in writes if w["outcome"] == "ok")


def _summary(console: Console, watch: Watch, result: DemoResult, elapsed: float) -> None:
    counts = ", ".join(f"{k} {v}" for k, v in result.counts.items()) or "nothing found"
    console.rule("summary")
    console.print(
        f"{len(watch.latest)} problems (cause and subject) in {watch.runs} runs "
        f"({watch.cycles} cycles of every playbook), {elapsed:.0f} s of real time: "
        f"[bold]{counts}[/bold]",
        soft_wrap=True,
    )
    console.print(
        f"doorfix made {result.writes} write calls; the sandbox's ground truth shows "
        f"{len(result.cleared)} faults gone: {', '.join(result.cleared) or '-'}",
        soft_wrap=True,
    )
    people = [i for i in watch.latest.values() if i.outcome == "needs_human"]
    if people:
        console.print(f"\n[yellow]Needs a person[/yellow] ({len(people)}):")
    for incident in people:
        console.print(
            f"[yellow]{incident.cause}[/yellow] "
            f"{escape(printable(_subject(incident.subject, incident.evidence)))}: "
            f"{escape(printable(sentence(incident.reason)))}",
            highlight=False,
            soft_wrap=True,
        )
        for n, step in enumerate(incident.steps, 1):
            who, text = step.get("who", "?"), step.get("text", "")
            line = f"   {n}. ({escape(printable(who))}) {escape(printable(text))}"
            console.print(line, highlight=False, soft_wrap=True)


async def run_demo(
    *,
    seconds: float,
    speed: float,
    console: Console,
    seed: int = 0,
    every_seconds: int = 60,
    with_console: bool = False,
    approve: tuple[str, ...] = (),
) -> DemoResult:
    """Serve the demo world, run the daemon against it, print as it goes, then summarise.

    ``with_console``: print the supervisors' console's address and keep going for the whole
    ``seconds`` (a person is looking), instead of ending once nothing new happens.
    ``approve``: remedies that wait for a person's approval (supervised mode).
    """
    clock = AcceleratedClock(demo_start(datetime.now(UTC)), speed)
    settings = demo_settings(every_seconds, approve=approve)
    began = time.monotonic()
    with ServedSandbox(build_app("demo", seed=seed, clock=clock)) as served:
        console.print(
            f"[bold]doorfix demo[/bold]: the sandbox's [bold]demo[/bold] world (three centers, "
            f"one of every fault the runbooks know) on {served.base_url}, "
            f"clock {clock.now():%a %Y-%m-%d %H:%M} UTC at x{speed:g}; "
            f"each playbook runs every {every_seconds} s of that clock.",
            highlight=False,
            soft_wrap=True,
        )
        console.print(
            "[dim]One line per incident: simulated time, outcome, cause, subject, and what "
            "doorfix did (or why it did not).[/dim]",
            soft_wrap=True,
        )
        u = served.urls
        agent = build_agent(
            settings,
            sandbox_secrets(),
            clock=clock,
            journal=Journal(":memory:", clock=clock),
            urls=Urls(u["cloud"], u["aca"], u["clp"], u["clp_identity"]),
            target="sandbox",  # the demo's world is simulated: nothing is ever sent about it
        )
        stop = asyncio.Event()
        # with the console on, a person is looking: the demo runs its whole time
        watch = Watch(console, clock, asyncio.Event() if with_console else stop)

        def ready(where: DaemonReady) -> None:
            if with_console:
                console.print(
                    f"[bold]console[/bold]: {where.url}/  (for {seconds:g} s; Ctrl-C ends it)",
                    highlight=False,
                    soft_wrap=True,
                )
            console.print(
                f"health and metrics: {where.url}/healthz {where.url}/metrics\n",
                highlight=False,
                soft_wrap=True,
            )

        deadline = asyncio.get_running_loop().call_later(seconds, stop.set)
        try:
            await run_daemon(agent, stop=stop, on_ready=ready, on_report=watch, speed=speed)
        finally:
            deadline.cancel()
            try:
                await agent.clients.aclose()
            finally:
                agent.journal.close()
        cleared, remaining, writes = await _truth(served.base_url)
    result = DemoResult(watch.counts(), cleared, remaining, writes)
    _summary(console, watch, result, time.monotonic() - began)
    return result
