# mypy: disable-error-code="import-untyped"
# (psutil ships no type information, and types-psutil is not a dependency)
"""Run every benchmark, one subprocess each, and write their figures to ``docs/benchmarks.md``.

    python bench/run_all.py [--only NAME ...] [--output docs/benchmarks.md] [--no-write]
    python bench/run_all.py --quick [--only NAME ...] [--output FILE]

Each benchmark script prints its own figures; this runner captures them, picks out the
figures the issues set targets for, and writes one page: for each benchmark the command, what
it measures, a table of figures beside their targets, the notes that explain them, and the
script's whole printout. The page also names the machine (cores, memory, load average when
the run began), the date and how long the whole run took (about 50 minutes on two cores, 35 of
them the fleet at 1,000 centers).

``--only`` runs some of the benchmarks (by script name, without ``bench_`` or ``.py``) and
prints their figures without writing the page, which always holds one run of all of them.

``--quick`` is the smoke pass CI runs (``.ci/run``): every benchmark at smaller sizes
(``Bench.quick``: a scale world of 50 centers and 50,000 door logs, fewer pages, requests,
rounds and refusals; about 2 minutes on two cores). It prints a short table of the figures
beside their targets, and ``--output FILE`` writes that table to a file; it never writes
``docs/benchmarks.md`` and asserts no target (small sizes on a shared machine are not the
measured configuration).

In every mode the runner exits non-zero, naming the benchmark, when a script exits non-zero or
its printout lacks one of the figures its table must hold (``Bench.expects``).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import platform
import re
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DOC = ROOT / "docs" / "benchmarks.md"
if str(ROOT) not in sys.path:
    # the checkout's doorfix, here (``door_logs_floor``) as in the benchmarks (``subprocess_env``)
    sys.path.insert(0, str(ROOT))

#: the quick pass's scale world (the full runs use 1,000 centers and 1,000,000 door logs)
QUICK_CENTERS = 50
QUICK_ROWS = 50_000
#: no benchmark of the quick pass may take longer than this, so CI never hangs on one
QUICK_TIMEOUT = 300.0

#: (figure, measured, target) rows of a benchmark's table
Row = tuple[str, str, str]


@dataclass(frozen=True)
class Bench:
    """One benchmark script, what it measures, and how to read its printout."""

    script: str
    args: tuple[str, ...]
    title: str
    what: str
    parse: Callable[[str], list[Row]]
    notes: Callable[[str], str] = lambda _out: ""
    timeout: float = 1800.0
    #: the arguments of the quick pass (``--quick``): the same figures at smaller sizes
    quick: tuple[str, ...] = ()
    #: the figures its table must hold: the start of each row's label, as ``parse`` makes it
    expects: tuple[str, ...] = ()
    #: the name ``--only`` takes, where one script runs twice with other arguments
    label: str = ""

    @property
    def name(self) -> str:
        """The label, or the script's name without ``bench_`` and ``.py``."""
        return self.label or self.script.removeprefix("bench_").removesuffix(".py")

    def quickened(self) -> Bench:
        """This benchmark as the quick pass runs it: its quick arguments, a shorter timeout."""
        return dataclasses.replace(self, args=self.quick, timeout=min(self.timeout, QUICK_TIMEOUT))

    def missing(self, rows: list[Row]) -> list[str]:
        """The expected figures that ``rows`` lacks."""
        labels = [figure.strip() for figure, _measured, _target in rows]
        return [e for e in self.expects if not any(label.startswith(e) for label in labels)]

    @property
    def command(self) -> str:
        """The command line, as the page shows it."""
        return " ".join(["python", f"bench/{self.script}", *self.args])


@dataclass
class Outcome:
    """One benchmark's run: its printout, exit code and time."""

    bench: Bench
    stdout: str
    stderr: str
    code: int
    seconds: float
    #: the 1-minute load average when it began and when it ended
    load: tuple[float, float] = (0.0, 0.0)
    rows: list[Row] = field(default_factory=list)
    #: the expected figures its printout lacks
    missing: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """The script exited 0 and printed every figure its table must hold."""
        return self.code == 0 and not self.missing

    @property
    def status(self) -> str:
        """``ok``, or why not (Markdown)."""
        if self.code != 0:
            return f"**failed** (exit {self.code})"
        if self.missing:
            return f"**failed** (no figure: {'; '.join(self.missing)})"
        return "ok"


# --------------------------------------------------------------------------- parsing


def find(pattern: str, text: str) -> re.Match[str] | None:
    """The first match of ``pattern`` in ``text`` (multi-line)."""
    return re.search(pattern, text, re.MULTILINE)


def number(text: str) -> float:
    """A printed number with thousands separators."""
    return float(text.replace(",", ""))


def under(value: float, target: float, unit: str) -> str:
    """The target cell "< target unit (met)"."""
    return f"< {target:g} {unit} ({verdict(value < target)})"


def verdict(ok: bool) -> str:
    """The mark beside a target: met or missed."""
    return "met" if ok else "**missed**"


def parse_build(out: str) -> list[Row]:
    """bench_sandbox_build: build time and RSS against their targets, page times."""
    rows: list[Row] = []
    world = find(r"^scale build: (.+)$", out)
    built = find(r"^build time: ([\d.]+) s", out)
    if world and built:
        seconds = float(built.group(1))
        rows.append(
            (f"build: {world.group(1)}", f"{seconds:.1f} s", f"< 30 s ({verdict(seconds < 30)})")
        )
    rss = find(r"^peak RSS: (\d+) MiB \(interpreter and imports: (\d+) MiB\)", out)
    if rss:
        mib = int(rss.group(1))
        rows.append(
            (
                f"peak RSS of the build (interpreter and imports: {rss.group(2)} MiB)",
                f"{mib} MiB",
                f"< 1 GiB ({verdict(mib < 1024)})",
            )
        )
    for label, what in (("random projects", "random projects"), ("one project", "one project")):
        page = find(rf"door_log_page 500 rows, {label}: median ([\d.]+) ms, p95 ([\d.]+) ms", out)
        if page:
            rows.append(
                (
                    f"`door_log_page`, 500 rows, {what} (the world's own call)",
                    f"median {page.group(1)} ms, p95 {page.group(2)} ms",
                    "",
                )
            )
    overall = find(r"^peak RSS overall: (\d+) MiB", out)
    if overall:
        rows.append(
            ("peak RSS with the one-project world built too", f"{overall.group(1)} MiB", "")
        )
    return rows


def parse_pages(out: str) -> list[Row]:
    """bench_sandbox_pages: a 500-row page served in process, against 20 ms."""
    page = find(r"median ([\d.]+) ms\s+p95 ([\d.]+) ms\s+max ([\d.]+) ms", out)
    requests = find(r"(\d+) requests in process", out)
    if not page:
        return []
    median, p95 = float(page.group(1)), float(page.group(2))
    n = requests.group(1) if requests else "?"
    return [
        (
            f"a 500-row `get_door_log` page through the ASGI app in process ({n} requests)",
            f"median {median:.1f} ms, p95 {p95:.1f} ms, max {float(page.group(3)):.1f} ms",
            f"< 20 ms ({verdict(p95 < 20)} at p95)",
        )
    ]


