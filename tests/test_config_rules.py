"""The rules every source of settings is held to: DEMI_ variables, JSON variables,
times, instance names, the HTTP token, and where each error says it came from.

conftest.py clears every DEMI_* variable and runs each test in an empty working
directory, so ./demi.toml and ./.env here are the test's own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from demi import ConfigError
from demi.core.config import (
    INSTANCE_NAME_PATTERN,
    MAX_SECONDS,
    DemiSettings,
    PlatformSettings,
    is_instance_name,
    load_settings,
)

SECRET = "s3cr3t-value-that-must-not-leak"


def write(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` and return the path."""
    path.write_text(text, encoding="utf-8")
    return path


def config_error(**overrides: Any) -> str:
    """The message of the ConfigError that load_settings raises."""
    with pytest.raises(ConfigError) as caught:
        load_settings(**overrides)
    return str(caught.value)


# -- DEMI_ variables -------------------------------------------------------------


def test_dotenv_variables_of_other_tools_are_ignored() -> None:
    """A .env shared with other tools: their variables are left alone, demi's read."""
    write(
        Path(".env"),
        "DATABASE_URL=postgres://x\nexport OTHER_TOOL=1\nDEMI_HEALTH_TIMEOUT=2\n",
    )
    assert load_settings().health_timeout == 2


def test_an_unknown_demi_variable_in_the_environment_is_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A typo in a DEMI_ variable is an error naming it, and the closest real name."""
    monkeypatch.setenv("DEMI_INIT_TIMOUT", "3")
    message = config_error()
    assert "environment variable DEMI_INIT_TIMOUT: not a setting" in message
    assert "did you mean DEMI_INIT_TIMEOUT?" in message


def test_an_unknown_demi_variable_in_dotenv_is_named() -> None:
    """A typo in .env is an error naming the variable and the .env file."""
    write(Path(".env"), "OTHER_TOOL=1\nDEMI_HEALTH_TIMOUT=2\n")
    message = config_error()
    assert ".env file, variable DEMI_HEALTH_TIMOUT" in message
    assert "did you mean DEMI_HEALTH_TIMEOUT?" in message


def test_a_variable_nested_below_a_plain_setting_is_unknown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """DEMI_INIT_TIMEOUT__X sets nothing, so it is refused rather than dropped."""
    monkeypatch.setenv("DEMI_INIT_TIMEOUT__X", "3")
    assert "environment variable DEMI_INIT_TIMEOUT__X" in config_error()


def test_an_unknown_platform_field_variable_is_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An unknown FIELD in DEMI_PLATFORMS__NAME__FIELD is named by its variable."""
    monkeypatch.setenv("DEMI_PLATFORMS__CHAT__DRIVER", "good")
    monkeypatch.setenv("DEMI_PLATFORMS__CHAT__DRIVR", "good")
    message = config_error()
    assert "environment variable DEMI_PLATFORMS__CHAT__DRIVR" in message
    assert "did you mean DEMI_PLATFORMS__CHAT__DRIVER?" in message


