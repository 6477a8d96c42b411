"""The hostile-upstream probes of issue 12 as figures: doorfix (the CLI, a real subprocess)
against :mod:`support.hostile` served on 127.0.0.1.

``python tests/support/hostile_probe.py [echo|trickle|bomb|huge ...]`` prints one line per
probe: secret occurrences in every output, seconds a call held the run, peak RSS. The tests
in ``tests/faults/test_hostile.py`` assert the same figures, at sizes that keep them quick.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, quote_plus

if __name__ == "__main__":  # run as a script: make ``support`` importable as in the tests
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from doorfix.clock import SystemClock
from doorfix.sandbox.api.app import create_app
from doorfix.sandbox.api.auth import SandboxCredentials
from doorfix.sandbox.api.server import ServedSandbox
from doorfix.sandbox.faults.api import ApiFaults
from doorfix.sandbox.scenarios.registry import build_scenario
from support.configs import write_config
from support.hostile import Hostile, gzip_bomb

#: secrets with every character that changes form on the wire
CREDS = SandboxCredentials(
    cloud_client_secret='CLOUD/se+cr=et&9f"3a\\61',
    aca_api_key='ACA/ke+y=4b&8d"20\\f5',
    clp_client_secret='CLP/se+cr=et&c0"7b\\44',
)
#: a token the sandbox issued (``cloud-`` or ``clp-`` and ``secrets.token_urlsafe(24)``)
TOKEN = re.compile(r"\b(?:cloud|clp)-[A-Za-z0-9_-]{32}(?![A-Za-z0-9_-])")
#: the cloud's command path and the CLP API (the first call after each token)
CLOUD_API, ACA_API, CLP_API = "/cloud/api/", "/aca/", "/clp/"
CLOUD_TOKEN, CLP_TOKEN = "/cloud/oauth/token", "/clp-identity/"
#: (playbook, hostile paths): each playbook, and each system's token and API calls echoed
ECHO_CASES = (
    ("door-logs", (CLOUD_TOKEN,)),
    ("door-logs", (CLOUD_API,)),
    ("license-renewal", (CLOUD_API,)),
    ("aca-rejections", (ACA_API,)),
    ("aca-rejections", (CLP_TOKEN,)),
    ("aca-rejections", (CLP_API,)),
)
#: the wrapper that runs the CLI and reports its own peak RSS (KiB) on its last stderr line
#: (VmHWM, not ru_maxrss: the latter keeps the high-water mark of the forked parent)
RSS_WRAPPER = (
    "import atexit, re, sys\n"
    "def peak():\n"
    "    status = open('/proc/self/status').read()\n"
    "    sys.stderr.write('\\nMAXRSS_KIB %s\\n' % re.search(r'VmHWM:\\s+(\\d+)', status)[1])\n"
    "atexit.register(peak)\n"
    "sys.argv = ['doorfix', *sys.argv[1:]]\n"
    "from doorfix.agent.cli.app import main\n"
    "main()\n"
)


def forms(secret: str, user: str | None = None) -> dict[str, str]:
    """Every form ``secret`` takes on the wire."""
    out = {
        "raw": secret,
        "url": quote(secret, safe=""),
        "form": quote_plus(secret),
        "json": json.dumps(secret)[1:-1],
    }
    if user is not None:
        out["basic"] = base64.b64encode(f"{user}:{secret}".encode()).decode()
    return out


def secret_forms() -> dict[str, str]:
    """``name/form -> text`` for the three secrets."""
    found: dict[str, str] = {}
    for name, secret, user in (
        ("cloud", CREDS.cloud_client_secret, None),
        ("aca", CREDS.aca_api_key, None),
        ("clp", CREDS.clp_client_secret, CREDS.clp_client_id),
    ):
        for form, text in forms(secret, user).items():
            found[f"{name}/{form}"] = text
    return found


def occurrences(text: str) -> dict[str, int]:
    """How often each form of each secret, and any sandbox token, occurs in ``text``."""
    counts = {k: text.count(v) for k, v in secret_forms().items()}
    counts["token"] = len(TOKEN.findall(text))
    return {k: v for k, v in counts.items() if v}


def env() -> dict[str, str]:
    """A doorfix process's environment: the probe's secrets, nothing of doorfix inherited."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("DOORFIX_")}
    base.update(
        DOORFIX_CLOUD_CLIENT_SECRET=CREDS.cloud_client_secret,
        DOORFIX_ACA_API_KEY=CREDS.aca_api_key,
        DOORFIX_CLP_CLIENT_SECRET=CREDS.clp_client_secret,
    )
    return base


