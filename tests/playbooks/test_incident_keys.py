"""Incident identity: a key never merges facts that lead to different outcomes.

The engine groups a run's candidates (and the journal its incidents) by
:func:`~doorfix.agent.engine.candidates.incident_key`, the cause and the subject each
playbook's diagnosis names. Here every playbook diagnoses neighbouring facts (one door, one
user at one lock) whose plans differ, and no two plans that differ may share a key; and the
facts that are one fact (a door's license, seen as a refusal and by the door) share one.
"""

from __future__ import annotations

from datetime import timedelta
from itertools import combinations

import factories as f

from doorfix.agent.engine.candidates import Candidate, incident_key, merge_by_key
from doorfix.playbooks import license_renewal
from doorfix.playbooks.aca import playbook as aca_rejections
from doorfix.playbooks.door_logs import playbook as door_logs
from doorfix.playbooks.facts import DoorLicenseFacts, DoorLogFacts, LockFacts
from doorfix.playbooks.policy import PlanPolicy
from doorfix.playbooks.types import Cause

NOW = f.NOW
POLICY = PlanPolicy(renewals_enabled=True)
INVALID = "Invalid Card"


def door_candidate(facts: DoorLogFacts) -> Candidate:
    diagnosis = door_logs.diagnose(facts, NOW)
    return Candidate(diagnosis, door_logs.plan(diagnosis, facts, POLICY, NOW))


def lock_candidate(facts: LockFacts) -> Candidate:
    diagnosis = aca_rejections.diagnose(facts, NOW, POLICY)
    return Candidate(diagnosis, aca_rejections.plan(diagnosis, facts, POLICY, NOW))


def outcome_of(candidate: Candidate) -> tuple[str, tuple[str, ...]]:
    """What a plan leads to: its disposition and the remedies it would run."""
    plan = candidate.plan
    return plan.disposition, tuple(a.remedy.value for a in plan.actions)


def assert_keys_separate_outcomes(candidates: list[Candidate]) -> None:
    for a, b in combinations(candidates, 2):
        if incident_key(a) == incident_key(b):
            assert outcome_of(a) == outcome_of(b), (incident_key(a), outcome_of(a), outcome_of(b))


def invalid_card(value: str, log_id: int, **fields: object) -> DoorLogFacts:
    row = f.log(INVALID, log_id=log_id, credential_value=value, personnel_id=None)
    return f.door_log_facts(row, **fields)  # type: ignore[arg-type]


def credential_candidates() -> list[Candidate]:
    """Three cards refused at one door: an assigned ACA tag, an unknown card, a lost tag."""
    person = f.personnel()
    return [
        door_candidate(
            invalid_card(
                "CARD-1",
                1,
                aca_user=f.aca_user(tags=[("CARD-1", "assigned")]),
                aca_personnel=person,
            )
        ),
        door_candidate(invalid_card("CARD-X", 2)),
        door_candidate(invalid_card("CARD-L", 3, aca_user=f.aca_user(tags=[("CARD-L", "lost")]))),
    ]


def test_each_presented_credential_at_one_door_is_its_own_incident() -> None:
    candidates = credential_candidates()
    assert [c.diagnosis.cause for c in candidates] == [Cause.CLOUD_CREDENTIAL_UNASSIGNED] * 3
    assert [outcome_of(c) for c in candidates] == [
        ("remedy", ("assign_credential",)),
        ("needs_human", ()),
        ("needs_human", ()),
    ]
    assert_keys_separate_outcomes(candidates)
    merged = merge_by_key(candidates)
    assert [m.diagnosis.subject.credential for m in merged] == ["CARD-1", "CARD-X", "CARD-L"]
    assert all("also" not in m.diagnosis.evidence for m in merged)


def test_the_same_card_refused_again_is_the_same_incident() -> None:
    a = door_candidate(invalid_card("CARD-X", 1))
    b = door_candidate(invalid_card("CARD-X", 2))
    assert incident_key(a) == incident_key(b)