def test_platform_variables_at_every_depth_stay_valid(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Instance fields and any keys below an instance's config are still read."""
    monkeypatch.setenv("DEMI_PLATFORMS__CHAT__DRIVER", "good")
    monkeypatch.setenv("DEMI_PLATFORMS__CHAT__BACKOFF_MAX", "9")
    monkeypatch.setenv("DEMI_PLATFORMS__CHAT__CONFIG__UPSTREAM__HOST", "h")
    chat = load_settings().platforms["chat"]
    assert chat.backoff_max == 9
    assert chat.config == {"upstream": {"host": "h"}}


def test_demi_config_is_refused_in_dotenv() -> None:
    """DEMI_CONFIG in .env would be ignored (the file is chosen first), so it is an
    error rather than a silent no-op."""
    write(Path("other.toml"), "init_timeout = 2\n")
    write(Path(".env"), "DEMI_CONFIG=other.toml\n")
    message = config_error()
    assert ".env file, variable DEMI_CONFIG" in message
    assert "only read from the environment" in message


# -- JSON variables --------------------------------------------------------------


@pytest.mark.parametrize("variable", ["DEMI_PLATFORMS", "DEMI_PLATFORMS__CHAT__CONFIG"])
def test_malformed_json_in_the_environment_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    """A complex variable that is not JSON is a ConfigError naming that variable."""
    monkeypatch.setenv("DEMI_PLATFORMS__OK__DRIVER", "good")
    monkeypatch.setenv(variable, f"not json {SECRET}")
    message = config_error()
    assert f"environment variable {variable}: not valid JSON" in message
    assert SECRET not in message


def test_malformed_json_in_dotenv_names_the_variable_and_file() -> None:
    """The same in .env says it is the .env file."""
    write(Path(".env"), "DEMI_PLATFORMS=not json\n")
    assert ".env file, variable DEMI_PLATFORMS: not valid JSON" in config_error()


def test_json_in_a_variable_still_works(monkeypatch: pytest.MonkeyPatch) -> None:
    """Valid JSON in DEMI_PLATFORMS configures instances."""
    monkeypatch.setenv("DEMI_PLATFORMS", '{"chat": {"driver": "good"}}')
    assert load_settings().platforms == {"chat": PlatformSettings(driver="good")}


# -- times -----------------------------------------------------------------------

TIMES = [
    "init_timeout",
    "health_timeout",
    "shutdown_timeout",
    "request_timeout",
    "loop_block_threshold",
    "health_interval",
    "stop_timeout",
]
PLATFORM_TIMES = ["backoff_initial", "backoff_max", "restart_window"]


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "1e9", str(MAX_SECONDS + 1)])
@pytest.mark.parametrize("field", TIMES)
def test_times_must_be_finite_and_at_most_a_week(
    monkeypatch: pytest.MonkeyPatch, field: str, value: str
) -> None:
    """Every time refuses inf, nan and absurdly large values, naming the variable."""
    monkeypatch.setenv(f"DEMI_{field.upper()}", value)
    message = config_error()
    assert f"{field}: " in message
    assert f"environment variable DEMI_{field.upper()}" in message