def parse_connector(out: str) -> list[Row]:
    """bench_connector_doorlogs: connector vs bare rows/s, the ratio, the client's RSS."""
    rows: list[Row] = []
    typed = find(r"^\(a\) CloudClient.iter_door_logs\s+([\d,]+) rows/s\s+client CPU ([\d.]+)", out)
    bare = find(r"^\(b\) bare httpx \+ json\s+([\d,]+) rows/s\s+client CPU ([\d.]+)", out)
    if typed:
        rows.append(
            (
                "(a) connector, `CloudClient.iter_door_logs`",
                f"{typed.group(1)} rows/s ({typed.group(2)} µs client CPU per row)",
                "",
            )
        )
    if bare:
        rows.append(
            (
                "(b) bare httpx + json",
                f"{bare.group(1)} rows/s ({bare.group(2)} µs client CPU per row)",
                "",
            )
        )
    ratio = find(r"^ratio \(a\)/\(b\), rows/s\s+([\d.]+)%", out)
    if ratio:
        value = float(ratio.group(1))
        rows.append(("ratio (a)/(b), rows/s", f"{value:.1f} %", f"≥ 80 % ({verdict(value >= 80)})"))
    cpu = find(r"^ratio \(b\)/\(a\), client CPU\s+([\d.]+)%", out)
    if cpu:
        rows.append(("ratio (b)/(a), client CPU per row", f"{float(cpu.group(1)):.1f} %", ""))
    rss = find(r"^client peak RSS during \(a\)\s+([\d.]+) MiB", out)
    if rss:
        mib = float(rss.group(1))
        rows.append(
            (
                "peak RSS of the client during (a)",
                f"{mib:.1f} MiB",
                f"< 150 MiB ({verdict(mib < 150)})",
            )
        )
    return rows


_DOOR_LOGS_LINES = (
    ("rows read", "rows read"),
    ("failure events diagnosed", "failure events diagnosed"),
    ("incidents", "incidents"),
    ("run time", "run time"),
    ("rows per second", "rows per second"),
    ("failure events per second", "failure events per second"),
    ("API calls", "API calls"),
    ("of which door-log pages", "  of which door-log pages"),
    ("API calls per incident", "API calls per incident"),
    ("excluding door-log pages", "API calls per incident, without the door-log pages"),
    ("peak RSS of the agent", "peak RSS of the agent"),
)


def parse_door_logs(out: str) -> list[Row]:
    """bench_door_logs_playbook: events/s, calls per incident and their floor, RSS."""
    rows: list[Row] = []
    for printed, label in _DOOR_LOGS_LINES:
        line = find(rf"^\s*{re.escape(printed)}\s{{2,}}(.+)$", out)
        if line:
            rows.append((label.strip(), line.group(1).strip(), ""))
    calls = find(r"^API calls\s{2,}([\d,]+)", out)
    incidents = find(r"^incidents\s{2,}([\d,]+)", out)
    floor = door_logs_world_floor(out)
    if calls and incidents and floor:
        made, n = int(number(calls.group(1))), max(1, int(number(incidents.group(1))))
        least = floor["cloud"] + floor["aca"]
        rows.append(
            (
                "the least this world needs (every fact once: see below)",
                f"{least:,} calls (cloud {floor['cloud']:,}, ACA {floor['aca']:,}), "
                f"{least / n:.2f} per incident, {(least - floor['pages']) / n:.2f} without "
                "the pages",
                f"made {made:,}: {made / least:.3f} × the least",
            )
        )
    return rows


def endpoint_counts(out: str, system: str) -> dict[str, int]:
    """The ``{system} calls by endpoint: {...}`` line of bench_door_logs_playbook."""
    line = find(rf"^\s*{system}\s+calls by endpoint: \{{(.*)\}}$", out)
    if not line:
        return {}
    return {key: int(value) for key, value in re.findall(r"'([^']+)': (\d+)", line.group(1))}


def door_logs_world_floor(out: str) -> dict[str, int] | None:
    """``door_logs_floor`` of the world bench_door_logs_playbook printed it served (its size)."""
    world = find(r"^scale world: (\d+) centers, ([\d,]+) door logs", out)
    if not world:
        return None
    return door_logs_floor(int(world.group(1)), int(number(world.group(2))))


