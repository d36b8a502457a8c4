"""prepare_config: the one preparation of a platform's configuration.

The drivers come from demi-testplugins through their real entry points.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, SecretStr

from demi import ConfigError, PlatformConfigError, PluginError, PluginLoadError
from demi.core.config import load_settings
from demi.core.prepare import prepare_config
from demi.core.secrets import REDACTED, scrub
from demi.plugins.discovery import load_driver

SECRET = "s3cr3t-value-that-must-not-leak"


def write(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` and return the path."""
    path.write_text(text, encoding="utf-8")
    return path


# -- what it returns -------------------------------------------------------------


def test_a_model_validates_and_dumps_keeping_secrets_secret() -> None:
    """With a config_model, the dump is returned: defaults filled, SecretStr kept."""
    model = load_driver("configured").config_model
    options = prepare_config(
        model, {"endpoint": "http://x", "token": "t0ken-1"}, instance="chat"
    )
    assert options["endpoint"] == "http://x" and options["retries"] == 3
    assert isinstance(options["token"], SecretStr)


def test_every_call_returns_a_fresh_object() -> None:
    """Two preparations share nothing, with a model or without."""
    raw = {"nested": {"a": [1]}}
    first = prepare_config(None, raw, instance="chat")
    second = prepare_config(None, raw, instance="chat")
    assert first == second == raw
    assert first is not second and first["nested"] is not second["nested"]
    assert first["nested"] is not raw["nested"]
    model = load_driver("configured").config_model
    given = {"endpoint": "e", "token": "t0ken-1"}
    assert prepare_config(model, given, instance="c") is not prepare_config(
        model, given, instance="c"
    )


@pytest.mark.anyio
async def test_a_platform_that_mutates_its_config_cannot_change_the_settings() -> None:
    """mutates_config scribbles over what initialize is given, at every depth; the
    stored settings, and the next preparation, are as configured."""
    write(
        Path("demi.toml"),
        '[platforms.m]\ndriver = "mutates_config"\n'
        '[platforms.m.config]\nitems = ["a"]\n'
        '[platforms.m.config.upstream]\nhost = "h"\nkeep = 1\n',
    )
    settings = load_settings()
    stored = copy.deepcopy(settings.platforms["m"].config)
    cls = load_driver("mutates_config")
    options = prepare_config(
        cls.config_model, settings.platforms["m"].config, instance="m"
    )
    assert await cls().initialize(options) is True
    assert options != stored  # the plugin did scribble
    assert settings.platforms["m"].config == stored
    again = prepare_config(
        cls.config_model, settings.platforms["m"].config, instance="m"
    )
    assert again == stored


class _PinConfig(BaseModel):
    """A secret under a key that does not look secret."""

    pin: SecretStr


def test_secrets_are_registered_before_and_after_validation() -> None:
    """Values under secret-looking keys and SecretStr fields are scrubbed from text."""
    prepare_config(None, {"api_token": "raw-secret-1"}, instance="a")
    prepare_config(_PinConfig, {"pin": "dumped-secret-2"}, instance="b")
    assert scrub("raw-secret-1 dumped-secret-2") == f"{REDACTED} {REDACTED}"


# -- the operator's mistakes -----------------------------------------------------


def test_a_rejected_config_is_a_platform_config_error() -> None:
    """PlatformConfigError: a ConfigError and a PluginError about the instance."""
    model = load_driver("rejects_config").config_model
    with pytest.raises(PlatformConfigError) as caught:
        prepare_config(model, {"level": 9, "api_key": SECRET}, instance="chat")
    err = caught.value
    assert isinstance(err, ConfigError) and isinstance(err, PluginError)
    assert err.plugin_name == "chat"
    message = str(err)
    assert "platforms.chat.config.level: " in message
    assert "(from arguments)" in message
    assert err.problems == (("level", "Input should be less than or equal to 5"),)
    assert SECRET not in message and "9" not in message.replace("platforms", "")


