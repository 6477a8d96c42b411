"""The ticket path's checks: every check of a runbook for one pair, each with its result.

A support agent asks about one person at one lock or door. The diagnosis is the first check
that fails (the runbook's order); the agent also sees every check made and what it found,
so "no fault found" (every check passes) is an answer, not a silence.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any, Literal

from doorfix.connectors.models.aca import User
from doorfix.connectors.models.cloud import Personnel
from doorfix.playbooks.aca.access import aca_state, bookings_giving
from doorfix.playbooks.aca.checks import (
    TICKET_CHAIN,
    Finding,
    last_user_entry,
    lock_quiet,
)
from doorfix.playbooks.facts import DoorLogFacts, LockFacts
from doorfix.playbooks.policy import PlanPolicy
from doorfix.playbooks.schedules import datetime_iso
from doorfix.playbooks.types import Cause

CheckVerdict = Literal["pass", "fail", "skipped"]


@dataclass(frozen=True)
class CheckResult:
    """One check of the ticket path: its name, ``pass``, ``fail`` or ``skipped``, what it found.

    ``skipped``: the chain stopped at an earlier finding, as the runbook does.
    """

    name: str
    result: CheckVerdict
    detail: str
    #: the cause a failed check points to (None when it passed)
    cause: Cause | None = None

    def as_dict(self) -> dict[str, Any]:
        """The report's ``checks[]`` entry."""
        out: dict[str, Any] = {"name": self.name, "result": self.result, "detail": self.detail}
        if self.cause is not None:
            out["cause"] = self.cause.value
        return out


def all_pass(checks: Sequence[CheckResult]) -> bool:
    """Whether every check passed (the ticket's "no fault found")."""
    return all(check.result == "pass" for check in checks)


# --------------------------------------------------------------------------- a lock


def _connection(facts: LockFacts, now: datetime, policy: PlanPolicy) -> str:
    if facts.lock is None:
        return "CLP does not return the lock: its connection cannot be checked"
    quiet = lock_quiet(facts, now, policy)
    last = facts.last_event_at
    seen = f"last event {datetime_iso(last)}" if last else "no event on record"
    note = " (quiet, but online: not offline for that alone)" if quiet else ""
    return f"lock online on IQ {facts.lock.iq.id} (online), link attached; {seen}{note}"


def _privacy(facts: LockFacts, now: datetime, policy: PlanPolicy) -> str:
    return "privacy mode off" if facts.lock is not None else "CLP does not return the lock"


def _inventory(facts: LockFacts, now: datetime, policy: PlanPolicy) -> str:
    giving = bookings_giving(facts, now)
    if giving:
        return f"booking {', '.join(giving)} gives the lock"
    return "no booking of a same-room inventory without this lock"


def _release(facts: LockFacts, now: datetime, policy: PlanPolicy) -> str:
    released = facts.center.released_at
    if released is None:
        return f"center {facts.center.id} has no release date: treated as released"
    return f"center {facts.center.id} released at {datetime_iso(released)}"


def _access(facts: LockFacts, now: datetime, policy: PlanPolicy) -> str:
    state, _by = aca_state(facts, now)
    return f"ACA access {state}"


def _larry(facts: LockFacts, now: datetime, policy: PlanPolicy) -> str:
    if facts.larry is None:
        return "CLP gave no Larry access answer for this user and lock"
    return f"Larry access {facts.larry.status}"


def _mkey(facts: LockFacts, now: datetime, policy: PlanPolicy) -> str:
    states = sorted({key.state for key in facts.mobile_keys})
    return f"mobile keys: {', '.join(states) or 'none'}; no key problem for this lock"


def _tag(facts: LockFacts, now: datetime, policy: PlanPolicy) -> str:
    assigned = sum(tag.state == "assigned" for tag in facts.user.tags)
    return f"{assigned} assigned tag(s); no rejected tag presentation to check"


def _lock_state(facts: LockFacts, now: datetime, policy: PlanPolicy) -> str:
    if facts.lock is None:
        return "CLP does not return the lock"
    return "lock connected and not in privacy mode"


def _iq(facts: LockFacts, now: datetime, policy: PlanPolicy) -> str:
    latest = last_user_entry(facts)
    if facts.larry is None or facts.larry.status != "granted":
        return "not reached: Larry does not grant"
    if latest is not None:
        return f"the user opened the lock at {datetime_iso(latest.utc_date_time)}"
    return "the IQ holds the access"


