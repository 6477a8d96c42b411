"""Door-log Detail texts and device firmware: which runbook row a failure reason selects.

The door runbook keys its rows on the Detail text a device writes (:data:`DETAIL_ROWS`, and
``Invalid <Credential Type>`` by pattern); devices older than its "Supported Devices" table
(:data:`MIN_FIRMWARE`) write none.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType


class Detail(StrEnum):
    """The runbook row a Detail text selects."""

    INVALID_CREDENTIAL = "invalid_credential"
    LICENSE = "license"
    NO_PERMISSION = "no_permission"
    NO_PERMISSION_OR_LICENSE = "no_permission_or_license"
    NOT_VALID = "not_valid"
    HOLIDAY = "holiday"
    EMPTY = "empty"
    OTHER = "other"


#: Normalised Detail text -> row (``Invalid <Credential Type>`` is matched by pattern).
DETAIL_ROWS: Mapping[str, Detail] = MappingProxyType(
    {
        "door license expired or not activated": Detail.LICENSE,
        "no access permission": Detail.NO_PERMISSION,
        "no access permission or door license is not available": Detail.NO_PERMISSION_OR_LICENSE,
        "not within the valid period": Detail.NOT_VALID,
        "no access permission during holidays": Detail.HOLIDAY,
    }
)
_INVALID = re.compile(r"^invalid (?P<kind>.+)$")
#: What ``Invalid <Credential Type>`` names; other ``Invalid ...`` texts are not this row.
CREDENTIAL_TYPE_NAMES = frozenset(
    {
        "card",
        "pin",
        "face",
        "qr code",
        "qr",
        "nfc",
        "ble",
        "credential",
        "credentials",
        "temp key",
        "tag",
        "fingerprint",
        "ic card",
        "id card",
    }
)

#: The runbook's "Supported Devices": model -> the oldest firmware that writes a Detail.
MIN_FIRMWARE: Mapping[str, str] = MappingProxyType(
    {
        "A08": "108.30.11.210",
        "EC33": "33.30.1.107",
        "R20": "320.30.12.16",
        "R29": "29.30.10.712",
        "X915V2": "2915.30.10.707",
    }
)


def classify(detail: str) -> Detail:
    """The row a Detail text selects (case and spacing ignored)."""
    text = " ".join(detail.split()).casefold().rstrip(".")
    if not text:
        return Detail.EMPTY
    if text in DETAIL_ROWS:
        return DETAIL_ROWS[text]
    invalid = _INVALID.match(text)
    if invalid and invalid.group("kind") in CREDENTIAL_TYPE_NAMES:
        return Detail.INVALID_CREDENTIAL
    return Detail.OTHER


def parse_version(text: str) -> tuple[int, ...] | None:
    """A dotted firmware version as numbers (``"29.30.10.712"`` -> ``(29, 30, 10, 712)``)."""
    parts = text.strip().split(".")
    # ASCII digits only: str.isdigit() also accepts "¹" and "٣", which int() refuses or misreads
    if not all(part.isascii() and part.isdigit() for part in parts):
        return None
    return tuple(int(part) for part in parts)


def firmware_outdated(model: str, firmware: str) -> bool:
    """Whether a device runs firmware older than the runbook's table (unknown: not outdated)."""
    floor = MIN_FIRMWARE.get(model.strip().upper())
    version = parse_version(firmware)
    if floor is None or version is None:
        return False
    minimum = parse_version(floor)
    return minimum is not None and version < minimum
