"""The daemon's metrics and its /healthz and /metrics endpoint.

What a Prometheus scrape and a health probe see: counters that follow the run reports and the
clients' call counters, a breaker gauge that follows the last run of each playbook, 503 with a
reason when the journal is unusable, and a daemon in this process answering both on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from support.demo import DAEMON_SETTINGS, START, make_demo

from doorfix.agent.daemon.endpoint import Health, build_endpoint
from doorfix.agent.daemon.metrics import Metrics
from doorfix.agent.daemon.scheduler import DaemonReady, run_daemon
from doorfix.agent.engine.report import ActionReport, IncidentReport, RunReport
from doorfix.agent.engine.state import Agent
from doorfix.connectors._http import CallStats

Samples = dict[str, list[tuple[dict[str, str], float]]]


def parse(text: str) -> Samples:
    """Prometheus text -> sample name -> [(labels, value)]."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((sample.labels, sample.value))
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of a sample's values over the series matching ``labels``."""
    return sum(
        v for lab, v in samples.get(name, []) if all(lab.get(k) == x for k, x in labels.items())
    )


def report(
    playbook: str, *incidents: IncidentReport, breakers: list[str] | None = None
) -> RunReport:
    return RunReport(
        run_id="r",
        playbook=playbook,
        dry_run=False,
        started_at=START,
        finished_at=START,
        incidents=list(incidents),
        breakers=breakers or [],
    )


def incident(cause: str, outcome: str, *actions: tuple[str, str]) -> IncidentReport:
    return IncidentReport(
        incident_id=f"{cause}-{outcome}",
        cause=cause,
        outcome=outcome,
        subject={"lock_id": "l-1"},
        actions=[ActionReport(remedy, "l-1", status) for remedy, status in actions],  # type: ignore[arg-type]
    )


def test_runs_incidents_actions_and_api_calls_are_counted() -> None:
    stats = {"aca": CallStats(calls=7, errors=2, retries=1), "cloud": CallStats(calls=3)}
    metrics = Metrics(playbooks=["aca-rejections"], stats=lambda: stats, up=lambda: True)
    metrics.observe(
        report(
            "aca-rejections",
            incident("aca.clp_out_of_sync", "fixed", ("toggle_access_matrix", "succeeded")),
            incident("aca.lock_offline", "needs_human"),
        ),
        status="completed",
        seconds=1.5,
    )
    # a failed run's partial report still counts what it recorded; it is no success
    metrics.observe(
        report(
            "door-logs", incident("cloud.license_inactive", "failed", ("renew_license", "failed"))
        ),
        status="failed",
        seconds=0.2,
    )
    metrics.crashed("license-renewal", seconds=0.1)
    stats["aca"].calls += 5  # read at scrape time: the next scrape sees it

    s = parse(metrics.render().decode())
    assert value(s, "doorfix_up") == 1
    assert value(s, "doorfix_runs_total", playbook="aca-rejections", status="completed") == 1
    assert value(s, "doorfix_runs_total", playbook="door-logs", status="failed") == 1
    assert value(s, "doorfix_runs_total", playbook="license-renewal", status="crashed") == 1
    assert value(s, "doorfix_incidents_total", cause="aca.clp_out_of_sync", outcome="fixed") == 1
    assert value(s, "doorfix_incidents_total", playbook="door-logs", outcome="failed") == 1
    assert value(s, "doorfix_actions_total", remedy="toggle_access_matrix", status="succeeded") == 1
    assert value(s, "doorfix_actions_total", remedy="renew_license", status="failed") == 1
    assert value(s, "doorfix_api_calls_total", system="aca") == 12
    assert value(s, "doorfix_api_errors_total", system="aca") == 2
    assert value(s, "doorfix_api_retries_total", system="aca") == 1
    assert value(s, "doorfix_api_calls_total", system="clp") == 0  # always exported
    assert value(s, "doorfix_run_duration_seconds_count", playbook="aca-rejections") == 1
    assert value(s, "doorfix_run_duration_seconds_sum", playbook="aca-rejections") == 1.5
    assert value(s, "doorfix_last_success_timestamp_seconds", playbook="aca-rejections") == (
        START.timestamp()
    )
    assert value(s, "doorfix_last_success_timestamp_seconds", playbook="door-logs") == 0


