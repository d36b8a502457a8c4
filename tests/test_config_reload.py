"""reload_settings reads the same sources again and never falls back to defaults;
resolve_config_file refuses a directory.

conftest.py clears every DEMI_* variable and runs each test in an empty working
directory, so ./demi.toml here is the test's own.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from demi import ConfigError
from demi.core.config import (
    DemiSettings,
    PlatformSettings,
    load_settings,
    reload_settings,
)


def write(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` and return the path."""
    path.write_text(text, encoding="utf-8")
    return path


def test_reload_rereads_the_file_given_by_name(tmp_path: Path) -> None:
    """A file named by --config is read again, with its new contents."""
    path = write(tmp_path / "named.toml", "init_timeout = 1\n")
    current = load_settings(path)
    write(path, "init_timeout = 2\n")
    assert reload_settings(current).init_timeout == 2


def test_reload_rereads_the_file_demi_config_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The file DEMI_CONFIG named at load time is the one read again, even when the
    variable has changed since."""
    path = write(tmp_path / "env.toml", "init_timeout = 1\n")
    monkeypatch.setenv("DEMI_CONFIG", str(path))
    current = load_settings()
    monkeypatch.setenv("DEMI_CONFIG", str(write(tmp_path / "other.toml", "")))
    write(path, "init_timeout = 3\n")
    assert reload_settings(current).init_timeout == 3


def test_reload_rereads_the_local_demi_toml_from_anywhere(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """./demi.toml found at load time is the file read again, whatever the working
    directory is now."""
    write(Path("demi.toml"), "init_timeout = 1\n")
    current = load_settings()
    write(Path("demi.toml"), "init_timeout = 4\n")
    monkeypatch.chdir(tmp_path)
    assert reload_settings(current).init_timeout == 4


def test_reload_of_settings_built_directly_keeps_their_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """DemiSettings() on its own remembers the file it read, so reload reads it too."""
    path = write(tmp_path / "c.toml", '[platforms.chat]\ndriver = "good"\n')
    monkeypatch.setenv("DEMI_CONFIG", str(path))
    current = DemiSettings()
    assert current.config_file == path
    monkeypatch.delenv("DEMI_CONFIG")
    assert list(reload_settings(current).platforms) == ["chat"]


def test_reload_keeps_the_arguments() -> None:
    """Arguments beat every source, on reload as well: platforms given as arguments
    are not replaced by the default echo."""
    platforms = {"chat": PlatformSettings(driver="good")}
    current = DemiSettings(platforms=platforms)
    assert reload_settings(current).platforms == platforms


def test_reload_reads_the_environment_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment is a source like the others."""
    current = load_settings()
    monkeypatch.setenv("DEMI_HEALTH_TIMEOUT", "2")
    assert reload_settings(current).health_timeout == 2


def test_reload_when_the_file_is_gone_is_an_error(tmp_path: Path) -> None:
    """A vanished file is an error, not a fallback to the defaults."""
    write(Path("demi.toml"), '[platforms.chat]\ndriver = "good"\n')
    current = load_settings()
    Path("demi.toml").unlink()
    with pytest.raises(ConfigError, match=r"config file '.*demi\.toml' is gone"):
        reload_settings(current)


def test_reload_when_the_file_became_a_directory_is_an_error(tmp_path: Path) -> None:
    """A file replaced by a directory is an error naming it."""
    path = write(tmp_path / "c.toml", "init_timeout = 1\n")
    current = load_settings(path)
    path.unlink()
    path.mkdir()
    with pytest.raises(ConfigError, match="is a directory") as caught:
        reload_settings(current)
    assert str(path) in str(caught.value)


def test_reload_when_the_file_cannot_be_read_is_an_error(tmp_path: Path) -> None:
    """A file that is no longer UTF-8 text cannot be read: an error naming it."""
    path = write(tmp_path / "c.toml", "init_timeout = 1\n")
    current = load_settings(path)
    path.write_bytes(b'greeting = "caf\xe9"\n')
    with pytest.raises(ConfigError, match="cannot be read") as caught:
        reload_settings(current)
    assert str(path) in str(caught.value)


def test_reload_when_the_file_is_unreadable_is_an_error(tmp_path: Path) -> None:
    """A file that cannot be opened is an error naming it and why. (A symbolic link
    to itself: permissions would not stop root, who runs CI.)"""
    path = write(tmp_path / "c.toml", "init_timeout = 1\n")
    current = load_settings(path)
    path.unlink()
    path.symlink_to(path.name)
    with pytest.raises(ConfigError, match="cannot be read") as caught:
        reload_settings(current)
    assert str(path) in str(caught.value)


def test_reload_with_a_bad_new_value_names_key_and_file(tmp_path: Path) -> None:
    """The new contents are checked like at load time."""
    path = write(tmp_path / "c.toml", "init_timeout = 1\n")
    current = load_settings(path)
    write(path, "init_timeout = inf\n")
    with pytest.raises(ConfigError, match="init_timeout: ") as caught:
        reload_settings(current)
    assert str(path) in str(caught.value)


def test_reload_without_a_file_looks_for_none() -> None:
    """Settings read from no file are read again from no file: a demi.toml that
    appeared since is not picked up behind the operator's back."""
    current = load_settings()
    write(Path("demi.toml"), "init_timeout = 9\n")
    reloaded = reload_settings(current)
    assert reloaded.config_file is None
    assert reloaded.init_timeout == 30


@pytest.mark.parametrize("how", ["explicit", "variable"])
def test_a_directory_named_as_the_config_file_is_an_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, how: str
) -> None:
    """--config or DEMI_CONFIG naming a directory says so, and names who named it."""
    if how == "variable":
        monkeypatch.setenv("DEMI_CONFIG", str(tmp_path))
    with pytest.raises(ConfigError, match="is a directory") as caught:
        load_settings(tmp_path if how == "explicit" else None)
    assert str(tmp_path) in str(caught.value)
    assert ("--config" if how == "explicit" else "DEMI_CONFIG") in str(caught.value)


def test_reload_when_the_file_became_a_fifo_is_an_error(tmp_path: Path) -> None:
    """A file replaced by something that is not a regular file (a FIFO, which would
    block a reader forever) is an error, not a hang."""
    path = write(tmp_path / "c.toml", "init_timeout = 1\n")
    current = load_settings(path)
    path.unlink()
    os.mkfifo(path)
    with pytest.raises(ConfigError, match="is not a regular file"):
        reload_settings(current)
