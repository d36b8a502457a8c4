"""examples/check_listed.py: the check that `demi plugins` lists a platform as valid."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "check_listed.py"

pytestmark = pytest.mark.slow


def _check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_a_valid_listed_platform_passes() -> None:
    """The built-in echo platform is listed as valid, from the demi-conductor
    distribution."""
    result = _check("echo", "--distribution", "demi-conductor")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("echo: valid, demi.platforms.echo:EchoPlatform")


def test_an_unlisted_platform_fails() -> None:
    """A name that no entry point has fails the check, saying so."""
    result = _check("no-such-platform")
    assert result.returncode == 1
    assert "'no-such-platform' is not listed" in result.stderr


def test_a_platform_from_another_distribution_fails() -> None:
    """A listed platform owned by another distribution than required fails the check."""
    result = _check("echo", "--distribution", "demi-webhook")
    assert result.returncode == 1
    assert "'echo' comes from 'demi-conductor', not 'demi-webhook'" in result.stderr
