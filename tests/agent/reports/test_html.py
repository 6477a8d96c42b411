"""The HTML report: one self-contained file that a browser draws with its chart and tables."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from reportkit import Demo

from doorfix.agent.journal.store import Journal
from doorfix.agent.reports.period import PeriodReport, build_report
from doorfix.agent.reports.render import OUTCOME_COLOURS, render_html
from doorfix.clock import ManualClock

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
#: the table headers' background (render.py's CSS)
HEADER_GREY = "#eceff1"


def report_of(demo: Demo) -> PeriodReport:
    now = demo.clock.now()
    return build_report(demo.journal, since=now - timedelta(days=7), until=now)


async def test_the_file_holds_the_chart_and_the_tables(three_days: Demo) -> None:
    report = report_of(three_days)
    page = render_html(report)

    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<svg") == 1
    # one bar per outcome of each day that had incidents of it
    bars = sum(1 for day in report.per_day for n in day.counts.values() if n)
    assert page.count('class="bar"') == bars
    assert page.count('class="incident-row"') == len(report.problems)
    assert page.count('class="step-row"') == len(report.section("needs_human"))
    assert page.count('class="action-row"') == len(report.actions) > 0
    assert "Power-cycle IQ iq-3" in page
    assert "toggle_access_matrix" in page
    # self-contained: no script, nothing fetched
    assert "<script" not in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "default-src 'none'" in page


def test_an_empty_period_still_draws_a_chart(tmp_path: Path) -> None:

    now = datetime(2026, 11, 16, 8, 0, tzinfo=UTC)
    with Journal(tmp_path / "j.sqlite3", clock=ManualClock(now)) as journal:
        report = build_report(journal, since=now - timedelta(days=1), until=now)
    page = render_html(report)
    assert "no incidents in this period" in page
    assert 'class="bar"' not in page


def chromium() -> str | None:
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


def decode_png(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and RGB rows of an 8-bit RGB or RGBA, non-interlaced PNG (stdlib only)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, chunks = 8, []
    width = height = colour_type = 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8, depth
            assert colour_type in (2, 6), colour_type
            assert interlace == 0
        elif kind == b"IDAT":
            chunks.append(body)
        elif kind == b"IEND":
            break
    raw = zlib.decompress(b"".join(chunks))
    bpp = 3 if colour_type == 2 else 4
    stride = width * bpp
    prev = bytearray(stride)
    rows = []
    at = 0
    for _ in range(height):
        kind, line = raw[at], bytearray(raw[at + 1 : at + 1 + stride])
        at += 1 + stride
        if kind == 1:
            for x in range(bpp, stride):
                line[x] = (line[x] + line[x - bpp]) & 0xFF
        elif kind == 2:
            line = bytearray((a + b) & 0xFF for a, b in zip(line, prev, strict=True))
        elif kind == 3:
            for x in range(stride):
                left = line[x - bpp] if x >= bpp else 0
                line[x] = (line[x] + ((left + prev[x]) >> 1)) & 0xFF
        elif kind == 4:
            for x in range(stride):
                a = line[x - bpp] if x >= bpp else 0
                b = prev[x]
                c = prev[x - bpp] if x >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        prev = line
        rgb = bytes(line) if bpp == 3 else bytes(v for i, v in enumerate(line) if i % 4 != 3)
        rows.append(rgb)
    return width, height, rows


def rgb(colour: str) -> bytes:
    return bytes.fromhex(colour.removeprefix("#"))


def solid_blocks(rows: list[bytes], colour: bytes, *, width: int, height: int) -> int:
    """How many separate ``width`` x ``height`` (or larger) blocks of ``colour`` the image has."""
    run = colour * width
    streak, blocks = 0, 0
    for row in rows:
        if run in row:
            streak += 1
            if streak == height:
                blocks += 1
        else:
            streak = 0
    return blocks


def test_chromium_draws_the_chart_and_the_tables(three_days: Demo, tmp_path: Path) -> None:
    browser = chromium()
    if browser is None:
        pytest.skip("no chromium binary (install Debian's `chromium` package to run this test)")
    report = report_of(three_days)
    page = tmp_path / "report.html"
    page.write_text(render_html(report), encoding="utf-8")
    shot = tmp_path / "report.png"
    profile = tmp_path / "profile"
    command = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        f"--screenshot={shot}",
        "--window-size=1200,1600",
        page.as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=45, check=False)
    assert shot.exists(), f"no screenshot (exit {done.returncode}): {done.stderr[-2000:]}"
    data = shot.read_bytes()
    assert len(data) > 30_000, "a blank page compresses to almost nothing"

    width, height, rows = decode_png(data)
    assert (width, height) == (1200, 1600)
    # bars are solid blocks at least 30 px wide and 30 px tall: larger than the tiles'
    # 6 px borders, the 12 px legend squares and the 18 px badges
    for outcome in ("fixed", "needs_human"):
        colour = rgb(OUTCOME_COLOURS[outcome])
        assert solid_blocks(rows, colour, width=30, height=30) >= 1, outcome
    # the thin bars (no_fault; deferred, pending if any are left) are present as pixels
    thin = [o for o in ("no_fault", "deferred", "pending_verification") if report.by_outcome.get(o)]
    assert "no_fault" in thin
    for outcome in thin:
        colour = rgb(OUTCOME_COLOURS[outcome])
        assert any(colour in row for row in rows), outcome
    # table header rows: wide grey bands, one per table on screen
    assert solid_blocks(rows, rgb(HEADER_GREY), width=300, height=10) >= 1
    # and much of the page is text and table, not white
    inked = sum(1 for row in rows if row.count(b"\xff\xff\xff") < width - 20)
    assert inked > height // 2
