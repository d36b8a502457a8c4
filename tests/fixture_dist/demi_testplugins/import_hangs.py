"""Never finishes importing: it waits for an event nobody sets.

Registered only in a group of its own (demi_testplugins.hangs), so no scan of
demi.platforms ever meets it; a scan with a timeout must abandon it and return.
"""

from __future__ import annotations

import threading

from demi_testplugins._echo import HealthyEcho

threading.Event().wait()


class ImportHangsPlatform(HealthyEcho):
    """Never reached: its module never finishes importing."""