@pytest.mark.parametrize("value", ["inf", "nan", "1e12"])
@pytest.mark.parametrize("field", PLATFORM_TIMES)
def test_platform_times_must_be_finite_and_at_most_a_week(
    tmp_path: Path, field: str, value: str
) -> None:
    """The per-platform backoff settings are held to the same bound, in TOML too
    (where inf and nan are literals)."""
    path = write(
        tmp_path / "c.toml", f'[platforms.chat]\ndriver = "good"\n{field} = {value}\n'
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert f"platforms.chat.{field}: " in str(caught.value)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize("field", TIMES)
def test_a_week_is_allowed(monkeypatch: pytest.MonkeyPatch, field: str) -> None:
    """MAX_SECONDS itself is a valid time."""
    monkeypatch.setenv(f"DEMI_{field.upper()}", str(MAX_SECONDS))
    assert getattr(load_settings(), field) == MAX_SECONDS


# -- instance names --------------------------------------------------------------

BAD_NAMES = [
    "Chat",
    "-chat",
    "_chat",
    "chat bot",
    "chat.bot",
    "chat#2",
    "chat\x1b[31m",
    "chat\nbot",
    "",
    "a" * 65,
    "caf\u00e9",
]


def toml_key(name: str) -> str:
    """``name`` as a TOML basic-string key, control characters escaped."""
    escaped = "".join(
        char if char.isprintable() and char not in '"\\' else f"\\u{ord(char):04x}"
        for char in name
    )
    return f'"{escaped}"'


@pytest.mark.parametrize("name", BAD_NAMES, ids=repr)
def test_a_bad_instance_name_is_named_safely_with_its_source(
    tmp_path: Path, name: str
) -> None:
    """A bad key of platforms is refused, shown with repr, with the file it is in."""
    path = write(
        tmp_path / "c.toml", f'[platforms.{toml_key(name)}]\ndriver = "good"\n'
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    message = str(caught.value)
    assert f"platforms.{name!r}: not a valid instance name" in message
    assert f"(from config file {str(path)!r})" in message
    assert "\x1b" not in message and "\n" not in message


def test_a_bad_instance_name_from_the_environment_names_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A name from a variable is blamed on that variable."""
    monkeypatch.setenv("DEMI_PLATFORMS__MY.CHAT__DRIVER", "good")
    message = config_error()
    assert "platforms.'my.chat': not a valid instance name" in message
    assert "environment variable DEMI_PLATFORMS__MY.CHAT__DRIVER" in message


@pytest.mark.parametrize("name", ["chat", "0day", "a-b_c9", "a" * 64])
def test_good_instance_names_are_accepted(name: str) -> None:
    """Lower-case letters, digits, - and _, up to 64 characters."""
    write(Path("demi.toml"), f'[platforms.{toml_key(name)}]\ndriver = "good"\n')
    assert list(load_settings().platforms) == [name]


def test_the_instance_name_pattern_is_exported() -> None:
    """INSTANCE_NAME_PATTERN matches names in full; a generated key with # never."""
    assert INSTANCE_NAME_PATTERN.fullmatch("chat")
    assert is_instance_name("chat-2")
    assert not is_instance_name("chat#2")
    assert not is_instance_name("chat\n")


def test_settings_built_directly_check_instance_names() -> None:
    """DemiSettings itself refuses a bad name, not only load_settings."""
    with pytest.raises(ValueError, match="not a valid instance name"):
        DemiSettings(platforms={"Bad": PlatformSettings(driver="good")})


# -- the HTTP token --------------------------------------------------------------


@pytest.mark.parametrize("value", ["", "   "])
def test_an_empty_http_token_variable_is_refused(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """An empty DEMI_HTTP_TOKEN is an error, never "authentication off"."""
    monkeypatch.setenv("DEMI_HTTP_TOKEN", value)
    message = config_error()
    assert "http_token: " in message and "must not be empty" in message
    assert "environment variable DEMI_HTTP_TOKEN" in message


def test_an_empty_http_token_in_toml_is_refused(tmp_path: Path) -> None:
    """http_token = "" in TOML is an error naming the file."""
    path = write(tmp_path / "c.toml", 'http_token = ""\n')
    with pytest.raises(ConfigError, match="http_token: .*must not be empty") as caught:
        load_settings(path)
    assert str(path) in str(caught.value)


def test_an_unset_http_token_turns_authentication_off() -> None:
    """No token at all is still allowed."""
    assert load_settings().http_token is None


# -- sources ---------------------------------------------------------------------


def test_a_missing_driver_is_blamed_on_the_variables_of_its_instance(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An instance made only by variables is blamed on one of them, not the defaults."""
    monkeypatch.setenv("DEMI_PLATFORMS__CHAT__ENABLED", "true")
    message = config_error()
    assert "platforms.chat.driver: " in message
    assert "environment variable DEMI_PLATFORMS__CHAT__ENABLED" in message


def test_source_of_tells_the_toml_file_from_the_defaults(tmp_path: Path) -> None:
    """A key the file sets is the file's; one it leaves out is the defaults'."""
    path = write(tmp_path / "c.toml", "health_timeout = 3\n")
    settings = load_settings(path)
    assert settings.source_of("health_timeout") == f"config file {str(path)!r}"
    assert settings.source_of("init_timeout") == "defaults"


def test_source_of_names_the_arguments() -> None:
    """A value given to load_settings is the arguments'."""
    assert load_settings(init_timeout=3).source_of("init_timeout") == "arguments"
