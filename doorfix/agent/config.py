"""doorfix's configuration: one TOML file, secrets only from the environment.

Every key, its default and its meaning is documented in ``config.example.toml``; this module
is the schema. Unknown keys are refused (a typo must not silently fall back to a default), and
every error names the key (``[guards] cooldown_minutes``) or the environment variable.
"""

from __future__ import annotations

import difflib
import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from doorfix.errors import ConfigError

ENV_CONFIG = "DOORFIX_CONFIG"
#: apprise URLs for notifications (they embed tokens, so they are secrets): space-separated
ENV_NOTIFY_URLS = "DOORFIX_NOTIFY_URLS"
#: apprise URLs escalations go to (vendor support's mailbox, a ticketing webhook): secrets too
ENV_ESCALATE_URLS = "DOORFIX_ESCALATE_URLS"
ENV_SECRETS = {
    "cloud": "DOORFIX_CLOUD_CLIENT_SECRET",
    "aca": "DOORFIX_ACA_API_KEY",
    "clp": "DOORFIX_CLP_CLIENT_SECRET",
}

#: Every remedy doorfix knows (DESIGN.md "Remedies and their guards").
Remedy = Literal[
    "assign_credential",
    "renew_license",
    "add_to_access_group",
    "create_temp_key",
    "set_holiday_hours",
    "toggle_access_matrix",
    "sync_access",
    "escalate",
]
REMEDIES: tuple[Remedy, ...] = get_args(Remedy)

Positive = Annotated[float, Field(gt=0)]
PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


def _loopback_or_https(url: HttpUrl) -> HttpUrl:
    # plain http is accepted only on loopback: a token must never cross a network in clear
    if url.scheme == "http" and url.host not in LOOPBACK_HOSTS:
        raise ValueError("plain http is only allowed on loopback; use https")
    return url


class HttpSection(_Section):
    """Settings every system shares: timeouts, retries, rate limit."""

    timeout_seconds: Positive = 10.0
    retry_attempts: PositiveInt = 5
    retry_max_seconds: Positive = 60.0
    requests_per_second: Positive = 20.0
    concurrency: PositiveInt = 8
    #: the largest answer read, counted after decompression (a gzip bomb is refused early)
    max_response_bytes: PositiveInt = 32 * 1024 * 1024


class CloudSection(HttpSection):
    """``[cloud]``: the intercom/door cloud."""

    base_url: HttpUrl = HttpUrl("http://127.0.0.1:8600/cloud")
    client_id: str = "doorfix-sandbox"

    _check_url = field_validator("base_url")(_loopback_or_https)


class AcaSection(HttpSection):
    """``[aca]``: the operator's access-control app."""

    base_url: HttpUrl = HttpUrl("http://127.0.0.1:8600/aca")

    _check_url = field_validator("base_url")(_loopback_or_https)


class ClpSection(HttpSection):
    """``[clp]``: the lock platform and its identity server."""

    base_url: HttpUrl = HttpUrl("http://127.0.0.1:8600/clp")
    identity_url: HttpUrl = HttpUrl("http://127.0.0.1:8600/clp-identity")
    client_id: str = "doorfix-sandbox"

    _check_urls = field_validator("base_url", "identity_url")(_loopback_or_https)


class EngineSection(_Section):
    """``[engine]``: how a run works its incidents, and its limits."""

    #: real seconds a run may take; then it stops, records what it did and fails (exit 1)
    max_run_seconds: Positive = 900.0
    #: incidents of one run sending their writes at the same time (a verifying one holds no
    #: place; those sharing a target take turns)
    max_concurrent_incidents: Annotated[int, Field(ge=1, le=256)] = 16
    #: the most centers whose locks and IQs an aca-rejections run scans for hardware
    #: problems, taken in turn (every center once in ceil(centers / this) runs); 0: all
    hardware_scan_centers: Annotated[int, Field(ge=0)] = 100


class ProxySection(_Section):
    """``[http]``: how the three clients reach the network (proxies)."""

    #: follow HTTP_PROXY/HTTPS_PROXY/ALL_PROXY (and SSL_CERT_FILE, .netrc) from the environment
    trust_env: bool = False
    #: an explicit proxy for every system: https, or http only when every system is on loopback
    #: ("": none)
    proxy: Literal[""] | HttpUrl = ""


#: URL schemes of a PostgreSQL journal (``[journal] url``)
JOURNAL_URL_SCHEMES = ("postgresql://", "postgres://")


