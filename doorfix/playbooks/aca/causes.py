"""The ACA rows of the cause table: the access-control runbook's causes and their checklists.

One :class:`~doorfix.playbooks.checklists.CauseSpec` per ``aca.*`` cause, from the rows A to D
of the runbook (and the release grace period before them).
"""

from __future__ import annotations

from types import MappingProxyType

from doorfix.playbooks.checklists import (
    ON_SITE,
    SUPPORT,
    USER,
    VENDOR,
    CauseSpec,
    step_texts,
)
from doorfix.playbooks.types import Cause, Remedy


def _new_key_row(cause: Cause, key_state: str) -> CauseSpec:
    """A D row whose mobile key the app must replace (revoked or corrupted): same checklist."""
    return CauseSpec(
        cause,
        f"D ({key_state})",
        None,
        "needs_human",
        USER,
        step_texts(
            (USER, "Reinstall the app to get a new mobile key, then try lock {lock_id} again."),
            (
                SUPPORT,
                f"Mobile key {{key_id}} of user {{user_id}} is {key_state}; if the new key still "
                "fails, it is a vendor bug: escalate to vendor support.",
            ),
        ),
    )


#: The ``aca.*`` rows, in the table's order.
ACA_ROWS: tuple[CauseSpec, ...] = (
    CauseSpec(
        Cause.ACA_TOO_EARLY,
        '"24 hours after the center is released"',
        None,
        "deferred",
        None,
    ),
    CauseSpec(
        Cause.ACA_TAG_NOT_ASSIGNED,
        'premise: "the user should have a tag properly assigned"',
        None,
        "needs_human",
        SUPPORT,
        step_texts(
            (
                SUPPORT,
                "User {user_id} has no properly assigned tag in ACA (tags: {tags}), so lock "
                "{lock_id} refuses any tag they present; no sync can change that.",
            ),
            (
                SUPPORT,
                "If the user should enter: give them a properly assigned tag in ACA (or mark "
                "their tag assigned again if it was found), then ask them to try again.",
            ),
        ),
        MappingProxyType(
            {
                "security": step_texts(
                    (
                        SUPPORT,
                        "Security finding: tag {credential} was refused {event_count} time(s) "
                        "at lock {lock_id} between {first_seen} and {last_seen}, registered "
                        "under user {user_id}; {aca_says}. Do not sync, toggle or re-enable "
                        "it until its holder is known.",
                    ),
                    (
                        ON_SITE,
                        "Find out who presented it at lock {lock_id} around {last_seen} (front "
                        "desk, camera); a lost or unknown tag must be taken in.",
                    ),
                    (
                        SUPPORT,
                        "If it belongs to user {user_id} after all, mark it assigned in ACA "
                        "again; otherwise give the user a new, properly assigned tag.",
                    ),
                ),
            }
        ),
    ),
    CauseSpec(
        Cause.ACA_LOCK_OFFLINE,
        "A a1",
        None,
        "needs_human",
        ON_SITE,
        step_texts(
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
                "iq1": step_texts(
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
        step_texts(
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
        step_texts(
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
        step_texts(
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
                "clp_refuses": step_texts(
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
        step_texts(
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
                "no_lock": step_texts(
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
    _new_key_row(Cause.ACA_MKEY_REVOKED, "revoked"),
    _new_key_row(Cause.ACA_MKEY_CORRUPTED, "corrupted"),
    CauseSpec(
        Cause.ACA_MKEY_GENERATION_FAILED,
        "D (cannot generate, or a new key still fails)",
        Remedy.ESCALATE,
        "remedy",
        VENDOR,
        step_texts(
            (
                VENDOR,
                "User {user_id} at lock {lock_id}: {problem}. This is a bug on ACA or the lock "
                "platform's core: investigate with key {key_id}.",
            ),
        ),
    ),
)
