"""The cause table: one frozen row per cause code, from the runbooks to doorfix's plans.

A row names the runbook row it automates, the remedy doorfix may apply (or none), the
disposition a plan takes when nothing in the facts overrides it, who acts on a
``needs_human``, and the checklist in doorfix's own words. Branches with their own checklist
(a lost tag is a security finding, an IQ1 has one more check, ...) are named variants of the
row. A new cause is a new row here, not an ``if`` elsewhere.

Checklist texts are ``str.format`` templates over the plan's context (ids, names, times);
a value a plan did not supply renders as ``?`` rather than failing the plan.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from string import Formatter
from types import MappingProxyType
from typing import Any

from doorfix.playbooks.types import Cause, Disposition, Plan, PlannedAction, Remedy, Step, Who


class _Context(dict[str, Any]):
    """A format context where a missing key reads ``?`` (a checklist never fails a plan)."""

    def __missing__(self, key: str) -> str:
        return "?"


_FORMATTER = Formatter()


@dataclass(frozen=True)
class StepText:
    """One checklist item as a template: who acts and what they do."""

    who: Who
    text: str

    def render(self, context: Mapping[str, Any]) -> Step:
        """The step with the context's values filled in."""
        # lists (doors, inventories) read as "a, b" in a checklist, not as Python reprs
        values = _Context(
            {
                k: ", ".join(map(str, v)) if isinstance(v, list | tuple) else v
                for k, v in context.items()
            }
        )
        try:
            text = _FORMATTER.vformat(self.text, (), values)
        except (ValueError, IndexError, AttributeError):
            # a template bug must still leave a readable step, never a crashed run
            text = self.text
        return Step(self.who, text)


def _steps(*items: tuple[Who, str]) -> tuple[StepText, ...]:
    return tuple(StepText(who, text) for who, text in items)


@dataclass(frozen=True)
class CauseSpec:
    """One cause: its runbook row, remedy, default disposition, actor and checklists."""

    cause: Cause
    #: the runbook row (seed file text) this cause automates
    seed_row: str
    #: what doorfix may do about it; None: nothing (a person acts, or nothing is wrong)
    remedy: Remedy | None
    #: the plan's disposition when the facts do not call for another
    disposition: Disposition
    #: who acts when the plan is ``needs_human`` (None: nobody needs to)
    who: Who | None
    #: the checklist: for needs_human what to do, for a remedy the manual fix if it fails
    steps: tuple[StepText, ...] = ()
    #: other branches' checklists, by name
    variants: Mapping[str, tuple[StepText, ...]] = field(
        default_factory=lambda: MappingProxyType({})
    )

    def checklist(self, context: Mapping[str, Any], variant: str | None = None) -> tuple[Step, ...]:
        """The rendered checklist of the row, or of one of its variants."""
        templates = self.steps if variant is None else self.variants.get(variant, self.steps)
        return tuple(template.render(context) for template in templates)


SUPPORT, ON_SITE, USER = Who.SUPPORT, Who.ON_SITE, Who.USER
DISTRIBUTOR, VENDOR = Who.DISTRIBUTOR, Who.VENDOR_SUPPORT

#: Recommended when a device's firmware is older than the door runbook's table.
FIRMWARE_STEP = StepText(
    SUPPORT,
    "Update the firmware of the {device_model} at door {door_name} ({door_id}) from {firmware} "
    "to {min_firmware} or later: older firmware writes no failure reason in Logs > Door Logs.",
)