class JournalSection(_Section):
    """``[journal]``: the SQLite journal (``path``), or a fleet's PostgreSQL one (``url``)."""

    path: Path = Path("doorfix.sqlite3")
    #: ``postgresql://user@host:port/db``: the shared journal of a fleet of replicas; the
    #: password only from $DOORFIX_JOURNAL_PASSWORD or ~/.pgpass, never here ("": SQLite)
    url: str = ""

    @field_validator("url")
    @classmethod
    def _postgres_url(cls, url: str) -> str:
        if not url:
            return url
        if not url.startswith(JOURNAL_URL_SCHEMES):
            raise ValueError(
                "must be a postgresql:// URL (a SQLite journal is [journal] path, not a url)"
            )
        from psycopg import ProgrammingError, conninfo  # noqa: PLC0415 - only for a fleet

        try:
            parts = conninfo.conninfo_to_dict(url)
        except ProgrammingError:
            raise ValueError("not a valid postgresql:// URL") from None
        if parts.get("password"):
            raise ValueError(
                "holds a password: take it out of the file and set "
                "$DOORFIX_JOURNAL_PASSWORD (or a ~/.pgpass entry)"
            )
        return url

    @field_validator("path")
    @classmethod
    def _not_a_url(cls, path: Path) -> Path:
        if str(path).startswith((*JOURNAL_URL_SCHEMES, "postgresql:", "postgres:")):
            raise ValueError("is a file; a PostgreSQL journal is [journal] url")
        return path

    @property
    def target(self) -> str:
        """What the journal opens: the PostgreSQL URL if set, else the SQLite file."""
        return self.url or str(self.path)

    #: runs, closed incidents and seen event ids older than this are pruned (> max event age)
    retention_days: Annotated[int, Field(ge=8)] = 90


#: the outcomes an incident can end in (DESIGN.md "Outcomes")
OUTCOMES = (
    "fixed",
    "pending_verification",
    "would_fix",
    "needs_human",
    "no_fault",
    "deferred",
    "failed",
    "awaiting_approval",
)


def _check_cron(expression: str) -> None:
    from apscheduler.triggers.cron import CronTrigger  # noqa: PLC0415 - only to validate

    try:
        CronTrigger.from_crontab(expression)
    except ValueError as exc:
        raise ValueError(f"not a cron expression: {exc}") from None


class PlaybookSchedule(_Section):
    """When the daemon runs one playbook: every N seconds, or on a cron expression."""

    enabled: bool = True
    every_seconds: PositiveInt | None = None
    cron: str | None = None

    @model_validator(mode="after")
    def _one_trigger(self) -> PlaybookSchedule:
        if (self.every_seconds is None) == (self.cron is None):
            raise ValueError("give exactly one of every_seconds and cron")
        if self.cron is not None:
            _check_cron(self.cron)
        return self


class ScheduleSection(_Section):
    """``[schedule]``: the daemon's timetable (``[schedule.door_logs]`` and so on)."""

    door_logs: PlaybookSchedule = PlaybookSchedule(every_seconds=300)
    aca_rejections: PlaybookSchedule = PlaybookSchedule(every_seconds=300)
    license_renewal: PlaybookSchedule = PlaybookSchedule(cron="0 6 * * *")
    #: a run that could not start on time may still start this late, else it is skipped
    misfire_grace_seconds: PositiveInt = 300

    def for_playbook(self, playbook: str) -> PlaybookSchedule:
        """The schedule of ``door-logs``, ``aca-rejections`` or ``license-renewal``."""
        schedule: PlaybookSchedule = getattr(self, playbook.replace("-", "_"))
        return schedule


class DaemonSection(_Section):
    """``[daemon]``: the local health and metrics endpoint."""

    #: port of /healthz, /metrics and the console (0: any free port)
    port: Annotated[int, Field(ge=0, le=65535)] = 9464
    #: the address to listen on; beyond loopback only with both console tokens set
    host: str = "127.0.0.1"


class FleetSection(_Section):
    """``[fleet]``: how replicas sharing a PostgreSQL journal divide the centers."""

    #: each tick of a playbook is one run per shard of centers (a hash of the center's id);
    #: replicas work different shards at once. Every replica must use the same number. 1:
    #: one run per tick over every center. Only a fleet's ticks are divided; the
    #: single-node daemon and one-shot runs work every center.
    shards: Annotated[int, Field(ge=1, le=256)] = 8


class ReportSection(_Section):
    """``[report]``: notifications. The URLs themselves come from ``DOORFIX_NOTIFY_URLS``."""

    #: outcomes that make a run send a message
    notify_on: tuple[str, ...] = ("fixed", "needs_human", "failed", "awaiting_approval")
    #: when the daily digest goes out (cron, daemon's time zone UTC)
    digest_cron: str = "0 8 * * *"
    #: title prefix of every message
    title: str = "doorfix"
    #: the supervisors' console as the people reading the messages reach it ("": no links)
    console_url: str = ""

    @field_validator("console_url")
    @classmethod
    def _console(cls, value: str) -> str:
        if not value:
            return ""
        if not value.startswith(("http://", "https://")) or any(c in value for c in " <>\"'`"):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value.rstrip("/")

    @field_validator("notify_on")
    @classmethod
    def _outcomes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(value) - set(OUTCOMES))
        if unknown:
            raise ValueError(
                f"unknown outcome(s) {', '.join(unknown)}; known: {', '.join(OUTCOMES)}"
            )
        return value

    @field_validator("digest_cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        _check_cron(value)
        return value


HHMM = Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]


