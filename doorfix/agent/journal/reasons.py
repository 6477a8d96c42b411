"""Why a ``no_fault`` incident needs nothing: its ``reason_code`` (docs/causes.md).

``refused_as_designed``: the refusal was right (access disabled, no booking, no valid visit).
``already_resolved``: the fault was real but already gone when doorfix looked.
``superseded``: a deferral a newer incident of the same user and lock took over.
The code is read from the outcome's note, whose first words the playbooks and the engine
write for exactly this (``refused as designed: …``, ``already resolved: …``).
"""

from __future__ import annotations

REFUSED_AS_DESIGNED = "refused_as_designed"
ALREADY_RESOLVED = "already_resolved"
SUPERSEDED = "superseded"
REASON_CODES: tuple[str, ...] = (REFUSED_AS_DESIGNED, ALREADY_RESOLVED, SUPERSEDED)

#: the note's first words -> the code (migration 8's SQL says the same)
PREFIXES: tuple[tuple[str, str], ...] = (
    ("refused as designed", REFUSED_AS_DESIGNED),
    ("already resolved", ALREADY_RESOLVED),
    ("resolved by itself", ALREADY_RESOLVED),
    ("superseded by", SUPERSEDED),
)


def reason_code(outcome: str | None, note: str | None) -> str | None:
    """The code of a ``no_fault`` outcome from its note; None for any other outcome."""
    if outcome != "no_fault":
        return None
    text = (note or "").strip().lower()
    for prefix, code in PREFIXES:
        if text.startswith(prefix):
            return code
    return REFUSED_AS_DESIGNED if not text else None
