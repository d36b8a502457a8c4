"""``demi plugins`` and ``demi check`` in 80 and 200 columns: no name, entry-point
target, distribution or version is ever split across lines.

The commands run as subprocesses with ``COLUMNS`` set, which rich reads when its
output is not a terminal (a CI log, a pipe).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

DEMI = Path(sys.executable).with_name("demi")
TIMEOUT = 60.0
WIDTHS = [80, 200]

# Runs that start platforms: quick ones only, a dozen broken in different ways.
_DRIVERS = [
    "good", "good2", "counter", "health_raises", "health_garbage", "init_raises",
    "init_false", "health_int_message", "health_bogus_status", "shutdown_raises",
    "request_raises", "marks_shutdown", "twin", "run_odd_health",
]  # fmt: skip


def _demi(tmp_path: Path, columns: int, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEMI_")}
    env.pop("FORCE_COLOR", None)
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


def _cells(line: str) -> list[str]:
    """A line's pieces of text: table borders and the field labels split them."""
    line = re.sub(r"^\s+\w[\w ()]*:\s", "", line)  # a vertical field's label
    pieces = re.split(r"[│┃]|\s{2,}", line)
    return [piece.strip() for piece in pieces if piece and piece.strip()]


def _assert_whole(output: str, identifiers: set[str], width: int) -> None:
    lines = output.splitlines()
    cells = {cell for line in lines for cell in _cells(line)}
    split = sorted(ident for ident in identifiers if ident not in cells)
    assert not split, f"split across lines or missing: {split}\n{output}"
    for line in lines:
        # Only an identifier longer than the width may run past it, alone.
        if len(line.rstrip()) > width:
            assert line.strip() in identifiers, line


@pytest.mark.parametrize("width", WIDTHS)
def test_plugins_table_keeps_every_identifier_whole(tmp_path: Path, width: int) -> None:
    listing = _demi(tmp_path, width, "plugins", "--json")
    rows = json.loads(listing.stdout)
    broken = [row for row in rows if not row["valid"]]
    assert len(broken) >= 12  # the fixture distribution's broken plugins
    result = _demi(tmp_path, width, "plugins")
    assert result.returncode == 1, result.stderr
    identifiers = {
        row[key]
        for row in rows
        for key in ("name", "target", "distribution", "version")
    }
    _assert_whole(result.stdout, identifiers, width)
    # Every error is there, its words in order (wrapped only between words).
    words = result.stdout.split()
    for row in broken:
        assert " ".join(row["error"].split()) in _joined(words), row["error"]
    assert f"{len(rows)} plugin(s), {len(broken)} broken" in result.stdout


def _joined(words: list[str]) -> str:
    # The output's words without table borders, as one line.
    return " ".join(w for w in words if w not in {"│", "┃", "error:"})


def test_plugins_at_80_columns_is_vertical_and_at_200_a_table(tmp_path: Path) -> None:
    narrow = _demi(tmp_path, 80, "plugins").stdout
    wide = _demi(tmp_path, 200, "plugins").stdout
    assert "┃ Name" not in narrow and "  target:" in narrow
    assert "┃ Name" in wide


@pytest.mark.parametrize("width", WIDTHS)
def test_check_table_keeps_every_instance_and_driver_whole(
    tmp_path: Path, width: int
) -> None:
    (tmp_path / "demi.toml").write_text(
        "".join(
            f"[platforms.instance-number-{i:02d}-{driver.replace('_', '-')}]\n"
            f'driver = "{driver}"\n'
            for i, driver in enumerate(_DRIVERS)
        )
    )
    result = _demi(tmp_path, width, "check", "--json")
    rows = json.loads(result.stdout)["platforms"]
    assert len(rows) == len(_DRIVERS)
    result = _demi(tmp_path, width, "check")
    assert result.returncode == 1, result.stderr
    identifiers = {row[key] for row in rows for key in ("instance", "driver")}
    _assert_whole(result.stdout, identifiers, width)
    assert ("┃ Instance" in result.stdout) is (width == 200)
