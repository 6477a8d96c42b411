"""Hostile upstreams (issue 12): nothing leaks, nothing wedges, nothing floods.

doorfix, as a real CLI process, against :mod:`support.hostile` served by uvicorn on 127.0.0.1:
a vendor that echoes our credentials back, one that trickles, a gzip bomb, a huge page, names
full of escape sequences. ``tests/support/hostile_probe.py`` prints the same figures at full
size.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from structlog.testing import capture_logs
from support.demo import DAEMON_SETTINGS, make_demo
from support.hostile_probe import (
    CLOUD_API,
    ECHO_CASES,
    Ran,
    env,
    journal_bytes,
    occurrences,
    run_cli,
    served,
)
from support.polling import wait_for

from doorfix.agent.daemon.scheduler import DaemonReady, run_daemon
from doorfix.agent.journal.store import Journal
from doorfix.clock import SystemClock

#: the most a doorfix process may use, whatever an upstream answers
PEAK_RSS_MIB = 200


def _journal_runs(workdir: Path) -> list[tuple[str, str | None]]:
    with sqlite3.connect(workdir / "journal.sqlite3") as conn:
        return list(conn.execute("SELECT status, error FROM runs"))


def test_credentials_a_vendor_echoes_back_reach_no_output(tmp_path: Path) -> None:
    """Each playbook, each system's token and API calls echoed: no secret form, no token."""

    def one(n: int) -> tuple[Ran, str]:
        playbook, paths = ECHO_CASES[n]
        with served("echo", paths) as box:
            work = tmp_path / f"echo{n}"
            ran = run_cli(box, work, playbook)
            return ran, journal_bytes(work)

    with ThreadPoolExecutor(len(ECHO_CASES)) as pool:
        results = list(pool.map(one, range(len(ECHO_CASES))))
    for (playbook, paths), (ran, journal) in zip(ECHO_CASES, results, strict=True):
        assert ran.returncode in (1, 2), (playbook, paths, ran.stderr)
        last = ran.stderr.strip().splitlines()[-1]
        # the vendor's text is still shown, with what it quoted of ours taken out
        assert "***" in last, last
        assert occurrences("\n".join([ran.stdout, ran.stderr, journal])) == {}, (playbook, paths)


def test_a_trickling_server_is_cut_at_the_whole_call_deadline(tmp_path: Path) -> None:
    with served("trickle", (CLOUD_API,), interval=0.2) as box:
        ran = run_cli(box, tmp_path, "door-logs", http="timeout_seconds = 1\nretry_attempts = 1\n")
    assert ran.returncode == 1, ran.stderr
    assert "no complete answer within 1 s" in ran.stderr
    assert ran.seconds < 15  # the process's start-up included; it was held for ever before
    assert _journal_runs(tmp_path)[0][0] == "failed"


def test_a_run_stops_at_max_run_seconds_and_records_it(tmp_path: Path) -> None:
    with served("trickle", (CLOUD_API,), interval=0.2) as box:
        ran = run_cli(
            box,
            tmp_path,
            "door-logs",
            http="timeout_seconds = 30\nretry_attempts = 1\n",
            extra="[engine]\nmax_run_seconds = 1\n",
        )
    assert ran.returncode == 1, ran.stderr
    assert "max_run_seconds" in ran.stderr.strip().splitlines()[-1]
    assert ran.seconds < 15
    ((status, error),) = _journal_runs(tmp_path)
    assert status == "failed"
    assert error is not None
    assert "max_run_seconds" in error


@pytest.mark.parametrize(("mode", "size"), [("bomb", 2_000_000), ("huge", 300_000_000)])
def test_an_answer_over_max_response_bytes_is_refused_in_little_memory(
    tmp_path: Path, mode: str, size: int
) -> None:
    from support.hostile import gzip_bomb

    if mode == "bomb":
        gzip_bomb(size)  # made before serving, not while doorfix waits for it
    with served(mode, (CLOUD_API,), size=size) as box:
        ran = run_cli(box, tmp_path, "door-logs", measure_rss=True)
    assert ran.returncode == 1, ran.stderr
    last = [line for line in ran.stderr.splitlines() if line.startswith("doorfix:")][-1]
    assert "max_response_bytes" in last
    assert "cloud get_door_log" in last  # the endpoint is named
    assert ran.peak_mib is not None
    assert ran.peak_mib < PEAK_RSS_MIB, ran.peak_mib


RAW = ("\x1b", "\x07", "\u202e")


