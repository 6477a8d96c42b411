"""Typed models of the three vendor APIs, field for field as ``shared/contract`` draws them.

One module per system (:mod:`.cloud`, :mod:`.aca`, :mod:`.clp`); this package holds what they
share. Decisions that hold for every model:

- Every model is a :class:`WireModel`: frozen, unknown extra fields ignored, and **strict**,
  so a field of the wrong type (``"5"`` for an int, ``1`` for a bool) is a contract error
  rather than a silent coercion, as the contract asks.
- Arrays are tuples, so a frozen model is immutable all the way down.
- Enumerations are ``Literal`` types listing exactly the contract's values.
- ACA and CLP times are :data:`UtcDatetime`: aware, normalised to ``datetime.UTC``; a time
  without an offset is a contract error. Cloud times stay the wire's epoch seconds (``int``),
  which keeps the million-row door-log path free of per-row conversions; each cloud model
  offers ``*_utc`` properties that answer the same instant as an aware UTC datetime.
- ``HH:MM`` / ``HH:MM:SS`` schedule times are :class:`datetime.time` (project or site local,
  as the contract says), ``YYYY-MM-DD`` dates are :class:`datetime.date`.
- A field the contract marks nullable is ``X | None`` and defaults to ``None`` (an omitted
  null means the same thing); every other field is required.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict

from doorfix.clock import utc


class WireModel(BaseModel):
    """Base of every wire model: frozen, strict, extra fields ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)


def _as_utc(value: datetime) -> datetime:
    # pydantic answers its own fixed-offset tzinfo; callers compare against datetime.UTC
    return value.astimezone(UTC)


#: An ISO 8601 time with an offset (the contract sends ``Z``), as an aware UTC datetime.
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_as_utc)]


def iso_z(when: datetime, *, whole_seconds: bool = False) -> str:
    """``when`` as the contract's ISO 8601 UTC text with ``Z`` (naive times are taken as UTC)."""
    moment = utc(when)
    if whole_seconds or not moment.microsecond:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def epoch_seconds(when: datetime) -> int:
    """``when`` as whole epoch seconds, rounded down (the cloud's time format)."""
    return int(utc(when).timestamp() // 1)


def from_epoch(seconds: int) -> datetime:
    """Epoch seconds as an aware UTC datetime."""
    return datetime.fromtimestamp(seconds, UTC)