_Detail = Callable[[LockFacts, datetime, PlanPolicy], str]

#: check function name -> (the name the ticket reports, what a passing check found)
LOCK_CHECK_NAMES: Mapping[str, tuple[str, _Detail]] = MappingProxyType(
    {
        "check_lock_offline": ("lock_connection", _connection),
        "check_privacy": ("privacy_mode", _privacy),
        "check_mismatch": ("booking_inventory", _inventory),
        "check_too_early": ("release_grace", _release),
        "check_access": ("aca_access", _access),
        "check_clp": ("larry_access", _larry),
        "check_mkey": ("mobile_key", _mkey),
        "check_tag": ("tag", _tag),
        "check_lock_state": ("lock_state", _lock_state),
        "check_iq": ("iq_holds_access", _iq),
    }
)


def _found(finding: Finding) -> str:
    shown = {
        k: v for k, v in finding.evidence.items() if isinstance(v, str | int | list) and v != []
    }
    facts = "; ".join(
        f"{k}: {', '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in shown.items()
    )
    return f"{finding.cause.value}" + (f" ({facts})" if facts else "")


def lock_checks(facts: LockFacts, now: datetime, policy: PlanPolicy) -> tuple[CheckResult, ...]:
    """Every check of the ticket chain for one user x lock, in the chain's order."""
    out: list[CheckResult] = []
    first: Cause | None = None
    for check in TICKET_CHAIN:
        name, passed = LOCK_CHECK_NAMES.get(check.__name__, (check.__name__, _privacy))
        if first is not None:
            # the chain stops at its first finding: a later check would read facts that the
            # finding already explains (no booking makes Larry deny too)
            out.append(CheckResult(name, "skipped", f"not checked: {first.value} comes first"))
            continue
        finding = check(facts, now, policy)
        if finding is None:
            out.append(CheckResult(name, "pass", passed(facts, now, policy)))
        else:
            out.append(CheckResult(name, "fail", _found(finding), finding.cause))
            first = finding.cause
    return tuple(out)


# --------------------------------------------------------------------------- a door


def unassigned_tags(user: User, person: Personnel | None) -> list[str]:
    """The user's ACA-assigned tags the cloud person does not hold as a card, in ACA's order."""
    return [
        tag.number
        for tag in user.tags
        if tag.state == "assigned"
        and (person is None or not person.has_credential("card", tag.number))
    ]


def credential_check(user: User, person: Personnel | None) -> CheckResult:
    """The user's assigned ACA tags against the cloud person's credentials."""
    assigned = [tag.number for tag in user.tags if tag.state == "assigned"]
    missing = unassigned_tags(user, person)
    who = f"cloud person {person.personnel_id}" if person is not None else "no cloud person"
    if not assigned:
        return CheckResult(
            "credential_assigned",
            "fail",
            f"user {user.id} has no assigned ACA tag to present",
            Cause.UNKNOWN,
        )
    if missing:
        return CheckResult(
            "credential_assigned",
            "fail",
            f"ACA tag(s) {', '.join(missing)} of user {user.id} not assigned to {who}",
            Cause.CLOUD_CREDENTIAL_UNASSIGNED,
        )
    return CheckResult("credential_assigned", "pass", f"every assigned ACA tag is a card of {who}")


#: the door runbook's "always verify" checks -> what a passing one found
_DOOR_PASSED: Mapping[str, str] = MappingProxyType(
    {
        "credential": "the presented card names its person",
        "license": "the door's license is active",
        "visitor_validity": "no visitor key involved, or it is valid",
        "schedule": "no holiday keeps the door shut now",
        "access_group": "an access group opens the door now",
    }
)


def door_checks(
    facts: DoorLogFacts, cause: Cause, results: Mapping[str, str], credential: CheckResult
) -> tuple[CheckResult, ...]:
    """The credential comparison, then every "always verify" check with its result."""
    out = [credential]
    for name, verdict in results.items():
        if verdict == "ok":
            out.append(CheckResult(name, "pass", _DOOR_PASSED.get(name, "ok")))
        else:
            out.append(CheckResult(name, "fail", f"fails at door {facts.log.door_id}"))
    if cause is not Cause.UNKNOWN:
        # the first failing check names the cause
        for n, check in enumerate(out):
            if check.result == "fail" and check.cause is None:
                out[n] = CheckResult(check.name, "fail", f"{cause.value}: {check.detail}", cause)
                break
    return tuple(out)
