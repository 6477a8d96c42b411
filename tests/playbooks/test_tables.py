"""The cause table and the plan policy: complete, consistent, and safe to render."""

from __future__ import annotations

from datetime import timedelta

import pytest

from doorfix.agent.config import GuardsSection
from doorfix.playbooks.causes import CAUSES, StepText, spec
from doorfix.playbooks.policy import PlanPolicy
from doorfix.playbooks.types import Cause, Remedy, Step, Who


def test_every_cause_has_exactly_one_row() -> None:
    assert set(CAUSES) == set(Cause)
    assert all(row.cause is cause for cause, row in CAUSES.items())


@pytest.mark.parametrize("cause", list(Cause))
def test_rows_are_consistent(cause: Cause) -> None:
    row = spec(cause)
    assert row.seed_row
    if row.remedy is not None:
        # a remedy row carries the manual fix for when the remedy does not hold
        assert row.disposition == "remedy"
        assert row.steps
    if row.disposition == "needs_human":
        assert row.who is not None
        assert row.steps
    if row.disposition in ("no_fault", "deferred"):
        assert row.remedy is None
        assert row.who is None


@pytest.mark.parametrize(
    ("cause", "remedy", "disposition", "who"),
    [
        (Cause.CLOUD_CREDENTIAL_UNASSIGNED, Remedy.ASSIGN_CREDENTIAL, "remedy", Who.SUPPORT),
        (Cause.CLOUD_LICENSE_INACTIVE, Remedy.RENEW_LICENSE, "remedy", Who.DISTRIBUTOR),
        (Cause.CLOUD_NO_ACCESS_GROUP, Remedy.ADD_TO_ACCESS_GROUP, "remedy", Who.SUPPORT),
        (Cause.CLOUD_INHERITED_GROUP, None, "needs_human", Who.SUPPORT),
        (Cause.CLOUD_VISITOR_EXPIRED, Remedy.CREATE_TEMP_KEY, "remedy", Who.SUPPORT),
        (Cause.CLOUD_HOLIDAY_RESTRICTION, Remedy.SET_HOLIDAY_HOURS, "remedy", Who.SUPPORT),
        (Cause.ACA_TOO_EARLY, None, "deferred", None),
        (Cause.ACA_LOCK_OFFLINE, None, "needs_human", Who.ON_SITE),
        (Cause.ACA_PRIVACY_MODE, None, "needs_human", Who.ON_SITE),
        (Cause.ACA_BOOKING_MISMATCH, None, "needs_human", Who.SUPPORT),
        (Cause.ACA_ACCESS_DISABLED, None, "no_fault", None),
        (Cause.ACA_NO_BOOKING, None, "no_fault", None),
        (Cause.ACA_CLP_OUT_OF_SYNC, Remedy.TOGGLE_ACCESS_MATRIX, "remedy", Who.SUPPORT),
        (Cause.ACA_IQ_OUT_OF_SYNC, Remedy.SYNC_ACCESS, "remedy", Who.SUPPORT),
        (Cause.ACA_MKEY_REVOKED, None, "needs_human", Who.USER),
        (Cause.ACA_MKEY_CORRUPTED, None, "needs_human", Who.USER),
        (Cause.ACA_MKEY_GENERATION_FAILED, Remedy.ESCALATE, "remedy", Who.VENDOR_SUPPORT),
        (Cause.UNKNOWN, None, "needs_human", Who.SUPPORT),
    ],
)
def test_the_design_table(
    cause: Cause, remedy: Remedy | None, disposition: str, who: Who | None
) -> None:
    row = spec(cause)
    assert (row.remedy, row.disposition, row.who) == (remedy, disposition, who)


def test_a_missing_value_renders_as_a_question_mark_not_an_error() -> None:
    step = StepText(Who.SUPPORT, "Open {door_name} ({door_id!r})").render({"door_id": "d-1"})
    assert step == Step(Who.SUPPORT, "Open ? ('d-1')")
    # a broken template is shown as written rather than failing the plan
    assert StepText(Who.USER, "Hi {0}").render({}).text == "Hi {0}"


def test_policy_from_guards_takes_the_config_values() -> None:
    guards = GuardsSection(
        release_grace_hours=6,
        renewals_enabled=True,
        renewal_months=3,
        license_lookahead_days=14,
    )
    policy = PlanPolicy.from_guards(guards, holiday_hours={"h-1": ("08:00", "12:00")})
    assert policy.release_grace == timedelta(hours=6)
    assert policy.renewals_enabled is True
    assert policy.renewal_months == 3
    assert policy.license_lookahead == timedelta(days=14)
    assert policy.hours_for("h-1", "x") == ("08:00", "12:00")
    assert PlanPolicy.from_guards(GuardsSection()) == PlanPolicy()


@pytest.mark.parametrize(
    "hours",
    [{"h": ("8:00", "12:00")}, {"h": ("08:00", "24:00")}, {"h": ("12:00", "08:00")}],
)
def test_policy_refuses_hours_no_holiday_could_take(hours: dict[str, tuple[str, str]]) -> None:
    with pytest.raises(ValueError, match="holiday 'h'"):
        PlanPolicy(holiday_hours=hours)


def test_policy_is_not_changed_by_its_callers_dict() -> None:
    hours = {"h-1": ("08:00", "12:00")}
    policy = PlanPolicy(holiday_hours=hours)
    hours["h-2"] = ("09:00", "10:00")
    assert policy.hours_for("h-2", "h-2") is None
    assert policy.hours_for("x", "H-1") == ("08:00", "12:00")
