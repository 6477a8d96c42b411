"""Configuration: defaults documented, bad input refused with the key named."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from doorfix.agent.config import (
    ENV_SECRETS,
    Settings,
    load_secrets,
    load_settings,
    parse_settings,
)
from doorfix.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.toml"


def test_example_config_documents_every_key_with_its_default() -> None:
    data = tomllib.loads(EXAMPLE.read_text())
    assert parse_settings(data) == Settings()
    defaults = Settings().model_dump()
    for section, keys in defaults.items():
        assert set(data[section]) == set(keys), f"[{section}] in config.example.toml"


def test_no_file_means_defaults() -> None:
    assert load_settings(None) == Settings()


@pytest.mark.parametrize(
    ("toml", "key", "words"),
    [
        ("[guards]\ncooldown_minuts = 5\n", "[guards] cooldown_minuts", "unknown key"),
        ("[guards]\ncooldown_minutes = 'soon'\n", "[guards] cooldown_minutes", "integer"),
        ("[guards]\nmax_actions_per_run = -1\n", "[guards] max_actions_per_run", "greater"),
        ("[fleet]\nshards = 0\n", "[fleet] shards", "greater"),
        ("[cloud]\nbase_url = 'not a url'\n", "[cloud] base_url", "URL"),
        ("[aca]\nbase_url = 'http://10.0.0.5/aca'\n", "[aca] base_url", "https"),
        (
            "[remedies]\nenabled = ['reboot_everything']\n",
            "[remedies] enabled.0",
            "Input should be",
        ),
        ("[nonsense]\nx = 1\n", "nonsense", "unknown key"),
        ("[guards]\nrenewal_months = 13\n", "[guards] renewal_months", "less than"),
        (
            "[guards]\nmkey_replacement_window_days = 0\n",
            "[guards] mkey_replacement_window_days",
            "greater than or equal to 1",
        ),
        (
            "[guards]\nmkey_replacement_window_days = 'two weeks'\n",
            "[guards] mkey_replacement_window_days",
            "integer",
        ),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, toml: str, key: str, words: str) -> None:
    path = tmp_path / "doorfix.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert info.value.key == key
    assert words in str(info.value)
    assert str(path) in str(info.value)


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[guards\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(bad)


def test_secrets_come_from_the_environment_and_never_print() -> None:
    env = {var: f"value-of-{var}" for var in ENV_SECRETS.values()}
    secrets = load_secrets(env)
    assert secrets.aca_api_key.get_secret_value() == "value-of-DOORFIX_ACA_API_KEY"
    assert "value-of" not in repr(secrets)
    assert "value-of" not in str(secrets)


@pytest.mark.parametrize("missing", sorted(ENV_SECRETS.values()))
def test_a_missing_secret_names_its_variable(missing: str) -> None:
    env = {var: "x" * 8 for var in ENV_SECRETS.values() if var != missing}
    env[missing] = "  "
    with pytest.raises(ConfigError) as info:
        load_secrets(env)
    assert info.value.key == missing
