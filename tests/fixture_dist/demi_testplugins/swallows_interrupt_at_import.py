"""Takes half a minute to import and swallows whatever interrupts that (a bare
``except BaseException``): the interruption must still count. Registered in a group
of its own (demi_testplugins.swallowing), so no scan of demi.platforms waits for it."""

from __future__ import annotations

import sys
import time

from demi_testplugins._echo import HealthyEcho

sys.stderr.write("swallows_interrupt_at_import: importing\n")
sys.stderr.flush()
try:
    time.sleep(30.0)
except BaseException as caught:  # the fault this plugin stands for
    sys.stderr.write(
        f"swallows_interrupt_at_import: swallowed {type(caught).__name__}\n"
    )


class SwallowsInterruptAtImportPlatform(HealthyEcho):
    """A good platform behind a slow import that swallows its interruption."""
