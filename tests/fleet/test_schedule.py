"""A fleet's schedule: the config's intervals as procrastinate crons (6th field: seconds)."""

from __future__ import annotations

import croniter
import pytest

from doorfix.agent.daemon.fleet import every_to_cron


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
