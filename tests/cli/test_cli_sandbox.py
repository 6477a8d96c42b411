"""``doorfix sandbox`` refuses bad input in one line naming it, exit 2, before building."""

from __future__ import annotations

import socket

import pytest
from conftest import assert_clean_error, cli

from doorfix.sandbox.scenarios.registry import SCENARIOS


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["--scenario", "demoo"], ["--scenario", '"demoo"', "did you mean `demo`", "scale"]),
        (["-p", "hour=3"], ["-p", '"hour"', "did you mean `hours`", "every_minutes"]),
        (["--scenario", "scale", "-p", "centres=3"], ["-p", "did you mean `centers`"]),
        (["-p", "hours=three"], ["-p hours", '"three"', "not a number"]),
        (["--scenario", "scale", "-p", "centers=1.5"], ["-p centers", "whole number"]),
        (["-p", "hours"], ["-p", "KEY=VALUE"]),
        (["--speed", "0"], ["--speed"]),
        (["--seed", "x"], ["--seed"]),
        (["--bogus"], ["--bogus"]),
    ],
)
def test_bad_input_is_one_line_naming_it(args: list[str], names: list[str]) -> None:
    assert_clean_error(cli("sandbox", *args), *names)


def test_a_port_in_use_is_one_line_naming_the_port() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        line = assert_clean_error(cli("sandbox", "--port", str(port)), "--port", str(port))
    assert "in use" in line


def test_help_lists_every_scenario_and_its_parameters() -> None:
    result = cli("sandbox", "--help", env={"COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    for name, spec in SCENARIOS.items():
        assert f"{name}:" in result.stdout
        for param in spec.params:
            assert param in result.stdout
