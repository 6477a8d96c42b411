"""One grammar for ``--since`` and ``--until``: durations ago or ISO times, each from now."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from support.cli import assert_clean_error, cli

from doorfix.agent.cli.times import parse_time
from doorfix.errors import ConfigError

NOW = datetime(2026, 11, 16, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("24h", datetime(2026, 11, 15, 8, 0, tzinfo=UTC)),
        ("7d", datetime(2026, 11, 9, 8, 0, tzinfo=UTC)),
        ("2w", datetime(2026, 11, 2, 8, 0, tzinfo=UTC)),
        ("90m", datetime(2026, 11, 16, 6, 30, tzinfo=UTC)),
        ("2026-11-10", datetime(2026, 11, 10, 0, 0, tzinfo=UTC)),
        ("2026-11-10T06:00", datetime(2026, 11, 10, 6, 0, tzinfo=UTC)),
        ("2026-11-10T06:00:00Z", datetime(2026, 11, 10, 6, 0, tzinfo=UTC)),
        ("2026-11-10T07:00+01:00", datetime(2026, 11, 10, 6, 0, tzinfo=UTC)),
    ],
)
def test_every_form_reads_as_a_utc_time(text: str, expected: datetime) -> None:
    assert parse_time(text, NOW, option="--since") == expected


@pytest.mark.parametrize("text", ["last week", "7 days", "-3d", "1y", "2026-13-01", ""])
def test_anything_else_names_the_option_and_the_forms(text: str) -> None:
    with pytest.raises(ConfigError, match=r"--until: .*24h, 7d, 2w.*ISO"):
        parse_time(text, NOW, option="--until")


def test_since_and_until_are_each_relative_to_now(journal_config: Path) -> None:
    before = datetime.now(UTC)
    result = cli(
        "--config", str(journal_config), "report", "--since", "7d", "--until", "24h", "-f", "json"
    )
    after = datetime.now(UTC)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    since = datetime.fromisoformat(data["since"])
    until = datetime.fromisoformat(data["until"])
    slack = timedelta(seconds=1)
    assert before - timedelta(days=7) - slack <= since <= after - timedelta(days=7)
    assert before - timedelta(days=1) - slack <= until <= after - timedelta(days=1)


@pytest.mark.parametrize(
    ("command", "option"),
    [
        (["report", "--since", "yesterday"], "--since"),
        (["report", "--until", "soon"], "--until"),
        (["run", "door-logs", "--since", "yesterday"], "--since"),
        (["sandbox", "--start", "yesterday"], "--start"),
    ],
)
def test_an_unreadable_time_is_one_line_naming_the_option_exit_2(
    journal_config: Path, command: list[str], option: str
) -> None:
    result = cli("--config", str(journal_config), *command)
    line = assert_clean_error(result, option, "24h", "ISO")
    assert "yesterday" in line or "soon" in line


def test_history_takes_the_same_since_and_until(tmp_path: Path) -> None:
    from doorfix.agent.journal.store import Journal
    from doorfix.clock import ManualClock

    journal = tmp_path / "journal.sqlite3"
    with Journal(journal, clock=ManualClock(datetime.now(UTC) - timedelta(hours=2))) as j:
        run = j.start_run("aca-rejections", dry_run=False)
        row = j.open_incident(
            key="k",
            cause="aca.no_booking",
            subject={"user_id": "u-1", "lock_id": "l-1"},
            run_id=run,
            event_ids=["ev-1"],
            evidence={},
        )
        j.set_outcome(row.incident_id, outcome="no_fault", run_id=run, note="refused as designed")
    config = tmp_path / "doorfix.toml"
    config.write_text(
        f'[journal]\npath = "{journal}"\n[sandbox]\nembedded = true\n', encoding="utf-8"
    )

    def found(*window: str) -> int:
        result = cli("--config", str(config), "history", "--user", "u-1", "-f", "json", *window)
        assert result.returncode == 0, result.stderr
        return len(json.loads(result.stdout)["incidents"])

    assert found() == 1
    assert found("--since", "3h") == 1
    assert found("--since", "90m") == 0
    assert found("--until", "3h") == 0
    assert found("--since", "1d", "--until", "1h") == 1
    bad = cli("--config", str(config), "history", "--user", "u-1", "--since", "lately")
    assert_clean_error(bad, "--since", "24h", "ISO")


def test_a_report_at_once_after_a_run_on_the_embedded_sandbox_holds_that_run(
    journal_config: Path,
) -> None:
    # the embedded sandbox's clock runs 60 times faster than the wall clock, so a run there
    # writes its incidents ahead of it; the report with no --until still ends at the newest
    ran = cli("--config", str(journal_config), "run", "door-logs", "--json")
    assert ran.returncode == 0, ran.stderr
    found = json.loads(ran.stdout)["counts"]
    assert sum(found.values()) > 0, found
    result = cli("--config", str(journal_config), "report", "-f", "json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["counts"] == found
    assert datetime.fromisoformat(data["until"]) > datetime.now(UTC)
    # an --until given is kept as given
    bounded = cli("--config", str(journal_config), "report", "--until", "1m", "-f", "json")
    assert bounded.returncode == 0, bounded.stderr
    assert datetime.fromisoformat(json.loads(bounded.stdout)["until"]) < datetime.now(UTC)
