"""The configuration values plans (and a few diagnoses) need, as one frozen value.

Playbooks never read the config file: the engine builds a :class:`PlanPolicy` once per run
(:meth:`PlanPolicy.from_guards`) and hands it in, so a plan is a pure function of facts,
policy and ``now``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time, timedelta
from types import MappingProxyType
from typing import Protocol


class GuardValues(Protocol):
    """The ``[guards]`` values a policy takes (the agent's config section has them all).

    A protocol, so playbooks never import the agent's config: arrows point from the agent to
    the playbooks, never back.
    """

    @property
    def release_grace_hours(self) -> float: ...
    @property
    def renewals_enabled(self) -> bool: ...
    @property
    def renewal_months(self) -> int: ...
    @property
    def license_lookahead_days(self) -> int: ...
    @property
    def mkey_replacement_window_days(self) -> int: ...
    @property
    def propagation_grace_seconds(self) -> int: ...


#: ``(start "HH:MM", end "HH:MM")`` in the project's time zone.
HolidayHours = tuple[str, str]

_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
_NO_HOURS: Mapping[str, HolidayHours] = MappingProxyType({})


def parse_hhmm(text: str) -> time:
    """``"HH:MM"`` as a time; anything else is a ValueError naming the text."""
    if not _HHMM.match(text):
        raise ValueError(f"not an HH:MM time: {text!r}")
    return time.fromisoformat(text)


@dataclass(frozen=True)
class PlanPolicy:
    """What plans may do and when: grace, renewals, look-ahead, configured holiday hours."""

    #: rejections at a center released less than this long ago are deferred (aca.too_early)
    release_grace: timedelta = timedelta(hours=24)
    #: renewals bill the account: only planned when this is on (and the account may pay)
    renewals_enabled: bool = False
    #: months bought by one renewal (1-12)
    renewal_months: int = 12
    #: license-renewal acts on licenses expiring within this window
    license_lookahead: timedelta = timedelta(days=30)
    #: holiday id or name -> the working hours doorfix may enable on it
    holiday_hours: Mapping[str, HolidayHours] = field(default_factory=lambda: _NO_HOURS, hash=False)
    #: ticket path: a lock with no event for this long counts as not reporting (A a1)
    quiet_lock_after: timedelta = timedelta(hours=24)
    #: a failing mobile key issued at most this long before the rejection, after the previous
    #: key failed, is "a new key that still fails" (a vendor bug); an older one is not
    mkey_replacement_window: timedelta = timedelta(days=14)
    #: a refusal at a lock this soon after doorfix fixed the user's access there is the fix
    #: still reaching the IQ (CLP propagates a change to the IQs seconds later): the fix's own
    propagation_grace: timedelta = timedelta(seconds=120)

    def __post_init__(self) -> None:
        """Refuse values no plan could honour (a config error, not a runtime surprise)."""
        if not 1 <= self.renewal_months <= 12:
            raise ValueError("renewal_months must be 1..12")
        if self.mkey_replacement_window <= timedelta(0):
            raise ValueError("mkey_replacement_window must be positive")
        for key, (start, end) in self.holiday_hours.items():
            try:
                backwards = parse_hhmm(start) > parse_hhmm(end)
            except ValueError as exc:
                raise ValueError(f"holiday {key!r}: {exc}") from exc
            if backwards:
                raise ValueError(f"holiday {key!r}: working hours end before they start")
        # a caller's dict (or TOML's lists) could change under a frozen policy: keep a
        # private read-only copy of plain tuples
        hours = {key: (start, end) for key, (start, end) in self.holiday_hours.items()}
        object.__setattr__(self, "holiday_hours", MappingProxyType(hours))

    @classmethod
    def from_guards(
        cls,
        guards: GuardValues,
        *,
        holiday_hours: Mapping[str, HolidayHours] | None = None,
    ) -> PlanPolicy:
        """The policy of a ``[guards]`` section (plus the configured holiday hours, if any)."""
        return cls(
            release_grace=timedelta(hours=guards.release_grace_hours),
            renewals_enabled=guards.renewals_enabled,
            renewal_months=guards.renewal_months,
            license_lookahead=timedelta(days=guards.license_lookahead_days),
            mkey_replacement_window=timedelta(days=guards.mkey_replacement_window_days),
            propagation_grace=timedelta(seconds=guards.propagation_grace_seconds),
            holiday_hours=holiday_hours or _NO_HOURS,
        )

    def hours_for(self, holiday_id: str, name: str) -> HolidayHours | None:
        """The configured hours of a holiday, by id first, then by name (case-insensitive)."""
        if holiday_id in self.holiday_hours:
            return self.holiday_hours[holiday_id]
        wanted = name.casefold()
        for key in sorted(self.holiday_hours):
            if key.casefold() == wanted:
                return self.holiday_hours[key]
        return None


#: The DESIGN.md defaults; what a diagnosis uses when the engine passes no policy.
DEFAULT_POLICY = PlanPolicy()
