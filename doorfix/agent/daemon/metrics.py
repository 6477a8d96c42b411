"""The daemon's Prometheus metrics, in a registry of their own (never the global default).

Run metrics are fed from each :class:`~doorfix.agent.engine.report.RunReport`; the API call counters
are read from the clients' :class:`~doorfix.connectors._http.CallStats` when Prometheus
scrapes, so they are as fresh as the scrape and as monotonic as the clients' own counters.

    doorfix_up                                  1 while the scheduler schedules runs
    doorfix_runs_total{playbook,status}         status: completed, failed, crashed
    doorfix_incidents_total{playbook,cause,outcome}
    doorfix_actions_total{remedy,status}        status: planned, succeeded, failed, skipped
    doorfix_api_calls_total{system}             and _errors_, _retries_, _token_fetches_
    doorfix_last_success_timestamp_seconds{playbook}
    doorfix_circuit_breaker_open{system}        1 when the last run of any playbook opened it
    doorfix_upstream_down{playbook}             1 while the playbook's runs cannot complete
    doorfix_run_duration_seconds{playbook}      histogram of real (wall) seconds per run
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from typing import Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric

from doorfix.agent.engine.report import RunReport
from doorfix.connectors._http import CallStats

#: the systems doorfix calls, always exported (a zero is an answer, a missing series is not)
SYSTEMS = ("cloud", "aca", "clp")
#: a run takes from well under a second (a quiet feed) to many minutes (a backlog)
DURATION_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)

#: how a run that produced a report ended
RunStatus = Literal["completed", "failed", "interrupted"]


class _ApiCalls:
    """Collect-time counters of every system's HTTP layer."""

    _FIELDS = (
        ("calls", "doorfix_api_calls_total", "HTTP requests sent, retries included."),
        ("errors", "doorfix_api_errors_total", "Calls that ended in an error."),
        ("retries", "doorfix_api_retries_total", "Requests re-sent after a transient error."),
        ("token_fetches", "doorfix_api_token_fetches_total", "OAuth tokens fetched."),
    )

    def __init__(self, stats: Callable[[], Mapping[str, CallStats]]) -> None:
        self._stats = stats

    def collect(self) -> Iterable[Metric]:
        """One counter family per field, one series per system."""
        stats = self._stats()
        for attr, name, doc in self._FIELDS:
            family = CounterMetricFamily(name, doc, labels=["system"])
            for system in sorted(set(SYSTEMS) | set(stats)):
                value = getattr(stats[system], attr) if system in stats else 0
                family.add_metric([system], float(value))
            yield family

    def describe(self) -> Iterator[Metric]:
        """The families' names (for the registry's duplicate check), without reading stats."""
        for _attr, name, doc in self._FIELDS:
            yield CounterMetricFamily(name, doc, labels=["system"])


class Metrics:
    """Every metric of the daemon, in one :class:`CollectorRegistry` owned by this object."""

    def __init__(
        self,
        *,
        playbooks: Iterable[str],
        stats: Callable[[], Mapping[str, CallStats]],
        up: Callable[[], bool],
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        reg = self.registry
        self._up = Gauge("doorfix_up", "1 while the scheduler schedules runs.", registry=reg)
        self._up.set_function(lambda: 1.0 if up() else 0.0)
        self._runs = Counter(
            "doorfix_runs_total",
            "Runs by playbook and status.",
            ["playbook", "status"],
            registry=reg,
        )
        self._incidents = Counter(
            "doorfix_incidents_total",
            "Incidents reported by runs, by cause and outcome.",
            ["playbook", "cause", "outcome"],
            registry=reg,
        )
        self._actions = Counter(
            "doorfix_actions_total", "Remedy actions by status.", ["remedy", "status"], registry=reg
        )
        self._last_success = Gauge(
            "doorfix_last_success_timestamp_seconds",
            "When the playbook's last completed run finished (Unix time).",
            ["playbook"],
            registry=reg,
        )
        self._breaker = Gauge(
            "doorfix_circuit_breaker_open",
            "1 when the last run of any playbook opened the system's circuit breaker.",
            ["system"],
            registry=reg,
        )
        self._down = Gauge(
            "doorfix_upstream_down",
            "1 while the playbook's runs cannot complete (a system unreachable).",
            ["playbook"],
            registry=reg,
        )
        self._duration = Histogram(
            "doorfix_run_duration_seconds",
            "Wall-clock seconds per run.",
            ["playbook"],
            buckets=DURATION_BUCKETS,
            registry=reg,
        )
        self._going = Gauge(
            "doorfix_runs_in_progress",
            "Runs going now (a run still verifying its fixes and the next tick's run count two).",
            ["playbook"],
            registry=reg,
        )
        reg.register(_ApiCalls(stats))
        self._breakers: dict[str, frozenset[str]] = {}
        for system in SYSTEMS:
            self._breaker.labels(system).set(0)
        for playbook in playbooks:
            self._down.labels(playbook).set(0)
            self._going.labels(playbook).set(0)

    def observe(self, report: RunReport, *, status: RunStatus, seconds: float) -> None:
        """Count one run (``completed``, or ``failed`` with its partial report)."""
        playbook = report.playbook
        self._runs.labels(playbook, status).inc()
        self._duration.labels(playbook).observe(seconds)
        for incident in report.incidents:
            self._incidents.labels(playbook, incident.cause, incident.outcome).inc()
            for action in incident.actions:
                self._actions.labels(action.remedy, action.status).inc()
        if status != "completed":
            return
        if report.finished_at is not None:
            self.last_success(playbook, report.finished_at)
        self._breakers[playbook] = frozenset(report.breakers)
        open_now = frozenset().union(*self._breakers.values())
        for system in sorted(set(SYSTEMS) | open_now):
            self._breaker.labels(system).set(1 if system in open_now else 0)

    def going(self, playbook: str, *, started: bool) -> None:
        """A run of the playbook started (or ended)."""
        gauge = self._going.labels(playbook)
        if started:
            gauge.inc()
        else:
            gauge.dec()

    def breakers(self, playbook: str) -> tuple[str, ...]:
        """The systems whose circuit breaker the playbook's last completed run opened."""
        return tuple(sorted(self._breakers.get(playbook, frozenset())))

    def crashed(self, playbook: str, *, seconds: float) -> None:
        """Count a run that ended in an unexpected exception (no report)."""
        self._runs.labels(playbook, "crashed").inc()
        self._duration.labels(playbook).observe(seconds)

    def last_success(self, playbook: str, when: datetime) -> None:
        """Set the time of the playbook's last completed run (also from the journal at start)."""
        self._last_success.labels(playbook).set(when.timestamp())

    def upstream(self, playbook: str, *, down: bool) -> None:
        """Mark the playbook's upstream down or up."""
        self._down.labels(playbook).set(1 if down else 0)

    def render(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)