_ROWS: tuple[CauseSpec, ...] = (
    CauseSpec(
        Cause.CLOUD_CREDENTIAL_UNASSIGNED,
        "Invalid [Credential Type]",
        Remedy.ASSIGN_CREDENTIAL,
        "remedy",
        SUPPORT,
        _steps(
            (
                SUPPORT,
                "In the cloud, go to User > Personnel, open {personnel_name} ({personnel_id}) "
                "and add the {credential_type} credential {credential_value}: ACA lists it as "
                "an assigned tag of their ACA user {aca_user_id}.",
            ),
        ),
        MappingProxyType(
            {
                "security": _steps(
                    (
                        SUPPORT,
                        "Security finding: the {credential_type} {credential_value} was refused "
                        "{count} time(s) at {doors} between {first_seen} and {last_seen}. No "
                        "person in the cloud holds it and {aca_says}. Do not assign it until its "
                        "holder is known.",
                    ),
                    (
                        ON_SITE,
                        "Find out who presented it at {doors} around {last_seen} (front desk, "
                        "camera); a lost or unknown card must be taken in.",
                    ),
                    (
                        SUPPORT,
                        "If it belongs to a known person, register it in ACA as their assigned "
                        "tag first; then add it in the cloud (User > Personnel, the person, add "
                        "credential).",
                    ),
                ),
                "masked_pin": _steps(
                    (
                        SUPPORT,
                        "A PIN was refused {count} time(s) at {doors} between {first_seen} and "
                        "{last_seen}. The cloud masks PINs, so doorfix cannot tell whose it is "
                        "and never assigns one.",
                    ),
                    (
                        SUPPORT,
                        "If a person reports it, give them a PIN in the cloud: User > Personnel, "
                        "open the person, add the PIN credential.",
                    ),
                ),
                "temp_key": _steps(
                    (
                        SUPPORT,
                        "A visitor code unknown to the cloud ({credential_value}) was refused "
                        "{count} time(s) at {doors} between {first_seen} and {last_seen}. "
                        "Temp keys belong to visitors and are never assigned to a person.",
                    ),
                    (
                        SUPPORT,
                        "If a visitor expected to enter, create a new temp key for the visit: "
                        "User > Visitor, New.",
                    ),
                ),
                "conflict": _steps(
                    (
                        SUPPORT,
                        "ACA lists {credential_value} as an assigned tag of ACA user "
                        "{aca_user_id} (cloud person {personnel_id}), but the cloud has it on "
                        "{owner_ids}. Find out who really holds the card and remove it from the "
                        "other person before assigning it.",
                    ),
                ),
                "no_person": _steps(
                    (
                        SUPPORT,
                        "ACA lists {credential_value} as an assigned tag of ACA user "
                        "{aca_user_id}, who has no person in cloud project {project_id}.",
                    ),
                    (
                        SUPPORT,
                        "In the cloud, click New Personnel, set up the user's basic information "
                        "and permissions (external id {aca_user_id}), then click Next and add "
                        "the {credential_type} credential {credential_value}.",
                    ),
                ),
            }
        ),
    ),
    CauseSpec(
        Cause.CLOUD_LICENSE_INACTIVE,
        "Door license expired or not activated",
        Remedy.RENEW_LICENSE,
        "remedy",
        DISTRIBUTOR,
        _steps(
            (
                SUPPORT,
                "If the renewal fails: go to Doors, find {door_name} ({door_id}) and activate or "
                "renew it by hand; if the account has no funds or no payment permission, ask "
                "the distributor.",
            ),
        ),
        MappingProxyType(
            {
                "no_payment": _steps(
                    (
                        SUPPORT,
                        "Door {door_name} ({door_id}) license is {license_status} "
                        "({expiry}); this account has no payment permission, so "
                        "neither doorfix nor support can renew it.",
                    ),
                    (
                        DISTRIBUTOR,
                        "Contact the distributor to activate or renew the license of door "
                        "{door_name} ({door_id}) in project {project_id}.",
                    ),
                ),
                "renewals_off": _steps(
                    (
                        SUPPORT,
                        "Door {door_name} ({door_id}) license is {license_status} "
                        "({expiry}); renewals are off in doorfix's config, so it "
                        "did not renew.",
                    ),
                    (
                        SUPPORT,
                        "Go to Doors, find {door_name} and click to activate or renew it (the "
                        "account may pay), or ask the distributor.",
                    ),
                ),
                "door_unknown": _steps(
                    (
                        SUPPORT,
                        "Door {door_id} reported a license failure but is not in the door list "
                        "of project {project_id}: check the door under Doors and its license.",
                    ),
                ),
            }
        ),
    ),
    CauseSpec(
        Cause.CLOUD_NO_ACCESS_GROUP,
        "No access permission",
        Remedy.ADD_TO_ACCESS_GROUP,
        "remedy",
        SUPPORT,
        _steps(
            (
                SUPPORT,
                "If adding fails: go to User > Personnel, open {personnel_name} "
                "({personnel_id}) and click +Add to Existing Access Group {group_name} "
                "({access_group_id}), which opens {door_name} at the booked times.",
            ),
        ),
        MappingProxyType(
            {
                "no_suitable_group": _steps(
                    (
                        SUPPORT,
                        "{personnel_name} ({personnel_id}) has an active ACA booking "
                        "({booking_ids}) that gives door {door_name} ({door_id}), but no "
                        "existing access group opens it on {local_time} without opening doors "
                        "the bookings do not give (considered: {rejected_groups}).",
                    ),
                    (
                        SUPPORT,
                        "Go to User > Personnel, open {personnel_name} and click Create New "
                        "Access Group: only door(s) {allowed_doors}, on the schedule the "
                        "booking needs; then add the person to it.",
                    ),
                ),
                "no_aca_user": _steps(
                    (
                        SUPPORT,
                        "{personnel_name} ({personnel_id}) has no ACA user (no external id), so "
                        "doorfix cannot tell whether they should open {door_name} ({door_id}).",
                    ),
                    (
                        SUPPORT,
                        "Check with their company; if they should, go to User > Personnel, open "
                        "the person and +Add to Existing Access Group that opens the door "
                        "during the scheduled time.",
                    ),
                ),
                "no_person": _steps(
                    (
                        SUPPORT,
                        "Door {door_name} ({door_id}) refused a credential with no access "
                        "permission, but the log names no person doorfix can find: check "
                        "Logs > Door Logs and the person's access groups by hand.",
                    ),
                ),
            }
        ),
    ),
    CauseSpec(
        Cause.CLOUD_INHERITED_GROUP,
        "No access permission (user group case)",
        None,
        "needs_human",
        SUPPORT,
        _steps(
            (
                SUPPORT,
                "{personnel_name} ({personnel_id}) inherits access groups from user group(s) "
                "{user_groups}: they cannot be removed or added one by one.",
            ),
            (
                SUPPORT,
                "Either change the access groups of the user group (this changes every "
                "member), or first remove {personnel_name} from the user group under "
                "User > Personnel.",
            ),
            (
                SUPPORT,
                "Then give them an access group that opens {door_name} ({door_id}) during the "
                "scheduled time: +Add to Existing Access Group ({suggestion}) or Create New "
                "Access Group.",
            ),
        ),
    ),
    CauseSpec(
        Cause.CLOUD_VISITOR_EXPIRED,
        "Not within the valid period",
        Remedy.CREATE_TEMP_KEY,
        "remedy",
        SUPPORT,
        _steps(
            (
                SUPPORT,
                "If creating the key fails: go to User > Visitor, open {visitor_name} "
                "({visitor_id}) and click New to create a temp key for door(s) {door_ids} "
                "valid until the visit ends ({visit_ends_at}).",
            ),
        ),
    ),
    CauseSpec(
        Cause.CLOUD_HOLIDAY_RESTRICTION,
        "No access permission during holidays",
        Remedy.SET_HOLIDAY_HOURS,
        "remedy",
        SUPPORT,
        _steps(
            (
                SUPPORT,
                "Holiday schedule {holidays} keeps door {door_name} ({door_id}) shut on "
                "{local_date} outside working hours.",
            ),
            (
                SUPPORT,
                "If people should enter that day: go to Access Control > Holiday, open the "
                "holiday schedule, enable Working Hours and set the time when authorized users "
                "can enter. List it in doorfix's holiday hours to let doorfix do it next time.",
            ),
        ),
    ),
    CauseSpec(
        Cause.ACA_TOO_EARLY,
        '"24 hours after the center is released"',
        None,
        "deferred",
        None,
    ),
    CauseSpec(
        Cause.ACA_LOCK_OFFLINE,
        "A a1",
        None,
        "needs_human",
        ON_SITE,
        _steps(
            (
                ON_SITE,
                "Power-cycle IQ {iq_id} and check that events of lock {lock_id} "
                "({lock_name}) come in again.",
            ),
            (
                ON_SITE,
                "Present the maintenance card on lock {lock_id}, then check in Larry that a "
                '"lock time set" incident appears under the incidents of IQ {iq_id}.',
            ),
        ),
        MappingProxyType(
            {
                "iq1": _steps(
                    (
                        ON_SITE,
                        "IQ {iq_id} is an IQ1: check it for the half-connected lock issue "
                        "(lock {lock_id} link state: {iq_link_state}; attached_pending while "
                        "online is the symptom) and re-attach the lock to the IQ.",
                    ),
                ),
            }
        ),
    ),
    CauseSpec(
        Cause.ACA_PRIVACY_MODE,
        "A a2",
        None,
        "needs_human",
        ON_SITE,
        _steps(
            (
                ON_SITE,
                "Lock {lock_id} ({lock_name}, {lock_type}) reports privacy mode on; ACA has no "
                "privacy mode, so the privacy-detection connector is likely damaged.",
            ),
            (
                ON_SITE,
                "Remove the lock and check its mechanical part and privacy connector; refit or "
                "replace it, then check in Larry that privacy mode is off.",
            ),
        ),
    ),
    CauseSpec(
        Cause.ACA_BOOKING_MISMATCH,
        "A a3",
        None,
        "needs_human",
        SUPPORT,
        _steps(
            (
                SUPPORT,
                "Company {company_id} has an active booking of inventory {booked_inventories} "
                "(room label {label}), but lock {lock_id} belongs to {lock_inventories}: the "
                "booked inventory does not contain the lock.",
            ),
            (
                SUPPORT,
                "In ACA, either assign lock {lock_id} to the booked inventory, or move the "
                "booking to the inventory that contains the lock.",
            ),
        ),
    ),
    CauseSpec(Cause.ACA_ACCESS_DISABLED, "B b1", None, "no_fault", None),
    CauseSpec(Cause.ACA_NO_BOOKING, "B", None, "no_fault", None),
    CauseSpec(
        Cause.ACA_CLP_OUT_OF_SYNC,
        "C c1",
        Remedy.TOGGLE_ACCESS_MATRIX,
        "remedy",
        SUPPORT,
        _steps(
            (
                SUPPORT,
                "If the sync does not hold: in ACA's Access Matrix disable user {user_id}'s "
                "access to lock {lock_id} and enable it again, then check Larry access.",
            ),
            (
                VENDOR,
                "If Larry access still denies, ACA's link to CLP is broken for this user: "
                "escalate to vendor support.",
            ),
        ),
        MappingProxyType(
            {
                "clp_refuses": _steps(
                    (
                        SUPPORT,
                        "ACA grants lock {lock_id}, but Larry denies it because the CLP user is "
                        "{larry_reason}; a sync from ACA does not change that.",
                    ),
                    (
                        SUPPORT,
                        "In Larry, check the site user of {user_id}: lift the {larry_reason} "
                        "state if it is not deliberate, then check Larry access again.",
                    ),
                ),
            }
        ),
    ),
    CauseSpec(
        Cause.ACA_IQ_OUT_OF_SYNC,
        "C c2",
        Remedy.SYNC_ACCESS,
        "remedy",
        SUPPORT,
        _steps(
            (
                SUPPORT,
                "If it still fails: in Larry open collection {collection_id} and press Sync "
                "Access, then ask the user to present the tag again.",
            ),
            (
                ON_SITE,
                "If the sync fails because the IQ is offline, power-cycle IQ {iq_id}.",
            ),
        ),
        MappingProxyType(
            {
                "no_lock": _steps(
                    (
                        SUPPORT,
                        "ACA and Larry grant lock {lock_id} but CLP does not return the lock, so "
                        "doorfix cannot find its collection: press Sync Access on the lock's "
                        "collection in Larry by hand.",
                    ),
                ),
            }
        ),
    ),
    CauseSpec(
        Cause.ACA_MKEY_REVOKED,
        "D (revoked)",
        None,
        "needs_human",
        USER,
        _steps(
            (USER, "Reinstall the app to get a new mobile key, then try lock {lock_id} again."),
            (
                SUPPORT,
                "Mobile key {key_id} of user {user_id} is revoked; if the new key still fails, "
                "it is a vendor bug: escalate to vendor support.",
            ),
        ),
    ),
    CauseSpec(
        Cause.ACA_MKEY_CORRUPTED,
        "D (corrupted)",
        None,
        "needs_human",
        USER,
        _steps(
            (USER, "Reinstall the app to get a new mobile key, then try lock {lock_id} again."),
            (
                SUPPORT,
                "Mobile key {key_id} of user {user_id} is corrupted; if the new key still fails, "
                "it is a vendor bug: escalate to vendor support.",
            ),
        ),
    ),
    CauseSpec(
        Cause.ACA_MKEY_GENERATION_FAILED,
        "D (cannot generate, or a new key still fails)",
        Remedy.ESCALATE,
        "remedy",
        VENDOR,
        _steps(
            (
                VENDOR,
                "User {user_id} at lock {lock_id}: {problem}. This is a bug on ACA or the lock "
                "platform's core: investigate with key {key_id}.",
            ),
        ),
    ),
    CauseSpec(
        Cause.UNKNOWN,
        "none",
        None,
        "needs_human",
        SUPPORT,
        _steps(
            (
                SUPPORT,
                "Nothing in the runbooks explains this refusal ({summary}); check the evidence "
                "by hand.",
            ),
        ),
        MappingProxyType(
            {
                "unknown_detail": _steps(
                    (
                        SUPPORT,
                        "Door {door_name} ({door_id}, {device_model} firmware {firmware}) wrote "
                        "a failure reason doorfix does not know: {detail!r}. Check the door log "
                        "and verify credential, access group, schedule, license and visitor "
                        "validity by hand.",
                    ),
                ),
                "door_checks": _steps(
                    (
                        SUPPORT,
                        "Door {door_name} ({door_id}) wrote no failure reason and the checks "
                        "(credential, access group, schedule, license, visitor validity) all "
                        "pass now; verify them by hand at the time of the refusal.",
                    ),
                ),
                "tag_not_assigned": _steps(
                    (
                        SUPPORT,
                        "User {user_id} presented tag {credential} at lock {lock_id}, but ACA "
                        "has it as {tag_state}: the lock refuses it. Give the user a properly "
                        "assigned tag (or mark it assigned again if it was found).",
                    ),
                ),
            }
        ),
    ),
)

