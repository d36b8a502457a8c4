"""Importing this module never finishes (as a plugin stuck on a network call at import
would). Kept out of demi.platforms, in a group of its own, so that no scan of that
group ever waits for it."""

from __future__ import annotations

import threading

from demi_testplugins._echo import HealthyEcho

threading.Event().wait()


class HangsAtImportPlatform(HealthyEcho):
    """Never defined: the import above does not return."""
