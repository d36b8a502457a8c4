"""Issue 13, in process: several conductors on tooz share one set of instances.

The settings (``coordination_url``, ``member_id``, ``coordination_group``, per
instance ``replicas``), the ownership function, and coordinators against real tooz
backends: the file driver in ``tmp_path``, etcd and Redis from tests/services.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from demi import ConfigError
from demi.core.config import load_settings
from demi.core.secrets import SECRETS

SECRET = "hunter2-coordination-password"


def config_error(**overrides: object) -> str:
    """The message of the ConfigError that load_settings raises."""
    with pytest.raises(ConfigError) as caught:
        load_settings(**overrides)
    return str(caught.value)


# -- settings -------------------------------------------------------------------


def test_without_a_coordination_url_nothing_is_coordinated() -> None:
    """Unset is today's behaviour; every instance runs on one replica by default."""
    settings = load_settings()
    assert settings.coordination_url is None
    assert settings.coordination_group is None
    assert settings.platforms["echo"].replicas == 1


def test_the_default_member_id_is_the_host_name_and_the_pid() -> None:
    assert load_settings().member_id.endswith(f"-{os.getpid()}")


def test_coordination_settings_come_from_their_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DEMI_COORDINATION_URL", "etcd3+http://127.0.0.1:2379?timeout=5")
    monkeypatch.setenv("DEMI_MEMBER_ID", "demi-0")
    monkeypatch.setenv("DEMI_COORDINATION_GROUP", "bots")
    monkeypatch.setenv("DEMI_PLATFORMS__CHAT__DRIVER", "echo")
    monkeypatch.setenv("DEMI_PLATFORMS__CHAT__REPLICAS", "all")
    monkeypatch.setenv("DEMI_PLATFORMS__MAIL__DRIVER", "echo")
    monkeypatch.setenv("DEMI_PLATFORMS__MAIL__REPLICAS", "1")
    settings = load_settings()
    assert settings.coordination_url is not None
    # Passed on as it is, query included.
    url = settings.coordination_url.get_secret_value()
    assert url == "etcd3+http://127.0.0.1:2379?timeout=5"
    assert (settings.member_id, settings.coordination_group) == ("demi-0", "bots")
    assert settings.platforms["chat"].replicas == "all"
    assert settings.platforms["mail"].replicas == 1


def test_the_coordination_url_is_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """It may carry a password: never shown by demi config, scrubbed everywhere."""
    SECRETS.reset()
    url = f"redis://:{SECRET}@127.0.0.1:6379?timeout=5"
    monkeypatch.setenv("DEMI_COORDINATION_URL", url)
    settings = load_settings()
    assert SECRET not in str(settings.model_dump())
    assert SECRET not in repr(settings)


@pytest.mark.parametrize(
    ("variable", "value", "key"),
    [
        ("DEMI_COORDINATION_URL", SECRET, "coordination_url"),
        ("DEMI_COORDINATION_URL", "", "coordination_url"),
        ("DEMI_MEMBER_ID", "two words", "member_id"),
        ("DEMI_MEMBER_ID", "", "member_id"),
        ("DEMI_COORDINATION_GROUP", "a/b", "coordination_group"),
        ("DEMI_PLATFORMS__CHAT__REPLICAS", "2", "platforms.chat.replicas"),
    ],
)
def test_a_bad_coordination_value_names_the_setting_and_its_source(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, key: str
) -> None:
    monkeypatch.setenv("DEMI_PLATFORMS__CHAT__DRIVER", "echo")
    monkeypatch.setenv(variable, value)
    message = config_error()
    assert f"{key}: " in message
    assert f"(from environment variable {variable})" in message
    assert SECRET not in message


def test_replicas_in_toml(tmp_path: Path) -> None:
    path = tmp_path / "demi.toml"
    path.write_text('[platforms.chat]\ndriver = "echo"\nreplicas = 3\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert "platforms.chat.replicas: " in str(caught.value)
    assert repr(str(path)) in str(caught.value)
