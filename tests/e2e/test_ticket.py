"""The ticket path end to end: ``python -m doorfix diagnose`` against the sandbox over HTTP.

A support agent asks about one person at one lock or door. Whatever the daemon reported
before, the answer holds the checks made, the diagnosis with its checklist (or "no fault
found"), and the journal's incident that already covers it. The daemon's own runs keep
quietening repeats, but list each one as a reference to the incident it joined. A center
ACA sends without a release date is kept (treated as released, with a warning).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.configs import write_config
from support.processes import DOORFIX, sandbox_env

from doorfix.clock import SystemClock
from doorfix.sandbox.api.app import create_app
from doorfix.sandbox.api.server import ServedSandbox
from doorfix.sandbox.faults.api import ApiFaults
from doorfix.sandbox.scenarios.demo import demo_manifest
from doorfix.sandbox.scenarios.registry import build_scenario
from doorfix.sandbox.world.world import World

#: a command of the CLI may take this long on a loaded machine
COMMAND_TIMEOUT = 120


@dataclass
class Served:
    """The demo world served on 127.0.0.1, and a config (with its own journal) pointing at it."""

    world: World
    sandbox: ServedSandbox
    config: Path
    manifest: dict[str, dict[str, str]]

    def doorfix(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``python -m doorfix --config CONFIG ARGS``, to its end."""
        return subprocess.run(
            [*DOORFIX, "--config", str(self.config), *args],
            env=sandbox_env(),
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )

    def json(self, *args: str) -> dict[str, Any]:
        """The JSON report of a command that must exit 0."""
        done = self.doorfix(*args, "--json")
        assert done.returncode == 0, done.stderr
        report: dict[str, Any] = json.loads(done.stdout)
        return report

    def text(self, *args: str) -> str:
        """The text output of a command that must exit 0 (wide, so lines do not wrap)."""
        done = self.doorfix(*args)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def control(self, path: str, body: dict[str, Any]) -> Any:
        """POST to the sandbox's control API."""
        answer = httpx.post(f"{self.sandbox.base_url}/sandbox/{path}", json=body, timeout=30)
        assert answer.status_code < 300, answer.text
        return answer.json()


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    """The demo world on the system clock (the CLI's), served over HTTP."""
    monkeypatch.setenv("COLUMNS", "400")  # the text report's table: no wrapped cells
    world = build_scenario("demo", seed=0, clock=SystemClock())
    with ServedSandbox(create_app(world, api_faults=ApiFaults(seed=0))) as sandbox:
        config = write_config(tmp_path / "doorfix.toml", sandbox.urls, tmp_path / "j.sqlite3")
        yield Served(world, sandbox, config, demo_manifest(world))


def _incident(report: dict[str, Any], cause: str, **subject: str) -> dict[str, Any]:
    found = [
        i
        for i in report["incidents"]
        if i["cause"] == cause and all(i["subject"].get(k) == v for k, v in subject.items())
    ]
    assert len(found) == 1, report["incidents"]
    return found[0]


def _checks(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in report["checks"]}


# --------------------------------------------------------------------------- issue 11 item 3


def test_the_ticket_answers_a_case_the_daemon_already_reported(served: Served) -> None:
    pair = served.manifest["aca.booking_mismatch"]
    user, lock = pair["user_id"], pair["lock_id"]
    run = served.json("run", "aca-rejections")
    reported = _incident(run, "aca.booking_mismatch", user_id=user, lock_id=lock)
    assert reported["outcome"] == "needs_human"

    ticket = served.json("diagnose", "--user", user, "--lock", lock)
    assert ticket["cause"] == "aca.booking_mismatch"
    assert ticket["no_fault_found"] is False
    incident = _incident(ticket, "aca.booking_mismatch", user_id=user, lock_id=lock)
    assert incident["outcome"] == "needs_human"
    assert [s["who"] for s in incident["steps"]] == ["support", "support"]
    checks = _checks(ticket)
    assert checks["lock_connection"]["result"] == "pass"
    assert checks["booking_inventory"]["result"] == "fail"
    assert checks["booking_inventory"]["cause"] == "aca.booking_mismatch"
    covered = ticket["covered_by"]
    assert covered["incident_id"] == reported["incident_id"]
    assert covered["outcome"] == "needs_human"
    assert covered["decided_at"] is not None

    text = served.text("diagnose", "--user", user, "--lock", lock)
    assert f"user={user} lock={lock}: diagnosis aca.booking_mismatch" in text
    assert "fail    booking_inventory" in text
    assert f"already covered by incident {reported['incident_id']} " in text
    assert "move the booking to the inventory that contains the lock" in text


