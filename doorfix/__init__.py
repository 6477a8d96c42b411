"""doorfix: an automated remediation agent for door-access failures."""

from __future__ import annotations

__version__ = "0.1.0"
