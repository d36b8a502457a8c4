"""Says so on stderr, then takes half a minute to import: a command can be
interrupted while it imports this. Registered in a group of its own
(demi_testplugins.sleepy), so no scan of demi.platforms waits for it."""

from __future__ import annotations

import sys
import time

from demi_testplugins._echo import HealthyEcho

sys.stderr.write("sleeps_at_import: importing\n")
sys.stderr.flush()
time.sleep(30.0)


class SleepsAtImportPlatform(HealthyEcho):
    """A good platform behind a very slow import."""