def test_the_breaker_gauge_follows_the_last_run_of_each_playbook() -> None:
    metrics = Metrics(playbooks=[], stats=dict, up=lambda: False)

    def breaker(system: str) -> float:
        return value(
            parse(metrics.render().decode()), "doorfix_circuit_breaker_open", system=system
        )

    assert breaker("cloud") == 0
    metrics.observe(report("door-logs", breakers=["cloud"]), status="completed", seconds=1)
    metrics.observe(report("license-renewal"), status="completed", seconds=1)
    assert breaker("cloud") == 1  # door-logs' last run still has it open
    metrics.observe(report("door-logs"), status="completed", seconds=1)
    assert breaker("cloud") == 0
    assert value(parse(metrics.render().decode()), "doorfix_up") == 0


def test_each_metrics_object_has_its_own_registry() -> None:
    first = Metrics(playbooks=["door-logs"], stats=dict, up=lambda: True)
    second = Metrics(playbooks=["door-logs"], stats=dict, up=lambda: True)
    first.crashed("door-logs", seconds=1)
    assert "doorfix_runs_total" in first.render().decode()
    assert 'status="crashed"' not in second.render().decode()


@pytest.mark.parametrize(
    ("health", "status", "body"),
    [
        (Health(None, {"runs": 3}), 200, {"status": "ok", "runs": 3}),
        (
            Health("journal x is corrupt", {"runs": 3}),
            503,
            {"status": "unhealthy", "reason": "journal x is corrupt", "runs": 3},
        ),
    ],
)
async def test_healthz_answers_200_or_503_with_the_reason(
    health: Health, status: int, body: dict[str, Any]
) -> None:
    async def current() -> Health:
        return health

    metrics = Metrics(playbooks=["door-logs"], stats=dict, up=lambda: True)
    app = build_endpoint(health=current, registry=metrics.registry)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://daemon") as client:
        response = await client.get("/healthz")
        assert (response.status_code, response.json()) == (status, body)
        scrape = await client.get("/metrics")
        assert scrape.headers["content-type"].startswith("text/plain")
        assert value(parse(scrape.text), "doorfix_up") == 1
        openmetrics = await client.get(
            "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
        )
        assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
        assert openmetrics.text.endswith("# EOF\n")


def in_process_agent(**settings: Any) -> Agent:
    """An agent on the in-process demo sandbox, on a manual clock, endpoint on a free port."""
    return make_demo({"guards": {"renewals_enabled": True}, **DAEMON_SETTINGS, **settings}).agent


@pytest.fixture
async def agent() -> AsyncIterator[Agent]:
    built = in_process_agent()
    try:
        yield built
    finally:
        await built.clients.aclose()
        built.journal.close()


async def test_a_running_daemon_answers_health_and_metrics_on_loopback(agent: Agent) -> None:
    stop, started, ran = asyncio.Event(), asyncio.Event(), asyncio.Event()
    ready: list[DaemonReady] = []
    playbooks: set[str] = set()

    def on_ready(where: DaemonReady) -> None:
        ready.append(where)
        started.set()

    def on_report(report: RunReport) -> None:
        playbooks.add(report.playbook)
        if playbooks >= {"door-logs", "aca-rejections"}:
            ran.set()

    task = asyncio.create_task(
        run_daemon(agent, stop=stop, on_ready=on_ready, on_report=on_report, handle_signals=False)
    )
    try:
        async with asyncio.timeout(20):
            await started.wait()
            await ran.wait()
        (where,) = ready
        assert where.url.startswith("http://127.0.0.1:")
        async with httpx.AsyncClient(base_url=where.url, timeout=10) as client:
            health = await client.get("/healthz")
            assert health.status_code == 200
            assert health.json()["status"] == "ok"
            s = parse((await client.get("/metrics")).text)
            assert value(s, "doorfix_up") == 1
            assert value(s, "doorfix_runs_total", playbook="door-logs", status="completed") >= 1
            assert value(s, "doorfix_incidents_total", outcome="fixed") >= 1
            assert value(s, "doorfix_api_calls_total", system="cloud") > 0

            agent.journal.close()  # the journal becomes unusable: the probe says so
            sick = await client.get("/healthz")
            assert sick.status_code == 503
            assert sick.json()["status"] == "unhealthy"
            assert "closed" in sick.json()["reason"]
    finally:
        stop.set()
        summary = await asyncio.wait_for(task, 30)
    assert summary.runs >= 2
    assert summary.incidents["fixed"] >= 1