def test_a_users_tag_findings_and_their_other_refusals_at_a_lock_have_their_own_keys() -> None:
    user = f.aca_user(tags=[("CARD-1", "assigned"), ("CARD-L", "lost")])
    denied = f.larry("denied", "no_access_group")
    candidates = [
        # their own tag, Larry denies: the c1 toggle
        lock_candidate(f.lock_facts(events=(f.event(),), user=user, larry=denied)),
        # their own tag, everything grants: the c2 Sync Access
        lock_candidate(f.lock_facts(events=(f.event(),), user=user)),
        # their lost tag, and someone else's, at the same lock while Larry denies
        lock_candidate(
            f.lock_facts(events=(f.event(credential="CARD-L"),), user=user, larry=denied)
        ),
        lock_candidate(
            f.lock_facts(events=(f.event(credential="CARD-9"),), user=user, larry=denied)
        ),
        # a revoked mobile key
        lock_candidate(
            f.lock_facts(
                events=(f.event("mkey_rejected", credential="mk-1"),),
                user=user,
                mobile_keys=(f.mobile_key(state="revoked"),),
            )
        ),
    ]
    assert [c.diagnosis.cause for c in candidates] == [
        Cause.ACA_CLP_OUT_OF_SYNC,
        Cause.ACA_IQ_OUT_OF_SYNC,
        Cause.ACA_TAG_NOT_ASSIGNED,
        Cause.ACA_TAG_NOT_ASSIGNED,
        Cause.ACA_MKEY_REVOKED,
    ]
    assert_keys_separate_outcomes(candidates)
    assert incident_key(candidates[2]) != incident_key(candidates[3])


def test_a_door_license_is_one_incident_whoever_was_refused_and_whichever_playbook_saw_it() -> None:
    expired = f.door(status="expired", expires_at=NOW - timedelta(days=2))
    project = f.project_facts(doors=(expired,))
    refusals = [
        door_candidate(
            f.door_log_facts(
                f.log("Door license expired or not activated", log_id=i, personnel_id=who),
                project=project,
            )
        )
        for i, who in enumerate(("per-1", "per-2", None), start=1)
    ]
    facts = DoorLicenseFacts(expired, project.project, "c-1")
    diagnosis = license_renewal.diagnose(facts, NOW, POLICY)
    assert diagnosis is not None
    proactive = Candidate(diagnosis, license_renewal.plan(diagnosis, facts, POLICY, NOW))
    candidates = [*refusals, proactive]
    assert {incident_key(c) for c in candidates} == {incident_key(proactive)}
    assert {outcome_of(c) for c in candidates} == {("remedy", ("renew_license",))}
    assert proactive.diagnosis.subject.as_dict() == {"center_id": "c-1", "door_id": "d-1"}
    # who was refused stays in the evidence of each refusal
    assert [c.diagnosis.evidence["personnel_id"] for c in refusals] == ["per-1", "per-2", None]


def test_every_door_log_cause_keeps_apart_what_plans_apart() -> None:
    """Neighbouring door-log facts at one door, every cause: same key, same outcome."""
    expired = f.door(status="expired", expires_at=NOW - timedelta(days=2))
    facts = [
        invalid_card("CARD-X", 1),
        invalid_card("CARD-1", 2, aca_user=f.aca_user(), aca_personnel=f.personnel()),
        f.door_log_facts(f.log("No access permission", log_id=3), personnel=f.personnel()),
        f.door_log_facts(
            f.log("No access permission", log_id=4, personnel_id="per-2"),
            personnel=f.personnel("per-2", external_id=None),
        ),
        f.door_log_facts(
            f.log("Door license expired or not activated", log_id=5),
            project=f.project_facts(doors=(expired,)),
        ),
    ]
    assert_keys_separate_outcomes([door_candidate(x) for x in facts])