def test_escape_sequences_in_vendor_names_never_reach_a_text_view(tmp_path: Path) -> None:
    paths = ("/cloud/api/", "/aca/", "/clp/")
    with served("names", paths) as box:
        ran = run_cli(box, tmp_path, "door-logs", json_out=False)
        assert ran.returncode == 0, ran.stderr
        outputs = [ran.stdout + ran.stderr]
        config = str(tmp_path / "doorfix.toml")
        views = (
            ["history", "--door", "d-10"],
            ["report", "--format", "text"],
            ["report", "--format", "markdown"],
        )
        for args in views:
            done = subprocess.run(
                [sys.executable, "-m", "doorfix", "--config", config, *args],
                env=env(),
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert done.returncode == 0, done.stderr
            outputs.append(done.stdout + done.stderr)
    for text in outputs:
        assert not [c for c in RAW if c in text]
        # shown, escaped, not dropped (the names are in the steps of each view)
        assert "\\x1b" in text.replace("\\\\", "\\")
    markdown = outputs[-1]
    assert "](http" not in markdown
    assert "<b>" not in markdown
    assert "&lt;b&gt;" in markdown


def test_text_views_escape_controls_and_markdown_escapes_markup() -> None:
    from doorfix.text import markdown_text, printable

    assert printable("a\x1b[31mb\u202ec\x9bd") == "a\\x1b[31mb\\u202ec\\x9bd"
    assert printable("one\ntwo", keep_newlines=True) == "one\ntwo"
    assert printable("one\ntwo") == "one\\x0atwo"
    md = markdown_text("[x](http://evil.example) ![i](y) <img src=x> *b* | www.evil.example")
    assert "[x](" not in md
    assert "![" not in md
    assert "<img" not in md
    assert "http://" not in md
    assert "&lt;img" in md
    assert "\\*b\\*" in md
    assert "\\|" in md
    assert "www[.]" in md


def test_the_journal_and_its_files_are_private(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    old = os.umask(0o022)
    try:
        journal = Journal(path, clock=SystemClock())
        try:

            async def hold() -> None:
                async with journal.run_lock.held("door-logs", scopes=("cloud",)):
                    journal.start_run("door-logs", dry_run=False)

            asyncio.run(hold())
            files = [path, Path(f"{path}-wal"), Path(f"{path}-shm"), Path(f"{path}.lock")]
            modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in files}
        finally:
            journal.close()
    finally:
        os.umask(old)
    assert modes == dict.fromkeys(modes, 0o600)
    assert len(modes) == 4


def test_an_older_world_readable_journal_is_made_private(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    Journal(path, clock=SystemClock()).close()
    path.chmod(0o644)
    Journal(path, clock=SystemClock()).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


class _Proxy:
    """A TCP 'proxy' on 127.0.0.1 that records the first bytes of each connection and hangs up."""

    def __init__(self) -> None:
        import socket
        import threading

        self.seen: list[bytes] = []
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                try:
                    self.seen.append(conn.recv(4096))
                except OSError:
                    self.seen.append(b"")

    def close(self) -> None:
        self._sock.close()


def test_environment_proxies_are_ignored_unless_trusted(tmp_path: Path) -> None:
    proxy = _Proxy()
    proxied = {
        **env(),
        "HTTP_PROXY": proxy.url,
        "HTTPS_PROXY": proxy.url,
        "ALL_PROXY": proxy.url,
        "NO_PROXY": "",
    }
    try:
        with served("echo", ()) as box:
            plain = run_cli(box, tmp_path / "plain", "license-renewal", environ=proxied)
            trusted = run_cli(
                box,
                tmp_path / "trusted",
                "license-renewal",
                environ=proxied,
                extra="[http]\ntrust_env = true\n",
            )
    finally:
        proxy.close()
    # the default: the proxy variables are not followed, and the run completes
    assert plain.returncode == 0, plain.stderr
    # trusted: the requests went to the 'proxy' (which hung up)
    assert trusted.returncode != 0
    assert proxy.seen
    assert b"127.0.0.1" in proxy.seen[0]


@pytest.mark.parametrize(
    ("proxy", "base", "ok"),
    [
        ("https://proxy.example:8443", "https://cloud.example", True),
        ("http://127.0.0.1:3128", "http://127.0.0.1:8600/cloud", True),
        ("http://proxy.example:3128", "https://cloud.example", False),
        ("socks5://proxy.example:1080", "https://cloud.example", False),
    ],
)
def test_an_explicit_proxy_must_be_https_unless_everything_is_loopback(
    proxy: str, base: str, ok: bool
) -> None:
    from doorfix.agent.config import parse_settings
    from doorfix.errors import ConfigError

    data = {"http": {"proxy": proxy}, "cloud": {"base_url": base}}
    if ok:
        assert str(parse_settings(data).http.proxy).startswith(proxy.split(":", maxsplit=1)[0])
    else:
        with pytest.raises(ConfigError, match="proxy"):
            parse_settings(data)


def test_a_secret_that_is_not_ascii_exits_2_naming_the_variable(tmp_path: Path) -> None:
    with served("echo", ()) as box:
        first = run_cli(box, tmp_path, "license-renewal")
        done = run_cli(
            box, tmp_path, "door-logs", environ={**env(), "DOORFIX_ACA_API_KEY": "clé-sécrète"}
        )
    assert first.returncode == 0, first.stderr
    assert done.returncode == 2
    assert "DOORFIX_ACA_API_KEY" in done.stderr
    assert "Traceback" not in done.stderr
    assert [status for status, _ in _journal_runs(tmp_path)] == ["completed"]  # no new row


async def test_no_run_row_is_left_running_by_an_unexpected_error(tmp_path: Path) -> None:
    from doorfix.agent.engine.run import run_once

    demo = make_demo(journal=tmp_path / "journal.sqlite3")
    await demo.agent.clients.aclose()  # every call now fails outside the connector error tree
    try:
        with pytest.raises(RuntimeError):
            await run_once(demo.agent, "door-logs")
        runs = demo.agent.journal.runs()
    finally:
        demo.agent.journal.close()
    assert [r.status for r in runs] == ["failed"]


def test_the_control_api_takes_only_json_from_its_own_loopback_address() -> None:
    with served("echo", ()) as box:
        control = f"{box.base_url}/sandbox"
        with httpx.Client(timeout=10) as client:
            ok = client.post(f"{control}/clock", json={"advance_seconds": 1})
            plain = client.post(
                f"{control}/reset", content=b'{"seed": 1}', headers={"Content-Type": "text/plain"}
            )
            form = client.post(f"{control}/reset", data={"seed": "1"})
            bare = client.post(f"{control}/reset")
            host = client.post(
                f"{control}/reset", json={"seed": 1}, headers={"Host": "evil.example"}
            )
            origin = client.post(
                f"{control}/reset", json={"seed": 1}, headers={"Origin": "http://evil.example"}
            )
            truth = client.get(f"{control}/truth", headers={"Host": f"evil.example:{box.port}"})
            own = client.get(f"{control}/truth", headers={"Origin": box.base_url})
            api = client.get(f"{box.base_url}/aca/api/v1/centers")  # vendor APIs unchanged
    assert ok.status_code != 415
    assert ok.status_code < 500
    assert [plain.status_code, form.status_code, bare.status_code] == [415, 415, 415]
    assert [host.status_code, origin.status_code, truth.status_code] == [421, 403, 421]
    assert own.status_code == 200
    assert api.status_code == 401  # no key: the API answered, the guard did not


async def test_daemon_health_checks_host_and_is_503_while_a_run_is_over_its_deadline(
    tmp_path: Path,
) -> None:
    path = tmp_path / "journal.sqlite3"
    schedule = {
        name: {"every_seconds": 60, "enabled": name == "door_logs"}
        for name in ("door_logs", "aca_rejections", "license_renewal")
    }
    demo = make_demo(
        {**DAEMON_SETTINGS, "schedule": schedule, "engine": {"max_run_seconds": 0.5}},
        journal=path,
    )
    other = Journal(path, clock=SystemClock())  # another process's run, say
    ready: list[DaemonReady] = []
    stop = asyncio.Event()
    try:
        async with other.run_lock.held("aca-rejections", scopes=("aca-clp",)):
            task = asyncio.create_task(
                run_daemon(demo.agent, stop=stop, on_ready=ready.append, handle_signals=False)
            )

            def health() -> httpx.Response:
                return httpx.get(f"{ready[0].url}/healthz", timeout=5)

            await asyncio.to_thread(wait_for, lambda: bool(ready), timeout=20, what="ready")
            await asyncio.to_thread(
                wait_for,
                lambda: health().status_code == 503,
                timeout=20,
                what="healthz 503 while the run waits past its deadline",
            )
            body = (await asyncio.to_thread(health)).json()
            rebound = await asyncio.to_thread(
                httpx.get, f"{ready[0].url}/healthz", headers={"Host": "evil.example"}, timeout=5
            )
        stop.set()
        await asyncio.wait_for(task, 30)
    finally:
        stop.set()
        await demo.agent.clients.aclose()
        demo.agent.journal.close()
        other.close()
    assert "deadline" in body["reason"]
    assert rebound.status_code == 421


async def test_waiting_on_the_run_lock_is_a_warning_with_the_holders_pid_and_playbook(
    tmp_path: Path,
) -> None:
    from doorfix.agent.engine.run import run_once

    path = tmp_path / "journal.sqlite3"
    demo = make_demo(journal=path)
    other = Journal(path, clock=SystemClock())
    try:
        with capture_logs() as logs:
            async with other.run_lock.held("door-logs", scopes=("cloud",)):
                waiting = asyncio.create_task(run_once(demo.agent, "aca-rejections"))
                await asyncio.to_thread(
                    wait_for,
                    lambda: any(e["event"] == "journal_busy" for e in logs),
                    timeout=10,
                    what="journal_busy",
                )
            await asyncio.wait_for(waiting, 60)
    finally:
        await demo.agent.clients.aclose()
        demo.agent.journal.close()
        other.close()
    (busy,) = [e for e in logs if e["event"] == "journal_busy"]
    assert busy["log_level"] == "warning"
    assert busy["holder_pid"] == os.getpid()
    assert busy["holder_playbook"] == "door-logs"


def test_journal_holds_personal_data_says_the_readme() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert "personal data" in readme
    assert "retention_days" in readme
