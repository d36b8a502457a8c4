"""Settings: defaults, environment, .env, TOML, precedence and error messages.

conftest.py clears every DEMI_* variable and runs each test in an empty working
directory, so ./demi.toml and ./.env here are the test's own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from demi import ConfigError, DemiError, DemiSettings, PlatformSettings, PluginManager
from demi.core.config import load_settings, resolve_config_file

SECRET = "s3cr3t-value-that-must-not-leak"


def write(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` and return the path."""
    path.write_text(text, encoding="utf-8")
    return path


# -- defaults --------------------------------------------------------------------------


def test_default_timeouts() -> None:
    """With no configuration the timeouts are 30, 5 and 10 seconds."""
    settings = load_settings()
    assert settings.init_timeout == 30
    assert settings.health_timeout == 5
    assert settings.shutdown_timeout == 10


def test_default_platform_is_echo() -> None:
    """With no platform configured, the one instance is the built-in echo."""
    assert load_settings().platforms == {"echo": PlatformSettings(driver="echo")}


def test_no_config_file_by_default() -> None:
    """Without DEMI_CONFIG or ./demi.toml, no file is read."""
    assert resolve_config_file() is None
    assert load_settings().config_file is None


# -- environment -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "field"),
    [
        ("DEMI_INIT_TIMEOUT", "init_timeout"),
        ("DEMI_HEALTH_TIMEOUT", "health_timeout"),
        ("DEMI_SHUTDOWN_TIMEOUT", "shutdown_timeout"),
    ],
)
def test_timeouts_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, variable: str, field: str
) -> None:
    """Each timeout is read from its DEMI_ variable, in seconds."""
    monkeypatch.setenv(variable, "2.5")
    assert getattr(load_settings(), field) == 2.5


