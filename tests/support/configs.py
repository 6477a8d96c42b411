"""doorfix config files pointing at a served sandbox (``ServedSandbox.urls``)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


def write_config(
    path: Path, urls: Mapping[str, str], journal: Path, extra: str = "", *, http: str = ""
) -> Path:
    """Write a config file to ``path``; the path.

    The three systems at ``urls`` (each section with the ``http`` keys), the journal file
    ``journal``, then the ``extra`` TOML.
    """
    path.write_text(
        f"""
[cloud]
base_url = "{urls["cloud"]}"
{http}
[aca]
base_url = "{urls["aca"]}"
{http}
[clp]
base_url = "{urls["clp"]}"
identity_url = "{urls["clp_identity"]}"
{http}
[journal]
path = "{journal}"
{extra}
""",
        encoding="utf-8",
    )
    return path


def daemon_config(
    path: Path,
    urls: Mapping[str, str],
    journal: Path,
    *,
    timeout_seconds: float,
    port: int = 0,
    only: str | None = None,
    requests_per_second: float | None = None,
) -> Path:
    """A daemon's config for the demo sandbox: every playbook (or ``only`` one) every
    second, quick retries, renewals on, the faulted holiday openable all day (the wall clock
    may be at night); ``requests_per_second``: each system's rate limit (default the
    config's)."""
    schedules = "".join(
        f"[schedule.{name}]\nevery_seconds = 1\nenabled = {str(only in (None, name)).lower()}\n"
        for name in ("door_logs", "aca_rejections", "license_renewal")
    )
    return write_config(
        path,
        urls,
        journal,
        f"""[guards]
renewals_enabled = true
[remedies.holiday_hours."Public holiday"]
start_time = "00:00"
end_time = "23:59"
[daemon]
port = {port}
{schedules}""",
        http=f"retry_attempts = 2\nretry_max_seconds = 1\ntimeout_seconds = {timeout_seconds}\n"
        + (f"requests_per_second = {requests_per_second}\n" if requests_per_second else ""),
    )
