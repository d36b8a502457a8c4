"""Takes two seconds to import: an import that outlives a short init timeout.

Registered in a group of its own (demi_testplugins.slow), so no scan of
demi.platforms ever waits for it.
"""

from __future__ import annotations

import time

from demi_testplugins._echo import HealthyEcho

time.sleep(2.0)


class SlowImportPlatform(HealthyEcho):
    """A good platform behind a slow import."""
