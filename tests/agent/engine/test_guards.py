"""Guards: what a supervisor expects doorfix to refuse, defer or allow."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from doorfix.agent.config import REMEDIES, GuardsSection
from doorfix.agent.engine.guards import RunGuards, month_start
from doorfix.playbooks.types import PlannedAction, Remedy

NOW = datetime(2026, 11, 16, 12, 0, tzinfo=UTC)


class History:
    def __init__(self) -> None:
        self.last: dict[tuple[str, str], datetime] = {}
        self.month_renewals = 0
        self.not_held: dict[tuple[str, str], list[str]] = {}
        self.spent: int | None = None

    def last_action_at(self, *, target: str, remedy: str) -> datetime | None:
        return self.last.get((target, remedy))

    def count_actions(self, *, remedy: str, since: datetime) -> int:
        assert since == month_start(NOW)
        return self.month_renewals if remedy == "renew_license" else 0

    def attempts_not_held(self, *, target: str, remedy: str, since: datetime) -> list[str]:
        assert since == NOW - timedelta(hours=168)
        return self.not_held.get((target, remedy), [])

    def spend_budget(self, counter: str, *, period: str, cap: int, already: int = 0) -> bool:
        # the journal's counter (pinned by the journal's tests) starts at what was counted
        if self.spent is None:
            self.spent = already
        if self.spent >= cap:
            return False
        self.spent += 1
        return True


def toggle(target: str = "u-1/l-1") -> PlannedAction:
    return PlannedAction(Remedy.TOGGLE_ACCESS_MATRIX, "aca", target, {})


def renew(door: str = "d-1") -> PlannedAction:
    return PlannedAction(Remedy.RENEW_LICENSE, "cloud", f"p-1/{door}", {})


def guards(
    history: History | None = None, enabled: tuple[str, ...] = REMEDIES, **kw: object
) -> RunGuards:
    return RunGuards(
        GuardsSection.model_validate(kw),
        enabled=frozenset(enabled),
        history=history or History(),
        now=NOW,
    )


def test_remedy_outside_the_allowlist_needs_a_person() -> None:
    g = guards(enabled=("sync_access",))
    decision = g.check(toggle())
    assert decision.verdict == "needs_human"
    assert "toggle_access_matrix" in decision.reason


def test_cap_per_target_and_per_run() -> None:
    g = guards(max_actions_per_target=2, max_actions_per_run=3)
    for _ in range(2):
        assert g.admit(toggle()).allowed
    assert g.check(toggle()).verdict == "deferred"
    assert g.admit(toggle("u-2/l-2")).allowed
    assert g.check(toggle("u-3/l-3")).reason == "max_actions_per_run reached"


def test_check_counts_nothing_admit_counts_at_once() -> None:
    """A dry-run checks; an acting run admits, so concurrent incidents cannot pass a cap."""
    g = guards(max_actions_per_run=1)
    assert g.check(toggle()).allowed
    assert g.check(toggle("u-2/l-2")).allowed  # checking twice spends nothing
    assert g.admit(toggle()).allowed
    # admitted, not yet executed: the next one is refused already
    assert g.admit(toggle("u-2/l-2")).reason == "max_actions_per_run reached"


def test_cool_down_defers_until_it_ends() -> None:
    history = History()
    history.last[("u-1/l-1", "toggle_access_matrix")] = NOW - timedelta(minutes=20)
    decision = guards(history).check(toggle())
    assert decision.verdict == "deferred"
    assert decision.not_before == NOW + timedelta(minutes=40)
    history.last[("u-1/l-1", "toggle_access_matrix")] = NOW - timedelta(minutes=61)
    assert guards(history).check(toggle()).allowed


def test_circuit_breaker_stops_one_system_only() -> None:
    g = guards(breaker_write_errors=2)
    sync = PlannedAction(Remedy.SYNC_ACCESS, "clp", "s-1/c-1", {})
    for n in range(2):
        assert g.admit(toggle(f"u-{n}/l")).allowed
        g.record(toggle(f"u-{n}/l"), write_error=True)
    assert g.check(toggle("u-9/l-9")).reason.startswith("circuit breaker open for aca")
    assert g.check(sync).allowed
    assert g.open_breakers() == ["aca"]


def test_renewals_off_by_default_and_budgeted() -> None:
    assert guards().check(renew()).verdict == "needs_human"
    g = guards(renewals_enabled=True, max_renewals_per_run=1)
    assert g.admit(renew()).allowed
    assert g.check(renew("d-2")).verdict == "deferred"
    history = History()
    history.month_renewals = 50
    decision = guards(history, renewals_enabled=True).check(renew())
    assert decision.verdict == "needs_human"
    assert "month" in decision.reason


def test_escalation_is_never_capped() -> None:
    g = guards(max_actions_per_run=0)
    assert g.check(PlannedAction(Remedy.ESCALATE, None, "u-1/l-1", {"reason": "x"})).allowed
    assert g.check(toggle()).verdict == "deferred"


@pytest.mark.parametrize(("age_days", "too_old"), [(6.9, False), (7.1, True)])
def test_old_events_are_never_acted_on(age_days: float, too_old: bool) -> None:
    assert guards().event_too_old(NOW - timedelta(days=age_days)) is too_old


def test_a_remedy_that_did_not_hold_twice_on_a_target_needs_a_person() -> None:
    history = History()
    history.not_held[("u-1/l-1", "toggle_access_matrix")] = ["first", "second"]
    decision = guards(history).check(toggle())
    assert decision.verdict == "needs_human"
    assert decision.attempts == ("first", "second")
    assert guards(history).check(toggle("u-2/l-1")).allowed  # another target
    history.not_held[("u-1/l-1", "toggle_access_matrix")] = ["first"]
    assert guards(history).check(toggle()).allowed
