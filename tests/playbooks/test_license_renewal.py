"""license-renewal: which doors doorfix renews ahead of time, and who is asked otherwise."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import factories as f
import pytest

from doorfix.playbooks import license_renewal
from doorfix.playbooks.facts import DoorLicenseFacts
from doorfix.playbooks.policy import PlanPolicy
from doorfix.playbooks.types import Cause, Remedy, Who

NOW = f.NOW
RENEWING = PlanPolicy(renewals_enabled=True)

ROWS: list[Any] = [
    # id, door overrides, due, days_left
    ("expired", {"status": "expired", "expires_at": NOW - timedelta(days=2)}, True, -2),
    ("inactivated", {"status": "inactivated"}, True, None),
    ("expiring_soon", {"expires_at": NOW + timedelta(days=10)}, True, 10),
    ("expiring_at_lookahead", {"expires_at": NOW + timedelta(days=30)}, True, 30),
    ("expiring_later", {"expires_at": NOW + timedelta(days=30, seconds=1)}, False, None),
    ("never_expires", {"expires_at": None}, False, None),
    ("auto_renew_soon", {"expires_at": NOW + timedelta(days=3), "auto_renew": True}, False, None),
    (
        "auto_renew_but_expired",
        {"status": "expired", "expires_at": NOW - timedelta(days=1), "auto_renew": True},
        True,
        -1,
    ),
    ("active_past_expiry", {"expires_at": NOW - timedelta(hours=1)}, True, -1),
]


@pytest.mark.parametrize(
    ("door_kw", "due", "days_left"), [r[1:] for r in ROWS], ids=[r[0] for r in ROWS]
)
def test_which_licenses_are_due(door_kw: dict[str, Any], due: bool, days_left: int | None) -> None:
    facts = DoorLicenseFacts(f.door(**door_kw), f.project_info(), center_id="c-1")
    diagnosis = license_renewal.diagnose(facts, NOW, RENEWING)
    if not due:
        assert diagnosis is None
        return
    assert diagnosis is not None
    assert diagnosis.cause is Cause.CLOUD_LICENSE_INACTIVE
    assert diagnosis.subject.as_dict() == {"center_id": "c-1", "door_id": "d-1"}
    assert diagnosis.evidence["days_left"] == days_left
    assert diagnosis.evidence["license_status"] == door_kw.get("status", "active")
    plan = license_renewal.plan(diagnosis, facts, RENEWING, NOW)
    assert plan.disposition == "remedy"
    (action,) = plan.actions
    assert action.remedy is Remedy.RENEW_LICENSE
    assert action.target == "p-1/d-1"
    assert dict(action.params) == {"project_id": "p-1", "door_id": "d-1", "months": 12}


@pytest.mark.parametrize(
    ("payment", "policy", "who"),
    [
        (False, RENEWING, {Who.SUPPORT, Who.DISTRIBUTOR}),
        (False, PlanPolicy(), {Who.SUPPORT, Who.DISTRIBUTOR}),
        (True, PlanPolicy(), {Who.SUPPORT}),
    ],
)
def test_without_payment_or_renewals_a_person_acts(
    payment: bool, policy: PlanPolicy, who: set[Who]
) -> None:
    door = f.door(status="expired", expires_at=NOW - timedelta(days=1))
    facts = DoorLicenseFacts(door, f.project_info(payment=payment))
    diagnosis = license_renewal.diagnose(facts, NOW, policy)
    assert diagnosis is not None
    plan = license_renewal.plan(diagnosis, facts, policy, NOW)
    assert plan.disposition == "needs_human"
    assert plan.actions == ()
    assert {s.who for s in plan.steps} == who
    if not payment:
        assert "Contact the distributor" in plan.steps[-1].text


def test_lookahead_comes_from_policy() -> None:
    facts = DoorLicenseFacts(f.door(expires_at=NOW + timedelta(days=10)), f.project_info())
    assert (
        license_renewal.diagnose(facts, NOW, PlanPolicy(license_lookahead=timedelta(days=5)))
        is None
    )
    assert license_renewal.diagnose(facts, NOW, PlanPolicy(license_lookahead=timedelta(days=10)))


def test_diagnose_licenses_lists_due_doors_in_id_order() -> None:
    doors = [
        f.door("d-3", status="expired", expires_at=NOW - timedelta(days=1)),
        f.door("d-1", expires_at=NOW + timedelta(days=100)),
        f.door("d-2", status="inactivated"),
    ]
    found = license_renewal.diagnose_licenses(
        doors, f.project_info(), RENEWING, NOW, center_id="c-1"
    )
    assert [d.subject.door_id for d, _ in found] == ["d-2", "d-3"]
    assert [p.actions[0].params["door_id"] for _, p in found] == ["d-2", "d-3"]


def test_plan_for_a_license_renewed_meanwhile_is_no_fault() -> None:
    due = DoorLicenseFacts(
        f.door(status="expired", expires_at=NOW - timedelta(days=1)), f.project_info()
    )
    diagnosis = license_renewal.diagnose(due, NOW, RENEWING)
    assert diagnosis is not None
    renewed = DoorLicenseFacts(f.door(expires_at=NOW + timedelta(days=365)), f.project_info())
    plan = license_renewal.plan(diagnosis, renewed, RENEWING, NOW)
    assert plan.disposition == "no_fault"
    assert plan.actions == ()
