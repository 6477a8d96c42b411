"""Decisions a support lead would sign, through the CLI against the demo sandbox over HTTP.

``python -m doorfix`` runs as a subprocess against the served sandbox (127.0.0.1) on the wall
clock: a security finding is never folded into a fix (one incident per presented credential),
a lost tag at an ACA lock is never synced, and one expired door license is one incident
whichever playbook saw it.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from support.configs import write_config
from support.processes import spawn_doorfix

from doorfix.clock import SystemClock
from doorfix.sandbox.api.app import create_app
from doorfix.sandbox.api.server import ServedSandbox
from doorfix.sandbox.faults.api import ApiFaults
from doorfix.sandbox.scenarios.registry import build_scenario, demo_manifest
from doorfix.sandbox.world.world import DoorPresentation, World


@dataclass
class Served:
    world: World
    manifest: dict[str, dict[str, str]]
    urls: dict[str, str]
    tmp_path: Path

    def doorfix(self, *args: str, journal: str = "journal") -> dict[str, Any]:
        """``doorfix --config C ARGS`` (exit 0 asserted) on the named journal; stdout as JSON."""
        config = write_config(
            self.tmp_path / f"{journal}.toml", self.urls, self.tmp_path / f"{journal}.sqlite3"
        )
        proc = spawn_doorfix("--config", str(config), *args, stdin=subprocess.DEVNULL)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-3000:]
        result: dict[str, Any] = json.loads(out)
        return result


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    """The demo world on the wall clock, served on 127.0.0.1."""
    world = build_scenario("demo", seed=0, clock=SystemClock())
    app = create_app(world, api_faults=ApiFaults(seed=0))
    with ServedSandbox(app) as sandbox:
        yield Served(world, demo_manifest(world), sandbox.urls, tmp_path)


def incidents_at(report: dict[str, Any], cause: str, **subject: str) -> list[dict[str, Any]]:
    return [
        i
        for i in report["incidents"]
        if i["cause"] == cause and all(i["subject"].get(k) == v for k, v in subject.items())
    ]


def test_each_invalid_credential_at_one_door_is_its_own_incident_and_findings_are_never_fixed(
    served: Served,
) -> None:
    world, manifest = served.world, served.manifest
    door = manifest["cloud.credential_unassigned"]["door_id"]
    assigned = manifest["cloud.credential_unassigned"]["credential_value"]
    # at the same door: Quinn's card (ACA marks it lost) once, a card nobody has three times
    lost = manifest["cloud.unknown_credential"]["credential_value"]
    unknown = world.inject("cloud.unknown_credential", door_id=door).subject["credential_value"]
    start = world.clock.now() - timedelta(minutes=30)
    world.schedule_presentations(
        DoorPresentation(door, "card", unknown), start, 60, start + timedelta(minutes=2)
    )
    world.schedule_presentations(DoorPresentation(door, "card", lost), start, 60, start)

    report = served.doorfix("run", "door-logs", "--json")

    found = incidents_at(report, "cloud.credential_unassigned", door_id=door)
    by_card = {i["subject"]["credential"]: i for i in found}
    assert len(found) == len(by_card) == 3
    assert {card: i["outcome"] for card, i in by_card.items()} == {
        assigned: "fixed",
        unknown: "needs_human",
        lost: "needs_human",
    }
    # the fix holds only its own card's refusals
    assert "also" not in by_card[assigned]["evidence"]
    assert [a["remedy"] for a in by_card[assigned]["actions"]] == ["assign_credential"]
    # each finding: how often, where, when, who acts; nothing is done about it
    unknown_finding = by_card[unknown]
    assert unknown_finding["evidence"]["count"] == 3
    assert unknown_finding["actions"] == []
    steps = " ".join(s["text"] for s in unknown_finding["steps"])
    assert f"Security finding: the card {unknown} was refused 3 time(s) at {door}" in steps
    assert {s["who"] for s in unknown_finding["steps"]} == {"support", "on_site_staff"}
    assert "ACA marks it lost" in " ".join(s["text"] for s in by_card[lost]["steps"])
    # no finding's card hides in an incident that is fixed, pending or would be fixed
    for incident in report["incidents"]:
        if incident["outcome"] in ("fixed", "pending_verification", "would_fix"):
            held = json.dumps(incident["evidence"])
            assert unknown not in held
            assert lost not in held


def test_a_lost_tag_at_a_lock_where_clp_denies_is_a_finding_never_a_toggle(
    served: Served,
) -> None:
    fault = served.manifest["aca.tag_not_assigned"]
    user, lock, tag = fault["user_id"], fault["lock_id"], fault["credential"]

    # the ticket path on a journal of its own: what a person asking about the pair is told
    ticket = served.doorfix("diagnose", "--user", user, "--lock", lock, "--json", journal="t")
    report = served.doorfix("run", "aca-rejections", "--json")

    (on_ticket,) = ticket["incidents"]
    assert (on_ticket["cause"], on_ticket["outcome"]) == ("aca.tag_not_assigned", "needs_human")
    assert on_ticket["actions"] == []
    (finding,) = incidents_at(report, "aca.tag_not_assigned", user_id=user, lock_id=lock)
    assert finding["subject"]["credential"] == tag
    assert finding["outcome"] == "needs_human"
    assert finding["actions"] == []
    assert finding["evidence"]["tag_state"] == "lost"
    steps = " ".join(s["text"] for s in finding["steps"])
    assert f"Security finding: tag {tag} was refused" in steps
    # nothing about this user at this lock was toggled or synced
    assert [i for i in incidents_at(report, "aca.clp_out_of_sync", user_id=user)] == []
    touched = [
        a["target"] for i in report["incidents"] for a in i["actions"] if a["remedy"] != "escalate"
    ]
    assert f"{user}/{lock}" not in touched
    # the ground truth agrees, and CLP still denies: no sync was sent
    truth = served.world.truth_lock(user, lock)
    assert truth["cause"] == "aca.tag_not_assigned"
    assert truth["clp"]["larry"] == "denied"  # type: ignore[index]


def test_an_expired_license_seen_by_both_playbooks_is_one_incident_in_the_report(
    served: Served,
) -> None:
    no_payment = served.manifest["cloud.no_payment"]["door_id"]

    refusals = served.doorfix("run", "door-logs", "--json")
    proactive = served.doorfix("run", "license-renewal", "--json")
    period = served.doorfix("report", "--format", "json")

    (by_refusal,) = incidents_at(refusals, "cloud.license_inactive", door_id=no_payment)
    assert by_refusal["outcome"] == "needs_human"
    assert set(by_refusal["subject"]) == {"center_id", "door_id"}
    assert len(by_refusal["event_ids"]) >= 2  # the refusals joined it as events
    # the license-renewal run sees the same door: the same incident, not a second report
    assert incidents_at(proactive, "cloud.license_inactive", door_id=no_payment) == []
    needs = [
        p
        for p in period["sections"]["needs_human"]
        if p["cause"] == "cloud.license_inactive" and p["subject"]["door_id"] == no_payment
    ]
    assert [p["incident_id"] for p in needs] == [by_refusal["incident_id"]]
    # every headline counts each door once
    doors = {
        p["subject"]["door_id"]
        for p in period["sections"]["needs_human"]
        if p["cause"] == "cloud.license_inactive"
    }
    assert period["by_cause"]["cloud.license_inactive"].get("needs_human") == len(doors)
