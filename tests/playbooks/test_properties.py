"""Properties: whatever the vendors send, a diagnosis is a Cause and a plan is well formed."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import factories as f
from hypothesis import given, settings
from hypothesis import strategies as st

from doorfix.playbooks import license_renewal
from doorfix.playbooks.aca import playbook as aca_rejections
from doorfix.playbooks.door_logs import playbook as door_logs
from doorfix.playbooks.facts import DoorLicenseFacts, DoorLogFacts, LockFacts
from doorfix.playbooks.policy import PlanPolicy
from doorfix.playbooks.types import Cause, Diagnosis, Plan

NOW = f.NOW
KNOWN_DETAILS = [
    "Invalid Card",
    "Invalid PIN",
    "Invalid QR Code",
    "Door license expired or not activated",
    "No access permission",
    "No access permission or door license is not available",
    "Not within the valid period",
    "No access permission during holidays",
    "",
]
DOORS = ["d-1", "d-2", "d-9"]
HHMM = st.sampled_from(["00:00", "06:30", "09:00", "12:00", "17:45", "23:59"])
offsets = st.integers(min_value=-10 * 86_400, max_value=10 * 86_400).map(
    lambda s: NOW + timedelta(seconds=s)
)
doors_subset = st.lists(st.sampled_from(DOORS), max_size=3, unique=True).map(tuple)
policies = st.builds(
    PlanPolicy,
    renewals_enabled=st.booleans(),
    renewal_months=st.integers(min_value=1, max_value=12),
    holiday_hours=st.sampled_from(
        [{}, {"h-1": ("08:00", "12:00")}, {"Founders Day": ("00:00", "23:59")}]
    ),
)


def _json_safe(diagnosis: Diagnosis, plan: Plan) -> None:
    json.dumps(dict(diagnosis.evidence))
    for action in plan.actions:
        json.dumps(dict(action.params))


def _check(diagnosis: Diagnosis, plan: Plan) -> None:
    assert isinstance(diagnosis.cause, Cause)
    assert plan.disposition in ("remedy", "needs_human", "no_fault", "deferred")
    assert (plan.disposition == "remedy") == bool(plan.actions)
    if plan.disposition == "needs_human":
        assert plan.steps
    _json_safe(diagnosis, plan)


@st.composite
def door_log_facts(draw: st.DrawFn) -> DoorLogFacts:
    groups = draw(
        st.lists(
            st.builds(
                f.access_group,
                st.sampled_from(["ag-1", "ag-2", "ag-3"]),
                doors_subset,
                weekdays=st.lists(st.integers(1, 7), min_size=1, unique=True).map(tuple),
                start=HHMM,
                end=HHMM,
            ),
            max_size=3,
        )
    )
    holidays = draw(
        st.lists(
            st.builds(
                f.holiday,
                on=st.sampled_from([date(2026, 11, 15), date(2026, 11, 16), date(2026, 11, 17)]),
                enabled=st.booleans(),
                start=HHMM,
                end=HHMM,
                door_ids=doors_subset,
            ),
            max_size=2,
        ).map(tuple)
    )
    door_list = draw(
        st.lists(
            st.builds(
                f.door,
                st.sampled_from(DOORS),
                status=st.sampled_from(["active", "expired", "inactivated"]),
                expires_at=st.none() | offsets,
                auto_renew=st.booleans(),
            ),
            max_size=3,
        )
    )
    inventories = (
        f.inventory(door_ids=draw(doors_subset)),
        f.inventory("inv-2", "Lounge", lock_ids=(), door_ids=draw(doors_subset)),
    )
    project = f.project_facts(
        payment=draw(st.booleans()),
        doors=door_list,
        groups=groups,
        user_groups=(f.user_group("ug-1", ("ag-1",)),),
        holidays=holidays,
        inventories=inventories,
        tz=draw(st.sampled_from(["Europe/Amsterdam", "UTC", "America/New_York", "Not/AZone", ""])),
    )
    credential_type = draw(st.sampled_from(["card", "pin", "face", "temp_key", "ble", "nfc", "qr"]))
    value = draw(st.sampled_from(["CARD-1", "****", "QR-1", ""]) | st.text(max_size=8))
    logs = draw(
        st.lists(
            st.builds(
                f.log,
                st.sampled_from(KNOWN_DETAILS) | st.text(max_size=40),
                log_id=st.integers(1, 10**9),
                at=offsets,
                door_id=st.sampled_from(DOORS),
                model=st.sampled_from(["A08", "EC33", "R20", "R29", "X915V2", "??"]),
                firmware=st.sampled_from(["108.30.11.210", "1.2", "x.y", ""])
                | st.text(max_size=12),
                credential_type=st.just(credential_type),
                credential_value=st.just(value),
                personnel_id=st.sampled_from([None, "per-1"]),
                visitor_id=st.sampled_from([None, "v-1"]),
            ),
            min_size=1,
            max_size=3,
        ).map(tuple)
    )
    people = st.builds(
        f.personnel,
        st.sampled_from(["per-1", "per-2"]),
        external_id=st.sampled_from([None, "u-1", "u-2"]),
        credentials=st.lists(st.tuples(st.just(credential_type), st.just(value)), max_size=1),
        access_group_ids=st.lists(st.sampled_from(["ag-1", "ag-2"]), unique=True).map(tuple),
        user_group_ids=st.lists(st.sampled_from(["ug-1", "ug-404"]), unique=True).map(tuple),
    )
    fields: dict[str, Any] = {
        "personnel": draw(st.none() | people),
        "credential_owners": tuple(draw(st.lists(people, max_size=2))),
        "aca_user": draw(
            st.none()
            | st.builds(
                f.aca_user,
                cloud_personnel_id=st.sampled_from([None, "per-1", "per-2"]),
                tags=st.lists(
                    st.tuples(st.just(value), st.sampled_from(["assigned", "lost"])), max_size=1
                ),
                company_id=st.sampled_from(["co-1", "co-2"]),
            )
        ),
        "aca_personnel": draw(st.none() | people),
        "bookings": tuple(
            draw(
                st.lists(
                    st.builds(
                        f.booking,
                        st.sampled_from(["inv-714", "inv-2", "inv-404"]),
                        status=st.sampled_from(["active", "ended", "cancelled"]),
                        starts_at=offsets,
                        ends_at=offsets,
                    ),
                    max_size=3,
                )
            )
        ),
        "visitor": draw(
            st.none()
            | st.builds(
                f.visitor,
                aca_visit_id=st.sampled_from([None, "vis-1", "vis-2"]),
                keys=st.lists(
                    st.builds(f.temp_key, door_ids=doors_subset, start=offsets, finish=offsets),
                    max_size=2,
                ).map(tuple),
            )
        ),
        "visit": draw(
            st.none()
            | st.builds(
                f.visit,
                status=st.sampled_from(["scheduled", "active", "ended", "cancelled"]),
                starts_at=offsets,
                ends_at=offsets,
            )
        ),
    }
    return f.door_log_facts(*logs, project=project, **fields)


@settings(max_examples=200, deadline=None)
@given(facts=door_log_facts(), policy=policies, now=offsets)
def test_door_logs_never_raise_and_always_name_a_cause(
    facts: DoorLogFacts, policy: PlanPolicy, now: Any
) -> None:
    diagnosis = door_logs.diagnose(facts, now)
    _check(diagnosis, door_logs.plan(diagnosis, facts, policy, now))
    # pure: the same facts and time give the same answer
    assert door_logs.diagnose(facts, now) == diagnosis


@settings(max_examples=200, deadline=None)
@given(detail=st.text(), value=st.text(max_size=10))
def test_any_detail_text_is_diagnosed(detail: str, value: str) -> None:
    facts = f.door_log_facts(f.log(detail, credential_value=value))
    diagnosis = door_logs.diagnose(facts, NOW)
    _check(diagnosis, door_logs.plan(diagnosis, facts, PlanPolicy(), NOW))


@st.composite
def lock_facts(draw: st.DrawFn) -> LockFacts:
    names = st.sampled_from(["714", "714ResCo-work01", "7140", "71", "Lounge", ""])
    inventories = (
        f.inventory("inv-a", draw(names), lock_ids=draw(st.sampled_from([("l-1",), ()]))),
        f.inventory("inv-b", draw(names), lock_ids=draw(st.sampled_from([("l-1",), ("l-9",)]))),
    )
    keys = st.builds(
        f.mobile_key,
        st.sampled_from(["mk-1", "mk-2"]),
        state=st.sampled_from(["active", "revoked", "corrupted"]),
        issued_at=offsets,
        last_error=st.sampled_from([None, "generation_failed"]),
    )
    events = st.builds(
        f.event,
        st.sampled_from(["tag_rejected", "mkey_rejected", "tag_granted"]),
        event_id=st.sampled_from(["e-1", "e-2"]),
        credential=st.sampled_from(["CARD-1", "CARD-2", "mk-1", "mk-2"]),
        at=offsets,
        lock_id=st.sampled_from(["l-1", "l-2"]),
    )
    lock = st.builds(
        f.lock,
        online=st.booleans(),
        link=st.sampled_from(["attached", "attached_pending", "detached", "detached_pending"]),
        privacy_mode=st.booleans(),
        iq_online=st.booleans(),
        revision=st.sampled_from([1, 2]),
        last_event=st.none() | offsets,
        reference=names,
    )
    return f.lock_facts(
        events=tuple(draw(st.lists(events, max_size=3))),
        released_at=draw(offsets),
        user=draw(
            st.builds(
                f.aca_user,
                tags=st.lists(
                    st.tuples(
                        st.sampled_from(["CARD-1", "CARD-2"]), st.sampled_from(["assigned", "lost"])
                    ),
                    max_size=2,
                ),
            )
        ),
        accesses=tuple(
            draw(
                st.lists(
                    st.builds(
                        f.access,
                        st.sampled_from(["l-1", "l-2"]),
                        state=st.sampled_from(["active", "disabled"]),
                        disabled_by=st.sampled_from([None, "access_matrix", "booking_ended"]),
                    ),
                    max_size=2,
                )
            )
        ),
        bookings=tuple(
            draw(
                st.lists(
                    st.builds(
                        f.booking,
                        st.sampled_from(["inv-a", "inv-b", "inv-404"]),
                        company_id=st.sampled_from(["co-1", "co-2"]),
                        status=st.sampled_from(["active", "ended", "cancelled"]),
                        starts_at=offsets,
                        ends_at=offsets,
                    ),
                    max_size=3,
                )
            )
        ),
        inventories=inventories,
        mobile_keys=tuple(draw(st.lists(keys, max_size=3))),
        lock=draw(st.none() | lock),
        iq=draw(
            st.none() | st.builds(f.iq, online=st.booleans(), revision=st.sampled_from([1, 2]))
        ),
        larry=draw(
            st.none()
            | st.builds(
                f.larry,
                st.sampled_from(["granted", "denied"]),
                st.sampled_from([None, "no_access_group", "suspended", "blocked"]),
            )
        ),
        entries=tuple(
            draw(
                st.lists(
                    st.builds(
                        f.entry,
                        category=st.sampled_from(["lock_opened", "lock_rejected"]),
                        by=st.sampled_from(["tag", "mkey", "pin", "inside_handle"]),
                        at=offsets,
                    ),
                    max_size=2,
                )
            )
        ),
    )


@settings(max_examples=200, deadline=None)
@given(facts=lock_facts(), policy=policies, now=offsets)
def test_aca_rejections_never_raise_and_always_name_a_cause(
    facts: LockFacts, policy: PlanPolicy, now: Any
) -> None:
    diagnosis = aca_rejections.diagnose(facts, now, policy)
    plan = aca_rejections.plan(diagnosis, facts, policy, now)
    _check(diagnosis, plan)
    if plan.disposition == "deferred":
        assert plan.not_before is not None
        assert plan.not_before > now


@settings(max_examples=100, deadline=None)
@given(
    door=st.builds(
        f.door,
        status=st.sampled_from(["active", "expired", "inactivated"]),
        expires_at=st.none() | offsets,
        auto_renew=st.booleans(),
    ),
    payment=st.booleans(),
    policy=policies,
)
def test_license_renewal_never_raises(door: Any, payment: bool, policy: PlanPolicy) -> None:
    facts = DoorLicenseFacts(door, f.project_info(payment=payment))
    diagnosis = license_renewal.diagnose(facts, NOW, policy)
    if diagnosis is not None:
        _check(diagnosis, license_renewal.plan(diagnosis, facts, policy, NOW))