class HolidayWindow(_Section):
    """Working hours doorfix may set on one holiday schedule (project-local ``HH:MM``)."""

    start_time: HHMM
    end_time: HHMM


class RemediesSection(_Section):
    """``[remedies]``: the allowlist of remedies, and the holidays doorfix may open."""

    enabled: tuple[Remedy, ...] = REMEDIES
    #: supervised mode: these remedies wait for a person's approval before they run
    approve: tuple[Remedy, ...] = ()
    #: an approval (or a request for one) lapses after this many hours
    approval_ttl_hours: Positive = 24
    #: holiday id or name -> the working hours ``set_holiday_hours`` may enable on it
    holiday_hours: dict[str, HolidayWindow] = Field(default_factory=dict)

    def holiday_windows(self) -> dict[str, tuple[str, str]]:
        """The configured holiday hours as ``name -> (start, end)``."""
        return {k: (v.start_time, v.end_time) for k, v in self.holiday_hours.items()}


class GuardsSection(_Section):
    """``[guards]``: the limits every remedy runs inside (DESIGN.md defaults)."""

    lookback_hours: Positive = 24
    max_event_age_days: Positive = 7
    max_actions_per_run: NonNegativeInt = 100
    max_actions_per_target: NonNegativeInt = 2
    cooldown_minutes: NonNegativeInt = 60
    breaker_write_errors: PositiveInt = 5
    renewals_enabled: bool = False
    renewal_months: Annotated[int, Field(ge=1, le=12)] = 12
    max_renewals_per_run: NonNegativeInt = 10
    max_renewals_per_month: NonNegativeInt = 50
    license_lookahead_days: NonNegativeInt = 30
    pending_escalate_rejections: PositiveInt = 3
    pending_escalate_hours: Positive = 24
    release_grace_hours: Positive = 24
    verify_timeout_seconds: Positive = 120
    #: refusals at a lock this soon after doorfix fixed the user's access there are the fix
    #: still reaching the IQ, not a new fault (no Sync Access is planned for them)
    propagation_grace_seconds: NonNegativeInt = 120
    #: a failing mobile key is a vendor bug ("a new key still fails") only when it was issued
    #: after the previous key failed and at most this many days before the rejection
    mkey_replacement_window_days: Annotated[int, Field(ge=1, le=365)] = 14
    max_attempts_not_held: PositiveInt = 2
    attempt_window_hours: Positive = 168


class SandboxSection(_Section):
    """``[sandbox]``: run against the simulated systems in this process instead of real ones."""

    embedded: bool = False
    scenario: Literal["demo", "scale"] = "demo"
    seed: int = 0
    #: simulated seconds per real second (verification waits pass this much faster)
    speed: Positive = 60.0


class Settings(_Section):
    """The whole configuration."""

    cloud: CloudSection = CloudSection()
    aca: AcaSection = AcaSection()
    clp: ClpSection = ClpSection()
    journal: JournalSection = JournalSection()
    engine: EngineSection = EngineSection()
    http: ProxySection = ProxySection()
    remedies: RemediesSection = RemediesSection()
    guards: GuardsSection = GuardsSection()
    schedule: ScheduleSection = ScheduleSection()
    daemon: DaemonSection = DaemonSection()
    fleet: FleetSection = FleetSection()
    report: ReportSection = ReportSection()
    sandbox: SandboxSection = SandboxSection()

    @property
    def shards(self) -> int:
        """Shards of centers a fleet's ticks are divided in (``[fleet] shards``).

        Only a fleet replica's ticks run per shard; every other run works every center and
        holds every shard's locks.
        """
        return self.fleet.shards

    @model_validator(mode="after")
    def _proxy_in_clear(self) -> Settings:
        proxy = self.http.proxy
        if not isinstance(proxy, HttpUrl) or proxy.scheme == "https":
            return self
        urls = (self.cloud.base_url, self.aca.base_url, self.clp.base_url, self.clp.identity_url)
        if proxy.scheme != "http" or any(u.host not in LOOPBACK_HOSTS for u in urls):
            # a bearer key through a proxy in clear is a key given to the network
            raise ValueError(
                "[http] proxy: must be https (plain http only when every system is on loopback)"
            )
        return self