def test_each_bad_key_is_named_with_the_toml_file(tmp_path: Path) -> None:
    """With settings, each bad key is blamed on where it came from: the TOML file,
    a missing one on the instance's table there."""
    path = write(
        tmp_path / "c.toml",
        '[platforms.chat]\ndriver = "rejects_config"\n'
        '[platforms.chat.config]\nlevel = 0\ncolour = "crimson-value"\n',
    )
    settings = load_settings(path)
    model = load_driver("rejects_config").config_model
    with pytest.raises(PlatformConfigError) as caught:
        prepare_config(
            model, settings.platforms["chat"].config, instance="chat", settings=settings
        )
    message = str(caught.value)
    where = f"(from config file {str(path)!r})"
    for key in ("level", "api_key", "colour"):
        assert f"platforms.chat.config.{key}: " in message
    assert message.count(where) == 3
    assert "crimson-value" not in message


def test_a_bad_key_from_a_variable_names_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bad value from DEMI_PLATFORMS__CHAT__CONFIG__LEVEL is blamed on it."""
    monkeypatch.setenv("DEMI_PLATFORMS__CHAT__DRIVER", "rejects_config")
    monkeypatch.setenv("DEMI_PLATFORMS__CHAT__CONFIG__LEVEL", SECRET)
    monkeypatch.setenv("DEMI_PLATFORMS__CHAT__CONFIG__API_KEY", "k3y-value")
    settings = load_settings()
    model = load_driver("rejects_config").config_model
    with pytest.raises(PlatformConfigError) as caught:
        prepare_config(
            model, settings.platforms["chat"].config, instance="chat", settings=settings
        )
    message = str(caught.value)
    assert (
        "platforms.chat.config.level: " in message
        and "(from environment variable DEMI_PLATFORMS__CHAT__CONFIG__LEVEL)" in message
    )
    assert SECRET not in message


class _Inner(BaseModel):
    port: int


class _Outer(BaseModel):
    upstream: _Inner
    model_config = {"extra": "forbid"}


def test_a_nested_bad_key_is_named_by_its_full_path() -> None:
    """platforms.NAME.config.FIELD.SUB, and an odd key shown with repr."""
    with pytest.raises(PlatformConfigError) as caught:
        prepare_config(
            _Outer,
            {"upstream": {"port": "many"}, "bad\x1b[31mkey": 1},
            instance="chat",
        )
    message = str(caught.value)
    assert "platforms.chat.config.upstream.port: " in message
    assert "platforms.chat.config.'bad\\x1b[31mkey': " in message
    assert "\x1b" not in message


# -- the plugin's faults ---------------------------------------------------------


@pytest.mark.parametrize(
    ("driver", "shown"),
    [
        ("config_model_raises", "RuntimeError: the model's own bug"),
        ("config_model_exits", "SystemExit: 3"),
        ("config_model_interrupts", "KeyboardInterrupt: (no message)"),
        ("config_model_unprintable", "UnprintableError: <UnprintableError that"),
    ],
)
def test_a_model_that_raises_anything_is_the_plugins_load_error(
    driver: str, shown: str
) -> None:
    """Whatever a config_model raises besides a validation error (even SystemExit or
    KeyboardInterrupt) is a PluginLoadError about the plugin, not a ConfigError, and
    never escapes as itself."""
    model = load_driver(driver).config_model
    with pytest.raises(PluginLoadError) as caught:
        prepare_config(model, {"level": 1}, instance="chat")
    err = caught.value
    assert not isinstance(err, ConfigError)
    assert err.plugin_name == "chat"
    assert str(err).startswith(f"plugin 'chat' config_model raised {shown}")
    assert isinstance(err.__cause__, BaseException)


def test_a_plugins_exception_text_is_scrubbed_of_secrets() -> None:
    """A secret the operator configured never shows up through the plugin's text."""

    class Leaky(BaseModel):
        token: str

        def model_post_init(self, context: Any) -> None:
            raise RuntimeError(f"cannot use {self.token}")

    with pytest.raises(PluginLoadError) as caught:
        prepare_config(Leaky, {"token": SECRET}, instance="chat")
    assert SECRET not in str(caught.value)
    assert REDACTED in str(caught.value)
