"""Durations for a person (``2 d 3 h``, ``1 h 05 min``): the engine's notes and the reports."""

from __future__ import annotations

from datetime import timedelta


def format_duration(delta: timedelta) -> str:
    """A duration for a person: ``2 d 3 h``, ``1 h 05 min``, ``4 min 10 s``."""
    seconds = max(0, round(delta.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"
