"""Candidates of one run with the same cause and subject make one incident."""

from __future__ import annotations

from datetime import UTC, datetime

from doorfix.agent.engine.candidates import Candidate, merge_by_key
from doorfix.playbooks.types import Cause, Diagnosis, Plan, Subject

T1 = datetime(2026, 11, 16, 8, 0, tzinfo=UTC)
T2 = datetime(2026, 11, 16, 9, 0, tzinfo=UTC)


def finding(card: str, events: tuple[str, ...], at: datetime, door: str = "d-6") -> Candidate:
    return Candidate(
        Diagnosis(
            Cause.CLOUD_CREDENTIAL_UNASSIGNED,
            Subject(center_id="c-1", door_id=door, credential=card),
            {"credential_value": card},
        ),
        Plan("needs_human", reason="security finding"),
        events,
        occurred_at=at,
    )


def test_two_unknown_cards_at_one_door_are_two_incidents() -> None:
    # one incident per presented credential (DESIGN.md "Incident identity")
    merged = merge_by_key([finding("AA", ("e1", "e2"), T1), finding("BB", ("e3",), T2)])
    assert [m.event_ids for m in merged] == [("e1", "e2"), ("e3",)]
    assert all("also" not in m.diagnosis.evidence for m in merged)


def test_one_card_refused_in_two_groups_is_one_incident_with_all_events() -> None:
    merged = merge_by_key([finding("AA", ("e1", "e2"), T1), finding("AA", ("e3",), T2)])
    assert len(merged) == 1
    (one,) = merged
    assert one.event_ids == ("e1", "e2", "e3")
    assert one.occurred_at == T2
    assert one.diagnosis.evidence["also"] == [{"credential_value": "AA"}]


def test_other_doors_stay_apart() -> None:
    merged = merge_by_key([finding("AA", ("e1",), T1), finding("AA", ("e2",), T1, door="d-7")])
    assert len(merged) == 2