class Secrets(BaseModel):
    """The three secrets, read from the environment only; never printed."""

    model_config = ConfigDict(frozen=True)

    cloud_client_secret: SecretStr
    aca_api_key: SecretStr
    clp_client_secret: SecretStr

    def values(self) -> tuple[str, ...]:
        """The raw values, for the log redactor only."""
        return (
            self.cloud_client_secret.get_secret_value(),
            self.aca_api_key.get_secret_value(),
            self.clp_client_secret.get_secret_value(),
        )


def _key_of(loc: tuple[int | str, ...]) -> str:
    parts = [str(p) for p in loc]
    if len(parts) >= 2:
        return f"[{parts[0]}] {'.'.join(parts[1:])}"
    return parts[0] if parts else "<config>"


def _did_you_mean(loc: tuple[int | str, ...]) -> str:
    """`` (did you mean `retry_attempts`?)`` for a mistyped key, else ``""``."""
    model: Any = Settings
    for part in loc[:-1]:
        field = model.model_fields.get(str(part)) if hasattr(model, "model_fields") else None
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return ""
        model = annotation
    close = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1, cutoff=0.6)
    return f" (did you mean `{close[0]}`?)" if close else ""


def _toml_value(value: object) -> object:
    # TOML dates and times have no JSON form: kept as an object, a key wanting text refuses it
    return {"toml_datetime": str(value)}


def parse_settings(data: Mapping[str, Any], *, source: str = "<config>") -> Settings:
    """Validate a parsed TOML document; the first error becomes a ConfigError naming its key.

    Types are strict, as TOML's own: ``"yes"`` is not a boolean nor ``"30"`` a number (only
    what TOML cannot spell, URLs and paths, is read from text).
    """
    try:
        return Settings.model_validate_json(json.dumps(data, default=_toml_value), strict=True)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        key = _key_of(first["loc"])
        message = first["msg"]
        if first["type"] == "extra_forbidden":
            message = f"unknown key{_did_you_mean(first['loc'])}"
        message = message.removeprefix("Value error, ")
        raise ConfigError(f"{message} (in {source})", key=key) from None


def config_candidates(env: Mapping[str, str] | None = None) -> tuple[tuple[Path, str], ...]:
    """The files searched, in order, each with how to say where it was found."""
    source = os.environ if env is None else env
    xdg = source.get("XDG_CONFIG_HOME") or str(Path(source.get("HOME", "~")) / ".config")
    return (
        (Path("doorfix.toml"), "./doorfix.toml in the working directory"),
        (Path(xdg) / "doorfix" / "config.toml", "$XDG_CONFIG_HOME/doorfix/config.toml"),
        (Path("/etc/doorfix/config.toml"), "/etc/doorfix/config.toml"),
    )


def find_config(
    explicit: str | os.PathLike[str] | None, env: Mapping[str, str] | None = None
) -> tuple[Path | None, str]:
    """The config file to use and how it was chosen.

    ``--config``, else ``$DOORFIX_CONFIG``, else the first of ``./doorfix.toml``,
    ``$XDG_CONFIG_HOME/doorfix/config.toml`` (``~/.config`` when unset) and
    ``/etc/doorfix/config.toml`` that exists; else none (the embedded sandbox).
    """
    source = os.environ if env is None else env
    if explicit:
        return Path(explicit), "--config"
    named = source.get(ENV_CONFIG)
    if named:
        return Path(named), f"${ENV_CONFIG}"
    for path, how in config_candidates(source):
        if path.is_file():
            return path, how
    return None, "no config file found"


def config_path(explicit: str | os.PathLike[str] | None) -> Path | None:
    """The config file to use (see :func:`find_config`), or None for every default."""
    return find_config(explicit)[0]


def load_settings(path: Path | None) -> Settings:
    """Read and validate the config file; ``None`` means every default."""
    if path is None:
        return Settings()
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the config file: {exc.strerror}", key=str(path)) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"not valid TOML: {exc}", key=str(path)) from None
    return parse_settings(data, source=str(path))


def load_secrets(env: Mapping[str, str] | None = None) -> Secrets:
    """Read the three secrets from the environment; a missing one names its variable."""
    source = os.environ if env is None else env
    values: dict[str, SecretStr] = {}
    for system, var in ENV_SECRETS.items():
        value = source.get(var, "").strip()
        if not value:
            raise ConfigError("missing secret: set this environment variable", key=var)
        if not (value.isascii() and value.isprintable()):
            # it goes into an HTTP header or Basic credentials, which carry ASCII only
            raise ConfigError(
                "the secret must be printable ASCII (check for a typographic quote, a "
                "non-breaking space or a stray accent)",
                key=var,
            )
        values[system] = SecretStr(value)
    return Secrets(
        cloud_client_secret=values["cloud"],
        aca_api_key=values["aca"],
        clp_client_secret=values["clp"],
    )
