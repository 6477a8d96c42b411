"""The cloud rows of the cause table: the door runbook's causes and their checklists.

One :class:`~doorfix.playbooks.checklists.CauseSpec` per ``cloud.*`` cause, from the door
runbook's Detail rows; :data:`FIRMWARE_STEP` is the step recommended beside any of them when
the device's firmware is older than the runbook's table.
"""

from __future__ import annotations

from types import MappingProxyType

from doorfix.playbooks.checklists import (
    DISTRIBUTOR,
    ON_SITE,
    SUPPORT,
    CauseSpec,
    StepText,
    step_texts,
)
from doorfix.playbooks.types import Cause, Remedy

#: Recommended when a device's firmware is older than the door runbook's table.
FIRMWARE_STEP = StepText(
    SUPPORT,
    "Update the firmware of the {device_model} at door {door_name} ({door_id}) from {firmware} "
    "to {min_firmware} or later: older firmware writes no failure reason in Logs > Door Logs.",
)

#: The ``cloud.*`` rows, in the table's order.
CLOUD_ROWS: tuple[CauseSpec, ...] = (
    CauseSpec(
        Cause.CLOUD_CREDENTIAL_UNASSIGNED,
        "Invalid [Credential Type]",
        Remedy.ASSIGN_CREDENTIAL,
        "remedy",
        SUPPORT,
        step_texts(
            (
                SUPPORT,
                "In the cloud, go to User > Personnel, open {personnel_name} ({personnel_id}) "
                "and add the {credential_type} credential {credential_value}: ACA lists it as "
                "an assigned tag of their ACA user {aca_user_id}.",
            ),
        ),
        MappingProxyType(
            {
                "security": step_texts(
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
                "masked_pin": step_texts(
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
                "temp_key": step_texts(
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
                "conflict": step_texts(
                    (
                        SUPPORT,
                        "ACA lists {credential_value} as an assigned tag of ACA user "
                        "{aca_user_id} (cloud person {personnel_id}), but the cloud has it on "
                        "{owner_ids}. Find out who really holds the card and remove it from the "
                        "other person before assigning it.",
                    ),
                ),
                "no_person": step_texts(
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
        step_texts(
            (
                SUPPORT,
                "If the renewal fails: go to Doors, find {door_name} ({door_id}) and activate or "
                "renew it by hand; if the account has no funds or no payment permission, ask "
                "the distributor.",
            ),
        ),
        MappingProxyType(
            {
                "no_payment": step_texts(
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
                "renewals_off": step_texts(
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
                "door_unknown": step_texts(
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
        step_texts(
            (
                SUPPORT,
                "If adding fails: go to User > Personnel, open {personnel_name} "
                "({personnel_id}) and click +Add to Existing Access Group {group_name} "
                "({access_group_id}), which opens {door_name} at the booked times.",
            ),
        ),
        MappingProxyType(
            {
                "no_suitable_group": step_texts(
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
                "no_aca_user": step_texts(
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
                "no_person": step_texts(
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
        step_texts(
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
        step_texts(
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
        step_texts(
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
        MappingProxyType(
            {
                "hours_set": step_texts(
                    (
                        SUPPORT,
                        "Holiday schedule {holidays} already has working hours {hours_found} "
                        "enabled, set by a person; door {door_name} ({door_id}) refused "
                        "{personnel_name} at {local_time} on {local_date}, outside them. doorfix "
                        "only enables hours where none are enabled: it never shortens or "
                        "replaces hours a person set.",
                    ),
                    (
                        SUPPORT,
                        "If people should enter at that time: go to Access Control > Holiday, "
                        "open the holiday schedule and widen its Working Hours by hand.",
                    ),
                ),
            }
        ),
    ),
)