def test_nested_settings_use_a_double_underscore(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """DEMI_PLATFORMS__CHAT__DRIVER configures the "chat" instance's driver."""
    monkeypatch.setenv("DEMI_PLATFORMS__CHAT__DRIVER", "good")
    monkeypatch.setenv("DEMI_PLATFORMS__CHAT__MAX_CONCURRENCY", "7")
    monkeypatch.setenv("DEMI_PLATFORMS__CHAT__CONFIG__GREETING", "hi")
    chat = load_settings().platforms["chat"]
    assert (chat.driver, chat.max_concurrency) == ("good", 7)
    assert chat.config == {"greeting": "hi"}


def test_a_manager_without_settings_reads_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """PluginManager() takes its timeouts from the environment."""
    monkeypatch.setenv("DEMI_INIT_TIMEOUT", "7")
    monkeypatch.setenv("DEMI_HEALTH_TIMEOUT", "0.25")
    manager = PluginManager()
    assert manager.settings.init_timeout == 7
    assert manager.settings.health_timeout == 0.25


def test_a_manager_without_settings_reports_bad_settings_as_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bad variable makes PluginManager() raise ConfigError, naming it."""
    monkeypatch.setenv("DEMI_SHUTDOWN_TIMEOUT", "-1")
    with pytest.raises(ConfigError, match="DEMI_SHUTDOWN_TIMEOUT"):
        PluginManager()


def test_a_manager_from_classes_reports_bad_settings_as_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """from_classes without settings reads them the same way: a bad variable is a
    ConfigError naming it, never showing its value."""
    monkeypatch.setenv("DEMI_INIT_TIMEOUT", SECRET)
    with pytest.raises(ConfigError, match="DEMI_INIT_TIMEOUT") as caught:
        PluginManager.from_classes({})
    assert SECRET not in str(caught.value)


def test_a_manager_from_classes_reads_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """from_classes without settings takes its timeouts from the environment."""
    monkeypatch.setenv("DEMI_SHUTDOWN_TIMEOUT", "3")
    assert PluginManager.from_classes({}).settings.shutdown_timeout == 3


# -- TOML ------------------------------------------------------------------------------


def test_toml_file_named_by_demi_config(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """DEMI_CONFIG names a TOML file that settings are read from."""
    path = write(tmp_path / "elsewhere.toml", "init_timeout = 12\n")
    monkeypatch.setenv("DEMI_CONFIG", str(path))
    settings = load_settings()
    assert settings.init_timeout == 12
    assert settings.config_file == path


def test_demi_toml_in_the_working_directory_is_read() -> None:
    """./demi.toml is read when DEMI_CONFIG is not set."""
    write(Path("demi.toml"), "health_timeout = 3\n")
    assert load_settings().health_timeout == 3


def test_demi_config_wins_over_the_local_demi_toml(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """With both present, the file DEMI_CONFIG names is the one read."""
    write(Path("demi.toml"), "health_timeout = 3\n")
    monkeypatch.setenv(
        "DEMI_CONFIG", str(write(tmp_path / "named.toml", "health_timeout = 4\n"))
    )
    assert load_settings().health_timeout == 4


def test_an_explicit_config_file_wins_over_demi_config(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """load_settings(config_file) reads that file, not DEMI_CONFIG's."""
    monkeypatch.setenv(
        "DEMI_CONFIG", str(write(tmp_path / "env.toml", "init_timeout = 1\n"))
    )
    explicit = write(tmp_path / "explicit.toml", "init_timeout = 2\n")
    assert load_settings(explicit).init_timeout == 2


def test_demi_settings_reads_the_toml_file_directly(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """DemiSettings() on its own also finds the TOML file."""
    path = write(tmp_path / "c.toml", "shutdown_timeout = 6\n")
    monkeypatch.setenv("DEMI_CONFIG", str(path))
    assert DemiSettings().shutdown_timeout == 6


def test_toml_platform_tables() -> None:
    """[platforms.<name>] tables define instances, replacing the default echo."""
    write(
        Path("demi.toml"),
        '[platforms.chat]\ndriver = "good"\nenabled = false\n\n'
        '[platforms.chat.config]\ngreeting = "hi"\n\n'
        '[platforms.mail]\ndriver = "good2"\n',
    )
    settings = load_settings()
    assert set(settings.platforms) == {"chat", "mail"}
    assert settings.platforms["chat"].config == {"greeting": "hi"}
    assert set(settings.enabled_platforms()) == {"mail"}


# -- precedence --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("layers", "expected"),
    [
        ((), 5.0),
        (("toml",), 1.0),
        (("toml", "dotenv"), 2.0),
        (("toml", "dotenv", "env"), 3.0),
        (("toml", "dotenv", "env", "init"), 4.0),
        (("dotenv", "init"), 4.0),
        (("toml", "env"), 3.0),
    ],
    ids=lambda value: "+".join(value) if isinstance(value, tuple) else None,
)
def test_precedence_init_env_dotenv_toml_defaults(
    monkeypatch: pytest.MonkeyPatch, layers: tuple[str, ...], expected: float
) -> None:
    """Arguments beat the environment, which beats .env, which beats TOML, which
    beats the defaults."""
    if "toml" in layers:
        write(Path("demi.toml"), "health_timeout = 1\n")
    if "dotenv" in layers:
        write(Path(".env"), "DEMI_HEALTH_TIMEOUT=2\n")
    if "env" in layers:
        monkeypatch.setenv("DEMI_HEALTH_TIMEOUT", "3")
    overrides: dict[str, Any] = {"health_timeout": 4.0} if "init" in layers else {}
    assert load_settings(**overrides).health_timeout == expected


# -- errors ------------------------------------------------------------------------


def test_config_error_is_a_demi_error_and_a_value_error() -> None:
    """ConfigError can be caught as DemiError or as ValueError."""
    assert issubclass(ConfigError, DemiError)
    assert issubclass(ConfigError, ValueError)


def test_a_bad_environment_value_names_key_and_variable_not_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The error names the setting and the variable, and never the value."""
    monkeypatch.setenv("DEMI_INIT_TIMEOUT", SECRET)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert "init_timeout" in message
    assert "environment variable DEMI_INIT_TIMEOUT" in message
    assert SECRET not in message


def test_a_bad_nested_environment_value_names_the_nested_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bad nested value is named by its dotted path and its variable."""
    monkeypatch.setenv("DEMI_PLATFORMS__CHAT__DRIVER", "good")
    monkeypatch.setenv("DEMI_PLATFORMS__CHAT__MAX_CONCURRENCY", SECRET)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert "platforms.chat.max_concurrency" in message
    assert "DEMI_PLATFORMS__CHAT__MAX_CONCURRENCY" in message
    assert SECRET not in message


def test_a_bad_dotenv_value_names_the_dotenv_file() -> None:
    """A bad value from .env says it came from .env, without the value."""
    write(Path(".env"), f"DEMI_HEALTH_TIMEOUT={SECRET}\n")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert "health_timeout" in message
    assert ".env" in message
    assert SECRET not in message


def test_a_bad_toml_value_names_key_and_file_not_value(tmp_path: Path) -> None:
    """A bad value in TOML names the setting and the file, and never the value."""
    path = write(tmp_path / "bad.toml", f'shutdown_timeout = "{SECRET}"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    message = str(caught.value)
    assert "shutdown_timeout" in message
    assert str(path) in message
    assert SECRET not in message


def test_a_bad_secret_in_toml_is_named_without_its_value(tmp_path: Path) -> None:
    """A secret setting of the wrong type is named and its value is not shown."""
    path = write(tmp_path / "bad.toml", "http_token = 918273645\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert "http_token" in str(caught.value)
    assert "918273645" not in str(caught.value)


def test_a_bad_argument_is_said_to_come_from_the_arguments() -> None:
    """A bad value passed to load_settings is blamed on the arguments."""
    with pytest.raises(ConfigError, match=r"init_timeout: .*\(from arguments\)"):
        load_settings(init_timeout=-1)


def test_every_bad_key_is_named_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Several bad settings are all reported in one error."""
    monkeypatch.setenv("DEMI_INIT_TIMEOUT", "0")
    monkeypatch.setenv("DEMI_BACKEND", "curio")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "init_timeout" in str(caught.value)
    assert "backend" in str(caught.value)


def test_invalid_toml_is_a_config_error_naming_the_file(tmp_path: Path) -> None:
    """A file that is not valid TOML gives ConfigError with the file's name."""
    path = write(tmp_path / "broken.toml", "init_timeout = = 3\n[unclosed\n")
    with pytest.raises(ConfigError, match="not valid TOML") as caught:
        load_settings(path)
    assert str(path) in str(caught.value)


def test_a_toml_file_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    """A file that cannot be read as UTF-8 text gives ConfigError naming the file."""
    path = tmp_path / "latin1.toml"
    path.write_bytes('greeting = "caf\u00e9"\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match="cannot be read") as caught:
        load_settings(path)
    assert str(path) in str(caught.value)


def test_invalid_local_demi_toml_is_a_config_error() -> None:
    """A broken ./demi.toml is reported, not silently skipped."""
    write(Path("demi.toml"), "this is not toml\n")
    with pytest.raises(ConfigError, match="demi.toml"):
        load_settings()


def test_a_missing_demi_config_file_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """DEMI_CONFIG naming a missing file says so, and names the variable."""
    missing = tmp_path / "nowhere.toml"
    monkeypatch.setenv("DEMI_CONFIG", str(missing))
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert str(missing) in str(caught.value)
    assert "DEMI_CONFIG" in str(caught.value)


def test_an_unknown_top_level_key_is_refused(tmp_path: Path) -> None:
    """An unknown key in the TOML file is an error naming it and the file."""
    path = write(tmp_path / "typo.toml", "init_timout = 3\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert "init_timout" in str(caught.value)
    assert str(path) in str(caught.value)


def test_an_unknown_platform_key_is_refused() -> None:
    """An unknown key in a platform table is named by its dotted path."""
    write(Path("demi.toml"), '[platforms.chat]\ndriver = "good"\ncolour = "red"\n')
    with pytest.raises(ConfigError, match=r"platforms\.chat\.colour"):
        load_settings()


def test_a_platform_without_a_driver_is_refused() -> None:
    """Every platform instance must name its driver."""
    write(Path("demi.toml"), "[platforms.chat]\nenabled = true\n")
    with pytest.raises(ConfigError, match=r"platforms\.chat\.driver"):
        load_settings()


def test_source_of_names_where_a_setting_came_from(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """source_of tells an environment variable from the TOML file and defaults."""
    write(Path("demi.toml"), "health_timeout = 3\n")
    monkeypatch.setenv("DEMI_INIT_TIMEOUT", "4")
    settings = load_settings()
    assert (
        settings.source_of("init_timeout") == "environment variable DEMI_INIT_TIMEOUT"
    )
    assert "demi.toml" in settings.source_of("health_timeout")