def test_a_daemon_run_lists_each_repeat_with_the_incident_it_joined(served: Served) -> None:
    pair = served.manifest["aca.booking_mismatch"]
    user, lock = pair["user_id"], pair["lock_id"]
    first = served.json("run", "aca-rejections")
    reported = _incident(first, "aca.booking_mismatch", user_id=user, lock_id=lock)
    # refused again within the cool-down: the same case, not a new report
    served.control("present", {"user_id": user, "lock_id": lock, "via": "tag"})

    second = served.json("run", "aca-rejections")
    assert not [i for i in second["incidents"] if i["cause"] == "aca.booking_mismatch"]
    repeats = [r for r in second["repeats"] if r["cause"] == "aca.booking_mismatch"]
    assert len(repeats) == 1
    repeat = repeats[0]
    assert repeat["subject"]["user_id"] == user
    assert repeat["subject"]["lock_id"] == lock
    assert repeat["joined_incident_id"] == reported["incident_id"]
    assert repeat["outcome"] == "needs_human"
    assert repeat["event_ids"]  # the new refusal, kept with the incident it joined

    served.control("present", {"user_id": user, "lock_id": lock, "via": "tag"})
    text = served.text("run", "aca-rejections")
    assert "repeats (already reported, joined)" in text
    assert f"joined incident {reported['incident_id']} (needs_human" in text


# --------------------------------------------------------------------------- issue 11 item 9


def test_the_door_ticket_checks_the_credential_and_assigns_it_only_under_fix(
    served: Served,
) -> None:
    fault = served.manifest["cloud.credential_unassigned"]
    user, door = fault["user_id"], fault["door_id"]
    args = ("diagnose", "--user", user, "--door", door)

    ticket = served.json(*args)
    assert ticket["cause"] == "cloud.credential_unassigned"
    check = _checks(ticket)["credential_assigned"]
    assert check["result"] == "fail"
    incident = _incident(ticket, "cloud.credential_unassigned", door_id=door, user_id=user)
    assert incident["outcome"] == "would_fix"
    assert [(a["remedy"], a["status"]) for a in incident["actions"]] == [
        ("assign_credential", "planned")
    ]
    assert served.world.faults()  # nothing changed yet
    assert {f.kind: f.present for f in served.world.faults()}["cloud.credential_unassigned"]

    fixed = served.json(*args, "--fix")
    incident = _incident(fixed, "cloud.credential_unassigned", door_id=door)
    assert incident["outcome"] == "fixed"
    assert [(a["remedy"], a["status"]) for a in incident["actions"]] == [
        ("assign_credential", "succeeded")
    ]
    assert not {f.kind: f.present for f in served.world.faults()}["cloud.credential_unassigned"]

    after = served.json(*args)
    assert after["no_fault_found"] is True
    assert after["incidents"] == []
    assert {c["result"] for c in after["checks"]} == {"pass"}
    assert "no fault found" in served.text(*args)


# --------------------------------------------------------------------------- issue 13 item 6


