"""History of one subject: its incidents and actions, in the order they happened."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from reportkit import Demo, cli_app, write_config
from typer.testing import CliRunner

from doorfix.agent.journal.store import Journal
from doorfix.agent.reports.history import subject_history
from doorfix.clock import SystemClock


async def test_a_user_s_history_runs_from_deferral_to_escalation(three_days: Demo) -> None:
    history = subject_history(three_days.journal, {"user_id": "u-11"})

    assert [(i.incident.cause, i.incident.outcome) for i in history.incidents] == [
        ("aca.too_early", "no_fault"),
        ("aca.iq_out_of_sync", "needs_human"),
    ]
    timeline = history.timeline()
    assert [(e.kind, e.cause) for e in timeline] == [
        ("seen", "aca.too_early"),
        ("outcome", "aca.too_early"),
        ("seen", "aca.iq_out_of_sync"),
        ("action", "aca.iq_out_of_sync"),
        ("outcome", "aca.too_early"),
        ("outcome", "aca.iq_out_of_sync"),
        ("outcome", "aca.iq_out_of_sync"),
    ]
    assert [e.at for e in timeline] == sorted(e.at for e in timeline)
    assert timeline[3].text.startswith("sync_access on ")
    assert timeline[3].text.endswith(": succeeded")
    # the deferral ends as the sync's incident takes the problem over (in the same second)
    iq_incident = history.incidents[1].incident.incident_id
    assert timeline[4].text.startswith(f"outcome no_fault: superseded by incident {iq_incident}")
    assert timeline[4].at == timeline[5].at
    assert timeline[5].text.startswith("outcome pending_verification")
    assert timeline[6].text.startswith("outcome needs_human: still rejected after the sync")


async def test_a_user_at_a_lock_seen_then_fixed_then_recorded(three_days: Demo) -> None:
    history = subject_history(three_days.journal, {"user_id": "u-1", "lock_id": "l-1"})
    assert [e.kind for e in history.timeline()] == ["seen", "action", "outcome"]
    assert history.action_count == 1
    action = history.incidents[0].actions[0]
    assert (action.remedy, action.target, action.status) == (
        "toggle_access_matrix",
        "u-1/l-1",
        "succeeded",
    )


async def test_a_door_s_history_lists_each_morning_oldest_first(three_days: Demo) -> None:
    history = subject_history(three_days.journal, {"door_id": "d-11"})
    seen = [i.incident.first_seen_at for i in history.incidents]
    # one incident per morning: the refusals (door-logs) and the door (license-renewal) are
    # one fact, keyed by the door
    assert len(seen) == 3
    assert seen == sorted(seen)
    assert {i.incident.cause for i in history.incidents} == {"cloud.license_inactive"}
    assert {i.incident.outcome for i in history.incidents} == {"needs_human"}
    assert history.action_count == 0


def test_history_needs_a_known_subject_key(tmp_path: object) -> None:

    with Journal(":memory:", clock=SystemClock()) as journal:
        with pytest.raises(ValueError, match="unknown subject key"):
            subject_history(journal, {"room_id": "r-1"})
        with pytest.raises(ValueError, match="at least one"):
            subject_history(journal, {})


async def test_history_command_prints_text_and_json(three_days: Demo, tmp_path: object) -> None:

    folder = Path(str(tmp_path))
    config = write_config(folder / "doorfix.toml", journal=three_days.journal_path)
    runner = CliRunner()
    app = cli_app()

    text = runner.invoke(app, ["--config", str(config), "history", "--user", "u-11"])
    assert text.exit_code == 0, text.output
    assert "History of user u-11: 2 incident(s), 1 action(s)" in text.stdout
    lines = text.stdout.splitlines()
    order = [
        next(n for n, line in enumerate(lines) if needle in line)
        for needle in (
            "aca.too_early [no_fault]",
            "outcome deferred",
            "outcome no_fault: superseded by incident",
            "aca.iq_out_of_sync [needs_human]",
            "sync_access on",
            "outcome pending_verification",
            "outcome needs_human",
        )
    ]
    assert order == sorted(order)

    as_json = runner.invoke(
        app, ["--config", str(config), "history", "--door", "d-11", "--format", "json"]
    )
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.stdout)
    assert data["subject"] == {"door_id": "d-11"}
    assert len(data["incidents"]) == 3
    assert all(i["outcome"] == "needs_human" for i in data["incidents"])
    assert data["timeline"][0]["kind"] == "seen"

    none = runner.invoke(app, ["--config", str(config), "history"])
    assert none.exit_code == 2
    assert "--user/--lock/--door/--personnel/--visitor" in none.stderr
