"""People's words: how every output names a subject, tells a value and a time, and says why.

The rules every renderer follows (the run table, ``--json``, the period report in each
format, ``history``, the demo):

- a subject shows the name the systems gave beside its id, wherever the incident's evidence
  holds one (``door Gym (d-8)``, ``lock 701 (l-1)``), see :func:`subject_text`;
- values read as words: no Python representation (``None``, ``True``, ``[]``, a dict) and no
  epoch seconds (a time is ISO 8601 in UTC), see :func:`value_text` and :func:`detail_text`;
- a runbook step is its own column or field (:func:`runbook_step`), never inside a sentence
  (:func:`sentence` drops the ``(c1)`` an older journal note carried);
- a ``no_fault`` incident says why it needs nothing: its ``reason_code``
  (:mod:`doorfix.agent.journal.reasons`, kept in the journal).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from doorfix.agent.journal.reasons import (
    ALREADY_RESOLVED,
    REFUSED_AS_DESIGNED,
    SUPERSEDED,
    reason_code,
)
from doorfix.connectors.models import iso_z
from doorfix.playbooks.cause_table import CAUSES
from doorfix.playbooks.types import Cause

#: every reason code, with how a report titles it
REASON_TITLES: Mapping[str, str] = {
    ALREADY_RESOLVED: "Already resolved",
    SUPERSEDED: "Superseded by a newer incident",
    REFUSED_AS_DESIGNED: "Refused as designed",
}
#: subject keys and the evidence key holding the name the systems gave
_NAMES: Mapping[str, str] = {
    "center_id": "center_name",
    "door_id": "door_name",
    "lock_id": "lock_name",
    "user_id": "user_name",
    "personnel_id": "personnel_name",
    "visitor_id": "visitor_name",
}
#: a runbook step written inside a sentence: " (c1)", " (A a3)"
_RUNBOOK_REF = re.compile(r"\s*\((?:[A-D]\s)?[a-d][0-9]\)")
#: seconds since 1970 between 2001 and 2286: what an API's ``expires_at: 1827559810`` is
_EPOCH_MIN, _EPOCH_MAX = 1_000_000_000, 9_999_999_999


def runbook_step(cause: str) -> str:
    """The runbook step a cause stands for (``C c1``; the Detail text for a cloud cause)."""
    try:
        row = CAUSES[Cause(cause)]
    except (ValueError, KeyError):
        return "-"
    return "-" if row.seed_row == "none" else row.seed_row.strip('"')


def sentence(text: str | None) -> str:
    """A note or reason for a person: runbook references taken out, ``-`` when empty."""
    cleaned = _RUNBOOK_REF.sub("", text or "").strip()
    return cleaned or "-"


def subject_parts(
    subject: Mapping[str, str], evidence: Mapping[str, Any] | None = None
) -> list[str]:
    """``["center c-1", "door Gym (d-8)"]``: each subject key with its name when known."""
    facts = evidence or {}
    parts = []
    for key, value in subject.items():
        label = key.removesuffix("_id")
        name = facts.get(_NAMES.get(key, ""))
        if isinstance(name, str) and name.strip() and name != value:
            parts.append(f"{label} {name} ({value})")
        else:
            parts.append(f"{label} {value}")
    return parts


def subject_text(subject: Mapping[str, str], evidence: Mapping[str, Any] | None = None) -> str:
    """``center c-1, door Gym (d-8)``."""
    return ", ".join(subject_parts(subject, evidence)) or "-"


def subject_names(
    subject: Mapping[str, str], evidence: Mapping[str, Any] | None = None
) -> dict[str, str]:
    """The names the systems gave for the subject's ids (``{"door_id": "Gym"}``), for JSON."""
    facts = evidence or {}
    out = {}
    for key in subject:
        name = facts.get(_NAMES.get(key, ""))
        if isinstance(name, str) and name.strip():
            out[key] = name
    return out


def value_text(value: Any) -> str:
    """A value in words: ``yes``/``no``, ``-`` for nothing, lists joined, ISO times."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return iso_z(value.astimezone(UTC), whole_seconds=True)
    if isinstance(value, int | float) and _EPOCH_MIN <= value <= _EPOCH_MAX:
        # an API's seconds since 1970 (``expires_at``, ``finish_time``): a time, said as one
        return iso_z(datetime.fromtimestamp(value, UTC), whole_seconds=True)
    if isinstance(value, list | tuple | set):
        items = [value_text(v) for v in value]
        return ", ".join(items) if items else "-"
    if isinstance(value, Mapping):
        return detail_text(value) or "-"
    return str(value)


#: detail keys a person gains nothing from (the outcome and checklist are shown elsewhere)
_QUIET_KEYS = frozenset({"steps", "outcome"})


def detail_text(detail: Mapping[str, Any]) -> str:
    """An action's result in words: ``expires at 2027-12-05T07:30:10Z, license status active``."""
    error = detail.get("error")
    if error:
        return value_text(error)
    parts = []
    for key, value in detail.items():
        if key in _QUIET_KEYS or value in (None, [], {}, ""):
            continue
        parts.append(f"{key.replace('_', ' ')} {value_text(value)}")
    return ", ".join(parts)


__all__ = [
    "ALREADY_RESOLVED",
    "REASON_TITLES",
    "REFUSED_AS_DESIGNED",
    "SUPERSEDED",
    "detail_text",
    "reason_code",
    "runbook_step",
    "sentence",
    "subject_names",
    "subject_parts",
    "subject_text",
    "value_text",
]
