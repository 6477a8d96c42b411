"""aca-rejections: the order of checks, every cause, and the exact remedy calls."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import factories as f
import pytest

from doorfix.playbooks.aca import playbook as aca_rejections
from doorfix.playbooks.aca.playbook import room_label, same_room
from doorfix.playbooks.facts import LockFacts
from doorfix.playbooks.policy import PlanPolicy
from doorfix.playbooks.types import Cause, Diagnosis, Plan, Remedy, Who

NOW = f.NOW
POLICY = PlanPolicy()
TAG = (f.event(),)
MKEY = (f.event("mkey_rejected", credential="mk-1"),)


def run(
    facts: LockFacts, policy: PlanPolicy = POLICY, now: datetime = NOW
) -> tuple[Diagnosis, Plan]:
    diagnosis = aca_rejections.diagnose(facts, now, policy)
    return diagnosis, aca_rejections.plan(diagnosis, facts, policy, now)


def whos(plan: Plan) -> set[Who]:
    return {step.who for step in plan.steps}


def text(plan: Plan) -> str:
    return "\n".join(step.text for step in plan.steps)


# --------------------------------------------------------------------------- room labels


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("714", "714ResCo-work01", True),
        ("714", "714", True),
        ("714-B", "714ResCo-work01", True),
        ("714", "7140", False),
        ("71", "714", False),
        ("714", "715ResCo-work01", False),
        ("A714", "a714 cowork", True),
        ("Lounge", "Lounge cowork", False),
        ("", "714", False),
    ],
)
def test_same_room_label(a: str, b: str, same: bool) -> None:
    assert same_room(a, b) is same
    assert same_room(b, a) is same


def test_room_label_reads_the_leading_number() -> None:
    assert room_label("714ResCo-work01") == "714"
    assert room_label("  7140 east") == "7140"
    assert room_label("Suite") is None


# --------------------------------------------------------------------------- the event path

MISMATCH_INVENTORIES = (
    f.inventory(),
    f.inventory("inv-cw", "714ResCo-work01", lock_ids=("l-9",), door_ids=()),
)

EVENT_ROWS: list[Any] = [
    # id, events, facts overrides, cause, disposition
    ("no_booking", TAG, {"accesses": (), "bookings": ()}, Cause.ACA_NO_BOOKING, "no_fault"),
    (
        "booking_ended",
        TAG,
        {"accesses": (f.access(state="disabled", disabled_by="booking_ended"),), "bookings": ()},
        Cause.ACA_NO_BOOKING,
        "no_fault",
    ),
    (
        "matrix_disabled",
        TAG,
        {"accesses": (f.access(state="disabled", disabled_by="access_matrix"),)},
        Cause.ACA_ACCESS_DISABLED,
        "no_fault",
    ),
    (
        "booking_mismatch",
        TAG,
        {
            "accesses": (),
            "bookings": (f.booking("inv-cw"),),
            "inventories": MISMATCH_INVENTORIES,
        },
        Cause.ACA_BOOKING_MISMATCH,
        "needs_human",
    ),
    (
        "clp_out_of_sync",
        TAG,
        {"larry": f.larry("denied", "no_access_group")},
        Cause.ACA_CLP_OUT_OF_SYNC,
        "remedy",
    ),
    (
        "clp_refuses_suspended_user",
        TAG,
        {"larry": f.larry("denied", "suspended")},
        Cause.ACA_CLP_OUT_OF_SYNC,
        "needs_human",
    ),
    ("iq_out_of_sync", TAG, {}, Cause.ACA_IQ_OUT_OF_SYNC, "remedy"),
    (
        "mkey_generation_failed",
        MKEY,
        {"mobile_keys": (f.mobile_key(last_error="generation_failed"),)},
        Cause.ACA_MKEY_GENERATION_FAILED,
        "remedy",
    ),
    (
        "mkey_revoked",
        MKEY,
        {"mobile_keys": (f.mobile_key(state="revoked"),)},
        Cause.ACA_MKEY_REVOKED,
        "needs_human",
    ),
    (
        "mkey_corrupted",
        MKEY,
        {"mobile_keys": (f.mobile_key(state="corrupted"),)},
        Cause.ACA_MKEY_CORRUPTED,
        "needs_human",
    ),
    (
        "new_mkey_still_fails",
        (f.event("mkey_rejected", credential="mk-2"),),
        {
            "mobile_keys": (
                f.mobile_key("mk-1", state="revoked", issued_at=NOW - timedelta(days=9)),
                f.mobile_key("mk-2", issued_at=NOW - timedelta(hours=2)),
            )
        },
        Cause.ACA_MKEY_GENERATION_FAILED,
        "remedy",
    ),
    # "a new key still fails" has a time bound: a key replaced long ago is just a key
    (
        "key_replaced_400_days_ago_goes_on_to_the_iq",
        (f.event("mkey_rejected", credential="mk-2"),),
        {
            "mobile_keys": (
                f.mobile_key("mk-1", state="revoked", issued_at=NOW - timedelta(days=401)),
                f.mobile_key("mk-2", issued_at=NOW - timedelta(days=400)),
            )
        },
        Cause.ACA_IQ_OUT_OF_SYNC,
        "remedy",
    ),
    (
        "key_15_days_old_is_past_the_window",
        (f.event("mkey_rejected", credential="mk-2"),),
        {
            "mobile_keys": (
                f.mobile_key("mk-1", state="revoked", issued_at=NOW - timedelta(days=20)),
                f.mobile_key("mk-2", issued_at=NOW - timedelta(days=15)),
            )
        },
        Cause.ACA_IQ_OUT_OF_SYNC,
        "remedy",
    ),
    (
        "key_replaced_long_ago_and_an_offline_iq_is_still_found",
        (f.event("mkey_rejected", credential="mk-2"),),
        {
            "mobile_keys": (
                f.mobile_key("mk-1", state="revoked", issued_at=NOW - timedelta(days=401)),
                f.mobile_key("mk-2", issued_at=NOW - timedelta(days=400)),
            ),
            "lock": f.lock(iq_online=False),
            "iq": f.iq(online=False),
        },
        Cause.ACA_LOCK_OFFLINE,
        "needs_human",
    ),
    (
        # the old key still failed after the new one was issued: not its replacement
        "key_issued_before_the_old_key_failed",
        (
            f.event("mkey_rejected", event_id="e-0", credential="mk-1"),
            f.event("mkey_rejected", credential="mk-2", at=NOW - timedelta(minutes=5)),
        ),
        {
            "mobile_keys": (
                f.mobile_key("mk-1", state="revoked", issued_at=NOW - timedelta(days=9)),
                f.mobile_key("mk-2", issued_at=NOW - timedelta(hours=2)),
            )
        },
        Cause.ACA_IQ_OUT_OF_SYNC,
        "remedy",
    ),
    (
        "newest_key_cannot_be_generated",
        MKEY,
        {
            "mobile_keys": (
                f.mobile_key("mk-1", state="revoked", issued_at=NOW - timedelta(days=9)),
                f.mobile_key("mk-2", last_error="generation_failed"),
            )
        },
        Cause.ACA_MKEY_GENERATION_FAILED,
        "remedy",
    ),
    (
        "healthy_mkey_goes_on_to_the_iq",
        MKEY,
        {"mobile_keys": (f.mobile_key(),)},
        Cause.ACA_IQ_OUT_OF_SYNC,
        "remedy",
    ),
    (
        "tag_event_ignores_mobile_keys",
        TAG,
        {"mobile_keys": (f.mobile_key(state="revoked"),)},
        Cause.ACA_IQ_OUT_OF_SYNC,
        "remedy",
    ),
    (
        "lost_tag_presented",
        TAG,
        {"user": f.aca_user(tags=[("CARD-1", "lost")])},
        Cause.ACA_TAG_NOT_ASSIGNED,
        "needs_human",
    ),
    # order: the presented tag is checked before any sync remedy (c1 toggle, c2 Sync Access)
    (
        "lost_tag_before_clp_toggle",
        TAG,
        {
            "user": f.aca_user(tags=[("CARD-1", "lost"), ("CARD-2", "assigned")]),
            "larry": f.larry("denied", "no_access_group"),
        },
        Cause.ACA_TAG_NOT_ASSIGNED,
        "needs_human",
    ),
    (
        "someone_elses_tag_before_iq_sync",
        (f.event(credential="CARD-9"),),
        {},
        Cause.ACA_TAG_NOT_ASSIGNED,
        "needs_human",
    ),
    (
        "lost_tag_before_disabled_access",
        TAG,
        {
            "user": f.aca_user(tags=[("CARD-1", "lost")]),
            "accesses": (f.access(state="disabled", disabled_by="access_matrix"),),
        },
        Cause.ACA_TAG_NOT_ASSIGNED,
        "needs_human",
    ),
    (
        "privacy_mode_before_iq",
        TAG,
        {"lock": f.lock(privacy_mode=True)},
        Cause.ACA_PRIVACY_MODE,
        "needs_human",
    ),
    (
        "iq_offline_before_iq_sync",
        TAG,
        {"lock": f.lock(iq_online=False), "iq": f.iq(online=False)},
        Cause.ACA_LOCK_OFFLINE,
        "needs_human",
    ),
    ("larry_unknown", TAG, {"larry": None}, Cause.UNKNOWN, "needs_human"),
    # order: access disabled wins over a Larry denial and a revoked key
    (
        "disabled_before_clp",
        MKEY,
        {
            "accesses": (f.access(state="disabled", disabled_by="access_matrix"),),
            "larry": f.larry("denied", "no_access_group"),
            "mobile_keys": (f.mobile_key(state="revoked"),),
        },
        Cause.ACA_ACCESS_DISABLED,
        "no_fault",
    ),
    # order: CLP out of sync wins over the mobile key
    (
        "clp_before_mkey",
        MKEY,
        {
            "larry": f.larry("denied", "no_access_group"),
            "mobile_keys": (f.mobile_key(state="revoked"),),
        },
        Cause.ACA_CLP_OUT_OF_SYNC,
        "remedy",
    ),
    # the event path does not run the ticket's "no recent events" check
    (
        "quiet_lock_with_event",
        TAG,
        {"lock": f.lock(last_event=None)},
        Cause.ACA_IQ_OUT_OF_SYNC,
        "remedy",
    ),
]


@pytest.mark.parametrize(
    ("events", "facts_kw", "cause", "disposition"),
    [row[1:] for row in EVENT_ROWS],
    ids=[row[0] for row in EVENT_ROWS],
)
def test_event_path(
    events: tuple[Any, ...], facts_kw: dict[str, Any], cause: Cause, disposition: str
) -> None:
    diagnosis, plan = run(f.lock_facts(events=events, **facts_kw))
    assert diagnosis.cause is cause
    assert plan.disposition == disposition
    assert diagnosis.evidence["path"] == "event"
    subject = {"center_id": "c-1", "user_id": "u-1", "lock_id": "l-1"}
    if cause is Cause.ACA_TAG_NOT_ASSIGNED:
        # one incident per presented tag: the finding names it
        subject["credential"] = events[-1].credential
        assert not plan.actions
    assert diagnosis.subject.as_dict() == subject


@pytest.mark.parametrize(
    ("tags", "credential", "aca_says"),
    [
        ([("CARD-1", "lost")], "CARD-1", "ACA marks the tag lost"),
        ([("CARD-2", "assigned")], "CARD-1", "not list the tag as an assigned tag of this user"),
    ],
)
def test_a_tag_not_assigned_is_a_security_finding_with_how_often_where_and_who(
    tags: list[tuple[str, str]], credential: str, aca_says: str
) -> None:
    events = tuple(
        f.event(event_id=f"e-{i}", credential=credential, at=NOW - timedelta(minutes=30 - i))
        for i in range(3)
    )
    facts = f.lock_facts(
        events=events, user=f.aca_user(tags=tags), larry=f.larry("denied", "no_access_group")
    )
    diagnosis, plan = run(facts)
    assert diagnosis.cause is Cause.ACA_TAG_NOT_ASSIGNED
    assert plan.disposition == "needs_human"
    assert plan.actions == ()
    body = text(plan)
    assert f"Security finding: tag {credential} was refused 3 time(s) at lock l-1" in body
    assert aca_says in body
    assert whos(plan) == {Who.SUPPORT, Who.ON_SITE}


def test_the_unassigned_tags_are_split_out_of_a_users_events_by_tag() -> None:
    user = f.aca_user(tags=[("CARD-1", "lost"), ("CARD-2", "assigned")])
    events = [
        f.event(event_id="e-1", credential="CARD-1"),
        f.event(event_id="e-2", credential="CARD-2"),
        f.event(event_id="e-3", credential="CARD-9"),
        f.event("mkey_rejected", event_id="e-4", credential="mk-1"),
        f.event(event_id="e-5", credential="CARD-1"),
    ]
    found = aca_rejections.unassigned_tag_events(user, events)
    assert {k: [e.id for e in v] for k, v in found.items()} == {
        "CARD-1": ["e-1", "e-5"],
        "CARD-9": ["e-3"],
    }


@pytest.mark.parametrize(
    ("days", "cause"), [(3, Cause.ACA_MKEY_GENERATION_FAILED), (4, Cause.ACA_IQ_OUT_OF_SYNC)]
)
def test_the_mkey_replacement_window_is_the_configured_one(days: int, cause: Cause) -> None:
    keys = (
        f.mobile_key("mk-1", state="revoked", issued_at=NOW - timedelta(days=5)),
        f.mobile_key("mk-2", issued_at=NOW - timedelta(days=days) + timedelta(minutes=10)),
    )
    facts = f.lock_facts(events=(f.event("mkey_rejected", credential="mk-2"),), mobile_keys=keys)
    policy = PlanPolicy(mkey_replacement_window=timedelta(days=3))
    assert run(facts, policy)[0].cause is cause


@pytest.mark.parametrize(
    ("released_ago", "cause"),
    [
        (timedelta(hours=24) - timedelta(seconds=1), Cause.ACA_TOO_EARLY),
        (timedelta(hours=24), Cause.ACA_IQ_OUT_OF_SYNC),
        (timedelta(hours=24, seconds=1), Cause.ACA_IQ_OUT_OF_SYNC),
    ],
)
def test_too_early_boundary(released_ago: timedelta, cause: Cause) -> None:
    released = NOW - released_ago
    diagnosis, plan = run(f.lock_facts(events=TAG, released_at=released))
    assert diagnosis.cause is cause
    if cause is Cause.ACA_TOO_EARLY:
        assert plan.disposition == "deferred"
        assert plan.not_before == released + timedelta(hours=24)
        assert plan.actions == ()


def test_too_early_uses_the_configured_grace_and_wins_over_everything() -> None:
    policy = PlanPolicy(release_grace=timedelta(hours=2))
    released = NOW - timedelta(hours=1)
    facts = f.lock_facts(events=TAG, released_at=released, accesses=(), bookings=())
    diagnosis, plan = run(facts, policy)
    assert diagnosis.cause is Cause.ACA_TOO_EARLY
    assert plan.not_before == released + timedelta(hours=2)
    diagnosis, _ = run(facts, policy, now=NOW + timedelta(hours=1))
    assert diagnosis.cause is Cause.ACA_NO_BOOKING


def test_clp_out_of_sync_toggles_the_access_matrix() -> None:
    facts = f.lock_facts(events=TAG, larry=f.larry("denied", "no_access_group"))
    diagnosis, plan = run(facts)
    assert diagnosis.evidence["aca_access"] == "active"
    assert diagnosis.evidence["larry_access"] == "denied"
    assert diagnosis.evidence["larry_reason"] == "no_access_group"
    (action,) = plan.actions
    assert action.remedy is Remedy.TOGGLE_ACCESS_MATRIX
    assert action.system == "aca"
    assert action.target == "u-1/l-1"
    assert dict(action.params) == {"user_id": "u-1", "lock_id": "l-1"}


def test_iq_out_of_sync_syncs_the_lock_collection_at_the_center_site() -> None:
    diagnosis, plan = run(f.lock_facts(events=TAG))
    assert diagnosis.evidence["larry_access"] == "granted"
    (action,) = plan.actions
    assert action.remedy is Remedy.SYNC_ACCESS
    assert action.system == "clp"
    assert action.target == "s-1/col-1"
    assert dict(action.params) == {"site_id": "s-1", "collection_id": "col-1"}


def test_iq_out_of_sync_without_a_clp_lock_needs_support() -> None:
    _, plan = run(f.lock_facts(events=TAG, lock=None, iq=None))
    assert plan.disposition == "needs_human"
    assert plan.actions == ()


@pytest.mark.parametrize(
    ("keys", "events", "key_id"),
    [
        ((f.mobile_key(last_error="generation_failed"),), MKEY, "mk-1"),
        (
            (
                f.mobile_key("mk-1", state="revoked", issued_at=NOW - timedelta(days=9)),
                f.mobile_key("mk-2", issued_at=NOW - timedelta(hours=2)),
            ),
            (f.event("mkey_rejected", credential="mk-2"),),
            "mk-2",
        ),
    ],
)
def test_mkey_generation_failure_is_escalated_to_vendor_support(
    keys: tuple[Any, ...], events: tuple[Any, ...], key_id: str
) -> None:
    diagnosis, plan = run(f.lock_facts(events=events, mobile_keys=keys))
    assert diagnosis.cause is Cause.ACA_MKEY_GENERATION_FAILED
    (action,) = plan.actions
    assert action.remedy is Remedy.ESCALATE
    assert action.system is None
    assert action.target == "u-1/l-1"
    assert set(action.params) == {"reason"}
    assert f"key {key_id}" in action.params["reason"]
    assert whos(plan) == {Who.VENDOR_SUPPORT}


@pytest.mark.parametrize("state", ["revoked", "corrupted"])
def test_revoked_or_corrupted_mkey_asks_the_user_to_reinstall(state: str) -> None:
    diagnosis, plan = run(f.lock_facts(events=MKEY, mobile_keys=(f.mobile_key(state=state),)))
    assert diagnosis.cause.value == f"aca.mkey_{state}"
    assert diagnosis.evidence["key_id"] == "mk-1"
    assert plan.actions == ()
    assert plan.steps[0].who is Who.USER
    assert "Reinstall the app" in plan.steps[0].text


def test_booking_mismatch_names_both_inventories() -> None:
    facts = f.lock_facts(
        events=TAG, accesses=(), bookings=(f.booking("inv-cw"),), inventories=MISMATCH_INVENTORIES
    )
    diagnosis, plan = run(facts)
    assert diagnosis.cause is Cause.ACA_BOOKING_MISMATCH
    assert diagnosis.evidence["booked_inventories"] == ["714ResCo-work01 (inv-cw)"]
    assert diagnosis.evidence["lock_inventories"] == ["714 (inv-714)"]
    assert diagnosis.evidence["label"] == "714"
    assert whos(plan) == {Who.SUPPORT}
    assert "assign lock l-1 to the booked inventory" in text(plan)
    assert "inventory 714ResCo-work01 (inv-cw) (room label 714)" in text(plan)


@pytest.mark.parametrize(
    ("lock_room", "booked_room", "cause"),
    [
        ("714", "714ResCo-work01", Cause.ACA_BOOKING_MISMATCH),
        ("714", "7140", Cause.ACA_NO_BOOKING),
        ("71", "714", Cause.ACA_NO_BOOKING),
        ("714ResCo-work01", "714", Cause.ACA_BOOKING_MISMATCH),
    ],
)
def test_booking_mismatch_needs_the_same_room_label(
    lock_room: str, booked_room: str, cause: Cause
) -> None:
    inventories = (
        f.inventory("inv-a", lock_room),
        f.inventory("inv-b", booked_room, lock_ids=("l-9",), door_ids=()),
    )
    facts = f.lock_facts(
        events=TAG, accesses=(), bookings=(f.booking("inv-b"),), inventories=inventories
    )
    assert run(facts)[0].cause is cause


def test_mismatch_ignores_inactive_bookings_and_other_companies() -> None:
    bookings = (
        f.booking("inv-cw", status="ended"),
        f.booking("inv-cw", booking_id="b-2", company_id="co-2"),
    )
    facts = f.lock_facts(
        events=TAG, accesses=(), bookings=bookings, inventories=MISMATCH_INVENTORIES
    )
    assert run(facts)[0].cause is Cause.ACA_NO_BOOKING


def test_lock_in_no_inventory_is_matched_by_its_clp_reference() -> None:
    inventories = (f.inventory("inv-cw", "714ResCo-work01", lock_ids=("l-9",), door_ids=()),)
    facts = f.lock_facts(
        events=TAG,
        accesses=(),
        bookings=(f.booking("inv-cw"),),
        inventories=inventories,
        lock=f.lock(reference="714 entrance"),
    )
    assert run(facts)[0].cause is Cause.ACA_BOOKING_MISMATCH


# --------------------------------------------------------------------------- the ticket path

TICKET_ROWS: list[Any] = [
    # id, facts overrides, cause, expected offline reason (or None)
    # a user whose only tag is lost: the premise fails before any Sync Access is planned
    (
        "only_a_lost_tag",
        {"user": f.aca_user(tags=[("CARD-1", "lost")])},
        Cause.ACA_TAG_NOT_ASSIGNED,
        None,
    ),
    ("no_tag_at_all", {"user": f.aca_user(tags=[])}, Cause.ACA_TAG_NOT_ASSIGNED, None),
    (
        "iq_offline",
        {"lock": f.lock(iq_online=False), "iq": f.iq(online=False)},
        Cause.ACA_LOCK_OFFLINE,
        "iq_offline",
    ),
    ("lock_offline", {"lock": f.lock(online=False)}, Cause.ACA_LOCK_OFFLINE, "lock_offline"),
    (
        "iq1_half_connected",
        {"lock": f.lock(link="attached_pending", revision=1), "iq": f.iq(revision=1)},
        Cause.ACA_LOCK_OFFLINE,
        "half_connected",
    ),
    ("detached", {"lock": f.lock(link="detached")}, Cause.ACA_LOCK_OFFLINE, "link_detached"),
    (
        "never_reported",
        {"lock": f.lock(last_event=None)},
        Cause.ACA_LOCK_OFFLINE,
        "no_recent_events",
    ),
    (
        "quiet_for_two_days",
        {"lock": f.lock(last_event=NOW - timedelta(days=2))},
        Cause.ACA_LOCK_OFFLINE,
        "no_recent_events",
    ),
    (
        "recent_entry_counts_as_life",
        {"lock": f.lock(last_event=NOW - timedelta(days=2)), "entries": (f.entry(),)},
        Cause.ACA_IQ_OUT_OF_SYNC,
        None,
    ),
    ("privacy_mode", {"lock": f.lock(privacy_mode=True)}, Cause.ACA_PRIVACY_MODE, None),
    (
        "booking_mismatch",
        {"accesses": (), "bookings": (f.booking("inv-cw"),), "inventories": MISMATCH_INVENTORIES},
        Cause.ACA_BOOKING_MISMATCH,
        None,
    ),
    # the A checks run first: a dead lock is reported even when access is also disabled
    (
        "a_checks_before_the_chain",
        {
            "lock": f.lock(online=False),
            "accesses": (f.access(state="disabled", disabled_by="access_matrix"),),
        },
        Cause.ACA_LOCK_OFFLINE,
        "lock_offline",
    ),
    (
        "offline_before_privacy",
        {"lock": f.lock(online=False, privacy_mode=True)},
        Cause.ACA_LOCK_OFFLINE,
        "lock_offline",
    ),
    (
        "disabled_cell_is_not_a_mismatch",
        {
            "accesses": (f.access(state="disabled", disabled_by="access_matrix"),),
            "bookings": (f.booking(), f.booking("inv-cw")),
            "inventories": MISMATCH_INVENTORIES,
        },
        Cause.ACA_ACCESS_DISABLED,
        None,
    ),
    (
        "then_the_event_chain",
        {"accesses": (f.access(state="disabled", disabled_by="access_matrix"),)},
        Cause.ACA_ACCESS_DISABLED,
        None,
    ),
    ("clp", {"larry": f.larry("denied", "no_time_schedule")}, Cause.ACA_CLP_OUT_OF_SYNC, None),
    ("all_grant", {}, Cause.ACA_IQ_OUT_OF_SYNC, None),
    (
        "mkey_from_clp_entries",
        {"entries": (f.entry(by="mkey"),), "mobile_keys": (f.mobile_key(state="revoked"),)},
        Cause.ACA_MKEY_REVOKED,
        None,
    ),
    (
        "tag_entries_skip_mkey_checks",
        {"entries": (f.entry(by="tag"),), "mobile_keys": (f.mobile_key(state="revoked"),)},
        Cause.ACA_IQ_OUT_OF_SYNC,
        None,
    ),
    ("lock_unknown_to_clp", {"lock": None, "iq": None}, Cause.ACA_IQ_OUT_OF_SYNC, None),
]


@pytest.mark.parametrize(
    ("facts_kw", "cause", "reason"),
    [row[1:] for row in TICKET_ROWS],
    ids=[row[0] for row in TICKET_ROWS],
)
def test_ticket_path(facts_kw: dict[str, Any], cause: Cause, reason: str | None) -> None:
    diagnosis, plan = run(f.lock_facts(**facts_kw))
    assert diagnosis.cause is cause
    if cause is Cause.ACA_TAG_NOT_ASSIGNED:
        assert plan.disposition == "needs_human"
        assert plan.actions == ()
    assert diagnosis.evidence["path"] == "ticket"
    if reason is not None:
        assert reason in diagnosis.evidence["offline_reasons"]


def test_lock_offline_checklist_is_for_on_site_staff_with_the_iq1_check() -> None:
    facts = f.lock_facts(
        lock=f.lock(link="attached_pending", revision=1),
        iq=f.iq(revision=1),
        incidents=(f.incident("lock_connection_lost"),),
    )
    diagnosis, plan = run(facts)
    assert diagnosis.evidence["incidents"] == ["lock_connection_lost"]
    assert plan.disposition == "needs_human"
    assert whos(plan) == {Who.ON_SITE}
    steps = text(plan)
    assert "Power-cycle IQ iq-1" in steps
    assert '"lock time set"' in steps
    assert "IQ1" in steps
    assert "attached_pending" in steps


def test_lock_offline_on_an_iq2_skips_the_iq1_check() -> None:
    _, plan = run(f.lock_facts(lock=f.lock(online=False)))
    assert len(plan.steps) == 2
    assert "IQ1" not in text(plan)


def test_privacy_mode_checklist_is_for_on_site_staff() -> None:
    diagnosis, plan = run(f.lock_facts(lock=f.lock(privacy_mode=True)))
    assert diagnosis.evidence["privacy_mode"] is True
    assert diagnosis.evidence["lock_type"] == "escutcheon"
    assert whos(plan) == {Who.ON_SITE}
    assert "privacy connector" in text(plan)


def test_quiet_lock_threshold_comes_from_policy() -> None:
    facts = f.lock_facts(lock=f.lock(last_event=NOW - timedelta(hours=3)))
    assert run(facts)[0].cause is Cause.ACA_IQ_OUT_OF_SYNC
    policy = PlanPolicy(quiet_lock_after=timedelta(hours=2))
    assert run(facts, policy)[0].cause is Cause.ACA_LOCK_OFFLINE


# --------------------------------------------------------------------------- proactive scan


def test_scan_hardware_reports_a_row_problems_by_lock() -> None:
    locks = [
        f.lock(lock_id="l-ok"),
        f.lock(lock_id="l-priv", privacy_mode=True),
        f.lock(lock_id="l-half", link="attached_pending", revision=1),
        f.lock(lock_id="l-off", online=False),
        # quiet but healthy: the scan does not guess from silence
        f.lock(lock_id="l-quiet", last_event=None),
    ]
    # no IQ records: the scan reads each lock's own IQ summary
    found = aca_rejections.scan_hardware(locks, [], NOW, center_id="c-1")
    assert [(d.subject.lock_id, d.cause) for d in found] == [
        ("l-half", Cause.ACA_LOCK_OFFLINE),
        ("l-off", Cause.ACA_LOCK_OFFLINE),
        ("l-priv", Cause.ACA_PRIVACY_MODE),
    ]
    assert found[0].subject.center_id == "c-1"
    assert found[0].evidence["offline_reasons"] == ["half_connected"]
    plans = [aca_rejections.plan_hardware(d) for d in found]
    assert [p.disposition for p in plans] == ["needs_human"] * 3
    assert "IQ1" in text(plans[0])


def test_scan_hardware_trusts_the_iq_record_over_the_lock_summary() -> None:
    found = aca_rejections.scan_hardware([f.lock()], [f.iq(online=False)], NOW)
    assert [d.evidence["offline_reasons"] for d in found] == [["iq_offline"]]


@pytest.mark.parametrize(
    ("revision", "reason"), [(1, "half_connected"), (2, "link_attached_pending")]
)
def test_attached_pending_is_the_half_connected_issue_only_on_an_iq1(
    revision: int, reason: str
) -> None:
    pending = f.lock(link="attached_pending", revision=revision)
    found = aca_rejections.scan_hardware([pending], [f.iq(revision=revision)], NOW)
    assert found[0].evidence["offline_reasons"] == [reason]
    assert found[0].evidence["iq_revision"] == revision