@functools.cache
def door_logs_floor(centers: int = 1000, rows: int = 1_000_000) -> dict[str, int]:
    """The requests a door-logs run over the whole scale world needs at the least, by system.

    Built from the world itself (the same scenario and seed the benchmark serves), not from
    what the run did: every project's door-log pages at 500 rows; for each project with a
    failure its info and doors once, and its access groups, user groups and holidays (cloud)
    and its center's inventories (ACA) once where a failure's Detail row does not name its
    cause on its own (any row but ``Invalid <Credential Type>``, the license row and ``Not
    within the valid period``); one cloud lookup of who holds each distinct card presented
    at a project (``find_personnel``) and one ACA search of each distinct card (``users`` by
    tag, global), but not for the license or the visitor's row; the ACA centers listing (500
    a page) and one cloud token.
    """
    from datetime import UTC, datetime

    from doorfix.clock import ManualClock
    from doorfix.playbooks.door_logs.details import Detail, classify
    from doorfix.sandbox.scenarios.registry import build_scenario

    start = datetime(2026, 11, 16, 8, 0, tzinfo=UTC)
    world = build_scenario(
        "scale", seed=0, clock=ManualClock(start), centers=centers, door_logs=rows, days=7
    )
    # the rows whose Detail names the cause: no groups or holidays; and of them those that
    # need no card lookup either (the runbook's Detail table, doorfix's parse of it)
    named = {Detail.INVALID_CREDENTIAL, Detail.LICENSE, Detail.NOT_VALID}
    no_card = {Detail.LICENSE, Detail.NOT_VALID}
    pages = facts = permissions = 0
    project_cards: set[tuple[str, str]] = set()
    cards: set[str] = set()
    for project_id in world.projects:
        total, _ = world.door_logs.page(project_id, 0, 1, 1)
        pages += max(1, -(-total // 500))
        failed = groups = False
        for index in range(1, -(-total // 500) + 1):
            for row in world.door_logs.page(project_id, 0, index, 500)[1]:
                if row.result == "failure":
                    failed = True
                    kind = classify(row.detail)
                    groups = groups or kind not in named
                    if kind not in no_card:
                        project_cards.add((project_id, row.credential_value))
                        cards.add(row.credential_value)
        facts += failed
        permissions += groups
    center_pages = max(1, -(-len(world.centers) // 500))
    return {
        "pages": pages,
        "cloud": 1 + pages + 2 * facts + 3 * permissions + len(project_cards),
        "aca": center_pages + permissions + len(cards),
    }


#: bench_time_to_fix's line of each system's requests and their time at the rate limit
_REQUESTS_LINE = re.compile(
    r"^\s+poll\s+(\d+) s\s+requests, and their time at ([\d.]+)/s: (.+)$", re.MULTILINE
)


#: bench_time_to_fix's summary line of one interval: the interval, how it ran, p50, p95,
#: fixed of refused, the floor's p50 and p95, and the least p95 at the rate limit
_SUMMARY_LINE = re.compile(
    r"^time to fix at\s+(\d+) s \((.+?)\s*\) p50\s+(\d+) s\s+p95\s+(\d+) s\s+"
    r"\((\d+)/(\d+) fixed\)(?:\s+floor p50 (\d+) s p95 (\d+) s)?"
    r"(?:\s+least p95 at the rate limit ([\d.]+) s)?",
    re.MULTILINE,
)


def parse_time_to_fix(out: str) -> list[Row]:
    """bench_time_to_fix: p50 and p95 per poll interval, and per kind of refusal."""
    rows: list[Row] = []
    for m in _SUMMARY_LINE.finditer(out):
        every, how, p50, p95, fixed, n, floor50, floor95, least = m.groups()
        target = int(every) + 5
        floor = f" (floor of this sample: p50 {floor50} s, p95 {floor95} s" if floor95 else ""
        if floor and least:
            floor += f"; least p95 any agent could reach at the rate limit: {least} s"
            if float(least) > target:
                floor += ", over the target"
        floor += ")" if floor else ""
        rows.append(
            (
                f"poll every {every} s ({how}): refusal in a feed → verified fix",
                f"p50 {p50} s, p95 {p95} s ({fixed}/{n} fixed)",
                f"p95 ≤ {target} s, all fixed: "
                + verdict(int(p95) <= target and fixed == n)
                + floor,
            )
        )
    for m in re.finditer(
        r"^\s+poll\s+(\d+) s\s+(aca\.\S+|cloud\.\S+)\s+(\d+)/(\d+) fixed\s+p50\s+(\d+) s\s+"
        r"p95\s+(\d+) s.*?(?:floor p50 (\d+) s p95 (\d+) s)?$",
        out,
        re.MULTILINE,
    ):
        every, cause, fixed, n, p50, p95, floor50, floor95 = m.groups()
        floor = f"floor p50 {floor50} s, p95 {floor95} s" if floor95 else ""
        rows.append((f"  poll {every} s, `{cause}` only", f"p50 {p50} s, p95 {p95} s", floor))
    for m in re.finditer(
        r"^\s+poll\s+(\d+) s\s+(door-logs|aca-rejections) runs: (\d+), "
        r"mean ([\d.]+) s, max ([\d.]+) s",
        out,
        re.MULTILINE,
    ):
        every, playbook, runs, mean, most = m.groups()
        rows.append(
            (
                f"  poll {every} s, {playbook} run time",
                f"mean {mean} s, max {most} s ({runs} runs)",
                "",
            )
        )
    for m in _REQUESTS_LINE.finditer(out):
        every, rate, spent = m.groups()
        rows.append((f"  poll {every} s, requests (their time at {rate}/s)", spent, ""))
    for m in _LEAST_LINE.finditer(out):
        every, per_system = m.groups()
        rows.append(
            (
                f"  poll {every} s, least p95 at the rate limit, each system on its own",
                per_system,
                "bench/_least.py",
            )
        )
    for m in _SLOWEST_LINE.finditer(out):
        every, label, n, wait, read, fix = m.groups()
        which = "all" if label == "all" else f"`{label}`"
        rows.append(
            (
                f"  poll {every} s, where the slowest went ({which})",
                f"poll wait {wait} s, reading {read} s, first write to verified {fix} s",
                f"mean of the {n} at or over p95",
            )
        )
    return rows


#: bench_time_to_fix's line of the least p95 any agent could reach, per system
_LEAST_LINE = re.compile(
    r"^\s+poll\s+(\d+) s\s+least p95 any agent could reach at the rate limit "
    r"\(each system on its own, the best order\): (.+)$",
    re.MULTILINE,
)


#: bench_time_to_fix's line of where the slowest refusals' time went
_SLOWEST_LINE = re.compile(
    r"^\s+poll\s+(\d+) s\s+(all|aca\.\S+|cloud\.\S+)\s+slowest (\d+) \(at or over p95\), "
    r"mean: poll wait ([\d.]+) s, reading ([\d.]+) s, first write to verified ([\d.]+) s$",
    re.MULTILINE,
)


def parse_stuck_toggle(out: str) -> list[Row]:
    """bench_stuck_toggle: the run's time beside one verification timeout + 10 s."""
    rows: list[Row] = []
    run = find(
        r"^aca-rejections run with one toggle that never lands: ([\d.]+) s "
        r"\(verify_timeout_seconds ([\d.]+); target <= ([\d.]+) s: (\w+)\)",
        out,
    )
    if run:
        took, timeout, target, verdict = run.groups()
        rows.append(
            (
                "aca-rejections run with one toggle that never lands "
                f"(verify_timeout_seconds {timeout})",
                f"{took} s",
                f"<= {target} s ({verdict})",
            )
        )
    outcomes = find(r"^outcomes: (.+)$", out)
    if outcomes:
        rows.append(("outcomes of its 10 incidents", outcomes.group(1), "9 fixed, 1 needs_human"))
    return rows


def parse_cycle(out: str) -> list[Row]:
    """bench_daemon_cycle: the steady cycle at the rate limit, beside its floor."""
    rows: list[Row] = []
    # the cycle in sequence, then as the daemon runs it; each beside its floor
    for m in re.finditer(
        r"^full cycle( as the daemon runs it)?(?: \([^)]*\))? at ([\d.]+) requests/s per "
        r"system: ([\d.]+) s \(rate-limit floor ([\d.]+) s\)",
        out,
        re.MULTILINE,
    ):
        beside, rps, seconds, floor = m.group(1), m.group(2), float(m.group(3)), float(m.group(4))
        ratio = seconds / floor
        if beside:
            label = (
                "the same cycle as the daemon runs it: door-logs then license-renewal beside "
                f"aca-rejections, at {rps} requests/s per system"
            )
            target = f"floor {floor:.1f} s, the busiest system's least requests"
            target += f" (measured/floor {ratio:.2f})"
        else:
            label = (
                f"one full cycle (door-logs, aca-rejections, license-renewal) at {rps} "
                "requests/s per system, steady state"
            )
            target = f"<= 1.1 × floor {floor:.1f} s of the least requests "
            target += f"(measured/floor {ratio:.2f}: {'met' if ratio <= 1.1 else 'missed'})"
        rows.append((label, f"{seconds:.1f} s", target))
    scan = find(
        r"^hardware scan: ([\d,]+) of ([\d,]+) centers a run \(hardware_scan_centers (\d+); "
        r"every center once in (\d+) runs\)",
        out,
    )
    if scan:
        rows.append(
            (
                "centers whose hardware an aca-rejections run scans "
                f"(`[engine] hardware_scan_centers` {scan.group(3)})",
                f"{scan.group(1)} of {scan.group(2)}",
                f"every center once in {scan.group(4)} runs",
            )
        )
    made = find(r"^steady cycle requests: ([\d,]+) made, ([\d,]+) the least the world needs", out)
    if made:
        rows.append(
            (
                "requests of the steady cycle, beside the least the world needs",
                made.group(1),
                f"{made.group(2)} (the least)",
            )
        )
    steady = out.split("steady cycle", 1)[-1]
    for m in re.finditer(
        r"^\s+(door-logs|aca-rejections|license-renewal)\s+([\d.]+) s\s+requests: (.+?)\s+"
        r"floor at [\d.]+/s\s+([\d.]+) s",
        steady,
        re.MULTILINE,
    ):
        playbook, took, calls, least = m.groups()
        rows.append((f"  {playbook}", f"{took} s ({calls})", f"floor {least} s"))
    cold = find(
        r"^cold first cycle: rate-limit floor at [\d.]+/s ([\d.]+) s \(run unlimited: ([\d.]+) s\)",
        out,
    )
    if cold:
        rows.append(
            (
                "the daemon's first cycle (no cursors, 24 h look-back), run without a rate limit",
                f"{cold.group(2)} s",
                f"floor at the rate limit {cold.group(1)} s",
            )
        )
    rss = find(r"^\s+peak RSS of the agent\s+([\d.]+) MiB", out)
    if rss:
        peak = float(rss.group(1))
        verdict = "met" if peak <= 150 else "missed"
        rows.append(
            ("peak RSS of the agent (first cycle)", f"{peak:.1f} MiB", f"<= 150 MiB ({verdict})")
        )
    return rows


def parse_fleet(out: str) -> list[Row]:
    """bench_fleet: journal write latency, the lock's take-over, cycles with 1-3 replicas."""
    rows: list[Row] = []
    for m in re.finditer(
        r"^journal write latency, (SQLite|PostgreSQL)[^:]*: (\d+) writes, median ([\d.]+) ms, "
        r"p95 ([\d.]+) ms",
        out,
        re.MULTILINE,
    ):
        backend, writes, median, p95 = m.groups()
        rows.append(
            (
                f"journal write (intent or result, one committed transaction), {backend}",
                f"median {median} ms, p95 {p95} ms ({writes} writes)",
                "",
            )
        )
    lock = find(
        r"^run lock take-over after a killed holder: ([\d.]+) s \(stale limit ([\d.]+) s", out
    )
    if lock:
        rows.append(
            (
                "run lock taken over after its holder was killed",
                f"{lock.group(1)} s",
                f"the stale limit {lock.group(2)} s + polling every 0.2 s",
            )
        )
    for m in re.finditer(
        r"^steady cycle over (\d+) centers, (\d+) replica\(s\): ([\d.]+) s \(floor ([\d.]+) s at "
        r"([\d.]+) requests/s",
        out,
        re.MULTILINE,
    ):
        centers, count, seconds, floor, rps = m.groups()
        ratio = float(seconds) / float(floor)
        rows.append(
            (
                f"steady cycle over {centers} centers, {count} replica(s), at {rps} requests/s "
                "per system fleet-wide",
                f"{seconds} s",
                f"floor {floor} s of the least requests, "
                + ("in turn on one replica" if count == "1" else "the scopes side by side")
                + f" (measured/floor {ratio:.2f})",
            )
        )
    busiest = [
        int(n)
        for line in re.findall(r"busiest second at the sandbox \(limit [\d.]+\): (.+)$", out, re.M)
        for n in re.findall(r"\w+ (\d+)", line)
    ]
    limit = find(r"busiest second at the sandbox \(limit ([\d.]+)\)", out)
    if busiest and limit:
        rows.append(
            (
                "busiest second at the sandbox, any system, any cycle, any replica count",
                f"{max(busiest)} requests",
                f"<= {limit.group(1)} (+1 where the spacing straddles a window's edge)",
            )
        )
    took = find(
        r"^  take-over: (.+?) killed [\d.]+ s into its run \(([^)]*)\).*? finished on a live "
        r"replica ([\d.]+) s after the kill",
        out,
    )
    if took:
        rows.append(
            (
                f"a dead replica's work taken over: its {took.group(1)} run ({took.group(2)}) "
                "done on a live replica",
                f"{took.group(3)} s after the kill",
                "the dead job failed after 10 s of worker silence, its row stale after 14 s, "
                "then the run",
            )
        )
    return rows


# --------------------------------------------------------------------------- the notes


def door_logs_notes(out: str) -> str:
    """Where the door-logs run's calls go, from its printout."""
    cloud, aca = endpoint_counts(out, "cloud"), endpoint_counts(out, "aca")
    calls = find(r"^API calls\s{2,}([\d,]+)", out)
    if not cloud or not calls:
        return ""
    parts = ", ".join(f"`{k}` {v:,}" for k, v in sorted(cloud.items(), key=lambda kv: -kv[1]))
    aca_parts = ", ".join(f"`{k}` {v:,}" for k, v in sorted(aca.items(), key=lambda kv: -kv[1]))
    floor = door_logs_world_floor(out)
    if not floor:
        return ""
    made = int(number(calls.group(1)))
    least = floor["cloud"] + floor["aca"]
    if made == least:
        verdict_text = "The run makes exactly that many: nothing is fetched twice in a run."
    elif made > least:
        verdict_text = (
            f"The run makes {made - least:+,} calls beside that: some fact is fetched twice."
        )
    else:
        verdict_text = (
            f"The run makes {least - made:,} calls fewer: this count misses a rule of what a "
            "decision reads."
        )
    return (
        "The least this world needs is counted from the world itself (`door_logs_floor` in "
        "`bench/run_all.py`), not from the run: every project's door-log pages at 500 rows; "
        "for each project with a failure its info and doors once, and its access groups, user "
        "groups and holidays (cloud) and its center's inventories (ACA) once where a "
        "failure's Detail row does not name its cause on its own (an `Invalid Card` does); "
        "one cloud lookup of who holds each distinct card presented at a project, one ACA "
        f"search of each distinct card; the ACA centers listing and one token. {verdict_text} "
        "Where the calls "
        f"go (the six busiest endpoints of each system): cloud {parts}; ACA {aca_parts}. Every "
        "failure in this world is a card nobody holds, so every incident is `needs_human` "
        "(unknown cards, and doors on old firmware that write no Detail). The sandbox answers "
        "an ACA user search by tag with a linear scan over 20,000 users, the slowest call of "
        "the run."
    )


BUILD_NOTES = ""
PAGES_NOTES = ""
CONNECTOR_NOTES = (
    "The connector reads one page ahead while it decodes the current one; without that "
    "overlap the ratio was about 73 % on 1M rows. Client CPU per row is the steadier figure "
    "on a shared machine: unlike wall time it does not depend on how busy the server is."
)
TIME_TO_FIX_NOTES = (
    "Per refusal: from the presentation (the ACA event's or the door log's time) to the "
    "first `fixed` row of its incident's history, both in whole seconds, so each figure is "
    "within 1 s. The floor is the wait for the next run (the poll), plus, for a toggle, the "
    "first re-read of Larry access that can see ACA's push (5 s in the sandbox); reads, "
    "writes and rate-limit spacing count as nothing in it. The least p95 at the rate limit "
    "(`bench/_least.py`) adds them: each system's 20 requests/s serving the requests no "
    "agent that decides safely can skip, in the best order there is (the burst's notes "
    "below say which); here this agent is at it, within the figures' 1 s. Incidents are worked "
    "concurrently and a verification holds up no other incident, but the run's reads and "
    "writes share each system's 20 requests/s: collecting a burst's facts (each person's "
    "user, accesses, bookings, the lock and Larry access) and the toggles' re-reads take "
    "seconds of requests, and every Sync Access at a site is read back before a toggle "
    "there starts. The daemon runs door-logs beside aca-rejections (they write different "
    "systems), so a card never waits for a toggle's verification, and a run's tick is over "
    "once its writes are sent: the next tick's run of the playbook starts beside its "
    'verifications (README, "Runs that overlap in a verification\'s tail"), so a refusal '
    "that arrives while a toggle is on its way to CLP waits for the next tick, not for that "
    "verification. A toggle's re-reads come every second for its first 10 s, so a push that "
    "lands at 5 s is seen at 5 s, and an action's writes go ahead of the reads queued in its "
    'system (README, "Writes go first"). What is left over the floor is each person\'s '
    "reads before their first write: a run acts on each cohort (the refusals sharing a "
    "person, a lock or a CLP site; a door-logs project's failures) as soon as its facts are "
    "read, and reads the longest-waiting person's first, but the reads of the people read "
    "before them and the writes queued meanwhile take their turns at 20 requests/s; an "
    "aca-rejections run's hardware scan is not among them (it starts once the refusals' "
    "facts are read and reads behind the fixes); and "
    "the figures are whole seconds. At 60 s the figures are the interval's own: about half "
    "of it waiting, then the run."
)


def burst_notes(out: str) -> str:
    """Why a burst's figures stand where they do: each system's requests at its rate limit."""
    spent = {int(every): detail for every, _rate, detail in _REQUESTS_LINE.findall(out)}
    if not spent:
        return ""
    said = "; ".join(f"at a {every} s poll: {detail}" for every, detail in sorted(spent.items()))
    bounds = []
    for m in _SUMMARY_LINE.finditer(out):
        every, p95, bound = m.group(1), m.group(4), m.group(9)
        if bound is None:
            continue
        target = int(every) + 5
        verdict = (
            f"over its {target} s target, so no order of these requests meets it"
            if float(bound) > target
            else f"{target - float(bound):.1f} s under its {target} s target"
        )
        bounds.append(f"at a {every} s poll {bound} s ({verdict}; this agent: {p95} s)")
    least = (
        "The *least p95 at the rate limit* counts what the floor leaves out, for each system "
        "on its own: the requests no agent that decides safely can skip (a toggle's user, "
        "accesses and two writes, its center's inventories and bookings (one page each), "
        "each run's event page and centers' list in ACA, its Larry access in CLP; a card's "
        "holder by tag in ACA, its write and re-read and its project's page of door logs in "
        "the cloud; a read several refusals of a run share is made once), sent in the best "
        "order there is (earliest deadline first; `tests/bench/test_least.py` holds it "
        "against every order on generated refusals). It is " + "; ".join(bounds) + ". "
        if bounds
        else ""
    )
    return (
        "A burst is bound by the rate limit, not by waiting: the floor counts reads, writes and "
        "rate-limit spacing as nothing, and the target (poll + 5 s) is within a second of the "
        "floor's own p95, but the 50 refusals need each system's requests (each person's "
        "facts, the writes, the re-reads, and each run's feeds; the hardware scan reads "
        "behind them). " + least + "A run acts on each cohort as soon as its facts are read "
        "(a person waits for no facts but those of the refusals at their CLP site, or "
        "door-logs project) and reads the longest-waiting cohort's first, but "
        f"the requests of the interval ({said}) "
        "take about as long as the window the refusals arrive in: at 20 requests/s the "
        "people read before a person, and the writes queued meanwhile, cost that person "
        "seconds, and the runs overrun their ticks. What this agent loses against the bound "
        "is mostly order: a cohort holds every refusal at a CLP site (so a Sync Access there "
        "still comes before a toggle), and its reads all queue at its earliest refusal's "
        "time, so the later refusals at that site are read ahead of people refused before "
        "them. An action's writes go "
        "ahead of the reads queued in their system, so a toggle's disable and enable are not "
        "held behind the next refusals' reads. The rows *where the slowest went* split the "
        "time of the refusals at or over the p95: the poll wait is the floor's own; *reading* "
        "(the run's start to its first action) and what *first write to verified* adds over "
        "ACA's 5 s push (a toggle) are the requests queued at the rate limit."
    )


#: the centers of bench_time_to_fix's larger world
TIME_TO_FIX_CENTERS = 300


def centers_notes(out: str) -> str:
    """Why time to fix grows with the centers: what a run reads before it acts."""
    cards = [m for m in _SLOWEST_LINE.finditer(out) if m.group(2) == "cloud.credential_unassigned"]
    read = f" (here {cards[0].group(5)} s)" if cards else ""
    return (
        "A refusal waits only for what its run reads before it acts. An aca-rejections run "
        "scans the locks and IQs of 100 centers a run, the next ones each run "
        "(`[engine] hardware_scan_centers`; 300 centers are scanned once in 3 runs), and the "
        "scan starts once the refusals' facts are read, its reads behind every other "
        "request: a toggle's run acts within a second of starting, however many centers "
        '(README, "A person at a door never waits for work nobody waits for"; before, each '
        "run scanned every center first: p95 85 s here, 30 s of reading). A door-logs run "
        "reads every project's new door logs (one page a project, 300 requests: 15 s at "
        "20 requests/s) and acts on each project's refusals once its page and their facts "
        "are read, so a card waits only for its own project's page, but that page takes its "
        "turn among the 300 (the reads of a refusal found already go first): the slowest "
        f"cards' *reading*{read} is that. The floor assumes "
        "a run sees only the refusals made before it starts; a door-logs run this long "
        "reaches some projects' logs after a refusal there and takes it at once, so a "
        "`cloud.credential_unassigned` figure may come in under its floor."
    )


FLEET_NOTES = (
    "Real replica processes (`FleetDaemon`, the procrastinate worker `doorfix daemon` runs on "
    "a PostgreSQL journal) on one throwaway PostgreSQL cluster (fsync off, so its write "
    "latency is a floor, not a production figure), each replica count with a fresh journal. "
    "A tick of a playbook is one job per shard of the centers (`[fleet] shards`, 8 by "
    "default): a shard's run works only its centers, and runs of different shards, or of "
    "different scopes (door-logs and license-renewal write the cloud, aca-rejections ACA "
    "and CLP), go at once on different replicas (each scope at each shard is a job lock and "
    "a run-lock row). Every request takes its system's turn from one pace in the journal "
    "(`rate_slots`), so the fleet together keeps each system's 20 requests/s: with two or "
    "more replicas the floor is the busiest system's requests over the cycle / 20; one "
    "replica works one job at a time, so its floor is each playbook's busiest system's / "
    "20, summed. Each shard's run reads the centers list (two pages) itself, and an "
    "aca-rejections run ACA's event feed: 49 ACA requests a cycle more than runs over every "
    "center (56 in all, not 7), on ACA, which is no cycle's busiest system. Each shard's "
    "aca-rejections run scans the hardware of up to 100 of its centers in turn (`[engine] "
    "hardware_scan_centers`), so a tick scans 800 of the 1,000 and the least the world "
    "needs counts that (1,600 CLP requests, not 2,000). A third replica "
    "adds availability (it takes a share of every tick's shards), not speed: the rate limit "
    "is the fleet's. The take-over waits for the dead job to be failed by a live replica's "
    "sweep (10 s of worker silence) and for the dead run's lock row to go stale (the 10 s "
    "API timeout plus two 2 s heartbeats); its next job, deferred at the kill as its next "
    "tick would be, queues behind the rest of the cycle's jobs (about 150 s of work at the "
    "rate limit), then that shard's run. What changed with the shards is what waits: only "
    "the dead run's shard (one center in 8); the other shards' runs went on meanwhile, where "
    "before the whole scope waited (165.0 s, every center's door logs)."
    " The busiest second counts arrivals at the sandbox: requests leave 1/20 s apart (each "
    "turn taken from the pace), and one held up on the way by a busy event loop lands "
    "closer to the next, so a one-second window can hold one or two more than the limit "
    "(21 or 22 in every cycle below)."
)
CYCLE_NOTES = (
    "The steady cycle is the daemon's every cycle after the first: door-logs re-reads one "
    "hour of each project's log (one page per project), aca-rejections reads the event feed "
    "and scans the locks and IQ of its turn's centers on CLP (`[engine] "
    "hardware_scan_centers`, 100 a run, the next ones each run: 1,000 centers are scanned "
    "once in 10 runs, so a refusal never waits for a scan of every center), license-renewal "
    "reads each project's info "
    "and doors (2 requests a project; a renewal's plan reads more only where a door is "
    "due). Those requests are what the floor counts, and each playbook's are counted "
    "against the least the world needs: at 20 requests/s per system the cycle cannot be "
    "shorter, and measured/floor shows how close the runs come to it. With 1,000 centers a "
    "cycle of the two frequent playbooks (about 150 s) fits in their default 300 s "
    "interval. The daemon runs aca-rejections (CLP-bound) beside the two cloud playbooks, "
    "so its whole cycle takes about the busiest system's requests / 20 (the row of the "
    "cycle as the daemon runs it)."
)


#: the quick pass's scale world, as the benchmarks that build one take it
_QUICK_WORLD = ("--centers", str(QUICK_CENTERS), "--rows", str(QUICK_ROWS))
#: the rows bench_time_to_fix prints per poll interval beside the overall one
_TIME_TO_FIX_KINDS = (
    "`aca.clp_out_of_sync` only",
    "`cloud.credential_unassigned` only",
    "door-logs run time",
    "aca-rejections run time",
    "requests (their time at 20/s)",
    "where the slowest went (all)",
)

BENCHMARKS: tuple[Bench, ...] = (
    Bench(
        "bench_sandbox_build.py",
        (),
        "Sandbox: the `scale` world (issue 2)",
        "Builds the `scale` scenario (1,000 centers, 1,000,000 door-log rows over 7 days) in "
        "this process: build time, peak RSS, and `World.door_log_page` for 500-row pages over "
        "random projects, then over one project holding every row.",
        parse_build,
        lambda _out: BUILD_NOTES,
        quick=(*_QUICK_WORLD, "--pages", "50"),
        expects=(
            "build:",
            "peak RSS of the build",
            "`door_log_page`, 500 rows, random projects",
            "`door_log_page`, 500 rows, one project",
            "peak RSS with the one-project world",
        ),
    ),
    Bench(
        "bench_sandbox_pages.py",
        (),
        "Sandbox: a 500-row page served (issue 2)",
        "Whole `get_door_log` requests through the sandbox's ASGI app in process (token check, "
        "dispatch, page lookup, serialisation, JSON) at random page indexes of the project "
        "with the most rows.",
        parse_pages,
        lambda _out: PAGES_NOTES,
        quick=(*_QUICK_WORLD, "--requests", "50"),
        expects=("a 500-row `get_door_log` page",),
    ),
    Bench(
        "bench_connector_doorlogs.py",
        ("--rounds", "3"),
        "Connector: streaming 1,000,000 door logs (issue 3)",
        "The scale world with every row in one project, served by uvicorn on 127.0.0.1 in a "
        "subprocess; this process streams all rows (a) through `CloudClient.iter_door_logs` "
        "(typed, validated models through the shared HTTP layer) and (b) through bare `httpx` "
        "+ `json` (same pages, same page size, one token). The best of three alternating "
        "rounds of each.",
        parse_connector,
        lambda _out: CONNECTOR_NOTES,
        quick=("--rows", str(QUICK_ROWS), "--rounds", "1"),
        expects=(
            "(a) connector",
            "(b) bare",
            "ratio (a)/(b)",
            "ratio (b)/(a)",
            "peak RSS of the client",
        ),
    ),
    Bench(
        "bench_door_logs_playbook.py",
        (),
        "Engine: `door-logs` over the scale world (issue 4)",
        "One `run_once('door-logs')` over the whole 7-day history of the scale world (1,000 "
        "centers, 1,000,000 rows, 1 % failures), in this process, against the world served in "
        "a subprocess, with no client rate limit and a journal file.",
        parse_door_logs,
        door_logs_notes,
        quick=_QUICK_WORLD,
        expects=(*(label.strip() for _printed, label in _DOOR_LOGS_LINES), "the least"),
    ),
    Bench(
        "bench_time_to_fix.py",
        (),
        "Daemon: time from a refusal to its verified fix (issue 6)",
        "The scale scenario cut to 10 centers; 20 refusals per interval arrive at random, each "
        "on a person of its own, half `aca.clp_out_of_sync` at their lock, half "
        "`cloud.credential_unassigned` at their door. At a 5 s poll interval the daemon itself "
        "(`run_daemon`) runs in real time against the world served in a subprocess (refusals "
        "over 100 s). At 60 s, where real time would take half an hour, the daemon's timetable "
        "is replayed on a clock that skips idle time and waits (rate-limit spacing, "
        "verification polls, the world's push delay) and runs the rest in real time, with the "
        "world in process (refusals over 1,200 simulated seconds).",
        parse_time_to_fix,
        lambda _out: TIME_TO_FIX_NOTES,
        quick=("--refusals", "4", "--window", "5:10,60:120"),
        expects=tuple(
            f"{head}{tail}"
            for head, tails in (
                ("poll every ", ("5 s", "60 s")),
                ("poll 5 s, ", (*_TIME_TO_FIX_KINDS, "least p95")),
                ("poll 60 s, ", (*_TIME_TO_FIX_KINDS, "least p95")),
            )
            for tail in tails
        ),
    ),
    Bench(
        "bench_time_to_fix.py",
        ("--refusals", "50", "--window", "5:10,60:10"),
        "Daemon: time to fix under a burst of 50 refusals in 10 s (issue 14)",
        "The same world and daemon as above, but 50 refusals arrive within 10 s (50 people each "
        "at their own lock or door, half `aca.clp_out_of_sync`, half "
        "`cloud.credential_unassigned`, with the sandbox's 5 s push delay): the incidents of a "
        "run are worked concurrently (`[engine] max_concurrent_incidents`, 16), each toggle's "
        "verification holding only its own incident, and no later run: the next tick's run "
        "starts once a run's writes are sent. Each system's requests wait in one queue at its "
        "20 requests/s, an action's writes ahead of the reads; a run's incidents take their "
        "turns longest-waiting first, and each failure group reads only what its decision "
        "needs.",
        parse_time_to_fix,
        burst_notes,
        quick=("--refusals", "10", "--window", "5:5"),
        expects=("poll every 5 s", "poll 5 s, least p95"),
        label="time_to_fix_burst",
    ),
    Bench(
        "bench_time_to_fix.py",
        ("--refusals", "20", "--window", "60:1200", "--centers", str(TIME_TO_FIX_CENTERS)),
        "Daemon: time to fix as the centers grow (issue 14)",
        f"The 60 s timetable above (20 refusals over 1,200 simulated seconds), on the scale "
        f"world cut to {TIME_TO_FIX_CENTERS} centers instead of 10: each door-logs run reads "
        "one page of each project's log (acting on a project's refusals once its page and "
        "their facts are read), and each aca-rejections run scans the locks and IQs of 100 "
        "centers on CLP behind its fixes.",
        parse_time_to_fix,
        centers_notes,
        quick=("--refusals", "4", "--window", "60:120", "--centers", "50"),
        expects=("poll every 60 s", "poll 60 s, where the slowest went (all)"),
        label="time_to_fix_centers",
    ),
    Bench(
        "bench_stuck_toggle.py",
        (),
        "Engine: a run with one toggle that never lands (issue 14)",
        "The scale scenario cut to 10 centers, on the wall clock, in process: 10 people each "
        "refused at their own lock with `aca.clp_out_of_sync`, one of them sticky (ACA's push "
        "never reaches CLP). One `aca-rejections` run with `verify_timeout_seconds` 120 (the "
        "default): the stuck toggle's verification holds only its own lane, so the run takes "
        "about one timeout while the other nine are fixed and verified beside it.",
        parse_stuck_toggle,
        quick=("--verify-timeout", "20"),
        expects=("aca-rejections run with one toggle that never lands", "outcomes"),
    ),
    Bench(
        "bench_daemon_cycle.py",
        (),
        "Daemon: one full cycle at the rate limit (issue 6)",
        "The scale world (1,000 centers, 1,000,000 door logs) served in a subprocess; in this "
        "process `run_once` of door-logs, aca-rejections and license-renewal in sequence, on "
        "a real-time clock (the daemon runs aca-rejections beside the two cloud playbooks, so "
        "its cycle takes at most this). First the daemon's cold first cycle "
        "without a rate limit (to store the cursors and count its requests), then a steady "
        "cycle at 20 requests/s per system (the config's default), timed beside the floor that "
        "rate limit allows: per run the largest system's requests / 20 (each system's client "
        "has its own limiter, so the systems overlap), summed over the runs (in sequence here).",
        parse_cycle,
        lambda _out: CYCLE_NOTES,
        timeout=3600.0,
        quick=_QUICK_WORLD,
        expects=(
            "one full cycle",
            "the same cycle as the daemon runs it",
            "requests of the steady cycle",
            "door-logs",
            "aca-rejections",
            "license-renewal",
            "the daemon's first cycle",
            "peak RSS of the agent",
        ),
    ),
    Bench(
        "bench_fleet.py",
        ("--centers", "1000", "--replicas", "1,2,3"),
        "Fleet: replicas sharing one PostgreSQL journal (issue 15)",
        "The journal's write latency on SQLite and PostgreSQL; the run lock taken over after "
        "its holder is killed; then the scale world (1,000 centers, 1,000,000 door logs) "
        "served in a subprocess and, for 1, 2 and 3 replica processes, a cold and a steady "
        "cycle (a tick of each playbook deferred at once: one job per shard of the centers, "
        "8 shards as `[fleet] shards` has by default), each beside its rate-limit floor, with "
        "the sandbox's own count of each system's busiest second; last, with 3 replicas, the "
        "replica working the first run SIGKILLed 1 s into it.",
        parse_fleet,
        lambda _out: FLEET_NOTES,
        timeout=5400.0,
        quick=("--writes", "100", "--centers", "10", "--replicas", "1,2", "--kill-after", "0.2"),
        expects=(
            "journal write (intent or result, one committed transaction), SQLite",
            "journal write (intent or result, one committed transaction), PostgreSQL",
            "run lock taken over",
            "steady cycle over",
            "busiest second at the sandbox",
            "a dead replica's work taken over",
        ),
    ),
)


# --------------------------------------------------------------------------- running


def subprocess_env() -> dict[str, str]:
    """This environment with the checkout first on ``PYTHONPATH``.

    So the benchmarks measure the ``doorfix`` of the checkout they sit in, whatever else the
    interpreter has installed (an older wheel, or an editable install of another copy).
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


def run_one(bench: Bench) -> Outcome:
    """Run one benchmark script to its end; its printout, exit code and figures."""
    print(f"== {bench.command}", flush=True)
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    try:
        done = subprocess.run(  # noqa: S603 - our own interpreter running our own scripts
            [sys.executable, str(HERE / bench.script), *bench.args],
            cwd=ROOT,
            env=subprocess_env(),
            capture_output=True,
            text=True,
            timeout=bench.timeout,
            check=False,
        )
        stdout, stderr, code = done.stdout, done.stderr, done.returncode
    except subprocess.TimeoutExpired as exc:
        stdout = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
        stderr = f"timed out after {bench.timeout:g} s"
        code = -1
    seconds = time.perf_counter() - started
    outcome = Outcome(bench, stdout, stderr, code, seconds, (load_before, os.getloadavg()[0]))
    if code == 0:
        outcome.rows = bench.parse(stdout)
        outcome.missing = bench.missing(outcome.rows)
    print(stdout, end="", flush=True)
    if code != 0:
        print(f"   FAILED ({code}): {stderr[-2000:]}", flush=True)
    elif outcome.missing:
        print(f"   FAILED: no figure {'; '.join(outcome.missing)}", flush=True)
    print(f"   ({seconds:.0f} s)", flush=True)
    return outcome


def machine() -> str:
    """Cores, memory, load average now, Python and OS."""
    one, five, fifteen = os.getloadavg()
    memory = psutil.virtual_memory().total / 1024**3
    return (
        f"{os.cpu_count()} cores, {memory:.0f} GiB of memory, load average "
        f"{one:.2f} / {five:.2f} / {fifteen:.2f} (1 / 5 / 15 min) when the run began; "
        f"Python {platform.python_version()} on {platform.system()} {platform.release()}"
    )


def cell(text: str) -> str:
    """``text`` fit for a Markdown table cell."""
    return text.strip().replace("|", "/")


def table(rows: list[Row]) -> list[str]:
    """A Markdown table of figure, measured, target."""
    out = ["| figure | measured | target |", "|---|---|---|"]
    for figure, measured, target in rows:
        out.append(f"| {figure.replace('|', '/')} | {measured.replace('|', '/')} | {target} |")
    return out


def ci_paragraph() -> list[str]:
    """How CI runs the benchmarks, and where this page's figures come from (wrapped lines)."""
    text = (
        "CI (`.ci/run`) runs `python bench/run_all.py --quick` after the tests: every "
        f"benchmark at smaller sizes ({QUICK_CENTERS} centers and {QUICK_ROWS:,} door logs "
        "where the runs here use 1,000 and 1,000,000; fewer pages, requests, rounds and "
        "refusals), in about two minutes. It fails when a benchmark exits non-zero or leaves "
        "out a figure of its table; it asserts no target (small sizes on a shared CI machine "
        "are not the measured configuration) and writes nothing here. The figures on this "
        "page come from the full `python bench/run_all.py`."
    )
    return textwrap.wrap(text, width=90, break_on_hyphens=False, break_long_words=False)


def page(outcomes: list[Outcome], began: datetime, where: str, total: float) -> str:
    """The whole of docs/benchmarks.md."""
    lines = [
        "# Benchmarks",
        "",
        "Each benchmark prints its own figures; this page is written by `python bench/run_all.py`",
        "from one run of all of them, with the command that made each figure. Servers bind",
        "127.0.0.1 only. Where a benchmark measures the client's memory, the sandbox runs in a",
        "separate process (`bench/_harness.py`), so the figure is the client's alone. On a",
        "shared machine the wall-time figures are on the pessimistic side (the connector",
        "benchmark alternates its passes over several rounds and keeps the best of each for",
        "that reason); client CPU per row does not depend on the load.",
        "",
        *ci_paragraph(),
        "",
        f"Run: {began:%Y-%m-%d %H:%M} UTC, {total / 60:.0f} minutes in all. Machine: {where}.",
        "",
        "The load average beside each benchmark is the machine's, other work included; the",
        "CPU-bound figures (build, pages, rows/s) grow with it, the rate-limited ones do not.",
        "",
        "| benchmark | runtime | load average (1 min) at start → end | status |",
        "|---|---|---|---|",
    ]
    for o in outcomes:
        load = f"{o.load[0]:.2f} → {o.load[1]:.2f}"
        lines.append(f"| `{o.bench.command}` | {o.seconds:.0f} s | {load} | {o.status} |")
    for o in outcomes:
        lines += ["", f"## {o.bench.title}", "", f"`{o.bench.command}`", "", o.bench.what, ""]
        if o.code != 0:
            lines += ["The benchmark failed:", "", "```", o.stderr.strip()[-3000:], "```"]
        elif o.rows:
            lines += table(o.rows)
        notes = o.bench.notes(o.stdout) if o.code == 0 else ""
        if notes:
            lines += ["", notes]
        lines += [
            "",
            "<details><summary>printout</summary>",
            "",
            "```",
            o.stdout.rstrip(),
            "```",
            "",
            "</details>",
        ]
    return "\n".join(lines) + "\n"


def quick_table(outcomes: list[Outcome], began: datetime, where: str, total: float) -> str:
    """The quick pass's short table: each benchmark's runtime and status, then its figures."""
    lines = [
        f"# Benchmarks, quick pass: {began:%Y-%m-%d %H:%M} UTC, {total:.0f} s in all",
        "",
        f"Machine: {where}.",
        "",
        "Smaller sizes than docs/benchmarks.md (`python bench/run_all.py`), so the targets are",
        "shown beside the figures but not asserted.",
        "",
        "| benchmark | runtime | status |",
        "|---|---|---|",
        *(f"| `{o.bench.command}` | {o.seconds:.0f} s | {o.status} |" for o in outcomes),
        "",
        "| benchmark | figure | measured | target |",
        "|---|---|---|---|",
    ]
    for o in outcomes:
        for figure, measured, target in o.rows:
            lines.append(f"| {o.bench.name} | {cell(figure)} | {cell(measured)} | {target} |")
    return "\n".join(lines) + "\n"


def parse_args() -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=None, help="benchmark names to run")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smaller sizes (CI's smoke pass): print a short table, assert no target, "
        "never write docs/benchmarks.md",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="the page (default docs/benchmarks.md); with --quick, a file for the short table",
    )
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    unknown = set(args.only or ()) - {b.name for b in BENCHMARKS}
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    if args.quick and args.output is not None and args.output.resolve() == DOC:
        parser.error("--quick never writes docs/benchmarks.md: its figures are the full run's")
    return args


def choose(only: list[str] | None, quick: bool) -> list[Bench]:
    """The benchmarks to run (all, or those named), quickened for ``--quick``."""
    chosen = [b for b in BENCHMARKS if not only or b.name in only]
    return [b.quickened() for b in chosen] if quick else chosen


def write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` and say so."""
    path.write_text(text)
    shown = path.resolve()
    print(f"wrote {shown.relative_to(ROOT) if shown.is_relative_to(ROOT) else shown}")


def fail_if_any(outcomes: list[Outcome]) -> None:
    """Exit non-zero, naming each benchmark that failed or left out a figure."""
    failed = [o for o in outcomes if not o.ok]
    if failed:
        raise SystemExit(
            "benchmark(s) failed: "
            + "; ".join(f"{o.bench.name}: {o.status.replace('**', '')}" for o in failed)
        )


def main() -> None:
    """Parse arguments, run the benchmarks, print their figures, write the page or table."""
    args = parse_args()
    chosen = choose(args.only, args.quick)
    began = datetime.now(UTC)
    where = machine()
    print(f"machine: {where}", flush=True)
    started = time.perf_counter()
    outcomes = [run_one(bench) for bench in chosen]
    total = time.perf_counter() - started
    print(f"all benchmarks: {total / 60:.1f} minutes", flush=True)
    if args.quick:
        text = quick_table(outcomes, began, where, total)
        print(text, end="")
        if args.output is not None and not args.no_write:
            write(args.output, text)
    else:
        for o in outcomes:
            for figure, measured, target in o.rows:
                print(f"  {o.bench.name}: {figure.strip()}: {measured} {target}".rstrip())
        if not (args.no_write or args.only):
            write(args.output or DOC, page(outcomes, began, where, total))
    fail_if_any(outcomes)


if __name__ == "__main__":
    main()
