"""Faults of the vendor APIs themselves (not of the world): rate limits, 5xx, drops, quirks.

Two ways to ask for them, per system, combinable:

* **rates**: each request of the system draws once from a seeded RNG and gets a dropped
  connection (``p_drop``), a 429 with ``Retry-After`` (``p_429``), a 500/502/503 (``p_5xx``)
  or a real-time delay (``p_slow``);
* **rules**: "the next N requests of this system whose endpoint matches get X", checked
  before the rates, first added first served.

Endpoint names (globs allowed in a rule, ``None`` matches all):

* cloud: ``token`` and each command name (``get_door_log``, ``renew_door_license``, ...)
* ACA: ``centers``, ``center``, ``inventories``, ``bookings``, ``users``, ``user``,
  ``accesses``, ``mobile_keys``, ``access_matrix``, ``events``, ``visits``
* CLP: ``token`` (identity), ``sites``, ``locks``, ``lock``, ``iq``, ``users``, ``keys``,
  ``access_groups``, ``access_group_users``, ``entries``, ``incidents``, ``access``,
  ``sync_access``, ``sync_job``

This module decides; the API modules turn a :class:`Hit` into their system's envelope.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from doorfix.errors import System

SYSTEMS: tuple[System, ...] = ("cloud", "aca", "clp")


class DroppedConnection(Exception):
    """Raised inside the app to tear the connection down without a complete response."""


class FaultKind(StrEnum):
    """What an API fault does to the request it hits."""

    #: 429 with ``Retry-After: <retry_after>``
    RATE_LIMITED = "429"
    #: 500 in the system's error envelope
    E500 = "500"
    #: 502 from the "gateway" (plain text, not the system's envelope)
    E502 = "502"
    #: 503 from the "gateway" (plain text, with ``Retry-After``)
    E503 = "503"
    #: connection closed before a complete response (``after``: once the request took effect)
    DROP = "drop"
    #: answered normally after ``slow_seconds`` of real time
    SLOW = "slow"
    #: not a rule: every token of the system issued so far stops working now
    EXPIRE_TOKENS = "expire_tokens"
    #: CLP entries/incidents: empty page that still carries a token; ACA events: empty page
    EMPTY_PAGE = "empty_page"
    #: the next CLP writes answer ``403 2203``
    CLP_2203 = "clp_2203"
    #: the next cloud commands answer HTTP 200 ``success: false`` with ``code``
    CLOUD_BUSINESS_ERROR = "cloud_business_error"
    #: an ACA events page starts with the previous page's last event again
    DUPLICATE_EVENTS = "duplicate_events"
    #: ACA answers its centers (list or one) with ``released_at: null`` (no release date set)
    NULL_RELEASE_DATE = "null_release_date"


#: kinds acted on before the endpoint runs
REQUEST_KINDS = frozenset(
    {
        FaultKind.RATE_LIMITED,
        FaultKind.E500,
        FaultKind.E502,
        FaultKind.E503,
        FaultKind.DROP,
        FaultKind.SLOW,
        FaultKind.CLP_2203,
        FaultKind.CLOUD_BUSINESS_ERROR,
    }
)
#: kinds acted on by a feed endpoint while it builds its page
PAGE_KINDS = frozenset(
    {FaultKind.EMPTY_PAGE, FaultKind.DUPLICATE_EVENTS, FaultKind.NULL_RELEASE_DATE}
)

#: the systems and endpoints a system-specific kind can apply to
_ONLY: Mapping[FaultKind, tuple[System, frozenset[str] | None]] = MappingProxyType(
    {
        FaultKind.CLP_2203: ("clp", None),
        FaultKind.CLOUD_BUSINESS_ERROR: ("cloud", None),
        FaultKind.DUPLICATE_EVENTS: ("aca", frozenset({"events"})),
        FaultKind.NULL_RELEASE_DATE: ("aca", frozenset({"centers", "center"})),
    }
)
_EMPTY_PAGE_ENDPOINTS: Mapping[System, frozenset[str]] = MappingProxyType(
    {
        "clp": frozenset({"entries", "incidents"}),
        "aca": frozenset({"events"}),
    }
)


@dataclass(slots=True)
class Rates:
    """Per-request probabilities of a system's random faults (their sum is at most 1)."""

    p_429: float = 0.0
    retry_after: int = 1
    p_5xx: float = 0.0
    p_drop: float = 0.0
    p_slow: float = 0.0
    slow_seconds: float = 0.5

    def validate(self) -> None:
        """ValueError unless the probabilities are in [0, 1] and sum to at most 1."""
        probs = (self.p_429, self.p_5xx, self.p_drop, self.p_slow)
        if any(not 0.0 <= p <= 1.0 for p in probs) or sum(probs) > 1.0:
            raise ValueError("fault probabilities must be in [0, 1] and sum to at most 1")
        if self.retry_after < 0 or self.slow_seconds < 0:
            raise ValueError("retry_after and slow_seconds must not be negative")


