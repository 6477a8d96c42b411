"""The playbooks' vocabulary: causes, outcomes, remedies, subjects, diagnoses and plans.

Outcomes and causes are data (``StrEnum`` members documented with ``#:``); their codes are
stable: they appear in reports, logs, metrics and the journal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from doorfix.errors import System


class Cause(StrEnum):
    """Why a person was refused (DESIGN.md "Cause codes")."""

    #: the presented credential is not assigned to any person in the cloud
    CLOUD_CREDENTIAL_UNASSIGNED = "cloud.credential_unassigned"
    #: the door's subscription is expired or was never activated
    CLOUD_LICENSE_INACTIVE = "cloud.license_inactive"
    #: the person is in no access group that opens this door at this time
    CLOUD_NO_ACCESS_GROUP = "cloud.no_access_group"
    #: the person's access groups are inherited from a user group and cannot be edited alone
    CLOUD_INHERITED_GROUP = "cloud.inherited_group"
    #: the visitor's temp key is outside its validity
    CLOUD_VISITOR_EXPIRED = "cloud.visitor_expired"
    #: a holiday schedule without working hours blocks the door
    CLOUD_HOLIDAY_RESTRICTION = "cloud.holiday_restriction"
    #: the center was released less than the grace period ago
    ACA_TOO_EARLY = "aca.too_early"
    #: the presented tag is not an assigned tag of this user (lost, unknown, another user's)
    ACA_TAG_NOT_ASSIGNED = "aca.tag_not_assigned"
    #: the lock or its IQ lost connection: no event reaches ACA
    ACA_LOCK_OFFLINE = "aca.lock_offline"
    #: an escutcheon lock reports privacy mode on (likely a damaged privacy connector)
    ACA_PRIVACY_MODE = "aca.privacy_mode"
    #: the company's booking is for a same-label inventory that does not contain this lock
    ACA_BOOKING_MISMATCH = "aca.booking_mismatch"
    #: access to this lock is disabled in the Access Matrix (deliberate)
    ACA_ACCESS_DISABLED = "aca.access_disabled"
    #: the company has no active booking giving this lock
    ACA_NO_BOOKING = "aca.no_booking"
    #: ACA grants, CLP (Larry access) does not
    ACA_CLP_OUT_OF_SYNC = "aca.clp_out_of_sync"
    #: ACA and CLP grant, the lock still rejects: the IQ lacks the access
    ACA_IQ_OUT_OF_SYNC = "aca.iq_out_of_sync"
    #: the mobile key is revoked
    ACA_MKEY_REVOKED = "aca.mkey_revoked"
    #: the mobile key is corrupted
    ACA_MKEY_CORRUPTED = "aca.mkey_corrupted"
    #: the user cannot generate a mobile key, or a new one still fails: a vendor bug
    ACA_MKEY_GENERATION_FAILED = "aca.mkey_generation_failed"
    #: nothing above explains it; the evidence gathered is reported
    UNKNOWN = "unknown"


class Outcome(StrEnum):
    """How an incident ended (every incident ends in exactly one)."""

    #: the action ran and a re-read of the system shows it worked
    FIXED = "fixed"
    #: the action ran; only the next presentation can prove it (e.g. after Sync Access)
    PENDING_VERIFICATION = "pending_verification"
    #: dry-run: the exact actions doorfix would take
    WOULD_FIX = "would_fix"
    #: a person must act; ``steps`` says what and who
    NEEDS_HUMAN = "needs_human"
    #: refused as designed: disabled access, no booking, expired visit
    NO_FAULT = "no_fault"
    #: too early, in cool-down, over a budget or rate cap; retried later
    DEFERRED = "deferred"
    #: the action errored after retries; nothing half-done is left unrecorded
    FAILED = "failed"
    #: supervised mode: a planned action of a remedy in ``[remedies] approve`` waits for a
    #: person's approval; the incident is diagnosed again just before it runs
    AWAITING_APPROVAL = "awaiting_approval"


class Remedy(StrEnum):
    """What doorfix can do about a cause (DESIGN.md "Remedies and their guards")."""

    #: cloud: add a known, ACA-assigned credential to its person
    ASSIGN_CREDENTIAL = "assign_credential"
    #: cloud: activate or renew a door license (bills the account)
    RENEW_LICENSE = "renew_license"
    #: cloud: add a person to an existing access group that the bookings justify
    ADD_TO_ACCESS_GROUP = "add_to_access_group"
    #: cloud: a new temp key for a visitor, never outliving the visit
    CREATE_TEMP_KEY = "create_temp_key"
    #: cloud: enable working hours on a configured holiday schedule
    SET_HOLIDAY_HOURS = "set_holiday_hours"
    #: ACA: disable then enable the user's access to the lock (force ACA -> CLP sync)
    TOGGLE_ACCESS_MATRIX = "toggle_access_matrix"
    #: CLP: Sync Access on the lock's collection (force CLP -> IQ sync)
    SYNC_ACCESS = "sync_access"
    #: no API effect: report to vendor support
    ESCALATE = "escalate"


class Who(StrEnum):
    """Who must act on a ``needs_human`` incident."""

    #: the operator's support team (the agent doorfix stands beside)
    SUPPORT = "support"
    #: staff on site, at the lock or door
    ON_SITE = "on_site_staff"
    #: the person who was refused
    USER = "user"
    #: the distributor of the door cloud (licenses without payment permission)
    DISTRIBUTOR = "distributor"
    #: the lock/app vendor's support (a bug, a fix that did not hold)
    VENDOR_SUPPORT = "vendor_support"


#: What a plan proposes before the guards and the engine have their say.
Disposition = Literal["remedy", "needs_human", "no_fault", "deferred"]


@dataclass(frozen=True)
class Subject:
    """Whom and what an incident is about; only the ids that apply are set."""

    center_id: str | None = None
    user_id: str | None = None
    lock_id: str | None = None
    personnel_id: str | None = None
    visitor_id: str | None = None
    door_id: str | None = None
    #: the presented credential (tag or card number) when the incident is about the credential
    #: itself: one incident per credential, so an unknown or lost one is its own finding
    credential: str | None = None

    def as_dict(self) -> dict[str, str]:
        """The set ids, in the report's ``subject`` form."""
        return {k: v for k, v in self.__dict__.items() if v is not None}

    def key(self) -> str:
        """A stable text key (for grouping incidents and naming targets)."""
        return ",".join(f"{k}={v}" for k, v in sorted(self.as_dict().items()))


@dataclass(frozen=True)
class Step:
    """One item of a person's checklist."""

    who: Who
    text: str

    def as_dict(self) -> dict[str, str]:
        """The report's form."""
        return {"who": self.who.value, "text": self.text}


@dataclass(frozen=True)
class PlannedAction:
    """One API call doorfix would make, exactly: remedy, system, target, parameters."""

    remedy: Remedy
    system: System | None
    target: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Diagnosis:
    """A cause for a subject, with the evidence that decided it."""

    cause: Cause
    subject: Subject
    evidence: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Plan:
    """What to do about a diagnosis: actions, a checklist, nothing, or later."""

    disposition: Disposition
    actions: tuple[PlannedAction, ...] = ()
    #: the checklist for ``needs_human``; for ``remedy``, what a person does if it fails
    steps: tuple[Step, ...] = ()
    #: for ``deferred``: not before this time
    not_before: datetime | None = None
    #: why this disposition (shown in reports)
    reason: str = ""
