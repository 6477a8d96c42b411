"""Checking ``doorfix sandbox``'s input before anything is built or bound.

A scenario name, its ``-p KEY=VALUE`` parameters (a number where the scenario's default is a
number) and the port are each refused with one line naming the option and what it accepts.
"""

from __future__ import annotations

import difflib
import errno
import socket
from collections.abc import Mapping

from doorfix.errors import ConfigError
from doorfix.sandbox.scenarios.registry import SCENARIOS

#: ``demo: three centers, …`` for each scenario, for ``--help``
SCENARIO_HELP = "; ".join(
    f"{name}: {spec.description}"
    + (f" (-p {', '.join(f'{k}={v}' for k, v in spec.params.items())})" if spec.params else "")
    for name, spec in SCENARIOS.items()
)


def did_you_mean(word: str, choices: list[str] | tuple[str, ...]) -> str:
    """`` (did you mean `x`?)`` when one of ``choices`` is close to ``word``, else ``""``."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean `{close[0]}`?)" if close else ""


def check_scenario(name: str) -> str:
    """``name`` if it is a scenario, else a ConfigError listing them."""
    if name in SCENARIOS:
        return name
    names = tuple(SCENARIOS)
    raise ConfigError(
        f'no scenario "{name}"{did_you_mean(name, names)}; choose one of {", ".join(names)}',
        key="--scenario",
    )


_KINDS: dict[type, str] = {bool: "true or false", int: "a whole number", float: "a number"}


def _typed(text: str, kind: type) -> object:
    if kind is bool:
        if text.lower() not in {"true", "false"}:
            raise ValueError(text)
        return text.lower() == "true"
    if kind is int:
        return int(text)
    if kind is float:
        return float(text)
    return text


def _number(key: str, text: str, default: object) -> object:
    kind = type(default)
    try:
        return _typed(text, kind)
    except ValueError:
        raise ConfigError(f'"{text}" is not {_KINDS[kind]}', key=f"-p {key}") from None


def parse_params(scenario: str, items: list[str]) -> dict[str, object]:
    """``KEY=VALUE`` items as the scenario's parameters, typed like their defaults."""
    known: Mapping[str, object] = SCENARIOS[scenario].params
    out: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f'expected KEY=VALUE, got "{item}"', key="-p")
        if key not in known:
            accepted = ", ".join(known) or "none"
            raise ConfigError(
                f'scenario {scenario} has no parameter "{key}"'
                f"{did_you_mean(key, tuple(known))}; it takes: {accepted}",
                key="-p",
            )
        out[key] = _number(key, value.strip(), known[key])
    return out


def check_port(port: int, host: str = "127.0.0.1") -> None:
    """A ConfigError when ``port`` cannot be listened on at ``host`` (in use, or not allowed)."""
    if not 0 <= port <= 65535:
        raise ConfigError(f"{port} is not a port (0 to 65535)", key="--port")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        reason = "already in use" if exc.errno == errno.EADDRINUSE else exc.strerror
        raise ConfigError(
            f"{host}:{port} is {reason}"
            if exc.errno == errno.EADDRINUSE
            else f"cannot listen on {host}:{port}: {reason}",
            key="--port",
        ) from None
    finally:
        sock.close()