@dataclass(slots=True)
class Rule:
    """A rule: the next ``remaining`` requests of ``system`` matching ``endpoint`` get ``kind``."""

    id: str
    kind: FaultKind
    system: System
    endpoint: str | None
    remaining: int
    retry_after: int = 1
    slow_seconds: float = 0.5
    code: str = "invalid_param"
    message: str = "injected fault"
    after: bool = False

    def matches(self, system: System, endpoint: str) -> bool:
        """True when this rule still has requests to hit and names this endpoint."""
        return (
            self.remaining > 0
            and self.system == system
            and (self.endpoint is None or fnmatch.fnmatchcase(endpoint, self.endpoint))
        )


@dataclass(frozen=True, slots=True)
class Hit:
    """A fault to apply to the current request."""

    kind: FaultKind
    retry_after: int = 1
    slow_seconds: float = 0.5
    code: str = "invalid_param"
    message: str = "injected fault"
    after: bool = False
    rule_id: str | None = None


@dataclass(slots=True)
class _Counters:
    seq: int = 0
    token_generation: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SYSTEMS, 0))


class ApiFaults:
    """The API faults of one sandbox app; seeded, so a run replays the same faults."""

    def __init__(self, seed: int = 0) -> None:
        self._seed = seed
        self._rng = random.Random(seed)
        self._rates: dict[System, Rates] = {s: Rates() for s in SYSTEMS}
        self._rules: list[Rule] = []
        self._counters = _Counters()

    # ----------------------------------------------------------------- configuring

    def set_rates(self, system: System, **values: float) -> Rates:
        """Replace ``system``'s rates (fields of :class:`Rates`; omitted ones are 0/default)."""
        rates = Rates(**values)  # type: ignore[arg-type]  # TypeError on unknown names is wanted
        rates.validate()
        self._rates[_system(system)] = rates
        return rates

    def rates(self, system: System) -> Rates:
        """The current rates of ``system``."""
        return self._rates[_system(system)]

    def add(
        self,
        kind: FaultKind | str,
        *,
        system: System,
        endpoint: str | None = None,
        count: int = 1,
        retry_after: int = 1,
        slow_seconds: float = 0.5,
        code: str = "invalid_param",
        message: str = "injected fault",
        after: bool = False,
    ) -> Rule:
        """Add a rule: the next ``count`` requests of ``system`` to ``endpoint`` get ``kind``."""
        fault = FaultKind(kind)
        system = _system(system)
        if fault is FaultKind.EXPIRE_TOKENS:
            raise ValueError("expire_tokens acts at once: call expire_tokens(system)")
        if count < 1 or retry_after < 0 or slow_seconds < 0:
            raise ValueError("count must be positive; retry_after and slow_seconds not negative")
        _check_applies(fault, system, endpoint)
        self._counters.seq += 1
        rule = Rule(
            id=f"af-{self._counters.seq}",
            kind=fault,
            system=system,
            endpoint=endpoint,
            remaining=count,
            retry_after=retry_after,
            slow_seconds=slow_seconds,
            code=code,
            message=message,
            after=after,
        )
        self._rules.append(rule)
        return rule

    def remove(self, rule_id: str) -> bool:
        """Drop one rule; False if there is none by that id."""
        before = len(self._rules)
        self._rules = [r for r in self._rules if r.id != rule_id]
        return len(self._rules) != before

    def clear(self) -> None:
        """Remove every rule and reset every rate to zero (tokens stay as they are)."""
        self._rules.clear()
        self._rates = {s: Rates() for s in SYSTEMS}

    def rules(self) -> list[Rule]:
        """The rules that still have requests to hit."""
        return [r for r in self._rules if r.remaining > 0]

    def expire_tokens(self, system: System) -> None:
        """Invalidate every token ``system`` has issued so far."""
        system = _system(system)
        if system == "aca":
            raise ValueError("ACA uses a static API key: it has no tokens to expire")
        self._counters.token_generation[system] += 1

    def token_generation(self, system: System) -> int:
        """Tokens issued under an older generation than this are revoked."""
        return self._counters.token_generation[system]

    def snapshot(self) -> dict[str, Any]:
        """Rates and live rules as JSON data (what ``GET /sandbox/api-faults`` answers)."""
        return {
            "seed": self._seed,
            "rates": {s: dataclasses.asdict(r) for s, r in self._rates.items()},
            "rules": [{**dataclasses.asdict(r), "kind": r.kind.value} for r in self.rules()],
            "token_generation": dict(self._counters.token_generation),
        }

    # ----------------------------------------------------------------- deciding

    def on_request(self, system: System, endpoint: str, *, write: bool, token: bool) -> Hit | None:
        """The fault, if any, for a request about to run (``token``: a token endpoint)."""
        for rule in self._rules:
            if rule.kind not in REQUEST_KINDS or not rule.matches(system, endpoint):
                continue
            if rule.kind is FaultKind.CLP_2203 and not write:
                continue
            if rule.kind is FaultKind.CLOUD_BUSINESS_ERROR and token:
                continue
            return self._consume(rule)
        return self._draw(system)

    def on_page(self, system: System, endpoint: str, kind: FaultKind) -> Hit | None:
        """Whether a feed page of ``endpoint`` should suffer ``kind`` (a page kind)."""
        for rule in self._rules:
            if rule.kind is kind and rule.matches(system, endpoint):
                return self._consume(rule)
        return None

    def _consume(self, rule: Rule) -> Hit:
        rule.remaining -= 1
        self._rules = [r for r in self._rules if r.remaining > 0]
        return Hit(
            kind=rule.kind,
            retry_after=rule.retry_after,
            slow_seconds=rule.slow_seconds,
            code=rule.code,
            message=rule.message,
            after=rule.after,
            rule_id=rule.id,
        )

    def _draw(self, system: System) -> Hit | None:
        rates = self._rates[system]
        if not (rates.p_drop or rates.p_429 or rates.p_5xx or rates.p_slow):
            return None  # keep the RNG sequence untouched while no rate is set
        r = self._rng.random()
        if r < rates.p_drop:
            return Hit(FaultKind.DROP)
        r -= rates.p_drop
        if r < rates.p_429:
            return Hit(FaultKind.RATE_LIMITED, retry_after=rates.retry_after)
        r -= rates.p_429
        if r < rates.p_5xx:
            kind = self._rng.choice((FaultKind.E500, FaultKind.E502, FaultKind.E503))
            return Hit(kind, retry_after=rates.retry_after)
        r -= rates.p_5xx
        if r < rates.p_slow:
            return Hit(FaultKind.SLOW, slow_seconds=rates.slow_seconds)
        return None


def _system(system: str) -> System:
    if system not in SYSTEMS:
        raise ValueError(f"unknown system {system!r}; one of {', '.join(SYSTEMS)}")
    return system


def _check_applies(kind: FaultKind, system: System, endpoint: str | None) -> None:
    if kind is FaultKind.EMPTY_PAGE:
        allowed = _EMPTY_PAGE_ENDPOINTS.get(system)
        if allowed is None:
            raise ValueError("empty_page applies to CLP entries/incidents and ACA events only")
        if endpoint is not None and endpoint not in allowed:
            raise ValueError(f"empty_page on {system} applies to {', '.join(sorted(allowed))}")
        return
    only = _ONLY.get(kind)
    if only is None:
        return
    only_system, only_endpoints = only
    if system != only_system:
        raise ValueError(f"{kind.value} applies to {only_system} only")
    if only_endpoints is not None and endpoint is not None and endpoint not in only_endpoints:
        raise ValueError(f"{kind.value} applies to {', '.join(sorted(only_endpoints))} only")
