"""The fleet's pace: each vendor system's request turns, taken by every replica from one row."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from doorfix.agent.journal.pace import MAX_WAIT_SECONDS
from doorfix.agent.journal.store import Journal
from doorfix.clock import SystemClock

START = datetime(2026, 11, 16, 8, 0, tzinfo=UTC)


def test_replicas_take_each_systems_request_turns_from_one_pace(pg_url: str) -> None:
    """Three replicas asking for turns at once get them 1/limit apart, per system."""
    journals = [Journal(pg_url, clock=SystemClock()) for _ in range(3)]
    try:
        gap = 0.05
        turns: dict[str, list[datetime]] = {"aca": [], "clp": []}
        for _ in range(4):
            for journal in journals:
                assert journal.pace is not None
                for system, taken in turns.items():
                    taken.append(journal.pace.slot(system, START, gap))
        for taken in turns.values():
            assert [round((t - START).total_seconds(), 4) for t in taken] == [
                round(i * gap, 4) for i in range(12)
            ]
        # a later request after a quiet spell goes at once, not at the row's old slot
        later = START + timedelta(seconds=10)
        assert journals[0].pace is not None
        assert journals[0].pace.slot("aca", later, gap) == later
    finally:
        for journal in journals:
            journal.close()


#: one request: which replica asks, and how many milliseconds pass before it does
asks = st.lists(
    st.tuples(st.integers(min_value=0, max_value=2), st.integers(min_value=0, max_value=120)),
    min_size=1,
    max_size=40,
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(asks=asks, per_second=st.sampled_from((5.0, 20.0, 50.0)))
def test_no_two_turns_of_the_fleet_are_closer_than_the_limit_allows(
    pg_url: str, asks: list[tuple[int, int]], per_second: float
) -> None:
    """On any interleaving of three replicas' requests, each turn comes at the later of its
    request and the previous turn + 1/limit: never sooner (the limit) and never later (no
    request waits for nothing)."""
    gap = 1.0 / per_second
    system = f"aca-{uuid.uuid4().hex[:8]}"  # a row of its own for each example
    journals = [Journal(pg_url, clock=SystemClock()) for _ in range(3)]
    try:
        now = START
        previous: datetime | None = None
        for replica, wait_ms in asks:
            now += timedelta(milliseconds=wait_ms)
            pace = journals[replica].pace
            assert pace is not None
            turn = pace.slot(system, now, gap)
            expected = now if previous is None else max(now, previous + timedelta(seconds=gap))
            assert abs((turn - expected).total_seconds()) < 1e-4, (turn, expected)
            previous = turn
    finally:
        for journal in journals:
            journal.close()


def test_a_replica_behind_the_others_clock_waits_at_most_the_cap_and_says_why(
    pg_url: str,
) -> None:
    with (
        Journal(pg_url, clock=SystemClock()) as ahead,
        Journal(pg_url, clock=SystemClock()) as behind,
    ):
        assert ahead.pace is not None
        assert behind.pace is not None
        ahead.pace.slot("clp", START + timedelta(hours=1), 0.05)  # a clock an hour fast
        with capture_logs() as logs:
            first = behind.pace.slot("clp", START, 0.05)
            second = behind.pace.slot("clp", START, 0.05)
        assert first == second == START + timedelta(seconds=MAX_WAIT_SECONDS)
        warned = [e for e in logs if e["event"] == "fleet_pace_ahead"]
        assert len(warned) == 1  # once, not at every request
        assert warned[0]["system"] == "clp"
        assert warned[0]["ahead_seconds"] > 3600
