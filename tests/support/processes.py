"""``python -m doorfix`` as a real subprocess, with the sandbox's secrets in its environment.

:func:`spawn_doorfix` starts one command (``run``, ``report``, …) with its output piped;
:class:`DaemonProcess` starts ``doorfix daemon`` and reads its JSON log lines from stderr on a
thread as they come, so a test can wait for an event (``daemon_started``, ``run_completed``)
and then stop the daemon with SIGTERM/SIGINT or SIGKILL.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, TypeVar

from doorfix.sandbox.api.auth import SandboxCredentials
from support.polling import wait_for

#: the command under test
DOORFIX = [sys.executable, "-m", "doorfix"]

#: the variables doorfix reads its secrets from
SECRET_VARS = ("DOORFIX_CLOUD_CLIENT_SECRET", "DOORFIX_ACA_API_KEY", "DOORFIX_CLP_CLIENT_SECRET")


def secret_env(credentials: SandboxCredentials | None = None) -> dict[str, str]:
    """:data:`SECRET_VARS` set to the credentials' secrets (the sandbox's own by default)."""
    creds = credentials or SandboxCredentials()
    values = (creds.cloud_client_secret, creds.aca_api_key, creds.clp_client_secret)
    return dict(zip(SECRET_VARS, values, strict=True))


def sandbox_env() -> dict[str, str]:
    """This process's environment with the sandbox's secrets added."""
    return {**os.environ, **secret_env()}


def spawn_doorfix(
    *args: str,
    env: dict[str, str] | None = None,
    stdin: int | IO[Any] | None = None,
    stdout: int | IO[Any] | None = subprocess.PIPE,
) -> subprocess.Popen[str]:
    """``python -m doorfix ARGS``, stderr piped, in :func:`sandbox_env` unless ``env`` is given."""
    return subprocess.Popen(
        [*DOORFIX, *args],
        env=sandbox_env() if env is None else env,
        stdin=stdin,
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
    )


class DaemonProcess:
    """``doorfix --config CONFIG daemon`` in a subprocess, its JSON log lines collected."""

    #: how long the daemon may take to log ``daemon_started``
    start_timeout: float = 20.0
    #: how long a stop may take (the run in flight is finished first)
    stop_timeout: float = 30.0

    def __init__(
        self,
        config: Path | None,
        *,
        args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        """``config`` None: no ``--config`` (``args`` then says how, e.g. ``--sandbox``)."""
        where = ("--config", str(config)) if config is not None else ()
        self.proc = spawn_doorfix(*where, "daemon", *args, env=env, stdout=subprocess.DEVNULL)
        #: the log lines that are JSON, decoded
        self.lines: list[dict[str, Any]] = []
        #: every line of stderr, as written
        self.raw: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.raw.append(line)
            try:
                self.lines.append(json.loads(line))
            except json.JSONDecodeError:
                continue

    def events(self, name: str, **match: Any) -> list[dict[str, Any]]:
        """The log lines of one event whose keys have the given values."""
        return [
            e
            for e in list(self.lines)
            if e.get("event") == name and all(e.get(k) == v for k, v in match.items())
        ]

    def wait_for_event(self, name: str, *, count: int = 1, timeout: float = 60.0) -> None:
        """Wait until ``count`` lines of event ``name`` are logged (fail if the process dies)."""
        wait_for(
            lambda: len(self.events(name)) >= count or self.proc.poll() is not None,
            timeout=timeout,
            what=f"{count} {name} line(s)",
        )
        assert len(self.events(name)) >= count, self.tail()

    def tail(self, lines: int = 60) -> str:
        """The last lines of the log, for a failure message."""
        return "".join(self.raw[-lines:])

    def wait_started(self, timeout: float | None = None) -> dict[str, Any]:
        """The ``daemon_started`` line, once logged; fail with the log if the process died first."""
        wait_for(
            lambda: bool(self.events("daemon_started")) or self.proc.poll() is not None,
            timeout=self.start_timeout if timeout is None else timeout,
            what="daemon_started",
        )
        started = self.events("daemon_started")
        assert started, self.tail()
        return started[0]

    @property
    def port(self) -> int:
        """The endpoint's port, from the ``daemon_started`` line (waited for)."""
        return int(self.wait_started()["port"])

    @property
    def url(self) -> str:
        """The endpoint's root, from the ``daemon_started`` line (waited for)."""
        return str(self.wait_started()["url"])

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float | None = None) -> int:
        """Send ``sig`` (SIGTERM, SIGINT) and wait for the exit; the exit code."""
        self.proc.send_signal(sig)
        code = self.proc.wait(self.stop_timeout if timeout is None else timeout)
        self.close()
        return code

    def sigkill(self) -> None:
        """SIGKILL, and wait for the process and its log to end."""
        self.proc.send_signal(signal.SIGKILL)
        assert self.proc.wait(10) == -signal.SIGKILL
        self.close()

    def close(self) -> None:
        """Make sure the process is gone and its pipe closed (test clean-up)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._reader.join(5)
        if self.proc.stderr is not None:
            self.proc.stderr.close()


D = TypeVar("D", bound=DaemonProcess)


@contextmanager
def daemon(config: Path, *, factory: Callable[[Path], D] = DaemonProcess) -> Iterator[D]:  # type: ignore[assignment]
    """A daemon process that never outlives the test; its last log lines shown on failure.

    ``factory`` makes the process (a :class:`DaemonProcess` subclass with other timeouts).
    """
    process = factory(config)
    try:
        yield process
    except BaseException:
        process.close()
        print(process.tail())  # the daemon's last log lines, shown on failure
        raise
    finally:
        process.close()