@contextmanager
def served(mode: str, paths: tuple[str, ...], **knobs: float) -> Iterator[ServedSandbox]:
    """The demo sandbox behind :class:`Hostile` on 127.0.0.1."""
    world = build_scenario("demo", seed=0, clock=SystemClock())
    inner = create_app(world, credentials=CREDS, api_faults=ApiFaults(seed=0))
    app = Hostile(inner, mode=mode, paths=paths, **knobs)  # type: ignore[arg-type]
    with ServedSandbox(app) as box:  # type: ignore[arg-type]
        yield box


@dataclass
class Ran:
    """One CLI run: exit code, outputs, wall seconds, peak RSS (MiB) when measured."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float
    peak_mib: float | None = None


def run_cli(
    box: ServedSandbox,
    workdir: Path,
    playbook: str,
    *,
    http: str = "retry_attempts = 1\n",
    extra: str = "",
    timeout: float = 120,
    measure_rss: bool = False,
    json_out: bool = True,
    environ: dict[str, str] | None = None,
) -> Ran:
    """``doorfix --config … run PLAYBOOK [--json]`` against ``box``."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = write_config(
        workdir / "doorfix.toml", box.urls, workdir / "journal.sqlite3", extra, http=http
    )
    args = ["--config", str(config), "run", playbook, *(["--json"] if json_out else [])]
    command = (
        [sys.executable, "-c", RSS_WRAPPER, *args]
        if measure_rss
        else [sys.executable, "-m", "doorfix", *args]
    )
    started = time.monotonic()
    proc = subprocess.Popen(
        command,
        env=env() if environ is None else environ,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    seconds = time.monotonic() - started
    peak = None
    match = re.search(r"MAXRSS_KIB (\d+)", err)
    if match:
        peak = int(match.group(1)) / 1024
    return Ran(proc.returncode, out, err, seconds, peak)


def journal_bytes(workdir: Path) -> str:
    """The journal's files (with -wal and -shm) as text, byte for byte."""
    texts = []
    for path in sorted(workdir.glob("journal.sqlite3*")):
        texts.append(path.read_bytes().decode("utf-8", "replace"))
    return "\n".join(texts)


def probe_echo(root: Path) -> dict[str, int]:
    """Secret occurrences over stdout, stderr and the journal files, all echo cases."""
    total: dict[str, int] = {}
    for n, (playbook, paths) in enumerate(ECHO_CASES):
        with served("echo", paths) as box:
            work = root / f"echo{n}"
            ran = run_cli(box, work, playbook)
            text = "\n".join([ran.stdout, ran.stderr, journal_bytes(work)])
            for key, count in occurrences(text).items():
                total[key] = total.get(key, 0) + count
    return total


def probe_trickle(root: Path, *, cap: float = 60.0, http: str = "timeout_seconds = 2\n") -> str:
    """How long a server trickling a byte a second held a door-logs run (the whole process)."""
    with served("trickle", (CLOUD_API,), interval=1.0) as box:
        ran = run_cli(box, root / "trickle", "door-logs", http=http, timeout=cap)
    return f"process ran {ran.seconds:.1f} s (exit {ran.returncode}; cap {cap:g} s)"


def probe_rss(root: Path, mode: str, size: int) -> float | None:
    """Peak RSS (MiB) of one door-logs run whose first command answers a bomb or a huge page."""
    if mode == "bomb":
        gzip_bomb(size)  # made before serving: a slow first answer would only time out
    with served(mode, (CLOUD_API,), size=size) as box:
        ran = run_cli(box, root / mode, "door-logs", measure_rss=True, timeout=300)
    print(f"  ({mode}: exit {ran.returncode}: {ran.stderr.strip().splitlines()[-2][-160:]})")
    return ran.peak_mib


def main(argv: list[str]) -> None:
    """Print the figures of the probes named (all by default)."""
    import tempfile

    which = argv or ["echo", "trickle", "bomb", "huge"]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if "echo" in which:
            found = probe_echo(root)
            print(f"echo: secret/token occurrences {sum(found.values())} {found}")
        if "trickle" in which:
            print(f"trickle (timeout_seconds 2, 5 attempts): {probe_trickle(root)}")
            one = probe_trickle(root, http="timeout_seconds = 2\nretry_attempts = 1\n")
            print(f"trickle (timeout_seconds 2, 1 attempt): {one}")
        if "bomb" in which:
            print(f"bomb (2 MB gzip): peak RSS {probe_rss(root, 'bomb', 2_000_000)} MiB")
        if "huge" in which:
            print(f"huge (300 MB page): peak RSS {probe_rss(root, 'huge', 300_000_000)} MiB")


if __name__ == "__main__":
    main(sys.argv[1:])
