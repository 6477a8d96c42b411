"""A fleet's schedule: the config's intervals as procrastinate crons (6th field: seconds)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import croniter
import pytest

from doorfix.agent.daemon.fleet import claim_digest, every_to_cron
from doorfix.agent.journal.store import Journal
from doorfix.clock import ManualClock


@pytest.mark.parametrize(
    ("every", "cron"),
    [
        (1, "* * * * * */1"),
        (7, "* * * * * */6"),  # rounded down to a step that divides the minute
        (30, "* * * * * */30"),
        (300, "*/5 * * * *"),
        (3600, "0 */1 * * *"),
        (86400, "0 */24 * * *"),
    ],
)
def test_an_interval_becomes_a_cron_that_fires_at_least_as_often(every: int, cron: str) -> None:
    assert every_to_cron(every) == cron
    it = croniter.croniter(cron, 0)
    first, second = it.get_next(float), it.get_next(float)
    assert 0 < second - first <= every


def test_an_accelerated_clock_fires_that_much_more_often() -> None:
    assert every_to_cron(300, speed=60) == "* * * * * */5"


def test_one_replica_sends_each_digest(pg_url: str) -> None:
    """Every replica's clock reaches the digest's time; the journal lets one of them send it."""
    clock = ManualClock(datetime(2026, 11, 16, 8, 0, tzinfo=UTC))
    due = datetime(2026, 11, 16, 9, 0, tzinfo=UTC)
    with Journal(pg_url, clock=clock) as one, Journal(pg_url, clock=clock) as two:
        assert [claim_digest(one, due), claim_digest(two, due), claim_digest(one, due)] == [
            True,
            False,
            False,
        ]
        assert claim_digest(two, due + timedelta(days=1))