def test_a_healthy_pair_gets_every_check_and_no_fault_found(served: Served) -> None:
    pair = served.manifest["normal.tag"]
    args = ("diagnose", "--user", pair["user_id"], "--lock", pair["lock_id"])
    done = served.doorfix(*args, "--json")
    assert done.returncode == 0, done.stderr
    ticket = json.loads(done.stdout)
    assert ticket["no_fault_found"] is True
    assert ticket["cause"] is None
    assert ticket["incidents"] == []
    names = [c["name"] for c in ticket["checks"]]
    assert names[:3] == ["lock_connection", "privacy_mode", "booking_inventory"]
    assert "iq_holds_access" in names
    assert all(c["result"] == "pass" and c["detail"] for c in ticket["checks"])

    text = served.text(*args)
    assert "no fault found" in text
    for name in names:
        assert f"pass    {name}: " in text


def test_a_quiet_lock_online_on_an_online_iq_is_not_offline(served: Served) -> None:
    # the co-working space's lock: booked by Orbit Works, nobody ever presented there
    inventory = next(i for i in served.world.inventories.values() if i.name == "714ResCo-work01")
    lock_id = inventory.lock_ids[0]
    lock = served.world.locks[lock_id]
    assert lock.last_event_utc is None  # no sign of life at all: quiet, yet online
    user = served.manifest["aca.booking_mismatch"]["user_id"]
    ticket = served.json("diagnose", "--user", user, "--lock", lock_id)
    assert ticket["cause"] != "aca.lock_offline"
    assert _checks(ticket)["lock_connection"]["result"] == "pass"


@pytest.mark.parametrize(
    ("option", "shown"),
    [("--user", "u-nobody"), ("--lock", "l-nowhere"), ("--door", "d-nowhere")],
)
def test_an_unknown_user_lock_or_door_is_bad_input(served: Served, option: str, shown: str) -> None:
    pair = served.manifest["normal.door"] | served.manifest["normal.tag"]
    given = {"--user": pair["user_id"], "--lock": pair["lock_id"], "--door": pair["door_id"]}
    given[option] = shown
    where = "--door" if option == "--door" else "--lock"
    done = served.doorfix("diagnose", "--user", given["--user"], where, given[where])
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"doorfix: {option}: ")
    assert shown in lines[0]
    assert "Traceback" not in done.stderr
    assert done.stdout == ""
    # with --json the error is one object on stdout, naming the option
    as_json = served.doorfix("diagnose", "--user", given["--user"], where, given[where], "--json")
    assert as_json.returncode == 2
    error = json.loads(as_json.stdout)
    assert error["key"] == option
    assert shown in error["error"]
    assert error["exit_code"] == 2


# --------------------------------------------------------------------------- issue 11 item 11


def test_a_center_without_a_release_date_is_kept_and_its_events_decided(served: Served) -> None:
    # ACA answers every center with released_at null (the operator never set one)
    served.control("api-faults", {"system": "aca", "kind": "null_release_date", "count": 1000})
    centers = sorted(served.world.centers)
    report = served.json("run", "aca-rejections")
    for center_id in centers:
        assert any(
            f"center {center_id} " in w and "no release date" in w for w in report["warnings"]
        ), report["warnings"]
    assert report.get("skipped", []) == []
    # the centers' events are decided as usual: treated as released, never too early
    pair = served.manifest["aca.booking_mismatch"]
    mismatch = _incident(report, "aca.booking_mismatch", user_id=pair["user_id"])
    assert mismatch["event_ids"]
    assert "aca.too_early" not in {i["cause"] for i in report["incidents"]}
    fixed = served.manifest["aca.clp_out_of_sync"]
    assert _incident(report, "aca.clp_out_of_sync", user_id=fixed["user_id"])["outcome"] == "fixed"

    text = served.text("run", "door-logs")
    assert "no release date" in text
    assert "warning: center " in text

    normal = served.manifest["normal.tag"]
    ticket = served.json("diagnose", "--user", normal["user_id"], "--lock", normal["lock_id"])
    grace = _checks(ticket)["release_grace"]
    assert grace["result"] == "pass"
    assert "no release date: treated as released" in grace["detail"]
