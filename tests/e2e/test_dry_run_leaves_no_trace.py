"""A dry-run writes nothing a later run reads: the real run after it reports what it would
have reported without it.

Supervisors run ``--dry-run`` first, then the real run. The demo sandbox is served on
127.0.0.1 and doorfix runs as a subprocess (``python -m doorfix run … --json``) on a journal
file; the same sequence of runs, with and without a dry-run slipped in, must end in the same
report (ignoring ids and times), and the dry-run makes no write.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from support.configs import write_config
from support.processes import spawn_doorfix

from doorfix.agent.journal.store import Journal
from doorfix.clock import SystemClock
from doorfix.sandbox.api.app import create_app
from doorfix.sandbox.api.server import ServedSandbox
from doorfix.sandbox.faults.api import ApiFaults
from doorfix.sandbox.scenarios.registry import build_scenario
from doorfix.sandbox.world.world import World

#: renewals on, so every remediable fault of the demo world is acted on
EXTRA = "[guards]\nrenewals_enabled = true\n"


#: a time in a step's text (each sequence serves its own world, built a few seconds apart)
TIMES = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def _instant_world() -> World:
    """The demo world on the wall clock, its pushes and syncs instant (no waiting)."""
    world = build_scenario("demo", seed=0, clock=SystemClock())
    timing = world.settings
    timing.push_delay_s = 0
    timing.propagation_delay_s = 0
    timing.sync_start_delay_s = 0
    timing.sync_duration_s = 0
    return world


def _run(config: Path, playbook: str, *flags: str) -> dict[str, Any]:
    proc = spawn_doorfix("--config", str(config), "run", playbook, "--json", *flags)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    report: dict[str, Any] = json.loads(out)
    return report


def _shape(report: dict[str, Any]) -> list[tuple[Any, ...]]:
    """What a reader of the report sees, without ids and times."""
    return sorted(
        (
            i["cause"],
            i["outcome"],
            json.dumps(i["subject"], sort_keys=True),
            len(i["event_ids"]),
            tuple((a["remedy"], a["target"], a["status"]) for a in i["actions"]),
            TIMES.sub("T", json.dumps(i["steps"], sort_keys=True)),
            i.get("reason", ""),
        )
        for i in report["incidents"]
    )


def _sequence(tmp_path: Path, name: str, playbook: str, plan: list[bool]) -> tuple[Any, int]:
    """Serve a fresh demo world, run ``plan`` (True = dry-run); the last report's shape and
    the writes the dry-runs made."""
    app = create_app(_instant_world(), api_faults=ApiFaults(seed=0))
    config = tmp_path / f"{name}.toml"
    journal = tmp_path / f"{name}.sqlite3"
    dry_writes = 0
    with ServedSandbox(app) as served:
        write_config(config, served.urls, journal, EXTRA)
        last: dict[str, Any] = {}
        for dry in plan:
            before = len(served.state.mutations.since(0))
            last = _run(config, playbook, *(["--dry-run"] if dry else []))
            if dry:
                dry_writes += len(served.state.mutations.since(0)) - before
    return _shape(last), dry_writes


@pytest.mark.timeout(240)
@pytest.mark.parametrize("playbook", ["aca-rejections", "door-logs"])
def test_a_dry_run_first_does_not_change_what_the_real_run_reports(
    tmp_path: Path, playbook: str
) -> None:
    alone, _ = _sequence(tmp_path, "alone", playbook, [False])
    after_dry, dry_writes = _sequence(tmp_path, "after-dry", playbook, [True, False])

    assert dry_writes == 0
    assert alone  # the demo world has work for every playbook
    # needs_human and no_fault incidents the dry-run saw are reported, not taken as repeats
    assert {o for _, o, *_ in alone} & {"needs_human", "no_fault"}
    assert after_dry == alone


@pytest.mark.timeout(240)
def test_a_dry_run_between_two_real_runs_leaves_their_incidents_as_they_were(
    tmp_path: Path,
) -> None:
    alone, _ = _sequence(tmp_path, "alone", "aca-rejections", [False, False])
    after_dry, dry_writes = _sequence(tmp_path, "after-dry", "aca-rejections", [False, True, False])
    assert dry_writes == 0
    assert after_dry == alone

    # the open incidents are as the first real run left them: not `would_fix`
    with Journal(tmp_path / "after-dry.sqlite3", clock=SystemClock()) as journal:
        assert all(r.outcome != "would_fix" for r in journal.incidents(limit=1000))
        (dry,) = [r for r in journal.runs() if r.dry_run]
        assert dry.status == "completed"


@pytest.mark.timeout(240)
def test_report_and_history_still_show_what_a_dry_run_would_fix(tmp_path: Path) -> None:
    app = create_app(_instant_world(), api_faults=ApiFaults(seed=0))
    config = tmp_path / "doorfix.toml"
    with ServedSandbox(app) as served:
        write_config(config, served.urls, tmp_path / "j.sqlite3", EXTRA)
        dry = _run(config, "aca-rejections", "--dry-run")
    would = [i for i in dry["incidents"] if i["outcome"] == "would_fix"]
    assert would

    proc = spawn_doorfix("--config", str(config), "report", "--format", "json")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    sections = json.loads(out)["sections"]
    assert {p["cause"] for p in sections["would_fix"]} == {i["cause"] for i in would}

    user = would[0]["subject"]["user_id"]
    proc = spawn_doorfix("--config", str(config), "history", "--user", user, "--format", "json")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    outcomes = [i["outcome"] for i in json.loads(out)["incidents"]]
    assert "would_fix" in outcomes


@pytest.mark.timeout(240)
def test_a_dry_run_on_a_postgresql_journal_records_only_its_run_row(
    tmp_path: Path, pg_url: str
) -> None:
    """The scratch copy of a fleet's journal: the dry-run's only trace is its run and report."""
    app = create_app(_instant_world(), api_faults=ApiFaults(seed=0))
    config = tmp_path / "doorfix.toml"
    with ServedSandbox(app) as served:
        write_config(config, served.urls, tmp_path / "unused.sqlite3", EXTRA)
        text = config.read_text(encoding="utf-8")
        config.write_text(
            re.sub(r'(?m)^path = ".*"$', f'url = "{pg_url}"', text, count=1), encoding="utf-8"
        )
        before = len(served.state.mutations.since(0))
        dry = _run(config, "aca-rejections", "--dry-run")
        assert len(served.state.mutations.since(0)) == before
    would = [i for i in dry["incidents"] if i["outcome"] == "would_fix"]
    assert would

    with Journal(pg_url, clock=SystemClock()) as journal:
        (run,) = journal.runs()
        assert run.dry_run
        assert run.status == "completed"
        assert journal.incidents(limit=1000) == []
        assert journal.cursor("aca-events") is None

    proc = spawn_doorfix("--config", str(config), "report", "--format", "json")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    sections = json.loads(out)["sections"]
    assert {p["cause"] for p in sections["would_fix"]} == {i["cause"] for i in would}
