"""One grammar for times on the command line: ``--since`` and ``--until`` of every command.

A value is either a duration before now (``90m``, ``24h``, ``7d``, ``2w``) or an ISO 8601
date or time (``2026-11-16``, ``2026-11-16T08:00``, ``2026-11-16T08:00Z``,
``2026-11-16T09:00+01:00``; UTC when it names no zone). Each value is read on its own,
relative to now: ``--since 7d --until 24h`` is the six days that ended a day ago.
Anything else is a :class:`~doorfix.errors.ConfigError` naming the option and the forms.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from doorfix.errors import ConfigError

#: the forms a time option accepts, as said in every error and help text
FORMS = "a duration ago (90m, 24h, 7d, 2w) or an ISO date or time (2026-11-16, 2026-11-16T08:00Z)"

_DURATION = re.compile(r"^(\d+)\s*([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_time(text: str, now: datetime, *, option: str) -> datetime:
    """``text`` as a UTC time; ``option`` (``--since``) names the option in the error."""
    value = text.strip()
    match = _DURATION.match(value.lower())
    if match:
        amount, unit = int(match.group(1)), match.group(2)
        try:
            return now - timedelta(**{_UNITS[unit]: amount})
        except OverflowError:
            raise ConfigError(f'"{value}" reaches too far back', key=option) from None
    try:
        moment = datetime.fromisoformat(value.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f'cannot read "{value}": use {FORMS}', key=option) from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
