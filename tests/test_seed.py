"""The seed plan's three verify commands, with ``demi.`` for ``src.``, print their lines."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SEED_COMMANDS = {
    "base": (
        "from demi.platforms.base import BasePlatform; "
        "print('Base interface loaded successfully')"
    ),
    "discovery": (
        "from demi.plugins.discovery import discover_plugins; "
        "plugins = discover_plugins(); print(f'Found {len(plugins)} plugins')"
    ),
    "manager": textwrap.dedent(
        """
        import asyncio
        from demi.plugins.manager import PluginManager
        async def test():
            pm = PluginManager()
            await pm.discover_and_register()
            print(f'Plugin manager ready with {len(pm.registry)} plugins')
        asyncio.run(test())
        """
    ),
}


def run_seed(name: str, cwd: Path) -> str:
    """Run one seed command as the plan writes it; return what it printed."""
    done = subprocess.run(
        [sys.executable, "-c", SEED_COMMANDS[name]],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.slow
def test_the_base_interface_loads(tmp_path: Path) -> None:
    """The first verify command prints its success line."""
    assert run_seed("base", tmp_path) == "Base interface loaded successfully\n"


@pytest.mark.slow
def test_discovery_counts_the_valid_plugins(tmp_path: Path) -> None:
    """The second verify command counts echo and the fixture distribution's valid
    plugins, and none of the broken ones."""
    found = re.fullmatch(r"Found (\d+) plugins\n", run_seed("discovery", tmp_path))
    assert found is not None
    # echo, good, good2, configured, counter and the runtime-fault plugins at least;
    # never the import-time or contract faults.
    from demi.plugins.discovery import discover_plugins

    assert int(found.group(1)) == len(discover_plugins())
    assert int(found.group(1)) >= 5


@pytest.mark.slow
def test_the_manager_registers_what_discovery_finds(tmp_path: Path) -> None:
    """The third verify command prints the number of registered plugins."""
    discovered = re.fullmatch(r"Found (\d+) plugins\n", run_seed("discovery", tmp_path))
    ready = re.fullmatch(
        r"Plugin manager ready with (\d+) plugins\n", run_seed("manager", tmp_path)
    )
    assert discovered is not None and ready is not None
    assert ready.group(1) == discovered.group(1)
