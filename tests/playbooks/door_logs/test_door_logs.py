"""door-logs: every Detail row and branch, as a support lead would check the agent's verdicts."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import factories as f
import pytest

from doorfix.playbooks.door_logs import playbook as door_logs
from doorfix.playbooks.door_logs.playbook import Detail
from doorfix.playbooks.facts import DoorLogFacts
from doorfix.playbooks.policy import PlanPolicy
from doorfix.playbooks.types import Cause, Diagnosis, Plan, Remedy, Who

NOW = f.NOW
RENEWING = PlanPolicy(renewals_enabled=True)


def run(
    facts: DoorLogFacts, policy: PlanPolicy = RENEWING, now: datetime = NOW
) -> tuple[Diagnosis, Plan]:
    diagnosis = door_logs.diagnose(facts, now)
    return diagnosis, door_logs.plan(diagnosis, facts, policy, now)


def whos(plan: Plan) -> set[Who]:
    return {step.who for step in plan.steps}


def text(plan: Plan) -> str:
    return "\n".join(step.text for step in plan.steps)


# --------------------------------------------------------------------------- Detail rows


@pytest.mark.parametrize(
    ("detail", "row"),
    [
        ("Invalid Card", Detail.INVALID_CREDENTIAL),
        ("Invalid PIN", Detail.INVALID_CREDENTIAL),
        ("Invalid Face", Detail.INVALID_CREDENTIAL),
        ("Invalid QR Code", Detail.INVALID_CREDENTIAL),
        ("invalid  NFC", Detail.INVALID_CREDENTIAL),
        ("Invalid BLE", Detail.INVALID_CREDENTIAL),
        ("Invalid", Detail.OTHER),
        ("Invalid time window", Detail.OTHER),
        ("Invalid Fingerprint.", Detail.INVALID_CREDENTIAL),
        ("Door license expired or not activated", Detail.LICENSE),
        ("No access permission", Detail.NO_PERMISSION),
        ("No access permission or door license is not available", Detail.NO_PERMISSION_OR_LICENSE),
        ("Not within the valid period", Detail.NOT_VALID),
        ("No access permission during holidays", Detail.HOLIDAY),
        ("", Detail.EMPTY),
        ("   ", Detail.EMPTY),
        ("Door jammed", Detail.OTHER),
    ],
)
def test_detail_text_picks_the_runbook_row(detail: str, row: Detail) -> None:
    assert door_logs.classify(detail) is row


@pytest.mark.parametrize(
    ("model", "firmware", "outdated"),
    [
        ("A08", "108.30.11.209", True),
        ("A08", "108.30.11.210", False),
        ("A08", "108.30.11.1000", False),
        ("EC33", "33.30.1.99", True),  # numerically older although "99" > "107" as text
        ("EC33", "33.30.1.107", False),
        ("R20", "320.30.12.2", True),
        ("R20", "320.30.12.16", False),
        ("R29", "29.30.9.999", True),
        ("R29", "29.30.10.712", False),
        ("X915V2", "2915.30.10.706", True),
        ("X915V2", "2915.31.0.0", False),
        ("Z99", "1.0", False),
        ("A08", "beta-build", False),
    ],
)
def test_firmware_is_compared_numerically_against_the_table(
    model: str, firmware: str, outdated: bool
) -> None:
    assert door_logs.firmware_outdated(model, firmware) is outdated


# --------------------------------------------------------------------------- Invalid credential


def _invalid(**log_kw: Any) -> dict[str, Any]:
    return {"personnel_id": None, **log_kw}


CREDENTIAL_ROWS = [
    # id, log overrides, facts overrides, disposition, variant marker in the steps
    (
        "assigned_tag",
        {},
        {"aca_user": f.aca_user(), "aca_personnel": f.personnel()},
        "remedy",
        "add the card credential CARD-1",
    ),
    (
        "lost_tag",
        {},
        {"aca_user": f.aca_user(tags=[("CARD-1", "lost")]), "aca_personnel": f.personnel()},
        "needs_human",
        "ACA marks it lost (user u-1)",
    ),
    ("unknown_credential", {}, {}, "needs_human", "ACA does not list it as anyone's"),
    (
        "masked_pin",
        {"credential_type": "pin", "credential_value": "****"},
        {"aca_user": f.aca_user(tags=[("****", "assigned")]), "aca_personnel": f.personnel()},
        "needs_human",
        "The cloud masks PINs",
    ),
    (
        "unknown_temp_key",
        {"credential_type": "temp_key", "credential_value": "QR-9"},
        {},
        "needs_human",
        "Temp keys belong to visitors",
    ),
    (
        "tag_user_without_person",
        {},
        {"aca_user": f.aca_user(cloud_personnel_id=None)},
        "needs_human",
        "click New Personnel",
    ),
    (
        "tag_on_someone_else",
        {},
        {
            "aca_user": f.aca_user(),
            "aca_personnel": f.personnel(),
            "credential_owners": (f.personnel("per-9", credentials=[("card", "CARD-1")]),),
        },
        "needs_human",
        "the cloud has it on per-9",
    ),
    (
        "already_assigned",
        {},
        {
            "aca_user": f.aca_user(),
            "aca_personnel": f.personnel(credentials=[("card", "CARD-1")]),
            "credential_owners": (f.personnel(credentials=[("card", "CARD-1")]),),
        },
        "no_fault",
        "",
    ),
    (
        "unknown_then_assigned_in_cloud",
        {},
        {"credential_owners": (f.personnel("per-7", credentials=[("card", "CARD-1")]),)},
        "no_fault",
        "",
    ),
    (
        "lost_but_held_in_cloud",
        {},
        {
            "aca_user": f.aca_user(tags=[("CARD-1", "lost")]),
            "credential_owners": (f.personnel("per-7", credentials=[("card", "CARD-1")]),),
        },
        "needs_human",
        "Security finding",
    ),
]


@pytest.mark.parametrize(
    ("log_kw", "facts_kw", "disposition", "marker"),
    [row[1:] for row in CREDENTIAL_ROWS],
    ids=[row[0] for row in CREDENTIAL_ROWS],
)
def test_invalid_credential_rows(
    log_kw: dict[str, Any], facts_kw: dict[str, Any], disposition: str, marker: str
) -> None:
    facts = f.door_log_facts(f.log("Invalid Card", **_invalid(**log_kw)), **facts_kw)
    diagnosis, plan = run(facts)
    assert diagnosis.cause is Cause.CLOUD_CREDENTIAL_UNASSIGNED
    assert plan.disposition == disposition
    assert marker in text(plan)
    if disposition != "remedy":
        assert plan.actions == ()


def test_assigned_tag_is_assigned_with_exact_params() -> None:
    facts = f.door_log_facts(
        f.log("Invalid NFC", credential_type="nfc", personnel_id=None),
        aca_user=f.aca_user(),
        aca_personnel=f.personnel(),
    )
    diagnosis, plan = run(facts)
    (action,) = plan.actions
    assert action.remedy is Remedy.ASSIGN_CREDENTIAL
    assert action.system == "cloud"
    assert action.target == "p-1/per-1"
    assert dict(action.params) == {
        "project_id": "p-1",
        "personnel_id": "per-1",
        "type": "nfc",
        "value": "CARD-1",
    }
    assert diagnosis.evidence["tag_state"] == "assigned"
    assert diagnosis.evidence["aca_user_id"] == "u-1"


@pytest.mark.parametrize("tag_state", ["lost", None])
def test_security_finding_says_how_often_where_and_who(tag_state: str | None) -> None:
    first = NOW - timedelta(hours=3)
    logs = (
        f.log("Invalid Card", log_id=1, at=first, personnel_id=None),
        f.log("Invalid Card", log_id=2, at=NOW - timedelta(hours=1), personnel_id=None),
    )
    elsewhere = f.log(
        "Invalid Card", log_id=9, at=NOW - timedelta(minutes=30), door_id="d-2", personnel_id=None
    )
    user = f.aca_user(tags=[("CARD-1", tag_state)]) if tag_state else None
    facts = f.door_log_facts(*logs, aca_user=user, presentations=(elsewhere,))
    diagnosis, plan = run(facts)
    assert diagnosis.cause is Cause.CLOUD_CREDENTIAL_UNASSIGNED
    assert plan.disposition == "needs_human"
    assert plan.actions == ()
    evidence = diagnosis.evidence
    assert evidence["count"] == 3
    assert evidence["doors"] == ["d-1", "d-2"]
    assert evidence["first_seen"] == "2026-11-16T07:00:00Z"
    assert evidence["last_seen"] == "2026-11-16T09:30:00Z"
    assert evidence["tag_state"] == tag_state
    assert whos(plan) == {Who.SUPPORT, Who.ON_SITE}
    assert "refused 3 time(s) at d-1, d-2" in text(plan)


# --------------------------------------------------------------------------- license


LICENSE_ROWS = [
    ("renew", "expired", True, RENEWING, "remedy", set()),
    ("renew_inactivated", "inactivated", True, RENEWING, "remedy", set()),
    ("no_payment", "expired", False, RENEWING, "needs_human", {Who.SUPPORT, Who.DISTRIBUTOR}),
    ("renewals_off", "expired", True, PlanPolicy(), "needs_human", {Who.SUPPORT}),
    ("already_active", "active", True, RENEWING, "no_fault", set()),
]


@pytest.mark.parametrize(
    ("status", "payment", "policy", "disposition", "who"),
    [row[1:] for row in LICENSE_ROWS],
    ids=[row[0] for row in LICENSE_ROWS],
)
def test_license_row(
    status: str, payment: bool, policy: PlanPolicy, disposition: str, who: set[Who]
) -> None:
    expires = NOW - timedelta(days=2) if status != "active" else NOW + timedelta(days=200)
    project = f.project_facts(payment=payment, doors=[f.door(status=status, expires_at=expires)])
    facts = f.door_log_facts(f.log("Door license expired or not activated"), project=project)
    diagnosis, plan = run(facts, policy)
    assert diagnosis.cause is Cause.CLOUD_LICENSE_INACTIVE
    assert plan.disposition == disposition
    if disposition == "remedy":
        (action,) = plan.actions
        assert action.remedy is Remedy.RENEW_LICENSE
        assert action.target == "p-1/d-1"
        assert dict(action.params) == {"project_id": "p-1", "door_id": "d-1", "months": 12}
    else:
        assert plan.actions == ()
        assert whos(plan) == who
    if disposition == "no_fault":
        assert plan.reason.startswith("already resolved")


def test_license_renewal_months_come_from_policy_and_evidence_names_the_license() -> None:
    project = f.project_facts(doors=[f.door(status="expired", expires_at=NOW - timedelta(days=3))])
    facts = f.door_log_facts(f.log("Door license expired or not activated"), project=project)
    diagnosis, plan = run(facts, PlanPolicy(renewals_enabled=True, renewal_months=3))
    assert plan.actions[0].params["months"] == 3
    assert diagnosis.evidence["license_status"] == "expired"
    assert diagnosis.evidence["days_left"] == -3
    assert diagnosis.evidence["payment_permission"] is True


def test_license_of_a_door_missing_from_the_project_needs_support() -> None:
    facts = f.door_log_facts(
        f.log("Door license expired or not activated", door_id="d-404"),
    )
    diagnosis, plan = run(facts)
    assert diagnosis.cause is Cause.CLOUD_LICENSE_INACTIVE
    assert plan.disposition == "needs_human"
    assert "not in the door list" in text(plan)


# --------------------------------------------------------------------------- no access permission


def groups_facts(
    *groups: Any,
    bookings: tuple[Any, ...] = (f.booking(),),
    person: Any = None,
    inventories: tuple[Any, ...] | None = None,
    user_groups: tuple[Any, ...] = (),
    detail: str = "No access permission",
    doors: tuple[Any, ...] | None = None,
    tz: str = f.TZ,
    at: datetime = NOW - timedelta(minutes=5),
) -> DoorLogFacts:
    project = f.project_facts(
        groups=groups, inventories=inventories, user_groups=user_groups, doors=doors, tz=tz
    )
    return f.door_log_facts(
        f.log(detail, at=at),
        project=project,
        personnel=person or f.personnel(),
        aca_user=f.aca_user(),
        bookings=bookings,
    )


TWO_ROOMS = (f.inventory(), f.inventory("inv-2", "Lounge", lock_ids=(), door_ids=("d-2",)))


@pytest.mark.parametrize(
    ("groups", "bookings", "inventories", "chosen"),
    [
        pytest.param(
            (f.access_group("ag-b", ("d-1",)), f.access_group("ag-a", ("d-1",))),
            (f.booking(),),
            None,
            "ag-a",
            id="tie_broken_by_id",
        ),
        pytest.param(
            (f.access_group("ag-a", ("d-1", "d-2")), f.access_group("ag-z", ("d-1",))),
            (f.booking(), f.booking("inv-2")),
            TWO_ROOMS,
            "ag-z",
            id="fewest_doors_first",
        ),
        pytest.param(
            (f.access_group("ag-a", ("d-1", "d-2")),),
            (f.booking(), f.booking("inv-2")),
            TWO_ROOMS,
            "ag-a",
            id="wider_group_fine_when_booked",
        ),
        pytest.param(
            (f.access_group("ag-a", ("d-1", "d-9")), f.access_group("ag-b", ("d-1",))),
            (f.booking(),),
            None,
            "ag-b",
            id="extra_door_group_skipped",
        ),
    ],
)
def test_booking_justifies_adding_to_an_existing_group(
    groups: tuple[Any, ...],
    bookings: tuple[Any, ...],
    inventories: tuple[Any, ...] | None,
    chosen: str,
) -> None:
    facts = groups_facts(*groups, bookings=bookings, inventories=inventories)
    diagnosis, plan = run(facts)
    assert diagnosis.cause is Cause.CLOUD_NO_ACCESS_GROUP
    assert plan.disposition == "remedy"
    (action,) = plan.actions
    assert action.remedy is Remedy.ADD_TO_ACCESS_GROUP
    assert action.target == "p-1/per-1"
    assert dict(action.params) == {
        "project_id": "p-1",
        "access_group_id": chosen,
        "personnel_id": "per-1",
    }


NO_GROUP_ROWS = [
    # id, groups, bookings, disposition, marker
    (
        "group_would_open_extra_doors",
        (f.access_group("ag-a", ("d-1", "d-9")),),
        (f.booking(),),
        "needs_human",
        "ag-a: would also open d-9",
    ),
    (
        "group_closed_now",
        (f.access_group("ag-a", ("d-1",), weekdays=(6, 7)),),
        (f.booking(),),
        "needs_human",
        "ag-a: closed at that time",
    ),
    ("no_group_at_all", (), (f.booking(),), "needs_human", "Create New Access Group"),
    ("no_booking", (f.access_group("ag-a", ("d-1",)),), (), "no_fault", ""),
    (
        "booking_ended",
        (f.access_group("ag-a", ("d-1",)),),
        (f.booking(ends_at=NOW - timedelta(hours=1)),),
        "no_fault",
        "",
    ),
    (
        "booking_cancelled",
        (f.access_group("ag-a", ("d-1",)),),
        (f.booking(status="cancelled"),),
        "no_fault",
        "",
    ),
    (
        "booking_of_another_company",
        (f.access_group("ag-a", ("d-1",)),),
        (f.booking(company_id="co-2"),),
        "no_fault",
        "",
    ),
]


@pytest.mark.parametrize(
    ("groups", "bookings", "disposition", "marker"),
    [row[1:] for row in NO_GROUP_ROWS],
    ids=[row[0] for row in NO_GROUP_ROWS],
)
def test_no_access_group_without_a_safe_group(
    groups: tuple[Any, ...], bookings: tuple[Any, ...], disposition: str, marker: str
) -> None:
    diagnosis, plan = run(groups_facts(*groups, bookings=bookings))
    assert diagnosis.cause is Cause.CLOUD_NO_ACCESS_GROUP
    assert plan.disposition == disposition
    assert plan.actions == ()
    assert marker in text(plan)
    if disposition == "no_fault":
        assert plan.reason.startswith("refused as designed")


def test_person_in_a_user_group_is_inherited_and_never_added() -> None:
    facts = groups_facts(
        f.access_group("ag-a", ("d-1",)),
        person=f.personnel(user_group_ids=("ug-1",)),
        user_groups=(f.user_group("ug-1"),),
    )
    diagnosis, plan = run(facts)
    assert diagnosis.cause is Cause.CLOUD_INHERITED_GROUP
    assert plan.disposition == "needs_human"
    assert plan.actions == ()
    assert whos(plan) == {Who.SUPPORT}
    steps = text(plan)
    assert "user group(s) Team ug-1" in steps
    assert "remove Ann from the user group" in steps
    assert "for example Group ag-a (ag-a)" in steps
    assert diagnosis.evidence["user_group_ids"] == ["ug-1"]


def test_inherited_group_without_any_booking_is_refused_as_designed() -> None:
    facts = groups_facts(
        person=f.personnel(user_group_ids=("ug-1",)),
        user_groups=(f.user_group("ug-1"),),
        bookings=(),
    )
    diagnosis, plan = run(facts)
    assert diagnosis.cause is Cause.CLOUD_INHERITED_GROUP
    assert plan.disposition == "no_fault"


def test_person_whose_group_opens_the_door_now_is_already_resolved() -> None:
    facts = groups_facts(
        f.access_group("ag-a", ("d-1",)), person=f.personnel(access_group_ids=("ag-a",))
    )
    diagnosis, plan = run(facts)
    assert diagnosis.cause is Cause.CLOUD_NO_ACCESS_GROUP
    assert plan.disposition == "no_fault"
    assert plan.reason.startswith("already resolved")


def test_person_without_an_aca_user_needs_support() -> None:
    project = f.project_facts(groups=(f.access_group("ag-a", ("d-1",)),))
    facts = f.door_log_facts(
        f.log("No access permission"), project=project, personnel=f.personnel(external_id=None)
    )
    diagnosis, plan = run(facts)
    assert diagnosis.cause is Cause.CLOUD_NO_ACCESS_GROUP
    assert plan.disposition == "needs_human"
    assert "no ACA user" in text(plan)


def test_visitor_without_permission_for_the_door_is_refused_as_designed() -> None:
    facts = f.door_log_facts(
        f.log(
            "No access permission", personnel_id=None, visitor_id="v-1", credential_type="temp_key"
        ),
        visitor=f.visitor(),
    )
    diagnosis, plan = run(facts)
    assert diagnosis.cause is Cause.CLOUD_NO_ACCESS_GROUP
    assert plan.disposition == "no_fault"


@pytest.mark.parametrize(
    ("tz", "chosen"),
    [
        # Monday 23:30 UTC is already Tuesday 00:30 in Amsterdam (CET, UTC+1)
        ("Europe/Amsterdam", "ag-tue"),
        ("UTC", "ag-mon"),
    ],
)
def test_schedule_weekday_and_window_are_project_local(tz: str, chosen: str) -> None:
    late = datetime(2026, 11, 16, 23, 30, tzinfo=NOW.tzinfo)
    groups = (
        f.access_group("ag-mon", ("d-1",), weekdays=(1,), start="23:00", end="23:59"),
        f.access_group("ag-tue", ("d-1",), weekdays=(2,), start="00:00", end="01:00"),
    )
    facts = groups_facts(*groups, tz=tz, at=late)
    _, plan = run(facts, now=late + timedelta(minutes=5))
    assert plan.disposition == "remedy"
    assert plan.actions[0].params["access_group_id"] == chosen


@pytest.mark.parametrize(
    ("status", "cause"),
    [("expired", Cause.CLOUD_LICENSE_INACTIVE), ("active", Cause.CLOUD_NO_ACCESS_GROUP)],
)
def test_ambiguous_detail_checks_the_license_first(status: str, cause: Cause) -> None:
    expires = NOW - timedelta(days=1) if status == "expired" else None
    facts = groups_facts(
        f.access_group("ag-a", ("d-1",)),
        detail="No access permission or door license is not available",
        doors=(f.door(status=status, expires_at=expires),),
    )
    diagnosis, plan = run(facts)
    assert diagnosis.cause is cause
    expected = Remedy.RENEW_LICENSE if status == "expired" else Remedy.ADD_TO_ACCESS_GROUP
    assert [a.remedy for a in plan.actions] == [expected]


def test_ambiguous_detail_active_license_past_its_expiry_counts_as_inactive() -> None:
    facts = groups_facts(
        detail="No access permission or door license is not available",
        doors=(f.door(status="active", expires_at=NOW - timedelta(seconds=1)),),
    )
    diagnosis, _ = run(facts)
    assert diagnosis.cause is Cause.CLOUD_LICENSE_INACTIVE


# --------------------------------------------------------------------------- visitors


def visitor_facts(**kw: Any) -> DoorLogFacts:
    return f.door_log_facts(
        f.log(
            "Not within the valid period",
            personnel_id=None,
            visitor_id="v-1",
            credential_type="temp_key",
            credential_value="QR-1",
        ),
        **kw,
    )


def test_valid_visit_gets_a_temp_key_that_never_outlives_it() -> None:
    ends = NOW + timedelta(hours=3, milliseconds=700)
    key = f.temp_key(door_ids=("d-1", "d-2"))
    facts = visitor_facts(visitor=f.visitor(keys=(key,)), visit=f.visit(ends_at=ends))
    diagnosis, plan = run(facts)
    assert diagnosis.cause is Cause.CLOUD_VISITOR_EXPIRED
    assert plan.disposition == "remedy"
    (action,) = plan.actions
    assert action.remedy is Remedy.CREATE_TEMP_KEY
    assert action.target == "p-1/v-1"
    assert dict(action.params) == {
        "project_id": "p-1",
        "visitor_id": "v-1",
        "door_ids": ["d-1", "d-2"],
        "start_time": f.ts(NOW),
        "finish_time": f.ts(ends),
    }
    assert action.params["finish_time"] <= ends.timestamp()
    assert diagnosis.evidence["visit_status"] == "active"


def test_new_temp_key_never_opens_more_doors_than_the_visitor_had() -> None:
    # the presented key never listed d-1: the new key keeps the key's doors only
    key = f.temp_key(door_ids=("d-2",))
    facts = visitor_facts(visitor=f.visitor(keys=(key,)), visit=f.visit())
    _, plan = run(facts)
    assert plan.actions[0].params["door_ids"] == ["d-2"]


@pytest.mark.parametrize(
    "facts_kw",
    [
        pytest.param({"visitor": f.visitor(), "visit": f.visit(status="ended")}, id="ended"),
        pytest.param(
            {"visitor": f.visitor(), "visit": f.visit(status="cancelled")}, id="cancelled"
        ),
        pytest.param(
            {"visitor": f.visitor(), "visit": f.visit(ends_at=NOW - timedelta(minutes=1))},
            id="over",
        ),
        pytest.param(
            {
                "visitor": f.visitor(),
                "visit": f.visit(status="scheduled", starts_at=NOW + timedelta(hours=1)),
            },
            id="not_started",
        ),
        pytest.param({"visitor": f.visitor(), "visit": None}, id="visit_unknown"),
        pytest.param({"visitor": f.visitor(aca_visit_id=None)}, id="no_aca_link"),
        pytest.param({}, id="visitor_unknown"),
    ],
)
def test_visit_not_valid_is_refused_as_designed(facts_kw: dict[str, Any]) -> None:
    diagnosis, plan = run(visitor_facts(**facts_kw))
    assert diagnosis.cause is Cause.CLOUD_VISITOR_EXPIRED
    assert plan.disposition == "no_fault"
    assert plan.actions == ()


def test_visitor_holding_a_valid_key_is_already_resolved() -> None:
    fresh = f.temp_key(
        key_id="tk-2",
        code="QR-2",
        start=NOW - timedelta(minutes=1),
        finish=NOW + timedelta(hours=1),
        expired=False,
    )
    facts = visitor_facts(visitor=f.visitor(keys=(f.temp_key(), fresh)), visit=f.visit())
    _, plan = run(facts)
    assert plan.disposition == "no_fault"
    assert plan.reason.startswith("already resolved")


# --------------------------------------------------------------------------- holidays


def holiday_facts(*holidays: Any) -> DoorLogFacts:
    project = f.project_facts(holidays=holidays)
    return f.door_log_facts(f.log("No access permission during holidays"), project=project)


@pytest.mark.parametrize(
    "hours",
    [
        pytest.param({"h-1": ("08:00", "12:00")}, id="by_id"),
        pytest.param({"founders day": ("08:00", "12:00")}, id="by_name"),
    ],
)
def test_configured_holiday_gets_its_working_hours(hours: dict[str, tuple[str, str]]) -> None:
    diagnosis, plan = run(holiday_facts(f.holiday()), PlanPolicy(holiday_hours=hours))
    assert diagnosis.cause is Cause.CLOUD_HOLIDAY_RESTRICTION
    assert diagnosis.evidence["holiday_ids"] == ["h-1"]
    assert plan.disposition == "remedy"
    (action,) = plan.actions
    assert action.remedy is Remedy.SET_HOLIDAY_HOURS
    assert action.target == "p-1/h-1"
    assert dict(action.params) == {
        "project_id": "p-1",
        "holiday_id": "h-1",
        "enabled": True,
        "start_time": "08:00",
        "end_time": "12:00",
    }


def test_holiday_not_in_config_needs_support() -> None:
    diagnosis, plan = run(
        holiday_facts(f.holiday()), PlanPolicy(holiday_hours={"h-2": ("08:00", "12:00")})
    )
    assert diagnosis.cause is Cause.CLOUD_HOLIDAY_RESTRICTION
    assert plan.disposition == "needs_human"
    assert plan.actions == ()
    assert "Access Control > Holiday" in text(plan)
    assert "Founders Day (h-1)" in text(plan)


def test_configured_hours_in_force_mean_the_refusal_was_outside_them() -> None:
    # 11:00 local is outside 06:00-08:00: the configured hours are set and refused as designed
    policy = PlanPolicy(holiday_hours={"h-1": ("06:00", "08:00")})
    _, plan = run(holiday_facts(f.holiday(enabled=True, start="06:00", end="08:00")), policy)
    assert plan.disposition == "no_fault"


@pytest.mark.parametrize(("start", "end"), [("07:00", "10:30"), ("06:00", "08:00")])
def test_hours_a_person_set_are_never_replaced(start: str, end: str) -> None:
    # 10:55 local is outside the hours a person set; the configured 08:00-18:00 would replace
    # them (shorten or move them): doorfix leaves them and tells support what it found
    policy = PlanPolicy(holiday_hours={"h-1": ("08:00", "18:00")})
    _, plan = run(holiday_facts(f.holiday(enabled=True, start=start, end=end)), policy)
    assert plan.disposition == "needs_human"
    assert plan.actions == ()
    assert f"already has working hours {start}-{end} enabled, set by a person" in text(plan)
    assert "at 10:55 on 2026-11-16" in text(plan)


def test_holiday_on_another_date_is_already_resolved() -> None:
    _, plan = run(holiday_facts(f.holiday(on=date(2026, 12, 25))))
    assert plan.disposition == "no_fault"
    assert plan.reason.startswith("already resolved")


# --------------------------------------------------------------------------- empty Detail

OLD: dict[str, Any] = {"firmware": "108.30.11.100"}

INFER_ROWS = [
    # id, log overrides, project overrides, facts overrides, cause
    ("credential", {"personnel_id": None}, {}, {}, Cause.CLOUD_CREDENTIAL_UNASSIGNED),
    (
        "license",
        {},
        {"doors": [f.door(status="expired", expires_at=NOW - timedelta(days=1))]},
        {},
        Cause.CLOUD_LICENSE_INACTIVE,
    ),
    (
        "visitor_validity",
        {
            "personnel_id": None,
            "visitor_id": "v-1",
            "credential_type": "temp_key",
            "credential_value": "QR-1",
        },
        {},
        {"visitor": f.visitor(), "visit": f.visit()},
        Cause.CLOUD_VISITOR_EXPIRED,
    ),
    (
        "holiday",
        {},
        {"holidays": (f.holiday(),)},
        {"personnel": f.personnel()},
        Cause.CLOUD_HOLIDAY_RESTRICTION,
    ),
    ("access_group", {}, {}, {"personnel": f.personnel()}, Cause.CLOUD_NO_ACCESS_GROUP),
    (
        "inherited_group",
        {},
        {"user_groups": (f.user_group("ug-1"),)},
        {"personnel": f.personnel(user_group_ids=("ug-1",))},
        Cause.CLOUD_INHERITED_GROUP,
    ),
    (
        "nothing_explains",
        {},
        {"groups": (f.access_group("ag-a", ("d-1",)),)},
        {"personnel": f.personnel(access_group_ids=("ag-a",))},
        Cause.UNKNOWN,
    ),
]


@pytest.mark.parametrize(
    ("log_kw", "project_kw", "facts_kw", "cause"),
    [row[1:] for row in INFER_ROWS],
    ids=[row[0] for row in INFER_ROWS],
)
def test_old_firmware_runs_the_always_verify_list(
    log_kw: dict[str, Any], project_kw: dict[str, Any], facts_kw: dict[str, Any], cause: Cause
) -> None:
    facts = f.door_log_facts(
        f.log("", **(OLD | log_kw)), project=f.project_facts(**project_kw), **facts_kw
    )
    diagnosis, plan = run(facts)
    assert diagnosis.cause is cause
    assert diagnosis.evidence["firmware_outdated"] is True
    assert diagnosis.evidence["row"] == "empty"
    last = plan.steps[-1]
    assert last.who is Who.SUPPORT
    assert "to 108.30.11.210 or later" in last.text
    if cause is Cause.UNKNOWN:
        assert plan.disposition == "needs_human"
        assert set(diagnosis.evidence["checks"].values()) == {"ok"}


def test_empty_detail_on_current_firmware_infers_without_a_firmware_step() -> None:
    facts = f.door_log_facts(f.log("", personnel_id=None))
    diagnosis, plan = run(facts)
    assert diagnosis.cause is Cause.CLOUD_CREDENTIAL_UNASSIGNED
    assert diagnosis.evidence["firmware_outdated"] is False
    assert not any("firmware" in step.text for step in plan.steps)


def test_inferred_license_cause_plans_like_its_row() -> None:
    project = f.project_facts(
        doors=[
            f.door(status="expired", expires_at=NOW - timedelta(days=1), firmware=OLD["firmware"])
        ]
    )
    facts = f.door_log_facts(f.log("", **OLD), project=project)
    diagnosis, plan = run(facts)
    assert diagnosis.cause is Cause.CLOUD_LICENSE_INACTIVE
    assert [a.remedy for a in plan.actions] == [Remedy.RENEW_LICENSE]
    assert diagnosis.evidence["checks"]["license"] == "fails"


# --------------------------------------------------------------------------- other text


def test_unknown_detail_text_is_reported_with_the_device() -> None:
    facts = f.door_log_facts(f.log("Door jammed", model="R29", firmware="29.30.10.800"))
    diagnosis, plan = run(facts)
    assert diagnosis.cause is Cause.UNKNOWN
    assert diagnosis.evidence["detail"] == "Door jammed"
    assert diagnosis.evidence["device_model"] == "R29"
    assert diagnosis.evidence["firmware"] == "29.30.10.800"
    assert plan.disposition == "needs_human"
    assert plan.actions == ()
    assert whos(plan) == {Who.SUPPORT}
    assert "'Door jammed'" in text(plan)


def test_subject_names_center_person_and_door() -> None:
    diagnosis, _ = run(f.door_log_facts(f.log("Door jammed")))
    assert diagnosis.subject.as_dict() == {
        "center_id": "c-1",
        "personnel_id": "per-1",
        "door_id": "d-1",
    }


@pytest.mark.parametrize("firmware", ["¹", "29.٣0.10.712", "", "1..2", "v29.30"])
def test_firmware_that_is_not_plain_dotted_digits_is_not_a_version(firmware: str) -> None:
    from doorfix.playbooks.door_logs.playbook import parse_version

    assert parse_version(firmware) is None
