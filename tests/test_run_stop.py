"""``demi run`` stops cleanly on a signal at any moment: during start-up, and even
when a plugin never lets go."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from helpers import install_distribution, sigterm_once

pytestmark = pytest.mark.slow

DEMI = Path(sys.executable).with_name("demi")

_STUBBORN = '''
import anyio
from demi.platforms.echo import EchoPlatform


class Stubborn(EchoPlatform):
    """Swallows every cancellation in shutdown, forever."""

    async def shutdown(self):
        while True:
            try:
                await anyio.sleep(3600)
            except anyio.get_cancelled_exc_class():
                pass
'''


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_plugin_that_never_lets_go_cannot_hold_the_process(
    tmp_path: Path, backend: str
) -> None:
    """A shutdown that swallows every cancellation would hold any event loop forever;
    the watchdog ends the process soon after the stop budget, saying why."""
    site = tmp_path / "site"
    site.mkdir()
    install_distribution(
        site, "demi-stubborn", "1.0", module="demi_stubborn", source=_STUBBORN,
        platforms={"stubborn": "demi_stubborn:Stubborn"},
    )  # fmt: skip
    code, output = sigterm_once(
        tmp_path,
        ["run", "--backend", backend],
        "demi running",
        PYTHONPATH=str(site),
        DEMI_PLATFORMS__STUCK__DRIVER="stubborn",
        DEMI_STOP_TIMEOUT="1",
        DEMI_SHUTDOWN_TIMEOUT="1",
    )
    # Budget: stop 1 s + HTTP grace 3 s + margin 2 s; the 30 s wait is generous on top.
    assert code == 1, output
    assert "stopping did not finish within 6s; exiting now" in output
    assert "Traceback" not in output


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_stop_signal_during_start_up_stops_at_once(
    tmp_path: Path, backend: str
) -> None:
    """SIGTERM while a platform is still initializing (for up to a minute here)
    stops demi cleanly now, instead of after the start finishes."""
    code, output = sigterm_once(
        tmp_path,
        ["-v", "run", "--backend", backend],
        "plugin slow: discovered -> loading",
        DEMI_PLATFORMS__SLOW__DRIVER="init_hangs",
        DEMI_INIT_TIMEOUT="60",
    )
    assert code == 0, output
    assert "SIGTERM received during start-up: stopping" in output
    # The signal may land while the plugin is still importing or already initializing.
    assert re.search(
        r"plugin slow: loading -> failed \(cancelled during (import|initialize)\)",
        output,
    ), output
