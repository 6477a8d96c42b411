"""``doorfix daemon`` as a real process against the sandbox served on 127.0.0.1.

What an operator sees: the daemon fixes the demo world's remediable faults over several
ticks, answers /healthz and /metrics, stops on SIGTERM only once the action in flight is
done, picks up where it left off after a restart without repeating a write, and logs a
failing upstream once when it goes down and once when it comes back.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from collections import Counter
from collections.abc import AsyncIterator, MutableMapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from structlog.testing import capture_logs
from support import configs
from support.demo import DAEMON_SETTINGS, REMEDIABLE, make_demo
from support.live_journal import started_actions
from support.polling import wait_for
from support.processes import DaemonProcess, daemon
from support.renewals import hold_back_renewal, renewals
from support.served import present, served_demo, writes

from doorfix.agent.daemon.scheduler import run_daemon
from doorfix.agent.engine.report import RunReport
from doorfix.agent.engine.state import Agent
from doorfix.agent.journal.store import Journal
from doorfix.clock import SystemClock
from doorfix.sandbox.api.runtime import SandboxState
from doorfix.sandbox.api.server import ServedSandbox


def write_config(
    path: Path, served: ServedSandbox, journal: Path, *, only: str | None = None, port: int = 0
) -> Path:
    """A config for the served sandbox: short ticks, quick retries, renewals on."""
    return configs.daemon_config(
        path, served.urls, journal, timeout_seconds=5, port=port, only=only
    )


def metric_samples(url: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """``/metrics`` parsed: sample name -> [(labels, value)]."""
    response = httpx.get(f"{url}/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((sample.labels, sample.value))
    return out


def completed(process: DaemonProcess, playbook: str) -> int:
    return len(process.events("run_completed", playbook=playbook))


def test_fixes_serves_health_stops_mid_run_and_resumes(tmp_path: Path) -> None:
    journal = tmp_path / "journal.sqlite3"
    with served_demo() as served:
        config = write_config(tmp_path / "doorfix.toml", served, journal)
        # the renewal lands at once but its answer is held back: SIGTERM arrives mid-action
        hold_back_renewal(served.state, seconds=3)

        with daemon(config) as first:
            assert first.url.startswith("http://127.0.0.1:")
            wait_for(
                lambda: (
                    bool(renewals(served.state))
                    and ("renew_license" in dict(started_actions(journal)))
                ),
                timeout=30,
                what="the renewal to land with its intent in the journal",
            )
            assert first.stop() == 0
        (stopping,) = first.events("daemon_stopping")
        assert "door-logs" in stopping["runs_in_flight"]
        (stopped,) = first.events("daemon_stopped")
        # the run in flight finished its call after the signal, started no other incident
        # (interrupted, unless the renewal was its last), before the daemon stopped
        runs = first.events("run_completed", playbook="door-logs") + first.events(
            "run_interrupted", playbook="door-logs"
        )
        runs.sort(key=first.lines.index)
        assert runs
        assert runs[-1]["counts"]["fixed"] >= 1
        order = first.lines.index
        assert order(stopping) < order(runs[-1]) < order(stopped)
        assert stopped["runs"] >= 1
        assert stopped["incidents"]["fixed"] >= 1
        with Journal(journal, clock=SystemClock()) as j:
            # the renewal's answer came; a check cut short (an ACA run beside it may be
            # reading a Sync Access job back) is named by its run as left for the next
            assert {a.status for a in j.actions(remedy="renew_license")} == {"succeeded"}
            left = {f"{a.remedy} {a.target}" for a in j.in_flight()}
            said = {a for e in first.events("run_interrupted") for a in e["actions_in_flight"]}
            assert left <= said

        with daemon(config) as second:
            url = second.url
            wait_for(
                lambda: not any(present(served)[k] for k in REMEDIABLE),
                timeout=40,
                what="every remediable fault to be cleared",
            )
            others = {k for k, v in present(served).items() if k not in REMEDIABLE}
            assert all(present(served)[k] for k in others)  # needs a person, or by design

            health = httpx.get(f"{url}/healthz", timeout=10)
            assert health.status_code == 200
            assert health.json()["status"] == "ok"

            # one more full round after the fixes: the restart repeats nothing (the run that
            # cleared a fault may still be finishing, so at least two runs of each)
            base = {p: completed(second, p) for p in ("door-logs", "aca-rejections")}
            wait_for(
                lambda: all(completed(second, p) >= max(n + 1, 2) for p, n in base.items()),
                timeout=30,
                what="another run of each playbook",
            )

            # a run whose toggle's verification is still going ends after runs started
            # beside it (its tail): its fix is counted when it ends
            def toggle_counted() -> bool:
                found = metric_samples(url)["doorfix_incidents_total"]
                return any(
                    lab.get("cause") == "aca.clp_out_of_sync" and lab.get("outcome") == "fixed"
                    for lab, _ in found
                )

            wait_for(toggle_counted, timeout=30, what="the toggle's run to end")
            samples = metric_samples(url)
            assert second.stop(signal.SIGINT) == 0

    assert len(second.events("daemon_stopped")) == 1
    # problems found again at every run without a new refusal (an offline lock, a license only
    # the distributor can renew) are in each run's report, not a log line per run each
    quiet = [e for e in second.events("incident_repeated") if e["events"] == 0]
    assert quiet == [], quiet[:3]
    # every write was made once; one renewal per door, even across the restart
    done = writes(served)
    assert max(done.values()) == 1
    assert sorted(renewals(served.state)) == sorted(set(renewals(served.state)))
    assert len(renewals(served.state)) == 2
    ops = Counter(op for op, _, _ in done.elements())
    assert ops == Counter(
        {
            "add_personnel_credential": 1,
            "add_access_group_member": 1,
            "create_visitor_temp_key": 1,
            "set_holiday_working_hours": 1,
            "renew_door_license": 2,
            "access_matrix": 2,  # disabled, then enabled
            "sync_access": 1,
        }
    )

    def value(name: str, **labels: str) -> float:
        return sum(v for lab, v in samples[name] if all(lab.get(k) == x for k, x in labels.items()))

    assert value("doorfix_up") == 1
    assert value("doorfix_runs_total", playbook="aca-rejections", status="completed") >= 2
    assert value("doorfix_incidents_total", cause="aca.clp_out_of_sync", outcome="fixed") == 1
    assert value("doorfix_actions_total", remedy="toggle_access_matrix", status="succeeded") == 1
    assert value("doorfix_api_calls_total", system="aca") > 0
    assert value("doorfix_run_duration_seconds_count", playbook="door-logs") >= 1
    assert value("doorfix_last_success_timestamp_seconds", playbook="door-logs") > 0
    assert value("doorfix_circuit_breaker_open", system="cloud") == 0


def test_upstream_down_is_logged_once_and_the_events_are_caught_up(tmp_path: Path) -> None:
    journal = tmp_path / "journal.sqlite3"
    with served_demo() as served:
        config = write_config(tmp_path / "doorfix.toml", served, journal, only="aca_rejections")
        outage = served.state.faults.add("503", system="aca", endpoint="*", count=100_000)
        with daemon(config) as proc:
            url = proc.url
            wait_for(
                lambda: len(proc.events("run_failed", playbook="aca-rejections")) >= 3,
                timeout=40,
                what="three failed runs",
            )
            assert len(proc.events("upstream_down", playbook="aca-rejections")) == 1
            assert proc.events("upstream_recovered") == []
            health = httpx.get(f"{url}/healthz", timeout=10)
            assert health.status_code == 200  # the daemon itself is fine
            assert health.json()["upstream_down"] == ["aca-rejections"]
            down = metric_samples(url)["doorfix_upstream_down"]
            assert ({"playbook": "aca-rejections"}, 1.0) in down

            assert served.state.faults.remove(outage.id)
            wait_for(
                lambda: bool(proc.events("upstream_recovered")),
                timeout=30,
                what="upstream_recovered",
            )
            # the journal kept the cursor: the events of the outage are acted on now
            wait_for(
                lambda: not present(served)["aca.clp_out_of_sync"],
                timeout=30,
                what="the ACA -> CLP fault to be fixed",
            )
            after = completed(proc, "aca-rejections")
            wait_for(
                lambda: completed(proc, "aca-rejections") >= after + 2,
                timeout=30,
                what="two more runs",
            )
            assert proc.stop() == 0

    assert len(proc.events("upstream_down")) == 1
    assert len(proc.events("upstream_recovered")) == 1
    # the first good run fixed what the outage held back (runs that started beside its
    # verifications may have ended before it, with nothing new)
    good = proc.events("run_completed", playbook="aca-rejections")
    assert sum(e["counts"].get("fixed", 0) for e in good) >= 1
    fixing = next(e for e in good if e["counts"].get("fixed"))
    assert all(not e["counts"].get("fixed") for e in good if e is not fixing)
    (stopped,) = proc.events("daemon_stopped")
    assert stopped["failed_runs"] >= 3


def test_a_port_already_taken_is_a_config_error(tmp_path: Path) -> None:
    with served_demo() as served, socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = write_config(tmp_path / "doorfix.toml", served, tmp_path / "j.sqlite3", port=port)
        with daemon(config) as proc:
            code = proc.proc.wait(30)
            proc.close()
    assert code == 2
    assert "[daemon] port" in "".join(proc.raw)


# ---------------------------------------------------------------------------- in process


def in_process(**overrides: Any) -> tuple[Agent, SandboxState]:
    """An agent on the in-process demo sandbox (manual clock), every playbook every second."""
    demo = make_demo({**DAEMON_SETTINGS, **overrides})
    return demo.agent, demo.state


@contextlib.asynccontextmanager
async def daemon_beside(
    agent: Agent, *, release: tuple[asyncio.Event, ...] = (), **kwargs: Any
) -> AsyncIterator[None]:
    """``run_daemon`` on ``agent`` in a task of this loop for the block; then the ``release``
    events are set (whatever a test held a run on), the daemon stopped and the agent closed."""
    stop = asyncio.Event()
    task = asyncio.create_task(run_daemon(agent, stop=stop, handle_signals=False, **kwargs))
    try:
        yield
    finally:
        for event in release:
            event.set()
        stop.set()
        await asyncio.wait_for(task, 30)
        await agent.clients.aclose()
        agent.journal.close()


async def test_a_crashing_run_is_logged_and_the_daemon_keeps_scheduling() -> None:
    agent, _state = in_process(
        schedule={
            "door_logs": {"every_seconds": 1},
            "aca_rejections": {"enabled": False, "every_seconds": 1},
            "license_renewal": {"enabled": False, "every_seconds": 1},
        }
    )
    await agent.clients.aclose()  # every call now fails outside the connector error tree
    stop = asyncio.Event()
    try:
        with capture_logs() as logs:

            def crashes() -> list[MutableMapping[str, Any]]:
                return [e for e in logs if e["event"] == "run_crashed"]

            task = asyncio.create_task(run_daemon(agent, stop=stop, handle_signals=False))
            await asyncio.to_thread(
                wait_for, lambda: len(crashes()) >= 2, timeout=20, what="two crashed runs"
            )
            stop.set()
            summary = await asyncio.wait_for(task, 10)
    finally:
        agent.journal.close()
    assert summary.crashed >= 2
    assert crashes()[0]["playbook"] == "door-logs"
    assert "exc_info" in crashes()[0]  # logged with its traceback
    assert [e["event"] for e in logs].count("daemon_stopped") == 1
    (pruned,) = [e for e in logs if e["event"] == "journal_pruned"]
    assert pruned["retention_days"] == 90


async def test_a_dry_run_daemon_changes_nothing() -> None:
    agent, state = in_process(guards={"renewals_enabled": True})
    stop, ran = asyncio.Event(), asyncio.Event()
    reports: list[RunReport] = []

    def on_report(report: RunReport) -> None:
        reports.append(report)
        if {r.playbook for r in reports} == {"door-logs", "aca-rejections", "license-renewal"}:
            ran.set()

    task = asyncio.create_task(
        run_daemon(agent, dry_run=True, stop=stop, on_report=on_report, handle_signals=False)
    )
    try:
        async with asyncio.timeout(30):
            await ran.wait()
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        await agent.clients.aclose()
        agent.journal.close()
    assert state.mutations.since(0) == []
    outcomes = {i.outcome for r in reports for i in r.incidents}
    assert "would_fix" in outcomes
    assert "fixed" not in outcomes


async def test_a_card_is_assigned_while_an_access_matrix_run_waits_on_clp() -> None:
    # door-logs writes the cloud, aca-rejections ACA and CLP: the daemon runs them side by
    # side, so a credential fix never waits for a toggle's re-reads of Larry access
    agent, _state = in_process(
        schedule={
            "door_logs": {"every_seconds": 1},
            "aca_rejections": {"every_seconds": 1},
            "license_renewal": {"enabled": False, "every_seconds": 1},
        }
    )
    # the ACA run is held at its first read of Larry access until the card is assigned, and
    # the card is assigned only once the ACA run is held: with one turn for both, neither ends
    clp, cloud = agent.clients.clp, agent.clients.cloud
    larry_access, add_credential = clp.larry_access, cloud.add_personnel_credential
    gate, waiting = asyncio.Event(), asyncio.Event()

    async def held_back(site_id: str, user_id: str, lock_id: str) -> Any:
        waiting.set()
        await gate.wait()
        return await larry_access(site_id, user_id, lock_id)

    async def once_held(*args: Any, **kwargs: Any) -> Any:
        await waiting.wait()
        return await add_credential(*args, **kwargs)

    clp.larry_access = held_back  # type: ignore[method-assign]
    cloud.add_personnel_credential = once_held  # type: ignore[method-assign]
    reports: list[RunReport] = []

    def fixed(playbook: str, cause: str) -> bool:
        return any(
            i.cause == cause and i.outcome == "fixed"
            for r in reports
            if r.playbook == playbook
            for i in r.incidents
        )

    card, toggle = asyncio.Event(), asyncio.Event()

    def on_report(report: RunReport) -> None:
        reports.append(report)
        if fixed("door-logs", "cloud.credential_unassigned"):
            card.set()
        if fixed("aca-rejections", "aca.clp_out_of_sync"):
            toggle.set()

    async with daemon_beside(agent, release=(gate, waiting), on_report=on_report):
        async with asyncio.timeout(20):
            await card.wait()
            # the card was assigned and verified while the ACA run waited on CLP
            assert not any(r.playbook == "aca-rejections" for r in reports)
            gate.set()
            await toggle.wait()


async def test_a_tick_that_comes_during_a_long_run_runs_once_it_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a refusal that arrives while a run overruns its interval is read as soon as that run
    # ends, not one interval later: the ticks it missed are coalesced into one run at once
    from doorfix.agent.daemon import scheduler

    every = 4
    agent, _state = in_process(
        schedule={
            "door_logs": {"every_seconds": every},
            "aca_rejections": {"enabled": False, "every_seconds": 1},
            "license_renewal": {"enabled": False, "every_seconds": 1},
        }
    )
    real_run_once = scheduler.run_once
    gate, ended = asyncio.Event(), asyncio.Event()
    runs: list[float] = []

    async def held_first(*args: Any, **kwargs: Any) -> RunReport:
        if not runs:
            await gate.wait()
        report = await real_run_once(*args, **kwargs)
        runs.append(asyncio.get_running_loop().time())
        if len(runs) == 2:
            ended.set()
        return report

    monkeypatch.setattr(scheduler, "run_once", held_first)
    with capture_logs() as logs:
        async with daemon_beside(agent, release=(gate,)):
            await asyncio.to_thread(
                wait_for,
                lambda: any(e["event"] == "run_skipped" for e in logs),
                timeout=every * 3,
                what="a tick while the first run is held",
            )
            released = asyncio.get_running_loop().time()
            gate.set()
            async with asyncio.timeout(every * 3):
                await ended.wait()
    (skipped,) = [e for e in logs if e["event"] == "run_skipped"][:1]
    assert skipped["playbook"] == "door-logs"
    assert skipped["runs_again_once_it_ends"] is True
    # the second run followed the first at once, well before the next tick (every s later)
    assert runs[1] - released < every / 2


async def test_a_run_again_after_a_long_run_lets_a_waiting_run_of_its_scope_go_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # door-logs overruns its tick while license-renewal (the cloud too) waits for its turn:
    # license-renewal goes next, then door-logs' run again; a playbook that keeps overrunning
    # never starves the other playbook of its scope
    from doorfix.agent.daemon import scheduler

    agent, _state = in_process(
        guards={"renewals_enabled": True},
        schedule={
            "door_logs": {"every_seconds": 1},
            "aca_rejections": {"enabled": False, "every_seconds": 1},
            "license_renewal": {"every_seconds": 3600},
        },
    )
    real_run_once = scheduler.run_once
    gate, third = asyncio.Event(), asyncio.Event()
    started: list[str] = []

    async def held_first(inner: Agent, playbook: str, **kwargs: Any) -> RunReport:
        started.append(playbook)
        if len(started) >= 3:
            third.set()
        if started == ["door-logs"]:
            await gate.wait()
        return await real_run_once(inner, playbook, **kwargs)

    monkeypatch.setattr(scheduler, "run_once", held_first)
    with capture_logs() as logs:
        async with daemon_beside(agent, release=(gate,)):
            await asyncio.to_thread(
                wait_for,
                lambda: any(
                    e["event"] == "run_skipped" and e["playbook"] == "door-logs" for e in logs
                ),
                timeout=15,
                what="a door-logs tick while its first run is held",
            )
            gate.set()
            async with asyncio.timeout(15):
                await third.wait()
    assert started[:3] == ["door-logs", "license-renewal", "door-logs"]