#: cause -> its row; every Cause has exactly one (a test holds the table to that).
CAUSES: Mapping[Cause, CauseSpec] = MappingProxyType({row.cause: row for row in _ROWS})


def spec(cause: Cause) -> CauseSpec:
    """The row of a cause."""
    return CAUSES[cause]


def needs_human(
    cause: Cause,
    context: Mapping[str, Any],
    *,
    reason: str,
    variant: str | None = None,
    extra: tuple[Step, ...] = (),
) -> Plan:
    """A ``needs_human`` plan with the row's checklist (or a variant's)."""
    return Plan("needs_human", steps=spec(cause).checklist(context, variant) + extra, reason=reason)


def remedy(
    cause: Cause,
    actions: tuple[PlannedAction, ...],
    context: Mapping[str, Any],
    *,
    reason: str,
    extra: tuple[Step, ...] = (),
) -> Plan:
    """A ``remedy`` plan; its steps are the row's manual fix, for when the remedy fails."""
    return Plan("remedy", actions, spec(cause).checklist(context) + extra, reason=reason)


def no_fault(reason: str, extra: tuple[Step, ...] = ()) -> Plan:
    """A ``no_fault`` plan: refused as designed, or already resolved."""
    return Plan("no_fault", steps=extra, reason=reason)


def deferred(not_before: datetime, reason: str) -> Plan:
    """A ``deferred`` plan: retry at ``not_before``."""
    return Plan("deferred", not_before=not_before, reason=reason)
