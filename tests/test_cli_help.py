"""``demi --help`` and click's usage errors, driven as subprocesses: every command's
summary whole, a usage error one ``demi: error: ...`` line like demi's own, and
``demi config --help`` saying what ``demi config`` prints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from demi.cli import cli

pytestmark = pytest.mark.slow

DEMI = Path(sys.executable).with_name("demi")
TIMEOUT = 60.0
COMMANDS = ["check", "config", "plugins", "request", "run"]


def _demi(
    tmp_path: Path, *args: str, columns: int = 80
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEMI_")}
    env.update(COLUMNS=str(columns), NO_COLOR="1")
    return subprocess.run(
        [str(DEMI), *args],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


@pytest.mark.parametrize("columns", [80, 200])
def test_help_shows_each_command_summary_whole_on_one_line(
    tmp_path: Path, columns: int
) -> None:
    result = _demi(tmp_path, "--help", columns=columns)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.partition("Commands:")[2].splitlines()
    # click cuts a summary that does not fit with "...".
    assert not [line for line in lines if "..." in line], result.stdout
    for name in COMMANDS:
        summary = cli.commands[name].short_help
        assert summary, name
        assert f"  {name}" in result.stdout
        assert any(line.split() == [name, *summary.split()] for line in lines), (
            name,
            result.stdout,
        )


@pytest.mark.parametrize(
    "args",
    [
        ["no-such-command"],
        ["check", "--backend", "curio"],
        ["request", "echo"],
        ["plugins", "--bogus"],
        ["check", "--jsn"],
        ["--config", ".", "plugins"],
    ],
    ids=[
        "unknown-command",
        "bad-choice",
        "missing-argument",
        "unknown-option",
        "misspelt-option",
        "config-is-a-directory",
    ],  # fmt: skip
)
def test_a_usage_error_is_one_line_like_demis_own(
    tmp_path: Path, args: list[str]
) -> None:
    result = _demi(tmp_path, *args)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("demi: error: "), lines[0]
    assert "Usage:" not in result.stderr and "Traceback" not in result.stderr
    # It says where the usage is; the usage itself is under --help.
    assert lines[0].endswith("--help shows the usage)"), lines[0]
    command = lines[0].rpartition("(")[2].removesuffix(" --help shows the usage)")
    shown = _demi(tmp_path, *command.split()[1:], "--help")
    assert shown.returncode == 0 and shown.stdout.startswith(f"Usage: {command} ")


def test_a_misspelt_option_keeps_clicks_suggestion(tmp_path: Path) -> None:
    line = _demi(tmp_path, "check", "--jsn").stderr.strip()
    assert "no such option '--jsn'" in line and "'--json'" in line


def test_config_help_describes_what_config_prints(tmp_path: Path) -> None:
    help_text = " ".join(_demi(tmp_path, "config", "--help").stdout.split())
    printed = json.loads(_demi(tmp_path, "config", "--json").stdout)
    # Every top-level key it prints, and where the settings come from.
    for key in printed:
        assert f'"{key}"' in help_text, key
    for source in ("defaults", "TOML", ".env", "DEMI_", "redacted"):
        assert source in help_text, source
    # It prints JSON either way; there is no table to choose against.
    assert "table" not in help_text
